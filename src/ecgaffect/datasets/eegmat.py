"""EEGMAT (Zyma et al., *Data* 2019): rest vs mental arithmetic, ECG of 36 students, 500 Hz.

*EEG During Mental Arithmetic Tasks* (PhysioNet ``eegmat``; NEMAR/EEGDash ``nm000109``, ODC-By
1.0) records each subject twice: ``SubjectNN_1.edf``, the last ~180 s of a rest period
(eyes closed), and ``SubjectNN_2.edf``, the first ~60 s of serial subtraction of a 2-digit
number from a 4-digit one. The 21-channel distribution carries 19 EEG channels, ``EEG A2-A1``
and ``ECG ECG`` (mV, 500 Hz, EDF+). ``subject-info.csv`` gives age, gender, recording year,
number of subtractions and count quality (1 = good counters, 0 = bad) per subject.

:func:`load_sessions` yields **one session per subject**: the rest recording, then the task
recording, as one signal with two labelled segments (task ``stress``: ``"rest"`` then
``"arithmetic"``; scheme ``condition`` names the classes ``rest``/``arithmetic``, ``binary``
maps them to no-stress/stress), so a session replays like a live session: a calibration
period at rest, then the stressor. An event ``"arithmetic start"`` marks the join, and the
subject's row of ``subject-info.csv`` is in ``provenance["subject_info"]``.

The two recordings are not contiguous in time (the task starts after the rest recording
ends, with instructions in between); filters run across the join, so windows that straddle
it or lie within a filter's settling time of it are best left out (windows are cut inside
segments, and ``provenance["join_s"]`` gives the time).

Two layouts are read:

* PhysioNet / flat: ``root/SubjectNN_1.edf``, ``root/SubjectNN_2.edf``, ``root/subject-info.csv``
  (copies that keep only the ECG signal work the same);
* BIDS (the NEMAR ``nm000109`` distribution): ``root/sub-NN/eeg/sub-NN_task-rest_eeg.edf`` and
  ``..._task-mentalArithmetic_eeg.edf``, with ``participants.tsv`` (its columns go to
  ``subject_info`` as they are).

The ECG is picked by label: ``ECG ECG`` when present, else the one channel whose label
contains ``ECG``/``EKG`` (the BIDS conversion renames it ``ECG``); ``channel=`` overrides it.
"""

from __future__ import annotations

import csv
import logging
import re
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from ecgaffect.datasets._util import check_root
from ecgaffect.datasets.base import DatasetError, LoadReport
from ecgaffect.datasets.session import Event, Segment, Session
from ecgaffect.io.edf import EdfSignal, edf_labels, pick_channel, read_edf

__all__ = [
    "DATASET",
    "ECG_LABEL",
    "find_recordings",
    "load_sessions",
    "read_subject_info",
    "source_files",
]

log = logging.getLogger(__name__)

DATASET = "eegmat"
#: Label of the ECG signal in the PhysioNet EDF+ files.
ECG_LABEL = "ECG ECG"
FS_HZ = 500.0
SUBJECT_INFO = "subject-info.csv"
PARTICIPANTS = "participants.tsv"
JOIN_EVENT = "arithmetic start"
_FLAT_RE = re.compile(r"^Subject(\d+)_([12])\.edf$", re.IGNORECASE)
_BIDS_RE = re.compile(r"^sub-(\d+)_task-(rest|mentalArithmetic)_eeg\.edf$", re.IGNORECASE)
_HINT = (
    "expected EEGMAT's SubjectNN_1.edf (rest) and SubjectNN_2.edf (arithmetic) with "
    "subject-info.csv, or the BIDS layout sub-NN/eeg/sub-NN_task-rest_eeg.edf and "
    "sub-NN_task-mentalArithmetic_eeg.edf"
)
#: subject-info.csv column -> provenance key and type.
_INFO_COLUMNS: dict[str, tuple[str, type]] = {
    "Age": ("age", int),
    "Gender": ("gender", str),
    "Recording year": ("recording_year", int),
    "Number of subtractions": ("n_subtractions", float),
    "Count quality": ("count_quality", int),
}


def _subject_id(value: str | int) -> str:
    """``"Subject03"``, ``"sub-03"``, ``"03"``, ``3`` -> ``"Subject03"``."""
    text = str(value).strip()
    m = re.fullmatch(r"(?i)(?:subject|sub-)?(\d+)", text)
    if m is None:
        raise ValueError(f"eegmat: subject {value!r} is not like 'Subject03', 'sub-03' or 3")
    return f"Subject{int(m.group(1)):02d}"


