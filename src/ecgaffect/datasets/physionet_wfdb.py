"""Any folder of PhysioNet WFDB records as unlabelled sessions (dataset ``wfdb``; ``qtdb``).

Every single-segment record (``NAME.hea`` + its ``.dat``) below ``root`` becomes one session
per ECG lead (``lead="all"``, the default: both QT Database leads as separate sessions, more
real ECG for self-supervised pretraining) or one session of the lead asked for (``lead="MLII"``
by name, ``lead=0`` by position). ``subject`` is the record name, ``trial`` the lead name.

Leads are the signals whose unit is a voltage (mV, uV, V); others (a marker, GSR, respiration)
are left out with a note. Samples are read with :func:`ecgaffect.io.wfdb.read_wfdb` at each
signal's own rate, so multi-frequency records keep their ECG rate.

**DC offset.** QT Database headers often give gain 0 (uncalibrated: WFDB's default 200 adu/mV
is applied) and baseline 0 while the samples sit around the ADC zero (``sel100`` reads about
+4.7 mV). With ``remove_dc=True`` (default) the median of each session's lead is subtracted
(each session is one segment here); ``provenance["dc_removed"]`` keeps the value. Uncalibrated
leads are noted (``provenance["uncalibrated"]``): their amplitude in mV is nominal.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from ecgaffect.datasets._util import check_root, clean_ecg
from ecgaffect.datasets.base import DatasetError, LoadReport
from ecgaffect.datasets.session import Session
from ecgaffect.io.wfdb import WfdbRecord, WfdbSignal, read_wfdb

__all__ = ["find_records", "load_sessions", "load_wfdb_sessions", "pick_leads", "source_files"]

log = logging.getLogger(__name__)

DATASET = "wfdb"
_HINT = "expected a folder of WFDB records (NAME.hea with its NAME.dat)"


def find_records(root: str | Path, dataset: str = DATASET) -> list[Path]:
    """The ``.hea`` files below ``root`` (sorted), or ``root`` itself if it is a header."""
    path = Path(root).expanduser()
    if path.is_file() and path.suffix.lower() == ".hea":
        return [path.resolve()]
    path = check_root(path, dataset, _HINT)
    return sorted(p for p in path.rglob("*.hea") if p.is_file())


def source_files(root: str | Path, **_: Any) -> list[Path]:
    """Headers and the signal files next to them (for cache fingerprints)."""
    files = []
    for hea in find_records(root):
        files.append(hea)
        files += sorted(p for p in hea.parent.glob(hea.stem + ".dat") if p.is_file())
    return files


def pick_leads(
    record: WfdbRecord, lead: str | int, report: LoadReport | None = None
) -> list[WfdbSignal]:
    """The signals of ``record`` that ``lead`` selects (see the module docstring).

    Raises:
        DatasetError: ``lead`` names a signal that is not there, or no signal is a voltage.
    """
    if lead == "all":
        leads = [s for s in record.signals if s.session_units != "au"]
        others = [s.name for s in record.signals if s.session_units == "au"]
        if others and report is not None:
            report.note(record.path, f"not ECG (unit not a voltage), left out: {others}")
        if not leads:
            raise DatasetError(
                record.path,
                f"no signal in a voltage unit (signals: "
                f"{[(s.name, s.unit) for s in record.signals]}); name the lead with lead=",
            )
        return leads
    if isinstance(lead, int) and not isinstance(lead, bool):
        if 0 <= lead < len(record.signals):
            return [record.signals[lead]]
        raise DatasetError(
            record.path, f"has no signal number {lead} (signals: {list(record.names)})"
        )
    return [record.signal(str(lead))]


def _session(
    dataset: str,
    record: WfdbRecord,
    sig: WfdbSignal,
    remove_dc: bool,
    max_gap_s: float,
    report: LoadReport,
) -> Session | None:
    samples, message, offset_s = clean_ecg(sig.samples, sig.fs_hz, max_gap_s=max_gap_s)
    if samples is None:
        report.skip(record.path, f"lead {sig.name}: {message}")
        return None
    if message:
        report.note(record.path, f"lead {sig.name}: {message}")
    dc = float(np.median(samples)) if remove_dc else 0.0
    return Session(
        dataset=dataset,
        subject=record.name,
        trial=sig.name,
        ecg=samples - dc,
        fs_hz=sig.fs_hz,
        units=sig.session_units,
        provenance={
            "file": str(record.path),
            "signal": sig.name,
            "unit": sig.unit,
            "gain": sig.gain,
            "uncalibrated": sig.uncalibrated,
            "dc_removed": dc,
            "trimmed_start_s": offset_s,
            "comments": list(record.comments),
            "notes": message,
        },
        start_time=record.base_datetime,
    )


def load_wfdb_sessions(
    dataset: str,
    root: str | Path,
    *,
    skip_bad: bool = False,
    report: LoadReport | None = None,
    lead: str | int = "all",
    records: list[str] | None = None,
    remove_dc: bool = True,
    max_gap_s: float = 1.0,
    progress: bool = False,
) -> list[Session]:
    """Sessions of every record below ``root`` under the name ``dataset`` (see module doc).

    Raises:
        FileNotFoundError: ``root`` does not exist.
        DatasetError: no record; or (unless ``skip_bad``) a header whose ``.dat`` is missing,
            a truncated ``.dat``, an unreadable header, or a ``lead`` that is not there.
        ValueError: ``records`` names records that are not there.
    """
    report = report if report is not None else LoadReport()
    report.dataset, report.root = dataset, str(root)
    headers = find_records(root, dataset)
    if not headers:
        raise DatasetError(Path(root), f"no WFDB records found; {_HINT}")
    if records is not None:
        by_name = {h.stem: h for h in headers}
        unknown = sorted(set(records) - set(by_name))
        if unknown:
            raise ValueError(f"{dataset}: records {unknown} not under {root}")
        headers = [by_name[r] for r in records]
    sessions: list[Session] = []
    for hea in tqdm(headers, desc=dataset, unit="record", disable=not progress):
        try:
            record = read_wfdb(hea)
            leads = pick_leads(record, lead, report)
        except DatasetError as exc:
            if not skip_bad:
                raise
            report.skip(exc.path, str(exc).removeprefix(f"{exc.path}: "))
            continue
        report.files_read += 1
        uncalibrated = [s.name for s in leads if s.uncalibrated]
        if uncalibrated:
            report.note(
                hea,
                f"gain 0 in the header (uncalibrated) for {uncalibrated}: WFDB's 200 adu per "
                "unit used, amplitude nominal",
            )
        for sig in leads:
            session = _session(dataset, record, sig, remove_dc, max_gap_s, report)
            if session is not None:
                sessions.append(session)
    log.info("%s: %d sessions from %d records", dataset, len(sessions), len(headers))
    return sessions


def load_sessions(
    root: str | Path,
    *,
    skip_bad: bool = False,
    report: LoadReport | None = None,
    lead: str | int = "all",
    records: list[str] | None = None,
    remove_dc: bool = True,
    max_gap_s: float = 1.0,
    progress: bool = False,
) -> list[Session]:
    """Every WFDB record below ``root`` as unlabelled sessions (dataset ``wfdb``)."""
    return load_wfdb_sessions(
        DATASET,
        root,
        skip_bad=skip_bad,
        report=report,
        lead=lead,
        records=records,
        remove_dc=remove_dc,
        max_gap_s=max_gap_s,
        progress=progress,
    )
