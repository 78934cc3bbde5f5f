"""What both training stages share: devices, seeds, run directories, checkpoints, DDP.

Checkpoints are plain dicts of tensors and JSON-able values written atomically (temp file +
rename) and read with ``torch.load(..., weights_only=True)``, so resuming never unpickles
arbitrary objects. Randomness is derived from ``(seed, epoch, rank)`` at the start of every
epoch instead of being carried in RNG state, so a resumed run continues exactly as an
uninterrupted one would.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import platform
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from ecgaffect import __version__
from ecgaffect.signal import WINDOW_N

log = logging.getLogger(__name__)

__all__ = [
    "DistInfo",
    "RunDir",
    "array_fingerprint",
    "as_windows",
    "check_resume_digest",
    "config_digest",
    "state_fingerprint",
    "stage_digest",
    "environment_info",
    "init_distributed",
    "json_default",
    "load_checkpoint",
    "save_checkpoint",
    "select_device",
    "seed_torch",
]


def select_device(spec: str = "auto") -> torch.device:
    """``"auto"`` picks CUDA when available, else CPU; ``"cpu"``/``"cuda"``/``"cuda:1"``."""
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(spec)
    except RuntimeError:
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda[:N]', got {spec!r}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {spec!r} requested but no CUDA GPU is available")
    return device


def as_windows(x: np.ndarray, what: str = "windows", *, allow_empty: bool = True) -> np.ndarray:
    """``x`` as ``[n, WINDOW_N]`` (a ``[n, 1, WINDOW_N]`` channel axis is dropped, no copy).

    ValueError naming ``what`` for another shape, or for no windows unless ``allow_empty``.
    """
    if x.ndim == 3 and x.shape[1] == 1:
        x = x[:, 0]
    if x.ndim != 2 or x.shape[1] != WINDOW_N:
        raise ValueError(
            f"{what} must be [n, {WINDOW_N}] (10 s at 256 Hz), got shape {tuple(x.shape)}"
        )
    if not allow_empty and x.shape[0] == 0:
        raise ValueError(f"{what} must hold at least one window, got 0")
    return x


def seed_torch(*parts: int) -> None:
    """Seed torch's global generator (dropout) from a tuple such as (seed, epoch, rank)."""
    digest = hashlib.sha256(repr(parts).encode()).digest()
    torch.manual_seed(int.from_bytes(digest[:8], "little") & ((1 << 63) - 1))


