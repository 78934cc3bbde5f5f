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


def test_gpu_process_group_also_has_a_cpu_backend(monkeypatch):
    # epoch statistics are CPU tensors all-reduced next to the CUDA gradients: NCCL alone
    # fails with "No backend type associated with device type cpu" (mocked CUDA, no GPU run)
    import torch
    import torch.distributed as dist

    from ecgaffect.model import training

    seen = {}
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "set_device", lambda i: None)
    monkeypatch.setattr(dist, "is_initialized", lambda: False)
    monkeypatch.setattr(dist, "init_process_group", lambda backend: seen.update(b=backend))
    info, device = training.init_distributed("auto")
    assert device == torch.device("cuda", 1)
    assert info.rank == 1
    backends = dict(part.split(":") for part in seen["b"].split(","))
    assert backends == {"cpu": "gloo", "cuda": "nccl"}
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    training.init_distributed("auto")
    assert seen["b"] == "gloo"
