"""Polar Measurement Data (PMD) protocol and the BLE Heart Rate Measurement: bytes in, numpy out.

Pure protocol code with no Bluetooth import, so every byte layout here is unit-tested without
a device. Facts come from Polar's public BLE SDK and the Bluetooth Heart Rate Service spec
(see ``reference/polar-h10.md``):

* control point requests ``[op, (offline << 7) | type, settings TLVs...]`` and responses
  ``[0xF0, op, type, status, more, params...]``;
* reading the control point returns a feature bitmap ``[0x0F, bits...]`` (bit 0 = ECG);
* ECG data frames ``[type & 0x3F, uint64 LE ns (last sample), frame type, N x int24 LE uV]``;
* H10 accelerometer (ACC, type 2) frames ``[0x02, uint64 LE ns (last sample), frame type 0x01,
  N x (x, y, z) int16 LE mG]`` at 25/50/100/200 Hz, range 2/4/8 G, 16-bit (start with
  :func:`start_acc`).
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "ACC_FRAME_TYPE_INT16",
    "BATTERY_LEVEL_UUID",
    "ECG_FRAME_HEADER_N",
    "H10_ACC_FS_HZ",
    "H10_ACC_RANGES_G",
    "H10_ACC_RESOLUTION_BITS",
    "H10_ECG_FS_HZ",
    "H10_ECG_RESOLUTION_BITS",
    "HEART_RATE_MEASUREMENT_UUID",
    "PMD_CONTROL_UUID",
    "PMD_DATA_UUID",
    "PMD_SERVICE_UUID",
    "POLAR_EPOCH_UNIX_S",
    "ControlResponse",
    "HeartRateMeasurement",
    "MeasurementType",
    "PmdOp",
    "SettingType",
    "build_acc_frame",
    "build_ecg_frame",
    "decode_acc_frame",
    "decode_ecg_frame",
    "frame_measurement",
    "get_settings",
    "is_control_response",
    "parse_control_response",
    "parse_features",
    "parse_heart_rate",
    "start_acc",
    "start_ecg",
    "start_measurement",
    "status_name",
    "stop",
]

PMD_SERVICE_UUID = "fb005c80-02e7-f387-1cad-8acd2d8df0c8"
PMD_CONTROL_UUID = "fb005c81-02e7-f387-1cad-8acd2d8df0c8"
PMD_DATA_UUID = "fb005c82-02e7-f387-1cad-8acd2d8df0c8"
HEART_RATE_SERVICE_UUID = "0000180d-0000-1000-8000-00805f9b34fb"
HEART_RATE_MEASUREMENT_UUID = "00002a37-0000-1000-8000-00805f9b34fb"
BATTERY_SERVICE_UUID = "0000180f-0000-1000-8000-00805f9b34fb"
BATTERY_LEVEL_UUID = "00002a19-0000-1000-8000-00805f9b34fb"

#: The H10's only ECG setting: 130 Hz (nominal, the hardware is +-2 %), 14-bit.
H10_ECG_FS_HZ = 130.0
H10_ECG_RESOLUTION_BITS = 14
#: The H10's accelerometer: sample rates (Hz), ranges (+-G), resolution (bits).
H10_ACC_FS_HZ = (25, 50, 100, 200)
H10_ACC_RANGES_G = (2, 4, 8)
H10_ACC_RESOLUTION_BITS = 16
#: Frame type of the H10's raw ACC frames: 3 x int16 LE per sample, mG.
ACC_FRAME_TYPE_INT16 = 0x01
#: Bytes before the samples of a data frame: type, uint64 timestamp, frame type.
ECG_FRAME_HEADER_N = 10
#: Sensor timestamps count ns since 2000-01-01T00:00:00Z (946684800 s after the Unix epoch).
POLAR_EPOCH_UNIX_S = 946_684_800

_RESPONSE_CODE = 0xF0
_FEATURES_CODE = 0x0F


class PmdOp(enum.IntEnum):
    GET_SETTINGS = 1
    START = 2
    STOP = 3


class MeasurementType(enum.IntEnum):
    ECG = 0
    PPG = 1
    ACC = 2
    PPI = 3
    GYRO = 5
    MAG = 6


class SettingType(enum.IntEnum):
    SAMPLE_RATE = 0
    RESOLUTION = 1
    RANGE = 2


_STATUS_NAMES = {
    0: "success",
    1: "invalid op code",
    2: "invalid measurement type",
    3: "not supported",
    4: "invalid length",
    5: "invalid parameter",
    6: "already in state",
    7: "invalid resolution",
    8: "invalid sample rate",
    9: "invalid range",
    10: "invalid MTU",
    11: "invalid number of channels",
    12: "invalid state",
    13: "device in charger",
}


def status_name(code: int) -> str:
    """Human-readable name of a PMD control-point status code (``"unknown status N"`` else)."""
    return _STATUS_NAMES.get(int(code), f"unknown status {int(code)}")


def _measurement_byte(measurement: int, offline: bool) -> int:
    m = int(measurement)
    if not 0 <= m <= 0x3F:
        raise ValueError(f"measurement type must be in 0..63, got {measurement!r}")
    return (0x80 if offline else 0) | m


# -- requests --------------------------------------------------------------------------------
def get_settings(measurement: int = MeasurementType.ECG, *, offline: bool = False) -> bytes:
    """Request the available settings of ``measurement`` (ECG: ``01 00``)."""
    return bytes([PmdOp.GET_SETTINGS, _measurement_byte(measurement, offline)])


def start_measurement(
    measurement: int, settings: dict[int, int], *, offline: bool = False
) -> bytes:
    """Start request with settings TLVs ``[type, count=1, uint16 LE value]`` in key order."""
    out = bytearray([PmdOp.START, _measurement_byte(measurement, offline)])
    for key in sorted(settings):
        value = int(settings[key])
        if not 0 <= value <= 0xFFFF:
            raise ValueError(f"setting {key} must fit in uint16 (0..65535), got {value!r}")
        out += bytes([int(key), 1]) + struct.pack("<H", value)
    return bytes(out)


def start_ecg(fs_hz: int = 130, resolution_bits: int = 14) -> bytes:
    """ECG start request; the H10 default is ``02 00 00 01 82 00 01 01 0E 00``."""
    if int(fs_hz) != fs_hz or fs_hz <= 0:
        raise ValueError(f"fs_hz must be a positive integer rate in Hz, got {fs_hz!r}")
    if int(resolution_bits) != resolution_bits or resolution_bits <= 0:
        raise ValueError(f"resolution_bits must be a positive integer, got {resolution_bits!r}")
    return start_measurement(
        MeasurementType.ECG,
        {SettingType.SAMPLE_RATE: int(fs_hz), SettingType.RESOLUTION: int(resolution_bits)},
    )


def start_acc(fs_hz: int = 200, range_g: int = 8, resolution_bits: int = 16) -> bytes:
    """H10 accelerometer start request (sample rate, 16-bit resolution, range in G).

    The H10 supports 25/50/100/200 Hz and +-2/4/8 G at 16 bits; 200 Hz, 8 G is
    ``02 02 00 01 C8 00 01 01 10 00 02 01 08 00``.
    """
    if fs_hz not in H10_ACC_FS_HZ:
        raise ValueError(f"H10 ACC rate must be one of {H10_ACC_FS_HZ} Hz, got {fs_hz!r}")
    if range_g not in H10_ACC_RANGES_G:
        raise ValueError(f"H10 ACC range must be one of {H10_ACC_RANGES_G} G, got {range_g!r}")
    if resolution_bits != H10_ACC_RESOLUTION_BITS:
        raise ValueError(
            f"H10 ACC resolution must be {H10_ACC_RESOLUTION_BITS} bits, got {resolution_bits!r}"
        )
    return start_measurement(
        MeasurementType.ACC,
        {
            SettingType.SAMPLE_RATE: int(fs_hz),
            SettingType.RESOLUTION: int(resolution_bits),
            SettingType.RANGE: int(range_g),
        },
    )


def stop(measurement: int = MeasurementType.ECG) -> bytes:
    """Stop request (ECG: ``03 00``)."""
    return bytes([PmdOp.STOP, _measurement_byte(measurement, False)])


# -- responses -------------------------------------------------------------------------------
def is_control_response(data: bytes | bytearray) -> bool:
    """True for a control-point response (starts with ``F0``); anything else is a stray push.

    The sensor pushes ``01 <types>`` when it stops a measurement itself, and on BlueZ the
    ``0F ...`` feature packet can arrive as a notification: neither answers a request.
    """
    return len(data) >= 1 and data[0] == _RESPONSE_CODE


@dataclass(frozen=True)
class ControlResponse:
    """A decoded ``F0`` control-point response."""

    op: int
    measurement: int
    status: int
    more: bool
    params: bytes = b""
    settings: dict[int, tuple[int, ...]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == 0

    @property
    def status_name(self) -> str:
        return status_name(self.status)

    def __str__(self) -> str:
        try:
            op = PmdOp(self.op).name.lower()
        except ValueError:
            op = f"op {self.op}"
        return f"PMD {op} (type {self.measurement}): status {self.status} ({self.status_name})"


def _parse_settings(params: bytes) -> dict[int, tuple[int, ...]]:
    """Settings TLVs ``[type, count, count x uint16 LE]`` -> ``{type: values}``."""
    out: dict[int, tuple[int, ...]] = {}
    i = 0
    while i + 2 <= len(params):
        key, count = params[i], params[i + 1]
        end = i + 2 + 2 * count
        if end > len(params):
            raise ValueError(
                f"PMD settings TLV for type {key} needs {2 * count} value bytes, only "
                f"{len(params) - i - 2} left in {params.hex(' ')}"
            )
        out[key] = struct.unpack_from(f"<{count}H", params, i + 2)
        i = end
    if i != len(params):
        raise ValueError(f"PMD settings have a trailing byte: {params.hex(' ')}")
    return out


def parse_control_response(data: bytes | bytearray) -> ControlResponse:
    """Decode ``F0 op type status more params...``; settings TLVs decoded for get-settings."""
    data = bytes(data)
    if not is_control_response(data):
        raise ValueError(
            f"not a PMD control response (must start with F0): {data.hex(' ') or '<empty>'}"
        )
    if len(data) < 4:
        raise ValueError(f"PMD control response too short (need >= 4 bytes): {data.hex(' ')}")
    op, measurement, status = data[1], data[2], data[3]
    more = len(data) > 4 and data[4] != 0
    params = data[5:]
    settings: dict[int, tuple[int, ...]] = {}
    if op == PmdOp.GET_SETTINGS and status == 0 and params:
        settings = _parse_settings(params)
    return ControlResponse(op, measurement & 0x3F, status, more, params, settings)


def parse_features(data: bytes | bytearray) -> set[MeasurementType | int]:
    """Measurement types in the control point's feature bitmap (``0F`` then bit flags)."""
    data = bytes(data)
    if len(data) < 2 or data[0] != _FEATURES_CODE:
        raise ValueError(
            "not a PMD feature bitmap (must start with 0F and have at least one flag byte): "
            f"{data.hex(' ') or '<empty>'}"
        )
    out: set[MeasurementType | int] = set()
    for byte_i, byte in enumerate(data[1:]):
        for bit in range(8):
            if byte >> bit & 1:
                n = 8 * byte_i + bit
                try:
                    out.add(MeasurementType(n))
                except ValueError:
                    out.add(n)
    return out


