"""What the live pipeline needs of a scorer: the typed seam between ``stream`` and ``model``.

:class:`ecgaffect.model.scorer.Scorer` satisfies :class:`WindowScorer`; so does any test fake
with the same members. A scorer whose model scores relative to the person's baseline
(``needs_baseline`` true) also satisfies :class:`BaselineScorer`: the pipeline computes the
baseline from the calibration windows and passes it, one row per window, to every later
``score()``; scorers without ``needs_baseline`` are called exactly as before. ``stream``
never imports the model's torch code through this module.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np

__all__ = ["BaselineScorer", "ScorerCard", "WindowScorer"]


class ScorerCard(Protocol):
    """The model card fields the pipeline reads (see :class:`ecgaffect.model.card.ModelCard`)."""

    @property
    def fs_hz(self) -> float:
        """Rate of the windows the model takes (Hz)."""
        ...

    @property
    def window_n(self) -> int:
        """Samples per window."""
        ...

    @property
    def preprocessing(self) -> Mapping[str, Any] | Any:
        """The training preprocessing (a ``PreprocessConfig`` dict, or the config itself)."""
        ...


class WindowScorer(Protocol):
    """Scores preprocessed windows: ``card``, ``tasks``, ``classes(task)``, ``score()``."""

    @property
    def card(self) -> ScorerCard:
        """The model card (rate, window length, preprocessing)."""
        ...

    @property
    def tasks(self) -> list[str]:
        """Task names in output order."""
        ...

    def classes(self, task: str) -> Sequence[str]:
        """Class names of ``task``."""
        ...

    def score(self, windows: np.ndarray, *, fs_hz: float) -> dict[str, np.ndarray]:
        """Class probabilities ``{task: [batch, n_classes]}`` of ``[batch, window_n]`` windows."""
        ...


class BaselineScorer(WindowScorer, Protocol):
    """A :class:`WindowScorer` whose model scores relative to a personal baseline."""

    @property
    def needs_baseline(self) -> bool:
        """True: :meth:`score` needs ``baseline=``."""
        ...

    @property
    def feature_names(self) -> list[str]:
        """Names of the baseline vector's entries."""
        ...

    def baseline(self, windows: np.ndarray, *, fs_hz: float) -> np.ndarray:
        """The baseline vector ``[d]`` of the calibration windows ``[n, window_n]``."""
        ...

    def score(
        self, windows: np.ndarray, *, fs_hz: float, baseline: np.ndarray | None = None
    ) -> dict[str, np.ndarray]:
        """Probabilities of ``windows``; ``baseline`` ``[d]`` or ``[batch, d]`` per window."""
        ...
