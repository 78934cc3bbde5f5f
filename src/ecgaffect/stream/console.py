"""A sink that prints one live line per score (the headless ``ecgaffect live`` display)."""

from __future__ import annotations

import math
import sys
import threading
from collections.abc import Collection, Sequence
from typing import TextIO

import numpy as np

from ecgaffect.stream.sinks import Score, Sink
from ecgaffect.stream.smoothing import ScoreSmoother
from ecgaffect.stream.sources.base import Marker, SourceStatus

__all__ = ["LEGEND", "ConsoleSink", "format_score", "format_smoothed"]


#: What a score line says (printed once above the first line by ``ecgaffect live``, and in
#: ``ecgaffect demo --help``).
LEGEND = """\
One line per scored 10 s window, e.g.
  #12 | HR  72 bpm | quality ok | arousal low 0.96 | valence high 0.71 | latency 12 ms
  #12              window number (one window per --hop seconds)
  HR  72 bpm       heart rate over the window (-- when the signal is unusable)
  quality ok       signal quality; "BAD (flat,noise,...)" names why a window is unusable,
                   and its tasks show no probability (—)
  arousal low 0.96 per task: the more likely class and the model's probability for it
                   (two classes: 0.50 = undecided, 1.00 = sure); the model's confidence,
                   not its accuracy
  arousal* ...     a * marks an output the model card does not validate (the line ends
                   with what it is, e.g. "(* unvalidated demo head)"); the lines above
                   the first score say what is validated, on what data and how well
  latency 12 ms    time from the window's last ECG sample arriving to its score (model
                   compute and queueing), not a delay of the signal itself
  30 s: stress 0.62 [0.48-0.75]
                   what to read: the probability of each two-class task's second class
                   averaged over the good windows of the last 30 s, with its 95 % band
                   (bad windows never move it; — when there is no good window)"""


def _mark(task: str, unvalidated: Collection[str]) -> str:
    return f"{task}*" if task in unvalidated else task


def format_score(score: Score, unvalidated: Collection[str] = ()) -> str:
    """One console line for a score.

    ``#12    | HR  72 bpm | quality ok | arousal high 0.71 | latency 35 ms``; a window
    flagged bad shows its reasons and no probability (the model's output on a flat line
    or noise means nothing): ``#3     | HR  -- bpm | quality BAD (flat) | arousal — | ...``.

    Args:
        score: the score to show.
        unvalidated: tasks whose output the model card does not validate; their name gets
            a ``*`` (``arousal* high 0.71``; :class:`ConsoleSink` says what it means).

    Returns:
        The line, without a newline.
    """
    hr = (
        f"HR {score.heart_rate_bpm:3.0f} bpm"
        if math.isfinite(score.heart_rate_bpm) and score.quality_ok
        else "HR  -- bpm"
    )
    quality = (
        "quality ok" if score.quality_ok else "quality BAD (" + ",".join(score.quality_flags) + ")"
    )
    parts = [f"#{score.window_index:<5d}", hr, quality]
    for task, probs in score.probabilities.items():
        shown = _mark(task, unvalidated)
        if not score.quality_ok:
            parts.append(f"{shown} —")
            continue
        p = np.asarray(probs)
        names = score.classes.get(task, ())
        k = int(np.argmax(p))
        name = names[k] if k < len(names) else str(k)
        parts.append(f"{shown} {name} {float(p[k]):.2f}")
    latency = f"{score.latency_s * 1000:.0f} ms" if math.isfinite(score.latency_s) else "--"
    parts.append(f"latency {latency}")
    return " | ".join(parts)


def format_smoothed(smoothers: list[ScoreSmoother], unvalidated: Collection[str] = ()) -> str:
    """``30 s: stress 0.62 [0.48-0.75]`` for the smoothers' current values (— when none);
    the tasks in ``unvalidated`` get a ``*`` as in :func:`format_score`.
    """
    if not smoothers:
        return ""
    parts = []
    for sm in smoothers:
        cur = sm.current()
        task = _mark(sm.task, unvalidated)
        if not math.isfinite(cur.value):
            parts.append(f"{task} —")
        elif math.isfinite(cur.low):
            parts.append(f"{task} {cur.value:.2f} [{cur.low:.2f}-{cur.high:.2f}]")
        else:
            parts.append(f"{task} {cur.value:.2f}")
    return f"{smoothers[0].horizon_s:g} s: " + ", ".join(parts)


class ConsoleSink(Sink):
    """Prints :func:`format_score` for every score and status changes, to ``stream``.

    On a terminal the score line is rewritten in place (a carriage return); otherwise one
    line each. With ``smooth_s`` (default 30 s) each line ends with the smoothed probability
    of the last class of every two-class task (:class:`~ecgaffect.stream.smoothing.
    ScoreSmoother`; bad windows never move it); ``smooth_s=None`` leaves it out.

    The tasks in ``unvalidated`` (outputs the model card does not validate) are marked
    ``*`` on every line, which then ends with ``(* FOOTNOTE)``, e.g. ``arousal* high 0.73 |
    ... | (* unvalidated demo head)``; the ``header`` lines (what is validated, on what)
    are printed once before the first line.
    """

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        smooth_s: float | None = 30.0,
        unvalidated: Collection[str] = (),
        footnote: str = "not validated",
        header: Sequence[str] = (),
    ) -> None:
        self.stream = stream or sys.stdout
        self.smooth_s = smooth_s
        self.unvalidated = frozenset(unvalidated)
        self.footnote = footnote
        self._header = list(header)
        self._smoothers: list[ScoreSmoother] | None = None
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._lock = threading.Lock()
        self.n_printed = 0

    def _write(self, text: str, *, inplace: bool) -> None:
        with self._lock:
            if self._header:
                self.stream.write("\n".join(self._header) + "\n")
                self._header = []
            if inplace and self._tty:
                self.stream.write("\r\x1b[2K" + text)
            else:
                self.stream.write(("\n" if self._tty and self.n_printed else "") + text + "\n")
            self.stream.flush()
            self.n_printed += 1

    def on_score(self, score: Score) -> None:
        line = format_score(score, self.unvalidated)
        if self.smooth_s is not None:
            if self._smoothers is None:
                self._smoothers = [
                    ScoreSmoother(task, names[-1], horizon_s=self.smooth_s)
                    for task, names in score.classes.items()
                    if len(names) == 2
                ]
            for sm in self._smoothers:
                sm.add(score)
            smoothed = format_smoothed(self._smoothers, self.unvalidated)
            if smoothed:
                line = f"{line} | {smoothed}"
        if self.unvalidated & set(score.probabilities):
            line = f"{line} | (* {self.footnote})"
        self._write(line, inplace=True)

    def on_marker(self, marker: Marker) -> None:
        self._write(f"[marker {marker.text!r} at {marker.timestamp_s:.3f} s]", inplace=False)

    def on_status(self, status: SourceStatus) -> None:
        self._write(f"[{status}]", inplace=False)

    def close(self) -> None:
        if self._tty:
            with self._lock:
                self.stream.write("\n")
                self.stream.flush()
