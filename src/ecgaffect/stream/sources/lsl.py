"""ECG from any Lab Streaming Layer stream (another app, an amplifier, a replay).

:class:`LslSource` resolves a stream by name / type / source_id, picks the ECG channel by
label or index, converts to microvolts from the channel's ``unit`` metadata, and hands out
:class:`EcgChunk` items with per-sample timestamps mapped to this machine's clock
(``time_correction``, via pylsl's post-processing flags) and optionally dejittered. When the
stream disappears it reports RECONNECTING, keeps resolving the same stream, and marks the
first chunk after it comes back with ``gap_before=True``.

:func:`list_streams` lists what is on the network, for the GUI's stream picker.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from ecgaffect._optional import require
from ecgaffect.datasets.session import UNITS_TO_UV
from ecgaffect.io.units import parse_unit
from ecgaffect.stream._lsl import quote_query_value
from ecgaffect.stream.sources.base import (
    EcgChunk,
    Source,
    SourceError,
    SourceItem,
    SourceState,
    StreamNotFoundError,
)

__all__ = ["LslSource", "LslStreamDescription", "list_streams"]

log = logging.getLogger(__name__)


def _pylsl() -> Any:
    return require("pylsl", "reading ECG from LSL")


@dataclass(frozen=True)
class LslStreamDescription:
    """What the picker shows about one stream on the network."""

    name: str
    type: str
    source_id: str
    channel_count: int
    nominal_srate_hz: float
    channel_format: str
    hostname: str
    uid: str

    def __str__(self) -> str:
        rate = "irregular" if self.nominal_srate_hz == 0 else f"{self.nominal_srate_hz:g} Hz"
        return (
            f"{self.name!r} (type {self.type!r}, {self.channel_count} ch, {rate}, "
            f"source_id {self.source_id!r}, on {self.hostname})"
        )


_FORMATS = {1: "float32", 2: "double64", 3: "string", 4: "int32", 5: "int16", 6: "int8", 7: "int64"}


def _describe(info: Any) -> LslStreamDescription:
    return LslStreamDescription(
        name=info.name(),
        type=info.type(),
        source_id=info.source_id(),
        channel_count=int(info.channel_count()),
        nominal_srate_hz=float(info.nominal_srate()),
        channel_format=_FORMATS.get(int(info.channel_format()), str(info.channel_format())),
        hostname=info.hostname(),
        uid=info.uid(),
    )


def list_streams(timeout_s: float = 1.0) -> list[LslStreamDescription]:
    """Every LSL stream visible within ``timeout_s`` seconds, sorted by name."""
    if not timeout_s > 0:
        raise ValueError(f"timeout_s must be > 0, got {timeout_s!r}")
    infos = _pylsl().resolve_streams(wait_time=timeout_s)
    return sorted((_describe(i) for i in infos), key=lambda d: (d.name, d.source_id))


def _channels(info: Any) -> tuple[list[str], list[str], list[str]]:
    labels, units, types = [], [], []
    ch = info.desc().child("channels").child("channel")
    while not ch.empty():
        labels.append(ch.child_value("label"))
        units.append(ch.child_value("unit"))
        types.append(ch.child_value("type"))
        ch = ch.next_sibling()
    n = int(info.channel_count())
    pad = [""] * max(0, n - len(labels))
    return (labels + pad)[:n], (units + pad)[:n], (types + pad)[:n]


class LslSource(Source):
    """ECG from an LSL stream.

    Args:
        name, type, source_id: what to resolve (all given ones must match); if none is
            given, the stream of type ``"ECG"``.
        channel: channel label or index; default the only channel, or the one labelled or
            typed ECG.
        units: override the channel's unit (``"uV"``, ``"mV"``, ``"V"``); default from the
            channel metadata, microvolts when the stream says nothing.
        resolve_timeout_s: how long :meth:`open` waits for the stream.
        clock_sync: map timestamps to this machine's clock (pylsl ``proc_clocksync``).
        dejitter: smooth timestamps (pylsl ``proc_dejitter``). Off by default: liblsl's
            smoothing spreads a timestamp jump (a clock step, an outlet restarted with another
            time base) over many seconds, so the pipeline could not detect and flag it.
        max_buflen_s: how much data the inlet buffers if the reader falls behind.
    """

    def __init__(
        self,
        name: str | None = None,
        type: str | None = None,  # noqa: A002 - LSL's own word
        source_id: str | None = None,
        *,
        channel: str | int | None = None,
        units: str | None = None,
        resolve_timeout_s: float = 5.0,
        clock_sync: bool = True,
        dejitter: bool = False,
        max_buflen_s: int = 360,
    ) -> None:
        super().__init__()
        if name is None and type is None and source_id is None:
            type = "ECG"
        if units is not None and units not in UNITS_TO_UV:
            raise ValueError(f"units must be one of {sorted(UNITS_TO_UV)}, got {units!r}")
        if not resolve_timeout_s > 0:
            raise ValueError(f"resolve_timeout_s must be > 0, got {resolve_timeout_s!r}")
        parts = []
        for key, value in (("name", name), ("type", type), ("source_id", source_id)):
            if value is not None:
                parts.append(f"{key}={quote_query_value(value)}")
        self.query = " and ".join(parts)
        self.channel = channel
        self.units_override = units
        self.resolve_timeout_s = float(resolve_timeout_s)
        self.clock_sync = clock_sync
        self.dejitter = dejitter
        self.max_buflen_s = int(max_buflen_s)
        self.name = f"LSL stream ({self.query})"
        self.description: LslStreamDescription | None = None
        self.channel_index = 0
        self.channel_label = ""
        self.scale_to_uv = 1.0
        self.n_delivered = 0
        self.n_reconnects = 0
        self._inlet: Any = None
        self._gap_pending = False
        self._status_pending = False
        self._reconnect_query = self.query
        #: seconds between reconnect attempts after a failed one (doubles up to the max)
        self.retry_min_s = 0.5
        self.retry_max_s = 5.0
        self.n_reconnect_failures = 0
        self._retry_s = 0.0
        self._retry_at = 0.0
        self._last_reconnect_error = ""

    # -- helpers ---------------------------------------------------------------------------
    def _flags(self) -> int:
        pylsl = _pylsl()
        flags = 0
        if self.clock_sync:
            flags |= pylsl.proc_clocksync
        if self.dejitter:
            flags |= pylsl.proc_dejitter
        return flags

    def _resolve(self, query: str, timeout_s: float) -> Any | None:
        infos = _pylsl().resolve_bypred(query, minimum=1, timeout=timeout_s)
        return infos[0] if infos else None

    def _connect(self, info: Any) -> Any:
        pylsl = _pylsl()
        inlet = pylsl.StreamInlet(
            info, max_buflen=self.max_buflen_s, recover=False, processing_flags=self._flags()
        )
        try:
            inlet.open_stream(timeout=self.resolve_timeout_s)
        except pylsl.util.TimeoutError as exc:
            raise SourceError(f"{self.name}: found but could not connect ({exc})") from exc
        return inlet

    def _configure(self, full: Any) -> None:
        desc = _describe(full)
        if desc.channel_format == "string":
            raise SourceError(
                f"{self.name}: stream {desc} carries text (channel format string), not ECG "
                "samples; expected a numeric stream (float32, double64 or int) with a nominal "
                "rate, one channel per lead"
            )
        if not desc.nominal_srate_hz > 0:
            raise SourceError(
                f"{self.name}: stream {desc} has an irregular rate; ECG needs a nominal rate"
            )
        labels, units, types = _channels(full)
        ch = self.channel
        if isinstance(ch, int):
            if not 0 <= ch < desc.channel_count:
                raise SourceError(
                    f"{self.name}: channel index {ch} out of range, the stream has "
                    f"{desc.channel_count} channels {labels}"
                )
            idx = ch
        elif isinstance(ch, str):
            if ch not in labels:
                raise SourceError(f"{self.name}: no channel {ch!r}; channels: {labels}")
            idx = labels.index(ch)
        elif desc.channel_count == 1:
            idx = 0
        else:
            found = [
                i
                for i, (lab, t) in enumerate(zip(labels, types, strict=True))
                if "ecg" in lab.lower() or t.lower() == "ecg"
            ]
            if not found:
                raise SourceError(
                    f"{self.name}: {desc.channel_count} channels and none labelled ECG "
                    f"({labels}); pass channel=LABEL or index"
                )
            idx = found[0]
        if self.units_override is not None:
            scale_to_uv = UNITS_TO_UV[self.units_override]
        elif units[idx]:
            parsed = parse_unit(units[idx])
            if parsed is None:
                raise SourceError(
                    f"{self.name}: channel {labels[idx] or idx!r} has unit {units[idx]!r}; "
                    "expected a voltage (µV, uV, microvolts, mV, V, ...) or au. "
                    "Pass units='uV'/'mV'/'V'."
                )
            scale_to_uv = parsed.scale_to_uv
        else:
            scale_to_uv = 1.0  # microvolts when the stream says nothing
        self.description = desc
        self.fs_hz = desc.nominal_srate_hz
        self.channel_index = idx
        self.channel_label = labels[idx]
        self.scale_to_uv = scale_to_uv
        if desc.source_id:
            self._reconnect_query = f"source_id={quote_query_value(desc.source_id)}"

    # -- Source ----------------------------------------------------------------------------
    def _open(self) -> None:
        self.n_delivered = 0
        info = self._resolve(self.query, self.resolve_timeout_s)
        if info is None:
            seen = list_streams(timeout_s=min(1.0, self.resolve_timeout_s))
            listing = "; ".join(str(s) for s in seen) or "none"
            raise StreamNotFoundError(
                f"no LSL stream matching {self.query} within {self.resolve_timeout_s:g} s; "
                f"streams seen: {listing}"
            )
        inlet = self._connect(info)
        try:
            self._configure(inlet.info(timeout=self.resolve_timeout_s))
        except BaseException:
            inlet.close_stream()
            raise
        self._inlet = inlet
        self.name = f"LSL stream {self.description.name!r}" if self.description else self.name
        self._set_status(
            SourceState.STREAMING,
            f"{self.fs_hz:g} Hz, channel {self.channel_label or self.channel_index}",
        )
        self._status_pending = True
        log.info("reading %s", self.description)

    def _back_off(self, error: str) -> None:
        """After a failed reconnect wait ``retry_min_s``, doubling up to ``retry_max_s``.

        The error is logged when it is new (a stream that came back in the wrong format
        logs one clear line, not one per attempt); every failure is counted.
        """
        self.n_reconnect_failures += 1
        self._retry_s = min(self.retry_max_s, max(self.retry_min_s, 2 * self._retry_s))
        self._retry_at = time.monotonic() + self._retry_s
        if error != self._last_reconnect_error:
            self._last_reconnect_error = error
            self._set_status(SourceState.RECONNECTING, f"reconnect failed: {error}")
            log.warning(
                "%s: reconnect failed: %s (retrying every %g s at most)",
                self.name,
                error,
                self.retry_max_s,
            )

    def _close(self) -> None:
        if self._inlet is not None:
            self._inlet.close_stream()
        self._inlet = None

    def _read(self, timeout_s: float) -> list[SourceItem]:
        pylsl = _pylsl()
        items: list[SourceItem] = []
        if self._status_pending:
            items.append(self.status)
            self._status_pending = False
        if self._inlet is None:
            wait = self._retry_at - time.monotonic()
            if wait > 0:  # backing off after a failed reconnect: no busy retry loop
                time.sleep(min(wait, max(timeout_s, 0.0)))
                return items
            info = self._resolve(self._reconnect_query, max(timeout_s, 0.05))
            if info is None:
                return items
            inlet = None
            try:
                inlet = self._connect(info)
                self._configure(inlet.info(timeout=self.resolve_timeout_s))
            except (SourceError, pylsl.util.TimeoutError, pylsl.util.LostError) as exc:
                if inlet is not None:
                    inlet.close_stream()
                self._back_off(str(exc))
                return items
            self._retry_s = 0.0
            self._last_reconnect_error = ""
            self._inlet = inlet
            self.n_reconnects += 1
            items.append(self._set_status(SourceState.STREAMING, "stream is back"))
            log.info("%s is back", self.name)
            timeout_s = 0.0
        try:
            samples, stamps = self._inlet.pull_chunk(
                timeout=max(timeout_s, 0.0), max_samples=8192, min_samples=1, as_numpy=True
            )
        except pylsl.util.LostError:
            self._inlet = None
            self._gap_pending = True
            items.append(self._set_status(SourceState.RECONNECTING, "stream lost"))
            log.warning("%s lost; waiting for it to come back", self.name)
            return items
        if len(stamps):
            x = np.asarray(samples, dtype=np.float64).reshape(len(stamps), -1)
            chunk = EcgChunk(
                samples_uv=x[:, self.channel_index] * self.scale_to_uv,
                timestamps_s=np.asarray(stamps, dtype=np.float64),
                first_index=self.n_delivered,
                gap_before=self._gap_pending,
            )
            self._gap_pending = False
            self.n_delivered += len(chunk)
            items.append(chunk)
        return items
