r"""Reader for TMSi Portilab "Poly5" (TMS32) ``.S00`` files, as used by SWELL-KW.

Layout (all little-endian; see ``reference/datasets.md``):

* header, 217 bytes (version 203, 31-byte file id) or 218 bytes (version 204, 32-byte id).
  The version field decides which: like TMSi's MATLAB ``tms_read.m`` we read the int16 at
  offset 31 (203 there: a 31-byte id), else the one at offset 32 (must be 204). The id bytes
  themselves are not compared exactly (TMSi's ``tms_rd`` does not check them at all, and
  BioSig only looks for ``POLY SAMPLE FILE`` and ``\r\n\x1a``); only the prefix
  ``POLY SAMPLE FILE`` is required, so the 2.04 id ``POLY SAMPLE FILEversion 2.04\r\n\x1a``
  plus one trailing byte reads like any other spelling. After the id:
  file id, version int16, measurement name (81-byte Pascal string), sample rate int16, storage
  rate int16, storage type uint8, number of signals NS int16, number of sample periods int32,
  4 empty bytes, start time (7 x int16: year, month, day, weekday, hour, minute, second),
  number of sample blocks int32, sample periods per block uint16, data block size SD uint16,
  delta-compression flag int16, 64 trailing bytes;
* NS signal descriptions of 136 bytes each: name (41-byte Pascal string), 4 reserved, unit
  (11-byte Pascal string), UnitLow, UnitHigh, ADCLow, ADCHigh (float32), index in the signal
  list, cache offset (int16), 60 reserved;
* data blocks of ``86 + SD`` bytes: period index int32, 4 reserved, block start time (7 x int16,
  DOS time), 64 reserved, then ``SD / 4`` float32 values interleaved over the NS/2 channels.

Signals come in pairs (the 32-bit value was once two 16-bit channels, described as
``"(Lo) name"`` and ``"(Hi) name"``); a channel uses the description of the even member.

The data area is memory-mapped and viewed as a strided numpy array, so
:meth:`Poly5File.read_channel` copies one channel's values and never materialises the others.
"""

from __future__ import annotations

import logging
import mmap
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from ecgaffect.io.errors import FileFormatError, FileSizeLimitError
from ecgaffect.io.units import parse_unit

__all__ = [
    "BLOCK_HEADER_SIZE",
    "HEADER_SIZES",
    "MAGIC",
    "SIGNAL_DESCRIPTION_SIZE",
    "Poly5File",
    "Poly5Signal",
    "read_poly5",
]

log = logging.getLogger(__name__)

#: File id per header version as TMSi writes it (the reader requires only the prefix).
MAGIC = {
    203: b"POLY SAMPLE FILEversion 2.03\r\n\x1a",
    204: b"POLY SAMPLE FILEversion 2.04\r\n\x1a\x00",
}
#: Header size in bytes per version.
HEADER_SIZES = {203: 217, 204: 218}
SIGNAL_DESCRIPTION_SIZE = 136
BLOCK_HEADER_SIZE = 86
_MAGIC_PREFIX = b"POLY SAMPLE FILE"

# Header after the file id: version, name, rates, type, NS, periods, 4 empty, start time, blocks,
# periods/block, SD, compression, 64 trailing.
_HEADER_DTYPE = np.dtype(
    [
        ("version", "<i2"),
        ("name", "S81"),
        ("sample_rate", "<i2"),
        ("storage_rate", "<i2"),
        ("storage_type", "u1"),
        ("n_signals", "<i2"),
        ("n_periods", "<i4"),
        ("empty", "V4"),
        ("start_time", "<i2", (7,)),
        ("n_blocks", "<i4"),
        ("periods_per_block", "<u2"),
        ("block_size", "<u2"),
        ("compression", "<i2"),
        ("trailing", "V64"),
    ]
)
_SIGNAL_DTYPE = np.dtype(
    [
        ("name", "S41"),
        ("reserved", "V4"),
        ("unit", "S11"),
        ("unit_low", "<f4"),
        ("unit_high", "<f4"),
        ("adc_low", "<f4"),
        ("adc_high", "<f4"),
        ("index", "<i2"),
        ("cache_offset", "<i2"),
        ("reserved2", "V60"),
    ]
)
assert _SIGNAL_DTYPE.itemsize == SIGNAL_DESCRIPTION_SIZE
assert _HEADER_DTYPE.itemsize + 31 == HEADER_SIZES[203]

_PAIR_PREFIX = re.compile(r"^\((lo|hi)\)\s*", re.IGNORECASE)


def _pascal(raw: bytes) -> str:
    """Decode a Pascal string (length byte + characters) stored in a fixed-size field."""
    if not raw:
        return ""
    n = min(raw[0], len(raw) - 1)
    return raw[1 : 1 + n].decode("latin-1").strip()


