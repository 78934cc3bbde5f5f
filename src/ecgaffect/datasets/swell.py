"""SWELL-KW loader (Koldijk et al., ICMI 2014; DOI 10.17026/dans-x55-69zp, CC BY-NC-SA 4.0).

Expected layout under ``root`` (the unzipped ``0_SWELL.zip``, or a partial copy made by
``ecgaffect datasets download swell``)::

    Behavioral-features - per minute.xlsx        sheet "SWELLdata" (or the .tab export)
    0 - Raw data/D - Physiology - raw data/Mobi signals (raw and filtered)/ppN_D-M-YYYY_cK.S00

Each ``.S00`` (TMSi Poly5, see :mod:`ecgaffect.io.poly5`) holds one block (about an hour)
of one participant; a ``..._cK_cont.S00`` file continues block K after an interruption. One
:class:`~ecgaffect.datasets.session.Session` is yielded per participant-block with one
:class:`~ecgaffect.datasets.session.Segment` per labelled minute of the label sheet, placed by
the minute's ``timestamp`` against the file header's start time. Labels per minute:

* ``condition``: ``R`` (relaxation), ``N`` (neutral), ``I`` (interruptions), ``T`` (time
  pressure), taken from the sheet, never from the block number;
* ``stress``: the same letter, so the ``binary``/``condition``/``paper`` schemes of
  :mod:`~ecgaffect.datasets.session` apply (N vs {T, I}, R dropped);
* ``arousal``, ``valence``, ``dominance``: the block's SAM ratings (``Arousal_rc``,
  ``Valence_rc``, ``Dominance``), NaN where the sheet has none (relaxation minutes) or 999.

**ECG channel.** Chosen by the signal description, never by position alone: the default is the
"raw physiological signal in µV" (the clean ECG channel; it becomes a clean ECG once
decimated 2048 -> 256 Hz). :data:`ECG_CHANNEL_PATTERNS` lists the descriptions tried, in
order; the first pattern that matches exactly one voltage channel wins (units in any spelling
TMSi writes: ``µV``, ``µVolt``, ``uVolt``...). The channel names of the real files have not
been checked by us (we cannot download the dataset here). If none of the patterns matches,
the loader falls back to what the published SWELL processing code does: the **6th measured
channel** (:data:`PUBLISHED_ECG_POSITION`, counted after dropping unused channels, i.e. those
without a name), if that one is a voltage channel; the choice is logged and kept in the
provenance. Otherwise the error lists the file's channels and you pick one with
``channel="name"`` (or a 0-based index of the paired channel list).

**Non-finite samples** (NaN/inf in the stored floats) are not passed on: the block raises
:class:`~ecgaffect.io.errors.NonFiniteSamplesError` (skipped and reported with
``skip_bad=True``), like the other loaders.

**Continuation files** are appended to their block. The gap between the end of the main file
and the start of the continuation (from the header start times, 1 s resolution) is filled with
a straight line between the samples on either side, so the session stays one continuous signal
on the wall-clock time base the labels use; the gap is recorded as ``gap_start``/``gap_end``
events and in ``provenance["gaps"]``, and every minute that overlaps the gap (with a 1 s
margin for the clock resolution) gets no segment, so no labelled window contains filled data.
"""

from __future__ import annotations

import logging
import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from ecgaffect._optional import require
from ecgaffect.datasets.base import DatasetError, LoadReport
from ecgaffect.datasets.session import Event, Segment, Session
from ecgaffect.io.paths import check_finite
from ecgaffect.io.poly5 import Poly5File, Poly5Signal, read_poly5

__all__ = [
    "ECG_CHANNEL_PATTERNS",
    "PUBLISHED_ECG_POSITION",
    "LABEL_STEM",
    "RAW_DIR",
    "RATING_COLUMNS",
    "SwellFileName",
    "SwellInfo",
    "iter_sessions",
    "load_sessions",
    "parse_filename",
    "read_labels",
    "scan",
    "select_ecg_channel",
    "source_files",
]

log = logging.getLogger(__name__)

