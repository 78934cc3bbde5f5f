"""Training workflows that chain the stages: ``ecgaffect train`` and ``demo --train``.

:func:`run_train` is the one workflow for users with real data: pretrain on all windows →
fine-tune the heads on all labelled windows → evaluate subject-independently → export
``model.safetensors`` whose card carries the evaluation metrics → report. Every
stage resumes: rerun the same call after an interruption.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from ecgaffect.datasets.windows import WindowSet
    from ecgaffect.model.evaluate import EvalConfig

__all__ = [
    "VARIANT_FOR_DATASET",
    "DemoTrainResult",
    "TrainResult",
    "demo_train",
    "run_train",
    "split_by_subject",
    "variant_for",
]

log = logging.getLogger(__name__)

#: Dense-stack variant of the emotion heads for each data source.
VARIANT_FOR_DATASET = {
    "swell": "swell",
    "wesad": "wesad",
    "amigos": "amigos",
    "dreamer": "dreamer",
    "synthetic": "swell",
    "recording": "swell",
}


def variant_for(dataset: str) -> str:
    """The head variant for ``dataset`` (``swell`` for sources without their own)."""
    return VARIANT_FOR_DATASET.get(dataset, "swell")


def split_by_subject(
    ws: WindowSet, fraction: float, seed: int
) -> tuple[WindowSet, WindowSet | None]:
    """``(train, val)``: a seeded ``fraction`` of the subjects held out (``None`` for none).

    No split when ``fraction <= 0`` or there are fewer than two subjects; at least one
    subject is held out and at least one kept.
    """
    subjects = np.unique(ws.subject)
    if fraction <= 0 or len(subjects) < 2:
        return ws, None
    n_val = max(1, int(round(len(subjects) * fraction)))
    n_val = min(n_val, len(subjects) - 1)
    val_subjects = np.random.default_rng([seed, 31]).choice(subjects, n_val, replace=False)
    is_val = np.isin(ws.subject, val_subjects)
    return ws.subset(np.flatnonzero(~is_val)), ws.subset(np.flatnonzero(is_val))


@dataclass
class TrainResult:
    """What :func:`run_train` wrote (``paths``) and the evaluation results."""

    paths: dict[str, Path]
    results: dict[str, Any]


def run_train(
    ws: WindowSet,
    config: EvalConfig,
    out: Path,
    *,
    description: str,
    dataset: str,
    data_info: Mapping[str, Any],
    name: str | None = None,
    shared_encoder: bool = False,
    paper: Mapping[str, Any] | None = None,
    run_options: Mapping[str, Any] | None = None,
    progress: bool = True,
    on_stage: Callable[[str], None] = log.info,
) -> TrainResult:
    """Pretrain → fine-tune → evaluate → export → report into ``out``.

    Args:
        ws: the labelled windows (all of them: pretraining uses every window).
        config: the evaluation (protocol, folds) and both training stages.
        out: run directory (``pretrain/``, ``finetune/``, ``evaluation/``, the models).
        description: what the data is, for the run files and the card.
        dataset: the dataset's name (the card's default name is ``DATASET-ssl``).
        data_info: :func:`~ecgaffect.datasets.selection.data_info` of ``ws``.
        name: model name in the card.
        shared_encoder: evaluate with the encoder pretrained on all windows (test subjects
            were seen in pretraining; the report says so) instead of per-fold pretraining.
        paper: the paper's numbers to set beside ours in the report.
        run_options: the options of the run, saved in the report's ``config.json``.
        progress: progress bars.
        on_stage: called with a line as each of the five stages starts.

    Returns:
        The written paths (``model``, ``report``, ``results``, ``run``) and
        the evaluation results.
    """
    from ecgaffect.model.evaluate import card_metrics, describe_windowset, ssl_vs_baseline
    from ecgaffect.model.export import build_card, export_model, load_run_dir
    from ecgaffect.model.finetune import finetune
    from ecgaffect.model.pretrain import pretrain
    from ecgaffect.model.report import write_report

    if ws.preprocessing is None or not ws.label_scheme:
        raise ValueError(
            "the window set records no preprocessing or label scheme (WindowSet.preprocessing, "
            "WindowSet.label_scheme); build it with make_windowset so the model card can "
            "say what the model expects"
        )
    out.mkdir(parents=True, exist_ok=True)
    data = describe_windowset(ws)
    data["description"] = description

    on_stage(f"[1/5] pretraining on all {len(ws)} windows → {out / 'pretrain'}")
    encoder = pretrain(
        ws.x,
        config.pretrain,
        out / "pretrain",
        progress=progress,
        data_description=description,
        data_info=dict(data_info),
    ).encoder
    labelled = np.flatnonzero(np.stack([ws.labels[t] >= 0 for t in ws.tasks], axis=1).any(axis=1))
    on_stage(f"[2/5] fine-tuning heads on {len(labelled)} labelled windows → {out / 'finetune'}")
    ft_dir = out / "finetune"
    ft_dir.mkdir(parents=True, exist_ok=True)
    (ft_dir / "training_data.json").write_text(json.dumps(data, indent=2, default=str))
    finetune(
        ws.subset(labelled),
        encoder,
        config.finetune,
        ft_dir,
        tasks=list(config.tasks) if config.tasks else None,
        progress=progress,
        data_description=f"{description}; label scheme {data['label_scheme']}",
        data_info=dict(data_info),
    )

    eval_dir = out / "evaluation"
    if shared_encoder:
        config = dataclasses.replace(
            config,
            encoder_path=str(out / "pretrain" / "encoder.pt"),
            encoder_note="all windows of this run, test folds included",
        )
    on_stage(f"[3/5] evaluating ({config.protocol}) → {eval_dir}")
    results = ssl_vs_baseline(ws, config, eval_dir, data_description=description, progress=progress)

    on_stage("[4/5] exporting")
    net, tasks, fields = load_run_dir(ft_dir)
    card = build_card(
        name=name or f"{dataset}-ssl",
        tasks=tasks,
        preprocessing=fields["preprocessing"],
        label_scheme=fields["label_scheme"],
        training_data=fields["training_data"],
        metrics=card_metrics(results),
        demo=fields["demo"],
        notes=fields["notes"],
    )
    paths = {"model": out / "model.safetensors"}
    export_model(net, card, paths["model"])

    on_stage("[5/5] report")
    written = write_report(
        eval_dir,
        results,
        {
            "evaluation": config.to_dict(),
            "cli": dict(run_options or {}),
            "data_info": dict(data_info),
        },
        paper=paper,
        extra=[f"exported model: {p}" for p in paths.values()],
    )
    paths.update(report=written["html"], results=written["results"], run=out)
    return TrainResult(paths=paths, results=results)


@dataclass
class DemoTrainResult:
    """Final metrics of :func:`demo_train`'s two stages."""

    n_sessions: int
    n_windows: int
    pretrain_final: dict[str, Any]
    finetune_final: dict[str, dict[str, Any]]
    has_val: bool


