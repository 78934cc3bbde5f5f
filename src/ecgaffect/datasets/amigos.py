"""AMIGOS (Miranda-Correa et al., IEEE TAFFC 2021): one :class:`Session` per participant x video.

Point ``root`` at your copy (any folder layout below it; files are found by name):

* ``Data_Preprocessed_P01.mat`` .. ``P40.mat`` (``source="preprocessed"``, the default):
  ``joined_data`` (1x20 cells, trial t is N x 17 at **128 Hz**; column 15 = ECG right arm
  (RA-LL, ~ lead II), column 16 = ECG left arm (LA-LL, ~ lead III), 1-based),
  ``labels_selfassessment`` (1x20 cells of 1x12: arousal, valence, dominance, liking,
  familiarity, then the 7 basic emotions neutral, disgust, happiness, surprise, anger, fear,
  sadness) and ``VideoIDs``.
* ``Data_Original_P01.mat`` .. (``source="original"``): ``ECG_DATA`` (1x20 cells at
  **256 Hz**). Column 0 is a timestamp; this loader takes column 1 for lead II (right arm) and
  column 2 for lead III (left arm), the order of the dataset readme; pass ``ecg_column`` to
  override if your copy differs. Ratings come from the matching ``Data_Preprocessed`` file
  (same trial index) when it is present; otherwise the trials are unlabelled.

Careful with the ratings: **valence is column 2 and dominance column 3** (1-based; the authors'
public code swapped them, this loader does not).

Trials 1-16 are the short videos (watched alone), 17-20 the long ones. The first 5 s of a short
trial are a baseline: the labelled :class:`Segment` starts after it, and an :class:`Event`
marks the stimulus onset. Empty or all-NaN trials, the missing long videos of P08, P24 and
P28 and the missing long-video ratings of P32 are skipped and listed in the
:class:`LoadReport` (they are normal for this dataset and never raise).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from ecgaffect.datasets._util import cells, check_root, clean_ecg, load_mat
from ecgaffect.datasets.base import DatasetError, LoadReport
from ecgaffect.datasets.session import Event, Segment, Session

__all__ = [
    "FS_ORIGINAL_HZ",
    "FS_PREPROCESSED_HZ",
    "RATING_NAMES",
    "load_sessions",
    "scan",
    "source_files",
]

log = logging.getLogger(__name__)

DATASET = "amigos"
FS_PREPROCESSED_HZ = 128.0
FS_ORIGINAL_HZ = 256.0
N_TRIALS = 20
N_SHORT = 16
N_COLUMNS = 17
#: 0-based columns of ``joined_data`` per lead.
PREPROCESSED_COLUMNS = {"II": 14, "III": 15}
#: 0-based columns of ``ECG_DATA`` per lead (column 0 is a timestamp).
ORIGINAL_COLUMNS = {"II": 1, "III": 2}
#: ``labels_selfassessment`` columns, in file order (valence 2nd, dominance 3rd).
RATING_NAMES = (
    "arousal",
    "valence",
    "dominance",
    "liking",
    "familiarity",
    "neutral",
    "disgust",
    "happiness",
    "surprise",
    "anger",
    "fear",
    "sadness",
)
KNOWN_NO_LONG_VIDEOS = {"P08", "P24", "P28"}
KNOWN_NO_LONG_RATINGS = {"P32"}
VIDEOS = {"short": range(N_SHORT), "long": range(N_SHORT, N_TRIALS), "all": range(N_TRIALS)}
SOURCES = ("preprocessed", "original")
_FILE_RE = {
    "preprocessed": re.compile(r"^Data_Preprocessed_P(\d+)\.mat$", re.IGNORECASE),
    "original": re.compile(r"^Data_Original_P(\d+)\.mat$", re.IGNORECASE),
}
_HINT = (
    "expected a folder containing Data_Preprocessed_P01.mat .. Data_Preprocessed_P40.mat "
    "(or Data_Original_Pxx.mat with source='original') from the AMIGOS download"
)


def _check_choice(name: str, value: Any, allowed: Any) -> None:
    if value not in allowed:
        raise ValueError(f"amigos: {name} must be one of {sorted(allowed)}, got {value!r}")


def _find(root: Path, source: str) -> dict[str, Path]:
    """Subject id (``"P01"``) -> file, for every matching file below ``root``."""
    found: dict[str, Path] = {}
    for path in sorted(root.rglob("*.mat")):
        m = _FILE_RE[source].match(path.name)
        if m:
            found.setdefault(f"P{int(m.group(1)):02d}", path)
    return dict(sorted(found.items()))


def source_files(root: str | Path, *, source: str = "preprocessed", **_: Any) -> list[Path]:
    """The files :func:`load_sessions` reads with these options (for cache fingerprints)."""
    _check_choice("source", source, SOURCES)
    path = check_root(root, "AMIGOS", _HINT)
    files = list(_find(path, source).values())
    if source == "original":
        files += list(_find(path, "preprocessed").values())
    return sorted(files)


def scan(root: str | Path) -> dict[str, Any]:
    """Which AMIGOS files are present under ``root`` (no file is opened)."""
    path = check_root(root, "AMIGOS", _HINT)
    pre, orig = _find(path, "preprocessed"), _find(path, "original")
    expected = {f"P{i:02d}" for i in range(1, 41)}
    return {
        "dataset": DATASET,
        "root": str(path),
        "preprocessed_subjects": sorted(pre),
        "original_subjects": sorted(orig),
        "missing_subjects": sorted(expected - set(pre) - set(orig)),
        "n_files": len(pre) + len(orig),
    }


def _ratings(value: Any) -> np.ndarray | None:
    arr = np.asarray(value, dtype=np.float64).reshape(-1) if value is not None else None
    if arr is None or arr.size < 3 or not np.isfinite(arr[:2]).any():
        return None
    return arr


def _video_id(ids: list[Any], t: int) -> str:
    if t >= len(ids):
        return ""
    v = ids[t]
    if isinstance(v, np.ndarray):
        v = v.reshape(-1)[0] if v.size else ""
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    return str(v).strip()


def _get(mat: dict[str, Any], key: str, path: Path) -> list[Any]:
    if key not in mat:
        raise DatasetError(
            path, f"variable {key!r} not found (has {sorted(k for k in mat if k[:2] != '__')})"
        )
    values = cells(mat[key])
    if len(values) != N_TRIALS:
        raise DatasetError(path, f"{key} must hold {N_TRIALS} trial cells, found {len(values)}")
    return values


def load_sessions(
    root: str | Path,
    *,
    skip_bad: bool = False,
    report: LoadReport | None = None,
    source: str = "preprocessed",
    lead: str = "II",
    videos: str = "short",
    baseline_s: float = 5.0,
    subjects: list[str] | None = None,
    keep_unlabelled: bool = False,
    ecg_column: int | None = None,
    max_gap_s: float = 1.0,
    progress: bool = False,
) -> list[Session]:
    """Load AMIGOS trials as sessions of one ECG lead.

    Args:
        root: folder holding the ``Data_Preprocessed_Pxx.mat`` (or ``Data_Original``) files.
        skip_bad: record unreadable/malformed files in ``report`` and go on instead of raising.
        report: filled with what was read, skipped and noted.
        source: ``"preprocessed"`` (128 Hz, default) or ``"original"`` (256 Hz).
        lead: ``"II"`` (ECG right, default) or ``"III"`` (ECG left).
        videos: ``"short"`` (trials 1-16, default), ``"long"`` (17-20) or ``"all"``.
        baseline_s: unlabelled baseline at the start of each short trial (5 s in AMIGOS).
        subjects: only these subject ids (``["P01", "P07"]``); ``None`` = all found.
        keep_unlabelled: keep trials without ratings (P32's long videos) as unlabelled
            sessions (useful for pretraining) instead of skipping them.
        ecg_column: override the 0-based column of the ECG within a trial matrix.
        max_gap_s: interior NaN gaps up to this long are interpolated; longer ones skip the
            trial.
        progress: show a tqdm bar over files.

    Raises:
        FileNotFoundError: ``root`` does not exist.
        DatasetError: no AMIGOS file under ``root``, or (unless ``skip_bad``) a file that
            cannot be read or does not have the documented variables.
    """
    _check_choice("source", source, SOURCES)
    _check_choice("lead", lead, PREPROCESSED_COLUMNS)
    _check_choice("videos", videos, VIDEOS)
    if not (baseline_s >= 0 and np.isfinite(baseline_s)):
        raise ValueError(f"amigos: baseline_s must be a finite number >= 0, got {baseline_s!r}")
    report = report if report is not None else LoadReport()
    path = check_root(root, "AMIGOS", _HINT)
    report.dataset, report.root = DATASET, str(path)
    files = _find(path, source)
    if not files:
        raise DatasetError(path, f"no {source} AMIGOS files found; {_HINT}")
    label_files = _find(path, "preprocessed") if source == "original" else files
    if subjects is not None:
        wanted = {f"P{int(str(s).upper().lstrip('P')):02d}" for s in subjects}
        unknown = sorted(wanted - set(files))
        if unknown:
            raise ValueError(
                f"amigos: subjects {unknown} not found under {path}; available: {sorted(files)}"
            )
        files = {s: p for s, p in files.items() if s in wanted}
    else:
        missing = sorted({f"P{i:02d}" for i in range(1, 41)} - set(files))
        if missing:
            report.note(path, f"participants without a {source} file: {', '.join(missing)}")
    fs_hz = FS_PREPROCESSED_HZ if source == "preprocessed" else FS_ORIGINAL_HZ
    column = ecg_column
    if column is None:
        column = (PREPROCESSED_COLUMNS if source == "preprocessed" else ORIGINAL_COLUMNS)[lead]

    sessions: list[Session] = []
    for subject, file in tqdm(files.items(), desc="AMIGOS", unit="file", disable=not progress):
        try:
            sessions += _load_subject(
                subject,
                file,
                label_files.get(subject),
                report,
                source=source,
                fs_hz=fs_hz,
                column=column,
                lead=lead,
                trials=VIDEOS[videos],
                baseline_s=baseline_s,
                keep_unlabelled=keep_unlabelled,
                max_gap_s=max_gap_s,
            )
        except DatasetError as exc:
            if not skip_bad:
                raise
            report.skip(file, str(exc).removeprefix(f"{file}: "))
    log.info("AMIGOS: %d sessions from %d files", len(sessions), report.files_read)
    return sessions


def _load_subject(
    subject: str,
    file: Path,
    label_file: Path | None,
    report: LoadReport,
    *,
    source: str,
    fs_hz: float,
    column: int,
    lead: str,
    trials: range,
    baseline_s: float,
    keep_unlabelled: bool,
    max_gap_s: float,
) -> list[Session]:
    mat = load_mat(file)
    report.files_read += 1
    if source == "preprocessed":
        data = _get(mat, "joined_data", file)
        labels = _get(mat, "labels_selfassessment", file)
        ids = cells(mat.get("VideoIDs", []))
    else:
        data = _get(mat, "ECG_DATA", file)
        labels, ids = [None] * N_TRIALS, cells(mat.get("VideoIDs", []))
        if label_file is not None:
            lab_mat = load_mat(label_file)
            report.files_read += 1
            labels = _get(lab_mat, "labels_selfassessment", label_file)
            lab_ids = [_video_id(cells(lab_mat.get("VideoIDs", [])), t) for t in range(N_TRIALS)]
            own_ids = [_video_id(ids, t) for t in range(N_TRIALS)]
            if all(own_ids) and all(lab_ids) and own_ids != lab_ids:
                if sorted(own_ids) != sorted(lab_ids):
                    raise DatasetError(
                        file, f"VideoIDs differ from those of {label_file}: cannot match ratings"
                    )
                by_id = dict(zip(lab_ids, labels, strict=True))
                labels = [by_id[v] for v in own_ids]
                report.note(
                    file,
                    "trial order differs from the preprocessed file: matched ratings by VideoID",
                )
            ids = ids or cells(lab_mat.get("VideoIDs", []))
        else:
            report.note(file, "no matching Data_Preprocessed file: trials are unlabelled")

    out: list[Session] = []
    for t in trials:
        where = f"{file} trial {t + 1}"
        kind = "short" if t < N_SHORT else "long"
        raw = np.asarray(data[t]) if data[t] is not None else np.empty((0, 0))
        if raw.size == 0:
            known = kind == "long" and subject in KNOWN_NO_LONG_VIDEOS
            report.skip(
                where, "no long-video data (known for this participant)" if known else "empty trial"
            )
            continue
        if raw.dtype == object or not np.issubdtype(raw.dtype, np.number):
            raise DatasetError(file, f"trial {t + 1} is not a numeric matrix ({raw.dtype})")
        raw = np.atleast_2d(raw)
        if raw.shape[1] <= column:
            raise DatasetError(
                file,
                f"trial {t + 1} has {raw.shape[1]} columns; the ECG column {column} "
                f"(0-based) for lead {lead} does not exist"
                + (f" (expected {N_COLUMNS})" if source == "preprocessed" else ""),
            )
        ecg, message, offset_s = clean_ecg(raw[:, column], fs_hz, max_gap_s=max_gap_s)
        if ecg is None:
            report.skip(where, message or "unusable ECG")
            continue
        if message:
            report.note(where, message)
        ratings = _ratings(labels[t])
        if ratings is None and not keep_unlabelled:
            known = kind == "long" and subject in KNOWN_NO_LONG_RATINGS
            report.skip(where, "no self-assessment ratings" + (" (known)" if known else ""))
            continue
        start_s = (baseline_s if kind == "short" else 0.0) - offset_s
        start_s = max(start_s, 0.0)
        duration_s = ecg.size / fs_hz
        segments: tuple[Segment, ...] = ()
        if ratings is not None:
            if duration_s <= start_s:
                report.skip(where, f"trial of {duration_s:.1f} s has no data after its baseline")
                continue
            seg_labels = {
                name: float(ratings[i]) for i, name in enumerate(RATING_NAMES) if i < ratings.size
            }
            segments = (Segment(start_s, duration_s, seg_labels),)
        events = (Event(start_s, "stimulus_onset"),) if kind == "short" else ()
        video_id = _video_id(ids, t)
        out.append(
            Session(
                dataset=DATASET,
                subject=subject,
                trial=f"{t + 1:02d}",
                ecg=ecg,
                fs_hz=fs_hz,
                units="au",
                segments=segments,
                events=events,
                provenance={
                    "file": str(file),
                    "label_file": str(label_file) if label_file else None,
                    "source": source,
                    "lead": lead,
                    "column": column,
                    "video_id": video_id,
                    "video_kind": kind,
                    "trimmed_start_s": offset_s,
                    "notes": message,
                },
            )
        )
    return out
