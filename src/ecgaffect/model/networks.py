"""The paper's networks: the signal-transformation recognition network and the emotion network.

Layer table, activations and initialisation follow ``shared/reference/method.md`` (read from the
authors' TensorFlow code): six 1-D convolutions with "same" padding and LeakyReLU(0.2), two
max-pools (8, stride 2), a global max-pool to 128 features; Glorot/Xavier-uniform weights and
zero biases. Encoder: 329,152 parameters; with the seven pretext heads: 561,223.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn

__all__ = [
    "EMBEDDING_DIM",
    "HEAD_VARIANTS",
    "LEAKY_SLOPE",
    "TRANSFORM_NAMES",
    "EmotionHead",
    "EmotionNet",
    "Encoder",
    "HeadVariant",
    "PretextNet",
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
        variant: str = "swell",
        *,
        freeze_encoder: bool = True,
    ) -> None:
        super().__init__()
        if not tasks:
            raise ValueError("EmotionNet needs at least one task")
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