def find_recordings(root: str | Path) -> dict[str, dict[str, Path]]:
    """Subject id -> ``{"rest": path, "arithmetic": path}`` (either may be missing).

    The flat layout is looked for directly in ``root``; the BIDS layout in ``root/sub-*/eeg``.
    """
    path = check_root(root, "EEGMAT", _HINT)
    found: dict[str, dict[str, Path]] = {}
    for f in sorted(path.iterdir()):
        m = _FLAT_RE.match(f.name)
        if m and f.is_file():
            kind = "rest" if m.group(2) == "1" else "arithmetic"
            found.setdefault(_subject_id(m.group(1)), {})[kind] = f
    if not found:
        for f in sorted(path.glob("sub-*/eeg/*.edf")):
            m = _BIDS_RE.match(f.name)
            if m and f.is_file():
                kind = "rest" if m.group(2).lower() == "rest" else "arithmetic"
                found.setdefault(_subject_id(m.group(1)), {})[kind] = f
    return dict(sorted(found.items()))


def _value(text: str | None, kind: type | None) -> Any:
    """``text`` as ``kind`` (``None`` = a number if it parses, else the text); empty -> None."""
    text = (text or "").strip()
    if text in ("", "n/a", "NaN", "nan"):
        return None
    if kind is str:
        return text
    try:
        number = float(text)
    except ValueError:
        return text
    if kind is int or (kind is None and number.is_integer() and "." not in text):
        return int(number)
    return number


def read_subject_info(path: str | Path) -> dict[str, dict[str, Any]]:
    """``subject-info.csv`` (or BIDS ``participants.tsv``) -> subject id -> fields.

    subject-info.csv columns become ``age``, ``gender``, ``recording_year``,
    ``n_subtractions`` and ``count_quality``; other columns are kept under their own
    lower-case names, numbers parsed where they parse.

    Raises:
        DatasetError: no ``Subject`` (or ``participant_id``) column, or a row without it.
    """
    path = Path(path)
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    with path.open(newline="", encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh, delimiter=delimiter))
    if not rows:
        return {}
    id_column = next((c for c in ("Subject", "participant_id") if c in rows[0]), None)
    if id_column is None:
        raise DatasetError(
            path, f"no 'Subject' or 'participant_id' column (columns: {list(rows[0])})"
        )
    info: dict[str, dict[str, Any]] = {}
    for line, row in enumerate(rows, start=2):
        try:
            subject = _subject_id(row[id_column] or "")
        except ValueError as exc:
            raise DatasetError(path, f"line {line}: {exc}") from None
        fields: dict[str, Any] = {}
        for column, value in row.items():
            if column == id_column or column is None:
                continue
            key, kind = _INFO_COLUMNS.get(column, (column.strip().lower().replace(" ", "_"), None))
            fields[key] = _value(value, kind)
        info[subject] = fields
    return info


def _info_file(root: Path) -> Path | None:
    for name in (SUBJECT_INFO, PARTICIPANTS):
        if (root / name).is_file():
            return root / name
    return None


def source_files(root: str | Path, **_: Any) -> list[Path]:
    """The EDF files and the subject table :func:`load_sessions` reads (cache fingerprints)."""
    path = check_root(root, "EEGMAT", _HINT)
    files = [p for pair in find_recordings(path).values() for p in pair.values()]
    info = _info_file(path)
    return files + ([info] if info is not None else [])


def _read_ecg(path: Path, channel: str | int | None) -> EdfSignal:
    if channel is None:
        labels = edf_labels(path)
        channel = ECG_LABEL if ECG_LABEL.lower() in (s.lower() for s in labels) else None
        pick_channel(path, labels, channel)  # names the labels if there is no ECG
    return read_edf(path, channel=channel)