DATASET = "swell"
RAW_DIR = Path("0 - Raw data", "D - Physiology - raw data", "Mobi signals (raw and filtered)")
LABEL_STEM = "Behavioral-features - per minute"
LABEL_SHEET = "SWELLdata"
EXPECTED_LAYOUT = (
    f"expected the SWELL-KW layout: '{LABEL_STEM}.xlsx' (sheet '{LABEL_SHEET}') or "
    f"'{LABEL_STEM}.tab' and the folder '{RAW_DIR.as_posix()}/' with ppN_D-M-YYYY_cK.S00 files"
)
#: Sheet column -> label name of the segments.
RATING_COLUMNS = {"Arousal_rc": "arousal", "Valence_rc": "valence", "Dominance": "dominance"}
CONDITIONS = ("R", "N", "I", "T")
MISSING_VALUE = 999.0
#: Regexes tried in order against the channel descriptions (case-insensitive); the first that
#: matches exactly one voltage channel is the ECG channel.
ECG_CHANNEL_PATTERNS: tuple[str, ...] = (
    r"raw\s*phys",  # "Raw physiological signal" (reference: channel 5, µV)
    r"phys.*raw",
    r"^ecg$",
    r"^(ecg|ekg)\b(?!.*(filt|pre|hr|rate|beat))",
    r"^exg\s*1$",
)
#: Published SWELL processing code takes the 6th measured channel (1-based, after dropping the
#: unused ones) of the Mobi files as the ECG: the fallback when no pattern matches.
PUBLISHED_ECG_POSITION = 6
_GAP_MARGIN_S = 1.0  # DOS start times have 1 s resolution

_NAME_RE = re.compile(
    r"^pp(?P<pp>\d{1,2})\s*[_-]\s*(?P<day>\d{1,2})-(?P<month>\d{1,2})-(?P<year>\d{2,4})"
    r"\s*[_-]\s*c(?P<block>[1-3])(?P<cont>[_-]?cont(?:inued)?)?$",
    re.IGNORECASE,
)


# ---------------------------------------------------------------------------------------
# File names
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SwellFileName:
    """What a (possibly misspelt) ``ppN_D-M-YYYY_cK[_cont].S00`` name says."""

    pp: int
    block: int
    continuation: bool
    date: datetime | None  # None when the name's date is not a valid date
    notes: tuple[str, ...] = ()


def parse_filename(name: str) -> SwellFileName | None:
    """Parse a SWELL ``.S00`` file name leniently; ``None`` if it is not one.

    Accepts the typos of the published set: ``-c1`` for ``_c1``, 2- or 3-digit years
    (``pp12_9-10-212_c1`` -> 2012), and ``_cont`` continuation files. The date in the name is
    informational only (one name has a wrong year); the loader uses the header's start time.
    """
    stem = name[:-4] if name.lower().endswith(".s00") else None
    if stem is None:
        return None
    m = _NAME_RE.match(stem.strip())
    if not m:
        return None
    notes = []
    year_text = m["year"]
    year = int(year_text)
    if len(year_text) == 2:
        year += 2000
        notes.append(f"two-digit year {year_text!r} read as {year}")
    elif len(year_text) == 3:
        year = 2000 + year % 100
        notes.append(f"three-digit year {year_text!r} read as {year}")
    sep = stem[m.end("year") : m.start("block")]
    if sep.strip() != "_c":
        notes.append(f"separator {sep.strip()!r} before the block number (expected '_c')")
    try:
        date = datetime(year, int(m["month"]), int(m["day"]))
    except ValueError:
        date = None
        notes.append(f"date {m['day']}-{m['month']}-{year_text} in the name is not a valid date")
    return SwellFileName(
        pp=int(m["pp"]),
        block=int(m["block"]),
        continuation=bool(m["cont"]),
        date=date,
        notes=tuple(notes),
    )


def _subject(pp: int) -> str:
    return f"PP{pp:02d}"


def _parse_pp(value: object) -> int | None:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return None
    if isinstance(value, int | np.integer | float | np.floating):
        return int(value)
    m = re.fullmatch(r"\s*(?:pp)?\s*0*(\d+)\s*", str(value), re.IGNORECASE)
    return int(m[1]) if m else None


