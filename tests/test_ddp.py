"""Data-parallel pretraining with torchrun: 2 CPU processes, gloo backend."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

WORKER = Path(__file__).with_name("ddp_worker.py")


def test_two_cpu_processes_train_in_lockstep(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(sys.path)}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
        str(WORKER),
        str(tmp_path),
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    # DDP keeps every rank's weights identical after each step.
    sha0 = (tmp_path / "rank0.sha").read_text()
    assert sha0 == (tmp_path / "rank1.sha").read_text()
    run = tmp_path / "run"
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["world_size"] == 2
    assert cfg["n_train"] == 12
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 2  # written by rank 0 only, once per epoch
    rec = json.loads(lines[-1])
    # 12 training windows: 6 per rank, 2 per rank per step (global batch 4) -> 3 steps per
    # epoch, 6 after two epochs.
    assert rec["step"] == 6
    assert (run / "encoder.pt").is_file()


def test_batch_must_divide_over_processes(tmp_path, monkeypatch):
    import numpy as np
    import torch

    from ecgaffect.model import pretrain as pt
    from ecgaffect.model.training import DistInfo

    monkeypatch.setattr(
        pt,
        "init_distributed",
        lambda spec: (DistInfo(rank=0, world_size=2), torch.device("cpu")),
    )
    with pytest.raises(ValueError, match="must be divisible by the number of processes"):
        pt.pretrain(
            np.zeros((8, 2560), np.float32),
            pt.PretrainConfig(batch_size=3),
            tmp_path,
            progress=False,
        )
