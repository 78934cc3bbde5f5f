"""Evaluation protocols and the paper's three comparisons.

Protocols (all seeded, see :func:`make_folds`):

- ``subject-kfold`` (default): folds grouped by subject, no subject in both train and test,
  **subject-independent**, what a new user of a live system experiences;
- ``loso``: leave one subject out, subject-independent;
- ``window-kfold``: the paper's 10-fold CV over shuffled windows (seed 1), **window-level
  (subject-dependent)**: neighbouring windows of one clip fall in train and test, so it is
  optimistic. It is the protocol that reproduces the paper's table.

Per fold the pretext network is retrained on the fold's training windows (the paper's
protocol), or one pretrained encoder is reused across folds (``encoder_path``: the "shared
encoder" mode, named as such in every result because test subjects may have been seen during
pretraining). Emotion heads are fine-tuned on the frozen encoder; metrics per task and fold
(accuracy, ``f1_paper``, ``f1_macro_sklearn``, confusion matrix) are aggregated as mean ± std
over folds (std = sample standard deviation, ``ddof=1``; 0 for one fold) with the confusion
matrices summed.

The comparisons, one function each, all returning a JSON-able results dict (see
:func:`ssl_vs_baseline` for its keys) that :mod:`ecgaffect.model.report` renders:

1. :func:`ssl_vs_baseline`: self-supervised (frozen transferred encoder) vs the
   fully-supervised baseline;
2. :func:`label_fraction`: accuracy vs the fraction of labelled training windows (stratified,
   nested, seeded) for both; pretraining still uses all training windows, unlabelled;
3. :func:`pretext_accuracy`: pretext accuracy per transformation on the fold's held-out
   windows.

Every fold writes ``folds/fold-NN/result.json`` under ``out_dir``; a rerun with the same
configuration reuses finished folds (and the pretrain/finetune stages resume from their own
checkpoints), so an interrupted evaluation continues where it stopped.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from tqdm.auto import tqdm

from ecgaffect.model.finetune import (
    FinetuneConfig,
    embed,
    finetune,
    predict,
    predict_embeddings,
    train_baseline,
)
from ecgaffect.model.metrics import task_metrics
from ecgaffect.model.networks import TRANSFORM_NAMES
from ecgaffect.model.pretrain import PretrainConfig, evaluate_pretext, load_encoder, pretrain
from ecgaffect.model.training import config_digest, select_device

if TYPE_CHECKING:
    from ecgaffect.datasets.windows import WindowSet

log = logging.getLogger(__name__)

__all__ = [
    "COMPARISONS",
    "DEFAULT_FRACTIONS",
    "METRIC_NAMES",
    "PROTOCOLS",
    "PROTOCOL_LABELS",
    "EvalConfig",
    "Fold",
    "aggregate",
    "card_metrics",
    "describe_windowset",
    "label_fraction",
    "label_fraction_indices",
    "leave_one_subject_out",
    "make_folds",
    "pretext_accuracy",
    "ssl_vs_baseline",
    "subject_kfold",
    "window_kfold",
]

PROTOCOLS = ("subject-kfold", "loso", "window-kfold")
PROTOCOL_LABELS = {
    "subject-kfold": "subject-independent k-fold (folds grouped by subject)",
    "loso": "subject-independent leave-one-subject-out",
    "window-kfold": "window-level (subject-dependent) k-fold over shuffled windows (the paper's)",
}
COMPARISONS = ("ssl-vs-baseline", "label-fraction", "pretext")
DEFAULT_FRACTIONS = (0.01, 0.05, 0.10, 0.25, 0.50, 1.00)
METRIC_NAMES = ("accuracy", "f1_paper", "f1_macro_sklearn")
SSL = "self-supervised"
BASELINE = "fully-supervised"


# -- folds ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Fold:
    """One train/test split: sorted window indices."""

    index: int
    train_idx: np.ndarray
    test_idx: np.ndarray


def _check_k(k: int, n_groups: int, what: str) -> None:
    if isinstance(k, bool) or not isinstance(k, int) or k < 2:
        raise ValueError(f"n_folds must be an integer >= 2, got {k!r}")
    if k > n_groups:
        raise ValueError(f"n_folds={k} exceeds the number of {what} ({n_groups})")


def window_kfold(n_windows: int, n_folds: int = 10, seed: int = 1) -> list[Fold]:
    """The paper's k-fold over shuffled windows: **window-level (subject-dependent)**.

    Every window is a test window exactly once; fold sizes differ by at most one.
    """
    _check_k(n_folds, n_windows, "windows")
    order = np.random.default_rng(seed).permutation(n_windows)
    parts = np.array_split(order, n_folds)
    every = np.arange(n_windows)
    return [Fold(i, np.setdiff1d(every, p), np.sort(p)) for i, p in enumerate(parts)]


def subject_kfold(subjects: Sequence[str] | np.ndarray, n_folds: int = 10, seed: int = 1):
    """K folds grouped by subject (shuffled subjects, seeded): subject-independent."""
    subjects = np.asarray(subjects)
    unique = np.unique(subjects)
    _check_k(n_folds, len(unique), "subjects")
    shuffled = np.random.default_rng(seed).permutation(unique)
    folds = []
    for i, group in enumerate(np.array_split(shuffled, n_folds)):
        is_test = np.isin(subjects, group)
        folds.append(Fold(i, np.flatnonzero(~is_test), np.flatnonzero(is_test)))
    return folds


def leave_one_subject_out(subjects: Sequence[str] | np.ndarray) -> list[Fold]:
    """One fold per subject (in sorted subject order): subject-independent."""
    subjects = np.asarray(subjects)
    unique = np.unique(subjects)
    if len(unique) < 2:
        raise ValueError(f"leave-one-subject-out needs >= 2 subjects, got {len(unique)}")
    return [
        Fold(i, np.flatnonzero(subjects != s), np.flatnonzero(subjects == s))
        for i, s in enumerate(unique)
    ]


def make_folds(
    subjects: Sequence[str] | np.ndarray, protocol: str, n_folds: int = 10, seed: int = 1
) -> list[Fold]:
    """Folds of ``protocol`` for windows of ``subjects``.

    ``subject-kfold`` clips ``n_folds`` to the number of subjects with a warning.
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    subjects = np.asarray(subjects)
    if protocol == "window-kfold":
        return window_kfold(len(subjects), n_folds, seed)
    if protocol == "loso":
        return leave_one_subject_out(subjects)
    n_subjects = len(np.unique(subjects))
    if n_subjects < 2:
        raise ValueError(
            f"subject-independent evaluation needs >= 2 subjects, got {n_subjects}; "
            "use --protocol window-kfold"
        )
    if n_folds > n_subjects:
        log.warning("--folds %d clipped to the number of subjects (%d)", n_folds, n_subjects)
        n_folds = n_subjects
    return subject_kfold(subjects, n_folds, seed)


