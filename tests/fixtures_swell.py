"""Test helpers: a TMSi Poly5 writer and a generator of a tiny SWELL-KW tree.

The writer follows the layout in ``reference/datasets.md`` byte by byte (it does not use the
reader's dtypes), so reader tests check the reader against an independent description.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from ecg_fixtures import synthetic_ecg_uv

MAGIC = {
    203: b"POLY SAMPLE FILEversion 2.03\r\n\x1a",
    # the 2.03 text with the version digits changed and one trailing byte (BioSig's view)
    204: b"POLY SAMPLE FILEversion 2.04\r\n\x1a\x00",
}

#: Channel layout of the SWELL Mobi files (paired channels), name and unit. Names are our
#: fixture's choice; the loader picks the ECG channel by description.
SWELL_CHANNELS = [
    ("ECG lead 1", "µV"),
    ("ECG lead 2", "µV"),
    ("HR", "bpm"),
    ("HR beat-to-beat", "bpm"),
    ("Beat marker", "-"),
    ("Raw physiological signal", "µV"),
    ("Skin conductance", "µS"),
    ("Pre-processed heart signal", "-"),
]


def _pascal(text: str, size: int) -> bytes:
    raw = text.encode("latin-1")[: size - 1]
    return bytes([len(raw)]) + raw + b"\0" * (size - 1 - len(raw))


def _time7(t: datetime) -> bytes:
    weekday = (t.weekday() + 1) % 7  # DOS: 0 = Sunday
    return struct.pack("<7h", t.year, t.month, t.day, weekday, t.hour, t.minute, t.second)


def write_poly5(
    path: str | Path,
    data: np.ndarray,
    *,
    fs_hz: int,
    names: Sequence[str],
    units: Sequence[str],
    start_time: datetime,
    version: int = 203,
    periods_per_block: int = 64,
    scaling: Sequence[tuple[float, float, float, float]] | None = None,
    measurement_name: str = "fixture",
    drop_bytes: int = 0,
    n_periods: int | None = None,
    n_signals_override: int | None = None,
    block_size_override: int | None = None,
    file_id: bytes | None = None,
) -> Path:
    """Write ``data`` (channels x samples, physical units) as a Poly5 file.

    ``scaling`` per channel is ``(unit_low, unit_high, adc_low, adc_high)``; the stored float32
    value is the inverse of the reader's scaling. The last block is zero-padded; the header's
    sample-period count is the true length (or ``n_periods``). ``drop_bytes`` cuts the end of
    the file to simulate an interrupted copy; the ``*_override`` arguments corrupt the header.
    ``file_id`` replaces the id bytes (31 for version 203, 32 for 204).
    """
    data = np.atleast_2d(np.asarray(data, dtype=np.float64))
    n_ch, n = data.shape
    if scaling is None:
        scaling = [(-1000.0, 1000.0, -1000.0, 1000.0)] * n_ch
    stored = np.empty_like(data)
    for c, (ul, uh, al, ah) in enumerate(scaling):
        stored[c] = (data[c] - ul) / (uh - ul) * (ah - al) + al
    n_blocks = -(-n // periods_per_block)
    padded = np.zeros((n_ch, n_blocks * periods_per_block))
    padded[:, :n] = stored
    sd = periods_per_block * n_ch * 4
    ns = 2 * n_ch if n_signals_override is None else n_signals_override

    out = bytearray()
    file_id = MAGIC[version] if file_id is None else file_id
    assert len(file_id) == len(MAGIC[version])
    out += file_id
    out += struct.pack("<h", version)
    out += _pascal(measurement_name, 81)
    out += struct.pack("<hhBhi", fs_hz, fs_hz, 0, ns, n if n_periods is None else n_periods)
    out += b"\0" * 4
    out += _time7(start_time)
    out += struct.pack("<iHHh", n_blocks, periods_per_block, block_size_override or sd, 0)
    out += b"\0" * 64
    assert len(out) == {203: 217, 204: 218}[version]
    for c in range(n_ch):
        ul, uh, al, ah = scaling[c]
        for half in ("Lo", "Hi"):
            desc = _pascal(f"({half}) {names[c]}", 41) + b"\0" * 4 + _pascal(units[c], 11)
            desc += struct.pack("<ffffhh", ul, uh, al, ah, 2 * c, 0) + b"\0" * 60
            assert len(desc) == 136
            out += desc
    block_data = padded.T.reshape(n_blocks, periods_per_block * n_ch).astype("<f4")
    for g in range(n_blocks):
        t = start_time + timedelta(seconds=g * periods_per_block / fs_hz)
        out += struct.pack("<i", g * periods_per_block) + b"\0" * 4 + _time7(t) + b"\0" * 64
        out += block_data[g].tobytes()
    if drop_bytes:
        out = out[:-drop_bytes]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(out))
    return path


# ---------------------------------------------------------------------------------------
# A tiny SWELL-KW tree
# ---------------------------------------------------------------------------------------

RAW_DIR = Path("0 - Raw data", "D - Physiology - raw data", "Mobi signals (raw and filtered)")
LABEL_STEM = "Behavioral-features - per minute"
FS_HZ = 64  # tiny files: the loader reads the rate from each header


def ecg_like(n: int, fs_hz: float, *, seed: int, offset_uv: float = 0.0) -> np.ndarray:
    """Pseudo-ECG in µV, distinct per seed (its offset) so mixing files up shows."""
    return synthetic_ecg_uv(n / fs_hz, fs_hz, seed=seed, noise_uv=20.0, offset_uv=offset_uv + seed)


@dataclass
class BlockSpec:
    pp: int
    block: int
    condition: str  # N / I / T
    start: datetime
    minutes: int  # labelled minutes in the label sheet: first ``relax`` are R
    relax: int = 1
    filename: str = ""
    version: int = 203
    ratings: dict[str, float] = field(default_factory=dict)
    cont_filename: str = ""  # continuation file
    cont_gap_s: int = 0
    cont_minutes: int = 0


def default_blocks() -> list[BlockSpec]:
    """PP1: three blocks incl. a ``-c1`` typo and a v204 file; PP2: a 3-digit-year name and a
    continuation file; PP3 has label rows but no files (missing participant).
    """
    return [
        BlockSpec(
            1,
            1,
            "N",
            datetime(2012, 9, 18, 13, 16),
            3,
            filename="pp1_18-9-2012-c1.S00",
            ratings={"Valence_rc": 6.0, "Arousal_rc": 3.0, "Dominance": 5.0, "Stress": 2.0},
        ),
        BlockSpec(
            1,
            2,
            "T",
            datetime(2012, 9, 18, 14, 30),
            3,
            filename="pp1_18-9-2012_c2.S00",
            version=204,
            ratings={
                "Valence_rc": 4.0,
                "Arousal_rc": 7.0,
                "Dominance": float("nan"),
                "Stress": 6.0,
            },
        ),
        BlockSpec(
            1,
            3,
            "I",
            datetime(2012, 9, 18, 15, 40),
            2,
            filename="pp1_18-9-2012_c3.S00",
            ratings={"Valence_rc": 5.0, "Arousal_rc": 6.0, "Dominance": 4.0, "Stress": 5.0},
        ),
        BlockSpec(
            2,
            1,
            "N",
            datetime(2012, 10, 9, 10, 0),
            2,
            filename="pp2_9-10-212_c1.S00",
            ratings={"Valence_rc": 7.0, "Arousal_rc": 2.0, "Dominance": 6.0, "Stress": 1.0},
        ),
        BlockSpec(
            2,
            2,
            "I",
            datetime(2012, 10, 9, 11, 0),
            4,
            filename="pp2_9-10-2013_c2.S00",
            version=204,
            relax=1,
            ratings={"Valence_rc": 5.0, "Arousal_rc": 6.0, "Dominance": 5.0, "Stress": 4.0},
            cont_filename="pp2_9-10-2012_c2_cont.S00",
            cont_gap_s=30,
            cont_minutes=2,
        ),
        BlockSpec(
            3,
            1,
            "N",
            datetime(2012, 11, 1, 9, 0),
            2,
            filename="",
            ratings={"Valence_rc": 5.0, "Arousal_rc": 5.0, "Dominance": 5.0, "Stress": 3.0},
        ),
    ]


def label_rows(blocks: Sequence[BlockSpec]) -> list[dict[str, object]]:
    """One row per minute, as in the ``SWELLdata`` sheet (plus a feature column)."""
    rows = []
    for b in blocks:
        for m in range(b.minutes):
            t = b.start + timedelta(minutes=m)
            cond = "R" if m < b.relax else b.condition
            row: dict[str, object] = {
                "PP": f"PP{b.pp}",
                "Blok": b.block,
                "Condition": cond,
                "timestamp": t.strftime("%Y%m%dT%H%M%S") + "000",
                "SCL": 3.5 + m,
            }
            for k, v in b.ratings.items():
                row[k] = float("nan") if cond == "R" else v
            rows.append(row)
    return rows


def write_label_xlsx(path: Path, rows: list[dict[str, object]], sheet: str = "SWELLdata") -> Path:
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = sheet
    cols = list(rows[0])
    ws.append(cols)
    for r in rows:
        vals = []
        for c in cols:
            v = r.get(c)
            vals.append(None if isinstance(v, float) and np.isnan(v) else v)
        ws.append(vals)
    wb.save(path)
    wb.close()
    return path


def write_label_tab(path: Path, rows: list[dict[str, object]]) -> Path:
    """The Dataverse ``.tab`` export: tab-separated, quoted strings, empty cells for NaN."""
    cols = list(rows[0])
    lines = ["\t".join(f'"{c}"' for c in cols)]
    for r in rows:
        cells = []
        for c in cols:
            v = r.get(c)
            if isinstance(v, str):
                cells.append(f'"{v}"')
            elif isinstance(v, float) and np.isnan(v):
                cells.append("")
            else:
                cells.append(str(v))
        lines.append("\t".join(cells))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_block_files(raw_dir: Path, b: BlockSpec, *, fs_hz: int = FS_HZ) -> dict[str, Path]:
    """The block's main file (and continuation) with SWELL's 8 paired channels.

    The main file starts 20 s before the first labelled minute and, without a continuation,
    ends with the last one. With a continuation, the continuation starts 5 s before its first
    minute (the last ``cont_minutes``) and the main file ends ``cont_gap_s`` before that.
    """
    out = {}
    start = b.start - timedelta(seconds=20)
    end = b.start + timedelta(minutes=b.minutes)
    cont_start = b.start + timedelta(minutes=b.minutes - b.cont_minutes, seconds=-5)
    main_end = cont_start - timedelta(seconds=b.cont_gap_s) if b.cont_filename else end
    names = [c[0] for c in SWELL_CHANNELS]
    units = [c[1] for c in SWELL_CHANNELS]
    seed = b.pp * 10 + b.block
    parts = [("main", b.filename, start, main_end, 0)]
    if b.cont_filename:
        parts.append(("cont", b.cont_filename, cont_start, end, 5))
    for key, filename, t0, t1, seed_add in parts:
        n = int((t1 - t0).total_seconds() * fs_hz)
        data = np.vstack(
            [ecg_like(n, fs_hz, seed=seed + 100 * c + seed_add) for c in range(len(SWELL_CHANNELS))]
        )
        out[key] = write_poly5(
            raw_dir / filename,
            data,
            fs_hz=fs_hz,
            names=names,
            units=units,
            start_time=t0,
            version=b.version,
        )
    return out


def make_swell_tree(
    root: Path, *, labels: str = "xlsx", blocks: Sequence[BlockSpec] | None = None
) -> Path:
    """Write a tiny SWELL-KW tree in the official layout under ``root``; returns ``root``."""
    blocks = list(default_blocks() if blocks is None else blocks)
    raw = root / RAW_DIR
    raw.mkdir(parents=True, exist_ok=True)
    for b in blocks:
        if b.filename:
            write_block_files(raw, b)
    rows = label_rows(blocks)
    if labels == "xlsx":
        write_label_xlsx(root / f"{LABEL_STEM}.xlsx", rows)
    elif labels == "tab":
        write_label_tab(root / f"{LABEL_STEM}.tab", rows)
    return root
