"""DREAMER (Katsigiannis & Ramzan, IEEE JBHI 2018): one :class:`Session` per subject x clip.

Point ``root`` at the folder holding ``DREAMER.mat`` (or at the file itself). The file has one
struct ``DREAMER`` with ``Data`` (1 x 23 subjects), ``ECG_SamplingRate`` (256) and
``noOfVideoSequences`` (18). Per subject, ``ECG.stimuli{18}`` and ``ECG.baseline{18}`` are
M x 2 matrices at 256 Hz (two ECG channels of the Shimmer sensor) and ``ScoreValence``,
``ScoreArousal``, ``ScoreDominance`` are 18 ratings on a 1-5 scale (binarised at > 3 by the
``binary`` label scheme).

``ecg_column`` picks the channel (default 0, the first column). The dataset paper does not
name the leads of the two columns; both are usable single-lead ECG, and the chosen column is
recorded in each session's provenance. ``include_baseline=True`` adds the 61 s neutral clip
shown before each stimulus as an unlabelled session (trial ``b01`` .. ``b18``), useful for
self-supervised pretraining.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from ecgaffect.datasets._util import cells, clean_ecg, load_mat
from ecgaffect.datasets.base import DatasetError, LoadReport
from ecgaffect.datasets.session import Segment, Session

__all__ = ["FS_HZ", "load_sessions", "scan", "source_files"]

log = logging.getLogger(__name__)

DATASET = "dreamer"
FS_HZ = 256.0
FILE_NAME = "DREAMER.mat"
SCORES = {"valence": "ScoreValence", "arousal": "ScoreArousal", "dominance": "ScoreDominance"}
_HINT = "expected DREAMER.mat (struct DREAMER with field Data) from the DREAMER download"


def _find_file(root: str | Path) -> Path:
    path = Path(root).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"DREAMER root {str(path)!r} does not exist; {_HINT}")
    if path.is_file():
        return path.resolve()
    direct = path / FILE_NAME
    if direct.is_file():
        return direct.resolve()
    found = sorted(p for p in path.rglob("*.mat") if p.name.lower() == FILE_NAME.lower())
    if not found:
        raise DatasetError(path, f"no {FILE_NAME} found in this folder or below; {_HINT}")
    return found[0].resolve()


def source_files(root: str | Path, **_: Any) -> list[Path]:
    """The file :func:`load_sessions` reads (for cache fingerprints)."""
    return [_find_file(root)]


def scan(root: str | Path) -> dict[str, Any]:
    """Where ``DREAMER.mat`` is and how big (the file is not opened)."""
    file = _find_file(root)
    return {"dataset": DATASET, "file": str(file), "size_bytes": file.stat().st_size}


def _field(obj: Any, name: str, where: Path, what: str) -> Any:
    if not isinstance(obj, dict) or name not in obj:
        have = sorted(obj) if isinstance(obj, dict) else type(obj).__name__
        raise DatasetError(where, f"{what} has no field {name!r} (has {have}); {_HINT}")
    return obj[name]


def load_sessions(
    root: str | Path,
    *,
    skip_bad: bool = False,
    report: LoadReport | None = None,
    ecg_column: int = 0,
    include_baseline: bool = False,
    subjects: list[str] | None = None,
    max_gap_s: float = 1.0,
    progress: bool = False,
) -> list[Session]:
    """Load DREAMER stimulus clips (and optionally baseline clips) as sessions.

    Args:
        root: folder holding ``DREAMER.mat``, or the file itself.
        skip_bad: record a malformed subject (or an unreadable file) in ``report`` and go on.
        report: filled with what was read, skipped and noted.
        ecg_column: which of the two ECG columns to use (0 or 1; default 0).
        include_baseline: add the neutral baseline clips as unlabelled sessions.
        subjects: only these subject ids (``["S01", "S05"]``); ``None`` = all 23.
        max_gap_s: interior NaN gaps up to this long are interpolated, longer ones skip.
        progress: show a tqdm bar over subjects.

    Raises:
        FileNotFoundError: ``root`` does not exist.
        DatasetError: no ``DREAMER.mat``, or (unless ``skip_bad``) a file or subject that does
            not have the documented structure.
    """
    if ecg_column not in (0, 1):
        raise ValueError(f"dreamer: ecg_column must be 0 or 1, got {ecg_column!r}")
    report = report if report is not None else LoadReport()
    file = _find_file(root)
    report.dataset, report.root = DATASET, str(file.parent)
    try:
        mat = load_mat(file)
        top = _field(mat, "DREAMER", file, "the file")
        data = cells(_field(top, "Data", file, "struct DREAMER"))
    except DatasetError as exc:
        if not skip_bad:
            raise
        report.skip(file, str(exc).removeprefix(f"{file}: "))
        return []
    report.files_read += 1
    fs_hz = float(top.get("ECG_SamplingRate", FS_HZ)) if isinstance(top, dict) else FS_HZ
    if fs_hz != FS_HZ:
        report.note(file, f"ECG_SamplingRate is {fs_hz} Hz (documented: {FS_HZ} Hz); using it")
    ids = [f"S{i + 1:02d}" for i in range(len(data))]
    wanted = None
    if subjects is not None:
        wanted = {f"S{int(str(s).upper().lstrip('S')):02d}" for s in subjects}
        unknown = sorted(wanted - set(ids))
        if unknown:
            raise ValueError(f"dreamer: subjects {unknown} not in {file} (has S01..{ids[-1]})")
    sessions: list[Session] = []
    for subject, entry in tqdm(
        list(zip(ids, data, strict=True)), desc="DREAMER", unit="subject", disable=not progress
    ):
        if wanted is not None and subject not in wanted:
            continue
        try:
            sessions += _load_subject(
                subject, entry, file, report, fs_hz, ecg_column, include_baseline, max_gap_s
            )
        except DatasetError as exc:
            if not skip_bad:
                raise
            report.skip(f"{file} subject {subject}", str(exc).removeprefix(f"{file}: "))
    log.info("DREAMER: %d sessions", len(sessions))
    return sessions


def _load_subject(
    subject: str,
    entry: Any,
    file: Path,
    report: LoadReport,
    fs_hz: float,
    column: int,
    include_baseline: bool,
    max_gap_s: float,
) -> list[Session]:
    what = f"subject {subject}"
    ecg = _field(entry, "ECG", file, what)
    stimuli = cells(_field(ecg, "stimuli", file, f"{what} ECG"))
    baseline = cells(_field(ecg, "baseline", file, f"{what} ECG")) if include_baseline else []
    scores = {}
    for task, key in SCORES.items():
        values = np.asarray(_field(entry, key, file, what), dtype=np.float64).reshape(-1)
        if values.size != len(stimuli):
            raise DatasetError(
                file, f"{what}: {key} has {values.size} ratings for {len(stimuli)} stimuli"
            )
        scores[task] = values
    out: list[Session] = []
    clips = [("stimulus", t, x) for t, x in enumerate(stimuli)]
    clips += [("baseline", t, x) for t, x in enumerate(baseline)]
    for kind, t, raw in clips:
        trial = f"{t + 1:02d}" if kind == "stimulus" else f"b{t + 1:02d}"
        where = f"{file} {what} {kind} {t + 1}"
        arr = np.asarray(raw if raw is not None else [])
        if arr.size == 0:
            report.skip(where, "empty clip")
            continue
        if not np.issubdtype(arr.dtype, np.number):
            raise DatasetError(file, f"{what} {kind} {t + 1} is not numeric ({arr.dtype})")
        arr = arr.reshape(-1, 1) if arr.ndim == 1 else arr
        if arr.shape[1] <= column:
            raise DatasetError(
                file, f"{what} {kind} {t + 1} has {arr.shape[1]} columns, no ECG column {column}"
            )
        samples, message, _ = clean_ecg(arr[:, column], fs_hz, max_gap_s=max_gap_s)
        if samples is None:
            report.skip(where, message or "unusable ECG")
            continue
        if message:
            report.note(where, message)
        segments: tuple[Segment, ...] = ()
        if kind == "stimulus":
            labels = {task: float(v[t]) for task, v in scores.items()}
            segments = (Segment(0.0, samples.size / fs_hz, labels),)
        out.append(
            Session(
                dataset=DATASET,
                subject=subject,
                trial=trial,
                ecg=samples,
                fs_hz=fs_hz,
                units="au",
                segments=segments,
                provenance={"file": str(file), "column": column, "clip": kind, "notes": message},
            )
        )
    return out
