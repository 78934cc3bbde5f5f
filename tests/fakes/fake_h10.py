"""A fake Polar H10 as a bleak backend: real PMD bytes, a drifting sensor clock, and faults.

Use ``backend = make_fake_h10(FakeH10Config(...))`` and pass it as
``BleakClient(address, backend=backend)`` (or ``PolarH10Source(backend=...)``), with a
:class:`FakeScanner` as the source's scanner. The :class:`FakeSensor` in the config survives
reconnects (like a real strap that keeps measuring while the link is down) and records every
frame it sent, so tests can compare decoded values with what was encoded.

Time: the fake runs ``speedup`` times faster than real time. Give the source
``time_fn=config.host_time`` so its host clock runs at the same speed; the sensor clock runs
``1 + rate_error`` times as fast as that host clock (a drift option: e.g. +-20e-6 for two
straps 40 ppm apart). Several fakes share one host clock when their configs get the same
``clock_start`` and ``speedup``.

Accelerometer: a start request for ACC (type 2) starts ACC frames (frame type 0x01, 3 x int16
mG per sample, :func:`synthetic_acc_mg`) at the requested rate on the same sensor clock,
``FakeSensor.acc_sent`` records them. ``garbage_every_frames`` adds an undecodable PMD frame
after every N ECG frames.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import Any

import numpy as np
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bleak.exc import BleakError

from ecg_fixtures import ecg_waveform_uv
from ecgaffect.stream import pmd

FS_HZ = 130.0
SAMPLES_PER_FRAME = 73
#: the sensor's default date (2019-01-01) in ns since 2000-01-01
DEFAULT_DATE_NS = 599_616_000 * 10**9
ADDRESS = "A0:9E:1A:00:00:01"


def synthetic_ecg_uv(index: np.ndarray) -> np.ndarray:
    """The strap's deterministic samples (µV integers) by sample index, at 72 bpm."""
    t = np.asarray(index) / FS_HZ
    return np.round(ecg_waveform_uv(t, qrs_uv=1200.0) - 100.0 * np.sin(index)).astype(np.int64)