# -- data frames -----------------------------------------------------------------------------
def decode_ecg_frame(data: bytes | bytearray | memoryview) -> tuple[int, np.ndarray]:
    """Decode one raw ECG data frame -> ``(sensor_time_ns, samples_uv int32 [n])``.

    ``sensor_time_ns`` is the sensor-clock time of the *last* sample (ns since 2000-01-01 on
    the sensor's own clock, which may never have been set). The samples are 3-byte signed
    little-endian integers in µV, decoded in one vectorised numpy step.
    """
    buf = np.frombuffer(data, dtype=np.uint8)
    if buf.size < ECG_FRAME_HEADER_N:
        raise ValueError(
            f"PMD ECG frame too short: {buf.size} bytes, need a {ECG_FRAME_HEADER_N}-byte "
            "header (type, uint64 timestamp, frame type)"
        )
    mtype = int(buf[0]) & 0x3F
    if mtype != MeasurementType.ECG:
        raise ValueError(f"PMD frame has measurement type {mtype}, expected ECG (0)")
    frame_type = int(buf[9])
    if frame_type & 0x80:
        raise ValueError(
            f"compressed PMD ECG frames (frame type 0x{frame_type:02X}) are not supported; "
            "the H10 sends raw frames (frame type 0)"
        )
    if frame_type != 0:
        raise ValueError(f"PMD ECG frame type {frame_type} is not supported (allowed: 0)")
    payload = buf[ECG_FRAME_HEADER_N:]
    if payload.size % 3:
        raise ValueError(
            f"PMD ECG payload of {payload.size} bytes is not a whole number of 3-byte samples "
            "(truncated frame?)"
        )
    sensor_time_ns = int(buf[1:9].view("<u8")[0])
    b = payload.reshape(-1, 3).astype(np.int32)
    raw = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
    samples_uv = raw - ((raw & 0x800000) << 1)
    return sensor_time_ns, samples_uv


