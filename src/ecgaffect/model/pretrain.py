"""Stage 1: self-supervised pretraining of the signal-transformation recognition network.

Every epoch re-draws the six transformations of every training window from a generator seeded
by ``(seed, epoch, rank)``; a batch holds ``batch_size`` original windows and their six
transformed versions (7 × batch_size signals), shuffled. Loss: the paper's weighted sum of the
seven binary cross-entropies plus ``1e-4 · ½‖W‖²`` on weights; Adam with the learning rate
multiplied by 0.9 every 10,000 steps (staircase).

Run under ``torchrun --nproc-per-node N -m ecgaffect pretrain ...`` for data-parallel training
(DistributedDataParallel; gloo on CPU, NCCL on GPU): each rank takes an equal share of every
epoch's shuffled windows and ``batch_size / N`` originals per step, so the global batch stays
``batch_size``. Only rank 0 writes files and shows progress.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from tqdm.auto import tqdm

from ecgaffect.model.networks import TRANSFORM_NAMES, Encoder, PretextNet, l2_penalty
from ecgaffect.model.training import (
    RunDir,
    array_fingerprint,
    as_windows,
    check_resume_digest,
    environment_info,
    init_distributed,
    load_checkpoint,
    save_checkpoint,
    seed_torch,
    stage_digest,
)
from ecgaffect.model.transforms import TransformParams, make_pretext_batch

log = logging.getLogger(__name__)

__all__ = [
    "PAPER_LOSS_WEIGHTS",
    "PretrainConfig",
    "PretrainResult",
    "evaluate_pretext",
    "load_encoder",
    "pretrain",
]

#: original, noise, scaling, negation, flip, permutation, time-warp (method reference).
PAPER_LOSS_WEIGHTS = (0.195, 0.195, 0.195, 0.0125, 0.0125, 0.195, 0.195)
PRECISIONS = ("fp32", "bf16")


def autocast(device: torch.device, precision: str):
    """The forward pass's autocast context for ``precision`` (a no-op for ``"fp32"``)."""
    return torch.autocast(
        device_type=device.type, dtype=torch.bfloat16, enabled=precision == "bf16"
    )


@dataclass(frozen=True)
class PretrainConfig:
    epochs: int = 100
    batch_size: int = 128
    lr: float = 1e-3
    lr_decay: float = 0.9
    lr_decay_steps: int = 10_000
    l2: float = 1e-4
    loss_weights: tuple[float, ...] = PAPER_LOSS_WEIGHTS
    transforms: TransformParams = field(default_factory=TransformParams)
    seed: int = 1
    val_fraction: float = 0.1
    device: str = "auto"
    #: ``"fp32"`` (the paper) or ``"bf16"``: CPU/GPU autocast of the forward pass to bfloat16
    #: (weights, loss and optimiser stay float32). On an AVX512-BF16 CPU it trains ~1.7x faster;
    #: results differ from fp32 in the last bits, so it is part of the resume digest.
    precision: str = "fp32"
    #: Original windows drawn (without replacement) per epoch; ``None`` = all training windows.
    #: Short epochs give checkpoints, validation and a learning curve every few CPU-minutes on
    #: a large corpus; every epoch draws a fresh subset.
    windows_per_epoch: int | None = None

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if len(self.loss_weights) != len(TRANSFORM_NAMES):
            raise ValueError(
                f"loss_weights needs {len(TRANSFORM_NAMES)} values, got {len(self.loss_weights)}"
            )
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in [0, 1), got {self.val_fraction}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.windows_per_epoch is not None and self.windows_per_epoch < 1:
            raise ValueError(
                f"windows_per_epoch must be >= 1 or None, got {self.windows_per_epoch}"
            )

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["loss_weights"] = list(self.loss_weights)
        return d

    def training_dict(self) -> dict[str, Any]:
        """The fields that must match for a checkpoint to be resumed (not epochs/device)."""
        d = self.to_dict()
        d.pop("epochs")
        d.pop("device")
        # options added later leave the digest of runs that do not use them unchanged
        if d["precision"] == "fp32":
            d.pop("precision")
        if d["windows_per_epoch"] is None:
            d.pop("windows_per_epoch")
        return d


@dataclass
class PretrainResult:
    encoder: Encoder
    network: PretextNet
    history: list[dict[str, Any]]
    run_dir: Path | None

    @property
    def final(self) -> dict[str, Any]:
        return self.history[-1] if self.history else {}


