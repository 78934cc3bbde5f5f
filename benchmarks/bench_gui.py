"""Frame rate and CPU load of the GUI at real time: 130 Hz input, 1 s hop.

Replays a generated 130 Hz recording at 1x (the Polar H10's rate and 73-sample frames) into
the main window (offscreen Qt) with a random-weight demo model, for ``--duration`` seconds,
and prints:

- frames per second of the redraw timer (target 30) and the 95th percentile frame interval;
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
    parser.add_argument("--warmup", type=float, default=8.0, help="seconds before measuring")
    parser.add_argument("--hop", type=float, default=1.0)
    parser.add_argument("--calibration", type=float, default=5.0)
    parser.add_argument("--redraw-hz", type=float, default=30.0)
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
    model = make_demo_model(tmp / "model.pt", weight_scale=20.0)
    total_s = args.warmup + args.duration + 15.0
    rec = make_demo_recording(tmp / "rec.xdf", duration_s=total_s, flat_at_s=None)

    os.environ.setdefault("ECGAFFECT_CONFIG_DIR", str(tmp / "config"))
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(["bench"])
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
        from ecgaffect.gui.widgets import QtCore

        QtCore.QTimer.singleShot(int(seconds * 1000), app.quit)
        app.exec()

    spin(args.warmup)
    if win.pipeline is None:
        raise SystemExit(f"the replay did not start within the warm-up: {win.last_error}")
    f0, s0 = win.frames, win.timeline.n_scores
    c_main0, c_all0 = thread_cpu()
    win.frame_intervals_s.clear()
    t0 = time.monotonic()
    spin(args.duration)
    elapsed = time.monotonic() - t0
    c_main1, c_all1 = thread_cpu()
    frames = win.frames - f0
    intervals = np.asarray(win.frame_intervals_s)
    scores = win.timeline.n_scores - s0
    counters = win.pipeline.counters
    win.close()

    print(f"GUI at real time: 130 Hz input, {args.hop:g} s hop, {elapsed:.1f} s measured")
    print(f"  frames/s              {frames / elapsed:6.1f}   (target {args.redraw_hz:g})")
    print(f"  frame interval p95    {1000 * np.percentile(intervals, 95):6.1f} ms")
    print(f"  frame interval max    {1000 * intervals.max():6.1f} ms")
    print(
        f"  Qt thread CPU         {100 * (c_main1 - c_main0) / elapsed:6.1f} % of a core"
        "   (target < 25 %)"
    )
    print(
        f"  whole process CPU     {100 * (c_all1 - c_all0) / elapsed:6.1f} % of a core"
        "   (incl. pipeline + inference)"
    )
    print(f"  scores drawn          {scores:6d}   (windows dropped: {counters.windows_dropped})")
    print(f"  cores on this machine {psutil.cpu_count()}; load avg {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
