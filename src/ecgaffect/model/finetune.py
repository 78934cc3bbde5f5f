"""Stage 2: the emotion network on labelled windows, and the fully-supervised baseline.

Self-supervised model (``freeze_encoder=True``): the transferred encoder is frozen, so its
128-d embeddings are computed once and the dense heads train on them (mathematically the same
as running the frozen convolutions every step, and far faster). One head per task; each head
only sees windows labelled for its task.

Fully-supervised baseline (:func:`train_baseline`): the same architecture from random
initialisation trained end to end, one network per task, as in the paper.

Training follows the paper: Adam, lr 1e-3, batch 128, 200 epochs, no early stopping (the final
model is the one scored). Two classes: two sigmoid units with binary cross-entropy on one-hot
targets; three or more: softmax cross-entropy.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from ecgaffect.model.metrics import task_metrics
from ecgaffect.model.networks import (
    EmotionNet,
    Encoder,
    _init_glorot,
    class_probabilities,
    get_variant,
    l2_penalty,
)
from ecgaffect.model.training import (
    RunDir,
    array_fingerprint,
    as_windows,
    check_resume_digest,
    environment_info,
    load_checkpoint,
    save_checkpoint,
    seed_torch,
    select_device,
    stage_digest,
    state_fingerprint,
)
from ecgaffect.signal import PreprocessConfig

log = logging.getLogger(__name__)

__all__ = [
    "FinetuneConfig",
    "FinetuneResult",
    "LabelledData",
    "LabelledWindows",
    "embed",
    "finetune",
    "load_emotion_net",
    "predict",
    "predict_embeddings",
    "train_baseline",
]


@dataclass(frozen=True)
class LabelledWindows:
    """Windows ``[n, 2560]`` with per-task integer labels (``-1`` = not labelled).

    A :class:`ecgaffect.datasets.windows.WindowSet` can be passed wherever this is expected
    (it has the same ``x``, ``labels`` and ``classes`` attributes).
    """

    x: np.ndarray
    labels: Mapping[str, np.ndarray]
    classes: Mapping[str, Sequence[str]]


class LabelledData(Protocol):
    """What training reads of labelled windows: a :class:`LabelledWindows` or a WindowSet."""

    @property
    def x(self) -> np.ndarray:
        """``[n, 2560]`` windows."""
        ...

    @property
    def labels(self) -> Mapping[str, np.ndarray]:
        """Task -> int ``[n]`` class index, ``-1`` = not labelled."""
        ...

    @property
    def classes(self) -> Mapping[str, Sequence[str]]:
        """Task -> class names."""
        ...


@dataclass(frozen=True)
class FinetuneConfig:
    epochs: int = 200
    batch_size: int = 128
    lr: float = 1e-3
    variant: str = "swell"
    l2: float | None = None  # None: the variant's (1e-4 for DREAMER, else 0)
    seed: int = 1
    freeze_encoder: bool = True
    device: str = "auto"

    def __post_init__(self) -> None:
        get_variant(self.variant)  # validates the name
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")

    @property
    def l2_weight(self) -> float:
        return get_variant(self.variant).l2 if self.l2 is None else self.l2

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def training_dict(self) -> dict[str, Any]:
        """The fields that must match for a checkpoint to be resumed (not epochs/device)."""
        d = self.to_dict()
        d.pop("epochs")
        d.pop("device")
        return d


@dataclass
class FinetuneResult:
    model: EmotionNet
    tasks: dict[str, list[str]]
    history: list[dict[str, Any]]
    run_dir: Path | None

    @property
    def final(self) -> dict[str, Any]:
        return self.history[-1] if self.history else {}


@torch.inference_mode()
def embed(
    encoder: Encoder,
    x: np.ndarray,
    *,
    batch_size: int = 256,
    device: torch.device | str = "cpu",
    progress: bool = False,
) -> np.ndarray:
    """128-d embeddings of windows ``[n, 2560]`` through the (frozen) encoder."""
    x = as_windows(x)
    encoder = encoder.to(device).eval()
    out = np.empty((x.shape[0], 128), dtype=np.float32)
    for start in tqdm(
        range(0, x.shape[0], batch_size),
        desc="embedding",
        unit="batch",
        disable=not progress,
        leave=False,
    ):
        # np.array copies: x may be a read-only memmap (a cached WindowSet)
        xb = torch.from_numpy(np.array(x[start : start + batch_size], dtype=np.float32))
        out[start : start + xb.shape[0]] = encoder(xb.unsqueeze(1).to(device)).cpu().numpy()
    return out


def _task_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    if logits.shape[1] == 2:
        target = nn.functional.one_hot(y, 2).to(logits.dtype)
        return nn.functional.binary_cross_entropy_with_logits(logits, target)
    return nn.functional.cross_entropy(logits, y)


def _data_fingerprint(
    train: LabelledData, val: LabelledData | None, task_classes: Mapping[str, Any]
) -> str:
    """Windows and the trained tasks' labels, of the training and validation data."""
    arrays: list[np.ndarray | None] = [train.x]
    arrays += [np.asarray(train.labels[t]) for t in task_classes]
    if val is not None:
        arrays += [val.x, *(np.asarray(val.labels[t]) for t in task_classes)]
    return array_fingerprint(*arrays)