def load_sessions(
    root: str | Path,
    *,
    skip_bad: bool = False,
    report: LoadReport | None = None,
    channel: str | int | None = None,
    subjects: list[str | int] | None = None,
    progress: bool = False,
) -> list[Session]:
    """One session per EEGMAT subject: rest then mental arithmetic, ECG in mV.

    Args:
        root: the folder with ``SubjectNN_k.edf`` and ``subject-info.csv`` (or a BIDS root).
        skip_bad: record unreadable files and incomplete subjects in ``report`` and go on.
        report: filled with what was read, skipped and noted.
        channel: label (or index) of the ECG signal; ``None``: ``ECG ECG``, else the one
            ECG/EKG-labelled channel.
        subjects: only these (``["Subject03", 4]``); ``None`` = all found.
        progress: show a tqdm bar over subjects.

    Raises:
        FileNotFoundError: ``root`` does not exist.
        DatasetError: no recordings; or (unless ``skip_bad``) a subject with only one of its
            two recordings, an unreadable/truncated EDF (:class:`~ecgaffect.io.edf.EdfError`),
            a file without the ECG channel, or rest and task files at different rates/units.
        ValueError: ``subjects`` names a subject that is not there.
    """
    report = report if report is not None else LoadReport()
    path = check_root(root, "EEGMAT", _HINT)
    report.dataset, report.root = DATASET, str(path)
    found = find_recordings(path)
    if not found:
        raise DatasetError(path, f"no EEGMAT recordings found; {_HINT}")
    if subjects is not None:
        wanted = {_subject_id(s) for s in subjects}
        unknown = sorted(wanted - set(found))
        if unknown:
            raise ValueError(f"eegmat: subjects {unknown} not under {path}; found {list(found)}")
        found = {s: f for s, f in found.items() if s in wanted}
    info_path = _info_file(path)
    info: dict[str, dict[str, Any]] = {}
    if info_path is None:
        report.note(path, f"no {SUBJECT_INFO} or {PARTICIPANTS}: sessions carry no subject info")
    else:
        info = read_subject_info(info_path)
        report.files_read += 1
    sessions = []
    for subject, files in tqdm(found.items(), desc="EEGMAT", unit="subject", disable=not progress):
        try:
            session = _load_subject(subject, files, channel, info, info_path, report)
        except DatasetError as exc:
            if not skip_bad:
                raise
            report.skip(exc.path, str(exc).removeprefix(f"{exc.path}: "))
            continue
        sessions.append(session)
    log.info("EEGMAT: %d sessions", len(sessions))
    return sessions


def _load_subject(
    subject: str,
    files: dict[str, Path],
    channel: str | int | None,
    info: dict[str, dict[str, Any]],
    info_path: Path | None,
    report: LoadReport,
) -> Session:
    missing = [k for k in ("rest", "arithmetic") if k not in files]
    if missing:
        have = next(iter(files.values()))
        raise DatasetError(
            have,
            f"{subject} has no {' and no '.join(missing)} recording "
            f"({'SubjectNN_1.edf' if 'rest' in missing else 'SubjectNN_2.edf'} missing)",
        )
    rest = _read_ecg(files["rest"], channel)
    task = _read_ecg(files["arithmetic"], channel)
    report.files_read += 2
    for attr in ("fs_hz", "session_units"):
        if getattr(rest, attr) != getattr(task, attr):
            raise DatasetError(
                task.path,
                f"{attr} {getattr(task, attr)!r} differs from the rest recording's "
                f"{getattr(rest, attr)!r} ({rest.path.name})",
            )
    if rest.fs_hz != FS_HZ:
        report.note(rest.path, f"sampling rate {rest.fs_hz:g} Hz (EEGMAT is {FS_HZ:g} Hz)")
    join_s = rest.duration_s
    total_s = join_s + task.duration_s
    events = [Event(join_s, JOIN_EVENT)]
    for sig, offset in ((rest, 0.0), (task, join_s)):
        events += [
            Event(offset + a.onset_s, a.text)
            for a in sig.annotations
            if not a.text.startswith("[Total time]")  # EDF+ duration note, not an event
        ]
    if subject not in info and info_path is not None:
        report.note(info_path, f"{subject} has no row: session carries no subject info")
    return Session(
        dataset=DATASET,
        subject=subject,
        trial="rest-arithmetic",
        ecg=np.concatenate([rest.samples, task.samples]),
        fs_hz=rest.fs_hz,
        units=rest.session_units,
        segments=(
            Segment(0.0, join_s, {"stress": "rest"}),
            Segment(join_s, total_s, {"stress": "arithmetic"}),
        ),
        events=tuple(sorted(events, key=lambda e: e.time_s)),
        provenance={
            "files": [str(rest.path), str(task.path)],
            "channel": rest.label,
            "unit": rest.unit,
            "prefilter": rest.prefilter,
            "join_s": join_s,
            "subject_info": dict(info.get(subject, {})),
            "notes": "rest and task recordings joined end to end; they are not contiguous in time",
        },
        start_time=rest.start_time,
    )