def _participant_filter(participants: Iterable[int | str] | None) -> set[int] | None:
    if participants is None:
        return None
    if isinstance(participants, str | int):
        participants = [participants]
    out = set()
    for p in participants:
        n = _parse_pp(p)
        if n is None:
            raise ValueError(
                f"participants: {p!r} is not a SWELL participant; use numbers 1-25 or "
                "'PP1'/'PP01' style names"
            )
        out.add(n)
    return out


# ---------------------------------------------------------------------------------------
# Labels
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LabelMinute:
    """One row of the per-minute label sheet."""

    pp: int
    block: int
    condition: str
    time: datetime
    ratings: dict[str, float]


def _parse_timestamp(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)
    text = str(value).strip().strip('"')
    m = re.fullmatch(r"(\d{8}T\d{6})(\d{0,3})", text)
    if not m:
        return None
    try:
        t = datetime.strptime(m[1], "%Y%m%dT%H%M%S")
    except ValueError:
        return None
    return t + timedelta(milliseconds=int(m[2] or 0))


def _to_float(value: object) -> float:
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan
    return math.nan if (not math.isfinite(v) or v == MISSING_VALUE) else v


def find_label_file(root: Path) -> Path:
    """The label sheet under ``root``: the ``.xlsx`` if present, else the ``.tab``."""
    for ext in (".xlsx", ".tab"):
        p = root / f"{LABEL_STEM}{ext}"
        if p.is_file():
            return p
    raise DatasetError(
        root,
        f"missing label file '{LABEL_STEM}.xlsx' (or '.tab'); "
        "it is in the root of the SWELL-KW set (download it with "
        "'ecgaffect datasets download swell')",
    )


def read_labels(path: str | Path, *, sheet: str = LABEL_SHEET) -> list[LabelMinute]:
    """Read the per-minute label sheet (``.xlsx`` sheet ``SWELLdata`` or the ``.tab`` export).

    Raises:
        FileNotFoundError: no such file.
        DatasetError: the sheet is missing (the message lists the sheets found), a required
            column (``PP``, ``Blok``, ``Condition``, ``timestamp``) is missing, or a row has
            an unreadable participant, block, condition or timestamp.
    """
    pd = require("pandas", "Reading the SWELL label sheet")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"SWELL label file not found: {path}")
    if path.suffix.lower() == ".xlsx":
        openpyxl = require("openpyxl", "Reading the SWELL .xlsx label sheet")
        wb = openpyxl.load_workbook(path, read_only=True)
        try:
            sheets = list(wb.sheetnames)
        finally:
            wb.close()
        if sheet not in sheets:
            raise DatasetError(
                path, f"no sheet named {sheet!r}; the workbook has the sheets {sheets}"
            )
        df = pd.read_excel(path, sheet_name=sheet, engine="openpyxl", dtype=object)
    elif path.suffix.lower() in (".tab", ".tsv", ".csv"):
        sep = "," if path.suffix.lower() == ".csv" else "\t"
        df = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False)
    else:
        raise DatasetError(path, "label file must be .xlsx, .tab (or .tsv/.csv)")

    cols = {str(c).strip().lower(): c for c in df.columns}
    needed = ("pp", "blok", "condition", "timestamp")
    missing = [c for c in needed if c not in cols]
    if missing:
        raise DatasetError(
            path,
            f"missing column(s) {missing}; expected PP, Blok, Condition, timestamp; "
            f"found {list(df.columns)[:20]}",
        )
    rating_cols = {
        name: cols[col.lower()] for col, name in RATING_COLUMNS.items() if col.lower() in cols
    }
    for col, name in RATING_COLUMNS.items():
        if name not in rating_cols:
            log.warning("%s: no %r column; %s labels will be NaN", path, col, name)
    rows: list[LabelMinute] = []
    for i, rec in enumerate(df.to_dict("records")):
        line = i + 2  # 1-based, after the header row
        pp = _parse_pp(rec[cols["pp"]])
        raw_cond = rec[cols["condition"]]
        if pp is None and (raw_cond is None or str(raw_cond).strip() in ("", "nan")):
            continue  # blank row
        block = _to_float(rec[cols["blok"]])
        cond = str(raw_cond).strip().upper()
        t = _parse_timestamp(rec[cols["timestamp"]])
        if pp is None or math.isnan(block) or cond not in CONDITIONS or t is None:
            raise DatasetError(
                path,
                f"row {line}: cannot read PP={rec[cols['pp']]!r}, Blok={rec[cols['blok']]!r}, "
                f"Condition={raw_cond!r} (allowed {list(CONDITIONS)}), "
                f"timestamp={rec[cols['timestamp']]!r} (like '20120918T131600000')",
            )
        ratings = {name: _to_float(rec[col]) for name, col in rating_cols.items()}
        rows.append(LabelMinute(pp, int(block), cond, t, ratings))
    log.info("%s: %d labelled minutes", path, len(rows))
    return rows


