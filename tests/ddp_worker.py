"""Run under torchrun by tests/test_ddp.py: pretrain on the same windows in every rank and write
a checksum of this rank's final weights so the test can check that the ranks agree.
"""

import hashlib
import sys
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from ecgaffect.model.pretrain import PretrainConfig, pretrain


def main() -> None:
    out = Path(sys.argv[1])
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    t = np.arange(2560) / 256.0
    w = np.stack(
        [np.sin(2 * np.pi * rng.uniform(1, 1.5) * t + rng.uniform(0, 6)) ** 21 for _ in range(16)]
    )
    w = ((w - w.mean(1, keepdims=True)) / w.std(1, keepdims=True)).astype(np.float32)
    cfg = PretrainConfig(epochs=2, batch_size=4, val_fraction=0.25, device="cpu")
    result = pretrain(w, cfg, out / "run", progress=False)
    h = hashlib.sha256()
    for k, v in sorted(result.network.state_dict().items()):
        h.update(k.encode())
        h.update(v.numpy().tobytes())
    rank = dist.get_rank()
    (out / f"rank{rank}.sha").write_text(h.hexdigest())
    (out / f"rank{rank}.seen").write_text(str(result.history[-1]["train_acc/original"]))
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
