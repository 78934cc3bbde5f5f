"""The paper's networks: the signal-transformation recognition network and the emotion network.

Layer table, activations and initialisation follow ``shared/reference/method.md`` (read from the
authors' TensorFlow code): six 1-D convolutions with "same" padding and LeakyReLU(0.2), two
max-pools (8, stride 2), a global max-pool to 128 features; Glorot/Xavier-uniform weights and
zero biases. Encoder: 329,152 parameters; with the seven pretext heads: 561,223.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

__all__ = [
    "ARCHITECTURE_NAME",
    "EMBEDDING_DIM",
    "HEAD_VARIANTS",
    "LEAKY_SLOPE",
    "TRANSFORM_NAMES",
    "EmotionHead",
    "EmotionNet",
    "Encoder",
    "HeadVariant",
    "PretextNet",
    "ScoringModule",
    "architecture_of",
    "build_scoring_module",
    "check_architecture",
    "count_parameters",
    "l2_penalty",
]

LEAKY_SLOPE = 0.2
EMBEDDING_DIM = 128
#: Head order of the pretext network (head 0 answers "is this the original?").
TRANSFORM_NAMES = (
    "original",
    "noise",
    "scaling",
    "negation",
    "flip",
    "permutation",
    "time_warp",
)


def _init_glorot(module: nn.Module) -> None:
    """Xavier/Glorot-uniform weights and zero biases, as TensorFlow's defaults."""
    for m in module.modules():
        if isinstance(m, nn.Conv1d | nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class Encoder(nn.Module):
    """The convolutional stack shared by the pretext and emotion networks.

    Input ``[batch, 1, n_samples]`` (2560 for a 10 s window at 256 Hz); output
    ``[batch, 128]`` after a global max-pool over time. Each convolution is padded
    (k//2 - 1, k//2) like TensorFlow's "same" for even kernels, so the length is kept.
    """

    def __init__(self) -> None:
        super().__init__()

        def block(c_in: int, c_out: int, k: int) -> list[nn.Module]:
            # TF "same" for an even kernel pads (k/2 - 1) before and k/2 after; explicit
            # padding avoids PyTorch's extra padded copy (and its warning) for even kernels.
            return [
                nn.ConstantPad1d((k // 2 - 1, k // 2), 0.0),
                nn.Conv1d(c_in, c_out, k),
                nn.LeakyReLU(LEAKY_SLOPE),
            ]

        self.features = nn.Sequential(
            *block(1, 32, 32),
            *block(32, 32, 32),
            nn.MaxPool1d(8, stride=2),
            *block(32, 64, 16),
            *block(64, 64, 16),
            nn.MaxPool1d(8, stride=2),
            *block(64, 128, 8),
            *block(128, 128, 8),
        )
        _init_glorot(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.amax(self.features(x), dim=-1)


class PretextHead(nn.Sequential):
    """Dense 128 → LeakyReLU → Dropout 0.6 → Dense 128 → LeakyReLU → Dropout 0.6 → Dense 1."""

    def __init__(self, dropout: float = 0.6) -> None:
        super().__init__(
            nn.Linear(EMBEDDING_DIM, 128),
            nn.LeakyReLU(LEAKY_SLOPE),
            nn.Dropout(dropout),
            nn.Linear(128, 128),
            nn.LeakyReLU(LEAKY_SLOPE),
            nn.Dropout(dropout),
            nn.Linear(128, 1),
        )


class PretextNet(nn.Module):
    """Signal-transformation recognition network: encoder + 7 binary heads (logits)."""

    def __init__(self, encoder: Encoder | None = None, n_heads: int = len(TRANSFORM_NAMES)):
        super().__init__()
        self.encoder = encoder if encoder is not None else Encoder()
        self.heads = nn.ModuleList(PretextHead() for _ in range(n_heads))
        _init_glorot(self.heads)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.encoder(x)
        return torch.cat([head(z) for head in self.heads], dim=1)


@dataclass(frozen=True)
class HeadVariant:
    """Dense stack of the emotion network for one dataset family (method reference)."""

    n_layers: int
    width: int
    dropout: float
    l2: float


HEAD_VARIANTS: dict[str, HeadVariant] = {
    "swell": HeadVariant(n_layers=2, width=512, dropout=0.0, l2=0.0),
    "wesad": HeadVariant(n_layers=2, width=512, dropout=0.0, l2=0.0),
    "amigos": HeadVariant(n_layers=3, width=512, dropout=0.4, l2=0.0),
    "dreamer": HeadVariant(n_layers=3, width=512, dropout=0.2, l2=1e-4),
}


def get_variant(name: str) -> HeadVariant:
    try:
        return HEAD_VARIANTS[name]
    except KeyError:
        raise ValueError(
            f"unknown head variant {name!r}; choose one of {sorted(HEAD_VARIANTS)}"
        ) from None


class EmotionHead(nn.Sequential):
    """Dense ReLU layers (with dropout for AMIGOS/DREAMER) and a linear output.

    Two classes use two sigmoid units trained with binary cross-entropy on one-hot targets
    (the paper); three or more use softmax + cross-entropy. The module returns logits.
    """

    def __init__(self, n_classes: int, variant: HeadVariant) -> None:
        if n_classes < 2:
            raise ValueError(f"an emotion head needs at least 2 classes, got {n_classes}")
        layers: list[nn.Module] = []
        d_in = EMBEDDING_DIM
        for _ in range(variant.n_layers):
            layers += [nn.Linear(d_in, variant.width), nn.ReLU()]
            if variant.dropout > 0:
                layers.append(nn.Dropout(variant.dropout))
            d_in = variant.width
        layers.append(nn.Linear(d_in, n_classes))
        super().__init__(*layers)
        self.n_classes = n_classes
        _init_glorot(self)


class EmotionNet(nn.Module):
    """Transferred encoder + one dense head per task.

    With ``freeze_encoder=True`` (the self-supervised model) the encoder's parameters do not
    train and it stays in eval mode; the heads are then independent, which is the same as the
    paper's one network per task. With ``freeze_encoder=False`` and a fresh encoder it is the
    fully-supervised baseline.

    ``forward`` returns ``{task: logits [batch, n_classes]}``.
    """

    def __init__(
        self,
        encoder: Encoder,
        tasks: Mapping[str, int],
        variant: str | HeadVariant = "swell",
        *,
        freeze_encoder: bool = True,
    ) -> None:
        super().__init__()
        if not tasks:
            raise ValueError("EmotionNet needs at least one task")
        if isinstance(variant, HeadVariant):
            self.variant_name = next(
                (k for k, v in HEAD_VARIANTS.items() if v == variant), "custom"
            )
            self.variant = variant
        else:
            self.variant_name = variant
            self.variant = get_variant(variant)
        self.encoder = encoder
        self.heads = nn.ModuleDict(
            {task: EmotionHead(int(n), self.variant) for task, n in tasks.items()}
        )
        self.freeze_encoder = freeze_encoder
        if freeze_encoder:
            self.encoder.requires_grad_(False)
            self.encoder.eval()

    @property
    def tasks(self) -> dict[str, int]:
        return {name: head.n_classes for name, head in self.heads.items()}

    def train(self, mode: bool = True) -> EmotionNet:
        super().train(mode)
        if self.freeze_encoder:
            self.encoder.eval()
        return self

    def forward_features(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        return {name: head(z) for name, head in self.heads.items()}

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.forward_features(self.encoder(x))


def class_probabilities(logits: torch.Tensor) -> torch.Tensor:
    """Logits → probabilities that sum to 1 per row.

    Binary heads were trained as two sigmoid units; their sigmoids are normalised to sum to 1
    (argmax unchanged). Heads with three or more classes use softmax.
    """
    if logits.shape[-1] == 2:
        p = torch.sigmoid(logits)
        return p / p.sum(dim=-1, keepdim=True).clamp_min(1e-12)
    return torch.softmax(logits, dim=-1)


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def l2_penalty(module: nn.Module, weight: float) -> torch.Tensor:
    """``weight · ½‖W‖²`` over conv kernels and dense weight matrices (never biases).

    Parameters that do not train (a frozen encoder) are left out.
    """
    if weight == 0:  # no squared-weight graph for nothing
        return next(module.parameters()).new_zeros(())
    terms = [
        0.5 * m.weight.pow(2).sum()
        for m in module.modules()
        if isinstance(m, nn.Conv1d | nn.Linear) and m.weight.requires_grad
    ]
    if not terms:
        return next(module.parameters()).new_zeros(())
    return weight * torch.stack(terms).sum()


class ScoringModule(nn.Module):
    """Plain inference module around an :class:`EmotionNet`.

    ``forward(x: [batch, 1, window_n]) -> [batch, n_outputs]``: per task (in ``task_order``)
    the class probabilities, concatenated. Binary heads (two sigmoid units, as in the paper)
    are normalised to sum to 1; heads with three or more classes use softmax. Same numbers as
    :func:`class_probabilities` on the eager logits. Its ``state_dict`` is what an ecgaffect
    model file stores (``encoder.features.*`` and ``heads.<i>.*``, ``i`` in task order).
    """

    def __init__(self, net: EmotionNet, task_order: list[str] | None = None) -> None:
        super().__init__()
        tasks: dict[str, int] = dict(net.tasks)
        order = list(tasks) if task_order is None else list(task_order)
        if sorted(order) != sorted(tasks):
            raise ValueError(
                f"task_order {order} must list exactly the network's tasks {list(tasks)}"
            )
        net = copy.deepcopy(net).eval().requires_grad_(False)
        self.encoder = net.encoder
        self.heads = nn.ModuleList([net.heads[t] for t in order])
        self.task_order = order
        self.n_outputs = sum(tasks[t] for t in order)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.encoder(x)
        outs: list[torch.Tensor] = []
        for head in self.heads:
            logits = head(z)
            if logits.shape[-1] == 2:
                p = torch.sigmoid(logits)
                outs.append(p / p.sum(dim=-1, keepdim=True).clamp_min(1e-12))
            else:
                outs.append(torch.softmax(logits, dim=-1))
        return torch.cat(outs, dim=1)


# -- architecture records (model files store these, never code) ----------------------------
#: ``architecture["network"]`` of an ecgaffect model file: the classes of this module.
ARCHITECTURE_NAME = "ecgaffect.EmotionNet/1"
#: Bounds on what a model file may ask us to build (the paper's heads are 2-3 x 512).
MAX_HEAD_LAYERS = 8
MAX_HEAD_WIDTH = 4096
MAX_TASKS = 32
MAX_CLASSES = 256
MAX_PARAMETERS = 50_000_000
#: Shortest window the encoder's two max-pools (8, stride 2) accept, with margin.
MIN_WINDOW_N = 32
MAX_WINDOW_N = 1 << 22
_ARCHITECTURE_KEYS = ("network", "embedding_dim", "head_layers", "head_width", "head_dropout")


def architecture_of(net: EmotionNet) -> dict[str, Any]:
    """The architecture record of ``net`` (JSON): what :func:`build_scoring_module` needs.

    Args:
        net: the emotion network to describe.

    Returns:
        ``{"network", "embedding_dim", "head_layers", "head_width", "head_dropout"}``.
    """
    v = net.variant
    return {
        "network": ARCHITECTURE_NAME,
        "embedding_dim": EMBEDDING_DIM,
        "head_layers": int(v.n_layers),
        "head_width": int(v.width),
        "head_dropout": float(v.dropout),
    }


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_architecture(architecture: Any, n_classes: list[int], window_n: int) -> HeadVariant:
    """Validate an architecture record read from a file; the head variant it describes.

    Every key must be present with the right type and within bounds; unknown keys, another
    network, and a network too large to be one of ours are refused.

    Args:
        architecture: the record (from a model card).
        n_classes: classes per task, in output order.
        window_n: samples per input window.

    Returns:
        The :class:`HeadVariant` to build the heads with.

    Raises:
        ValueError: naming the key and what is allowed.
    """
    if not isinstance(architecture, dict):
        raise ValueError(f"architecture must be a JSON object, got {type(architecture).__name__}")
    keys = set(architecture)
    if keys != set(_ARCHITECTURE_KEYS):
        extra, missing = (
            sorted(keys - set(_ARCHITECTURE_KEYS)),
            sorted(set(_ARCHITECTURE_KEYS) - keys),
        )
        raise ValueError(
            f"architecture keys must be exactly {list(_ARCHITECTURE_KEYS)} "
            f"(unknown: {extra}, missing: {missing})"
        )
    a = architecture
    if a["network"] != ARCHITECTURE_NAME:
        raise ValueError(
            f"architecture network {a['network']!r} is not one this ecgaffect builds "
            f"({ARCHITECTURE_NAME!r})"
        )
    if not _is_int(a["embedding_dim"]) or a["embedding_dim"] != EMBEDDING_DIM:
        raise ValueError(
            f"architecture embedding_dim {a['embedding_dim']!r}: must be {EMBEDDING_DIM}"
        )
    if not _is_int(a["head_layers"]) or not 0 <= a["head_layers"] <= MAX_HEAD_LAYERS:
        raise ValueError(
            f"architecture head_layers {a['head_layers']!r}: must be an integer "
            f"0..{MAX_HEAD_LAYERS}"
        )
    if not _is_int(a["head_width"]) or not 1 <= a["head_width"] <= MAX_HEAD_WIDTH:
        raise ValueError(
            f"architecture head_width {a['head_width']!r}: must be an integer 1..{MAX_HEAD_WIDTH}"
        )
    dropout = a["head_dropout"]
    if (
        isinstance(dropout, bool)
        or not isinstance(dropout, int | float)
        or not math.isfinite(dropout)
        or not 0.0 <= dropout < 1.0
    ):
        raise ValueError(f"architecture head_dropout {dropout!r}: must be a number in [0, 1)")
    if not 1 <= len(n_classes) <= MAX_TASKS:
        raise ValueError(f"{len(n_classes)} tasks: a model has 1..{MAX_TASKS}")
    for n in n_classes:
        if not _is_int(n) or not 2 <= n <= MAX_CLASSES:
            raise ValueError(f"a task with {n!r} classes: must be 2..{MAX_CLASSES}")
    if not _is_int(window_n) or not MIN_WINDOW_N <= window_n <= MAX_WINDOW_N:
        raise ValueError(f"window_n {window_n!r}: must be {MIN_WINDOW_N}..{MAX_WINDOW_N}")
    variant = HeadVariant(
        n_layers=a["head_layers"], width=a["head_width"], dropout=float(dropout), l2=0.0
    )
    width, layers = variant.width, variant.n_layers
    per_head_hidden = (
        (EMBEDDING_DIM * width + width + (layers - 1) * (width * width + width)) if layers else 0
    )
    total = 329_152 + sum(
        per_head_hidden + ((width if layers else EMBEDDING_DIM) + 1) * n for n in n_classes
    )
    if total > MAX_PARAMETERS:
        raise ValueError(f"architecture has {total} parameters; at most {MAX_PARAMETERS}")
    return variant


def build_scoring_module(
    architecture: Any,
    tasks: Mapping[str, int],
    window_n: int,
    *,
    device: str | torch.device = "cpu",
) -> ScoringModule:
    """An untrained :class:`ScoringModule` from a validated architecture record.

    Only our own classes are instantiated; nothing is read from the file but numbers.

    Args:
        architecture: the record (:func:`architecture_of`), checked with
            :func:`check_architecture`.
        tasks: task → number of classes, in output order.
        window_n: samples per input window.
        device: where the parameters live (``"meta"`` allocates nothing).

    Returns:
        The module in eval mode without gradients.
    """
    variant = check_architecture(architecture, list(tasks.values()), window_n)
    with torch.device(device):
        net = EmotionNet(Encoder(), dict(tasks), variant=variant)
        return ScoringModule(net, list(tasks)).eval().requires_grad_(False)
