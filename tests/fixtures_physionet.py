"""Writers of small fake EEGMAT (EDF+, pyedflib) and WFDB (wfdb.wrsamp) copies.

Same layouts, labels, header fields and units as the published files, with short synthetic
ECG so tests stay fast. Evaluation tests can reuse :func:`make_eegmat_tree`.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np

from ecg_fixtures import synthetic_ecg_uv

_EEG_SITES = "Fp1 Fp2 F3 F4 F7 F8 T3 T4 C3 C4 T5 T6 P3 P4 O1 O2 Fz Cz Pz"
EEG_LABELS = [*(f"EEG {c}" for c in _EEG_SITES.split()), "EEG A2-A1"]  # noqa: SIM905
ECG_LABEL = "ECG ECG"
INFO_HEADER = "Subject,Age,Gender,Recording year,Number of subtractions,Count quality\n"


def _header(label: str, unit: str, fs_hz: float, lo: float, hi: float) -> dict:
    return {
        "label": label,
        "dimension": unit,
        "sample_frequency": fs_hz,
        "physical_max": hi,
        "physical_min": lo,
        "digital_max": 32767,
        "digital_min": -32768,
        "prefilter": "HP:0.5Hz LP:45Hz RF:50Hz",
        "transducer": "",
    }


def write_edf(
    path: Path,
    signals: dict[str, np.ndarray],
    fs_hz: float,
    *,
    units: dict[str, str] | None = None,
    annotations: list[tuple[float, float, str]] = (),
    start: datetime = datetime(2011, 1, 1),
) -> Path:
    """An EDF+ file with these signals (label -> physical samples, whole seconds)."""
    import pyedflib

    units = units or {}
    headers, data = [], []
    for label, x in signals.items():
        # 8 characters at most in the header: whole thousandths
        lo = round(float(np.floor(x.min() * 1000.0)) / 1000.0 - 0.001, 3)
        hi = round(float(np.ceil(x.max() * 1000.0)) / 1000.0 + 0.001, 3)
        headers.append(_header(label, units.get(label, "mV"), fs_hz, lo, hi))
        data.append(np.asarray(x, dtype=np.float64))
    writer = pyedflib.EdfWriter(str(path), len(signals), file_type=pyedflib.FILETYPE_EDFPLUS)
    try:
        writer.setStartdatetime(start)
        writer.setSignalHeaders(headers)
        writer.writeSamples(data)
        for onset, duration, text in annotations:
            writer.writeAnnotation(onset, duration, text)
    finally:
        writer.close()
    return path


def ecg_mv(duration_s: float, fs_hz: float, *, seed: int, hr_bpm: float) -> np.ndarray:
    """Synthetic ECG in mV (R about 1 mV)."""
    return synthetic_ecg_uv(duration_s, fs_hz, seed=seed, hr_bpm=hr_bpm) / 1000.0


def make_eegmat_tree(
    root: Path,
    n_subjects: int = 3,
    *,
    rest_s: int = 30,
    task_s: int = 20,
    fs_hz: float = 500.0,
    full: bool = False,
    info: bool = True,
    rest_bpm: float = 65.0,
    task_bpm: float = 85.0,
) -> Path:
    """``SubjectNN_1.edf`` (rest) / ``SubjectNN_2.edf`` (task) + ``subject-info.csv``.

    ``full=True`` writes the 21-channel layout (19 EEG + ``EEG A2-A1`` in uV, then
    ``ECG ECG`` in mV) users download; otherwise only ``ECG ECG``.
    """
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    rows = []
    for s in range(n_subjects):
        for k, (dur, bpm) in enumerate(((rest_s, rest_bpm), (task_s, task_bpm)), start=1):
            signals: dict[str, np.ndarray] = {}
            if full:
                for label in EEG_LABELS:
                    signals[label] = rng.normal(0.0, 20.0, dur * int(fs_hz))
            signals[ECG_LABEL] = ecg_mv(dur, fs_hz, seed=10 * s + k, hr_bpm=bpm)
            units = dict.fromkeys(EEG_LABELS, "uV") if full else {}
            write_edf(
                root / f"Subject{s:02d}_{k}.edf",
                signals,
                fs_hz,
                units=units,
                annotations=[(0.0, -1, f"[Total time]+{dur:.3f}")],
            )
        rows.append(f"Subject{s:02d},{18 + s},{'FM'[s % 2]},2011,{10.5 + s},{s % 2}\n")
    if info:
        (root / "subject-info.csv").write_text(INFO_HEADER + "".join(rows))
    return root


def write_wfdb(
    directory: Path,
    name: str,
    signals: dict[str, np.ndarray],
    fs_hz: float,
    *,
    samps_per_frame: list[int] | None = None,
    units: list[str] | None = None,
    fmt: str = "212",
    gain: float = 200.0,
    gain_zero: bool = False,
) -> Path:
    """A WFDB record written with ``wfdb.wrsamp`` (returns the ``.hea`` path).

    ``samps_per_frame`` makes a multi-frequency record (``fs_hz`` is then the frame rate and
    each signal has ``fs_hz * spf`` samples per second). ``gain_zero`` rewrites the header's
    gain fields to ``0`` as in many QT Database headers (WFDB reads that as 200 adu/mV).
    """
    from ecgaffect.io.wfdb import import_wfdb, quiet_wfdb

    wfdb = import_wfdb()
    directory.mkdir(parents=True, exist_ok=True)
    names = list(signals)
    n = len(names)
    common = {
        "record_name": name,
        "fs": fs_hz,
        "units": units or ["mV"] * n,
        "sig_name": names,
        "fmt": [fmt] * n,
        "adc_gain": [gain] * n,
        "baseline": [0] * n,
        "write_dir": str(directory),
    }
    with quiet_wfdb():
        if samps_per_frame is None:
            wfdb.wrsamp(p_signal=np.column_stack([signals[k] for k in names]), **common)
        else:
            wfdb.wrsamp(
                e_p_signal=[np.asarray(signals[k], dtype=np.float64) for k in names],
                samps_per_frame=samps_per_frame,
                **common,
            )
    hea = directory / f"{name}.hea"
    if gain_zero:
        lines = hea.read_text().splitlines()
        for i in range(1, 1 + n):
            fields = lines[i].split()
            fields[2] = "0"  # gain 0, no baseline / units: "sel.dat 212 0 12 0 ..."
            lines[i] = " ".join(fields)
        hea.write_text("\n".join(lines) + "\n")
    return hea
