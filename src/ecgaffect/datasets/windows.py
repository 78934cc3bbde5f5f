"""Labelled 10 s windows from sessions: the training/evaluation input of every model.

:func:`make_windowset` runs each :class:`~ecgaffect.datasets.session.Session` through the one
signal path (:mod:`ecgaffect.signal`): validated, converted to microvolts, resampled to 256 Hz
and high-passed as one continuous signal; then z-scored with the robust statistics of *all* of
that subject's filtered sessions together (the paper's per-subject normalisation, or the causal
calibrated form when ``config.normalization == "calibrated"``); then cut into windows at
``hop_s``. A window takes the labels of the segment that contains it completely; windows that
straddle a segment boundary are dropped, and sessions without segments give unlabelled windows
(label ``-1`` for every task), which pretraining can still use.

A :class:`WindowSet` saves to a folder (``x.npy`` is memory-mappable) and has a stable
:meth:`~WindowSet.fingerprint` so results can name exactly the data they came from.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from ecgaffect.datasets.session import UNITS_TO_UV, Session, get_scheme
from ecgaffect.signal import (
    PreprocessConfig,
    highpass_ecg,
    normalize_calibrated,
    resample_ecg,
    resample_factors,
    robust_stats,
    robust_zscore,
    validate_ecg,
    window_starts,
)

__all__ = [
    "ALIGNMENTS",
    "FORMAT_VERSION",
    "VOLATILE_META",
    "WindowSet",
    "make_windowset",
    "resampled_n",
    "window_grid",
]

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
_ARRAYS = ("x", "labels", "subject", "session", "start_s")
#: Tolerance (s) when deciding whether a window lies inside a segment.
_EDGE_TOL_S = 1e-9
#: Window grids of labelled sessions: ``"segment"`` starts windows at each segment's start,
#: ``"session"`` uses one grid from the session's first sample (windows must fit a segment).
ALIGNMENTS = ("segment", "session")
#: Meta keys :meth:`WindowSet.fingerprint` ignores (provenance of this copy, not content).
VOLATILE_META = ("cache", "fingerprint", "source")


@dataclass
class WindowSet:
    """Windows and their labels, one row per window.

    Attributes:
        x: float32 ``[n, window_n]`` preprocessed windows.
        labels: task -> int64 ``[n]`` class index, ``-1`` where the window has no label.
        classes: task -> class names (index = class index).
        subject: str ``[n]`` ``"dataset/subject"`` (unique across datasets, so folds by
            subject never merge two people who share an id in different datasets).
        session: str ``[n]`` :attr:`Session.key` of the window's session.
        start_s: float64 ``[n]`` window start in seconds from the session's first sample.
        meta: hop, alignment, datasets, skipped sessions, scheme description, ... and the
            JSON form of the two fields below (``"preprocessing"``, ``"fs_hz"``,
            ``"window_s"``, ``"scheme"``), written from them for readers of plain meta and
            the saved ``meta.json``.
        preprocessing: the signal path the windows went through (``fs_hz``, ``window_s``,
            normalisation, ...); ``None`` for windows of unknown origin. Default: read from
            ``meta["preprocessing"]`` (a set saved by an earlier ecgaffect).
        label_scheme: name of the label scheme the classes come from (``"binary"``, ...);
            ``None`` when unknown. Default: ``meta["scheme"]``.
    """

    x: np.ndarray
    labels: dict[str, np.ndarray]
    classes: dict[str, list[str]]
    subject: np.ndarray
    session: np.ndarray
    start_s: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)
    preprocessing: PreprocessConfig | None = None
    label_scheme: str | None = None

    def __post_init__(self) -> None:
        n = self.x.shape[0]
        if self.x.ndim != 2:
            raise ValueError(f"WindowSet.x must be 2-D [n, window_n], got shape {self.x.shape}")
        self._sync_contract()
        for name, arr in [
            ("subject", self.subject),
            ("session", self.session),
            ("start_s", self.start_s),
            *[(f"labels[{t!r}]", a) for t, a in self.labels.items()],
        ]:
            if arr.shape != (n,):
                raise ValueError(f"WindowSet.{name} must have shape ({n},), got {arr.shape}")
        if set(self.labels) != set(self.classes):
            raise ValueError(
                f"WindowSet: labels tasks {sorted(self.labels)} != classes tasks "
                f"{sorted(self.classes)}"
            )

    def _sync_contract(self) -> None:
        """Take ``preprocessing``/``label_scheme`` from meta when not given, check that the
        two agree, and write the typed values' JSON form into meta.
        """
        stored = self.meta.get("preprocessing")
        if self.preprocessing is None and stored is not None:
            self.preprocessing = PreprocessConfig.from_dict(stored)
        elif stored is not None and PreprocessConfig.from_dict(stored) != self.preprocessing:
            raise ValueError(
                f"WindowSet: preprocessing {self.preprocessing} differs from "
                f"meta['preprocessing'] = {stored}"
            )
        if self.preprocessing is not None:
            if not isinstance(self.preprocessing, PreprocessConfig):
                raise TypeError(
                    "WindowSet.preprocessing must be a PreprocessConfig, got "
                    f"{type(self.preprocessing).__name__}"
                )
            if self.x.shape[1] != self.preprocessing.window_n:
                raise ValueError(
                    f"WindowSet.x has windows of {self.x.shape[1]} samples; its preprocessing "
                    f"makes {self.preprocessing.window_n} ({self.preprocessing.window_s:g} s "
                    f"at {self.preprocessing.fs_hz:g} Hz)"
                )
            self.meta["preprocessing"] = self.preprocessing.to_dict()
            self.meta["fs_hz"] = float(self.preprocessing.fs_hz)
            self.meta["window_s"] = float(self.preprocessing.window_s)
        scheme = self.meta.get("scheme")
        if self.label_scheme is None and scheme is not None:
            self.label_scheme = str(scheme)
        elif scheme is not None and scheme != self.label_scheme:
            raise ValueError(
                f"WindowSet: label_scheme {self.label_scheme!r} differs from "
                f"meta['scheme'] = {scheme!r}"
            )
        if self.label_scheme is not None:
            if not isinstance(self.label_scheme, str) or not self.label_scheme:
                raise ValueError(
                    f"WindowSet.label_scheme must be a non-empty string, got {self.label_scheme!r}"
                )
            self.meta["scheme"] = self.label_scheme

    def __len__(self) -> int:
        return int(self.x.shape[0])

    @property
    def tasks(self) -> list[str]:
        return list(self.labels)

    def subset(self, idx: Any) -> WindowSet:
        """The windows at ``idx`` (integer indices or a boolean mask); meta is copied."""
        idx = np.asarray(idx)
        if idx.dtype == np.bool_ and idx.shape != (len(self),):
            raise ValueError(f"subset mask must have shape ({len(self)},), got {idx.shape}")
        return WindowSet(
            x=np.asarray(self.x[idx]),
            labels={t: a[idx] for t, a in self.labels.items()},
            classes={t: list(c) for t, c in self.classes.items()},
            subject=self.subject[idx],
            session=self.session[idx],
            start_s=self.start_s[idx],
            meta=json.loads(json.dumps(self.meta)),
            preprocessing=self.preprocessing,
            label_scheme=self.label_scheme,
        )

    # ------------------------------------------------------------------ persistence

    def _label_matrix(self) -> np.ndarray:
        if not self.labels:
            return np.zeros((len(self), 0), dtype=np.int64)
        return np.stack([self.labels[t] for t in self.tasks], axis=1).astype(np.int64)

    def save(self, directory: str | Path) -> Path:
        """Write ``x.npy``, ``labels.npy`` ``[n, n_tasks]``, ``subject.npy``, ``session.npy``,
        ``start_s.npy`` and ``meta.json`` (written last: its presence marks a complete set).
        """
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        (d / "meta.json").unlink(missing_ok=True)
        np.save(d / "x.npy", np.ascontiguousarray(self.x, dtype=np.float32))
        np.save(d / "labels.npy", self._label_matrix())
        np.save(d / "subject.npy", np.asarray(self.subject, dtype=str))
        np.save(d / "session.npy", np.asarray(self.session, dtype=str))
        np.save(d / "start_s.npy", np.asarray(self.start_s, dtype=np.float64))
        doc = {
            "format_version": FORMAT_VERSION,
            "n_windows": len(self),
            "tasks": self.tasks,
            "classes": self.classes,
            "meta": self.meta,
        }
        (d / "meta.json").write_text(json.dumps(doc, indent=2, sort_keys=True))
        log.info("saved %d windows to %s", len(self), d)
        return d

    @classmethod
    def load(cls, directory: str | Path, mmap: bool = True) -> WindowSet:
        """Read a folder written by :meth:`save`; ``mmap=True`` maps ``x.npy`` read-only."""
        d = Path(directory)
        if not d.is_dir():
            raise FileNotFoundError(f"window set folder {d} does not exist")
        meta_path = d / "meta.json"
        if not meta_path.is_file():
            raise FileNotFoundError(
                f"{meta_path} is missing: {d} is not a saved WindowSet (or saving did not finish)"
            )
        try:
            doc = json.loads(meta_path.read_text())
            version = doc["format_version"]
            n, tasks, classes = doc["n_windows"], doc["tasks"], doc["classes"]
            meta = doc["meta"]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ValueError(f"{meta_path} is corrupt or not a WindowSet meta file: {exc}") from exc
        if version != FORMAT_VERSION:
            raise ValueError(
                f"{meta_path}: format_version {version!r} not supported (expected {FORMAT_VERSION})"
            )
        arrays: dict[str, np.ndarray] = {}
        for name in _ARRAYS:
            path = d / f"{name}.npy"
            if not path.is_file():
                raise FileNotFoundError(f"{path} is missing from the window set {d}")
            try:
                arrays[name] = np.load(
                    path, mmap_mode="r" if (mmap and name == "x") else None, allow_pickle=False
                )
            except ValueError as exc:
                raise ValueError(f"{path} is corrupt: {exc}") from exc
        lab = arrays["labels"]
        if lab.shape != (n, len(tasks)) or arrays["x"].shape[0] != n:
            raise ValueError(
                f"{d}: array shapes do not match meta.json (n_windows={n}, tasks={tasks}); "
                f"x {arrays['x'].shape}, labels {lab.shape}"
            )
        return cls(
            x=arrays["x"],
            labels={t: np.asarray(lab[:, i], dtype=np.int64) for i, t in enumerate(tasks)},
            classes={t: list(classes[t]) for t in tasks},
            subject=arrays["subject"],
            session=arrays["session"],
            start_s=arrays["start_s"],
            meta=meta,
        )

    def fingerprint(self) -> str:
        """SHA-256 (hex) of the windows, labels, ids, start times, classes and meta.

        Meta keys that describe where the set came from rather than what it is
        (:data:`VOLATILE_META`: the cache status, a stored fingerprint) are left out, so a set
        read from the cache has the fingerprint of the one built.
        """
        h = hashlib.sha256()
        header = {
            "shape": list(self.x.shape),
            "tasks": self.tasks,
            "classes": self.classes,
            "meta": {k: v for k, v in self.meta.items() if k not in VOLATILE_META},
        }
        h.update(json.dumps(header, sort_keys=True, default=str).encode())
        rows = max(1, (16 << 20) // max(1, self.x.shape[1] * 4))
        for i in range(0, len(self), rows):
            h.update(np.ascontiguousarray(self.x[i : i + rows], dtype="<f4").tobytes())
        h.update(np.ascontiguousarray(self._label_matrix(), dtype="<i8").tobytes())
        h.update(np.ascontiguousarray(self.start_s, dtype="<f8").tobytes())
        for ids in (self.subject, self.session):
            h.update("\x1f".join(map(str, ids)).encode())
            h.update(b"\x1e")
        return h.hexdigest()


# ---------------------------------------------------------------------------------------
# Building
# ---------------------------------------------------------------------------------------


def _window_segments(session: Session, starts_s: np.ndarray, window_s: float) -> np.ndarray:
    """Index of the segment that fully contains each window, -1 where none does."""
    out = np.full(starts_s.shape, -1, dtype=np.int64)
    ends = starts_s + window_s
    for i, seg in enumerate(session.segments):
        inside = (starts_s >= seg.start_s - _EDGE_TOL_S) & (ends <= seg.end_s + _EDGE_TOL_S)
        out[inside & (out < 0)] = i
    return out


def _filtered_uv(session: Session, config: PreprocessConfig) -> np.ndarray:
    """The session's ECG in µV, resampled to ``config.fs_hz`` and high-passed (float64).

    The arithmetic is exactly ``preprocess_ecg(session.ecg_uv(), ...)``'s. Memory: a long
    full-rate recording (a 1 h SWELL block is 7.4 M float32 samples at 2048 Hz) is resampled
    straight from the loader's array (µV data is not scaled, so not copied), and the full
    validation (:func:`validate_ecg`: flat signal, duration) runs on the resampled signal; so
    the only full-length temporary is the float64 form ``resample_poly`` works on, instead of
    several (scaled, float64, sorted for the robust std).
    """
    raw = session.ecg if UNITS_TO_UV[session.units] == 1.0 else session.ecg_uv()
    y = resample_ecg(raw, session.fs_hz, config.fs_hz)
    y = validate_ecg(y, config.fs_hz, name="ecg", min_duration_s=config.window_s)
    return highpass_ecg(y, config.fs_hz, config.highpass_hz, config.highpass_order)


def _segment_grid(
    session: Session, n_samples: int, fs_hz: float, window_n: int, hop_n: int
) -> tuple[np.ndarray, np.ndarray]:
    """Window starts (samples) on a grid from each segment's start, and the segment index.

    A segment's windows start at its first sample (``ceil(start_s * fs)``) and step by the
    hop while they end within the segment's duration (counted from that first sample) and
    the signal; overlapping segments each give their own windows.
    """
    starts: list[np.ndarray] = []
    owners: list[np.ndarray] = []
    for i, seg in enumerate(session.segments):
        first = max(0, int(np.ceil(seg.start_s * fs_hz - _EDGE_TOL_S * fs_hz)))
        span_n = int(np.floor((seg.end_s - max(seg.start_s, 0.0)) * fs_hz + 1e-6))
        stop = min(n_samples, first + span_n)
        if stop - first < window_n:
            continue
        k = (stop - first - window_n) // hop_n + 1
        starts.append(first + hop_n * np.arange(k, dtype=np.int64))
        owners.append(np.full(k, i, dtype=np.int64))
    if not starts:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(starts), np.concatenate(owners)


def window_grid(
    session: Session,
    n_samples: int,
    fs_hz: float,
    window_n: int,
    hop_n: int,
    align: str = "segment",
) -> tuple[np.ndarray, np.ndarray]:
    """Where :func:`make_windowset` cuts the windows of ``session``.

    Args:
        session: gives the segments (times in seconds from its first sample).
        n_samples: length of the preprocessed signal (see :func:`resampled_n`).
        fs_hz: its rate.
        window_n: window length in samples.
        hop_n: hop between window starts in samples.
        align: ``"segment"`` (a grid from each segment's start) or ``"session"`` (one grid
            from the first sample). A session without segments always uses the session grid.

    Returns:
        ``(starts, segment_index)``: int64 window starts in samples, and the index of the
        segment that fully contains each window, ``-1`` where none does (on the session
        grid; :func:`make_windowset` drops those windows of a labelled session).
    """
    if align not in ALIGNMENTS:
        raise ValueError(f"align must be one of {list(ALIGNMENTS)}, got {align!r}")
    if session.segments and align == "segment":
        return _segment_grid(session, n_samples, fs_hz, window_n, hop_n)
    starts = window_starts(n_samples, window_n, hop_n)
    return starts, _window_segments(session, starts / fs_hz, window_n / fs_hz)


def resampled_n(session: Session, fs_hz: float) -> int:
    """Samples of ``session``'s ECG once resampled to ``fs_hz`` (as :func:`resample_ecg`)."""
    up, down, _ = resample_factors(session.fs_hz, fs_hz)
    return -(-int(np.shape(session.ecg)[0]) * up // down)


def _cut(z: np.ndarray, starts: np.ndarray, window_n: int) -> np.ndarray:
    """float32 ``[len(starts), window_n]`` windows of ``z`` at the given sample starts."""
    if starts.shape[0] == 0:
        return np.zeros((0, window_n), dtype=np.float32)
    view = np.lib.stride_tricks.sliding_window_view(z, window_n)
    return view[starts].astype(np.float32)


def _task_classes(scheme_name: str, task: str, datasets_with_task: Sequence[str]) -> list[str]:
    scheme = get_scheme(scheme_name)
    found: dict[str, list[str]] = {}
    for ds in datasets_with_task:
        found[ds] = scheme.classes(task, ds)
    distinct = {tuple(c) for c in found.values()}
    if len(distinct) > 1:
        raise ValueError(
            f"task {task!r} has different classes per dataset under scheme {scheme_name!r} "
            f"({found}); build one window set per dataset or use scheme='binary'"
        )
    return list(next(iter(distinct)))


def make_windowset(
    sessions: Iterable[Session],
    *,
    tasks: Sequence[str] | None = None,
    scheme: str = "binary",
    hop_s: float = 10.0,
    config: PreprocessConfig = PreprocessConfig(),  # noqa: B008 (frozen, immutable)
    progress: bool = True,
    skip_bad: bool = False,
    align: str = "segment",
) -> WindowSet:
    """Preprocess, normalise per subject and window ``sessions`` (see the module docstring).

    Args:
        sessions: the recordings to window (several datasets may be mixed).
        tasks: label names to encode; ``None`` takes every label name found in the segments.
        scheme: a :data:`~ecgaffect.datasets.session.SCHEMES` name (``"binary"``, ``"paper"``,
            ``"condition"``).
        hop_s: window hop in seconds (``config.window_s`` for no overlap).
        config: the signal path; ``config.normalization`` is ``"subject"`` (robust statistics
            over all of a subject's sessions) or ``"calibrated"`` (per session, causal).
        progress: show a tqdm bar over sessions.
        skip_bad: a session that fails validation (too short for one window, NaN, flat, bad
            rate) is logged and listed in ``meta["skipped"]`` instead of raising.
        align: window grid of *labelled* sessions. ``"segment"`` (default): each segment's
            windows start at the segment's start, so a labelled span after a baseline (the
            5 s AMIGOS baseline, a DREAMER baseline) loses no data to a grid that began at
            the session's first sample. ``"session"``: one grid from the session's first
            sample, keeping the windows that fit inside a segment. Unlabelled sessions always
            use the session grid.

    Raises:
        ValueError: a bad session (message starts with its key) unless ``skip_bad``; an unknown
            scheme or ``align``; a task whose classes differ between the datasets.
    """
    label_scheme = get_scheme(scheme)
    if align not in ALIGNMENTS:
        raise ValueError(f"align must be one of {list(ALIGNMENTS)}, got {align!r}")
    sessions = list(sessions)
    if tasks is None:
        tasks = sorted({name for s in sessions for name in s.label_names()})
    tasks = list(tasks)
    fs = config.fs_hz
    window_n = config.window_n
    hop_n = int(round(hop_s * fs))
    if not (hop_n > 0 and abs(hop_n - hop_s * fs) < 1e-6 * max(1.0, hop_s * fs)):
        raise ValueError(
            f"hop_s must be a positive whole number of samples at {fs:g} Hz, got {hop_s!r}"
        )

    # group by subject, in first-seen order
    groups: dict[tuple[str, str], list[Session]] = {}
    for s in sessions:
        groups.setdefault((s.dataset, s.subject), []).append(s)

    skipped: list[dict[str, str]] = []
    xs: list[np.ndarray] = []
    label_cols: dict[str, list[np.ndarray]] = {t: [] for t in tasks}
    subj_col: list[np.ndarray] = []
    sess_col: list[np.ndarray] = []
    start_col: list[np.ndarray] = []
    used_datasets: set[str] = set()
    used_subjects: set[tuple[str, str]] = set()
    n_sessions = 0
    task_datasets: dict[str, set[str]] = {t: set() for t in tasks}

    bar = tqdm(total=len(sessions), desc="windowing sessions", unit="session", disable=not progress)
    try:
        for (dataset, subject), group in groups.items():
            filtered: list[tuple[Session, np.ndarray]] = []
            for s in group:
                try:
                    filtered.append((s, _filtered_uv(s, config)))
                except ValueError as exc:
                    if not skip_bad:
                        raise ValueError(f"session {s.key}: {exc}") from exc
                    log.warning("skipping session %s: %s", s.key, exc)
                    skipped.append({"session": s.key, "reason": str(exc)})
                bar.update(1)
            if not filtered:
                continue
            if config.normalization == "subject":
                stats = robust_stats(
                    np.concatenate([y for _, y in filtered]), config.central_fraction
                )
                if stats.std == 0:
                    raise ValueError(f"subject {dataset}/{subject}: flat signal (robust std 0)")
            for s, y in filtered:
                if config.normalization == "subject":
                    z = robust_zscore(y, stats)
                else:
                    z = normalize_calibrated(
                        y,
                        fs,
                        calibration_s=config.calibration_s,
                        mode=config.calibration_mode,
                        history_s=config.history_s,
                        update_s=config.update_s,
                        central_fraction=config.central_fraction,
                    )
                starts, seg_idx = window_grid(s, z.shape[0], fs, window_n, hop_n, align)
                if s.segments:  # a labelled session keeps the windows inside a segment
                    starts, seg_idx = starts[seg_idx >= 0], seg_idx[seg_idx >= 0]
                w = _cut(z, starts, window_n)
                starts_s = starts / fs
                n_sessions += 1
                if w.shape[0] == 0:
                    log.info("session %s gives no window inside a segment", s.key)
                    continue
                used_datasets.add(dataset)
                used_subjects.add((dataset, subject))
                xs.append(w)
                for t in tasks:
                    codes = [
                        label_scheme.encode(t, dataset, seg.labels.get(t)) for seg in s.segments
                    ]
                    if any(t in seg.labels for seg in s.segments):
                        task_datasets[t].add(dataset)
                    col = np.full(w.shape[0], -1, dtype=np.int64)
                    if codes:
                        has = seg_idx >= 0
                        col[has] = np.asarray(codes, dtype=np.int64)[seg_idx[has]]
                    label_cols[t].append(col)
                subj_col.append(np.full(w.shape[0], f"{dataset}/{subject}", dtype=object))
                sess_col.append(np.full(w.shape[0], s.key, dtype=object))
                start_col.append(starts_s)
    finally:
        bar.close()

    classes: dict[str, list[str]] = {}
    for t in tasks:
        ds = sorted(task_datasets[t]) or sorted(used_datasets) or ["synthetic"]
        classes[t] = _task_classes(scheme, t, ds)

    n = sum(w.shape[0] for w in xs)
    meta: dict[str, Any] = {
        "scheme_description": label_scheme.description,
        "hop_s": float(hop_s),
        "align": align,
        "datasets": sorted(used_datasets),
        "n_subjects": len(used_subjects),
        "n_sessions": n_sessions,
        "skipped": skipped,
    }
    log.info(
        "%d windows from %d sessions of %d subjects (%d skipped)",
        n,
        n_sessions,
        len(used_subjects),
        len(skipped),
    )
    return WindowSet(
        x=np.concatenate(xs) if xs else np.zeros((0, window_n), dtype=np.float32),
        labels={
            t: np.concatenate(c) if c else np.zeros(0, dtype=np.int64)
            for t, c in label_cols.items()
        },
        classes=classes,
        subject=np.concatenate(subj_col).astype(str) if subj_col else np.zeros(0, dtype=str),
        session=np.concatenate(sess_col).astype(str) if sess_col else np.zeros(0, dtype=str),
        start_s=np.concatenate(start_col) if start_col else np.zeros(0, dtype=np.float64),
        meta=meta,
        preprocessing=config,
        label_scheme=label_scheme.name,
    )