# ---------------------------------------------------------------------------------------
# Layout and channel choice
# ---------------------------------------------------------------------------------------


def _find_root(root: str | Path) -> Path:
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"SWELL-KW root {root} is not a directory; {EXPECTED_LAYOUT}")
    if (root / RAW_DIR).is_dir():
        return root
    # accept the folder one level above (e.g. the directory the zip was extracted into)
    for sub in sorted(p for p in root.iterdir() if p.is_dir()):
        if (sub / RAW_DIR).is_dir():
            log.info("using %s as the SWELL-KW root", sub)
            return sub
    raise DatasetError(root, f"no '{RAW_DIR.as_posix()}' folder here; {EXPECTED_LAYOUT}")


def select_ecg_channel(f: Poly5File, channel: int | str | None = None) -> tuple[Poly5Signal, str]:
    """The ECG channel of a SWELL file and how it was chosen (for the provenance).

    ``channel`` (a name or 0-based index) overrides the default search through
    :data:`ECG_CHANNEL_PATTERNS`.
    """
    if channel is not None:
        return f.signal(channel), f"requested ({channel!r})"
    voltage = [s for s in f.signals if s.is_voltage]
    for pattern in ECG_CHANNEL_PATTERNS:
        hits = [s for s in voltage if re.search(pattern, s.name, re.IGNORECASE)]
        if len(hits) == 1:
            return hits[0], f"description matches {pattern!r}"
    measured = [s for s in f.signals if s.name.strip()]
    listing = ", ".join(f"{s.index}: {s.name!r} [{s.unit}]" for s in f.signals)
    n = PUBLISHED_ECG_POSITION
    if len(measured) >= n and measured[n - 1].is_voltage:
        sig = measured[n - 1]
        log.warning(
            "%s: no channel description matches the ECG patterns; taking the %dth measured "
            "channel %r (index %d) as the published SWELL code does. Channels: %s",
            f.path,
            n,
            sig.name,
            sig.index,
            listing,
        )
        return sig, f"{n}th measured channel, as the published SWELL code (no description matched)"
    sixth = (
        f"its {n}th measured channel is {measured[n - 1].name!r} [{measured[n - 1].unit}], "
        "not a voltage"
        if len(measured) >= n
        else f"it has only {len(measured)} measured channels"
    )
    raise DatasetError(
        f.path,
        f"cannot tell the ECG channel from the descriptions ({listing}); none of the "
        f"patterns {list(ECG_CHANNEL_PATTERNS)} matches exactly one voltage channel, and the "
        f"published SWELL code's choice, the {n}th measured channel of the Mobi files "
        f"(after dropping unused ones), does not apply: {sixth}. "
        "Choose one with channel='name' or channel=index",
    )


# ---------------------------------------------------------------------------------------
# Block assembly (shared by scan and load)
# ---------------------------------------------------------------------------------------


@dataclass
class _Block:
    pp: int
    block: int
    main: list[tuple[Path, SwellFileName]] = field(default_factory=list)
    cont: list[tuple[Path, SwellFileName]] = field(default_factory=list)