def _dos_time(fields: np.ndarray) -> datetime | None:
    """7 x int16 (year, month, day, weekday, hour, minute, second) -> datetime, None if invalid."""
    year, month, day, _weekday, hour, minute, second = (int(v) for v in fields)
    try:
        return datetime(year, month, day, hour, minute, second)
    except ValueError:
        return None


@dataclass(frozen=True)
class Poly5Signal:
    """One (paired) channel's description: name, unit and the ADC-to-unit scaling."""

    index: int
    name: str
    unit: str
    unit_low: float
    unit_high: float
    adc_low: float
    adc_high: float

    @property
    def gain(self) -> float:
        """Unit per ADC step: ``(UnitHigh - UnitLow) / (ADCHigh - ADCLow)``."""
        return (self.unit_high - self.unit_low) / (self.adc_high - self.adc_low)

    @property
    def is_voltage(self) -> bool:
        """The unit is a voltage in any spelling :func:`ecgaffect.io.units.parse_unit` knows
        (``µV``, ``uVolt``, ``mV``, ...).
        """
        unit = parse_unit(self.unit)
        return unit is not None and unit.is_voltage

    @property
    def scale_to_uv(self) -> float:
        """Factor from the stored unit to microvolts (1.0 for a unit that is no voltage)."""
        unit = parse_unit(self.unit)
        return unit.scale_to_uv if unit is not None and unit.is_voltage else 1.0


