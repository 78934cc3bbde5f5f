"""Polar H10 chest strap over Bluetooth LE (bleak): raw ECG at 130 Hz, heart rate and RR.

bleak runs in its own asyncio loop on a background thread. Notification callbacks only
timestamp the raw bytes and put them on a thread-safe queue; decoding (:mod:`..pmd`) and the
sensor-clock mapping (:mod:`..clock`) happen in :meth:`PolarH10Source.read` on the consumer's
thread. Control-point requests are serialised with an asyncio lock, each with a timeout and a
few retries; pushes that are not ``F0`` responses never satisfy (or fail) a pending request.

States the user sees (``status``): scanning -> connecting -> "connected, waiting for ECG"
(HR/RR arrive first; the H10 can take ~30 s to start ECG) -> streaming; on a dropped link
"reconnecting" with exponential backoff, then the ECG start is re-sent and the next chunk is
marked ``gap_before=True`` on the same host time base. Samples lost meanwhile (counted
from the sensor-clock jump, see :class:`~ecgaffect.stream.clock.MappedFrame`) advance
``first_index``, so consumers see the hole. Distinct errors at open():
:class:`BluetoothUnavailableError`, :class:`DeviceNotFoundError`,
:class:`UnsupportedDeviceError` (firmware without the PMD/ECG service) and
:class:`PmdRequestError` (the strap refused a request, e.g. "device in charger").

Optionally (``acc_fs_hz``) the strap's accelerometer is started too, after the ECG: its frames
come out of :meth:`PolarH10Source.read` as :class:`AccChunk` items (x, y, z in mG, one host
time per sample from a second :class:`~ecgaffect.stream.clock.SensorClockMapper`). A strap
that refuses the ACC start keeps streaming ECG (``acc_error`` says why). Off by default, so
consumers that only know ECG/HR items never see one.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import sys
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ecgaffect._optional import require
from ecgaffect.stream import pmd
from ecgaffect.stream.clock import SensorClockMapper
from ecgaffect.stream.sources.base import (
    BluetoothUnavailableError,
    DeviceNotFoundError,
    EcgChunk,
    HeartRate,
    Source,
    SourceError,
    SourceItem,
    SourceState,
    SourceStatus,
    UnsupportedDeviceError,
    local_clock,
)

__all__ = ["AccChunk", "PmdRequestError", "PolarH10Source", "Scanner", "scan_polar_devices"]

logger = logging.getLogger(__name__)

#: ``async scanner(filterfunc, timeout) -> BLEDevice | None``, like
#: ``BleakScanner.find_device_by_filter``.
Scanner = Callable[..., Awaitable[Any]]

_ECG, _CONTROL, _HR, _STATUS, _GAP, _FATAL = range(6)


@dataclass(frozen=True)
class AccChunk:
    """Consecutive accelerometer samples (``samples_mg`` int32 [n, 3]: x, y, z in mG) with one
    host-clock timestamp each; ``first_index`` and ``gap_before`` as for
    :class:`~ecgaffect.stream.sources.base.EcgChunk` (ACC samples counted on their own).
    """

    samples_mg: np.ndarray
    timestamps_s: np.ndarray
    first_index: int
    gap_before: bool = False

    def __post_init__(self) -> None:
        if (
            self.samples_mg.ndim != 2
            or self.samples_mg.shape[1] != 3
            or self.samples_mg.shape[0] != self.timestamps_s.shape[0]
        ):
            raise ValueError(
                "AccChunk needs samples_mg of shape (n, 3) and n timestamps, got "
                f"{self.samples_mg.shape} and {self.timestamps_s.shape}"
            )

    def __len__(self) -> int:
        return int(self.samples_mg.shape[0])


class PmdRequestError(SourceError):
    """The strap answered a control-point request with an error status (or not at all)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


_STATUS_ADVICE = {
    13: "take the strap off the charger and put it on",
    12: "the strap is busy; wait a few seconds and try again",
    8: "the H10 only supports 130 Hz ECG",
}