@dataclass
class BlockInfo:
    """A participant-block as found on disk, before or without reading its samples."""

    subject: str
    trial: str
    files: list[str]
    fs_hz: float
    n_samples: int
    start_time: datetime
    channel: str
    channel_choice: str
    segments: list[Segment]
    events: list[Event]
    gaps: list[dict[str, float]]
    condition: str
    minutes_in_sheet: int
    minutes_dropped: int

    @property
    def duration_s(self) -> float:
        return self.n_samples / self.fs_hz


def _discover(
    raw_dir: Path, wanted: set[int] | None, report: LoadReport, skip_bad: bool
) -> dict[tuple[int, int], _Block]:
    blocks: dict[tuple[int, int], _Block] = {}
    files = sorted(p for p in raw_dir.iterdir() if p.is_file())
    for p in files:
        if p.suffix.lower() != ".s00":
            continue
        parsed = parse_filename(p.name)
        if parsed is None:
            msg = "file name is not ppN_D-M-YYYY_cK[_cont].S00"
            if not skip_bad:
                raise DatasetError(p, msg + " (pass skip_bad=True to skip it)")
            report.skip(p, msg)
            continue
        if wanted is not None and parsed.pp not in wanted:
            continue
        for note in parsed.notes:
            report.note(p, f"lenient file name: {note}")
        b = blocks.setdefault((parsed.pp, parsed.block), _Block(parsed.pp, parsed.block))
        (b.cont if parsed.continuation else b.main).append((p, parsed))
    return blocks


def _fail(skip_bad: bool, report: LoadReport, path: Path, message: str) -> None:
    if not skip_bad:
        raise DatasetError(path, message)
    report.skip(path, message)


