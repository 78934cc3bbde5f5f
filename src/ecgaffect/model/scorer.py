"""Load an exported model and score 10 s ECG windows with it.

:class:`Scorer` loads an ecgaffect model file (``.safetensors``, written by ``ecgaffect
export``; see :mod:`ecgaffect.model.modelfile`): the network is rebuilt from our own classes
(:mod:`ecgaffect.model.networks`) and given the file's weights after checking them against
the card's architecture and SHA-256. Nothing in the file is ever run: legacy ``.pt2`` and
TorchScript archives (pickles) are refused. It checks every batch against the card
(sampling rate, window length, finite values), checks the outputs are finite
(:class:`~ecgaffect.model.modelfile.ModelOutputError`) and returns per-task class
probabilities.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ecgaffect.model.card import ModelCard
from ecgaffect.model.modelfile import ModelOutputError, load_model_file

__all__ = ["DEFAULT_BATCH_SIZE", "Scorer"]

log = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 64


def _device(device: str | torch.device) -> torch.device:
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device={device!r} is not a torch device (e.g. 'cpu', 'cuda')") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r}: CUDA is not available here; use device='cpu'")
    return dev


class Scorer:
    """Scores windows with an exported model. Build with :meth:`load`.

    Attributes:
        path: the artifact file.
        card: its :class:`~ecgaffect.model.card.ModelCard`.
        format: ``"safetensors"`` (the only format loaded).
        device: torch device the model runs on.
        batch_size: windows per forward call in :meth:`score`.
    """

    def __init__(
        self,
        module: Any,
        card: ModelCard,
        *,
        path: Path,
        fmt: str = "safetensors",
        device: torch.device,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> None:
        self._module = module
        self.card = card
        self.path = path
        self.format = fmt
        self.device = device
        self.batch_size = self._check_batch_size(batch_size)
        #: Named profile whose saved personal baseline ``score``/``live`` reuse (``--profile``).
        self.profile: str | None = None

    @staticmethod
    def _check_batch_size(batch_size: int) -> int:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size={batch_size!r}: must be a positive integer")
        return batch_size

    @classmethod
    def load(
        cls,
        path: str | Path,
        *,
        device: str | torch.device = "cpu",
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> Scorer:
        """Load an ecgaffect model file written by ``ecgaffect export``.

        Args:
            path: the ``.safetensors`` model file.
            device: torch device to run on.
            batch_size: windows per forward call in :meth:`score`.

        Returns:
            The scorer.

        Raises:
            FileNotFoundError: no such file.
            ModelFileError: (a ``ValueError``) naming the file, for a corrupt, truncated,
                altered (weights digest), hostile or foreign file; a legacy ``.pt2`` or
                TorchScript file raises its subclass ``LegacyModelFileError`` saying how to
                convert it, without torch ever opening it.
        """
        path = Path(path)
        dev = _device(device)
        batch_size = cls._check_batch_size(batch_size)
        module, card = load_model_file(path, device=dev)
        fmt = "safetensors"
        log.info("loaded %s model %r from %s on %s", fmt, card.name, path, dev)
        if card.demo:
            log.warning("model %r is a demo model — not validated for affect", card.name)
        return cls(module, card, path=path, fmt=fmt, device=dev, batch_size=batch_size)

    # -- card shortcuts -------------------------------------------------------------------
    @property
    def tasks(self) -> list[str]:
        """Task names in output order."""
        return list(self.card.tasks)

    def classes(self, task: str) -> list[str]:
        """Class names of ``task``."""
        return self.card.classes(task)

    @property
    def needs_baseline(self) -> bool:
        """True for a model that scores relative to the person's baseline
        (:mod:`ecgaffect.model.stress_model`); such a model refuses to score without one.
        """
        return bool(getattr(self._module, "needs_baseline", False))

    @property
    def feature_names(self) -> list[str]:
        """Names of the baseline vector's entries (empty for a model without a baseline)."""
        return list(getattr(self._module, "names", []))

    # -- baseline ---------------------------------------------------------------------------
    def features(self, windows: np.ndarray | torch.Tensor, *, fs_hz: float) -> np.ndarray:
        """``[n, d]`` per-window features the baseline is taken over (float64; NaN where a
        window has too few clean beats). Only for a model with :attr:`needs_baseline`.
        """
        if not self.needs_baseline:
            raise ValueError(f"model {self.card.name!r} does not use a personal baseline")
        x = self._check_windows(windows, fs_hz).squeeze(1).numpy()
        return np.asarray(self._module.features(x, float(fs_hz)), dtype=np.float64)

    def baseline(self, windows: np.ndarray | torch.Tensor, *, fs_hz: float) -> np.ndarray:
        """The person's baseline ``[d]`` from their calibration windows: the mean feature
        vector (:class:`~ecgaffect.model.baselines.PersonalBaseline`) — the one rule used by
        the offline evaluation, ``ecgaffect score`` and the live pipeline.

        For a model without :attr:`needs_baseline` it is an empty vector.
        """
        from ecgaffect.model.baselines import PersonalBaseline

        if not self.needs_baseline:
            return np.zeros(0)
        return PersonalBaseline.fit(self.features(windows, fs_hz=fs_hz)).mean

    def _baseline_rows(self, baseline: Any, n: int) -> np.ndarray:
        from ecgaffect.model.stress_model import NoBaselineError

        d = len(self.feature_names)
        if baseline is None:
            raise NoBaselineError(
                f"model {self.card.name!r} scores relative to the person's baseline and has "
                "no baseline yet: calibrate first (the first minute at rest), or load a saved "
                "profile (--profile NAME)"
            )
        b = np.asarray(baseline, dtype=np.float64)
        if b.ndim == 1:
            b = np.broadcast_to(b, (n, b.shape[0]))
        if b.shape != (n, d):
            raise ValueError(
                f"baseline has shape {np.asarray(baseline).shape}; model {self.card.name!r} "
                f"needs [{d}] or one row per window [{n}, {d}] ({', '.join(self.feature_names[:8])}"
                f"{', ...' if d > 8 else ''})"
            )
        if not np.isfinite(b).all():
            raise ValueError("baseline contains NaN or infinite values")
        return b

    # -- scoring --------------------------------------------------------------------------
    def _check_windows(self, windows: np.ndarray | torch.Tensor, fs_hz: float) -> torch.Tensor:
        card = self.card
        if (
            isinstance(fs_hz, bool)
            or not isinstance(fs_hz, int | float)
            or not math.isclose(float(fs_hz), card.fs_hz, rel_tol=1e-9)
        ):
            raise ValueError(
                f"fs_hz={fs_hz!r}: model {card.name!r} expects windows sampled at "
                f"{card.fs_hz:g} Hz; resample (ecgaffect.signal.preprocess_ecg) first"
            )
        x = torch.as_tensor(windows)
        if x.ndim == 2:
            x = x.unsqueeze(1)
        if x.ndim != 3 or x.shape[1] != 1 or x.shape[2] != card.window_n:
            raise ValueError(
                f"windows have shape {tuple(torch.as_tensor(windows).shape)}; model "
                f"{card.name!r} expects [batch, {card.window_n}] or [batch, 1, {card.window_n}] "
                f"({card.window_s:g} s at {card.fs_hz:g} Hz)"
            )
        if not (x.is_floating_point() or x.dtype in (torch.int16, torch.int32, torch.int64)):
            raise ValueError(f"windows have dtype {x.dtype}; expected a real number type")
        x = x.to(torch.float32)
        if not bool(torch.isfinite(x).all()):
            bad = (~torch.isfinite(x)).reshape(x.shape[0], -1).any(dim=1).nonzero().flatten()
            raise ValueError(
                f"windows contain NaN or infinite values (windows {bad[:10].tolist()}"
                f"{' ...' if len(bad) > 10 else ''}); drop or repair them before scoring"
            )
        return x

    def score_outputs(
        self,
        windows: np.ndarray | torch.Tensor,
        *,
        fs_hz: float,
        batch_size: int | None = None,
        baseline: np.ndarray | None = None,
    ) -> np.ndarray:
        """Raw model outputs ``[batch, n_outputs]`` (float32 numpy), batched.

        ``baseline``: for a model with :attr:`needs_baseline`, the person's baseline
        (:meth:`baseline`), ``[d]`` or one row per window ``[batch, d]`` (so a service
        scoring several people in one batch passes each window its person's row); models
        without a baseline ignore it.

        Raises:
            NoBaselineError: (a ``ValueError``) a model that needs a baseline got none.
            ValueError: windows that do not fit the card, or are not finite.
            ModelOutputError: the model returned NaN or infinite values (damaged weights).
        """
        x = self._check_windows(windows, fs_hz)
        bs = self.batch_size if batch_size is None else self._check_batch_size(batch_size)
        out = np.empty((x.shape[0], self.card.n_outputs), dtype=np.float32)
        rows = self._baseline_rows(baseline, x.shape[0]) if self.needs_baseline else None
        with torch.inference_mode():
            for start in range(0, x.shape[0], bs):
                chunk = x[start : start + bs]
                if rows is not None:
                    feats = self._module.features(chunk.squeeze(1).numpy(), float(fs_hz))
                    rel = feats - rows[start : start + chunk.shape[0]]
                    y = self._module(torch.as_tensor(rel, dtype=torch.float32).to(self.device))
                else:
                    y = self._module(chunk.to(self.device))
                out[start : start + chunk.shape[0]] = y.detach().cpu().numpy()
        if not np.isfinite(out).all():
            rows = np.flatnonzero(~np.isfinite(out).all(axis=1))
            raise ModelOutputError(
                f"model {self.card.name!r} ({self.path}) returned NaN or infinite outputs for "
                f"windows {rows[:10].tolist()}{' ...' if len(rows) > 10 else ''} of finite "
                "input; its weights are damaged or unusable: re-export the model"
            )
        return out

    def score(
        self,
        windows: np.ndarray | torch.Tensor,
        *,
        fs_hz: float,
        batch_size: int | None = None,
        baseline: np.ndarray | None = None,
    ) -> dict[str, np.ndarray]:
        """Class probabilities ``{task: [batch, n_classes]}`` for ``windows``.

        ``windows`` is ``[batch, window_n]`` or ``[batch, 1, window_n]`` of preprocessed ECG
        at ``fs_hz`` (must equal the card's rate). Runs in chunks of ``batch_size`` (default:
        :attr:`batch_size`) under ``torch.inference_mode``. Raises ValueError for a wrong
        rate, length or non-finite values. ``baseline``: see :meth:`score_outputs` (required
        by a model with :attr:`needs_baseline`, ignored by the others).
        """
        outputs = self.score_outputs(windows, fs_hz=fs_hz, batch_size=batch_size, baseline=baseline)
        return {t: np.ascontiguousarray(p) for t, p in self.card.split_outputs(outputs).items()}

    def predict(self, probabilities: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Predicted class indices per task (card thresholds for binary tasks, else argmax)."""
        return {t: self.card.decide(t, p) for t, p in probabilities.items()}

    def __repr__(self) -> str:
        return (
            f"Scorer({self.card.name!r}, format={self.format!r}, tasks={self.tasks}, "
            f"device={str(self.device)!r})"
        )
