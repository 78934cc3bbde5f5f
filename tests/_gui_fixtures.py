"""Generated inputs for the GUI tests, benchmark and screenshot: a demo model and a recording.

``make_demo_model`` exports a small EmotionNet with random weights (arousal, valence and a
3-class affect task, ``demo=True``); ``make_demo_recording`` writes a synthetic 130 Hz ECG
as an XDF file with our recorder, with a few seconds of "electrode off" (flat line) so
poor-quality windows show, and two markers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from _export_fixtures import make_card
from ecgaffect.datasets.synthetic import make_synthetic_sessions
from ecgaffect.model.export import export_model
from ecgaffect.model.networks import EmotionNet, Encoder
from ecgaffect.stream.recorder import XdfRecorder
from ecgaffect.stream.sources.base import EcgChunk, Marker

TASKS = {
    "arousal": ["low", "high"],
    "valence": ["low", "high"],
    "affect": ["baseline", "stress", "amusement"],
}
PREPROCESSING = {"fs_hz": 256.0, "highpass_hz": 0.8, "window_s": 10.0}


def make_demo_model(path: Path, seed: int = 0, weight_scale: float = 1.0) -> Path:
    """Export a random-weight demo model (an ecgaffect model file) to ``path``."""
    torch.manual_seed(seed)
    net = EmotionNet(Encoder(), {t: len(c) for t, c in TASKS.items()}, variant="amigos").eval()
    with torch.no_grad():  # larger random weights so the demo output moves with the input
        for name, param in net.named_parameters():
            if "head" in name and param.ndim == 2:
                param.mul_(weight_scale)
    card = make_card(
        name="gui-demo-model",
        tasks=TASKS,
        preprocessing=PREPROCESSING,
        training_data={"dataset": "none (random weights)", "subjects": 0},
        notes="random weights, for the GUI tests and screenshot",
    )
    return export_model(net, card, path)


def make_demo_recording(
    path: Path,
    duration_s: float = 120.0,
    fs_hz: float = 130.0,
    *,
    flat_at_s: float | None = 90.0,
    flat_s: float = 4.0,
    seed: int = 3,
) -> Path:
    """Write a synthetic ECG recording (XDF, µV) with an optional flat stretch and 2 markers."""
    session = make_synthetic_sessions(1, duration_s=duration_s, fs_hz=fs_hz, seed=seed)[0]
    ecg = np.asarray(session.ecg_uv(), dtype=np.float64).copy()
    if flat_at_s is not None:
        lo = int(flat_at_s * fs_hz)
        ecg[lo : lo + int(flat_s * fs_hz)] = ecg[lo]
    t0 = 1000.0
    ts = t0 + np.arange(ecg.size) / fs_hz
    with XdfRecorder(path, ecg_fs_hz=fs_hz, subject="demo") as rec:
        for lo in range(0, ecg.size, 73):
            hi = min(lo + 73, ecg.size)
            rec.on_chunk(EcgChunk(ecg[lo:hi].copy(), ts[lo:hi].copy(), lo))
        rec.on_marker(Marker(t0 + 12.0, "task start"))
        rec.on_marker(Marker(t0 + min(30.0, duration_s - 1), "task end"))
    return path
