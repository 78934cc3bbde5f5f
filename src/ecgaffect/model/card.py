"""The model card: the metadata record saved inside every exported model.

An exported model is a plain module ``forward(x: [batch, 1, window_n]) -> [batch, n_outputs]``
that returns per-task class probabilities concatenated in the card's task order. The card says
what the model expects (sampling rate, window length, preprocessing and normalisation), what
its output columns mean (tasks, class names, output layout, decision thresholds) and where it
came from (label scheme, training data, evaluation metrics, versions). A scorer reads the card
to reject a stream the model was not trained for.

The card is a JSON document with a ``card_version`` field; :meth:`ModelCard.from_dict`
validates every field strictly and raises :class:`ModelCardError` (a ``ValueError``) naming
the field, echoing the bad value and saying what is allowed.

Version 2 (:data:`CARD_VERSION`) holds the input contract once: ``preprocessing`` is the
:class:`~ecgaffect.signal.PreprocessConfig` the model was trained with, and the card's
``fs_hz``, ``window_n``, ``window_s`` and ``normalization`` are read from it. Version 1 cards
repeated those four at the top level; :meth:`ModelCard.from_dict` still reads them, checks
they agree with the preprocessing and converts the card to version 2.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from ecgaffect.signal import PreprocessConfig

__all__ = [
    "CARD_FILENAME",
    "CARD_VERSION",
    "DEMO_WARNING",
    "READABLE_CARD_VERSIONS",
    "ModelCard",
    "ModelCardError",
    "ModelFormatError",
    "output_layout_for",
]

#: Schema version of the card written; bump when a field changes meaning.
CARD_VERSION = 2
#: Card versions :meth:`ModelCard.from_dict` reads (version 1 is converted to version 2).
READABLE_CARD_VERSIONS = (1, 2)
#: Version 1 fields that repeated the preprocessing at the top level.
_V1_INPUT_FIELDS = ("fs_hz", "window_n", "window_s", "normalization")
#: Name of the card inside an exported artifact (``extra_files``).
CARD_FILENAME = "ecgaffect_card.json"
#: What every consumer shows for a card with ``demo=True``.
DEMO_WARNING = "demo model — not validated for affect"
_HEX = "0123456789abcdef"


class ModelCardError(ValueError):
    """A model card is missing a field or has a value outside what is allowed."""


class ModelFormatError(ValueError):
    """A file is not an ecgaffect model (corrupt, truncated, empty or someone else's format)."""


def output_layout_for(tasks: Mapping[str, Sequence[str]]) -> dict[str, list[int]]:
    """Output columns ``[start, stop)`` of each task, probabilities concatenated in order."""
    layout: dict[str, list[int]] = {}
    start = 0
    for task, classes in tasks.items():
        layout[task] = [start, start + len(classes)]
        start += len(classes)
    return layout


def _utc_now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _package_version() -> str:
    from ecgaffect import __version__

    return __version__


def _torch_version() -> str:
    try:
        import torch
    except ImportError:  # a card can be read without torch
        return "unknown"
    return str(torch.__version__)


@dataclass
class ModelCard:
    """Metadata of an exported model (see the module docstring).

    Attributes:
        name: short identifier of the model, e.g. ``"swell-stress-ssl"``.
        tasks: ordered mapping task → class names; the output columns follow this order.
        preprocessing: the :class:`~ecgaffect.signal.PreprocessConfig` used for training;
            the properties :attr:`fs_hz`, :attr:`window_n`, :attr:`window_s` and
            :attr:`normalization` are read from it (JSON: its ``to_dict()``).
        label_scheme: name of the label scheme the classes come from (``"binary"``, ...).
        thresholds: per task, the decision threshold on P(class 1) for a binary task, or
            None for argmax (always None for three or more classes).
        output_layout: per task, ``[start, stop)`` output columns; derived from ``tasks``.
        training_data: free-form description (datasets, subjects, windows, ...).
        metrics: free-form evaluation results; must name the ``protocol`` when not empty.
        demo: True for a model that is not validated for affect (synthetic data, random init).
        notes: limits and caveats, free text.
        architecture: what network to build for the weights (see
            :func:`ecgaffect.model.networks.architecture_of`); required in a model file.
        weights_sha256: SHA-256 of the weights (:func:`ecgaffect.model.modelfile.weights_digest`),
            verified when the model file is loaded; required in a model file.
        created_utc: ISO-8601 UTC creation time.
        package_version / torch_version: versions that wrote the artifact.
        card_version: schema version (:data:`CARD_VERSION`).
    """

    name: str
    tasks: dict[str, list[str]]
    preprocessing: PreprocessConfig
    label_scheme: str
    thresholds: dict[str, float | None] = field(default_factory=dict)
    output_layout: dict[str, list[int]] = field(default_factory=dict)
    training_data: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    demo: bool = False
    notes: str = ""
    architecture: dict[str, Any] = field(default_factory=dict)
    weights_sha256: str = ""
    created_utc: str = field(default_factory=_utc_now)
    package_version: str = field(default_factory=_package_version)
    torch_version: str = field(default_factory=_torch_version)
    card_version: int = CARD_VERSION

    def __post_init__(self) -> None:
        self.tasks = {str(t): [str(c) for c in cls] for t, cls in dict(self.tasks).items()}
        if not self.output_layout:
            self.output_layout = output_layout_for(self.tasks)
        if not self.thresholds:
            self.thresholds = dict.fromkeys(self.tasks)
        self.validate()

    # -- derived --------------------------------------------------------------------------
    @property
    def fs_hz(self) -> float:
        """Sampling rate of the model input (Hz), ``preprocessing.fs_hz``."""
        return float(self.preprocessing.fs_hz)

    @property
    def window_s(self) -> float:
        """Window duration (s), ``preprocessing.window_s``."""
        return float(self.preprocessing.window_s)

    @property
    def window_n(self) -> int:
        """Samples per window, ``preprocessing.window_n`` (``fs_hz * window_s``)."""
        return int(self.preprocessing.window_n)

    @property
    def normalization(self) -> str:
        """Normalisation of the training windows, ``preprocessing.normalization``."""
        return str(self.preprocessing.normalization)

    @property
    def n_outputs(self) -> int:
        """Number of output columns (sum of the tasks' class counts)."""
        return sum(len(c) for c in self.tasks.values())

    def classes(self, task: str) -> list[str]:
        """Class names of ``task`` (ValueError naming the known tasks)."""
        if task not in self.tasks:
            raise ValueError(f"model {self.name!r} has no task {task!r}; tasks: {list(self.tasks)}")
        return list(self.tasks[task])

    def split_outputs(self, outputs: np.ndarray) -> dict[str, np.ndarray]:
        """Split ``[batch, n_outputs]`` model outputs into ``{task: [batch, n_classes]}``."""
        outputs = np.asarray(outputs)
        if outputs.ndim != 2 or outputs.shape[1] != self.n_outputs:
            raise ValueError(
                f"model outputs have shape {outputs.shape}; the card of {self.name!r} "
                f"expects [batch, {self.n_outputs}]"
            )
        return {t: outputs[:, a:b] for t, (a, b) in self.output_layout.items()}

    def decide(self, task: str, probabilities: np.ndarray) -> np.ndarray:
        """Predicted class index per row: threshold on P(class 1) for a thresholded binary
        task, argmax otherwise.
        """
        p = np.asarray(probabilities)
        n = len(self.classes(task))
        if p.ndim != 2 or p.shape[1] != n:
            raise ValueError(
                f"probabilities of task {task!r} have shape {p.shape}; expected [batch, {n}]"
            )
        threshold = self.thresholds.get(task)
        if threshold is not None:
            return (p[:, 1] >= threshold).astype(np.int64)
        return np.argmax(p, axis=1).astype(np.int64)

    # -- validation -----------------------------------------------------------------------
    def validate(self) -> None:
        """Raise :class:`ModelCardError` for any field outside what is allowed."""

        def bad(field_name: str, value: Any, allowed: str) -> ModelCardError:
            return ModelCardError(f"model card field {field_name!r} = {value!r}: {allowed}")

        if not isinstance(self.card_version, int) or isinstance(self.card_version, bool):
            raise bad("card_version", self.card_version, "must be an integer")
        if self.card_version != CARD_VERSION:
            raise bad(
                "card_version",
                self.card_version,
                f"this ecgaffect reads card versions {list(READABLE_CARD_VERSIONS)} only; "
                "re-export the model or upgrade ecgaffect",
            )
        if not isinstance(self.name, str) or not self.name.strip():
            raise bad("name", self.name, "must be a non-empty string")
        if not isinstance(self.label_scheme, str) or not self.label_scheme.strip():
            raise bad("label_scheme", self.label_scheme, "must be a non-empty string")
        for key in ("notes", "created_utc", "package_version", "torch_version"):
            if not isinstance(getattr(self, key), str):
                raise bad(key, getattr(self, key), "must be a string")
        if not isinstance(self.demo, bool):
            raise bad("demo", self.demo, "must be true or false")
        if not isinstance(self.preprocessing, PreprocessConfig):
            raise bad(
                "preprocessing",
                self.preprocessing,
                "must be an ecgaffect.signal.PreprocessConfig (ModelCard.from_dict reads "
                "its JSON object)",
            )
        if not self.tasks:
            raise bad("tasks", self.tasks, "must name at least one task with its classes")
        for task, classes in self.tasks.items():
            if not task:
                raise bad("tasks", task, "task names must be non-empty")
            if len(classes) < 2 or len(set(classes)) != len(classes):
                raise bad(f"tasks.{task}", classes, "needs at least 2 distinct class names")
        expected = output_layout_for(self.tasks)
        layout = {t: [int(a) for a in v] for t, v in dict(self.output_layout).items()}
        if layout != expected:
            raise bad(
                "output_layout",
                self.output_layout,
                f"must match the task order and class counts: {expected}",
            )
        self.output_layout = layout
        if set(self.thresholds) != set(self.tasks):
            raise bad(
                "thresholds", self.thresholds, f"must have one entry per task {list(self.tasks)}"
            )
        for task, threshold in self.thresholds.items():
            if threshold is None:
                continue
            if len(self.tasks[task]) != 2:
                raise bad(
                    f"thresholds.{task}",
                    threshold,
                    "only binary tasks take a threshold (on P(class 1)); use null for argmax",
                )
            if (
                isinstance(threshold, bool)
                or not isinstance(threshold, int | float)
                or not 0.0 < threshold < 1.0
            ):
                raise bad(f"thresholds.{task}", threshold, "must be a probability in (0, 1)")
        if not isinstance(self.training_data, dict):
            raise bad("training_data", self.training_data, "must be a JSON object")
        if not isinstance(self.metrics, dict):
            raise bad("metrics", self.metrics, "must be a JSON object")
        if not isinstance(self.architecture, dict):
            raise bad("architecture", self.architecture, "must be a JSON object")
        if not isinstance(self.weights_sha256, str) or not (
            self.weights_sha256 == ""
            or (len(self.weights_sha256) == 64 and set(self.weights_sha256) <= set(_HEX))
        ):
            raise bad("weights_sha256", self.weights_sha256, "must be 64 lowercase hex digits")
        if self.metrics and not self.metrics.get("protocol"):
            raise bad(
                "metrics",
                sorted(self.metrics),
                "non-empty metrics must name their evaluation 'protocol'",
            )

    # -- serialisation ------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-compatible dict (task order preserved; ``preprocessing`` as its dict)."""
        data = asdict(self)
        data["preprocessing"] = self.preprocessing.to_dict()
        return data

    def to_json(self, *, indent: int | None = 2) -> str:
        """JSON text of :meth:`to_dict` (strict: NaN/inf are rejected)."""
        try:
            return json.dumps(self.to_dict(), indent=indent, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ModelCardError(
                f"model card {self.name!r} is not JSON-serialisable: {exc}"
            ) from exc

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelCard:
        """Build and validate a card; unknown or missing fields raise :class:`ModelCardError`.

        A version 1 card (top-level ``fs_hz``, ``window_n``, ``window_s`` and
        ``normalization`` beside ``preprocessing``) is converted to version 2: the four must
        agree with the preprocessing, which takes any of them it does not name.

        Args:
            data: the card's JSON object.

        Returns:
            The validated card (always :data:`CARD_VERSION`).

        Raises:
            ModelCardError: any field missing, unknown or outside what is allowed.
        """
        if not isinstance(data, Mapping):
            raise ModelCardError(f"a model card must be a JSON object, got {type(data).__name__}")
        version = data.get("card_version")
        if "card_version" not in data:
            raise ModelCardError("model card is missing required fields ['card_version']")
        if isinstance(version, bool) or version not in READABLE_CARD_VERSIONS:
            raise ModelCardError(
                f"model card field 'card_version' = {version!r}: this ecgaffect reads card "
                f"versions {list(READABLE_CARD_VERSIONS)} only; re-export the model or "
                "upgrade ecgaffect"
            )
        data = _from_v1(data) if version == 1 else dict(data)
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ModelCardError(
                f"model card has unknown fields {unknown}; allowed fields: {sorted(known)}"
            )
        required = ("name", "tasks", "preprocessing", "label_scheme")
        missing = [k for k in required if k not in data]
        if missing:
            raise ModelCardError(f"model card is missing required fields {missing}")
        tasks = data["tasks"]
        if not isinstance(tasks, Mapping) or not all(
            isinstance(v, list | tuple) for v in tasks.values()
        ):
            raise ModelCardError(
                f"model card field 'tasks' = {tasks!r}: must map each task to a list of classes"
            )
        for key in ("thresholds", "output_layout"):
            if key in data and not isinstance(data[key], Mapping):
                raise ModelCardError(f"model card field {key!r} = {data[key]!r}: must be an object")
        data["preprocessing"] = _preprocess_config(data["preprocessing"])
        try:
            return cls(**data)
        except TypeError as exc:  # wrong value types that the dataclass itself trips over
            raise ModelCardError(f"invalid model card: {exc}") from exc

    @classmethod
    def from_json(cls, text: str | bytes) -> ModelCard:
        """Parse and validate JSON text."""
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ModelCardError(f"model card is not valid JSON: {exc}") from exc
        return cls.from_dict(data)

    def training_summary(self) -> str:
        """One line on what the model was trained on (``training_data["summary"]`` when the
        builder wrote one, else the top-level entries, abbreviated).
        """
        data = self.training_data or {}
        if isinstance(data.get("summary"), str):
            return data["summary"]
        parts = []
        for key, value in data.items():
            if isinstance(value, str | int | float | bool):
                parts.append(f"{key}: {value}")
            elif isinstance(value, list):
                parts.append(f"{key}: {len(value)} sources")
        return "; ".join(parts[:4]) or "not recorded"

    def metrics_summary(self, limit: int = 5) -> str:
        """The headline figures: every ``accuracy`` / ``recognition_acc`` value found in the
        metrics (nested sections named by their path), with the protocol first.
        """
        metrics = self.metrics or {}
        if not metrics:
            return "not evaluated"
        found: list[str] = []

        def walk(prefix: str, value: Any) -> None:
            if isinstance(value, dict):
                for k, v in value.items():
                    walk(f"{prefix}{k} ", v)
            elif isinstance(value, int | float) and not isinstance(value, bool):
                name = prefix.strip()
                if name.endswith(("accuracy", "recognition_acc")):
                    found.append(f"{name.replace('/', ' ')} {value:.2f}")

        for key, value in metrics.items():
            if key != "protocol":
                walk(f"{key} ", value)
        text = "; ".join(found[:limit]) or "no accuracy figures"
        protocol = metrics.get("protocol")
        return f"{text} ({protocol})" if isinstance(protocol, str) else text

    def validation(self) -> dict[str, dict[str, Any]]:
        """Per task: ``{"validated": bool, ...}`` from ``metrics["outputs"]`` (written by
        ``scripts/build_stress_model.py``); a task the card says nothing about, or a demo
        card, counts as not validated.
        """
        outputs = self.metrics.get("outputs") if isinstance(self.metrics, dict) else None
        out: dict[str, dict[str, Any]] = {}
        for task in self.tasks:
            rec = outputs.get(task) if isinstance(outputs, dict) else None
            rec = dict(rec) if isinstance(rec, dict) else {}
            rec["validated"] = bool(rec.get("validated", False)) and not self.demo
            out[task] = rec
        return out

    def output_validation(self, task: str) -> dict[str, str]:
        """What is known about the validation of ``task``, as flat text (the LSL outlet's
        per-channel metadata, :meth:`validation_table`).

        Returns:
            ``validated`` (``"yes"``/``"no"``), ``dataset`` (what it was validated on, or
            for a personal model fitted on), ``protocol``, ``metric`` (the headline figures,
            e.g. ``"LOSO balanced accuracy 0.8075, AUROC 0.8521"``) and ``note``; ``"none"``
            where the card records nothing.
        """
        self.classes(task)  # ValueError naming the known tasks
        rec = self.validation()[task]
        on = rec.get("validated_on") if isinstance(rec.get("validated_on"), dict) else {}
        protocol = self.metrics.get("protocol") if isinstance(self.metrics, dict) else None
        out = {
            "validated": "yes" if rec["validated"] else "no",
            "dataset": str(on.get("dataset") or "none"),
            "protocol": str(on.get("protocol") or protocol or "none"),
            "metric": "none",
            "note": "",
        }
        ba, auc = rec.get("loso_balanced_accuracy"), rec.get("loso_auroc")
        if rec["validated"] and ba is not None:
            out["metric"] = f"LOSO balanced accuracy {ba}" + (
                f", AUROC {auc}" if auc is not None else ""
            )
            hb, ha = rec.get("hrv_baseline_balanced_accuracy"), rec.get("hrv_baseline_auroc")
            if hb is not None:
                out["metric"] += f" (HRV baseline {hb} / {ha})"
        if self.demo:
            out["note"] = DEMO_WARNING
            out["dataset"] = "none"
            out["protocol"] = "none"
        elif rec.get("personal"):
            data = self.training_data if isinstance(self.training_data, dict) else {}
            out["dataset"] = str(data.get("dataset") or "one person's calibration")
            cba, cauc = rec.get("cv_balanced_accuracy"), rec.get("cv_auroc")
            if cba is not None:
                out["metric"] = f"time-blocked CV balanced accuracy {cba}, AUROC {cauc}"
            out["note"] = "personal model: fitted on one person, not validated on others"
        elif not rec["validated"]:
            out["note"] = "no validation recorded in the card"
        return out

    def validation_brief(self) -> list[str]:
        """One line per output: ``stress: VALIDATED (EEGMAT ..., LOSO ...)`` or ``arousal:
        NOT VALIDATED (demo model — ...)`` (printed by ``live`` and ``score``).
        """
        lines = []
        for task in self.tasks:
            v = self.output_validation(task)
            if v["validated"] == "yes":
                lines.append(
                    f"{task}: VALIDATED on {v['dataset'].split(' (')[0]}, {v['metric']}; "
                    "only for what the card says (ecgaffect model-info)"
                )
            else:
                why = v["note"] + (f"; {v['metric']}" if v["metric"] != "none" else "")
                lines.append(f"{task}: NOT VALIDATED ({why})")
        return lines

    def validation_oneline(self) -> str:
        """The whole model in one line: ``validated: stress (EEGMAT, LOSO balanced accuracy
        0.8075, ...)`` or ``NOT validated (demo model — ...)`` (``model-info``'s list).
        """
        per = {t: self.output_validation(t) for t in self.tasks}
        done = [t for t, v in per.items() if v["validated"] == "yes"]
        if not done:
            notes = {v["note"] for v in per.values() if v["note"]}
            return "NOT validated" + (f" ({'; '.join(sorted(notes))})" if notes else "")
        parts = [f"{t} on {per[t]['dataset'].split(' (')[0]}, {per[t]['metric']}" for t in done]
        text = "validated: " + "; ".join(parts)
        rest = [t for t in per if t not in done]
        return text + (f"; NOT validated: {', '.join(rest)}" if rest else "")

    def validation_table(self) -> list[str]:
        """``model-info``'s per-output validation table (one row per output, then the
        long protocol texts as numbered notes).
        """
        rows = [("output", "validated", "dataset", "metric")]
        notes: list[str] = []
        for task in self.tasks:
            v = self.output_validation(task)
            rows.append((task, v["validated"], v["dataset"].split(" (")[0], v["metric"]))
            if v["protocol"] != "none":
                notes.append(f"  {task}: protocol: {v['protocol']}")
            if v["note"]:
                notes.append(f"  {task}: note: {v['note']}")
        widths = [max(len(r[i]) for r in rows) for i in range(3)]
        lines = ["validation per output:"]
        for r in rows:
            cells = "  ".join(c.ljust(w) for c, w in zip(r[:3], widths, strict=True))
            lines.append(f"  {cells}  {r[3]}")
        return lines + notes

    def validation_lines(self) -> list[str]:
        """``model-info`` lines saying per output whether it is validated, and on what."""
        lines = self.validation_table()
        for task, rec in self.validation().items():
            on = rec.get("validated_on")
            if rec["validated"] and isinstance(on, dict):
                lines.append(f"  {task}: validated on:")
                lines += [f"    {k}: {v}" for k, v in on.items() if k != "protocol"]
        return lines

    def summary(self) -> str:
        """Human-readable multi-line description (``ecgaffect model-info``)."""
        lines = [f"model:          {self.name}"]
        if self.demo:
            lines.append(f"WARNING:        {DEMO_WARNING}")
        lines += [
            f"input:          [batch, 1, {self.window_n}] = "
            f"{self.window_s:g} s at {self.fs_hz:g} Hz",
            f"normalization:  {self.normalization}",
            f"label scheme:   {self.label_scheme}",
            "tasks:",
        ]
        for task, classes in self.tasks.items():
            a, b = self.output_layout[task]
            thr = self.thresholds.get(task)
            rule = "argmax" if thr is None else f"P({classes[1]}) >= {thr:g}"
            lines.append(f"  {task:<14}{', '.join(classes)}  (outputs {a}..{b - 1}; {rule})")
        lines += self.validation_lines()
        lines.append("preprocessing:")
        lines += [f"  {k}: {v}" for k, v in self.preprocessing.to_dict().items()]
        if self.training_data:
            lines.append("training data:")
            lines += [f"  {k}: {v}" for k, v in self.training_data.items()]
        if self.metrics:
            lines.append("metrics:")
            lines += [f"  {k}: {v}" for k, v in self.metrics.items()]
        lines += [
            f"created (UTC):  {self.created_utc}",
            f"versions:       ecgaffect {self.package_version}, torch {self.torch_version}, "
            f"card {self.card_version}",
        ]
        if self.architecture:
            arch = self.architecture
            if "feature_set" in arch:
                lines.append(
                    f"network:        {arch.get('network')}, features {arch.get('feature_set')!r}"
                    f" ({arch.get('n_features')}), relative to the person's baseline"
                )
            else:
                lines.append(
                    f"network:        {arch.get('network')}, heads {arch.get('head_layers')} x "
                    f"{arch.get('head_width')}"
                )
        if self.weights_sha256:
            lines.append(f"weights sha256: {self.weights_sha256}")
        if self.notes:
            lines.append(f"notes:          {self.notes}")
        return "\n".join(lines)


def _preprocess_config(value: Any) -> PreprocessConfig:
    """The card's ``preprocessing`` JSON object as a :class:`PreprocessConfig`."""
    if isinstance(value, PreprocessConfig):
        return value
    if not isinstance(value, Mapping) or not value:
        raise ModelCardError(
            f"model card field 'preprocessing' = {value!r}: must be a non-empty JSON object "
            "(ecgaffect.signal.PreprocessConfig.to_dict())"
        )
    try:
        return PreprocessConfig.from_dict(value)
    except (TypeError, ValueError) as exc:
        raise ModelCardError(f"model card field 'preprocessing' = {dict(value)!r}: {exc}") from None


def _same(mine: Any, theirs: Any) -> bool:
    if isinstance(mine, str) or isinstance(theirs, str):
        return bool(mine == theirs)
    numbers = all(
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
        for v in (mine, theirs)
    )
    return numbers and math.isclose(float(mine), float(theirs), rel_tol=0, abs_tol=1e-9)


def _from_v1(data: Mapping[str, Any]) -> dict[str, Any]:
    """A version 1 card's fields in the version 2 layout (see :meth:`ModelCard.from_dict`)."""
    out = dict(data)
    prep = out.get("preprocessing")
    if not isinstance(prep, Mapping) or not prep:
        raise ModelCardError(
            f"model card field 'preprocessing' = {prep!r}: must be a non-empty JSON object"
        )
    prep = dict(prep)
    top = {k: out.pop(k) for k in _V1_INPUT_FIELDS if k in out}
    missing = [k for k in ("normalization",) if k not in top and k not in prep]
    if missing:
        raise ModelCardError(f"model card (version 1) is missing required fields {missing}")
    window_n = prep.pop("window_n", None)
    for key in ("fs_hz", "window_s", "normalization"):
        if key not in top:
            continue
        if key not in prep:
            prep[key] = top[key]
        elif not _same(top[key], prep[key]):
            raise ModelCardError(
                f"model card field {key!r} = {top[key]!r}: must equal "
                f"preprocessing[{key!r}] = {prep[key]!r}"
            )
    config = _preprocess_config(prep)
    for key, value in (("window_n", top.get("window_n")), ("window_n", window_n)):
        if value is not None and not (
            isinstance(value, int) and not isinstance(value, bool) and value == config.window_n
        ):
            raise ModelCardError(
                f"model card field {key!r} = {value!r}: must equal fs_hz * window_s = "
                f"{config.fs_hz} * {config.window_s}"
            )
    out["preprocessing"] = config
    out["card_version"] = CARD_VERSION
    return out
