"""The one shape every loader yields: a :class:`Session` of single-lead ECG with labels.

A session is one continuous recording (an AMIGOS trial, a SWELL block, a WESAD subject, one of
our own recordings). Labels live on :class:`Segment` spans inside it, so a SWELL block with
per-minute conditions or a WESAD recording with per-sample conditions is still one continuous
signal: filtering runs over the whole recording and windows take the label of the segment they
fall in completely.

Label values are kept *raw* (a 1-9 SAM rating stays 7.0, a SWELL condition stays ``"T"``); a
:class:`LabelScheme` turns them into classes, and the scheme's name is recorded in every result.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

__all__ = [
    "SCHEMES",
    "Event",
    "LabelScheme",
    "Segment",
    "Session",
    "get_scheme",
]

LabelValue = float | int | str

#: Units a session's ``ecg`` may be in; scale factors to microvolts.
UNITS_TO_UV = {"uV": 1.0, "mV": 1000.0, "V": 1e6, "au": 1.0}


@dataclass(frozen=True)
class Event:
    """A point event inside a session (a stimulus onset, a marker)."""

    time_s: float
    label: str


@dataclass(frozen=True)
class Segment:
    """A labelled span ``[start_s, end_s)`` of a session, in seconds from its first sample."""

    start_s: float
    end_s: float
    labels: Mapping[str, LabelValue]

    def __post_init__(self) -> None:
        if not (math.isfinite(self.start_s) and math.isfinite(self.end_s)):
            raise ValueError(f"Segment bounds must be finite, got {self.start_s}..{self.end_s}")
        if self.end_s <= self.start_s:
            raise ValueError(
                f"Segment end_s ({self.end_s}) must be greater than start_s ({self.start_s})"
            )


@dataclass
class Session:
    """One continuous single-lead ECG recording with its labels.

    Attributes:
        dataset: ``"swell"``, ``"amigos"``, ``"dreamer"``, ``"wesad"``, ``"synthetic"``,
            ``"recording"``...
        subject: subject identifier, unique within the dataset (``"PP01"``, ``"P07"``).
        trial: trial / block / condition identifier, unique within the subject.
        ecg: 1-D float array of samples.
        fs_hz: sampling rate of ``ecg`` in Hz.
        units: one of ``UNITS_TO_UV`` (``"uV"``, ``"mV"``, ``"V"``, ``"au"``).
        segments: labelled spans; an empty tuple means unlabelled (fine for pretraining).
        events: point events (stimulus onsets, markers).
        provenance: where the data came from (file paths, channel chosen, notes, problems).
        start_time: wall-clock time of the first sample, when known.
    """

    dataset: str
    subject: str
    trial: str
    ecg: np.ndarray
    fs_hz: float
    units: str = "uV"
    segments: tuple[Segment, ...] = ()
    events: tuple[Event, ...] = ()
    provenance: dict[str, Any] = field(default_factory=dict)
    start_time: datetime | None = None

    def __post_init__(self) -> None:
        ecg = np.asarray(self.ecg)
        if ecg.ndim != 1:
            raise ValueError(
                f"Session {self.key}: ecg must be 1-D (one lead), got shape {ecg.shape}"
            )
        if not np.issubdtype(ecg.dtype, np.floating):
            ecg = ecg.astype(np.float64)
        self.ecg = ecg
        if not (isinstance(self.fs_hz, int | float) and math.isfinite(self.fs_hz)) or (
            self.fs_hz <= 0
        ):
            raise ValueError(
                f"Session {self.key}: fs_hz must be a positive number, got {self.fs_hz!r}"
            )
        if self.units not in UNITS_TO_UV:
            raise ValueError(
                f"Session {self.key}: units must be one of {sorted(UNITS_TO_UV)}, "
                f"got {self.units!r}"
            )
        self.segments = tuple(self.segments)
        self.events = tuple(self.events)

    @property
    def key(self) -> str:
        """``dataset/subject/trial``, unique across a corpus."""
        return f"{self.dataset}/{self.subject}/{self.trial}"

    @property
    def duration_s(self) -> float:
        return self.ecg.shape[0] / float(self.fs_hz)

    def ecg_uv(self) -> np.ndarray:
        """The samples in microvolts (``au`` is returned unscaled)."""
        return self.ecg * UNITS_TO_UV[self.units]

    def label_names(self) -> set[str]:
        names: set[str] = set()
        for seg in self.segments:
            names.update(seg.labels)
        return names


# ---------------------------------------------------------------------------------------
# Label schemes
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LabelScheme:
    """Maps raw label values of one task to class indices.

    ``encode`` returns ``-1`` for a value the scheme cannot place (missing rating, a
    relaxation minute without a rating, ...); such windows are left out of that task.
    """

    name: str
    description: str

    def classes(self, task: str, dataset: str) -> list[str]:
        return _scheme_classes(self.name, task, dataset)

    def encode(self, task: str, dataset: str, value: LabelValue | None) -> int:
        return _scheme_encode(self.name, task, dataset, value)


#: Rating scale (min, max) per dataset for arousal/valence/dominance/liking.
RATING_SCALES: dict[str, tuple[int, int]] = {
    "amigos": (1, 9),
    "swell": (1, 9),
    "dreamer": (1, 5),
    "wesad": (1, 9),
    "synthetic": (1, 9),
    "recording": (1, 9),
}
RATED_TASKS = ("arousal", "valence", "dominance", "liking")
WESAD_STATES = ("baseline", "stress", "amusement", "meditation")
#: EEGMAT ``stress`` values -> class (rest 0, mental arithmetic 1) under binary/condition.
EEGMAT_STRESS = {"rest": 0, "arithmetic": 1}
#: drivedb ``stress`` values (Healey & Picard 2005: rest low, highway medium, city high).
DRIVEDB_STRESS = ("rest", "highway", "city")
#: Datasets whose ``condition`` scheme names its stress classes after the conditions.
CONDITION_CLASSES: dict[str, tuple[str, ...]] = {
    "eegmat": ("rest", "arithmetic"),
    "drivedb": DRIVEDB_STRESS,
}


def _scale(dataset: str) -> tuple[int, int]:
    return RATING_SCALES.get(dataset, (1, 9))


def _scheme_classes(scheme: str, task: str, dataset: str) -> list[str]:
    if task in RATED_TASKS:
        lo, hi = _scale(dataset)
        if scheme == "binary":
            return ["low", "high"]
        if scheme == "paper":
            return [str(v) for v in range(lo, hi + 1)]
    if task == "stress":
        if scheme == "condition" and dataset in CONDITION_CLASSES:
            return list(CONDITION_CLASSES[dataset])
        if scheme in ("binary", "condition"):
            return ["no-stress", "stress"]
        if scheme == "paper":
            return ["N", "I", "T"]
    if task == "affect_state":
        return list(WESAD_STATES)
    if task == "condition":
        if dataset == "synthetic":  # names of datasets.synthetic.DEFAULT_CONDITIONS
            return ["LA-LV", "LA-HV", "HA-LV", "HA-HV"]
        return ["R", "N", "I", "T"]
    raise ValueError(
        f"label scheme {scheme!r} has no classes for task {task!r} of dataset {dataset!r}"
    )


def _is_missing(value: LabelValue | None) -> bool:
    return value is None or (isinstance(value, float) and not math.isfinite(value))


def _scheme_encode(scheme: str, task: str, dataset: str, value: LabelValue | None) -> int:
    if _is_missing(value):
        return -1
    if task in RATED_TASKS:
        lo, hi = _scale(dataset)
        v = float(value)  # type: ignore[arg-type]
        if v < lo or v > hi:
            return -1
        if scheme == "binary":
            return int(v > (lo + hi) / 2.0)
        if scheme == "paper":
            return int(min(hi, max(lo, round(v)))) - lo
    elif task == "stress":
        # SWELL conditions: N neutral, I interruptions, T time pressure, R relaxation.
        if isinstance(value, str):
            if dataset == "drivedb" and scheme in ("binary", "condition"):
                if scheme == "binary":  # rest vs city driving; highway dropped
                    return {"rest": 0, "city": 1}.get(value, -1)
                return DRIVEDB_STRESS.index(value) if value in DRIVEDB_STRESS else -1
            if scheme in ("binary", "condition"):
                if value in EEGMAT_STRESS:  # EEGMAT: rest vs mental arithmetic
                    return EEGMAT_STRESS[value]
                return {"N": 0, "R": -1, "I": 1, "T": 1}.get(value, -1)
            if scheme == "paper":
                return {"N": 0, "I": 1, "T": 2}.get(value, -1)
        else:
            return int(value)  # already a class index (synthetic)
    elif task == "affect_state":
        if isinstance(value, str):
            return WESAD_STATES.index(value) if value in WESAD_STATES else -1
        # WESAD numeric codes: 1 baseline, 2 stress, 3 amusement, 4 meditation.
        code = int(value)
        return code - 1 if 1 <= code <= 4 else -1
    elif task == "condition":
        if isinstance(value, str):
            return {"R": 0, "N": 1, "I": 2, "T": 3}.get(value, -1)
        return int(value)
    raise ValueError(
        f"label scheme {scheme!r} cannot encode task {task!r} (value {value!r}) "
        f"of dataset {dataset!r}"
    )


SCHEMES: dict[str, LabelScheme] = {
    "binary": LabelScheme(
        "binary",
        "high/low at the scale midpoint (> 5 on 1-9, > 3 on 1-5); "
        "SWELL stress = N vs {T, I} (R dropped); drivedb = rest vs city (highway dropped)",
    ),
    "paper": LabelScheme(
        "paper",
        "integer rating levels as classes (the authors' public code); "
        "SWELL stress = 3 classes N/I/T",
    ),
    "condition": LabelScheme(
        "condition",
        "SWELL condition-based stress: N vs {T, I}, relaxation minutes dropped; "
        "EEGMAT: rest vs arithmetic; drivedb: rest/highway/city (low/medium/high)",
    ),
}


def get_scheme(name: str) -> LabelScheme:
    try:
        return SCHEMES[name]
    except KeyError:
        raise ValueError(
            f"unknown label scheme {name!r}; choose one of {sorted(SCHEMES)}"
        ) from None