def _select_tasks(data: LabelledData, tasks: Sequence[str] | None) -> dict[str, list[str]]:
    available = list(data.labels)
    chosen = list(tasks) if tasks else available
    for t in chosen:
        if t not in data.labels:
            raise ValueError(f"task {t!r} has no labels in this data; available: {available}")
        if not np.any(np.asarray(data.labels[t]) >= 0):
            raise ValueError(f"task {t!r} has no labelled windows")
    if not chosen:
        raise ValueError("no tasks to train: the data carries no labels")
    return {t: list(data.classes[t]) for t in chosen}


def finetune(
    train: LabelledData,
    encoder: Encoder | None,
    config: FinetuneConfig = FinetuneConfig(),
    out_dir: str | Path | None = None,
    *,
    tasks: Sequence[str] | None = None,
    val: LabelledData | None = None,
    resume: bool = True,
    progress: bool = True,
    data_description: str = "",
    data_info: Mapping[str, Any] | None = None,
    embeddings: np.ndarray | None = None,
    preprocessing: PreprocessConfig | None = None,
    label_scheme: str | None = None,
) -> FinetuneResult:
    """Train the emotion heads (frozen encoder) or the whole network (baseline) on ``train``.

    ``encoder=None`` starts from a randomly initialised encoder (only sensible with
    ``freeze_encoder=False``: the fully-supervised baseline). ``data_info`` (a JSON-able
    record of the data: dataset, label scheme, window set fingerprint) goes to
    ``config.json``. ``embeddings``: ``embed(encoder, train.x)`` computed by the caller
    (frozen encoder only), e.g. once for several label fractions of the same windows.
    ``preprocessing`` and ``label_scheme`` (default: those ``train`` carries, as a
    :class:`~ecgaffect.datasets.windows.WindowSet` does) are saved with the weights in
    ``emotion.pt``, where ``ecgaffect export --run-dir`` reads them for the model card.
    """
    preprocessing, label_scheme = _run_contract(train, preprocessing, label_scheme)
    task_classes = _select_tasks(train, tasks)
    if embeddings is not None:
        if not config.freeze_encoder:
            raise ValueError("embeddings= needs freeze_encoder=True (the heads train on them)")
        if np.shape(embeddings) != (len(train.x), 128):
            raise ValueError(
                f"embeddings must be [n_train, 128] = [{len(train.x)}, 128], "
                f"got shape {np.shape(embeddings)}"
            )
    device = select_device(config.device)
    x_train = as_windows(train.x)
    encoder_fp = state_fingerprint(encoder) if out_dir is not None else None
    if encoder is None:
        if config.freeze_encoder:
            raise ValueError(
                "a frozen encoder must come from pretraining; pass encoder= or use "
                "freeze_encoder=False for the fully-supervised baseline"
            )
        seed_torch(config.seed, -1)
        encoder = Encoder()
    net = EmotionNet(
        encoder,
        {t: len(c) for t, c in task_classes.items()},
        config.variant,
        freeze_encoder=config.freeze_encoder,
    ).to(device)
    seed_torch(config.seed, 0)
    _init_glorot(net.heads)  # heads re-initialised from the seed: repeatable runs

    labels = {t: np.asarray(train.labels[t], dtype=np.int64) for t in task_classes}
    frozen = config.freeze_encoder
    if frozen:
        inputs = (
            np.asarray(embeddings, dtype=np.float32)
            if embeddings is not None
            else embed(net.encoder, x_train, device=device, progress=progress)
        )
        val_inputs = (
            embed(net.encoder, as_windows(val.x), device=device, progress=progress)
            if val is not None
            else None
        )
    else:
        inputs = x_train
        val_inputs = as_windows(val.x) if val is not None else None

    params = [p for p in net.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=config.lr)
    run = RunDir(out_dir) if out_dir is not None else None
    digest = (
        stage_digest(
            {**config.training_dict(), "tasks": task_classes},
            _data_fingerprint(train, val, task_classes),
            encoder_fp,
        )
        if run is not None
        else None
    )
    history: list[dict[str, Any]] = []
    start_epoch = 1
    if resume and run is not None and run.file("checkpoint.pt").is_file():
        state = load_checkpoint(run.file("checkpoint.pt"), map_location=device)
        if state.get("stage") != "finetune":
            raise ValueError(f"{run.file('checkpoint.pt')} is not a fine-tuning checkpoint")
        check_resume_digest(state.get("digest"), digest, run.file("checkpoint.pt"), "fine-tuning")
        net.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start_epoch = int(state["epoch"]) + 1
        history = list(state.get("history", []))
        run.truncate_metrics(start_epoch - 1)
        log.info("resuming fine-tuning from epoch %d", start_epoch)
    if run is not None and start_epoch == 1:
        run.write_json(
            "config.json",
            {
                "stage": "finetune",
                "mode": "self-supervised (frozen encoder)" if frozen else "fully-supervised",
                "config": config.to_dict(),
                "tasks": task_classes,
                "n_train": int(len(x_train)),
                "n_val": int(0 if val is None else len(val.x)),
                "data": data_description,
                "data_info": dict(data_info or {}),
                "environment": environment_info(),
            },
        )

    n = inputs.shape[0]
    bar = tqdm(
        range(start_epoch, config.epochs + 1),
        desc="finetune" if frozen else "baseline",
        unit="epoch",
        disable=not progress,
        initial=start_epoch - 1,
        total=config.epochs,
    )
    for epoch in bar:
        t0 = time.perf_counter()
        net.train()
        seed_torch(config.seed, epoch)
        order = np.random.default_rng([config.seed, epoch]).permutation(n)
        loss_sum = torch.zeros((), dtype=torch.float64, device=device)  # summed on device
        n_seen = 0
        for start in range(0, n, config.batch_size):
            idx = np.sort(order[start : start + config.batch_size])
            xb = torch.from_numpy(np.asarray(inputs[idx], dtype=np.float32)).to(device)
            out = net.forward_features(xb) if frozen else net(xb.unsqueeze(1))
            loss = l2_penalty(net, config.l2_weight)
            for t in task_classes:
                y = labels[t][idx]
                keep = y >= 0
                if keep.any():
                    yt = torch.from_numpy(y[keep]).to(device)
                    loss = loss + _task_loss(out[t][torch.from_numpy(keep).to(device)], yt)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.detach().double() * len(idx)
            n_seen += len(idx)
        record: dict[str, Any] = {
            "epoch": epoch,
            "train_loss": loss_sum.item() / max(n_seen, 1),
            "seconds": time.perf_counter() - t0,
        }
        last = epoch == config.epochs
        if last or epoch % 10 == 0 or epoch == start_epoch:
            record.update(_metrics(net, inputs, labels, task_classes, frozen, device, "train_"))
            if val is not None and val_inputs is not None:
                val_labels = {t: np.asarray(val.labels[t], dtype=np.int64) for t in task_classes}
                record.update(
                    _metrics(net, val_inputs, val_labels, task_classes, frozen, device, "val_")
                )
        history.append(record)
        bar.set_postfix(loss=f"{record['train_loss']:.3f}")
        if run is not None:
            run.append_metrics(record)
            if last or epoch % 10 == 0:
                save_checkpoint(
                    run.file("checkpoint.pt"),
                    {
                        "stage": "finetune",
                        "epoch": epoch,
                        "model": net.state_dict(),
                        "optimizer": optimizer.state_dict(),
                        "digest": digest,
                        "history": history,
                    },
                )
    bar.close()
    net.eval()
    if run is not None:
        save_emotion_net(
            net,
            task_classes,
            run.file("emotion.pt"),
            config,
            data_description,
            preprocessing=preprocessing,
            label_scheme=label_scheme,
        )
        log.info("fine-tuned model written to %s", run.file("emotion.pt"))
    return FinetuneResult(net, task_classes, history, run.path if run else None)