def demo_train(
    out: Path,
    *,
    epochs: int = 6,
    subjects: int = 8,
    on_stage: Callable[[str], None] = log.info,
) -> DemoTrainResult:
    """Pretrain briefly on synthetic ECG, then fine-tune with held-out subjects.

    A learnability check of the pipeline, not evidence about emotions. Writes
    ``out/pretrain`` and ``out/finetune``.
    """
    from ecgaffect.datasets.synthetic import make_synthetic_sessions
    from ecgaffect.datasets.windows import make_windowset
    from ecgaffect.model.finetune import FinetuneConfig, finetune
    from ecgaffect.model.pretrain import PretrainConfig, pretrain

    sessions = make_synthetic_sessions(subjects, duration_s=120.0, seed=0)
    ws = make_windowset(sessions, tasks=["arousal", "valence"], scheme="binary", hop_s=10.0)
    on_stage(f"{len(sessions)} sessions -> {len(ws)} windows of 10 s")
    pre = pretrain(
        ws.x,
        PretrainConfig(epochs=epochs, batch_size=32, val_fraction=0.2),
        out / "pretrain",
        resume=False,
    )
    train, val = split_by_subject(ws, 0.25, seed=1)
    ft = finetune(
        train,
        pre.encoder,
        FinetuneConfig(epochs=100, batch_size=32),
        out / "finetune",
        val=val,
        resume=False,
    )
    return DemoTrainResult(
        n_sessions=len(sessions),
        n_windows=len(ws),
        pretrain_final=dict(pre.final),
        finetune_final=dict.fromkeys(ft.tasks, ft.final),
        has_val=val is not None,
    )