def label_fraction_indices(
    labels: Mapping[str, np.ndarray], fraction: float, seed: int = 1
) -> np.ndarray:
    """Sorted indices of a stratified, seeded, nested ``fraction`` of the labelled windows.

    Strata are the joint label combinations over all tasks (``-1`` = unlabelled for a task);
    windows unlabelled for every task are never picked. Each stratum keeps
    ``max(1, round(fraction · size))`` windows, taken in the order of one seeded permutation, so
    the subset for a smaller fraction is contained in the subset for a larger one.
    """
    if not (isinstance(fraction, float | int) and 0 < fraction <= 1):
        raise ValueError(f"fraction must be in (0, 1], got {fraction!r}")
    if not labels:
        raise ValueError("label fractions need at least one labelled task, got none")
    matrix = np.stack([np.asarray(a, dtype=np.int64) for a in labels.values()], axis=1)
    order = np.random.default_rng([seed, 271_828]).permutation(matrix.shape[0])
    labelled = order[(matrix[order] >= 0).any(axis=1)]
    if labelled.size == 0:
        raise ValueError("no labelled windows to take a fraction of")
    _, inverse = np.unique(matrix[labelled], axis=0, return_inverse=True)
    inverse = np.asarray(inverse).reshape(-1)
    picked = []
    for stratum in np.unique(inverse):
        members = labelled[inverse == stratum]  # in permutation order
        picked.append(members[: max(1, round(fraction * len(members)))])
    return np.sort(np.concatenate(picked))


