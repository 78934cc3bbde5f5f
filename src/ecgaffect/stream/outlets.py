"""The app on the lab network: LSL outlets for scores and raw ECG, and a marker inlet.

- :class:`AffectOutlet` publishes every :class:`~ecgaffect.stream.sinks.Score` on an
  irregular-rate float32 stream of type ``"Affect"`` with channels ``task:class`` (the class
  probabilities, each saying whether its task is validated, on what, how and with what
  figure), ``quality_ok`` (1/0) and ``heart_rate_bpm``, and the model's metadata in the
  stream's ``desc/model``.
- :class:`EcgOutlet` re-broadcasts the raw ECG (µV) with one timestamp per sample.
- :class:`MarkerInlet` listens to a marker stream (type ``"Markers"``) on a thread and hands
  each marker, with its timestamp mapped to this machine's clock, to a callback (the
  recorder's ``on_marker``, the pipeline).
"""

from __future__ import annotations

import logging
import math
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from ecgaffect._optional import require
from ecgaffect.stream._lsl import quote_query_value
from ecgaffect.stream.recorder import score_channel_labels, score_row
from ecgaffect.stream.sinks import Score, Sink
from ecgaffect.stream.sources.base import EcgChunk, Marker

__all__ = [
    "CHANNEL_VALIDATION_KEYS",
    "AffectOutlet",
    "EcgOutlet",
    "MarkerInlet",
    "channel_validation",
]

log = logging.getLogger(__name__)


def _pylsl(purpose: str) -> Any:
    return require("pylsl", purpose)


def _append_desc(element: Any, key: str, value: Any) -> None:
    """Write ``value`` under ``element`` as XML: mappings nest, sequences become repeated
    ``<item>`` children, scalars become text.
    """
    if isinstance(value, Mapping):
        child = element.append_child(key)
        for k, v in value.items():
            _append_desc(child, str(k), v)
    elif isinstance(value, list | tuple):
        child = element.append_child(key)
        for v in value:
            _append_desc(child, "item", v)
    else:
        element.append_child_value(key, str(value))


#: The ``model_info`` keys :class:`AffectOutlet` publishes; everything else stays private.
PUBLIC_MODEL_KEYS = (
    "name",
    "version",
    "fs_hz",
    "window_s",
    "normalization",
    "label_scheme",
    "demo",
    "tasks",
    "classes",
    "outputs",
    "validation",
)


