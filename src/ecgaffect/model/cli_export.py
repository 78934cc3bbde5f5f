"""``ecgaffect export`` / ``ecgaffect model-info`` / ``ecgaffect score``.

- ``export``: a trained EmotionNet (state-dict checkpoint + ``--tasks``) → ``.pt2`` and/or
  TorchScript artifact with its model card.
- ``model-info FILE``: prints the card (``--json`` for the raw JSON).
- ``score RECORDING --model FILE --out OUT.csv|OUT.parquet``: offline scoring of a whole
  recording in batches → a time series of window start/end, per-class probabilities and the
  predicted class of each task.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ecgaffect.model.card import ModelCard

log = logging.getLogger(__name__)

__all__ = [
    "build_card",
    "input_fields",
    "load_checkpoint_net",
    "parse_tasks",
    "parse_thresholds",
    "preprocess_windows",
    "read_recording",
    "register",
    "score_table",
    "write_table",
]

TORCHSCRIPT_SUFFIXES = (".ts", ".pt", ".torchscript")


# -- export ---------------------------------------------------------------------------------
def parse_tasks(specs: Sequence[str]) -> dict[str, list[str]]:
    """``["arousal=low,high", "stress=N,I,T"]`` → ``{"arousal": ["low", "high"], ...}``."""
    tasks: dict[str, list[str]] = {}
    for spec in specs:
        task, sep, classes = spec.partition("=")
        names = [c.strip() for c in classes.split(",") if c.strip()]
        if not sep or not task.strip() or len(names) < 2:
            raise ValueError(
                f"--tasks {spec!r}: expected TASK=CLASS,CLASS[,...] with at least 2 classes, "
                "e.g. arousal=low,high"
            )
        if task.strip() in tasks:
            raise ValueError(f"--tasks names task {task.strip()!r} twice")
        tasks[task.strip()] = names
    if not tasks:
        raise ValueError("--tasks: name at least one task, e.g. --tasks arousal=low,high")
    return tasks


def parse_thresholds(specs: Sequence[str], tasks: Mapping[str, list[str]]) -> dict:
    """``["arousal=0.4"]`` → ``{"arousal": 0.4, other tasks: None}``."""
    thresholds: dict[str, float | None] = dict.fromkeys(tasks)
    for spec in specs:
        task, _, value = spec.partition("=")
        if task not in tasks:
            raise ValueError(f"--threshold {spec!r}: unknown task {task!r}; tasks: {list(tasks)}")
        try:
            thresholds[task] = float(value)
        except ValueError:
            raise ValueError(
                f"--threshold {spec!r}: expected TASK=PROBABILITY, e.g. arousal=0.5"
            ) from None
    return thresholds


def load_checkpoint_net(path: str | Path, tasks: Mapping[str, list[str]], variant: str):
    """An :class:`EmotionNet` with the weights of a state-dict checkpoint.

    Accepts a plain state dict or a dict holding one under ``"state_dict"``/``"model"``.
    Loaded with ``weights_only=True`` (no pickled code runs).
    """
    import torch

    from ecgaffect.model.networks import EmotionNet, Encoder

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file
        raise ValueError(
            f"checkpoint {str(path)!r} is not a torch state dict ({type(exc).__name__}: {exc})"
        ) from exc
    if isinstance(state, dict):
        for key in ("state_dict", "model"):
            if isinstance(state.get(key), dict):
                state = state[key]
                break
    if not isinstance(state, dict):
        raise ValueError(f"checkpoint {str(path)!r} holds a {type(state).__name__}, not a dict")
    net = EmotionNet(Encoder(), {t: len(c) for t, c in tasks.items()}, variant=variant)
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ValueError(
            f"checkpoint {str(path)!r} does not fit an EmotionNet with tasks "
            f"{ {t: len(c) for t, c in tasks.items()} } and variant {variant!r}: {exc}"
        ) from exc
    return net.eval()


def load_run_dir(run_dir: str | Path):
    """``(net, tasks, card fields)`` from a fine-tune run directory.

    The directory holds ``emotion.pt`` (read with
    :func:`~ecgaffect.model.finetune.load_emotion_net`) and ``config.json``; ``ecgaffect
    train`` also writes ``training_data.json`` (WindowSet fingerprint, label scheme,
    preprocessing). Card fields: ``label_scheme``, ``training_data``, ``preprocessing``
    (the training :class:`~ecgaffect.signal.PreprocessConfig`; the live pipeline uses its
    ``for_live()`` variant; :func:`input_fields` derives the card's input fields from it),
    ``demo`` (synthetic data) and ``notes``.
    """
    import re

    from ecgaffect.model.finetune import load_emotion_net

    d = Path(run_dir)
    if not d.is_dir():
        raise FileNotFoundError(f"--run-dir {str(d)!r} does not exist or is not a directory")
    for name in ("emotion.pt", "config.json"):
        if not (d / name).is_file():
            raise FileNotFoundError(
                f"--run-dir {str(d)!r} has no {name}; expected a finished fine-tune run "
                "(ecgaffect finetune / ecgaffect train write emotion.pt and config.json)"
            )
    config = _read_json_arg(str(d / "config.json"), "--run-dir config.json")
    net, tasks, info = load_emotion_net(d)
    data = (
        _read_json_arg(str(d / "training_data.json"), "--run-dir training_data.json")
        if (d / "training_data.json").is_file()
        else {}
    )
    description = str(config.get("data") or info.get("data") or "")
    scheme = data.get("label_scheme")
    if not scheme:
        m = re.search(r"label scheme (\w+)", description)
        scheme = m.group(1) if m else None
    preprocessing = data.get("preprocessing") or default_preprocessing()
    training_data = {
        "description": description,
        "mode": config.get("mode", ""),
        "n_train": config.get("n_train"),
        **{k: data[k] for k in ("fingerprint", "n_windows", "n_subjects", "datasets") if k in data},
        "finetune_config": config.get("config", {}),
    }
    synthetic = "synthetic" in (data.get("datasets") or []) or description.startswith("synthetic")
    notes = (
        "trained on synthetic ECG: a pipeline check, not affect data"
        if synthetic
        else "inputs normalised per subject in training; live use calibrates on the first "
        f"{preprocessing.get('calibration_s', 60)} s"
    )
    return (
        net,
        tasks,
        {
            "label_scheme": scheme,
            "training_data": training_data,
            "preprocessing": preprocessing,
            "demo": synthetic,
            "notes": notes,
        },
    )


def _metrics_arg(path: str | None) -> dict[str, Any]:
    """``--metrics``: an evaluation ``results.json`` is summarised for the card."""
    data = _read_json_arg(path, "--metrics")
    if "summary" in data and "protocol" in data and "kind" in data:
        from ecgaffect.model.evaluate import card_metrics

        return card_metrics(data)
    return data


def _read_json_arg(path: str | None, option: str) -> dict[str, Any]:
    if path is None:
        return {}
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{option} {str(p)!r} does not exist")
    try:
        data = json.loads(p.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{option} {str(p)!r} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{option} {str(p)!r} must hold a JSON object")
    return data


def default_preprocessing() -> dict[str, Any]:
    """``ecgaffect.signal.PreprocessConfig().to_dict()``."""
    from ecgaffect.signal import PreprocessConfig

    return PreprocessConfig().to_dict()


def input_fields(preprocessing: Mapping[str, Any]) -> dict[str, Any]:
    """The card's ``normalization``, ``fs_hz``, ``window_s`` and ``window_n`` from the
    preprocessing config (the card repeats them; :meth:`ModelCard.validate` checks they agree).
    """
    fs_hz = float(preprocessing.get("fs_hz", 256.0))
    window_s = float(preprocessing.get("window_s", 10.0))
    return {
        "normalization": str(preprocessing.get("normalization", "subject")),
        "fs_hz": fs_hz,
        "window_s": window_s,
        "window_n": round(fs_hz * window_s),
    }


def build_card(args: argparse.Namespace, tasks: dict[str, list[str]]) -> ModelCard:
    """Model card from the ``export`` options."""
    preprocessing = _read_json_arg(args.preprocessing, "--preprocessing") or (
        default_preprocessing()
    )
    return ModelCard(
        name=args.name,
        tasks=tasks,
        preprocessing=preprocessing,
        **input_fields(preprocessing),
        label_scheme=args.scheme,
        thresholds=parse_thresholds(args.threshold, tasks),
        training_data=_read_json_arg(args.training_data, "--training-data"),
        metrics=_read_json_arg(args.metrics, "--metrics"),
        demo=args.demo,
        notes=args.notes,
    )


def _format_for(path: Path) -> str:
    if path.suffix == ".pt2":
        return "pt2"
    if path.suffix in TORCHSCRIPT_SUFFIXES:
        return "torchscript"
    raise ValueError(
        f"--out {str(path)!r}: unknown model suffix {path.suffix!r}; use .pt2 (torch.export) "
        f"or one of {list(TORCHSCRIPT_SUFFIXES)} (TorchScript)"
    )


def cmd_export(args: argparse.Namespace) -> int:
    from ecgaffect.model.export import export_pt2, export_torchscript

    outs = [Path(p) for p in args.out]
    formats = [_format_for(p) for p in outs]
    if args.run_dir:
        net, tasks, fields = load_run_dir(args.run_dir)
        preprocessing = (
            _read_json_arg(args.preprocessing, "--preprocessing") or fields["preprocessing"]
        )
        card = ModelCard(
            name=args.name,
            tasks=tasks,
            preprocessing=preprocessing,
            **input_fields(preprocessing),
            label_scheme=fields["label_scheme"] or args.scheme,
            thresholds=parse_thresholds(args.threshold, tasks),
            training_data=_read_json_arg(args.training_data, "--training-data")
            or fields["training_data"],
            metrics=_metrics_arg(args.metrics),
            demo=args.demo or fields["demo"],
            notes=args.notes or fields["notes"],
        )
    else:
        if not args.checkpoint or not args.tasks:
            raise ValueError("export needs --checkpoint and --tasks (or --run-dir)")
        tasks = parse_tasks(args.tasks)
        net = load_checkpoint_net(args.checkpoint, tasks, args.variant)
        card = build_card(args, tasks)
    for path, fmt in zip(outs, formats, strict=True):
        (export_pt2 if fmt == "pt2" else export_torchscript)(net, card, path)
        print(f"wrote {fmt} model {card.name!r} to {path}")
    return 0


# -- model-info -----------------------------------------------------------------------------
def cmd_model_info(args: argparse.Namespace) -> int:
    from ecgaffect.model.export import read_card, sniff_format

    card = read_card(args.file)
    if args.json:
        print(card.to_json())
    else:
        print(f"file:           {args.file} ({sniff_format(args.file)})")
        print(card.summary())
    return 0


# -- score ----------------------------------------------------------------------------------
def read_recording(
    path: str | Path, fs_hz: float | None, column: str | None, units: str
) -> tuple[np.ndarray, float]:
    """ECG in µV and its rate via :func:`ecgaffect.io.load_session` (every recording format
    the project reads)."""
    from ecgaffect.io import load_session

    col: int | str | None = int(column) if column is not None and column.isdigit() else column
    session = load_session(path, fs_hz=fs_hz, channel=col, units=units)
    return session.ecg_uv(), float(session.fs_hz)


#: ``score --normalization`` choices: ``live`` = the windows the live pipeline scores
#: (``PreprocessConfig.for_live()``, causal calibrated z-score); ``subject`` = the paper's
#: training normalisation (whole-recording robust statistics).
SCORE_NORMALIZATIONS = ("live", "subject")


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
    config = sig.PreprocessConfig.from_dict(card.preprocessing)
    config = (
        config.for_live()
        if normalization == "live"
        else dataclasses.replace(config, normalization="subject")
    )
    x = sig.preprocess_ecg(ecg, fs_hz, config=config)
    windows, starts = sig.make_windows(x, fs_hz=card.fs_hz, window_s=card.window_s, hop_s=hop_s)
    return np.asarray(windows, dtype=np.float32), np.asarray(starts) / card.fs_hz


def score_table(
    scorer, windows: np.ndarray, start_s: np.ndarray, *, progress: bool = True
) -> dict[str, np.ndarray]:
    """Score ``windows`` in the scorer's batches → column table.

    Columns: ``window_start_s``, ``window_end_s``, ``{task}_p_{class}`` for every class and
    ``{task}_pred`` (predicted class name: card threshold for binary tasks, else argmax).
    """
    from tqdm.auto import tqdm

    card = scorer.card
    n = len(windows)
    if len(start_s) != n:
        raise ValueError(f"{n} windows but {len(start_s)} start times")
    outputs = np.empty((n, card.n_outputs), dtype=np.float32)
    bs = scorer.batch_size
    with tqdm(total=n, unit="win", desc="scoring", disable=not progress) as bar:
        for a in range(0, n, bs):
            outputs[a : a + bs] = scorer.score_outputs(windows[a : a + bs], fs_hz=card.fs_hz)
            bar.update(min(bs, n - a))
    table: dict[str, np.ndarray] = {
        "window_start_s": np.asarray(start_s, dtype=np.float64),
        "window_end_s": np.asarray(start_s, dtype=np.float64) + card.window_s,
    }
    for task, probs in card.split_outputs(outputs).items():
        classes = card.classes(task)
        for j, cls in enumerate(classes):
            table[f"{task}_p_{cls}"] = probs[:, j]
        table[f"{task}_pred"] = np.asarray(classes, dtype=object)[card.decide(task, probs)]
    return table


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


def cmd_score(args: argparse.Namespace) -> int:
    from ecgaffect.model.scorer import Scorer

    outs = [Path(p) for p in args.out]
    for p in outs:
        if p.suffix not in (".csv", ".parquet"):
            raise ValueError(f"--out {str(p)!r}: use a .csv or .parquet file name")
    scorer = Scorer.load(args.model, device=args.device, batch_size=args.batch_size)
    ecg, fs_hz = read_recording(args.recording, args.fs_hz, args.column, args.units)
    windows, start_s = preprocess_windows(
        ecg, fs_hz, scorer.card, hop_s=args.hop, normalization=args.normalization
    )
    if len(windows) == 0:
        raise ValueError(
            f"recording {args.recording!r} ({len(ecg) / fs_hz:.1f} s) is shorter than one "
            f"{scorer.card.window_s:g} s window"
        )
    table = score_table(scorer, windows, start_s, progress=not args.no_progress)
    for p in outs:
        write_table(table, p)
        print(f"wrote {len(windows)} scored windows to {p}")
    return 0


# -- registration ---------------------------------------------------------------------------
def register(sub: argparse._SubParsersAction) -> None:
    """Add ``export``, ``model-info`` and ``score`` to the ``ecgaffect`` command line."""
    from ecgaffect.cli import HelpFormatter

    p = sub.add_parser(
        "export",
        help="export a trained model (.pt2 / TorchScript) with its model card",
        description=__doc__,
        formatter_class=HelpFormatter,
    )
    src = p.add_mutually_exclusive_group()
    src.add_argument(
        "--run-dir",
        help="fine-tune run directory (emotion.pt + config.json); tasks, label scheme, "
        "training data and preprocessing come from it",
    )
    src.add_argument("--checkpoint", help="EmotionNet state dict (.pt), loaded weights_only")
    p.add_argument("--tasks", nargs="+", default=[], metavar="TASK=C1,C2", help="task classes")
    p.add_argument("--variant", default="swell", help="head variant: swell/wesad/amigos/dreamer")
    p.add_argument(
        "-o", "--out", nargs="+", required=True, help="output file(s): .pt2 and/or .ts/.pt"
    )
    p.add_argument("--name", required=True, help="model name written to the card")
    p.add_argument("--scheme", default="binary", help="label scheme the classes come from")
    p.add_argument(
        "--threshold", nargs="*", default=[], metavar="TASK=P", help="binary decision thresholds"
    )
    p.add_argument("--preprocessing", help="JSON file of the PreprocessConfig used in training")
    p.add_argument("--training-data", help="JSON file describing the training data")
    p.add_argument(
        "--metrics",
        help="JSON file of evaluation metrics (with 'protocol'), or an evaluation results.json",
    )
    p.add_argument("--demo", action="store_true", help="mark as demo: not validated for affect")
    p.add_argument("--notes", default="", help="limits and caveats")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser(
        "model-info", help="print an exported model's card", formatter_class=HelpFormatter
    )
    p.add_argument("file", help=".pt2 or TorchScript model")
    p.add_argument("--json", action="store_true", help="print the raw card JSON")
    p.set_defaults(func=cmd_model_info)

    p = sub.add_parser(
        "score",
        help="score a whole recording offline → CSV/Parquet time series",
        formatter_class=HelpFormatter,
    )
    p.add_argument("recording", help="ECG recording (any format ecgaffect.io.load_session reads)")
    p.add_argument("--model", required=True, help=".pt2 or TorchScript model")
    p.add_argument("-o", "--out", nargs="+", required=True, help="OUT.csv and/or OUT.parquet")
    p.add_argument("--fs-hz", type=float, help="sampling rate of a .npy/.csv recording")
    p.add_argument("--column", help="ECG column (name or index) of a multi-column recording")
    p.add_argument("--units", default="uV", help="units of the ECG samples (uV, mV, V, au)")
    p.add_argument("--hop", type=float, default=10.0, help="hop between windows in seconds")
    p.add_argument(
        "--normalization",
        choices=SCORE_NORMALIZATIONS,
        default="live",
        help="live: the same windows the live pipeline scores (causal calibration on the "
        "first minute); subject: whole-recording robust statistics, as in training",
    )
    p.add_argument("--batch-size", type=int, default=64, help="windows per forward pass")
    p.add_argument("--device", default="cpu", help="torch device")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_score)