def split_train_val(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.random.default_rng([seed, 7_919]).permutation(n)
    n_val = int(round(n * val_fraction))
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def _pretext_stats(
    logits: torch.Tensor, kinds: torch.Tensor, n_heads: int
) -> dict[str, torch.Tensor]:
    """Counts for per-head binary accuracy, balanced accuracy and argmax recognition."""
    pred = logits > 0
    target = nn.functional.one_hot(kinds, n_heads).bool()
    correct = (pred == target).sum(dim=0)
    tp = (pred & target).sum(dim=0)
    tn = (~pred & ~target).sum(dim=0)
    pos = target.sum(dim=0)
    recog = (logits.argmax(dim=1) == kinds).sum()
    return {
        "correct": correct,
        "tp": tp,
        "tn": tn,
        "pos": pos,
        "n": torch.tensor(kinds.shape[0], device=logits.device),
        "recognised": recog,
    }


def _summarise(stats: dict[str, torch.Tensor], prefix: str) -> dict[str, Any]:
    n = stats["n"].item()
    out: dict[str, Any] = {}
    if n == 0:
        return out
    for i, name in enumerate(TRANSFORM_NAMES):
        pos = stats["pos"][i].item()
        neg = n - pos
        out[f"{prefix}acc/{name}"] = stats["correct"][i].item() / n
        if pos and neg:
            out[f"{prefix}balanced_acc/{name}"] = 0.5 * (
                stats["tp"][i].item() / pos + stats["tn"][i].item() / neg
            )
    accs = [out[f"{prefix}acc/{name}"] for name in TRANSFORM_NAMES]
    out[f"{prefix}acc/mean"] = float(np.mean(accs))
    out[f"{prefix}recognition_acc"] = stats["recognised"].item() / n
    return out


def _add_stats(total: dict[str, torch.Tensor] | None, new: dict[str, torch.Tensor]):
    """Sum the counts where they are (no device → CPU copy per batch)."""
    if total is None:
        return {k: v.detach().clone() for k, v in new.items()}
    for k, v in new.items():
        total[k] += v.detach()
    return total


def pretext_loss(
    logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor
) -> torch.Tensor:
    """Σ_i c_i · BCE-with-logits_i (each head's BCE averaged over the batch)."""
    per_head = nn.functional.binary_cross_entropy_with_logits(
        logits, targets, reduction="none"
    ).mean(dim=0)
    return (weights * per_head).sum()


@torch.inference_mode()
def evaluate_pretext(
    network: PretextNet,
    windows: np.ndarray,
    *,
    seed: int = 1,
    params: TransformParams | None = None,
    batch_size: int = 64,
    device: torch.device | str = "cpu",
) -> dict[str, Any]:
    """Pretext accuracy per transformation on held-out windows (fixed transformation draw)."""
    windows = as_windows(windows, "held-out windows", allow_empty=False)
    params = params or TransformParams()
    rng = np.random.default_rng([seed, 104_729])
    was_training = network.training
    network.eval()
    total = None
    for start in range(0, windows.shape[0], batch_size):
        x = np.asarray(windows[start : start + batch_size], dtype=np.float32)
        sig, _, kinds = make_pretext_batch(x, rng, params, shuffle=False)
        logits = network(torch.from_numpy(sig).unsqueeze(1).to(device))
        total = _add_stats(
            total, _pretext_stats(logits, torch.from_numpy(kinds).to(device), len(TRANSFORM_NAMES))
        )
    network.train(was_training)
    assert total is not None
    return _summarise(total, "")


def pretrain(
    windows: np.ndarray,
    config: PretrainConfig = PretrainConfig(),
    out_dir: str | Path | None = None,
    *,
    val_windows: np.ndarray | None = None,
    resume: bool = True,
    progress: bool = True,
    data_description: str = "",
    data_info: Mapping[str, Any] | None = None,
) -> PretrainResult:
    """Train the signal-transformation recognition network on unlabelled windows.

    Args:
        windows: ``[n, 2560]`` preprocessed windows (a memory-mapped array is fine).
        config: hyper-parameters; defaults are the paper's.
        out_dir: run directory for ``config.json``, ``metrics.jsonl``, ``checkpoint.pt`` and
            ``encoder.pt``; ``None`` keeps everything in memory.
        val_windows: held-out windows; by default ``config.val_fraction`` of ``windows``.
        resume: continue from ``out_dir/checkpoint.pt`` when it exists and was made with the
            same configuration.
        progress: show progress bars.
        data_description: what the windows are, stored with the encoder.
        data_info: a JSON-able record of the training data (dataset, label scheme, loader
            options, window set fingerprint; see
            :func:`ecgaffect.datasets.selection.data_info`), written to ``config.json``.
    """
    windows = as_windows(windows, "pretraining windows", allow_empty=False)
    dist_info, device = init_distributed(config.device)
    if val_windows is None and config.val_fraction > 0:
        train_idx, val_idx = split_train_val(windows.shape[0], config.val_fraction, config.seed)
        if len(train_idx) == 0:
            raise ValueError(
                f"{windows.shape[0]} windows leave none for training with "
                f"val_fraction={config.val_fraction}"
            )
        val = windows[val_idx] if len(val_idx) else None
    else:
        train_idx = np.arange(windows.shape[0])
        val = (
            as_windows(val_windows, "val_windows", allow_empty=False)
            if val_windows is not None
            else None
        )
    if config.batch_size % dist_info.world_size:
        raise ValueError(
            f"batch_size {config.batch_size} must be divisible by the number of processes "
            f"({dist_info.world_size})"
        )
    local_batch = config.batch_size // dist_info.world_size

    run = RunDir(out_dir, write=dist_info.is_main) if out_dir is not None else None
    seed_torch(config.seed, -1)  # initial weights come from the seed too: repeatable runs
    network = PretextNet().to(device)
    optimizer = torch.optim.Adam(network.parameters(), lr=config.lr)
    scheduler = torch.optim.lr_scheduler.StepLR(
        optimizer, step_size=config.lr_decay_steps, gamma=config.lr_decay
    )
    weights = torch.tensor(config.loss_weights, dtype=torch.float32, device=device)
    history: list[dict[str, Any]] = []
    start_epoch = 1
    step = 0
    ckpt_path = run.file("checkpoint.pt") if run is not None else None
    digest = (
        stage_digest(config.training_dict(), array_fingerprint(windows, val_windows))
        if ckpt_path is not None
        else None
    )

    if resume and ckpt_path is not None and ckpt_path.is_file():
        state = load_checkpoint(ckpt_path, map_location=device)
        if state.get("stage") != "pretrain":
            raise ValueError(f"{ckpt_path} is not a pretraining checkpoint")
        check_resume_digest(state.get("digest"), digest, ckpt_path, "pretraining")
        network.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start_epoch = int(state["epoch"]) + 1
        step = int(state["step"])
        history = list(state.get("history", []))
        if run is not None:
            run.truncate_metrics(start_epoch - 1)
        log.info("resuming pretraining from %s at epoch %d", ckpt_path, start_epoch)
    if run is not None and start_epoch == 1:
        run.write_json(
            "config.json",
            {
                "stage": "pretrain",
                "config": config.to_dict(),
                "n_windows": int(windows.shape[0]),
                "n_train": int(len(train_idx)),
                "n_val": int(0 if val is None else val.shape[0]),
                "world_size": dist_info.world_size,
                "device": str(device),
                "data": data_description,
                "data_info": dict(data_info or {}),
                "environment": environment_info(),
            },
        )

    model: nn.Module = network
    if dist_info.enabled:
        model = nn.parallel.DistributedDataParallel(
            network, device_ids=[device.index] if device.type == "cuda" else None
        )

    show = progress and dist_info.is_main
    epochs = tqdm(
        range(start_epoch, config.epochs + 1),
        desc="pretrain",
        unit="epoch",
        disable=not show,
        initial=start_epoch - 1,
        total=config.epochs,
    )
    for epoch in epochs:
        t0 = time.perf_counter()
        model.train()
        seed_torch(config.seed, epoch, dist_info.rank)
        order = np.random.default_rng([config.seed, epoch]).permutation(train_idx)
        if config.windows_per_epoch is not None:
            order = order[: config.windows_per_epoch]
        per_rank = len(order) // dist_info.world_size if dist_info.enabled else len(order)
        mine = order[dist_info.rank * per_rank : (dist_info.rank + 1) * per_rank]
        rng = np.random.default_rng([config.seed, epoch, dist_info.rank, 1])
        n_batches = math.ceil(len(mine) / local_batch)
        total_stats = None
        loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        bar = tqdm(total=n_batches, desc=f"epoch {epoch}", leave=False, disable=not show)
        for b in range(n_batches):
            idx = np.sort(mine[b * local_batch : (b + 1) * local_batch])
            x = np.asarray(windows[idx], dtype=np.float32)
            sig, tgt, kinds = make_pretext_batch(x, rng, config.transforms)
            sig_t = torch.from_numpy(sig).unsqueeze(1).to(device, non_blocking=True)
            tgt_t = torch.from_numpy(tgt).to(device)
            with autocast(device, config.precision):
                logits = model(sig_t)
            logits = logits.float()
            loss = pretext_loss(logits, tgt_t, weights) + l2_penalty(network, config.l2)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            step += 1
            loss_sum += loss.detach().double() * len(idx)
            total_stats = _add_stats(
                total_stats,
                _pretext_stats(logits.detach(), torch.from_numpy(kinds).to(device), 7),
            )
            bar.update(1)
            if show:  # .item() waits for the device: only for a visible bar
                bar.set_postfix(loss=f"{loss.item():.4f}")
        bar.close()
        if total_stats is None:
            raise ValueError("no training windows reached this process")
        n_seen = torch.tensor(float(len(mine)), dtype=torch.float64, device=device)
        if dist_info.enabled:
            for v in (*total_stats.values(), loss_sum, n_seen):
                dist.all_reduce(v)
        # one device → CPU transfer per epoch
        total_stats = {k: v.cpu() for k, v in total_stats.items()}
        loss_sum, n_seen = loss_sum.cpu(), n_seen.cpu()
        record: dict[str, Any] = {
            "epoch": epoch,
            "step": step,
            "lr": scheduler.get_last_lr()[0],
            "train_loss": loss_sum.item() / max(n_seen.item(), 1.0),
            "seconds": time.perf_counter() - t0,
            "windows_per_s": n_seen.item() / (time.perf_counter() - t0),
        }
        record.update(_summarise(total_stats, "train_"))
        if val is not None and dist_info.is_main:
            record.update(
                {
                    f"val_{k}": v
                    for k, v in evaluate_pretext(
                        network, val, seed=config.seed, params=config.transforms, device=device
                    ).items()
                }
            )
        history.append(record)
        if dist_info.is_main:
            epochs.set_postfix(
                loss=f"{record['train_loss']:.3f}",
                val_recog=f"{record.get('val_recognition_acc', float('nan')):.3f}",
            )
            log.info(
                "epoch %d: loss %.4f, train recognition %.3f, val recognition %s, %.1f windows/s",
                epoch,
                record["train_loss"],
                record["train_recognition_acc"],
                f"{record['val_recognition_acc']:.3f}" if "val_recognition_acc" in record else "-",
                record["windows_per_s"],
            )
        if run is not None and dist_info.is_main:
            run.append_metrics(record)
            save_checkpoint(
                run.file("checkpoint.pt"),
                {
                    "stage": "pretrain",
                    "epoch": epoch,
                    "step": step,
                    "model": network.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "digest": digest,
                    "history": history,
                },
            )
    epochs.close()
    if run is not None and dist_info.is_main:
        save_encoder(network.encoder, run.file("encoder.pt"), config, data_description, history)
    if dist_info.enabled:
        dist.barrier()
    network.eval()
    return PretrainResult(network.encoder, network, history, run.path if run else None)


def save_encoder(
    encoder: Encoder,
    path: Path,
    config: PretrainConfig,
    data_description: str,
    history: list[dict[str, Any]],
) -> None:
    final = history[-1] if history else {}
    save_checkpoint(
        path,
        {
            "kind": "ecgaffect-encoder",
            "encoder": {k: v.detach().cpu() for k, v in encoder.state_dict().items()},
            "meta": {
                "config": config.to_dict(),
                "data": data_description,
                "epochs_trained": int(final.get("epoch", 0)),
                "pretext_metrics": {
                    k: float(v) for k, v in final.items() if isinstance(v, int | float)
                },
            },
        },
    )


def load_encoder(path: str | Path) -> tuple[Encoder, dict[str, Any]]:
    """Load ``encoder.pt`` (or a pretraining ``checkpoint.pt``) into a fresh :class:`Encoder`.

    A run directory may be given instead of the file.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "encoder.pt"
    state = load_checkpoint(path)
    encoder = Encoder()
    if state.get("kind") == "ecgaffect-encoder":
        encoder.load_state_dict(state["encoder"])
        return encoder, dict(state.get("meta", {}))
    if state.get("stage") == "pretrain":
        prefix = "encoder."
        encoder.load_state_dict(
            {k[len(prefix) :]: v for k, v in state["model"].items() if k.startswith(prefix)}
        )
        return encoder, {"epochs_trained": int(state["epoch"]), "from": "checkpoint"}
    raise ValueError(
        f"{path} is neither an encoder file nor a pretraining checkpoint "
        f"(keys: {sorted(state)[:8]})"
    )
