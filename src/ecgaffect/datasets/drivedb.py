"""PhysioNet drivedb, *Stress Recognition in Automobile Drivers* (Healey & Picard 2005).

Multi-frequency WFDB records (``drive01`` .. ``drive17b``): 15.5 frames/s, ECG 32 samples per
frame (496 Hz), the other signals (EMG, foot/hand GSR, HR, marker, respiration) at their own
rates. One session per record with the ECG at 496 Hz (read with
:func:`ecgaffect.io.wfdb.read_wfdb`, ``smooth_frames=False``); ``subject`` is the record name.

**Labels from the marker channel (assumed semantics, check against your copy).** The drives
followed one protocol: rest, city, highway, city, highway, city, rest (Healey & Picard 2005;
rest = low, highway = medium, city = high stress). We take the ``marker`` signal to be the
experimenter's button, pulsed at each change of segment: a transition is a rising edge of the
marker above half its range (edges closer than ``min_gap_s`` merge). With exactly
``len(protocol) - 1`` transitions the record gets one :class:`Segment` per protocol part
(task ``stress``: ``"rest"``/``"city"``/``"highway"``; the ``binary`` scheme maps rest 0,
city 1 and drops highway; ``condition`` has the three classes rest/highway/city, low to high
stress); otherwise it stays unlabelled with a note, and every transition found is kept as an
event. We could not check the marker description on PhysioNet from here: the protocol order
and the pulse reading are assumptions stated, not verified, and ``protocol=`` overrides the
order.

Licence ODC-By 1.0; cite Healey JA, Picard RW, IEEE Trans. Intelligent Transportation Systems
6(2):156-166, 2005, and PhysioNet (Goldberger et al., Circulation 2000).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from ecgaffect.datasets._util import clean_ecg
from ecgaffect.datasets.base import DatasetError, LoadReport
from ecgaffect.datasets.physionet_wfdb import find_records
from ecgaffect.datasets.physionet_wfdb import source_files as _source_files
from ecgaffect.datasets.session import Event, Segment, Session
from ecgaffect.io.wfdb import WfdbRecord, read_wfdb

__all__ = ["DATASET", "PROTOCOL", "load_sessions", "marker_transitions", "source_files"]

log = logging.getLogger(__name__)

DATASET = "drivedb"
#: Segment order of every drive (Healey & Picard 2005).
PROTOCOL = ("rest", "city", "highway", "city", "highway", "city", "rest")


def source_files(root: str | Path, **options: Any) -> list[Path]:
    return _source_files(root, **options)


def marker_transitions(marker: np.ndarray, fs_hz: float, min_gap_s: float = 30.0) -> list[float]:
    """Times (s) of the rising edges of ``marker`` above half its range, merged within
    ``min_gap_s``; none for a flat or non-finite marker.
    """
    x = np.asarray(marker, dtype=np.float64)
    finite = np.isfinite(x)
    if not finite.any():
        return []
    x = np.where(finite, x, np.nanmedian(x))
    base = float(np.median(x))
    dev = np.abs(x - base)
    peak = float(dev.max())
    if peak <= 0:
        return []
    high = dev > 0.5 * peak
    edges = np.flatnonzero(high[1:] & ~high[:-1]) + 1
    if high[0]:
        edges = np.concatenate([[0], edges])
    times: list[float] = []
    for t in edges / fs_hz:
        if not times or t - times[-1] >= min_gap_s:
            times.append(float(t))
    return times


def _segments(
    transitions: list[float], total_s: float, protocol: tuple[str, ...]
) -> tuple[Segment, ...]:
    bounds = [0.0, *transitions, total_s]
    return tuple(
        Segment(a, b, {"stress": name})
        for a, b, name in zip(bounds[:-1], bounds[1:], protocol, strict=True)
        if b > a
    )


def _load_record(
    record: WfdbRecord,
    ecg_name: str,
    marker_name: str,
    protocol: tuple[str, ...],
    min_gap_s: float,
    max_gap_s: float,
    report: LoadReport,
) -> Session | None:
    ecg = record.signal(ecg_name)
    samples, message, offset_s = clean_ecg(ecg.samples, ecg.fs_hz, max_gap_s=max_gap_s)
    if samples is None:
        report.skip(record.path, f"{ecg.name}: {message}")
        return None
    if message:
        report.note(record.path, f"{ecg.name}: {message}")
    total_s = samples.shape[0] / ecg.fs_hz
    names = [s.name.lower() for s in record.signals]
    transitions: list[float] = []
    if marker_name.lower() in names:
        marker = record.signal(marker_name)
        transitions = [
            t - offset_s
            for t in marker_transitions(marker.samples, marker.fs_hz, min_gap_s)
            if 0.0 < t - offset_s < total_s
        ]
    else:
        report.note(record.path, f"no {marker_name!r} signal: session left unlabelled")
    segments: tuple[Segment, ...] = ()
    if len(transitions) == len(protocol) - 1:
        segments = _segments(transitions, total_s, protocol)
    elif marker_name.lower() in names:
        report.note(
            record.path,
            f"{len(transitions)} marker transitions found, {len(protocol) - 1} expected for "
            f"{'/'.join(protocol)}: session left unlabelled (transitions kept as events)",
        )
    return Session(
        dataset=DATASET,
        subject=record.name,
        trial="drive",
        ecg=samples,
        fs_hz=ecg.fs_hz,
        units=ecg.session_units,
        segments=segments,
        events=tuple(Event(t, "marker") for t in transitions),
        provenance={
            "file": str(record.path),
            "signal": ecg.name,
            "frame_hz": record.frame_hz,
            "marker_transitions_s": transitions,
            "protocol": list(protocol),
            "uncalibrated": ecg.uncalibrated,
            "notes": message,
        },
        start_time=record.base_datetime,
    )


def load_sessions(
    root: str | Path,
    *,
    skip_bad: bool = False,
    report: LoadReport | None = None,
    ecg: str = "ECG",
    marker: str = "marker",
    protocol: list[str] | None = None,
    records: list[str] | None = None,
    min_gap_s: float = 30.0,
    max_gap_s: float = 1.0,
    progress: bool = False,
) -> list[Session]:
    """One session per drivedb record: the ECG at its own rate, marker-split segments.

    Args:
        root: the folder with ``driveNN.hea`` / ``.dat``.
        skip_bad: record bad records in ``report`` and go on.
        report: filled with what was read, skipped and noted.
        ecg: signal name of the ECG.
        marker: signal name of the marker channel.
        protocol: segment order (default :data:`PROTOCOL`).
        records: only these record names.
        min_gap_s: marker edges closer than this are one transition.
        max_gap_s: interior NaN gaps up to this long are interpolated.
        progress: show a tqdm bar over records.

    Raises:
        DatasetError: no record; or (unless ``skip_bad``) a record whose ``.dat`` is missing
            or truncated, or without the ``ecg`` signal.
    """
    report = report if report is not None else LoadReport()
    report.dataset, report.root = DATASET, str(root)
    order = tuple(protocol) if protocol is not None else PROTOCOL
    headers = find_records(root, DATASET)
    if not headers:
        raise DatasetError(Path(root), "no WFDB records found (expected driveNN.hea/.dat)")
    if records is not None:
        by_name = {h.stem: h for h in headers}
        unknown = sorted(set(records) - set(by_name))
        if unknown:
            raise ValueError(f"drivedb: records {unknown} not under {root}")
        headers = [by_name[r] for r in records]
    sessions = []
    for hea in tqdm(headers, desc="drivedb", unit="record", disable=not progress):
        try:
            record = read_wfdb(hea)
            report.files_read += 1
            session = _load_record(record, ecg, marker, order, min_gap_s, max_gap_s, report)
        except DatasetError as exc:
            if not skip_bad:
                raise
            report.skip(exc.path, str(exc).removeprefix(f"{exc.path}: "))
            continue
        if session is not None:
            sessions.append(session)
    log.info("drivedb: %d sessions", len(sessions))
    return sessions