def _assemble(
    b: _Block,
    minutes: list[LabelMinute],
    channel: int | str | None,
    report: LoadReport,
    *,
    read_data: bool,
    allow_truncated: bool,
    dtype: np.dtype,
) -> tuple[BlockInfo, np.ndarray | None]:
    """Open the block's files, align the label minutes, optionally read the ECG."""
    (main_path, main_name), *extra = b.main
    if extra:
        raise DatasetError(
            main_path,
            f"participant {b.pp} block {b.block} has several main files: "
            f"{[str(main_path)] + [str(p) for p, _ in extra]}",
        )
    parts = [(main_path, main_name)] + sorted(b.cont, key=lambda x: x[0].name)
    pieces: list[np.ndarray] = []
    events: list[Event] = []
    gaps: list[dict[str, float]] = []
    fs_hz = 0.0
    start_time: datetime | None = None
    n_total = 0
    chosen = ("", "")
    for k, (path, name) in enumerate(parts):
        with read_poly5(path, allow_truncated=allow_truncated) as f:
            if f.truncated:
                report.note(path, f"truncated: read {f.n_complete_blocks} of {f.n_blocks} blocks")
            if f.start_time is None:
                raise DatasetError(path, "header start time is not a valid date; cannot align")
            sig, how = select_ecg_channel(f, channel)
            if k == 0:
                fs_hz, start_time, chosen = f.fs_hz, f.start_time, (sig.name, how)
                if name.date is not None and name.date.date() != f.start_time.date():
                    report.note(
                        path,
                        f"date in the file name ({name.date:%Y-%m-%d}) differs from the header "
                        f"start time ({f.start_time:%Y-%m-%d %H:%M:%S}); using the header",
                    )
            else:
                assert start_time is not None
                if f.fs_hz != fs_hz:
                    raise DatasetError(
                        path,
                        f"continuation file sampled at {f.fs_hz:g} Hz, main file at {fs_hz:g} Hz",
                    )
                gap_s = (f.start_time - start_time).total_seconds() - n_total / fs_hz
                gap_n = round(gap_s * fs_hz)
                trim = 0
                if gap_n < 0:
                    trim = -gap_n
                    report.note(
                        path,
                        f"continuation starts {-gap_s:.1f} s before the previous part ends; "
                        f"its first {trim} samples overlap and are dropped",
                    )
                    gap_n = 0
                gap_start_s = n_total / fs_hz
                gap_end_s = gap_start_s + gap_n / fs_hz
                gaps.append(
                    {"start_s": gap_start_s, "end_s": gap_end_s, "file": str(path)}  # type: ignore[dict-item]
                )
                events += [Event(gap_start_s, "gap_start"), Event(gap_end_s, "gap_end")]
                report.note(
                    path,
                    f"continuation appended after a gap of {gap_n / fs_hz:.1f} s "
                    f"(filled by linear interpolation, no labelled minute uses it)",
                )
                if read_data:
                    nxt = f.read_channel(sig.index)[trim:]
                    check_finite(path, nxt, f"samples of channel {sig.name!r}")
                    if gap_n:
                        last = pieces[-1][-1] if pieces and len(pieces[-1]) else nxt[0]
                        ramp = np.linspace(last, nxt[0], gap_n + 2)[1:-1]
                        pieces.append(ramp.astype(dtype))
                    pieces.append(nxt.astype(dtype))
                n_total += gap_n - trim
                n_total += f.n_samples
                continue
            if read_data:
                x = f.read_channel(sig.index)
                check_finite(path, x, f"samples of channel {sig.name!r}")
                pieces.append(x.astype(dtype))
            n_total += f.n_samples
    assert start_time is not None

    duration_s = n_total / fs_hz
    segments: list[Segment] = []
    dropped = 0
    for m in sorted(minutes, key=lambda m: m.time):
        s = (m.time - start_time).total_seconds()
        e = s + 60.0
        in_gap = any(
            s < g["end_s"] + _GAP_MARGIN_S and e > g["start_s"] - _GAP_MARGIN_S for g in gaps
        )
        if s < 0 or e > duration_s or in_gap:
            dropped += 1
            continue
        labels: dict[str, float | str] = {"condition": m.condition, "stress": m.condition}
        for name in RATING_COLUMNS.values():
            labels[name] = m.ratings.get(name, math.nan)
        segments.append(Segment(s, e, labels))
    main_path = parts[0][0]
    if minutes and not segments:
        t0, t1 = min(m.time for m in minutes), max(m.time for m in minutes)
        raise DatasetError(
            main_path,
            f"none of the {len(minutes)} label minutes ({t0} .. {t1}) falls inside the "
            f"recording ({start_time} .. {start_time + timedelta(seconds=duration_s)}); "
            "the clocks of the sheet and the file disagree",
        )
    if dropped:
        report.note(
            main_path,
            f"{dropped} of {len(minutes)} label minutes not used (outside the recording or "
            "overlapping a gap)",
        )
    conds = Counter(m.condition for m in minutes if m.condition != "R")
    condition = conds.most_common(1)[0][0] if conds else "R"
    info = BlockInfo(
        subject=_subject(b.pp),
        trial=f"block{b.block}",
        files=[str(p) for p, _ in parts],
        fs_hz=fs_hz,
        n_samples=n_total,
        start_time=start_time,
        channel=chosen[0],
        channel_choice=chosen[1],
        segments=segments,
        events=events,
        gaps=gaps,
        condition=condition,
        minutes_in_sheet=len(minutes),
        minutes_dropped=dropped,
    )
    ecg = np.concatenate(pieces) if read_data else None
    if ecg is not None and ecg.shape[0] != n_total:
        raise DatasetError(main_path, f"assembled {ecg.shape[0]} samples, expected {n_total}")
    return info, ecg