def acc_samples_per_frame(fs_hz: int) -> int:
    """ACC samples per fake frame: 0.2 s worth (40 at 200 Hz)."""
    return max(1, int(fs_hz) // 5)


def synthetic_acc_mg(index: np.ndarray, fs_hz: int, motion_mg: float = 0.0) -> np.ndarray:
    """The strap's deterministic ACC samples (mG integers, shape (n, 3)) by sample index.

    Gravity on z (1000 mG) with a little deterministic wobble on every axis, plus a 2 Hz
    movement of ``motion_mg`` amplitude on x (0: the wearer sits still).
    """
    i = np.asarray(index, dtype=np.int64)
    t = i / float(fs_hz)
    x = np.round(motion_mg * np.sin(2 * np.pi * 2.0 * t)) + (i * 7 % 11) - 5
    y = 20 + (i * 3 % 5) - 2
    z = 1000 + (i * 5 % 7) - 3
    return np.stack([x, y, z], axis=1).astype(np.int64)


class FakeSensor:
    """The strap's measurement side: sample counter on its own (drifting) clock."""

    def __init__(self, config: FakeH10Config) -> None:
        self.config = config
        self.t0_host = config.host_time()
        self.next_index = 0
        self.sent: list[tuple[int, np.ndarray]] = []  # (first sample index, samples)
        self.next_acc_index = 0
        self.acc_sent: list[tuple[int, np.ndarray]] = []  # (first ACC sample index, samples)

    def due_index(self) -> int:
        """Samples measured since t0 (host clock), at 130 Hz on the sensor's clock."""
        elapsed = self.config.host_time() - self.t0_host
        return int(elapsed * FS_HZ * (1.0 + self.config.rate_error))

    def skip_to_now(self) -> None:
        """Samples measured while no one listened are lost (aligned to whole frames)."""
        due = self.due_index()
        if due > self.next_index:
            lost = (due - self.next_index) // SAMPLES_PER_FRAME * SAMPLES_PER_FRAME
            self.next_index += lost

    def acc_due_index(self, fs_hz: int) -> int:
        elapsed = self.config.host_time() - self.t0_host
        return int(elapsed * fs_hz * (1.0 + self.config.rate_error))

    def skip_acc_to_now(self, fs_hz: int) -> None:
        due = self.acc_due_index(fs_hz)
        n = acc_samples_per_frame(fs_hz)
        if due > self.next_acc_index:
            self.next_acc_index += (due - self.next_acc_index) // n * n

    def next_acc_frame(self, fs_hz: int) -> bytes:
        n = acc_samples_per_frame(fs_hz)
        idx = np.arange(self.next_acc_index, self.next_acc_index + n)
        samples = synthetic_acc_mg(idx, fs_hz, self.config.acc_motion_mg)
        last_ns = self.config.sensor0_ns + round(int(idx[-1]) * 1e9 / fs_hz)
        self.acc_sent.append((self.next_acc_index, samples))
        self.next_acc_index += n
        return pmd.build_acc_frame(last_ns, samples)

    def next_frame(self) -> bytes:
        idx = np.arange(self.next_index, self.next_index + SAMPLES_PER_FRAME)
        samples = synthetic_ecg_uv(idx)
        last_ns = self.config.sensor0_ns + round(int(idx[-1]) * 1e9 / FS_HZ)
        self.sent.append((self.next_index, samples))
        self.next_index += SAMPLES_PER_FRAME
        return pmd.build_ecg_frame(last_ns, samples)


@dataclasses.dataclass
class FakeH10Config:
    """Behaviour and faults of the fake strap (shared by every connection to it)."""

    speedup: float = 20.0
    rate_error: float = 0.01
    sensor0_ns: int = DEFAULT_DATE_NS
    #: mean / max extra BLE delay of a notification in (fake) host seconds
    delay_s: float = 0.01
    battery_percent: int = 87
    has_pmd: bool = True
    features: bytes = bytes.fromhex("0F 05 00")
    #: seconds (fake host time) between the start command and the first ECG frame
    ecg_start_delay_s: float = 0.0
    #: status answered to the ECG start (0 ok, 13 device in charger, ...)
    start_status: int = 0
    #: the next N control-point writes with an op in ``lose_ops`` get no indication
    lose_indications: int = 0
    lose_ops: tuple[int, ...] = (1, 2, 3)
    #: push "01 00" and "0F .." on the control point before every answer
    stray_pushes: bool = False
    #: drop the link after this many ECG frames (per connection, once each listed)
    disconnect_after_frames: list[int] = dataclasses.field(default_factory=list)
    #: connection attempts that fail after a disconnect
    failed_reconnects: int = 0
    #: the strap stops ECG by itself after this many frames and pushes "01 01"
    device_stop_after_frames: int | None = None
    hr_bpm: int = 72
    #: amplitude (mG) of the fake wearer's movement in the ACC frames (0 = still)
    acc_motion_mg: float = 0.0
    #: status answered to the ACC start (0 ok)
    acc_start_status: int = 0
    #: send an undecodable PMD data frame after every N ECG frames (0 = never)
    garbage_every_frames: int = 0
    clock_start: float = dataclasses.field(default_factory=time.monotonic)
    sensor: FakeSensor | None = None
    connections: int = 0
    pair_requested: list[bool] = dataclasses.field(default_factory=list)
    writes: list[bytes] = dataclasses.field(default_factory=list)

    def host_time(self) -> float:
        """The fake's host clock: monotonic time, sped up."""
        return (time.monotonic() - self.clock_start) * self.speedup

    def real_s(self, fake_s: float) -> float:
        return fake_s / self.speedup

    def get_sensor(self) -> FakeSensor:
        if self.sensor is None:
            self.sensor = FakeSensor(self)
        return self.sensor

    @property
    def sent_samples(self) -> np.ndarray:
        s = self.get_sensor()
        return np.concatenate([x for _, x in s.sent]) if s.sent else np.zeros(0, np.int64)

    @property
    def sent_acc(self) -> np.ndarray:
        s = self.get_sensor()
        if not s.acc_sent:
            return np.zeros((0, 3), np.int64)
        return np.concatenate([x for _, x in s.acc_sent])


def _build_services(config: FakeH10Config) -> BleakGATTServiceCollection:
    coll = BleakGATTServiceCollection()
    handle = 1

    def add_service(uuid: str, chars: list[tuple[str, list[str]]]) -> None:
        nonlocal handle
        service = BleakGATTService(None, handle, uuid)
        coll.add_service(service)
        handle += 1
        for char_uuid, props in chars:
            coll.add_characteristic(
                BleakGATTCharacteristic(None, handle, char_uuid, props, lambda: 244, service)
            )
            handle += 2

    add_service(pmd.HEART_RATE_SERVICE_UUID, [(pmd.HEART_RATE_MEASUREMENT_UUID, ["notify"])])
    add_service(pmd.BATTERY_SERVICE_UUID, [(pmd.BATTERY_LEVEL_UUID, ["read", "notify"])])
    if config.has_pmd:
        add_service(
            pmd.PMD_SERVICE_UUID,
            [
                (pmd.PMD_CONTROL_UUID, ["read", "write", "indicate"]),
                (pmd.PMD_DATA_UUID, ["notify"]),
            ],
        )
    return coll


class FakeH10(BaseBleakClient):
    """bleak backend emulating a Polar H10 (configure with :func:`make_fake_h10`)."""

    config: FakeH10Config

    def __init__(self, address_or_ble_device: Any, **kwargs: Any) -> None:
        kwargs.pop("services", None)
        kwargs.pop("bluez", None)
        kwargs.pop("winrt", None)
        super().__init__(address_or_ble_device, **kwargs)
        self._connected = False
        self._callbacks: dict[str, Any] = {}
        self._tasks: list[asyncio.Task] = []
        self._ecg_running = False
        self._acc_running = False
        self._frames_this_connection = 0

    # -- connection ------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return "Polar H10 FAKE0001"

    @property
    def mtu_size(self) -> int:
        return 247

    @property
    def is_connected(self) -> bool:
        return self._connected

    async def connect(self, pair: bool, **kwargs: Any) -> None:
        cfg = self.config
        cfg.pair_requested.append(pair)
        if cfg.connections > 0 and cfg.failed_reconnects > 0:
            cfg.failed_reconnects -= 1
            raise BleakError("fake: device not reachable")
        cfg.connections += 1
        await asyncio.sleep(0)
        self.services = _build_services(cfg)
        self._connected = True
        self._spawn(self._hr_loop())

    async def disconnect(self) -> None:
        self._teardown()

    async def pair(self, *args: Any, **kwargs: Any) -> None:
        return None

    async def unpair(self) -> None:
        return None

    def _teardown(self) -> None:
        self._connected = False
        self._ecg_running = False
        self._acc_running = False
        for t in self._tasks:
            t.cancel()
        self._tasks.clear()
        self._callbacks.clear()

    def _drop_link(self) -> None:
        """Unsolicited disconnect, as when the strap goes out of range."""
        self._teardown()
        if self._disconnected_callback is not None:
            asyncio.get_running_loop().call_soon(self._disconnected_callback)

    def _spawn(self, coro: Any) -> None:
        self._tasks.append(asyncio.get_running_loop().create_task(coro))

    def _check(self) -> None:
        if not self._connected:
            raise BleakError("fake: not connected")

    # -- GATT ------------------------------------------------------------------------------
    async def read_gatt_char(self, characteristic: Any, **kwargs: Any) -> bytearray:
        self._check()
        if characteristic.uuid == pmd.PMD_CONTROL_UUID:
            return bytearray(self.config.features)
        if characteristic.uuid == pmd.BATTERY_LEVEL_UUID:
            return bytearray([self.config.battery_percent])
        raise BleakError(f"fake: {characteristic.uuid} is not readable")

    async def read_gatt_descriptor(self, descriptor: Any, **kwargs: Any) -> bytearray:
        raise BleakError("fake: no descriptors")

    async def write_gatt_descriptor(self, descriptor: Any, data: Any) -> None:
        raise BleakError("fake: no descriptors")

    async def start_notify(self, characteristic: Any, callback: Any, **kwargs: Any) -> None:
        self._check()
        self._callbacks[characteristic.uuid] = callback

    async def stop_notify(self, characteristic: Any) -> None:
        self._callbacks.pop(characteristic.uuid, None)

    def _notify(self, uuid: str, data: bytes) -> None:
        cb = self._callbacks.get(uuid)
        if cb is not None and self._connected:
            cb(bytearray(data))

    async def write_gatt_char(self, characteristic: Any, data: Any, response: bool) -> None:
        self._check()
        data = bytes(data)
        cfg = self.config
        cfg.writes.append(data)
        if characteristic.uuid != pmd.PMD_CONTROL_UUID:
            raise BleakError(f"fake: {characteristic.uuid} is not writable")
        op, mtype = data[0], data[1] & 0x3F
        params = b""
        if op == pmd.PmdOp.GET_SETTINGS:
            status = 0
            if mtype == pmd.MeasurementType.ACC:
                params = bytes.fromhex(
                    "00 04 19 00 32 00 64 00 C8 00 01 01 10 00 02 03 02 00 04 00 08 00"
                )
            else:
                params = bytes.fromhex("00 01 82 00 01 01 0E 00")
        elif op == pmd.PmdOp.START and mtype == pmd.MeasurementType.ACC:
            if cfg.acc_start_status:
                status = cfg.acc_start_status
            elif self._acc_running:
                status = 6
            else:
                settings = {
                    data[i]: int.from_bytes(data[i + 2 : i + 4], "little")
                    for i in range(2, len(data) - 3, 4)
                }
                status = 0
                self._acc_running = True
                self._spawn(self._acc_loop(settings[pmd.SettingType.SAMPLE_RATE]))
        elif op == pmd.PmdOp.START:
            if cfg.start_status:
                status = cfg.start_status
            elif self._ecg_running:
                status = 6
            else:
                status = 0
                self._ecg_running = True
                self._spawn(self._ecg_loop())
        elif op == pmd.PmdOp.STOP and mtype == pmd.MeasurementType.ACC:
            status = 0 if self._acc_running else 6
            self._acc_running = False
        elif op == pmd.PmdOp.STOP:
            status = 0 if self._ecg_running else 6
            self._ecg_running = False
        else:
            status = 1
        answer = bytes([0xF0, op, mtype, status, 0]) + params
        if cfg.lose_indications > 0 and op in cfg.lose_ops:
            cfg.lose_indications -= 1
            return
        self._spawn(self._indicate(answer))

    async def _indicate(self, answer: bytes) -> None:
        await asyncio.sleep(self.config.real_s(0.005))
        if self.config.stray_pushes:
            self._notify(pmd.PMD_CONTROL_UUID, b"\x01\x00")
            self._notify(pmd.PMD_CONTROL_UUID, self.config.features)
        self._notify(pmd.PMD_CONTROL_UUID, answer)

    # -- streams ---------------------------------------------------------------------------
    async def _hr_loop(self) -> None:
        rr = round(60.0 / self.config.hr_bpm * 1024)
        payload = bytes([0x16, self.config.hr_bpm]) + rr.to_bytes(2, "little")
        while True:
            self._notify(pmd.HEART_RATE_MEASUREMENT_UUID, payload)
            await asyncio.sleep(self.config.real_s(1.0))

    async def _ecg_loop(self) -> None:
        cfg = self.config
        sensor = cfg.get_sensor()
        if cfg.ecg_start_delay_s > 0:
            await asyncio.sleep(cfg.real_s(cfg.ecg_start_delay_s))
        sensor.skip_to_now()
        rng = np.random.default_rng(cfg.connections)
        while self._ecg_running:
            # the frame is sent once its last sample has been measured (+ BLE delay)
            due_at = sensor.next_index + SAMPLES_PER_FRAME
            wait_fake_s = (due_at - sensor.due_index()) / (FS_HZ * (1.0 + cfg.rate_error))
            delay = cfg.delay_s * rng.random()
            await asyncio.sleep(max(0.0, cfg.real_s(wait_fake_s + delay)))
            if not self._ecg_running:
                return
            self._notify(pmd.PMD_DATA_UUID, sensor.next_frame())
            self._frames_this_connection += 1
            n = self._frames_this_connection
            if cfg.garbage_every_frames and n % cfg.garbage_every_frames == 0:
                # ECG type, a timestamp, then a payload that is not whole 3-byte samples
                self._notify(
                    pmd.PMD_DATA_UUID,
                    b"\x00" + bytes(rng.integers(0, 256, 8).tolist()) + b"\x00\x01\x02",
                )
            if cfg.disconnect_after_frames and n >= cfg.disconnect_after_frames[0]:
                cfg.disconnect_after_frames.pop(0)
                self._drop_link()
                return
            if cfg.device_stop_after_frames is not None and n >= cfg.device_stop_after_frames:
                cfg.device_stop_after_frames = None
                self._ecg_running = False
                self._notify(pmd.PMD_CONTROL_UUID, b"\x01\x01")
                return

    async def _acc_loop(self, fs_hz: int) -> None:
        cfg = self.config
        sensor = cfg.get_sensor()
        sensor.skip_acc_to_now(fs_hz)
        n = acc_samples_per_frame(fs_hz)
        rng = np.random.default_rng(1000 + cfg.connections)
        while self._acc_running:
            due_at = sensor.next_acc_index + n
            wait_fake_s = (due_at - sensor.acc_due_index(fs_hz)) / (fs_hz * (1.0 + cfg.rate_error))
            delay = cfg.delay_s * rng.random()
            await asyncio.sleep(max(0.0, cfg.real_s(wait_fake_s + delay)))
            if not self._acc_running:
                return
            self._notify(pmd.PMD_DATA_UUID, sensor.next_acc_frame(fs_hz))


def make_fake_h10(config: FakeH10Config | None = None) -> type[FakeH10]:
    """A FakeH10 subclass bound to ``config`` (bleak instantiates the backend class itself)."""
    return type("FakeH10", (FakeH10,), {"config": config or FakeH10Config()})


class FakeScanner:
    """``find_device_by_filter`` stand-in: offers ``devices`` (BLEDevice) or raises ``error``."""

    def __init__(
        self, devices: list[BLEDevice] | None = None, error: BaseException | None = None
    ) -> None:
        self.devices = (
            [BLEDevice(ADDRESS, "Polar H10 FAKE0001", None)] if devices is None else devices
        )
        self.error = error
        self.calls = 0

    async def __call__(self, filterfunc: Any, timeout: float = 10.0) -> BLEDevice | None:
        self.calls += 1
        await asyncio.sleep(0)
        if self.error is not None:
            raise self.error
        for d in self.devices:
            adv = AdvertisementData(d.name, {}, {}, [], None, -60, ())
            if filterfunc(d, adv):
                return d
        return None
