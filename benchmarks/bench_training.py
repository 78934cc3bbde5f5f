"""Pretext-training throughput and peak memory; encoder inference latency/throughput (eager).

For each batch size, a fresh subprocess runs a few pretraining steps of the paper's network on
random windows (7 signals per original window) and reports original windows per second and its
peak resident memory (``ru_maxrss``; on a GPU also ``torch.cuda.max_memory_allocated``). The
exported-model comparison (TorchScript, .pt2) lives in ``bench_inference.py``.

    PYTHONPATH=src python benchmarks/bench_training.py [--batches 32 128] [--steps 3]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def _train_steps(batch: int, steps: int, device: str, threads: int | None) -> dict:
    import numpy as np
    import torch

    from ecgaffect.model.networks import PretextNet, l2_penalty
    from ecgaffect.model.pretrain import PAPER_LOSS_WEIGHTS, pretext_loss
    from ecgaffect.model.training import select_device
    from ecgaffect.model.transforms import make_pretext_batch

    if threads:
        torch.set_num_threads(threads)
    dev = select_device(device)
    net = PretextNet().to(dev)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    w = torch.tensor(PAPER_LOSS_WEIGHTS, device=dev)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, 2560)).astype(np.float32)
    times, prep = [], []
    for i in range(steps + 1):  # the first step warms up and is not timed
        t0 = time.perf_counter()
        sig, tgt, _ = make_pretext_batch(x, rng)
        t1 = time.perf_counter()
        logits = net(torch.from_numpy(sig).unsqueeze(1).to(dev))
        loss = pretext_loss(logits, torch.from_numpy(tgt).to(dev), w) + l2_penalty(net, 1e-4)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        if i:
            times.append(time.perf_counter() - t0)
            prep.append(t1 - t0)
    out = {
        "batch": batch,
        "device": str(dev),
        "threads": torch.get_num_threads(),
        "windows_per_s": batch / min(times),
        "transform_share": float(np.median(prep) / np.median(times)),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    if dev.type == "cuda":
        out["peak_cuda_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return out


def _inference(threads: int | None) -> dict:
    import torch

    from ecgaffect.model.networks import Encoder

    if threads:
        torch.set_num_threads(threads)
    enc = Encoder().eval()
    res = {}
    with torch.inference_mode():
        for b in (1, 256):
            x = torch.randn(b, 1, 2560)
            enc(x)
            best = float("inf")
            for _ in range(5 if b == 1 else 2):
                t0 = time.perf_counter()
                enc(x)
                best = min(best, time.perf_counter() - t0)
            res[b] = best
    return {"latency_1_ms": res[1] * 1e3, "throughput_256_wps": 256 / res[256]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--batches", type=int, nargs="+", default=[32, 128])
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        kind, batch = args.worker.split(":")
        if kind == "train":
            print(json.dumps(_train_steps(int(batch), args.steps, args.device, args.threads)))
        else:
            print(json.dumps(_inference(args.threads)))
        return
    print("pretext training (paper network, 7 signals per original window)")
    print(
        f"{'batch':>6} {'device':>8} {'threads':>7} {'windows/s':>10} {'transforms':>10} "
        f"{'peak RSS MiB':>12}"
    )
    for b in args.batches:
        cmd = [
            sys.executable,
            __file__,
            "--worker",
            f"train:{b}",
            "--steps",
            str(args.steps),
            "--device",
            args.device,
        ]
        if args.threads:
            cmd += ["--threads", str(args.threads)]
        r = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
        extra = f"  peak CUDA {r['peak_cuda_mib']:.0f} MiB" if "peak_cuda_mib" in r else ""
        print(
            f"{r['batch']:>6} {r['device']:>8} {r['threads']:>7} {r['windows_per_s']:>10.1f} "
            f"{r['transform_share']:>9.1%} {r['peak_rss_mib']:>12.0f}{extra}"
        )
    cmd = [sys.executable, __file__, "--worker", "infer:0"]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    r = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
    print("encoder inference (eager; exported formats: bench_inference.py)")
    print(
        f"  1 window: {r['latency_1_ms']:.1f} ms   batch 256: {r['throughput_256_wps']:.0f} "
        "windows/s"
    )


if __name__ == "__main__":
    main()
