"""Small fakes for the live-pipeline tests: a chunked synthetic source, a scorer, a preprocessor.

They follow the contracts (Source interface, Scorer.score, StreamingPreprocessor.push) so the
pipeline tests do not depend on the Polar/replay/signal/export work landing first.
"""

from __future__ import annotations

import math
import time

import numpy as np

from _export_fixtures import make_card
from ecgaffect.model.card import ModelCard
from ecgaffect.stream.sinks import Sink
from ecgaffect.stream.sources.base import (
    EcgChunk,
    HeartRate,
    Marker,
    Source,
    SourceError,
    SourceState,
    SourceStatus,
)


class FakeSource(Source):
    """Yields ``ecg_uv`` in chunks of ``chunk_n`` samples, one chunk per read.

    ``skip`` maps a chunk number to a number of samples dropped before it (counter jump);
    ``fail_at`` raises SourceError at that chunk; ``extras`` puts HeartRate/Marker items in.
    """

    name = "fake"

    def __init__(
        self,
        ecg_uv: np.ndarray,
        fs_hz: float,
        *,
        chunk_n: int = 73,
        t0_s: float = 1000.0,
        skip: dict[int, int] | None = None,
        gap_flag_at: tuple[int, ...] = (),
        fail_at: int | None = None,
        extras: bool = False,
        sleep_s: float = 0.0,
    ) -> None:
        super().__init__()
        self.fs_hz = float(fs_hz)
        self._x = np.asarray(ecg_uv, dtype=np.float64)
        self._chunk_n = chunk_n
        self._t0 = t0_s
        self._skip = skip or {}
        self._gap_flag_at = gap_flag_at
        self._fail_at = fail_at
        self._extras = extras
        self._sleep_s = sleep_s
        self._pos = 0
        self._k = 0
        self.delivered = 0

    def _open(self) -> None:
        self._set_status(SourceState.STREAMING)

    def _close(self) -> None:
        pass

    def _read(self, timeout_s: float) -> list:
        if self.finished:
            return []
        if self._sleep_s:
            time.sleep(self._sleep_s)
        if self._fail_at is not None and self._k == self._fail_at:
            raise SourceError("fake: the strap fell off (test)")
        self._pos += self._skip.get(self._k, 0)
        lo, hi = self._pos, min(self._pos + self._chunk_n, self._x.shape[0])
        items: list = []
        if self._k == 0:
            items.append(SourceStatus(SourceState.STREAMING, "fake streaming"))
        if lo < hi:
            idx = np.arange(lo, hi)
            items.append(
                EcgChunk(
                    self._x[lo:hi].copy(),
                    self._t0 + idx / self.fs_hz,
                    first_index=lo,
                    gap_before=self._k in self._gap_flag_at,
                )
            )
            self.delivered += hi - lo
        if self._extras and self._k % 10 == 0:
            items.append(HeartRate(self._t0 + lo / self.fs_hz, 72.0, (0.83,)))
            items.append(Marker(self._t0 + lo / self.fs_hz, f"m{self._k}"))
        self._pos = hi
        self._k += 1
        if self._pos >= self._x.shape[0]:
            items.append(self._set_status(SourceState.FINISHED, "end of data"))
        return items


#: Tasks of :class:`FakeScorer`'s default card.
FAKE_TASKS = {"arousal": ["low", "high"], "valence": ["low", "high"]}


class FakeScorer:
    """Duck-typed Scorer: a fixed random linear map + softmax (deterministic, input-sensitive)."""

    def __init__(self, card: ModelCard | None = None, *, delay_s: float = 0.0) -> None:
        self.card = card or make_card(name="fake-model", tasks=FAKE_TASKS)
        rng = np.random.default_rng(42)
        self._w = {
            t: rng.normal(size=(self.card.window_n, len(c))) / math.sqrt(self.card.window_n)
            for t, c in self.card.tasks.items()
        }
        self.delay_s = delay_s
        self.batches: list[int] = []
        self.inputs: list[np.ndarray] = []

    @property
    def tasks(self) -> list[str]:
        return list(self.card.tasks)

    def classes(self, task: str) -> list[str]:
        return list(self.card.tasks[task])

    def score(self, windows: np.ndarray, *, fs_hz: float) -> dict[str, np.ndarray]:
        if fs_hz != self.card.fs_hz:
            raise ValueError(f"fs_hz {fs_hz} != card {self.card.fs_hz}")
        x = np.asarray(windows, dtype=np.float64).reshape(-1, self.card.window_n)
        if self.delay_s:
            time.sleep(self.delay_s)
        self.batches.append(x.shape[0])
        self.inputs.append(x.copy())
        out = {}
        for t, w in self._w.items():
            z = x @ w
            z -= z.max(axis=1, keepdims=True)
            e = np.exp(z)
            out[t] = e / e.sum(axis=1, keepdims=True)
        return out


class FakePreprocessor:
    """Identity at 256 Hz (the source runs at 256 Hz) that is 'calibrated' after N samples."""

    def __init__(self, fs_in_hz: float, config: object = None, *, calibration_n: int = 2560):
        assert fs_in_hz == 256.0
        self.calibration_n = calibration_n
        self.n_out = 0

    def push(self, samples: np.ndarray) -> np.ndarray:
        self.n_out += samples.shape[0]
        return np.asarray(samples, dtype=np.float64) / 1000.0

    def flush(self) -> np.ndarray:
        return np.zeros(0)


class CollectSink(Sink):
    def __init__(self) -> None:
        self.chunks: list = []
        self.scores: list = []
        self.markers: list = []
        self.heart_rates: list = []
        self.statuses: list = []
        self.closed = False

    def on_chunk(self, chunk) -> None:
        self.chunks.append(chunk)

    def on_score(self, score) -> None:
        self.scores.append(score)

    def on_marker(self, marker) -> None:
        self.markers.append(marker)

    def on_heart_rate(self, hr) -> None:
        self.heart_rates.append(hr)

    def on_status(self, status) -> None:
        self.statuses.append(status)

    def close(self) -> None:
        self.closed = True
