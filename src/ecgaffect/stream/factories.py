"""Factories for the live path: the scorer, the source and the sinks a live run asks for.

Used by ``ecgaffect live`` and the GUI; each piece is a module-level function so tests can
swap one (e.g. :func:`polar_source` for the fake strap). Sources, outlets, the recorder and
the scorer are imported lazily, so a live run works with whatever parts are installed and
says clearly which one is missing.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from ecgaffect.model import default_model_path as _packaged_model_path
from ecgaffect.model import resolve_model
from ecgaffect.stream.console import ConsoleSink
from ecgaffect.stream.pipeline import Pipeline
from ecgaffect.stream.sinks import Sink

if TYPE_CHECKING:
    from ecgaffect.datasets.session import Session
    from ecgaffect.model.scorer import Scorer
    from ecgaffect.stream.outlets import MarkerInlet
    from ecgaffect.stream.sources.base import Source
    from ecgaffect.stream.sources.lsl import LslSource
    from ecgaffect.stream.sources.polar import PolarH10Source

__all__ = [
    "console_marks",
    "default_model_path",
    "load_dataset_session",
    "load_replay_file",
    "load_scorer",
    "lsl_source",
    "make_marker_inlet",
    "make_pipeline",
    "make_sinks",
    "make_source",
    "model_info",
    "parse_channel",
    "polar_source",
]

log = logging.getLogger(__name__)


def default_model_path() -> Path | None:
    """The default model (:func:`ecgaffect.model.default_model_path`: the validated stress
    model), or None.
    """
    return _packaged_model_path()


def load_scorer(path: str | Path | None) -> Scorer:
    """Load ``path`` with :class:`ecgaffect.model.scorer.Scorer`: a model file, a packaged
    model's name (``stress``, ``demo``) or ``None`` for the default (the validated stress
    model; :func:`ecgaffect.model.resolve_model`).
    """
    resolved = resolve_model(path)
    from ecgaffect.model.scorer import Scorer

    return Scorer.load(resolved)


def parse_channel(value: str | None) -> str | int | None:
    """``--ecg-channel``: an index when it is a whole number, else a label."""
    if value is None:
        return None
    return int(value) if value.strip().lstrip("-").isdigit() else value


def polar_source(address: str | None) -> PolarH10Source:
    """The Polar H10 source (tests replace this to inject the fake bleak backend)."""
    from ecgaffect.stream.sources.polar import PolarH10Source

    return PolarH10Source(address)


def lsl_source(name: str, channel: str | int | None) -> LslSource:
    """The LSL inlet source for stream ``name``."""
    from ecgaffect.stream.sources.lsl import LslSource

    return LslSource(name, channel=channel)


def load_replay_file(
    path: Path,
    channel: str | int | None,
    *,
    fs_hz: float | None = None,
    units: str | None = None,
) -> Session:
    """A recording file as a :class:`~ecgaffect.datasets.session.Session`, through
    :func:`ecgaffect.io.load_session` (every format it reads; ``channel`` picks the ECG
    channel or column, ``fs_hz`` and ``units`` say what a CSV/NPY file does not).
    """
    if not path.exists():
        raise FileNotFoundError(f"--replay {str(path)!r}: no such file")
    from ecgaffect.io import load_session

    return load_session(path, channel=channel, fs_hz=fs_hz, units=units)


def load_dataset_session(name: str, root: Path | None, key: str | None) -> Session:
    """Session ``key`` of dataset ``name`` under ``root`` (``datasets.registry.load_dataset``).

    ``key`` is ``dataset/subject/trial`` or ``subject/trial``.
    """
    if root is None or key is None:
        raise ValueError(
            f"--replay-dataset {name!r} needs --root PATH (the dataset folder) and "
            "--session KEY ('subject/trial'; `ecgaffect datasets` lists them)"
        )
    if not root.exists():
        raise FileNotFoundError(f"--root {str(root)!r}: no such folder")
    from ecgaffect.datasets.registry import load_dataset

    sessions = load_dataset(name, root)
    for s in sessions:
        if key in (s.key, f"{s.subject}/{s.trial}"):
            return s
    keys = [s.key for s in sessions]
    shown = ", ".join(keys[:10]) + (f", ... ({len(keys)} in all)" if len(keys) > 10 else "")
    raise ValueError(
        f"--session {key!r}: no such session in {name} at {str(root)!r}; "
        f"available: {shown or 'none'}"
    )


def make_source(
    *,
    polar_address: str | None = None,
    lsl_name: str | None = None,
    replay_file: Path | None = None,
    replay_dataset: str | None = None,
    root: Path | None = None,
    session_key: str | None = None,
    channel: str | int | None = None,
    speed: float = 1.0,
    fs_hz: float | None = None,
    units: str | None = None,
) -> Source:
    """The source asked for (not opened yet).

    A replay of ``replay_file`` or of session ``session_key`` of dataset ``replay_dataset``
    under ``root`` (at ``speed``), else the LSL stream ``lsl_name``, else the Polar H10 at
    ``polar_address`` (None: the first one found). ``channel`` picks the ECG channel of an
    LSL stream or a replayed file; ``fs_hz`` and ``units`` the sampling rate and sample
    unit of a replayed file that does not state them (CSV, NPY).
    """
    if replay_file is not None or replay_dataset is not None:
        if not (speed > 0):
            raise ValueError(f"--speed must be > 0 (1 = real time, inf = flat out), got {speed}")
        if replay_file is not None:
            session = load_replay_file(replay_file, channel, fs_hz=fs_hz, units=units)
        else:
            assert replay_dataset is not None
            session = load_dataset_session(replay_dataset, root, session_key)
        from ecgaffect.stream.sources.replay import ReplaySource

        return ReplaySource(session, speed=speed)
    if lsl_name is not None:
        return lsl_source(lsl_name, channel)
    return polar_source(polar_address)


def model_info(scorer: Any) -> dict[str, Any]:
    """What the affect outlet says about the model: name, rate, window, scheme, and per task
    its validation (``validation``: :meth:`~ecgaffect.model.card.ModelCard.output_validation`).
    """
    card = scorer.card
    info: dict[str, Any] = {"name": getattr(card, "name", "model")}
    for key in ("fs_hz", "window_s", "normalization", "label_scheme", "demo", "training_data"):
        value = getattr(card, key, None)
        if value is not None and value != "" and value != {}:
            info[key] = value
    if callable(getattr(card, "output_validation", None)):
        info["validation"] = {t: card.output_validation(t) for t in card.tasks}
    return info


def console_marks(card: Any) -> tuple[list[str], str, list[str]]:
    """What the console line marks: the tasks not validated, the footnote for their ``*``,
    and the lines printed above the first score (:meth:`ModelCard.validation_brief`).
    """
    if not callable(getattr(card, "output_validation", None)):
        return [], "", []
    unvalidated = [t for t in card.tasks if card.output_validation(t)["validated"] != "yes"]
    if getattr(card, "demo", False):
        footnote = "unvalidated demo head"
    elif unvalidated and all(card.output_validation(t).get("note", "").startswith("personal")
                             for t in unvalidated):  # fmt: skip
        footnote = "personal model, not validated on others"
    else:
        footnote = "not validated"
    header = [f"model {card.name}: {line}" for line in card.validation_brief()]
    return unvalidated, footnote, header


def make_sinks(
    scorer: Any,
    source: Any,
    out: TextIO,
    *,
    record: Path | None = None,
    outlet: bool = True,
    outlet_name: str = "ecgaffect-affect",
    publish_ecg: str | None = None,
) -> list[Sink]:
    """Console line, XDF recorder (``record``), LSL affect outlet (``outlet``) and raw ECG
    outlet (``publish_ecg``: its stream name). ``source`` is open, so its rate is known.
    """
    classes = {t: list(scorer.classes(t)) for t in scorer.tasks}
    unvalidated, footnote, header = console_marks(scorer.card)
    sinks: list[Sink] = [
        ConsoleSink(out, unvalidated=unvalidated, footnote=footnote, header=header)
    ]
    try:
        if record is not None:
            from ecgaffect.stream.recorder import XdfRecorder

            sinks.append(
                XdfRecorder(
                    record,
                    ecg_fs_hz=float(source.fs_hz),
                    score_classes=classes,
                    metadata={
                        "source": str(source.name),
                        "model": str(getattr(scorer.card, "name", "")),
                    },
                    timestamp_scale=getattr(source, "timestamp_scale", 1.0),
                )
            )
        if outlet or publish_ecg:
            from ecgaffect.stream import outlets
        if outlet:
            sinks.append(
                outlets.AffectOutlet(classes, name=outlet_name, model_info=model_info(scorer))
            )
        if publish_ecg:
            sinks.append(outlets.EcgOutlet(float(source.fs_hz), name=publish_ecg))
    except BaseException:
        for sink in sinks:
            sink.close()
        raise
    return sinks


def make_pipeline(source: Any, scorer: Any, *, hop_s: float, sinks: list[Sink]) -> Pipeline:
    """The live :class:`~ecgaffect.stream.pipeline.Pipeline` (tests swap in a faster one)."""
    return Pipeline(source, scorer, hop_s=hop_s, sinks=sinks)


def make_marker_inlet(pipeline: Pipeline, name: str | None) -> MarkerInlet:
    """An LSL marker inlet (any marker stream, or the one named ``name``) whose markers go
    to every sink of ``pipeline``.
    """
    from ecgaffect.stream.outlets import MarkerInlet

    return MarkerInlet(pipeline.add_marker, name=name or None)