# -- metrics --------------------------------------------------------------------------------
def _mean_std(values: list[float]) -> dict[str, Any]:
    """``{mean, std, values}``; std is the sample std (``ddof=1``), 0.0 for one value."""
    return {
        "mean": float(np.mean(values)),
        "std": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
        "values": values,
    }


def aggregate(per_fold: Sequence[Mapping[str, Mapping[str, Any]]]) -> dict[str, dict[str, Any]]:
    """``[{task: metrics}]`` over folds → ``{task: {metric: {mean, std, values}, ...}}``.

    ``std`` is the sample standard deviation (``ddof=1``; 0.0 for one fold); the confusion
    matrices are summed over folds. A task missing from a fold (no labelled test windows) is
    averaged over the folds that have it; ``n_folds`` says how many.
    """
    tasks: list[str] = []
    for fold in per_fold:
        tasks += [t for t in fold if t not in tasks]
    out: dict[str, dict[str, Any]] = {}
    for task in tasks:
        rows = [fold[task] for fold in per_fold if task in fold]
        entry: dict[str, Any] = {"n_folds": len(rows)}
        for metric in METRIC_NAMES:
            entry[metric] = _mean_std([float(r[metric]) for r in rows])
        cms = [np.asarray(r["confusion_matrix"]) for r in rows]
        entry["confusion_matrix"] = np.sum(cms, axis=0).tolist()
        out[task] = entry
    return out


# -- configuration --------------------------------------------------------------------------
@dataclass(frozen=True)
class EvalConfig:
    """Everything that defines an evaluation run (saved in ``config.json``)."""

    protocol: str = "subject-kfold"
    n_folds: int = 10
    seed: int = 1
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    tasks: tuple[str, ...] | None = None
    encoder_path: str | None = None
    encoder_note: str = ""
    fractions: tuple[float, ...] = DEFAULT_FRACTIONS
    baseline: bool = True

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {PROTOCOLS}, got {self.protocol!r}")
        if isinstance(self.n_folds, bool) or not isinstance(self.n_folds, int) or self.n_folds < 2:
            raise ValueError(f"n_folds must be an integer >= 2, got {self.n_folds!r}")
        for f in self.fractions:
            if not 0 < f <= 1:
                raise ValueError(f"label fractions must be in (0, 1], got {f!r}")
        if self.encoder_path is not None and not Path(self.encoder_path).exists():
            raise FileNotFoundError(f"--encoder {self.encoder_path!r} does not exist")

    def to_dict(self) -> dict[str, Any]:
        return {
            "protocol": self.protocol,
            "protocol_label": PROTOCOL_LABELS[self.protocol],
            "n_folds": self.n_folds,
            "seed": self.seed,
            "pretrain": self.pretrain.to_dict(),
            "finetune": self.finetune.to_dict(),
            "tasks": list(self.tasks) if self.tasks else None,
            "encoder_path": self.encoder_path,
            "encoder_note": self.encoder_note,
            "fractions": list(self.fractions),
            "baseline": self.baseline,
        }


def describe_windowset(ws: WindowSet) -> dict[str, Any]:
    """Data description for results/config: fingerprint, label scheme, sizes, class counts."""
    meta = dict(getattr(ws, "meta", {}) or {})
    counts = {
        t: np.bincount(np.asarray(y)[np.asarray(y) >= 0], minlength=len(ws.classes[t])).tolist()
        for t, y in ws.labels.items()
    }
    return {
        "fingerprint": ws.fingerprint(),
        "n_windows": len(ws),
        "n_subjects": int(len(np.unique(ws.subject))),
        "datasets": meta.get("datasets", []),
        "label_scheme": getattr(ws, "label_scheme", None) or meta.get("scheme"),
        "label_scheme_description": meta.get("scheme_description"),
        "tasks": {t: list(c) for t, c in ws.classes.items()},
        "class_counts": counts,
        "preprocessing": (
            prep.to_dict()
            if (prep := getattr(ws, "preprocessing", None)) is not None
            else meta.get("preprocessing")
        ),
        "hop_s": meta.get("hop_s"),
    }


