"""Offline scoring of a whole recording with an exported model, in batches.

By default the windows are the ones the live pipeline would score (``PreprocessConfig.
for_live()``: the causal z-score calibrated on the first minute), so an offline score of a
recording and its live replay agree: both go through :func:`ecgaffect.signal.preprocess_ecg`'s
calibration rule (:func:`ecgaffect.signal.calibration_stats`: statistics over clean blocks
only, artefact blocks rejected; non-physical samples held by
:func:`ecgaffect.signal.hold_non_physical`), the one implementation the live
:class:`~ecgaffect.signal.StreamingPreprocessor` uses too;
``normalization="subject"`` uses the paper's training
normalisation instead. The result is a column table (window start/end, per-class
probabilities, predicted class of each task) written as CSV or Parquet.
"""

from __future__ import annotations

import csv
import dataclasses
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ecgaffect.model.card import ModelCard

if TYPE_CHECKING:
    from ecgaffect.model.scorer import Scorer

__all__ = [
    "SCORE_NORMALIZATIONS",
    "preprocess_windows",
    "read_recording",
    "score_recording",
    "score_table",
    "write_table",
]

log = logging.getLogger(__name__)

#: ``score --normalization`` choices: ``live`` = the windows the live pipeline scores
#: (``PreprocessConfig.for_live()``, causal calibrated z-score); ``subject`` = the paper's
#: training normalisation (whole-recording robust statistics).
SCORE_NORMALIZATIONS = ("live", "subject")


def read_recording(
    path: str | Path, fs_hz: float | None, column: str | None, units: str
) -> tuple[np.ndarray, float]:
    """ECG in µV and its rate, read by :func:`ecgaffect.io.load_session`.

    Every recording format the project reads; ``column`` is a name or a whole-number index.
    """
    from ecgaffect.io import load_session

    col: int | str | None = int(column) if column is not None and column.isdigit() else column
    session = load_session(path, fs_hz=fs_hz, channel=col, units=units)
    return session.ecg_uv(), float(session.fs_hz)


def preprocess_windows(
    ecg: np.ndarray,
    fs_hz: float,
    card: ModelCard,
    *,
    hop_s: float,
    normalization: str = "live",
) -> tuple[np.ndarray, np.ndarray]:
    """Preprocess a whole recording with the card's config and cut windows.

    ``normalization="live"`` (default) uses ``PreprocessConfig.for_live()`` of the card's
    config: the same windows the live pipeline scores. ``"subject"`` normalises with the
    whole recording's robust statistics, as in training.

    Returns ``(windows float32 [n, window_n], start_s float64 [n])`` at the card's rate.
    Uses :func:`ecgaffect.signal.preprocess_ecg` and :func:`ecgaffect.signal.make_windows`,
    the same functions as training.
    """
    from ecgaffect import signal as sig

    if not hop_s > 0:
        raise ValueError(f"--hop={hop_s!r}: must be > 0 seconds")
    if normalization not in SCORE_NORMALIZATIONS:
        raise ValueError(
            f"--normalization={normalization!r}: must be one of {list(SCORE_NORMALIZATIONS)}"
        )
    config = card.preprocessing
    config = (
        config.for_live()
        if normalization == "live"
        else dataclasses.replace(config, normalization="subject")
    )
    x = sig.preprocess_ecg(ecg, fs_hz, config=config)
    windows, starts = sig.make_windows(x, fs_hz=card.fs_hz, window_s=card.window_s, hop_s=hop_s)
    return np.asarray(windows, dtype=np.float32), np.asarray(starts) / card.fs_hz


