"""Frame rate and CPU load of the GUI at real time: 130 Hz input, 1 s hop.

Replays a generated 130 Hz recording at 1x (the Polar H10's rate and 73-sample frames) into
the main window (offscreen Qt) with a random-weight demo model, for ``--duration`` seconds,
and prints:

- frames per second of the redraw timer (target 30) and the mean, 5th and 95th percentile
  frame interval;
- CPU of the Qt (drawing) thread in % of one core (target < 25 %), via psutil's per-thread
  times;
- CPU of the whole process (drawing + pipeline I/O + preprocessing + inference), % of a core.

The calibration period is shortened to 5 s (``--calibration``) so scores arrive early in
the run. Run from the repository root:

    QT_QPA_PLATFORM=offscreen PYTHONPATH=src python benchmarks/bench_gui.py --duration 30
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=30.0, help="measured seconds")
    parser.add_argument(
        "--warmup", type=float, default=5.0, help="seconds of scoring before measuring"
    )
    parser.add_argument(
        "--start-timeout", type=float, default=90.0, help="max seconds until scoring starts"
    )
    parser.add_argument("--hop", type=float, default=1.0)
    parser.add_argument("--calibration", type=float, default=5.0)
    parser.add_argument("--redraw-hz", type=float, default=30.0)
    parser.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="N",
        help="profile the Qt thread during the measurement; print the N top functions",
    )
    args = parser.parse_args()

    import numpy as np
    import psutil
    import torch

    torch.set_num_threads(1)
    from _gui_fixtures import make_demo_model, make_demo_recording
    from ecgaffect.gui.app import MainWindow
    from ecgaffect.gui.settings import GuiSettings
    from ecgaffect.gui.widgets import QtWidgets
    from ecgaffect.signal import PreprocessConfig
    from ecgaffect.stream.pipeline import Pipeline

    def factory(source, scorer, *, hop_s, sinks):
        cfg = PreprocessConfig(normalization="calibrated", calibration_s=args.calibration)
        return Pipeline(source, scorer, hop_s=hop_s, sinks=sinks, config=cfg)

    tmp = Path(tempfile.mkdtemp(prefix="bench_gui_"))
    model = make_demo_model(tmp / "model.safetensors", weight_scale=20.0)
    total_s = args.warmup + args.duration + args.calibration + 60.0
    rec = make_demo_recording(tmp / "rec.xdf", duration_s=total_s, flat_at_s=None)

    os.environ.setdefault("ECGAFFECT_CONFIG_DIR", str(tmp / "config"))
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(["bench"])
    app.setApplicationName("ecgaffect-bench")
    win = MainWindow(
        GuiSettings(hop_s=args.hop), redraw_hz=args.redraw_hz, pipeline_factory=factory
    )
    win.show()
    win.load_model(model)
    win.start_replay(rec, 1.0)

    proc = psutil.Process()
    main_tid = threading.main_thread().native_id

    def thread_cpu() -> tuple[float, float]:
        main = sum(t.user_time + t.system_time for t in proc.threads() if t.id == main_tid)
        return main, sum(proc.cpu_times()[:2])

    def spin(seconds: float) -> None:
        # a local event loop: QApplication.quit() would close the window (Qt 6 closes all
        # top-level windows on quit), i.e. shut the pipeline down after the first spin
        from ecgaffect.gui.widgets import QtCore

        loop = QtCore.QEventLoop()
        QtCore.QTimer.singleShot(int(seconds * 1000), loop.quit)
        loop.exec()

    # wait for the model, the recording and the calibration (slow on a loaded machine),
    # then warm up for --warmup seconds of scoring
    from ecgaffect.stream.pipeline import PipelineState

    deadline = time.monotonic() + args.start_timeout
    while win.pipeline is None or win.pipeline.state is not PipelineState.RUNNING:
        if time.monotonic() > deadline or win.last_error:
            raise SystemExit(
                f"the replay was not scoring after {args.start_timeout:g} s: {win.last_error}"
            )
        spin(0.25)
    spin(args.warmup)
    f0, s0 = win.frames, win.timeline.n_scores
    c_main0, c_all0 = thread_cpu()
    win.frame_intervals_s.clear()
    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()  # the Qt thread only: the timers run on it
        profiler.enable()
    t0 = time.monotonic()
    spin(args.duration)
    elapsed = time.monotonic() - t0
    if profiler is not None:
        import pstats

        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(args.profile)
    c_main1, c_all1 = thread_cpu()
    load_1min = os.getloadavg()[0]
    frames = win.frames - f0
    intervals = np.asarray(win.frame_intervals_s)
    scores = win.timeline.n_scores - s0
    if win.pipeline is None:
        raise SystemExit(f"the replay stopped during the measurement: {win.last_error}")
    counters = win.pipeline.counters
    win.shutdown()
    win.close()
    if intervals.size < 2:
        raise SystemExit(f"only {intervals.size} frames were drawn in {elapsed:.1f} s")

    print(f"GUI at real time: 130 Hz input, {args.hop:g} s hop, {elapsed:.1f} s measured")
    print(f"  frames/s              {frames / elapsed:6.1f}   (target {args.redraw_hz:g})")
    p5, p95 = 1000 * np.percentile(intervals, [5, 95])
    print(
        f"  frame interval        mean {1000 * intervals.mean():5.1f} ms, p5 {p5:5.1f} ms,"
        f" p95 {p95:5.1f} ms, max {1000 * intervals.max():5.1f} ms"
    )
    print(
        f"  Qt thread CPU         {100 * (c_main1 - c_main0) / elapsed:6.1f} % of a core"
        "   (target < 25 %)"
    )
    print(
        f"  whole process CPU     {100 * (c_all1 - c_all0) / elapsed:6.1f} % of a core"
        "   (incl. pipeline + inference)"
    )
    print(f"  scores drawn          {scores:6d}   (windows dropped: {counters.windows_dropped})")
    print(
        f"  cores on this machine {psutil.cpu_count()}; load avg (1 min) {load_1min:.1f}"
        " (other processes share the cores: figures are upper bounds under that load)"
    )


if __name__ == "__main__":
    main()