def _encoder_info(config: EvalConfig, meta: Mapping[str, Any] | None) -> dict[str, Any]:
    """``meta``: the shared encoder's metadata (:func:`load_encoder`); None when per fold."""
    if config.encoder_path is None or meta is None:
        return {
            "mode": "per-fold",
            "label": "pretext network retrained on each fold's training windows (the paper's)",
        }
    data = str(meta.get("data", "")) or "unknown data"
    label = f"shared encoder, pretrained on {data}"
    if config.encoder_note:
        label += f" ({config.encoder_note})"
    label += " — test subjects may have been seen during pretraining"
    return {
        "mode": "shared",
        "path": str(config.encoder_path),
        "pretrained_on": data,
        "epochs_trained": meta.get("epochs_trained"),
        "label": label,
    }


# -- the fold loop --------------------------------------------------------------------------
FoldFn = Callable[[Any, Any, Path, EvalConfig, Any], dict[str, Any]]


def _run_folds(
    kind: str,
    ws: WindowSet,
    config: EvalConfig,
    out_dir: str | Path,
    fold_fn: FoldFn,
    *,
    data_description: str,
    progress: bool,
) -> dict[str, Any]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if len(ws) == 0:
        raise ValueError("evaluation needs windows, got an empty window set")
    data = describe_windowset(ws)
    data["description"] = data_description
    folds = make_folds(ws.subject, config.protocol, config.n_folds, config.seed)
    shared, meta = load_encoder(config.encoder_path) if config.encoder_path else (None, None)
    encoder = _encoder_info(config, meta)
    digest = config_digest({"kind": kind, **config.to_dict(), "data": data["fingerprint"]})
    fold_results = []
    for fold in tqdm(folds, desc=f"{kind} folds", unit="fold", disable=not progress):
        fdir = out / "folds" / f"fold-{fold.index:02d}"
        done = fdir / "result.json"
        if done.is_file():
            prev = json.loads(done.read_text())
            if prev.get("config_digest") == digest:
                log.info("fold %d already finished; reusing %s", fold.index, done)
                fold_results.append(prev)
                continue
        train, test = ws.subset(fold.train_idx), ws.subset(fold.test_idx)
        res = fold_fn(train, test, fdir, config, shared)
        res.update(
            {
                "fold": fold.index,
                "n_train": int(len(fold.train_idx)),
                "n_test": int(len(fold.test_idx)),
                "test_subjects": sorted({str(s) for s in test.subject}),
                "config_digest": digest,
            }
        )
        fdir.mkdir(parents=True, exist_ok=True)
        done.write_text(json.dumps(res, indent=2))
        fold_results.append(res)
    overlap = [
        r["fold"]
        for r, f in zip(fold_results, folds, strict=True)
        if set(np.unique(ws.subject[f.train_idx])) & set(r["test_subjects"])
    ]
    return {
        "kind": kind,
        "protocol": {
            "name": config.protocol,
            "label": PROTOCOL_LABELS[config.protocol],
            "subject_independent": config.protocol != "window-kfold",
            "n_folds": len(folds),
            "seed": config.seed,
            "folds_sharing_subjects": overlap,
        },
        "encoder": encoder,
        "data": data,
        "folds": fold_results,
    }


def _fold_encoder(train, fdir: Path, config: EvalConfig, shared, progress=False):
    """(encoder, pretext network or None) for one fold: shared, or pretrained on its windows."""
    if shared is not None:
        return shared, None
    res = pretrain(
        train.x,
        config.pretrain,
        fdir / "pretrain",
        progress=progress,
        data_description=f"fold training windows ({len(train)})",
    )
    return res.encoder, res.network


def _device_of(network: torch.nn.Module) -> torch.device:
    """The device a trained network's parameters live on (pretrain() leaves it there)."""
    return next(network.parameters()).device