@torch.inference_mode()
def _predict_inputs(
    net: EmotionNet, inputs: np.ndarray, frozen: bool, device: torch.device, batch: int = 256
) -> dict[str, np.ndarray]:
    net.eval()
    chunks: dict[str, list[np.ndarray]] = {t: [] for t in net.heads}
    for start in range(0, inputs.shape[0], batch):
        xb = torch.from_numpy(np.array(inputs[start : start + batch], dtype=np.float32))
        xb = xb.to(device)
        out = net.forward_features(xb) if frozen else net(xb.unsqueeze(1))
        for t, logits in out.items():
            chunks[t].append(class_probabilities(logits).cpu().numpy())
    return {t: np.concatenate(c) if c else np.empty((0, 0)) for t, c in chunks.items()}


def _metrics(net, inputs, labels, task_classes, frozen, device, prefix) -> dict[str, Any]:
    per_task = task_metrics(_predict_inputs(net, inputs, frozen, device), labels, task_classes)
    return {
        f"{prefix}{t}/{name}": m[name]
        for t, m in per_task.items()
        for name in ("accuracy", "f1_paper", "f1_macro_sklearn")
    }


def predict(
    net: EmotionNet, x: np.ndarray, *, device: str = "auto", batch_size: int = 256
) -> dict[str, np.ndarray]:
    """Class probabilities ``{task: [n, n_classes]}`` for windows ``[n, 2560]``."""
    dev = select_device(device)
    net = net.to(dev)
    return _predict_inputs(net, as_windows(x), False, dev, batch_size)