def frame_measurement(data: bytes | bytearray | memoryview) -> int:
    """Measurement type of a PMD data frame (its first byte masked with ``0x3F``); -1 if empty."""
    return int(data[0]) & 0x3F if len(data) else -1


def decode_acc_frame(data: bytes | bytearray | memoryview) -> tuple[int, np.ndarray]:
    """Decode one raw H10 ACC frame -> ``(sensor_time_ns, samples_mg int32 [n, 3])``.

    Frame type 0x01: each sample is x, y, z as int16 little-endian in mG; the timestamp is
    the sensor-clock time of the *last* sample, as for ECG.
    """
    buf = np.frombuffer(data, dtype=np.uint8)
    if buf.size < ECG_FRAME_HEADER_N:
        raise ValueError(
            f"PMD ACC frame too short: {buf.size} bytes, need a {ECG_FRAME_HEADER_N}-byte "
            "header (type, uint64 timestamp, frame type)"
        )
    mtype = int(buf[0]) & 0x3F
    if mtype != MeasurementType.ACC:
        raise ValueError(f"PMD frame has measurement type {mtype}, expected ACC (2)")
    frame_type = int(buf[9])
    if frame_type != ACC_FRAME_TYPE_INT16:
        raise ValueError(
            f"PMD ACC frame type 0x{frame_type:02X} is not supported (allowed: 0x01, "
            "3 x int16 per sample, the H10's)"
        )
    payload = buf[ECG_FRAME_HEADER_N:]
    if payload.size % 6:
        raise ValueError(
            f"PMD ACC payload of {payload.size} bytes is not a whole number of 6-byte samples "
            "(truncated frame?)"
        )
    sensor_time_ns = int(buf[1:9].view("<u8")[0])
    samples_mg = payload.view("<i2").reshape(-1, 3).astype(np.int32)
    return sensor_time_ns, samples_mg