def _train_and_score(
    train, test, encoder, fdir: Path, config: EvalConfig, tasks, tag: str, embedded=None
):
    """Metrics per model and task on ``test`` for models trained on ``train``.

    ``embedded``: ``(train embeddings, test embeddings)`` through ``encoder``, computed once
    by the caller; the self-supervised heads then train and are scored on them.
    """
    models: dict[str, dict[str, Any]] = {}
    ft = finetune(
        train,
        encoder,
        dataclasses.replace(config.finetune, freeze_encoder=True),
        fdir / f"ssl{tag}",
        tasks=tasks,
        progress=False,
        embeddings=None if embedded is None else embedded[0],
    )
    if embedded is None:
        probs = predict(ft.model, test.x, device=config.finetune.device)
    else:
        probs = predict_embeddings(ft.model, embedded[1], device=config.finetune.device)
    models[SSL] = task_metrics(probs, test.labels, test.classes)
    if config.baseline:
        base = train_baseline(
            train,
            dataclasses.replace(config.finetune, freeze_encoder=False),
            fdir / f"baseline{tag}",
            tasks=tasks,
            progress=False,
        )
        probs = {
            t: predict(r.model, test.x, device=config.finetune.device)[t] for t, r in base.items()
        }
        models[BASELINE] = task_metrics(probs, test.labels, test.classes)
    return models


def _trainable_tasks(train, config: EvalConfig) -> list[str]:
    tasks = list(config.tasks) if config.tasks else list(train.labels)
    for t in tasks:
        if t not in train.labels:
            raise ValueError(f"task {t!r} is not in the data; tasks: {list(train.labels)}")
    usable = [t for t in tasks if np.any(np.asarray(train.labels[t]) >= 0)]
    if not usable:
        raise ValueError(f"no labelled training windows for the tasks {tasks}")
    return usable


def _summaries(fold_results: list[dict], key: str = "models") -> dict[str, Any]:
    names: list[str] = []
    for r in fold_results:
        names += [m for m in r[key] if m not in names]
    return {m: aggregate([r[key][m] for r in fold_results if m in r[key]]) for m in names}


def ssl_vs_baseline(
    ws: WindowSet,
    config: EvalConfig = EvalConfig(),  # noqa: B008 (frozen)
    out_dir: str | Path = "runs/evaluate",
    *,
    data_description: str = "",
    progress: bool = True,
) -> dict[str, Any]:
    """Comparison 1: self-supervised (frozen transferred encoder) vs fully-supervised baseline.

    Returns a results dict with keys ``kind``, ``protocol`` (name, label,
    subject_independent, n_folds, seed, folds_sharing_subjects), ``encoder`` (mode, label),
    ``data`` (fingerprint, label_scheme, tasks, ...), ``folds`` (per fold: ``models`` →
    model → task → metrics, ``pretext`` when pretrained per fold, sizes, test subjects) and
    ``summary`` (model → task → metric → mean/std/values, summed confusion matrix).
    """

    def fold_fn(train, test, fdir, cfg, shared):
        encoder, network = _fold_encoder(train, fdir, cfg, shared)
        res = {
            "models": _train_and_score(
                train, test, encoder, fdir, cfg, _trainable_tasks(train, cfg), ""
            )
        }
        if network is not None:
            res["pretext"] = evaluate_pretext(
                network, test.x, seed=cfg.seed, device=_device_of(network)
            )
        return res

    results = _run_folds(
        "ssl-vs-baseline",
        ws,
        config,
        out_dir,
        fold_fn,
        data_description=data_description,
        progress=progress,
    )
    results["summary"] = _summaries(results["folds"])
    if any("pretext" in r for r in results["folds"]):
        results["pretext_summary"] = pretext_summary(results["folds"])
    return results


