"""Redraw cost of the participant grid (``ecgaffect gui --lsl A B ...``) for 10 and 50 tiles.

No LSL and no model: N participants are fed generated scores straight into their tiles'
feeds (what the lab run's pipelines would hand them), each sparkline first filled with
5 minutes of 1 s scores (300 points, the most it holds). The window is made large enough
to show every tile (the worst case: Qt paints only visible tiles). Then, per N, it measures
the grid's one timer tick (drain the feeds, update the texts, ``update()`` the changed
sparklines) plus the repaint it causes (``processEvents``), in milliseconds:

- ``all changed``: every tile got a new score since the last tick (at a 1 s hop, what one
  tick a second sees);
- ``none changed``: no new data (the other ticks: the grid ticks at 5 Hz);
- ``ms per s``: one ``all changed`` + four ``none changed`` ticks, the cost of one second
  of a 1 s hop (``/10`` = % of one core).

Wall-clock times, and the Qt thread's CPU time (``time.thread_time``), which a busy machine
inflates less.

Run from the repository root:

    QT_QPA_PLATFORM=offscreen PYTHONPATH=src python benchmarks/bench_grid.py --n 10 50
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


class _Counters:
    samples_in = 0


class _RunningPipeline:
    """What a tile reads of a participant's pipeline: a running one (no scoring here)."""

    state = None  # set in main (PipelineState.RUNNING)
    error = None
    source_status = None
    fs_in_hz = 130.0
    config = None
    counters = _Counters()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[10, 50], help="tiles")
    parser.add_argument("--ticks", type=int, default=60, help="measured ticks per case")
    args = parser.parse_args()

    import numpy as np

    from _export_fixtures import make_card
    from ecgaffect.gui import participant_grid as grid_mod
    from ecgaffect.gui.widgets import QtWidgets
    from ecgaffect.stream.pipeline import PipelineState
    from ecgaffect.stream.sinks import Score
    from stream_fakes import FAKE_TASKS, FakeScorer

    _RunningPipeline.state = PipelineState.RUNNING
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(["bench"])
    scorer = FakeScorer(make_card(name="bench", tasks=FAKE_TASKS))
    classes = {t: tuple(c) for t, c in FAKE_TASKS.items()}
    rng = np.random.default_rng(0)

    def score(i: int, t: float) -> Score:
        p = float(np.clip(0.5 + 0.3 * math.sin(t / 40.0 + i) + 0.05 * rng.normal(), 0, 1))
        probs = {task: np.array([1 - p, p]) for task in classes}
        peaks = tuple(t - 10.0 + 0.4 + k * 0.83 for k in range(12))
        return Score(t, t - 10.0, int(t), probs, classes, True, (), 72.0 + i % 20, 0.01, {}, peaks)

    print(f"participant grid redraw, {args.ticks} ticks per case (ms; mean / p95)")
    print(
        "| tiles | all changed (of which the tick, before the repaint) | none changed "
        "| ms per s at 1 s hop, 5 Hz ticks |"
    )
    print("|---|---|---|---|")
    for n in args.n:
        grid = grid_mod.ParticipantGrid(scorer, None, hop_s=1.0, redraw_hz=1.0)
        grid._timer.stop()  # ticks are driven here
        cols = max(1, math.ceil(math.sqrt(n * 1.6)))
        rows = math.ceil(n / cols)
        grid.resize(cols * (grid_mod.TILE_W + 8) + 60, rows * (grid_mod.TILE_H + 8) + 120)
        grid.show()
        parts = []
        for i in range(n):
            part = grid_mod.LabParticipant(
                f"P{i:02d}-ECG",
                f"P{i:02d}",
                f"P{i:02d}-ECG",
                "",
                _RunningPipeline(),
                grid_mod.TileFeed(),
            )
            parts.append(part)
            grid.add_participant(part)
        t = 1000.0
        for _ in range(int(grid_mod.SPARK_S)):  # fill every sparkline (5 min of 1 s scores)
            t += 1.0
            for i, part in enumerate(parts):
                part.feed.last_chunk_s = time.monotonic()
                part.feed.on_score(score(i, t))
        grid.tick()
        app.processEvents()

        def measure(new_scores: bool, grid=grid, parts=parts, n=n) -> np.ndarray:
            nonlocal t
            out = []
            for _ in range(args.ticks):
                t += 1.0
                for i, part in enumerate(parts):
                    part.feed.last_chunk_s = time.monotonic()
                    if new_scores:
                        part.feed.on_score(score(i, t))
                c0, t0 = time.thread_time(), time.perf_counter()
                changed = grid.tick()
                t1 = time.perf_counter()
                app.processEvents()
                c2, t2 = time.thread_time(), time.perf_counter()
                out.append(((t2 - t0) * 1000.0, (t1 - t0) * 1000.0, (c2 - c0) * 1000.0))
                assert changed == (n if new_scores else 0), (changed, n, new_scores)
            return np.asarray(out)

        every, every_tick, every_cpu = measure(True).T
        none, _, none_cpu = measure(False).T
        per_s = every.mean() + 4 * none.mean()
        per_s_cpu = every_cpu.mean() + 4 * none_cpu.mean()
        print(
            f"| {n} | {every.mean():.1f} / {np.percentile(every, 95):.1f} "
            f"(tick {every_tick.mean():.1f}; CPU {every_cpu.mean():.1f}) | "
            f"{none.mean():.2f} / {np.percentile(none, 95):.2f} (CPU {none_cpu.mean():.2f}) | "
            f"{per_s:.1f} (CPU {per_s_cpu:.1f}) |",
            flush=True,
        )
        grid.close()
        grid.deleteLater()
        app.processEvents()


if __name__ == "__main__":
    main()