class PolarH10Source(Source):
    """Live ECG (µV, 130 Hz nominal) and heart rate from a Polar H10 over BLE.

    Parameters
    ----------
    address:
        Bluetooth address (UUID on macOS) of one strap; ``None`` takes the first device whose
        name starts with ``name_prefix``.
    name_prefix:
        Advertised-name prefix to match when no address is given ("Polar H10").
    pair:
        Pair before connecting (Windows 11 with new firmware otherwise refuses the start
        command with "Insufficient Authentication"). ``None`` (default) pairs on Windows only.
    scan_timeout_s, connect_timeout_s, request_timeout_s, request_retries:
        Scanning, connecting, and per control-point request timeouts; a request without an
        answer is re-sent ``request_retries`` times.
    reconnect:
        Reconnect after an unexpected disconnect (exponential backoff from
        ``reconnect_initial_s`` up to ``reconnect_max_s``, ``max_reconnect_attempts`` tries;
        ``None`` = forever). Without it, a disconnect fails the source.
    backend:
        bleak client backend class (passed to ``BleakClient(backend=...)``; tests pass a fake).
    scanner:
        Async device finder with ``BleakScanner.find_device_by_filter``'s signature.
    time_fn:
        Host clock for arrival times (default: the LSL clock).
    clock:
        A :class:`SensorClockMapper` to use (default: one at 130 Hz).
    acc_fs_hz, acc_range_g:
        Also stream the accelerometer at this rate (25, 50, 100 or 200 Hz) and range (2, 4
        or 8 G), as :class:`AccChunk` items; ``None`` (default): ECG and HR only.
    """

    name = "Polar H10"
    fs_hz = pmd.H10_ECG_FS_HZ
    units = "uV"

    def __init__(
        self,
        address: str | None = None,
        *,
        name_prefix: str = "Polar H10",
        pair: bool | None = None,
        scan_timeout_s: float = 10.0,
        connect_timeout_s: float = 30.0,
        request_timeout_s: float = 5.0,
        request_retries: int = 2,
        reconnect: bool = True,
        reconnect_initial_s: float = 1.0,
        reconnect_max_s: float = 30.0,
        max_reconnect_attempts: int | None = 20,
        backend: type | None = None,
        scanner: Scanner | None = None,
        time_fn: Callable[[], float] = local_clock,
        clock: SensorClockMapper | None = None,
        acc_fs_hz: int | None = None,
        acc_range_g: int = 8,
    ) -> None:
        super().__init__()
        if acc_fs_hz is not None:
            pmd.start_acc(acc_fs_hz, acc_range_g)  # validates rate and range
        for pname, value in (
            ("scan_timeout_s", scan_timeout_s),
            ("connect_timeout_s", connect_timeout_s),
            ("request_timeout_s", request_timeout_s),
            ("reconnect_initial_s", reconnect_initial_s),
            ("reconnect_max_s", reconnect_max_s),
        ):
            if not value > 0:
                raise ValueError(f"{pname} must be > 0 seconds, got {value!r}")
        if int(request_retries) != request_retries or request_retries < 0:
            raise ValueError(f"request_retries must be an integer >= 0, got {request_retries!r}")
        if max_reconnect_attempts is not None and max_reconnect_attempts < 1:
            raise ValueError(
                f"max_reconnect_attempts must be >= 1 or None, got {max_reconnect_attempts!r}"
            )
        if not name_prefix and address is None:
            raise ValueError("give an address or a non-empty name_prefix, got neither")
        self.address = address
        self.name_prefix = name_prefix
        self.pair = (sys.platform == "win32") if pair is None else bool(pair)
        self.scan_timeout_s = float(scan_timeout_s)
        self.connect_timeout_s = float(connect_timeout_s)
        self.request_timeout_s = float(request_timeout_s)
        self.request_retries = int(request_retries)
        self.reconnect = reconnect
        self.reconnect_initial_s = float(reconnect_initial_s)
        self.reconnect_max_s = float(reconnect_max_s)
        self.max_reconnect_attempts = max_reconnect_attempts
        self.backend = backend
        self.scanner = scanner
        self.time_fn = time_fn
        self.clock = clock if clock is not None else SensorClockMapper(self.fs_hz)
        self.acc_fs_hz = None if acc_fs_hz is None else int(acc_fs_hz)
        self.acc_range_g = int(acc_range_g)
        self.acc_clock = SensorClockMapper(float(self.acc_fs_hz or 1))
        #: why the strap streams no ACC although asked to (None while fine)
        self.acc_error: str | None = None
        self.n_acc_samples = 0
        self.n_acc_frames = 0
        #: battery level in percent, read at each connect (None until known)
        self.battery_percent: int | None = None
        #: ECG settings the strap offered ({SettingType: values})
        self.ecg_settings: dict[int, tuple[int, ...]] = {}
        self.device_name: str | None = None
        #: sample counter (the next chunk's ``first_index``): samples delivered plus samples
        #: the sensor measured that never arrived (counted from the sensor-clock jump)
        self.n_samples = 0
        #: samples known lost (dropped frames, reconnects), included in ``n_samples``
        self.n_samples_lost = 0
        self.n_frames = 0
        self.n_bad_frames = 0
        self.n_reconnects = 0

        self._queue: queue.SimpleQueue[tuple] = queue.SimpleQueue()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._client: Any = None
        self._device: Any = None
        self._lock: asyncio.Lock | None = None
        self._pending: tuple[int, asyncio.Future] | None = None
        self._closing = False
        self._reconnect_task: asyncio.Task | None = None
        self._tasks: set[asyncio.Task] = set()
        self._gap_next = False
        self._ecg_seen = False
        self._ecg_running = False
        self._acc_running = False
        self._acc_gap_next = False
        self._link_up = False
        self._fatal: SourceError | None = None

    # -- lifecycle (consumer thread) ------------------------------------------------------
    def _open(self) -> None:
        require("bleak", "The Polar H10 source")
        self._closing = False
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="polar-h10-ble", daemon=True
        )
        self._thread.start()
        budget_s = (
            self.scan_timeout_s
            + self.connect_timeout_s
            + 8 * self.request_timeout_s * (self.request_retries + 1)
            + 5.0
        )
        fut = asyncio.run_coroutine_threadsafe(self._first_connect(), self._loop)
        try:
            fut.result(timeout=budget_s)
        except BaseException as exc:
            fut.cancel()
            self._stop_loop()
            self._set_status(SourceState.FAILED, str(exc))
            if isinstance(exc, TimeoutError) and not isinstance(exc, SourceError):
                raise SourceError(
                    f"{self.name}: connecting took longer than {budget_s:.0f} s"
                ) from exc
            raise

    def _close(self) -> None:
        if self._loop is None:
            return
        fut = asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop)
        try:
            fut.result(timeout=self.request_timeout_s + 5.0)
        except Exception as exc:  # best effort: the strap may be gone already
            logger.warning("%s: clean shutdown failed: %s", self.name, exc)
        self._stop_loop()

    def _stop_loop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None:
            return

        async def _cancel_all() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        if loop.is_running():
            try:
                asyncio.run_coroutine_threadsafe(_cancel_all(), loop).result(timeout=5.0)
            except Exception as exc:
                logger.debug("cancelling BLE tasks: %s", exc)
            loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join(timeout=5.0)
        if not loop.is_running():
            loop.close()
        self._loop = None
        self._thread = None

    # -- data (consumer thread) -----------------------------------------------------------
    def _read(self, timeout_s: float) -> list[SourceItem]:
        if self._fatal is not None:
            raise self._fatal
        raw: list[tuple] = []
        try:
            raw.append(self._queue.get(timeout=max(0.0, timeout_s)))
        except queue.Empty:
            return []
        while True:
            try:
                raw.append(self._queue.get_nowait())
            except queue.Empty:
                break
        out: list[SourceItem] = []
        for item in raw:
            kind = item[0]
            if kind == _ECG:
                out.extend(self._decode_ecg(item[1], item[2]))
            elif kind == _HR:
                hr = self._decode_hr(item[1], item[2])
                if hr is not None:
                    out.append(hr)
            elif kind == _STATUS:
                out.append(self._set_status(item[1], item[2]))
            elif kind == _GAP:  # (_GAP,) a reconnect; (_GAP, "ecg" | "acc") one restart
                which = item[1] if len(item) > 1 else "all"
                if which in ("all", "ecg"):
                    self._gap_next = True
                    self._ecg_seen = False
                    self.clock.mark_gap()
                if which in ("all", "acc"):
                    self._acc_gap_next = True
                    self.acc_clock.mark_gap()
            elif kind == _FATAL:
                self._fatal = item[1]
                out.append(self._set_status(SourceState.FAILED, str(item[1])))
        if not out and self._fatal is not None:
            raise self._fatal
        return out

    def _decode_ecg(self, arrival_s: float, data: bytes) -> list[SourceItem]:
        if self.acc_fs_hz is not None and pmd.frame_measurement(data) == pmd.MeasurementType.ACC:
            return self._decode_acc(arrival_s, data)
        try:
            sensor_ns, samples = pmd.decode_ecg_frame(data)
        except ValueError as exc:
            self.n_bad_frames += 1
            logger.warning("%s: dropping undecodable PMD frame: %s", self.name, exc)
            self._gap_next = True
            self.clock.mark_gap()
            return []
        if samples.size == 0:
            return []
        mapped = self.clock.map_frame(sensor_ns, samples.size, arrival_s)
        if mapped.n_missing:
            logger.warning(
                "%s: %d samples lost before sample %d (sensor clock jump)",
                self.name,
                mapped.n_missing,
                self.n_samples + mapped.n_missing,
            )
            # count them so first_index shows the hole to consumers
            self.n_samples += mapped.n_missing
            self.n_samples_lost += mapped.n_missing
        chunk = EcgChunk(
            samples_uv=samples,
            timestamps_s=mapped.timestamps_s,
            first_index=self.n_samples,
            gap_before=self._gap_next or mapped.gap_before,
        )
        self._gap_next = False
        self.n_samples += samples.size
        self.n_frames += 1
        out: list[SourceItem] = []
        if not self._ecg_seen:
            self._ecg_seen = True
            out.append(self._set_status(SourceState.STREAMING, self._describe()))
        out.append(chunk)
        return out

    def _decode_acc(self, arrival_s: float, data: bytes) -> list[Any]:
        try:
            sensor_ns, samples = pmd.decode_acc_frame(data)
        except ValueError as exc:
            self.n_bad_frames += 1
            logger.warning("%s: dropping undecodable PMD ACC frame: %s", self.name, exc)
            self._acc_gap_next = True
            self.acc_clock.mark_gap()
            return []
        if samples.shape[0] == 0:
            return []
        mapped = self.acc_clock.map_frame(sensor_ns, samples.shape[0], arrival_s)
        self.n_acc_samples += mapped.n_missing
        chunk = AccChunk(
            samples_mg=samples,
            timestamps_s=mapped.timestamps_s,
            first_index=self.n_acc_samples,
            gap_before=self._acc_gap_next or mapped.gap_before,
        )
        self._acc_gap_next = False
        self.n_acc_samples += samples.shape[0]
        self.n_acc_frames += 1
        return [chunk]

    def _decode_hr(self, arrival_s: float, data: bytes) -> HeartRate | None:
        try:
            m = pmd.parse_heart_rate(data)
        except ValueError as exc:
            logger.warning("%s: ignoring bad heart-rate notification: %s", self.name, exc)
            return None
        return HeartRate(timestamp_s=arrival_s, bpm=float(m.bpm), rr_s=m.rr_s, contact=m.contact)

    def _describe(self) -> str:
        parts = [self.device_name or self.address or "?"]
        if self.battery_percent is not None:
            parts.append(f"battery {self.battery_percent} %")
        return ", ".join(parts)

    # -- BLE side (loop thread) -----------------------------------------------------------
    def _emit(self, *item: Any) -> None:
        self._queue.put(item)

    def _emit_status(self, state: SourceState, message: str = "") -> None:
        self._status = SourceStatus(state, message)
        self._emit(_STATUS, state, message)

    def _on_ecg(self, _char: Any, data: bytearray) -> None:
        self._queue.put((_ECG, self.time_fn(), bytes(data)))

    def _on_hr(self, _char: Any, data: bytearray) -> None:
        self._queue.put((_HR, self.time_fn(), bytes(data)))

    def _on_control(self, _char: Any, data: bytearray) -> None:
        data = bytes(data)
        if not pmd.is_control_response(data):
            stopped = data[1] if data[:1] == b"\x01" and len(data) >= 2 else 0
            if stopped & 0x01 and self._ecg_running:
                logger.warning("%s: the strap stopped the ECG itself; restarting", self.name)
                self._spawn(self._restart_ecg())
            if stopped & 0x04 and self._acc_running:
                logger.warning("%s: the strap stopped the ACC itself; restarting", self.name)
                self._spawn(self._restart_acc())
            if not stopped & 0x05:
                logger.debug("%s: ignoring control-point push %s", self.name, data.hex(" "))
            return
        try:
            response = pmd.parse_control_response(data)
        except ValueError as exc:
            logger.warning("%s: bad control-point response: %s", self.name, exc)
            return
        pending = self._pending
        if pending is None or pending[1].done() or pending[0] != response.op:
            logger.debug("%s: unsolicited control response %s", self.name, response)
            return
        pending[1].set_result(response)

    def _on_disconnect(self, _client: Any) -> None:
        if self._closing or not self._link_up:
            return  # requested, or a connection that never finished its setup
        self._link_up = False
        self._ecg_running = False
        self._acc_running = False
        if not self.reconnect:
            self._emit(
                _FATAL, SourceError(f"{self.name}: the strap disconnected (reconnect is off)")
            )
            return
        if self._reconnect_task is None or self._reconnect_task.done():
            self._reconnect_task = self._spawn(self._reconnect_loop())

    def _spawn(self, coro: Any) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _request(self, payload: bytes, what: str) -> pmd.ControlResponse:
        assert self._lock is not None
        async with self._lock:
            tries = self.request_retries + 1
            for attempt in range(1, tries + 1):
                fut: asyncio.Future = asyncio.get_running_loop().create_future()
                self._pending = (payload[0], fut)
                try:
                    await self._client.write_gatt_char(pmd.PMD_CONTROL_UUID, payload, response=True)
                    return await asyncio.wait_for(fut, self.request_timeout_s)
                except TimeoutError:
                    logger.warning(
                        "%s: no answer to %s (%s) within %.1f s (try %d of %d)",
                        self.name,
                        what,
                        payload.hex(" "),
                        self.request_timeout_s,
                        attempt,
                        tries,
                    )
                finally:
                    self._pending = None
        raise PmdRequestError(
            f"{self.name}: the strap did not answer {what} ({payload.hex(' ')}) in {tries} tries "
            f"of {self.request_timeout_s:g} s each; move closer or restart the strap"
        )

    def _check(self, response: pmd.ControlResponse, what: str, *, ok: tuple[int, ...] = (0,)):
        if response.status in ok:
            return
        advice = _STATUS_ADVICE.get(response.status, "")
        raise PmdRequestError(
            f"{self.name}: {what} refused with status {response.status} "
            f"({response.status_name})" + (f": {advice}" if advice else ""),
            status=response.status,
        )

    def _filter(self, device: Any, adv: Any) -> bool:
        if self.address is not None:
            return str(device.address).upper() == self.address.upper()
        name = device.name or getattr(adv, "local_name", None) or ""
        return name.startswith(self.name_prefix)

    async def _find_device(self) -> Any:
        self._emit_status(SourceState.SCANNING, self.address or f"{self.name_prefix}*")
        if self.scanner is None:
            from bleak import BleakScanner

            scanner: Scanner = BleakScanner.find_device_by_filter
        else:
            scanner = self.scanner
        try:
            device = await scanner(self._filter, timeout=self.scan_timeout_s)
        except Exception as exc:  # bleak raises FileNotFoundError, BleakError, OSError...
            raise BluetoothUnavailableError(
                f"{self.name}: Bluetooth unavailable ({type(exc).__name__}: {exc}); check that "
                "the machine has a Bluetooth adapter, that it is switched on, and (Linux) that "
                "BlueZ and the system D-Bus are running"
            ) from exc
        if device is None:
            target = f"address {self.address}" if self.address else f"{self.name_prefix!r}"
            raise DeviceNotFoundError(
                f"{self.name}: no device found ({target}) within {self.scan_timeout_s:g} s; "
                "wear the strap (it sleeps without skin contact), moisten the electrodes, and "
                "make sure no phone or watch is connected to it"
            )
        return device

    async def _connect_once(self) -> None:
        from bleak import BleakClient
        from bleak.exc import BleakDeviceNotFoundError, BleakError

        self._emit_status(SourceState.CONNECTING, str(getattr(self._device, "address", "")))
        client = BleakClient(
            self._device,
            disconnected_callback=self._on_disconnect,
            timeout=self.connect_timeout_s,
            pair=self.pair,
            backend=self.backend,
        )
        try:
            await client.connect()
        except FileNotFoundError as exc:
            raise BluetoothUnavailableError(f"{self.name}: Bluetooth unavailable ({exc})") from exc
        except BleakDeviceNotFoundError as exc:
            raise DeviceNotFoundError(f"{self.name}: the strap disappeared ({exc})") from exc
        except (BleakError, TimeoutError, OSError) as exc:
            raise SourceError(
                f"{self.name}: could not connect to {self._describe()} ({exc})"
            ) from exc
        self._client = client
        self.device_name = getattr(self._device, "name", None) or self.device_name
        try:
            try:
                await self._setup(client)
            except (BleakError, OSError) as exc:
                raise SourceError(
                    f"{self.name}: setting up {self._describe()} failed ({exc})"
                ) from exc
        except BaseException:
            try:
                await client.disconnect()
            except Exception as exc:
                logger.debug("disconnect after failed setup: %s", exc)
            raise

    async def _setup(self, client: Any) -> None:
        """Features, notifications, battery, ECG settings, start ECG."""
        services = client.services
        if services.get_service(pmd.PMD_SERVICE_UUID) is None:
            raise UnsupportedDeviceError(
                f"{self.name}: {self._describe()} has no Polar Measurement Data service, so "
                "it cannot stream ECG (old firmware): update the strap's firmware with the "
                "Polar Flow or Polar Beat app"
            )
        await client.start_notify(pmd.PMD_CONTROL_UUID, self._on_control)
        features_raw = bytes(await client.read_gatt_char(pmd.PMD_CONTROL_UUID))
        try:
            features = pmd.parse_features(features_raw)
        except ValueError as exc:
            raise UnsupportedDeviceError(f"{self.name}: unreadable PMD features ({exc})") from exc
        if pmd.MeasurementType.ECG not in features:
            raise UnsupportedDeviceError(
                f"{self.name}: {self._describe()} does not offer ECG (PMD features "
                f"{features_raw.hex(' ')}); update the strap's firmware"
            )
        await client.start_notify(pmd.PMD_DATA_UUID, self._on_ecg)
        if services.get_characteristic(pmd.HEART_RATE_MEASUREMENT_UUID) is not None:
            await client.start_notify(pmd.HEART_RATE_MEASUREMENT_UUID, self._on_hr)
        if services.get_characteristic(pmd.BATTERY_LEVEL_UUID) is not None:
            try:
                level = bytes(await client.read_gatt_char(pmd.BATTERY_LEVEL_UUID))
                self.battery_percent = level[0] if level else None
            except Exception as exc:  # battery is informative only
                logger.info("%s: battery level unreadable: %s", self.name, exc)
        settings = await self._request(pmd.get_settings(pmd.MeasurementType.ECG), "ECG settings")
        self._check(settings, "the ECG settings query")
        self.ecg_settings = dict(settings.settings)
        rates = self.ecg_settings.get(pmd.SettingType.SAMPLE_RATE, ())
        if rates and int(self.fs_hz) not in rates:
            raise UnsupportedDeviceError(
                f"{self.name}: the strap offers ECG at {rates} Hz, not {self.fs_hz:g} Hz"
            )
        # before the start request, so that no ECG frame can be queued ahead of this status
        self._emit_status(SourceState.WAITING_FOR_ECG, self._describe())
        await self._start_ecg()
        if self.acc_fs_hz is not None:
            await self._start_acc(features)
        self._link_up = True

    async def _start_ecg(self) -> None:
        resp = await self._request(
            pmd.start_ecg(int(self.fs_hz), pmd.H10_ECG_RESOLUTION_BITS), "the ECG start"
        )
        # 6 = already in state: a retried start whose first answer was lost, or a restart
        self._check(resp, "the ECG start", ok=(0, 6))
        self._ecg_running = True

    async def _start_acc(self, features: set[Any]) -> None:
        """Start the accelerometer; a strap that cannot keeps streaming ECG (``acc_error``)."""
        assert self.acc_fs_hz is not None
        if pmd.MeasurementType.ACC not in features:
            self.acc_error = "the strap does not offer ACC (PMD features)"
            logger.warning("%s: %s; streaming ECG only", self.name, self.acc_error)
            return
        try:
            resp = await self._request(
                pmd.start_acc(self.acc_fs_hz, self.acc_range_g), "the ACC start"
            )
            self._check(resp, "the ACC start", ok=(0, 6))
        except PmdRequestError as exc:
            self.acc_error = str(exc)
            logger.warning("%s: %s; streaming ECG only", self.name, exc)
            return
        self.acc_error = None
        self._acc_running = True

    async def _restart_acc(self) -> None:
        self._acc_running = False
        self._emit(_GAP, "acc")
        await self._start_acc({pmd.MeasurementType.ACC})

    async def _restart_ecg(self) -> None:
        self._ecg_running = False
        self._emit(_GAP, "ecg")
        try:
            await self._start_ecg()
        except SourceError as exc:
            self._emit(_FATAL, exc)

    async def _first_connect(self) -> None:
        self._lock = asyncio.Lock()
        self._ecg_running = False
        self._device = await self._find_device()
        await self._connect_once()

    async def _reconnect_loop(self) -> None:
        delay_s = self.reconnect_initial_s
        attempt = 0
        self._emit(_GAP)
        while not self._closing:
            attempt += 1
            self._emit_status(SourceState.RECONNECTING, f"attempt {attempt}")
            try:
                await self._connect_once()
            except (UnsupportedDeviceError, BluetoothUnavailableError) as exc:
                self._emit(_FATAL, exc)
                return
            except SourceError as exc:
                logger.warning("%s: reconnect attempt %d failed: %s", self.name, attempt, exc)
                if self.max_reconnect_attempts is not None and (
                    attempt >= self.max_reconnect_attempts
                ):
                    self._emit(
                        _FATAL,
                        SourceError(
                            f"{self.name}: lost the strap and {attempt} reconnect attempts "
                            f"failed (last: {exc})"
                        ),
                    )
                    return
                await asyncio.sleep(delay_s)
                delay_s = min(2 * delay_s, self.reconnect_max_s)
            else:
                self.n_reconnects += 1
                logger.info("%s: reconnected after %d attempt(s)", self.name, attempt)
                return

    async def _shutdown(self) -> None:
        self._closing = True
        if self._reconnect_task is not None:
            self._reconnect_task.cancel()
        client = self._client
        if client is None or not client.is_connected:
            return
        if self._acc_running:
            try:
                await asyncio.wait_for(
                    self._request(pmd.stop(pmd.MeasurementType.ACC), "the ACC stop"), 2.0
                )
            except (SourceError, TimeoutError) as exc:
                logger.info("%s: ACC stop not confirmed: %s", self.name, exc)
            self._acc_running = False
        if self._ecg_running:
            try:
                await asyncio.wait_for(self._request(pmd.stop(), "the ECG stop"), 2.0)
            except (SourceError, TimeoutError) as exc:
                logger.info("%s: ECG stop not confirmed: %s", self.name, exc)
        try:
            await client.disconnect()
        except Exception as exc:
            logger.info("%s: disconnect failed: %s", self.name, exc)

    # convenience ------------------------------------------------------------------------
    def samples_per_s(self) -> float:
        """Fitted ECG rate in host-clock Hz (nominal 130 Hz ±2 % on the H10)."""
        return self.fs_hz / self.clock.rate if self.clock.rate else float("nan")