def label_fraction(
    ws: WindowSet,
    config: EvalConfig = EvalConfig(),  # noqa: B008 (frozen)
    out_dir: str | Path = "runs/evaluate",
    *,
    data_description: str = "",
    progress: bool = True,
) -> dict[str, Any]:
    """Comparison 2: accuracy vs the fraction of labelled training windows, for both models.

    Pretraining (per fold) uses all the fold's training windows, unlabelled; the heads and the
    baseline see the stratified, nested subset of :func:`label_fraction_indices`. Adds
    ``fractions`` and ``fraction_summary`` (fraction → model → task → metric summary).
    """

    def fold_fn(train, test, fdir, cfg, shared):
        encoder, _ = _fold_encoder(train, fdir, cfg, shared)
        tasks = _trainable_tasks(train, cfg)
        device = select_device(cfg.finetune.device)
        train_emb = embed(encoder, train.x, device=device)  # once for every fraction
        test_emb = embed(encoder, test.x, device=device)
        per_fraction = {}
        for frac in cfg.fractions:
            idx = label_fraction_indices({t: train.labels[t] for t in tasks}, frac, cfg.seed)
            sub = train.subset(idx)
            usable = [t for t in tasks if np.any(sub.labels[t] >= 0)]
            per_fraction[f"{frac:g}"] = {
                "n_labelled": int(len(idx)),
                "models": _train_and_score(
                    sub, test, encoder, fdir, cfg, usable, f"-{frac:g}", (train_emb[idx], test_emb)
                ),
            }
        return {"fractions": per_fraction}

    results = _run_folds(
        "label-fraction",
        ws,
        config,
        out_dir,
        fold_fn,
        data_description=data_description,
        progress=progress,
    )
    results["fractions"] = [float(f) for f in config.fractions]
    results["fraction_summary"] = {
        f"{frac:g}": _summaries([r["fractions"][f"{frac:g}"] for r in results["folds"]])
        for frac in config.fractions
    }
    results["n_labelled"] = {
        f"{frac:g}": [r["fractions"][f"{frac:g}"]["n_labelled"] for r in results["folds"]]
        for frac in config.fractions
    }
    return results


def pretext_accuracy(
    ws: WindowSet,
    config: EvalConfig = EvalConfig(),  # noqa: B008 (frozen)
    out_dir: str | Path = "runs/evaluate",
    *,
    data_description: str = "",
    progress: bool = True,
) -> dict[str, Any]:
    """Comparison 3: pretext accuracy per transformation on each fold's held-out windows.

    The pretext network is retrained per fold (a shared encoder has no pretext heads and may
    have seen the test windows, so ``encoder_path`` is refused). Adds ``pretext_summary``
    (transformation → mean/std/values, plus ``mean`` and ``recognition_acc``).
    """
    if config.encoder_path is not None:
        raise ValueError(
            "pretext accuracy is measured on windows held out from pretraining, so the "
            "pretext network is retrained per fold; --encoder is not supported here"
        )

    def fold_fn(train, test, fdir, cfg, shared):
        _, network = _fold_encoder(train, fdir, cfg, None)
        return {
            "pretext": evaluate_pretext(network, test.x, seed=cfg.seed, device=_device_of(network))
        }

    results = _run_folds(
        "pretext",
        ws,
        config,
        out_dir,
        fold_fn,
        data_description=data_description,
        progress=progress,
    )
    results["pretext_summary"] = pretext_summary(results["folds"])
    return results


def pretext_summary(fold_results: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Mean/std over folds of the held-out pretext accuracy per transformation."""
    rows = [r["pretext"] for r in fold_results if "pretext" in r]
    out: dict[str, Any] = {}
    for key in [*TRANSFORM_NAMES, "mean", "recognition_acc"]:
        src = "recognition_acc" if key == "recognition_acc" else f"acc/{key}"
        values = [float(r[src]) for r in rows if src in r and math.isfinite(r[src])]
        if values:
            out[key] = _mean_std(values)
    return out


def card_metrics(results: Mapping[str, Any]) -> dict[str, Any]:
    """The model-card ``metrics`` record of an evaluation's results (names the protocol)."""
    summary = results.get("summary") or {}
    model = SSL if SSL in summary else next(iter(summary), None)
    if model is None:
        raise ValueError("these results have no per-task summary (run ssl-vs-baseline)")
    tasks = {
        task: {
            **{f"{m}_mean": e[m]["mean"] for m in METRIC_NAMES},
            **{f"{m}_std": e[m]["std"] for m in METRIC_NAMES},
            "n_folds": e["n_folds"],
        }
        for task, e in summary[model].items()
    }
    proto = results["protocol"]
    return {
        "protocol": f"{proto['label']}, {proto['n_folds']} folds, seed {proto['seed']}",
        "subject_independent": bool(proto["subject_independent"]),
        "model": model,
        "encoder": results.get("encoder", {}).get("label", ""),
        "data_fingerprint": results.get("data", {}).get("fingerprint"),
        "label_scheme": results.get("data", {}).get("label_scheme"),
        "tasks": tasks,
    }


RUNNERS = {
    "ssl-vs-baseline": ssl_vs_baseline,
    "label-fraction": label_fraction,
    "pretext": pretext_accuracy,
}