def _blocks_with_labels(
    root: str | Path,
    *,
    skip_bad: bool,
    report: LoadReport,
    participants: Iterable[int | str] | None,
    label_file: str | Path | None,
) -> list[tuple[_Block, list[LabelMinute]]]:
    base = _find_root(root)
    report.dataset = DATASET
    report.root = str(base)
    wanted = _participant_filter(participants)
    label_path = Path(label_file) if label_file is not None else find_label_file(base)
    minutes = read_labels(label_path)
    report.files_read += 1
    by_block: dict[tuple[int, int], list[LabelMinute]] = defaultdict(list)
    for m in minutes:
        if wanted is None or m.pp in wanted:
            by_block[(m.pp, m.block)].append(m)
    labelled_pp = {pp for pp, _ in by_block}
    blocks = _discover(base / RAW_DIR, wanted, report, skip_bad)
    out = []
    for key in sorted(blocks):
        b = blocks[key]
        first = (b.main or b.cont)[0][0]
        if not b.main:
            _fail(
                skip_bad,
                report,
                first,
                f"continuation file without a main file for block {b.block}",
            )
            continue
        if b.pp not in labelled_pp:
            _fail(
                skip_bad,
                report,
                first,
                f"participant {b.pp} ({_subject(b.pp)}) has no label rows in {label_path.name}",
            )
            continue
        if key not in by_block:
            _fail(
                skip_bad,
                report,
                first,
                f"participant {b.pp} has no label rows for block {b.block} in {label_path.name}",
            )
            continue
        out.append((b, by_block[key]))
    for pp, block in sorted(set(by_block) - set(blocks)):
        report.note(
            base / RAW_DIR,
            f"{_subject(pp)} block {block} has label rows but no .S00 file",
        )
    return out


# ---------------------------------------------------------------------------------------
# Public entry points
# ---------------------------------------------------------------------------------------


def iter_sessions(
    root: str | Path,
    *,
    skip_bad: bool = False,
    report: LoadReport | None = None,
    participants: Iterable[int | str] | None = None,
    channel: int | str | None = None,
    label_file: str | Path | None = None,
    allow_truncated: bool = False,
    dtype: Any = np.float32,
    progress: bool = True,
) -> Iterator[Session]:
    """Yield one :class:`Session` per participant-block, reading one block at a time.

    A block at 2048 Hz is about 7.4 M samples (30 MB as float32), so iterating keeps memory
    bounded where :func:`load_sessions` holds all 75 blocks. Arguments as in
    :func:`load_sessions`.
    """
    from tqdm.auto import tqdm

    report = report if report is not None else LoadReport()
    plan = _blocks_with_labels(
        root, skip_bad=skip_bad, report=report, participants=participants, label_file=label_file
    )
    dt = np.dtype(dtype)
    if dt.kind != "f":
        raise ValueError(f"dtype must be a floating type (float32 or float64), got {dt}")
    for b, minutes in tqdm(plan, desc="SWELL-KW blocks", unit="block", disable=not progress):
        try:
            info, ecg = _assemble(
                b,
                minutes,
                channel,
                report,
                read_data=True,
                allow_truncated=allow_truncated,
                dtype=dt,
            )
        except (DatasetError, ValueError) as exc:
            if not skip_bad:
                raise
            report.skip(b.main[0][0], str(exc))
            continue
        report.files_read += len(info.files)
        assert ecg is not None
        yield Session(
            dataset=DATASET,
            subject=info.subject,
            trial=info.trial,
            ecg=ecg,
            fs_hz=info.fs_hz,
            units="uV",
            segments=tuple(info.segments),
            events=tuple(info.events),
            start_time=info.start_time,
            provenance={
                "files": info.files,
                "channel": info.channel,
                "channel_choice": info.channel_choice,
                "block_condition": info.condition,
                "gaps": info.gaps,
                "minutes_in_sheet": info.minutes_in_sheet,
                "minutes_dropped": info.minutes_dropped,
            },
        )


def source_files(
    root: str | Path,
    *,
    label_file: str | Path | None = None,
    participants: Iterable[int | str] | None = None,
    **_: Any,
) -> list[Path]:
    """The files :func:`load_sessions` reads with these options (for cache fingerprints).

    The label sheet (``label_file``, which may lie outside ``root``, else the one in the
    root) and the ``.S00`` files of the wanted participants (every ``.S00`` whose name does
    not parse is kept: the loader reports it).
    """
    base = _find_root(root)
    wanted = _participant_filter(participants)
    label_path = Path(label_file) if label_file is not None else find_label_file(base)
    files = [label_path.expanduser().resolve()]
    for p in sorted((base / RAW_DIR).iterdir()):
        if not p.is_file() or p.suffix.lower() != ".s00":
            continue
        parsed = parse_filename(p.name)
        if wanted is None or parsed is None or parsed.pp in wanted:
            files.append(p.resolve())
    return files