def build_acc_frame(sensor_time_ns: int, samples_mg: np.ndarray) -> bytes:
    """Encode a raw ACC frame (the inverse of :func:`decode_acc_frame`; used by fakes/tests)."""
    s = np.asarray(samples_mg)
    if s.ndim != 2 or s.shape[1] != 3:
        raise ValueError(f"samples_mg must have shape (n, 3), got {s.shape}")
    s = s.astype(np.int64)
    if s.size and (s.min() < -(1 << 15) or s.max() >= 1 << 15):
        raise ValueError(f"samples_mg must fit in int16 (-32768..32767), got {s.min()}..{s.max()}")
    if not 0 <= int(sensor_time_ns) < 1 << 64:
        raise ValueError(f"sensor_time_ns must fit in uint64, got {sensor_time_ns!r}")
    header = (
        bytes([MeasurementType.ACC])
        + struct.pack("<Q", int(sensor_time_ns))
        + bytes([ACC_FRAME_TYPE_INT16])
    )
    return header + s.astype("<i2").tobytes()


def build_ecg_frame(sensor_time_ns: int, samples_uv: np.ndarray) -> bytes:
    """Encode a raw ECG frame (the inverse of :func:`decode_ecg_frame`; used by fakes/tests)."""
    s = np.asarray(samples_uv)
    if s.ndim != 1:
        raise ValueError(f"samples_uv must be 1-D, got shape {s.shape}")
    s = s.astype(np.int64)
    if s.size and (s.min() < -(1 << 23) or s.max() >= 1 << 23):
        raise ValueError(
            f"samples_uv must fit in int24 (-8388608..8388607), got {s.min()}..{s.max()}"
        )
    if not 0 <= int(sensor_time_ns) < 1 << 64:
        raise ValueError(f"sensor_time_ns must fit in uint64, got {sensor_time_ns!r}")
    u = (s & 0xFFFFFF).astype("<u4").view(np.uint8).reshape(-1, 4)[:, :3]
    header = bytes([MeasurementType.ECG]) + struct.pack("<Q", int(sensor_time_ns)) + b"\x00"
    return header + u.tobytes()


# -- Heart Rate Measurement (0x2A37) ---------------------------------------------------------
@dataclass(frozen=True)
class HeartRateMeasurement:
    """A decoded Heart Rate Measurement notification. ``contact`` is None if unsupported."""

    bpm: int
    contact: bool | None
    energy_kj: int | None
    rr_s: tuple[float, ...]


def parse_heart_rate(data: bytes | bytearray) -> HeartRateMeasurement:
    """Decode a Heart Rate Measurement (flags, uint8/uint16 HR, energy, RR in 1/1024 s)."""
    data = bytes(data)
    if len(data) < 2:
        raise ValueError(f"Heart Rate Measurement too short: {data.hex(' ') or '<empty>'}")
    flags = data[0]
    i = 1
    if flags & 0x01:
        if len(data) < 3:
            raise ValueError(f"Heart Rate Measurement with uint16 HR truncated: {data.hex(' ')}")
        bpm = struct.unpack_from("<H", data, 1)[0]
        i = 3
    else:
        bpm = data[1]
        i = 2
    contact = bool(flags & 0x04) if flags & 0x02 else None
    energy = None
    if flags & 0x08:
        if len(data) < i + 2:
            raise ValueError(f"Heart Rate Measurement energy field truncated: {data.hex(' ')}")
        energy = struct.unpack_from("<H", data, i)[0]
        i += 2
    rr: tuple[float, ...] = ()
    if flags & 0x10:
        rest = data[i:]
        if len(rest) % 2:
            raise ValueError(f"Heart Rate Measurement RR field has odd length: {data.hex(' ')}")
        rr = tuple(v / 1024.0 for v in struct.unpack(f"<{len(rest) // 2}H", rest))
    return HeartRateMeasurement(int(bpm), contact, energy, rr)