def config_digest(config: Mapping[str, Any]) -> str:
    blob = json.dumps(config, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


#: Arrays larger than this are fingerprinted from an evenly strided sample of rows.
FINGERPRINT_FULL_BYTES = 200 * 1024 * 1024


def array_fingerprint(*arrays: np.ndarray | None) -> str:
    """SHA-256 (16 hex digits) over the shapes, dtypes and bytes of ``arrays``.

    An array over :data:`FINGERPRINT_FULL_BYTES` (200 MB) is hashed from an evenly strided
    sample of rows that stays under that size (plus its shape), so a large memory-mapped window
    set is not read in full; two such arrays differing only in rows outside the sample get
    the same fingerprint. ``None`` entries are hashed as absent.
    """
    h = hashlib.sha256()
    for a in arrays:
        if a is None:
            h.update(b"none;")
            continue
        a = np.asarray(a)
        h.update(f"{a.dtype.str}{a.shape};".encode())
        if a.nbytes > FINGERPRINT_FULL_BYTES and a.ndim >= 1 and a.shape[0] > 1:
            row_bytes = max(a.nbytes // a.shape[0], 1)
            stride = -(-a.shape[0] * row_bytes // FINGERPRINT_FULL_BYTES)
            log.info(
                "fingerprinting a %.0f MB array from every %d-th row",
                a.nbytes / 1e6,
                stride,
            )
            a = a[::stride]
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


def state_fingerprint(module: torch.nn.Module | None) -> str | None:
    """SHA-256 (16 hex digits) of a module's state_dict names, shapes and bytes; None → None."""
    if module is None:
        return None
    h = hashlib.sha256()
    for name, t in sorted(module.state_dict().items()):
        t = t.detach().cpu().contiguous()
        h.update(f"{name}{t.dtype}{tuple(t.shape)};".encode())
        h.update(t.numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()[:16]


def stage_digest(
    config: Mapping[str, Any], data_fp: str, encoder_fp: str | None = None
) -> dict[str, str | None]:
    """What a checkpoint must match to be resumed: configuration, data and starting encoder.

    ``config`` should leave out what may change between a run and its continuation
    (``epochs``, ``device``). Stored in the checkpoint; see :func:`check_resume_digest`.
    """
    return {"config": config_digest(config), "data": data_fp, "encoder": encoder_fp}


_DIGEST_WHAT = {
    "config": "configuration",
    "data": "training data",
    "encoder": "starting encoder",
}


def check_resume_digest(
    stored: Any, digest: Mapping[str, str | None], path: Path, stage: str
) -> None:
    """Raise ValueError naming what differs when a checkpoint was made for another run."""
    if not isinstance(stored, Mapping):
        raise ValueError(
            f"{path} was written by an older version without data/encoder fingerprints; use a "
            "new output directory or pass resume=False (--no-resume) to start over"
        )
    diff = [_DIGEST_WHAT[k] for k in digest if stored.get(k) != digest[k]]
    if diff:
        raise ValueError(
            f"{path} belongs to a different {stage} run (different {', '.join(diff)}); use a "
            "new output directory or pass resume=False (--no-resume) to start over"
        )


def environment_info() -> dict[str, str]:
    """Versions that affect results; stored in every run directory."""
    return {
        "ecgaffect": __version__,
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
        "cuda": torch.version.cuda or "none",
        "threads": str(torch.get_num_threads()),
    }


def save_checkpoint(path: Path, state: Mapping[str, Any]) -> None:
    """Write ``state`` atomically: a killed process leaves the previous checkpoint intact."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        torch.save(dict(state), tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (``weights_only=True``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # corrupt zip, foreign pickle, truncated file
        raise ValueError(
            f"{path} is not a readable ecgaffect checkpoint ({type(exc).__name__}: {exc})"
        ) from exc
    if not isinstance(state, dict):
        raise ValueError(f"{path} holds a {type(state).__name__}, not an ecgaffect checkpoint")
    return state


class RunDir:
    """A training run's folder: ``config.json``, ``metrics.jsonl``, checkpoints, weights."""

    def __init__(self, path: str | Path, *, write: bool = True) -> None:
        self.path = Path(path)
        self.write = write
        if write:
            self.path.mkdir(parents=True, exist_ok=True)

    def file(self, name: str) -> Path:
        return self.path / name

    def write_json(self, name: str, obj: Any) -> Path:
        target = self.file(name)
        if self.write:
            tmp = target.with_suffix(target.suffix + ".tmp")
            tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=json_default))
            os.replace(tmp, target)
        return target

    def read_json(self, name: str) -> Any:
        target = self.file(name)
        if not target.is_file():
            raise FileNotFoundError(f"{target} does not exist (is {self.path} a run directory?)")
        return json.loads(target.read_text())

    def append_metrics(self, record: Mapping[str, Any]) -> None:
        if self.write:
            with self.file("metrics.jsonl").open("a") as fh:
                fh.write(json.dumps(dict(record), sort_keys=True, default=json_default) + "\n")

    def truncate_metrics(self, last_epoch: int) -> None:
        """Drop metric lines after ``last_epoch`` (a resumed run rewrites them)."""
        target = self.file("metrics.jsonl")
        if not (self.write and target.is_file()):
            return
        keep = [
            line
            for line in target.read_text().splitlines()
            if line.strip() and json.loads(line).get("epoch", 0) <= last_epoch
        ]
        target.write_text("".join(line + "\n" for line in keep))


def json_default(obj: Any) -> Any:
    """``json.dumps(default=...)`` for numpy scalars/arrays, dataclasses and paths."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot store {type(obj).__name__} in JSON")


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands in a ``torchrun`` job (world_size 1 without torchrun)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def process_group_backend(use_cuda: bool) -> str:
    """The ``init_process_group`` backend: gloo alone on CPU, gloo for CPU + NCCL for CUDA.

    NCCL alone has no CPU backend, and training all-reduces CPU tensors as well.
    """
    return "cpu:gloo,cuda:nccl" if use_cuda else "gloo"


def init_distributed(device_spec: str = "auto") -> tuple[DistInfo, torch.device]:
    """Join the ``torchrun`` process group when launched by it; else a single process.

    gloo on CPU; on GPU NCCL for CUDA tensors plus gloo for the CPU tensors that are
    all-reduced too (epoch statistics), one GPU per local rank.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo(), select_device(device_spec)
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = device_spec != "cpu" and torch.cuda.is_available()
    if use_cuda:
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
    if not dist.is_initialized():
        dist.init_process_group(backend=process_group_backend(use_cuda))
    info = DistInfo(rank=rank, world_size=world, local_rank=local_rank)
    log.info("distributed training: rank %d of %d on %s", rank, world, device)
    return info, device
