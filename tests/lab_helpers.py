"""Shared set-up of the multi-participant tests: LSL ECG outlets pushed in lockstep, and a
pipeline factory for ``run_lab`` with the fake preprocessor.

Import after :mod:`lsl_helpers` (machine-scope LSL).
"""

from __future__ import annotations

import functools
import threading
import time

import numpy as np
import pylsl

from ecg_fixtures import synthetic_ecg_uv
from ecgaffect.stream.pipeline import Pipeline
from stream_fakes import FakePreprocessor

FS = 256.0


class Straps:
    """LSL ECG outlets pushed in lockstep (``fs_hz``, real time) from one thread; outlets can
    be added and removed while it runs.
    """

    def __init__(self, stream_type: str, *, fs_hz: float = FS, seed: int = 3) -> None:
        self.type = stream_type
        self.fs_hz = fs_hz
        self.outlets: dict[str, pylsl.StreamOutlet] = {}
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.signal = synthetic_ecg_uv(60.0, fs_hz, seed=seed)
        self.thread = threading.Thread(target=self._run, daemon=True)

    def add(self, name: str) -> str:
        """Open the outlet ``name`` (source id ``<name>-sid``, returned)."""
        sid = f"{name}-sid"
        info = pylsl.StreamInfo(name, self.type, 1, self.fs_hz, pylsl.cf_float32, sid)
        ch = info.desc().append_child("channels").append_child("channel")
        ch.append_child_value("label", "ECG")
        ch.append_child_value("unit", "microvolts")
        with self.lock:
            self.outlets[name] = pylsl.StreamOutlet(info, chunk_size=32)
        return sid

    def remove(self, name: str) -> None:
        with self.lock:
            self.outlets.pop(name)

    def _run(self) -> None:
        n = 0
        t0 = pylsl.local_clock()
        while not self.stop.is_set():
            due = int((pylsl.local_clock() - t0) * self.fs_hz)
            if due > n:
                idx = np.arange(n, due)
                x = self.signal[idx % self.signal.shape[0]].reshape(-1, 1).tolist()
                ts = (t0 + idx / self.fs_hz).tolist()
                with self.lock:
                    for outlet in self.outlets.values():
                        outlet.push_chunk(x, ts)
                n = due
            time.sleep(0.02)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()
        self.outlets.clear()


def fast_pipeline_factory(calibration_n: int = 0):
    """A ``run_lab`` pipeline factory: the fake preprocessor, "calibrated" after
    ``calibration_n`` samples, and room for 100 pending windows.
    """

    def make(source, scorer, *, hop_s, sinks):
        return Pipeline(
            source,
            scorer,
            hop_s=hop_s,
            sinks=sinks,
            preprocessor_factory=functools.partial(FakePreprocessor, calibration_n=calibration_n),
            max_pending=100,
        )

    return make


#: The factory without calibration.
fast_pipeline = fast_pipeline_factory()