def _looks_private(value: Any) -> bool:
    """A value that names a file or a machine: an absolute path or a home directory."""
    if isinstance(value, Mapping):
        return any(_looks_private(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_looks_private(v) for v in value)
    text = str(value)
    return text.startswith(("/", "~", "\\\\")) or (len(text) > 2 and text[1:3] in (":\\", ":/"))


def public_model_info(model_info: Mapping[str, Any]) -> dict[str, Any]:
    """The part of ``model_info`` that may go on the network (see :data:`PUBLIC_MODEL_KEYS`).

    Keys outside the list, and values holding an absolute path, are left out.
    """
    return {k: v for k, v in model_info.items() if k in PUBLIC_MODEL_KEYS and not _looks_private(v)}


#: What every probability channel of the affect outlet says about its task's validation.
CHANNEL_VALIDATION_KEYS = ("validated", "dataset", "protocol", "metric", "note")


def channel_validation(record: Any) -> dict[str, str]:
    """The per-channel validation fields (:data:`CHANNEL_VALIDATION_KEYS`) of one task's
    record (:meth:`ecgaffect.model.card.ModelCard.output_validation`).

    A task without a record is published as not validated; an empty ``note`` is left out;
    a value that looks like a path is replaced by ``"withheld"`` (it names this machine, see
    :func:`public_model_info`).
    """
    if not isinstance(record, Mapping) or not record:
        record = {"note": "no validation recorded for this output"}
    out = {}
    for key in CHANNEL_VALIDATION_KEYS:
        value = record.get(key)
        if key == "validated":
            out[key] = "yes" if value in ("yes", True) else "no"
        elif value is None or value == "":
            if key != "note":  # an empty note is left out
                out[key] = "none"
        else:
            out[key] = "withheld" if _looks_private(value) else str(value)
    return out


class AffectOutlet(Sink):
    """The model's output as an LSL stream (type ``"Affect"``, irregular rate, float32).

    Args:
        classes: task -> class names (the model's output layout); fixes the channels.
        name: stream name.
        source_id: stable id so recorders can recover the stream after a restart;
            default: a new random id.
        model_info: metadata for ``desc/model``; only the keys in :data:`PUBLIC_MODEL_KEYS`
            (model name, version, rate, window, outputs, validation summary) are published,
            nested mappings and lists as nested XML. Anything else (``training_data``, which
            for a model from ``ecgaffect train`` holds absolute dataset paths, the host name)
            never goes on the network. Its ``validation`` (task -> the card's
            :meth:`~ecgaffect.model.card.ModelCard.output_validation`) is also written on
            every probability channel of that task: ``validated`` (yes/no), ``dataset``,
            ``protocol``, ``metric`` and ``note`` (:func:`channel_validation`; a task
            without a record reads ``validated`` = no).

    Scores are pushed with their own ``timestamp_s`` (the window's last sample). A score
    lacking a task/class of the layout gets NaN in that channel.
    """

    def __init__(
        self,
        classes: Mapping[str, Sequence[str]],
        *,
        name: str = "ecgaffect-affect",
        source_id: str | None = None,
        model_info: Mapping[str, Any] | None = None,
    ) -> None:
        if not classes or any(len(v) == 0 for v in classes.values()):
            raise ValueError(
                f"AffectOutlet needs task -> non-empty class names, got {dict(classes)!r}"
            )
        pylsl = _pylsl("the LSL affect outlet")
        self.labels = score_channel_labels(classes)
        public = public_model_info(model_info or {})
        raw_validation = (model_info or {}).get("validation")
        validation = dict(raw_validation) if isinstance(raw_validation, Mapping) else {}
        self.source_id = source_id or f"ecgaffect-affect-{uuid.uuid4().hex[:12]}"
        info = pylsl.StreamInfo(
            name,
            "Affect",
            len(self.labels),
            pylsl.IRREGULAR_RATE,
            pylsl.cf_float32,
            self.source_id,
        )
        desc = info.desc()
        chans = desc.append_child("channels")
        for label in self.labels:
            ch = chans.append_child("channel")
            ch.append_child_value("label", label)
            if label == "quality_ok":
                ch.append_child_value("unit", "bool")
                ch.append_child_value("type", "Quality")
            elif label == "heart_rate_bpm":
                ch.append_child_value("unit", "bpm")
                ch.append_child_value("type", "HeartRate")
            else:
                ch.append_child_value("unit", "probability")
                ch.append_child_value("type", "Probability")
                task = label.split(":", 1)[0]
                for key, value in channel_validation(validation.get(task)).items():
                    ch.append_child_value(key, value)
        desc.append_child_value("manufacturer", "ecgaffect")
        meta = {"tasks": list(classes), "classes": {t: list(c) for t, c in classes.items()}}
        meta.update(public)
        _append_desc(desc, "model", meta)
        self._outlet = pylsl.StreamOutlet(info)
        self.name = name
        self.n_pushed = 0

    def on_score(self, score: Score) -> None:
        if self._outlet is None:
            return
        row = score_row(score, self.labels)
        self._outlet.push_sample(row, score.timestamp_s)
        self.n_pushed += 1

    def have_consumers(self) -> bool:
        return self._outlet is not None and bool(self._outlet.have_consumers())

    def close(self) -> None:
        self._outlet = None  # pylsl destroys the outlet when the object goes

    def __enter__(self) -> AffectOutlet:
        return self


class EcgOutlet(Sink):
    """Re-broadcast raw ECG (µV, float32, one channel) with one timestamp per sample.

    Args:
        fs_hz: nominal sampling rate of the source.
        name: stream name; type is ``"ECG"``.
        source_id: stable id (lets receivers recover the stream); default random.
        channel_label: label of the one channel.
    """

    def __init__(
        self,
        fs_hz: float,
        *,
        name: str = "ecgaffect-ecg",
        source_id: str | None = None,
        channel_label: str = "ECG",
    ) -> None:
        if not (math.isfinite(fs_hz) and fs_hz > 0):
            raise ValueError(f"EcgOutlet fs_hz must be a positive number, got {fs_hz!r}")
        pylsl = _pylsl("the LSL ECG outlet")
        self.source_id = source_id or f"ecgaffect-ecg-{uuid.uuid4().hex[:12]}"
        info = pylsl.StreamInfo(name, "ECG", 1, float(fs_hz), pylsl.cf_float32, self.source_id)
        ch = info.desc().append_child("channels").append_child("channel")
        ch.append_child_value("label", channel_label)
        ch.append_child_value("unit", "microvolts")
        ch.append_child_value("type", "ECG")
        info.desc().append_child_value("manufacturer", "ecgaffect")
        self._outlet = pylsl.StreamOutlet(info)
        self.name = name
        self.fs_hz = float(fs_hz)
        self.n_pushed = 0

    def on_chunk(self, chunk: EcgChunk) -> None:
        if self._outlet is None or len(chunk) == 0:
            return
        x = np.ascontiguousarray(chunk.samples_uv, dtype=np.float32).reshape(-1, 1)
        self._outlet.push_chunk(x, np.asarray(chunk.timestamps_s, dtype=np.float64).tolist())
        self.n_pushed += len(chunk)

    def have_consumers(self) -> bool:
        return self._outlet is not None and bool(self._outlet.have_consumers())

    def close(self) -> None:
        self._outlet = None

    def __enter__(self) -> EcgOutlet:
        return self


class MarkerInlet:
    """A thread that receives text markers from an LSL marker stream and calls ``callback``.

    It resolves a stream of type ``"Markers"`` (and ``name``, if given), opens an inlet with
    clock synchronisation, and calls ``callback(Marker(timestamp_s, text))`` for each marker,
    the timestamp mapped onto this machine's LSL clock. If the stream goes away it resolves
    again until :meth:`close`. Multi-channel marker samples are joined with ``"|"``.

    Args:
        callback: called on the inlet's thread; keep it quick.
        name: only accept a marker stream with this name.
        exclude_source_ids: source ids to ignore (e.g. our own marker outlet).
        resolve_timeout_s: how long each resolve attempt waits.
    """

    def __init__(
        self,
        callback: Callable[[Marker], None],
        *,
        name: str | None = None,
        exclude_source_ids: Sequence[str] = (),
        resolve_timeout_s: float = 1.0,
    ) -> None:
        if resolve_timeout_s <= 0:
            raise ValueError(f"resolve_timeout_s must be > 0, got {resolve_timeout_s!r}")
        self._pylsl = _pylsl("the LSL marker inlet")
        self.callback = callback
        self.name = name
        self._predicate()  # a name LSL cannot match raises here, not on the inlet's thread
        self.exclude_source_ids = set(exclude_source_ids)
        self.resolve_timeout_s = float(resolve_timeout_s)
        self.connected = threading.Event()
        self.stream_name: str | None = None
        self.n_markers = 0
        self.n_undecodable = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="MarkerInlet", daemon=True)
        self._thread.start()

    def _predicate(self) -> str:
        pred = "type='Markers'"
        if self.name is not None:
            pred += f" and name={quote_query_value(self.name)}"
        return pred

    def _resolve(self) -> Any | None:
        infos = self._pylsl.resolve_bypred(
            self._predicate(), minimum=1, timeout=self.resolve_timeout_s
        )
        for info in infos:
            if info.source_id() not in self.exclude_source_ids:
                return info
        return None

    def _run(self) -> None:
        pylsl = self._pylsl
        while not self._stop.is_set():
            info = self._resolve()
            if info is None:
                continue
            inlet = pylsl.StreamInlet(info, recover=False, processing_flags=pylsl.proc_clocksync)
            try:
                inlet.open_stream(timeout=self.resolve_timeout_s)
                self.stream_name = info.name()
                self.connected.set()
                log.info("receiving markers from %r", self.stream_name)
                while not self._stop.is_set():
                    # raw bytes (as_numpy=True): pylsl's own strict UTF-8 decode raises on
                    # one bad marker and would end this thread
                    samples, stamps = inlet.pull_chunk(timeout=0.1, as_numpy=True)
                    for sample, ts in zip(samples, stamps, strict=True):
                        text = "|".join(self._decode(v) for v in sample)
                        self.n_markers += 1
                        try:
                            self.callback(Marker(float(ts), text))
                        except Exception:
                            log.exception("marker callback failed for %r", text)
            except (pylsl.util.LostError, pylsl.util.TimeoutError) as exc:
                log.warning("marker stream %r lost (%s); resolving again", info.name(), exc)
                self.connected.clear()
            finally:
                inlet.close_stream()
                del inlet

    def _decode(self, value: Any) -> str:
        """One marker value as text; invalid UTF-8 is replaced (U+FFFD) and counted."""
        if isinstance(value, bytes | bytearray):
            try:
                return bytes(value).decode("utf-8")
            except UnicodeDecodeError:
                self.n_undecodable += 1
                if self.n_undecodable == 1:
                    log.warning(
                        "marker stream %r sent a marker that is not valid UTF-8 (%r); "
                        "decoded with replacement characters (further ones are counted)",
                        self.stream_name,
                        bytes(value)[:40],
                    )
                return bytes(value).decode("utf-8", errors="replace")
        return str(value)

    def close(self) -> None:
        """Stop the thread (waits up to a resolve timeout)."""
        self._stop.set()
        self._thread.join(timeout=self.resolve_timeout_s + 2.0)

    def __enter__(self) -> MarkerInlet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