def load_sessions(
    root: str | Path,
    *,
    skip_bad: bool = False,
    report: LoadReport | None = None,
    participants: Iterable[int | str] | None = None,
    channel: int | str | None = None,
    label_file: str | Path | None = None,
    allow_truncated: bool = False,
    dtype: Any = np.float32,
    progress: bool = True,
) -> list[Session]:
    """Load SWELL-KW as one :class:`Session` per participant-block (ECG in µV).

    Args:
        root: the folder holding the label sheet and ``0 - Raw data`` (or its parent).
        skip_bad: record bad files in ``report`` and go on instead of raising.
        report: a :class:`LoadReport` to fill (notes on typos, gaps, unused minutes).
        participants: only these participants (``3``, ``"PP3"``, ``"pp03"``...).
        channel: ECG channel name or 0-based index; default: by description
            (:data:`ECG_CHANNEL_PATTERNS`).
        label_file: the label sheet, if not at its usual place under ``root``.
        allow_truncated: read the complete blocks of truncated ``.S00`` files.
        dtype: sample type of ``Session.ecg``; float32 by default (the file stores float32,
            and 75 blocks at 2048 Hz are 2.2 GB as float32).
        progress: show a tqdm progress bar.

    Raises:
        FileNotFoundError: ``root`` or the label file does not exist.
        DatasetError: wrong layout, bad label sheet, or (unless ``skip_bad``) a bad file.
    """
    return list(
        iter_sessions(
            root,
            skip_bad=skip_bad,
            report=report,
            participants=participants,
            channel=channel,
            label_file=label_file,
            allow_truncated=allow_truncated,
            dtype=dtype,
            progress=progress,
        )
    )


@dataclass
class SwellInfo(LoadReport):
    """What :func:`scan` found: a :class:`LoadReport` plus participants, blocks, hours and
    the label balance (labelled minutes that fall inside the recordings).
    """

    participants: list[str] = field(default_factory=list)
    blocks: list[BlockInfo] = field(default_factory=list)
    hours: float = 0.0
    minute_counts: dict[str, Counter[str]] = field(default_factory=dict)

    def summary(self) -> str:
        lines = [
            f"SWELL-KW: {len(self.participants)} participants, {len(self.blocks)} blocks, "
            f"{self.hours:.2f} h of ECG"
        ]
        for task, counts in self.minute_counts.items():
            parts = ", ".join(f"{k}: {v}" for k, v in sorted(counts.items()))
            lines.append(f"  labelled minutes by {task}: {parts}")
        return "\n".join(lines) + "\n" + super().summary()


def scan(
    root: str | Path,
    *,
    participants: Iterable[int | str] | None = None,
    channel: int | str | None = None,
    label_file: str | Path | None = None,
    allow_truncated: bool = True,
) -> SwellInfo:
    """Survey a SWELL-KW copy without reading the samples (headers and label sheet only).

    Never raises for a bad file: every problem is in the returned report (``skipped``). Raises
    only when ``root`` or the label sheet cannot be used at all.
    """
    info = SwellInfo()
    plan = _blocks_with_labels(
        root, skip_bad=True, report=info, participants=participants, label_file=label_file
    )
    counts: dict[str, Counter[str]] = {"condition": Counter()}
    for b, minutes in plan:
        try:
            bi, _ = _assemble(
                b,
                minutes,
                channel,
                info,
                read_data=False,
                allow_truncated=allow_truncated,
                dtype=np.dtype(np.float32),
            )
        except (DatasetError, ValueError) as exc:
            info.skip(b.main[0][0], str(exc))
            continue
        info.files_read += len(bi.files)
        info.blocks.append(bi)
        for seg in bi.segments:
            counts["condition"][str(seg.labels["condition"])] += 1
            for name in RATING_COLUMNS.values():
                v = seg.labels.get(name, math.nan)
                key = "missing" if math.isnan(float(v)) else ("high" if float(v) > 5 else "low")
                counts.setdefault(name, Counter())[key] += 1
    info.participants = sorted({b.subject for b in info.blocks})
    info.hours = sum(b.duration_s for b in info.blocks) / 3600.0
    info.minute_counts = counts
    return info