def predict_embeddings(
    net: EmotionNet, embeddings: np.ndarray, *, device: str = "auto", batch_size: int = 256
) -> dict[str, np.ndarray]:
    """Class probabilities ``{task: [n, n_classes]}`` from encoder embeddings ``[n, 128]``
    (the heads only: :meth:`EmotionNet.forward_features`).
    """
    if np.ndim(embeddings) != 2 or np.shape(embeddings)[1] != 128:
        raise ValueError(f"embeddings must be [n, 128], got shape {np.shape(embeddings)}")
    dev = select_device(device)
    return _predict_inputs(net.to(dev), embeddings, True, dev, batch_size)


def train_baseline(
    train: LabelledData,
    config: FinetuneConfig = FinetuneConfig(freeze_encoder=False),
    out_dir: str | Path | None = None,
    *,
    tasks: Sequence[str] | None = None,
    val: LabelledData | None = None,
    progress: bool = True,
    resume: bool = True,
    data_description: str = "",
    data_info: Mapping[str, Any] | None = None,
    preprocessing: PreprocessConfig | None = None,
    label_scheme: str | None = None,
) -> dict[str, FinetuneResult]:
    """The fully-supervised baseline: one randomly initialised network per task.

    ``preprocessing`` and ``label_scheme`` are saved with each network as in
    :func:`finetune`.
    """
    cfg = dataclasses.replace(config, freeze_encoder=False)
    preprocessing, label_scheme = _run_contract(train, preprocessing, label_scheme)
    results = {}
    for t in _select_tasks(train, tasks):
        sub = Path(out_dir) / t if out_dir is not None else None
        results[t] = finetune(
            train,
            None,
            cfg,
            sub,
            tasks=[t],
            val=val,
            progress=progress,
            resume=resume,
            data_description=data_description,
            data_info=data_info,
            preprocessing=preprocessing,
            label_scheme=label_scheme,
        )
    return results