# -- discovery ------------------------------------------------------------------------------
def scan_polar_devices(
    timeout_s: float = 5.0, name_prefix: str = "Polar H10"
) -> list[tuple[str, str]]:
    """``(name, address)`` of BLE devices whose name starts with ``name_prefix``.

    The name is the device's, else the advertised local name (as the Polar source matches).
    Raises :class:`~ecgaffect.stream.sources.base.BluetoothUnavailableError` when the machine
    cannot scan (no adapter, BlueZ or D-Bus), with the reason.
    """
    if not timeout_s > 0:
        raise ValueError(f"timeout_s must be > 0, got {timeout_s!r}")
    bleak = require("bleak", "Scanning for a Polar strap")
    try:
        found = asyncio.run(bleak.BleakScanner.discover(timeout=timeout_s, return_adv=True))
    except Exception as exc:  # bleak raises FileNotFoundError, BleakError, OSError...
        raise BluetoothUnavailableError(
            f"Bluetooth unavailable ({type(exc).__name__}: {exc}); check that the machine has "
            "a Bluetooth adapter, that it is switched on, and (Linux) that BlueZ and the "
            "system D-Bus are running"
        ) from exc
    named = [
        (d.name or getattr(adv, "local_name", None) or "", str(d.address))
        for d, adv in found.values()
    ]
    return sorted((n, a) for n, a in named if n.startswith(name_prefix))
