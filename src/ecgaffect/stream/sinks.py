"""Where the pipeline's output goes: the :class:`Score` record and the :class:`Sink` base.

Sinks (LSL outlets, the recorder, the console line, the GUI bridge) subclass :class:`Sink` and
override the callbacks they care about. Callbacks run on the pipeline's threads and must be
quick: a slow sink hands work to its own thread/queue.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from ecgaffect.stream.sources.base import EcgChunk, HeartRate, Marker, SourceStatus

__all__ = ["Score", "Sink"]


@dataclass(frozen=True)
class Score:
    """The model's answer for one 10 s window.

    Attributes:
        timestamp_s: LSL-clock time of the window's last sample.
        window_start_s: LSL-clock time of the window's first sample.
        window_index: running count of windows scored since the pipeline started.
        probabilities: task -> class probabilities (rows sum to 1), e.g. ``{"arousal":
            array([0.3, 0.7])}``.
        classes: task -> class names, same order as the probabilities.
        quality_ok: False when the window has lost samples, gaps, flat line / saturation or an
            implausible heart rate; such scores must never be presented as valid.
        quality_flags: why quality_ok is False (empty when it is True).
        heart_rate_bpm: mean heart rate over the window from its R-peaks (NaN if unknown).
        latency_s: time from the window's last sample arriving to the score being ready.
        r_peaks_s: LSL-clock times of the R-peaks found in the window's raw signal (for
            display; empty when quality could not be assessed).
    """

    timestamp_s: float
    window_start_s: float
    window_index: int
    probabilities: Mapping[str, np.ndarray]
    classes: Mapping[str, tuple[str, ...]]
    quality_ok: bool = True
    quality_flags: tuple[str, ...] = ()
    heart_rate_bpm: float = math.nan
    latency_s: float = math.nan
    extras: Mapping[str, float] = field(default_factory=dict)
    r_peaks_s: tuple[float, ...] = ()

    def probability(self, task: str, cls: str) -> float:
        """Probability of class ``cls`` of ``task`` (KeyError/ValueError naming them)."""
        if task not in self.probabilities:
            raise KeyError(f"score has no task {task!r}; tasks: {sorted(self.probabilities)}")
        names = list(self.classes[task])
        if cls not in names:
            raise ValueError(f"task {task!r} has no class {cls!r}; classes: {names}")
        return float(self.probabilities[task][names.index(cls)])


class Sink:
    """Receives the pipeline's data. Override what you need; every callback defaults to no-op.

    ``on_chunk`` gets every raw ECG chunk (samples in µV with per-sample LSL timestamps),
    ``on_score`` every scored window. ``close()`` flushes and releases resources; sinks are
    context managers.
    """

    def on_chunk(self, chunk: EcgChunk) -> None:  # noqa: B027 - intentional no-op default
        pass

    def on_heart_rate(self, hr: HeartRate) -> None:  # noqa: B027
        pass

    def on_marker(self, marker: Marker) -> None:  # noqa: B027
        pass

    def on_score(self, score: Score) -> None:  # noqa: B027
        pass

    def on_status(self, status: SourceStatus) -> None:  # noqa: B027
        pass

    def close(self) -> None:  # noqa: B027
        pass

    def __enter__(self) -> Sink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