def _run_contract(
    train: LabelledData, preprocessing: PreprocessConfig | None, label_scheme: str | None
) -> tuple[PreprocessConfig | None, str | None]:
    """The preprocessing and label scheme of a run: given, else those ``train`` carries."""
    if preprocessing is None:
        preprocessing = getattr(train, "preprocessing", None)
    if preprocessing is not None and not isinstance(preprocessing, PreprocessConfig):
        raise TypeError(
            f"preprocessing must be a PreprocessConfig, got {type(preprocessing).__name__}"
        )
    if label_scheme is None:
        label_scheme = getattr(train, "label_scheme", None)
    return preprocessing, label_scheme


def save_emotion_net(
    net: EmotionNet,
    task_classes: Mapping[str, Sequence[str]],
    path: Path,
    config: FinetuneConfig,
    data_description: str = "",
    *,
    preprocessing: PreprocessConfig | None = None,
    label_scheme: str | None = None,
) -> None:
    """Write ``emotion.pt``: the weights with what a model card needs to describe them.

    Args:
        net: the trained emotion network.
        task_classes: task -> class names, in the network's head order.
        path: the file to write.
        config: the fine-tuning configuration.
        data_description: free text on the training data.
        preprocessing: the signal path of the training windows, saved as its dict
            (``None``: not known, e.g. plain arrays).
        label_scheme: the label scheme the classes come from (``None``: not known).
    """
    state: dict[str, Any] = {
        "kind": "ecgaffect-emotion-net",
        "model": {k: v.detach().cpu() for k, v in net.state_dict().items()},
        "tasks": {t: list(c) for t, c in task_classes.items()},
        "variant": net.variant_name,
        "freeze_encoder": net.freeze_encoder,
        "config": config.to_dict(),
        "data": data_description,
    }
    if preprocessing is not None:
        state["preprocessing"] = preprocessing.to_dict()
    if label_scheme is not None:
        state["label_scheme"] = str(label_scheme)
    save_checkpoint(path, state)


def load_emotion_net(path: str | Path) -> tuple[EmotionNet, dict[str, list[str]], dict]:
    """Load ``emotion.pt`` (or a run directory holding it) → (net, task classes, info).

    ``info`` holds ``config``, ``data`` and ``variant``, and, when the run recorded them,
    ``preprocessing`` (a :class:`~ecgaffect.signal.PreprocessConfig` dict) and
    ``label_scheme``.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "emotion.pt"
    state = load_checkpoint(path)
    if state.get("kind") != "ecgaffect-emotion-net":
        raise ValueError(f"{path} is not an ecgaffect emotion network file")
    tasks = {t: list(c) for t, c in state["tasks"].items()}
    net = EmotionNet(
        Encoder(),
        {t: len(c) for t, c in tasks.items()},
        state["variant"],
        freeze_encoder=bool(state["freeze_encoder"]),
    )
    net.load_state_dict(state["model"])
    net.eval()
    info = {
        k: state[k]
        for k in ("config", "data", "variant", "preprocessing", "label_scheme")
        if k in state
    }
    return net, tasks, info
