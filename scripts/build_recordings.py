#!/usr/bin/env python
"""Regenerate the bundled recordings in ``recordings/`` from the exact PyPI packages.

Run from the repository root with ecgaffect installed (its XDF writer, ``ecgaffect.io.xdf``,
is used; needs network access to PyPI, nothing else)::

    python scripts/build_recordings.py            # writes recordings/*.xdf[z] + README + manifest
    python scripts/build_recordings.py --check    # rebuild into a temp dir and compare bytes
    python scripts/build_recordings.py --polar-rdata polar_h10.RData [--polar-only]

Sources (fetched with ``python -m pip download --no-deps``; sha256 of each archive recorded):

* ``systole==0.3.1`` sdist: ``systole/datasets/Task1_ECG.npy`` and ``Task1_Stim.npy``
  (emotional image task, 1000 Hz; Stim 2 = disgust image, 1 = neutral image), GPL-3.0;
* ``scipy==1.11.4`` cp311 manylinux wheel: ``scipy/misc/ecg.dat`` (npz key ``ecg``, uint16,
  mV = (x - 1024) / 200, 360 Hz, MIT-BIH Arrhythmia Database record 208), BSD-3 / ODC-By;
* ``pyhrv==0.5.0`` wheel: ``pyhrv/files/SampleECG.txt`` (OpenSignals/BITalino text export,
  1000 Hz, 10-bit ECG ADC in the last column ``A2``), BSD-3.

and, from a local file (``--polar-rdata PATH``; needs ``pip install rdata>=1.1``, used by this
script only):

* ``polar_h10.RData`` of the R package detectPVC (github.com/kbroman/detectPVC,
  ``data/polar_h10.RData``, MIT, Karl W Broman): data frame ``polar_h10`` with ``time`` (ns
  since the epoch), ``ecg`` (mV), ``hr``, ``rr``; 10 minutes from a Polar H10 recorded with the
  ECGLogger app. Written with a time stamp on **every** sample (the device's own timing) and the
  effective rate of those stamps as nominal rate. Without ``--polar-rdata`` the committed file
  and its manifest entry are kept as they are.

Each recording is written in our XDF recording format (an ``ECG`` stream, one channel
labelled ``ECG`` in microvolts, typed ``ECG``; a ``Markers`` stream where the source has
events), with a time stamp only on the first sample of each chunk (XDF lets regular streams
omit the others; readers deduce them from the nominal rate). No resampling. The output is
deterministic (no random uids, fixed gzip header), so a rebuild can be compared byte for byte.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import logging
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ecgaffect.datasets.eegmat import JOIN_EVENT
from ecgaffect.io.xdf import (
    XdfStreamSpec,
    XdfWriter,
    desc_xml,
    numeric_samples_chunk,
    regular_samples_chunk,
    string_samples_chunk,
)

log = logging.getLogger("build_recordings")

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "recordings"
#: Budget for all bundled files together.
MAX_TOTAL_BYTES = 5 * 1024 * 1024
#: Samples per XDF Samples chunk (one time stamp each).
CHUNK_N = 10_000

# BITalino ECG sensor transfer function (BITalino ECG sensor datasheet, rev. B / (r)evolution):
# ECG(V) = (ADC / 2**n - 1/2) * VCC / G_ECG with VCC = 3.3 V and G_ECG = 1100.
BITALINO_VCC_V = 3.3
BITALINO_ECG_GAIN = 1100.0


@dataclass(frozen=True)
class Source:
    """One PyPI archive and what we take from it."""

    key: str
    requirement: str
    pip_args: tuple[str, ...]
    archive_glob: str
    licence: str


SOURCES = (
    Source(
        "systole",
        "systole==0.3.1",
        ("--no-binary", ":all:"),
        "systole-0.3.1.tar.gz",
        "GPL-3.0",
    ),
    Source(
        "scipy",
        "scipy==1.11.4",
        (
            "--only-binary",
            ":all:",
            "--python-version",
            "3.11",
            "--implementation",
            "cp",
            "--abi",
            "cp311",
            "--platform",
            "manylinux_2_17_x86_64",
        ),
        "scipy-1.11.4-cp311-cp311-manylinux_2_17_x86_64*.whl",
        "BSD-3-Clause (SciPy); data: MIT-BIH Arrhythmia Database, ODC-By 1.0 (PhysioNet)",
    ),
    Source(
        "pyhrv",
        "pyhrv==0.5.0",
        ("--only-binary", ":all:"),
        "pyhrv-0.5.0-py3-none-any.whl",
        "BSD-3-Clause",
    ),
)


# ---------------------------------------------------------------------------------------
# Conversion (pure functions, tested on generated arrays)
# ---------------------------------------------------------------------------------------


@dataclass
class Converted:
    """One recording ready to be written: ECG in microvolts and its events."""

    name: str
    fs_hz: float
    samples_uv: np.ndarray  # int16 or float32, 1-D
    events: list[tuple[float, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: Per-sample time stamps (s from the first sample) when the source has its own timing;
    #: ``None``: regular samples, a stamp on the first sample of each chunk only.
    timestamps_s: np.ndarray | None = None

    @property
    def duration_s(self) -> float:
        return self.samples_uv.size / self.fs_hz


def check_signal(name: str, samples: np.ndarray, fs_hz: float, *, min_duration_s: float) -> None:
    """Raise ValueError unless ``samples`` is 1-D, finite, long enough and not flat."""
    x = np.asarray(samples)
    if x.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D signal, got shape {x.shape}")
    if not fs_hz > 0:
        raise ValueError(f"{name}: fs_hz must be > 0, got {fs_hz!r}")
    xf = x.astype(np.float64)
    n_bad = int((~np.isfinite(xf)).sum())
    if n_bad:
        raise ValueError(f"{name}: {n_bad} of {x.size} samples are NaN or infinite")
    if x.size / fs_hz < min_duration_s:
        raise ValueError(
            f"{name}: {x.size / fs_hz:.2f} s at {fs_hz:g} Hz, expected at least {min_duration_s} s"
        )
    if float(np.ptp(xf)) == 0.0:
        raise ValueError(f"{name}: the signal is flat (every sample is {xf[0]!r})")


def to_int16_uv(samples_uv: np.ndarray, *, name: str, max_error_uv: float = 0.5) -> np.ndarray:
    """Round microvolts to int16, refusing values out of range or rounding errors above
    ``max_error_uv``.
    """
    x = np.asarray(samples_uv, dtype=np.float64)
    lo, hi = np.iinfo(np.int16).min, np.iinfo(np.int16).max
    if x.size and (x.min() < lo or x.max() > hi):
        raise ValueError(
            f"{name}: samples span {x.min():.1f}..{x.max():.1f} uV, outside int16 {lo}..{hi}"
        )
    q = np.round(x)
    err = float(np.max(np.abs(q - x))) if x.size else 0.0
    if err > max_error_uv + 1e-9:
        raise ValueError(f"{name}: int16 rounding error {err:.3f} uV > {max_error_uv} uV")
    return q.astype(np.int16)


def convert_systole(ecg_mv: np.ndarray, stim: np.ndarray, fs_hz: float = 1000.0) -> Converted:
    """Systole's Task1 ECG (mV, assumed; see README) and stimulus channel -> :class:`Converted`.

    ``stim`` has one non-zero sample per image onset: 2 = disgust image, 1 = neutral image.
    """
    ecg_mv = np.asarray(ecg_mv, dtype=np.float64)
    stim = np.asarray(stim)
    if stim.shape != ecg_mv.shape:
        raise ValueError(f"systole: Stim shape {stim.shape} differs from ECG shape {ecg_mv.shape}")
    check_signal("systole Task1_ECG", ecg_mv, fs_hz, min_duration_s=60.0)
    codes = {1: "neutral image", 2: "disgust image"}
    unknown = sorted(set(np.unique(stim[stim != 0]).tolist()) - set(codes))
    if unknown:
        raise ValueError(f"systole: unknown Stim codes {unknown}; known {codes}")
    idx = np.flatnonzero(stim != 0)
    events = [(float(i / fs_hz), codes[int(stim[i])]) for i in idx]
    samples = to_int16_uv(ecg_mv * 1000.0, name="systole Task1_ECG")
    return Converted(
        "systole_emotional_images",
        fs_hz,
        samples,
        events,
        notes=["rounded to whole microvolts: error <= 0.5 uV (the source's step is 0.305 uV)"],
    )


def convert_scipy_ecg(raw: np.ndarray, fs_hz: float = 360.0) -> Converted:
    """Scipy's MIT-BIH record 208 excerpt: uint16 with mV = (x - 1024) / 200 -> int16 uV
    (exact: one ADC step is 5 uV).
    """
    raw = np.asarray(raw)
    if raw.dtype != np.uint16:
        raise ValueError(f"scipy ecg.dat: expected uint16 samples, got {raw.dtype}")
    check_signal("scipy ecg.dat", raw, fs_hz, min_duration_s=60.0)
    uv = (raw.astype(np.int64) - 1024) * 5
    return Converted(
        "scipy_mitbih208",
        fs_hz,
        to_int16_uv(uv, name="scipy ecg.dat", max_error_uv=0.0),
        notes=["exact (one ADC step = 5 uV)"],
    )


def parse_opensignals(text: str) -> tuple[dict[str, Any], np.ndarray]:
    """An OpenSignals text export -> (device header dict, data ``[n, columns]``)."""
    lines = text.splitlines()
    if not lines or not lines[0].startswith("# OpenSignals Text File Format"):
        raise ValueError("not an OpenSignals text export (first line differs)")
    try:
        end = lines.index("# EndOfHeader")
    except ValueError:
        raise ValueError("OpenSignals export without '# EndOfHeader'") from None
    header_json = [ln[1:].strip() for ln in lines[1:end] if ln.startswith("# {")]
    if len(header_json) != 1:
        raise ValueError(f"expected one JSON header line, found {len(header_json)}")
    devices = json.loads(header_json[0])
    if len(devices) != 1:
        raise ValueError(f"expected one device in the header, found {list(devices)}")
    header = next(iter(devices.values()))
    rows = [ln.split() for ln in lines[end + 1 :] if ln.strip()]
    data = np.array(rows, dtype=np.float64)
    if data.ndim != 2 or data.shape[1] != len(header["column"]):
        raise ValueError(f"data shape {data.shape} does not match columns {header['column']}")
    return header, data


def bitalino_ecg_uv(adc: np.ndarray, n_bits: int) -> np.ndarray:
    """BITalino ECG sensor ADC counts -> microvolts (datasheet transfer function)."""
    adc = np.asarray(adc, dtype=np.float64)
    if adc.size and (adc.min() < 0 or adc.max() > 2**n_bits - 1):
        raise ValueError(f"ADC values {adc.min()}..{adc.max()} outside 0..{2**n_bits - 1}")
    return (adc / 2**n_bits - 0.5) * BITALINO_VCC_V / BITALINO_ECG_GAIN * 1e6


def convert_pyhrv(text: str) -> Converted:
    """Pyhrv's SampleECG.txt (OpenSignals) -> float32 microvolts at the header's rate."""
    header, data = parse_opensignals(text)
    fs_hz = float(header["sampling rate"])
    columns = list(header["column"])
    if header.get("sensor") != ["ECG"] or header.get("label") != ["A2"]:
        raise ValueError(f"expected one ECG sensor on A2, header says {header}")
    col = columns.index("A2")
    n_bits = int(header["resolution"][col])
    nseq = data[:, columns.index("nSeq")].astype(int)
    lost = int(np.count_nonzero(np.diff(nseq) % 16 != 1))
    if lost:
        raise ValueError(f"pyhrv SampleECG: {lost} breaks in the 4-bit nSeq counter (lost frames)")
    adc = data[:, col]
    check_signal("pyhrv SampleECG", adc, fs_hz, min_duration_s=10.0)
    return Converted(
        "pyhrv_bitalino",
        fs_hz,
        bitalino_ecg_uv(adc, n_bits).astype(np.float32),
        notes=[
            f"{n_bits}-bit ADC converted with the BITalino ECG transfer function "
            f"(VCC {BITALINO_VCC_V} V, gain {BITALINO_ECG_GAIN:g}); one ADC step = "
            f"{BITALINO_VCC_V / 2**n_bits / BITALINO_ECG_GAIN * 1e6:.2f} uV",
        ],
    )


def convert_polar(time_ns: np.ndarray, ecg_mv: np.ndarray) -> Converted:
    """DetectPVC's ``polar_h10`` (time in ns since the epoch, ECG in mV) -> int16 microvolts
    with per-sample time stamps from the first sample; the rate is their effective rate.
    """
    t = np.asarray(time_ns, dtype=np.float64)
    ecg_mv = np.asarray(ecg_mv, dtype=np.float64)
    if t.shape != ecg_mv.shape or t.ndim != 1:
        raise ValueError(f"polar_h10: time shape {t.shape} differs from ecg shape {ecg_mv.shape}")
    if t.size < 2 or not np.isfinite(t).all():
        raise ValueError("polar_h10: time must hold at least 2 finite values")
    ts = (t - t[0]) / 1e9
    steps = np.diff(ts)
    if not (steps > 0).all():
        raise ValueError(f"polar_h10: time is not increasing at {int(np.argmin(steps > 0))}")
    fs_hz = round((ts.size - 1) / float(ts[-1]), 6)
    check_signal("polar_h10 ecg", ecg_mv, fs_hz, min_duration_s=60.0)
    if steps.max() > 2.5 / fs_hz:
        raise ValueError(f"polar_h10: a gap of {steps.max():.3f} s in the time stamps")
    samples = to_int16_uv(ecg_mv * 1000.0, name="polar_h10 ecg", max_error_uv=1e-6)
    return Converted(
        "polar_h10_detectpvc",
        fs_hz,
        samples,
        notes=[
            "exact (the source holds whole microvolts)",
            f"a time stamp on every sample (the device's timing; steps "
            f"{steps.min() * 1e3:.4f}-{steps.max() * 1e3:.4f} ms); nominal rate = their "
            f"effective rate {fs_hz:g} Hz (the H10 is nominally 130 Hz)",
        ],
        timestamps_s=ts,
    )


# ---------------------------------------------------------------------------------------
# XDF writing
# ---------------------------------------------------------------------------------------


_FORMATS = {np.dtype(np.int16): "int16", np.dtype(np.float32): "float32"}


def xdf_bytes(rec: Converted, *, subject: str, chunk_n: int = CHUNK_N, t0_s: float = 0.0) -> bytes:
    """``rec`` as an XDF file: stream 1 ``ECG`` (uV), stream 2 ``Markers`` if it has events.

    Written with :class:`ecgaffect.io.xdf.XdfWriter` (the project's one XDF writer); regular
    Samples chunks carry a time stamp on their first sample only.
    """
    fmt = _FORMATS.get(rec.samples_uv.dtype)
    if fmt is None:
        raise ValueError(
            f"{rec.name}: samples must be int16 or float32, got {rec.samples_uv.dtype}"
        )
    if rec.samples_uv.ndim != 1 or rec.samples_uv.size == 0:
        raise ValueError(f"{rec.name}: samples must be a non-empty 1-D array")
    if chunk_n < 1:
        raise ValueError(f"chunk_n must be >= 1, got {chunk_n}")

    def spec(
        name: str, fmt: str, srate: float, uid: str, channel: dict, desc: str
    ) -> XdfStreamSpec:
        return XdfStreamSpec(
            name=name,
            type=name,
            channels=[channel],
            nominal_srate=srate,
            channel_format=fmt,
            source_id=uid,
            created_at=0.0,
            uid=uid,
            hostname="ecgaffect-build-recordings",
            desc_xml=desc,
        )

    buf = io.BytesIO()
    w = XdfWriter(buf)
    ecg_channel = {"label": "ECG", "unit": "microvolts", "type": "ECG"}
    ecg_desc = desc_xml("ecgaffect", {"subject": subject})
    w.add_stream(1, spec("ECG", fmt, float(rec.fs_hz), f"{rec.name}-ecg", ecg_channel, ecg_desc))
    if rec.events:
        w.add_stream(
            2, spec("Markers", "string", 0.0, f"{rec.name}-markers", {"label": "Marker"}, "")
        )
    n = rec.samples_uv.size
    stamps = rec.timestamps_s
    if stamps is not None and np.shape(stamps) != (n,):
        raise ValueError(f"{rec.name}: {np.shape(stamps)} time stamps for {n} samples")
    for start in range(0, n, chunk_n):
        block = rec.samples_uv[start : start + chunk_n]
        if stamps is None:
            w.write_chunk(regular_samples_chunk(1, block, t0_s + start / rec.fs_hz))
        else:
            ts = t0_s + np.asarray(stamps[start : start + chunk_n], dtype=np.float64)
            w.write_chunk(numeric_samples_chunk(1, ts, block[:, None], fmt))
    if rec.events:
        times_s = [t0_s + t for t, _ in rec.events]
        w.write_chunk(string_samples_chunk(2, times_s, [label for _, label in rec.events]))
    last = t0_s + (float(stamps[-1]) if stamps is not None else (n - 1) / rec.fs_hz)
    w.write_footer(1, first_timestamp_s=t0_s, last_timestamp_s=last, count=n)
    if rec.events:
        first_e, last_e = t0_s + rec.events[0][0], t0_s + rec.events[-1][0]
        w.write_footer(2, first_timestamp_s=first_e, last_timestamp_s=last_e, count=len(rec.events))
    return buf.getvalue()


def write_recording(rec: Converted, path: Path, *, subject: str) -> Path:
    """Write ``rec`` to ``path`` (``.xdf``, or ``.xdfz`` gzip-compressed with mtime 0)."""
    data = xdf_bytes(rec, subject=subject)
    if path.suffix == ".xdfz":
        buf = io.BytesIO()
        with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as gz:
            gz.write(data)
        data = buf.getvalue()
    elif path.suffix != ".xdf":
        raise ValueError(f"{path}: suffix must be .xdf or .xdfz")
    path.write_bytes(data)
    return path


# ---------------------------------------------------------------------------------------
# Download and extraction
# ---------------------------------------------------------------------------------------


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def download(source: Source, dest: Path) -> Path:
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--disable-pip-version-check",
        *source.pip_args,
        source.requirement,
        "-d",
        str(dest),
    ]
    log.info("%s", " ".join(cmd))
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    found = sorted(dest.glob(source.archive_glob))
    if len(found) != 1:
        raise FileNotFoundError(f"expected one {source.archive_glob} in {dest}, found {found}")
    return found[0]


def read_member(archive: Path, member_suffix: str) -> tuple[str, bytes]:
    """The archive member whose path ends with ``member_suffix`` (exactly one)."""
    if archive.name.endswith(".tar.gz"):
        with tarfile.open(archive, "r:gz") as tf:
            names = [m for m in tf.getnames() if m.endswith(member_suffix)]
            if len(names) != 1:
                raise FileNotFoundError(f"{archive}: {member_suffix} matches {names}")
            f = tf.extractfile(names[0])
            assert f is not None
            return names[0], f.read()
    with zipfile.ZipFile(archive) as zf:
        names = [m for m in zf.namelist() if m.endswith(member_suffix)]
        if len(names) != 1:
            raise FileNotFoundError(f"{archive}: {member_suffix} matches {names}")
        return names[0], zf.read(names[0])


def _npy(data: bytes) -> np.ndarray:
    return np.load(io.BytesIO(data), allow_pickle=False)


# ---------------------------------------------------------------------------------------
# Metadata and README
# ---------------------------------------------------------------------------------------

ATTRIBUTION = {
    "systole": (
        "Nicolas Legrand, systole (https://github.com/embodied-computation-group/systole), "
        "GPL-3.0. Recording described in: Legrand, N., Etard, O., Vandevelde, A., Pierre, M., "
        "Viader, F., Clochon, P., Doidy, F., Peschanski, D., Eustache, F., & Gagnepain, P. "
        "(2020). Long-term modulation of cardiac activity induced by inhibitory control over "
        "emotional memories. Scientific Reports, 10, 15008. "
        "https://doi.org/10.1038/s41598-020-71858-2"
    ),
    "scipy": (
        "SciPy (scipy.misc.electrocardiogram), BSD-3-Clause. Data: MIT-BIH Arrhythmia "
        "Database record 208 (Moody GB, Mark RG. The impact of the MIT-BIH Arrhythmia "
        "Database. IEEE Eng in Med and Biol 20(3):45-50, 2001; Goldberger AL et al. "
        "PhysioBank, PhysioToolkit, and PhysioNet. Circulation 101(23):e215-e220, 2000), "
        "Open Data Commons Attribution License v1.0."
    ),
    "pyhrv": (
        "Pedro Gomes, pyHRV (https://github.com/PGomes92/pyhrv), BSD-3-Clause. Gomes P, "
        "Margaritoff P, Plácido da Silva H. pyHRV: Development and evaluation of an open-source "
        "Python toolbox for heart rate variability (HRV). Proc. Int'l Conf. on Electrical, "
        "Electronic and Computing Engineering (IcETRAN), 2019, pp. 822-828."
    ),
}

ATTRIBUTION["polar"] = (
    "Karl W Broman, detectPVC (https://github.com/kbroman/detectPVC), data/polar_h10.RData, "
    "MIT licence (LICENSE: YEAR 2024, COPYRIGHT HOLDER Karl W Broman)."
)

ATTRIBUTION["eegmat"] = (
    "Zyma I, Tukaev S, Seleznov I, Kiyono K, Popov A, Chernykh M, Shpenkov O. "
    "Electroencephalograms during Mental Arithmetic Task Performance. Data 4(1):14, 2019; "
    "Goldberger AL et al. PhysioBank, PhysioToolkit, and PhysioNet. Circulation "
    "101(23):e215-e220, 2000. PhysioNet EEG During Mental Arithmetic Tasks, Open Data Commons "
    "Attribution License v1.0 (ODC-By 1.0)."
)

KNOWN_ASSUMED = {
    "eegmat": (
        "Known (EEGMAT): a healthy student, clinical ECG electrodes, 500 Hz EDF+, prefilter "
        "HP 0.5 Hz LP 45 Hz, 50 Hz notch; background rest (~180 s) then serial "
        "subtraction of a 2-digit number from a 4-digit one (~60 s), two separate files joined "
        "here at the marker. The recordings' own start times are not kept. Not a Polar strap: "
        "the bandwidth and electrode placement differ."
    ),
    "polar": (
        "Known (detectPVC): 10 minutes of ECG from a Polar H10 chest strap recorded with the "
        "ECGLogger app, one person at rest, columns time (ns since the epoch), ecg (mV), hr, rr; "
        "no affect labels. The time stamps are the recording's own (not regenerated); hr and rr "
        "are not included. Assumed: ecg is in millivolts as documented (values are whole "
        "microvolts, R peaks about 1-1.7 mV)."
    ),
    "systole": (
        "Known: one young healthy participant, 1000 Hz (systole's import_dataset1 "
        "docstring), Stim codes 2 = disgust image, "
        "1 = neutral image (one non-zero sample per onset). Assumed: the ECG array is in "
        "millivolts (systole does not state the unit; the float values span about -4.4 to "
        "4.6 with R peaks of about 1-3, typical of mV, and a quantum of 10/32768)."
    ),
    "scipy": (
        "Known (scipy.misc.electrocardiogram docstring): 360 Hz, uint16 with "
        "mV = (x - 1024) / 200, 5 minutes of MIT-BIH record 208 (lead MLII), a patient with "
        "frequent premature ventricular contractions; not a healthy or affective recording."
    ),
    "pyhrv": (
        "Known from the file's OpenSignals header: BITalino device, 1000 Hz, columns nSeq, "
        "I1, I2, O1, O2, A2, one ECG sensor on A2 with 10-bit resolution; pyhrv reads the last "
        "column as the ECG (tools.py example, np.loadtxt(...)[:, -1]). Assumed: the BITalino "
        "ECG sensor transfer function ECG(V) = (ADC/2^10 - 1/2) * 3.3 V / 1100 (datasheet); "
        "the board revision is not stated, so the microvolt scale is approximate."
    ),
}


POLAR_FILE = "polar_h10_detectpvc.xdfz"
POLAR_SOURCE = "detectPVC (github.com/kbroman/detectPVC)"


def read_polar_rdata(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``time`` and ``ecg`` of the ``polar_h10`` data frame in an ``.RData`` file."""
    try:
        import rdata
    except ImportError as exc:
        raise SystemExit(
            "--polar-rdata needs the 'rdata' package: pip install 'rdata>=1.1'"
        ) from exc
    frames = rdata.conversion.convert(rdata.parser.parse_file(path))
    if "polar_h10" not in frames:
        raise ValueError(f"{path}: no 'polar_h10' object (found {sorted(frames)})")
    df = frames["polar_h10"]
    return np.asarray(df["time"], dtype=np.float64), np.asarray(df["ecg"], dtype=np.float64)


def polar_entry(rdata_path: Path, out_dir: Path) -> dict[str, Any]:
    """Convert and write the Polar H10 recording; its manifest entry."""
    rec = convert_polar(*read_polar_rdata(rdata_path))
    path = write_recording(rec, out_dir / POLAR_FILE, subject="polar-h10-detectpvc")
    return {
        "file": path.name,
        "subject": "polar-h10-detectpvc",
        "source_package": POLAR_SOURCE,
        "archive": rdata_path.name,
        "archive_sha256": sha256_file(rdata_path),
        "members": ["polar_h10 (R data frame: time, ecg)"],
        "licence": "MIT",
        "attribution": ATTRIBUTION["polar"],
        "known_and_assumed": KNOWN_ASSUMED["polar"],
        "fs_hz": rec.fs_hz,
        "n_samples": int(rec.samples_uv.size),
        "duration_s": round(rec.duration_s, 6),
        "units": "uV",
        "sample_format": str(rec.samples_uv.dtype),
        "events": {},
        "n_events": 0,
        "resampled": False,
        "timestamps": "per-sample",
        "notes": rec.notes,
        "file_bytes": path.stat().st_size,
        "file_sha256": sha256_file(path),
    }


EEGMAT_SUBJECT = "Subject07"
EEGMAT_FILE = "eegmat_subject07_rest_arithmetic.xdfz"
EEGMAT_TASK_MARKER = "task onset: serial subtraction"
EEGMAT_SOURCE = "PhysioNet EEGMAT 1.0.0 (ECG lead; NEMAR nm000109)"


def convert_eegmat(session: Any) -> Converted:
    """One EEGMAT subject (rest then serial subtraction, joined) -> int16 microvolts at the
    file's 500 Hz, with a marker at the task onset.
    """
    join = [e.time_s for e in session.events if e.label == JOIN_EVENT]
    if len(join) != 1:
        joins = [e.time_s for e in session.events]
        raise ValueError(f"{session.key}: expected one rest/task join event, got {joins}")
    x_uv = np.asarray(session.ecg_uv(), dtype=np.float64)
    check_signal(f"{session.key} ecg", x_uv / 1000.0, session.fs_hz, min_duration_s=120.0)
    samples = to_int16_uv(x_uv, name=f"{session.key} ecg", max_error_uv=0.5)
    return Converted(
        Path(EEGMAT_FILE).stem,
        float(session.fs_hz),
        samples,
        events=[(float(join[0]), EEGMAT_TASK_MARKER)],
        notes=[
            f"{session.subject}: background rest ({join[0]:.0f} s) then mental arithmetic "
            f"({session.duration_s - join[0]:.0f} s), the two EDF+ files joined",
            "rounded to whole microvolts: error <= 0.5 uV",
            "this subject is kept out of the packaged stress model's training data",
        ],
    )


def eegmat_entry(root: Path, out_dir: Path, subject: str = EEGMAT_SUBJECT) -> dict[str, Any]:
    """Convert and write the EEGMAT demo recording from an EEGMAT folder; its manifest entry."""
    from ecgaffect.datasets.eegmat import load_sessions

    sessions = [s for s in load_sessions(root) if s.subject == subject]
    if not sessions:
        raise ValueError(f"{root}: no EEGMAT subject {subject!r}")
    rec = convert_eegmat(sessions[0])
    path = write_recording(rec, out_dir / EEGMAT_FILE, subject=f"eegmat-{subject}")
    files = sorted(p.name for p in Path(root).glob(f"{subject}_*.edf"))
    return {
        "file": path.name,
        "subject": f"eegmat-{subject}",
        "source_package": EEGMAT_SOURCE,
        "archive": ", ".join(files),
        "archive_sha256": "; ".join(f"{f} {sha256_file(Path(root) / f)}" for f in files),
        "members": ["ECG ECG channel"],
        "licence": "ODC-By 1.0",
        "attribution": ATTRIBUTION["eegmat"],
        "known_and_assumed": KNOWN_ASSUMED["eegmat"],
        "fs_hz": rec.fs_hz,
        "n_samples": int(rec.samples_uv.size),
        "duration_s": round(rec.duration_s, 6),
        "units": "uV",
        "sample_format": str(rec.samples_uv.dtype),
        "events": {EEGMAT_TASK_MARKER: 1},
        "n_events": 1,
        "resampled": False,
        "notes": rec.notes,
        "file_bytes": path.stat().st_size,
        "file_sha256": sha256_file(path),
    }


def _kept_entry(out_dir: Path, file: str, how: str) -> dict[str, Any] | None:
    """The committed entry of ``file`` when its source is not given (file checked)."""
    manifest = out_dir / "manifest.json"
    if not manifest.is_file():
        return None
    for e in json.loads(manifest.read_text(encoding="utf-8"))["recordings"]:
        if e["file"] == file:
            path = out_dir / file
            if not path.is_file() or sha256_file(path) != e["file_sha256"]:
                raise RuntimeError(f"{path} does not match its manifest entry; rebuild it {how}")
            log.info("kept %s (rebuild it %s)", path, how)
            return e
    return None


def update_entry(out_dir: Path, entry: dict[str, Any]) -> dict[str, Any]:
    """Replace (or add) one entry of the manifest and rewrite manifest and README."""
    manifest = json.loads((out_dir / "manifest.json").read_text(encoding="utf-8"))
    manifest["recordings"] = [e for e in manifest["recordings"] if e["file"] != entry["file"]]
    manifest["recordings"].append(entry)
    _write_manifest(out_dir, manifest)
    return manifest


def _write_manifest(out_dir: Path, manifest: dict[str, Any]) -> None:
    """Check the size budget, then write ``manifest.json`` and ``README.md``."""
    total = sum(e["file_bytes"] for e in manifest["recordings"])
    if total > MAX_TOTAL_BYTES:
        raise RuntimeError(f"bundled recordings take {total} bytes > budget {MAX_TOTAL_BYTES}")
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    (out_dir / "README.md").write_text(readme(manifest), encoding="utf-8")


def build(
    out_dir: Path,
    work: Path,
    polar_rdata: Path | None = None,
    keep_from: Path | None = None,
    eegmat_root: Path | None = None,
) -> dict[str, Any]:
    """Download, convert, check and write every recording; returns the manifest.

    The Polar H10 recording is built from ``polar_rdata``; without it the committed one in
    ``keep_from`` (default ``out_dir``) is kept.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, Any] = {"format_version": 1, "recordings": []}
    for source in SOURCES:
        archive = download(source, work)
        digest = sha256_file(archive)
        members: list[str] = []
        if source.key == "systole":
            m1, ecg = read_member(archive, "systole/datasets/Task1_ECG.npy")
            m2, stim = read_member(archive, "systole/datasets/Task1_Stim.npy")
            members = [m1, m2]
            rec = convert_systole(_npy(ecg), _npy(stim), 1000.0)
            suffix, subject = ".xdfz", "systole-task1"
        elif source.key == "scipy":
            m1, raw = read_member(archive, "scipy/misc/ecg.dat")
            members = [m1]
            with np.load(io.BytesIO(raw), allow_pickle=False) as npz:
                rec = convert_scipy_ecg(npz["ecg"], 360.0)
            suffix, subject = ".xdf", "mitbih-208"
        else:
            m1, raw = read_member(archive, "pyhrv/files/SampleECG.txt")
            members = [m1]
            rec = convert_pyhrv(raw.decode("utf-8"))
            suffix, subject = ".xdf", "pyhrv-sample"
        path = write_recording(rec, out_dir / f"{rec.name}{suffix}", subject=subject)
        counts: dict[str, int] = {}
        for _, label in rec.events:
            counts[label] = counts.get(label, 0) + 1
        entry = {
            "file": path.name,
            "subject": subject,
            "source_package": source.requirement,
            "archive": archive.name,
            "archive_sha256": digest,
            "members": members,
            "licence": source.licence,
            "attribution": ATTRIBUTION[source.key],
            "known_and_assumed": KNOWN_ASSUMED[source.key],
            "fs_hz": rec.fs_hz,
            "n_samples": int(rec.samples_uv.size),
            "duration_s": round(rec.duration_s, 6),
            "units": "uV",
            "sample_format": str(rec.samples_uv.dtype),
            "events": counts,
            "n_events": len(rec.events),
            "resampled": False,
            "notes": rec.notes,
            "file_bytes": path.stat().st_size,
            "file_sha256": sha256_file(path),
        }
        manifest["recordings"].append(entry)
        log.info("wrote %s (%.1f s, %d bytes)", path, rec.duration_s, entry["file_bytes"])
    built = {
        POLAR_FILE: (lambda: polar_entry(polar_rdata, out_dir)) if polar_rdata else None,
        EEGMAT_FILE: (lambda: eegmat_entry(eegmat_root, out_dir)) if eegmat_root else None,
    }
    how = {POLAR_FILE: "with --polar-rdata", EEGMAT_FILE: "with --eegmat ROOT"}
    src = keep_from or out_dir
    for file, make in built.items():  # built from their source, or the committed ones kept
        if make is not None:
            manifest["recordings"].append(make())
            continue
        kept = _kept_entry(src, file, how[file])
        if kept is not None:
            if src != out_dir:
                (out_dir / file).write_bytes((src / file).read_bytes())
            manifest["recordings"].append(kept)
    _write_manifest(out_dir, manifest)
    return manifest


def update_polar(out_dir: Path, polar_rdata: Path) -> dict[str, Any]:
    """Rebuild only the Polar H10 recording (no download); the other entries are kept."""
    return update_entry(out_dir, polar_entry(polar_rdata, out_dir))


def readme(manifest: dict[str, Any]) -> str:
    lines = [
        "# Bundled recordings",
        "",
        "Real ECG that may be redistributed, converted into our XDF recording format by",
        "`scripts/build_recordings.py` (run it to regenerate these files from the exact PyPI",
        "archives; their sha256 are below, and `manifest.json` holds the same facts for code).",
        "",
        "Format: an `ECG` stream (type `ECG`, one channel `ECG`, unit `microvolts`) with a",
        "time stamp on the first sample of each 10000-sample chunk only (readers deduce the",
        "others from the nominal rate), and a `Markers` stream where the source has events.",
        "The Polar H10 recording instead stamps every sample with the device's own timing.",
        "Time stamps start at 0 s. `.xdfz` is the same, gzip-compressed (pyxdf and",
        "`ecgaffect.io.xdf` read both). Nothing is resampled. Load with",
        "`ecgaffect.io.load_session(path)` or `pyxdf.load_xdf(path)`.",
        "",
        "| file | source | rate | duration | units (stored as) | events | licence |",
        "|---|---|---|---|---|---|---|",
    ]
    for e in manifest["recordings"]:
        ev = ", ".join(f"{n} x {k!r}" for k, n in e["events"].items()) or "none"
        lines.append(
            f"| `{e['file']}` | `{e['source_package']}` | {e['fs_hz']:g} Hz | "
            f"{e['duration_s']:.2f} s | µV ({e['sample_format']}) | {ev} | {e['licence']} |"
        )
    for e in manifest["recordings"]:
        lines += [
            "",
            f"## `{e['file']}`",
            "",
            f"- Source: `{e['source_package']}`, archive `{e['archive']}`",
            f"  (sha256 `{e['archive_sha256']}`), path(s) inside it: "
            + ", ".join(f"`{m}`" for m in e["members"]),
            f"- Licence: {e['licence']}",
            f"- Attribution: {e['attribution']}",
            f"- Sampling rate: {e['fs_hz']:g} Hz (not resampled); {e['n_samples']} samples, "
            f"duration {e['duration_s']:.3f} s",
            f"- Units: microvolts, stored as {e['sample_format']}; " + "; ".join(e["notes"]),
            "- Events: "
            + (
                ", ".join(f"{n} x `{k}`" for k, n in e["events"].items())
                + " (Markers stream, at the onsets)"
                if e["events"]
                else "none"
            ),
            f"- Known / assumed: {e['known_and_assumed']}",
            f"- File: {e['file_bytes']} bytes, sha256 `{e['file_sha256']}`",
        ]
        if e.get("timestamps") == "per-sample":
            lines.insert(-1, "- Timing: a time stamp on every sample (the recording's own)")
    lines += [
        "",
        "Licences: the systole recording is GPL-3.0 data; redistributing it here keeps that",
        "licence for that file. The others are BSD-3-Clause / ODC-By / MIT: keep the",
        "attribution.",
        "These recordings carry no affect labels (systole's image events are stimuli, not",
        "ratings); they are used for pretraining, replay, GUI and pipeline tests.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="output folder")
    parser.add_argument(
        "--polar-rdata",
        type=Path,
        default=None,
        help="detectPVC's data/polar_h10.RData (builds the Polar H10 recording; needs rdata)",
    )
    parser.add_argument(
        "--polar-only",
        action="store_true",
        help="with --polar-rdata: rebuild only the Polar H10 recording (no download)",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="rebuild into a temporary folder and compare with --out byte for byte",
    )
    parser.add_argument(
        "--eegmat",
        type=Path,
        default=None,
        metavar="ROOT",
        help=f"an EEGMAT folder: builds {EEGMAT_FILE} (the demo's rest -> arithmetic session)",
    )
    parser.add_argument(
        "--eegmat-only",
        action="store_true",
        help="with --eegmat: rebuild only the EEGMAT recording (no download)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.eegmat_only:
        if args.eegmat is None:
            parser.error("--eegmat-only needs --eegmat ROOT")
        manifest = update_entry(args.out, eegmat_entry(args.eegmat, args.out))
        print(f"wrote {EEGMAT_FILE}; {len(manifest['recordings'])} recordings in {args.out}")
        return 0
    if args.polar_only:
        if args.polar_rdata is None:
            parser.error("--polar-only needs --polar-rdata PATH")
        manifest = update_polar(args.out, args.polar_rdata)
        print(f"wrote {POLAR_FILE}; {len(manifest['recordings'])} recordings in {args.out}")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "dl"
        work.mkdir()
        if not args.check:
            manifest = build(args.out, work, args.polar_rdata, eegmat_root=args.eegmat)
            total = sum(e["file_bytes"] for e in manifest["recordings"])
            print(f"wrote {len(manifest['recordings'])} recordings, {total} bytes, to {args.out}")
            return 0
        fresh = Path(tmp) / "fresh"
        manifest = build(fresh, work, args.polar_rdata, keep_from=args.out, eegmat_root=args.eegmat)
        bad = [
            e["file"]
            for e in manifest["recordings"]
            if not (args.out / e["file"]).is_file()
            or sha256_file(args.out / e["file"]) != e["file_sha256"]
        ]
        if bad:
            print(f"differ from a fresh build: {bad}")
            return 1
        print(f"all {len(manifest['recordings'])} recordings match a fresh build")
        return 0


if __name__ == "__main__":
    sys.exit(main())