def _personal_baseline(
    scorer: Scorer, windows: np.ndarray, start_s: np.ndarray
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """For a model that scores relative to a personal baseline: the baseline (the scorer's
    profile's saved one, else the mean over the calibration windows — those ending within
    the card's ``calibration_s``, :func:`~ecgaffect.model.baselines.calibration_mask` — saved
    to the profile if one is named) and the calibration mask. ``(None, None)`` otherwise.
    """
    if not getattr(scorer, "needs_baseline", False):
        return None, None
    from datetime import UTC, datetime

    from ecgaffect.model.baselines import (
        LiveBaseline,
        calibration_mask,
        check_profile_fits,
        hrv_features,
        load_profile,
        save_profile,
    )
    from ecgaffect.model.stress_model import NoBaselineError

    card = scorer.card
    cal_s = float(card.preprocessing.calibration_s)
    cal = calibration_mask(np.zeros(len(start_s)), np.asarray(start_s), card.window_s, cal_s)
    profile = getattr(scorer, "profile", None)
    if profile:
        saved = load_profile(profile)
        if saved is not None:
            check_profile_fits(saved, scorer.feature_names, card.name)
            return saved.features, cal
    if not cal.any():
        raise NoBaselineError(
            f"model {card.name!r} scores relative to the person's baseline, taken over the "
            f"windows ending within the first {cal_s:g} s; the recording has none "
            "(use --hop <= 10, or --profile NAME with a saved baseline)"
        )
    base = scorer.baseline(windows[cal], fs_hz=card.fs_hz)
    if profile:
        hrv = hrv_features(windows[cal], card.fs_hz)
        with np.errstate(all="ignore"):
            hr, rmssd = (float(np.nanmean(hrv[:, i])) for i in (0, 2))
        save_profile(
            profile,
            LiveBaseline(
                hr_bpm=hr,
                rmssd_ms=rmssd,
                n_windows=int(cal.sum()),
                taken_utc=datetime.now(UTC)
                .replace(microsecond=0)
                .isoformat()
                .replace("+00:00", "Z"),
                features=base,
                feature_names=scorer.feature_names,
                model=card.name,
            ),
        )
    return base, cal


def score_table(
    scorer: Scorer, windows: np.ndarray, start_s: np.ndarray, *, progress: bool = True
) -> dict[str, np.ndarray]:
    """Score ``windows`` in the scorer's batches → column table.

    Columns: ``window_start_s``, ``window_end_s``, (for a model scoring relative to the
    person's baseline: ``calibration``, 1 for the windows the baseline was taken over, which
    live scoring would not show), ``{task}_p_{class}`` for every class and ``{task}_pred``
    (predicted class name: card threshold for binary tasks, else argmax).
    """
    from tqdm.auto import tqdm

    card = scorer.card
    n = len(windows)
    if len(start_s) != n:
        raise ValueError(f"{n} windows but {len(start_s)} start times")
    outputs = np.empty((n, card.n_outputs), dtype=np.float32)
    bs = scorer.batch_size
    baseline, cal = _personal_baseline(scorer, windows, start_s)
    with tqdm(total=n, unit="win", desc="scoring", disable=not progress) as bar:
        for a in range(0, n, bs):
            outputs[a : a + bs] = scorer.score_outputs(
                windows[a : a + bs], fs_hz=card.fs_hz, baseline=baseline
            )
            bar.update(min(bs, n - a))
    table: dict[str, np.ndarray] = {
        "window_start_s": np.asarray(start_s, dtype=np.float64),
        "window_end_s": np.asarray(start_s, dtype=np.float64) + card.window_s,
    }
    if cal is not None:
        table["calibration"] = cal.astype(np.int64)
    for task, probs in card.split_outputs(outputs).items():
        classes = card.classes(task)
        for j, cls in enumerate(classes):
            table[f"{task}_p_{cls}"] = probs[:, j]
        table[f"{task}_pred"] = np.asarray(classes, dtype=object)[card.decide(task, probs)]
    return table


def score_recording(
    scorer: Scorer,
    recording: str | Path,
    *,
    fs_hz: float | None = None,
    column: str | None = None,
    units: str = "uV",
    hop_s: float = 10.0,
    normalization: str = "live",
    progress: bool = True,
) -> dict[str, np.ndarray]:
    """Read ``recording``, cut it into the card's windows and score them (:func:`score_table`).

    Raises :class:`ValueError` when the recording is shorter than one window.
    """
    ecg, rate_hz = read_recording(recording, fs_hz, column, units)
    windows, start_s = preprocess_windows(
        ecg, rate_hz, scorer.card, hop_s=hop_s, normalization=normalization
    )
    if len(windows) == 0:
        raise ValueError(
            f"recording {str(recording)!r} ({len(ecg) / rate_hz:.1f} s) is shorter than one "
            f"{scorer.card.window_s:g} s window"
        )
    return score_table(scorer, windows, start_s, progress=progress)


def write_table(table: Mapping[str, np.ndarray], path: str | Path) -> Path:
    """Write the score table as ``.csv`` or ``.parquet`` (pyarrow, optional)."""
    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"--out directory {str(path.parent)!r} does not exist")
    if path.suffix == ".csv":
        cols = list(table)
        n = len(next(iter(table.values()))) if table else 0
        with path.open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(cols)
            for i in range(n):
                w.writerow(
                    [
                        repr(float(table[c][i])) if table[c].dtype.kind == "f" else table[c][i]
                        for c in cols
                    ]
                )
    elif path.suffix == ".parquet":
        from ecgaffect._optional import require

        pa = require("pyarrow", "writing Parquet score files")
        pq = require("pyarrow.parquet", "writing Parquet score files")
        arrays = {
            c: pa.array(v.tolist(), type=pa.string()) if v.dtype == object else pa.array(v)
            for c, v in table.items()
        }
        pq.write_table(pa.table(arrays), path)
    else:
        raise ValueError(
            f"--out {str(path)!r}: unsupported suffix {path.suffix!r}; use .csv or .parquet"
        )
    return path