class Poly5File:
    """An open, memory-mapped Poly5 file. Use :func:`read_poly5` to open one.

    Attributes:
        path: the file.
        version: header version (203 or 204).
        measurement_name: the name stored in the header.
        fs_hz: sample rate in Hz (the header's sample rate).
        storage_rate_hz: the header's storage rate.
        n_signals: number of signal descriptions (NS, twice the number of channels).
        n_sample_periods: samples per channel announced by the header.
        start_time: wall-clock time of the first sample (``None`` if the header's is invalid).
        n_blocks: blocks announced by the header; ``n_complete_blocks`` is what the file holds.
        periods_per_block: samples per channel in one block.
        block_size_bytes: SD, bytes of sample data in one block.
        signals: one :class:`Poly5Signal` per channel (the even member of each pair).
        n_samples: samples per channel that can be read (``min(n_sample_periods, blocks x
            periods_per_block)``).
        truncated: the file holds fewer complete blocks than the header announces.
    """

    def __init__(self, path: str | Path, *, allow_truncated: bool = False) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"Poly5 file not found: {self.path}")
        self._file = open(self.path, "rb")  # noqa: SIM115 - closed in close()
        try:
            self._mmap: mmap.mmap | None = None
            self._parse(allow_truncated)
        except BaseException:
            self.close()
            raise

    # -- parsing --------------------------------------------------------------------------

    def _fail(self, message: str) -> FileFormatError:
        return FileFormatError(self.path, message)

    def _parse(self, allow_truncated: bool) -> None:
        size = self.path.stat().st_size
        head = self._file.read(HEADER_SIZES[204])
        if len(head) < HEADER_SIZES[203] or not head.startswith(_MAGIC_PREFIX):
            raise self._fail(
                f"not a TMSi Poly5 file: expected the file id {_MAGIC_PREFIX!r}... and a "
                f"{HEADER_SIZES[203]}/{HEADER_SIZES[204]}-byte header, found {head[:32]!r} "
                f"({size} bytes)"
            )
        # Like TMSi's tms_read.m: peek at offset 31; 203 there means the 31-byte id of v2.03,
        # anything else a 32-byte id followed by the version at offset 32.
        peek = int(np.frombuffer(head, "<i2", count=1, offset=31)[0])
        if peek == 203:
            version, id_size = 203, 31
        else:
            version, id_size = 204, 32
            if len(head) < HEADER_SIZES[204]:
                raise self._fail(f"header is truncated: {size} bytes, expected at least 218")
        hdr = np.frombuffer(head, _HEADER_DTYPE, count=1, offset=id_size)[0]
        if int(hdr["version"]) != version:
            raise self._fail(
                f"unknown Poly5 header version {int(hdr['version'])} (the int16 at offset 32; "
                f"{peek} at offset 31); supported versions are 203 (at offset 31) and 204 "
                "(at offset 32)"
            )
        self.version = version
        self.header_size = HEADER_SIZES[version]
        self.measurement_name = _pascal(bytes(hdr["name"]))
        self.fs_hz = float(hdr["sample_rate"])
        self.storage_rate_hz = float(hdr["storage_rate"])
        self.storage_type = int(hdr["storage_type"])
        self.n_signals = int(hdr["n_signals"])
        self.n_sample_periods = int(hdr["n_periods"])
        self.start_time = _dos_time(hdr["start_time"])
        self.n_blocks = int(hdr["n_blocks"])
        self.periods_per_block = int(hdr["periods_per_block"])
        self.block_size_bytes = int(hdr["block_size"])
        self.delta_compression = int(hdr["compression"])

        if self.fs_hz <= 0:
            raise self._fail(f"sample rate in the header must be positive, got {self.fs_hz:g}")
        if self.storage_rate_hz not in (0.0, self.fs_hz):
            log.warning(
                "%s: storage rate %g Hz differs from sample rate %g Hz; using the sample rate",
                self.path,
                self.storage_rate_hz,
                self.fs_hz,
            )
        if self.delta_compression:
            raise self._fail(
                f"delta-compressed Poly5 data (flag {self.delta_compression}) is not supported"
            )
        if self.n_signals <= 0 or self.n_signals % 2:
            raise self._fail(
                f"number of signals must be a positive even number (channels come in "
                f"pairs), got {self.n_signals}"
            )
        if self.n_blocks < 0 or self.n_sample_periods < 0:
            raise self._fail(
                f"negative counts in header: {self.n_blocks} blocks, "
                f"{self.n_sample_periods} sample periods"
            )
        n_channels = self.n_signals // 2
        expected_sd = self.periods_per_block * n_channels * 4
        if self.block_size_bytes != expected_sd or self.periods_per_block == 0:
            raise self._fail(
                f"data block size {self.block_size_bytes} bytes does not match the header: "
                f"{self.periods_per_block} periods per block x {n_channels} channels x 4 bytes "
                f"= {expected_sd} bytes (and periods per block must be > 0)"
            )
        if self.n_sample_periods > self.n_blocks * self.periods_per_block:
            raise self._fail(
                f"header announces {self.n_sample_periods} sample periods but only "
                f"{self.n_blocks} blocks x {self.periods_per_block} = "
                f"{self.n_blocks * self.periods_per_block} fit in its blocks"
            )

        desc_size = self.n_signals * SIGNAL_DESCRIPTION_SIZE
        self.data_offset = self.header_size + desc_size
        if size < self.data_offset:
            raise FileSizeLimitError(
                self.path,
                f"file is truncated inside the signal descriptions: {size} bytes, the header "
                f"and {self.n_signals} descriptions need {self.data_offset}",
            )
        self._file.seek(self.header_size)
        descs = np.frombuffer(self._file.read(desc_size), _SIGNAL_DTYPE)
        self.signals = []
        for ch in range(n_channels):
            d = descs[2 * ch]
            sig = Poly5Signal(
                index=ch,
                name=_PAIR_PREFIX.sub("", _pascal(bytes(d["name"]))),
                unit=_pascal(bytes(d["unit"])),
                unit_low=float(d["unit_low"]),
                unit_high=float(d["unit_high"]),
                adc_low=float(d["adc_low"]),
                adc_high=float(d["adc_high"]),
            )
            if sig.adc_high == sig.adc_low:
                raise self._fail(
                    f"signal {ch} ({sig.name!r}) has ADCHigh == ADCLow ({sig.adc_low:g}); "
                    "its scaling is undefined"
                )
            self.signals.append(sig)

        self.block_stride = BLOCK_HEADER_SIZE + self.block_size_bytes
        data_bytes = size - self.data_offset
        self.n_complete_blocks = min(self.n_blocks, data_bytes // self.block_stride)
        expected_size = self.data_offset + self.n_blocks * self.block_stride
        self.truncated = self.n_complete_blocks < self.n_blocks
        if self.truncated:
            msg = (
                f"truncated data: the header announces {self.n_blocks} blocks "
                f"({expected_size} bytes) but the file has {size} bytes, so only "
                f"{self.n_complete_blocks} blocks are complete"
            )
            if not allow_truncated:
                raise self._fail(msg + "; pass allow_truncated=True to read the complete blocks")
            log.warning("%s: %s; reading the complete blocks", self.path, msg)
        elif size > expected_size:
            log.warning(
                "%s: %d bytes after the last of %d blocks are ignored",
                self.path,
                size - expected_size,
                self.n_blocks,
            )
        self.n_samples = min(self.n_sample_periods, self.n_complete_blocks * self.periods_per_block)
        if self.n_sample_periods == 0 and self.n_blocks > 0:
            log.warning(
                "%s: header gives 0 sample periods for %d blocks; reading all blocks",
                self.path,
                self.n_blocks,
            )
            self.n_samples = self.n_complete_blocks * self.periods_per_block
        if self.truncated:
            self.n_samples = self.n_complete_blocks * self.periods_per_block

        if self.n_complete_blocks > 0:
            self._mmap = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ)
        self._block_dtype = np.dtype(
            [
                ("period", "<i4"),
                ("reserved", "V4"),
                ("time", "<i2", (7,)),
                ("reserved2", "V64"),
                ("data", "<f4", (self.periods_per_block, n_channels)),
            ]
        )

    # -- access ---------------------------------------------------------------------------

    def _blocks(self) -> np.ndarray:
        if self._file.closed:
            raise ValueError(f"Poly5 file {self.path} is closed")
        if self._mmap is None:
            return np.zeros(0, self._block_dtype)
        return np.ndarray(
            (self.n_complete_blocks,),
            dtype=self._block_dtype,
            buffer=self._mmap,
            offset=self.data_offset,
        )

    @property
    def duration_s(self) -> float:
        return self.n_samples / self.fs_hz

    @property
    def channel_names(self) -> list[str]:
        return [s.name for s in self.signals]

    def signal(self, channel: int | str) -> Poly5Signal:
        """The description of a channel given by 0-based index or by (case-insensitive) name."""
        if isinstance(channel, str):
            matches = [s for s in self.signals if s.name.casefold() == channel.casefold()]
            if len(matches) != 1:
                what = "no channel" if not matches else f"{len(matches)} channels"
                raise ValueError(
                    f"{self.path}: {what} named {channel!r}; channels are {self.channel_names}"
                )
            return matches[0]
        if isinstance(channel, bool) or not isinstance(channel, int | np.integer):
            raise ValueError(f"channel must be an int index or a name, got {channel!r}")
        if not 0 <= int(channel) < len(self.signals):
            raise ValueError(
                f"{self.path}: channel index {channel} out of range; the file has "
                f"{len(self.signals)} channels (0..{len(self.signals) - 1}): "
                f"{self.channel_names}"
            )
        return self.signals[int(channel)]

    def read_raw(self, channel: int | str) -> np.ndarray:
        """The stored float32 ADC values of one channel (a copy of only that channel)."""
        sig = self.signal(channel)
        data = self._blocks()["data"][:, :, sig.index]  # strided view, nothing read yet
        return data.reshape(-1)[: self.n_samples]  # copies this channel only

    def read_channel(self, channel: int | str) -> np.ndarray:
        """One channel in physical units as float64.

        Scaled as ``(x - ADCLow) / (ADCHigh - ADCLow) * (UnitHigh - UnitLow) + UnitLow``;
        voltage units (``µV``, ``mV``, ``V``...) are then converted to **µV**. Other units
        (``bpm``, ``-``) are returned as stored; check ``signal(channel).unit``.
        """
        sig = self.signal(channel)
        raw = self.read_raw(sig.index)
        out = (raw.astype(np.float64) - sig.adc_low) * sig.gain + sig.unit_low
        if sig.scale_to_uv != 1.0:
            out *= sig.scale_to_uv
        return out

    def block_periods(self) -> np.ndarray:
        """The period index stored at the start of each complete block (int64)."""
        return self._blocks()["period"].astype(np.int64)

    def block_start_times(self) -> list[datetime | None]:
        """Each complete block's start time (DOS time, 1 s resolution; None if invalid)."""
        times = np.array(self._blocks()["time"])
        return [_dos_time(t) for t in times]

    # -- lifetime -------------------------------------------------------------------------

    def close(self) -> None:
        """Release the memory map and the file. Arrays returned earlier stay valid (copies)."""
        if self._mmap is not None:
            try:
                self._mmap.close()
            except BufferError:  # a view is still alive; it keeps the map until collected
                log.debug("%s: memory map still referenced at close()", self.path)
            self._mmap = None
        self._file.close()

    def __enter__(self) -> Poly5File:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"Poly5File({str(self.path)!r}, version={self.version}, fs_hz={self.fs_hz:g}, "
            f"channels={self.channel_names}, n_samples={self.n_samples}, "
            f"start_time={self.start_time})"
        )


def read_poly5(path: str | Path, *, allow_truncated: bool = False) -> Poly5File:
    """Open a TMSi Poly5 ``.S00`` file (header versions 203 and 204).

    Reads the header and signal descriptions, checks them against the file size and
    memory-maps the data; samples are decoded on :meth:`Poly5File.read_channel`.

    Args:
        path: the ``.S00`` file.
        allow_truncated: read the complete blocks of a file that ends early instead of
            raising (a warning says how many blocks were complete).

    Raises:
        FileNotFoundError: no such file.
        FileFormatError: no ``POLY SAMPLE FILE`` id, unknown version, inconsistent sizes,
            truncated data (:class:`FileSizeLimitError` when the header announces more
            than the file holds).
    """
    return Poly5File(path, allow_truncated=allow_truncated)
