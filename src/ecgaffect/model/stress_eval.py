"""Stress (rest vs mental arithmetic) on EEGMAT: every row of issue 11's table, reproducibly.

:func:`run` takes a labelled :class:`~ecgaffect.datasets.windows.WindowSet` (task ``stress``),
a pretrained encoder and an output folder, and writes ``results.json`` and ``report.md`` with:

1. HRV features (:func:`~ecgaffect.model.baselines.hrv_features`) + logistic regression;
2. the fully-supervised CNN (the paper's conv stack + dense head trained end to end from random
   initialisation) — on a CPU this row is trained on subject-grouped k-fold (not LOSO) with few
   epochs; the report says which;
3. the self-supervised CNN: frozen pretrained encoder + the paper's dense head;
4. a random frozen encoder (Glorot init, never trained) + the same head: the control;
5. SSL embedding + HRV features (logistic regression).

Each under the **population** and **personal-baseline** protocols of
:mod:`ecgaffect.model.compare`, leave-one-subject-out, calibration windows unscored; plus the
labelled-data experiment (a random subset of the training subjects keeps its labels).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ecgaffect.model.baselines import HRV_FEATURES, calibration_mask, hrv_features
from ecgaffect.model.compare import PROTOCOLS, Row, compare_rows, fit_predict, score_metrics
from ecgaffect.model.evaluate import leave_one_subject_out, subject_kfold
from ecgaffect.model.networks import HEAD_VARIANTS, EmotionHead, Encoder
from ecgaffect.signal import resample_ecg

__all__ = [
    "eegmat_stress_windows",
    "embed_windows",
    "evaluate_eegmat",
    "fully_supervised_scores",
    "label_fraction_curve",
    "run",
    "through_strap",
    "write_report",
]

log = logging.getLogger(__name__)

DEFAULT_FRACTIONS = (0.05, 0.10, 0.25, 0.50, 1.00)


@torch.inference_mode()
def embed_windows(encoder: Encoder, x: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """``[n, 128]`` frozen-encoder embeddings of ``[n, 2560]`` windows."""
    encoder.eval()
    out = [
        encoder(torch.from_numpy(np.asarray(x[i : i + batch_size], np.float32)).unsqueeze(1))
        .float()
        .numpy()
        for i in range(0, x.shape[0], batch_size)
    ]
    return np.concatenate(out) if out else np.zeros((0, 128), np.float32)


def _train_cnn(x, y, *, epochs: int, seed: int, batch_size: int = 32):
    torch.manual_seed(seed)
    enc = Encoder()
    head = EmotionHead(2, HEAD_VARIANTS["swell"])
    params = list(enc.parameters()) + list(head.parameters())
    opt = torch.optim.Adam(params, lr=1e-3)
    counts = np.bincount(y, minlength=2).astype(np.float64)
    w_class = torch.as_tensor(len(y) / (2.0 * np.maximum(counts, 1.0)), dtype=torch.float32)
    gen = np.random.default_rng(seed)
    enc.train()
    head.train()
    for _ in range(epochs):
        order = gen.permutation(len(y))
        for b in range(0, len(y), batch_size):
            idx = np.sort(order[b : b + batch_size])
            xb = torch.from_numpy(np.asarray(x[idx], np.float32)).unsqueeze(1)
            yb = torch.as_tensor(y[idx], dtype=torch.int64)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                logits = head(enc(xb))
            loss = nn.functional.binary_cross_entropy_with_logits(
                logits.float(),
                nn.functional.one_hot(yb, 2).float(),
                weight=w_class[yb].unsqueeze(1),
            )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    enc.eval()
    head.eval()
    return enc, head


def fully_supervised_scores(
    x: np.ndarray,
    y: np.ndarray,
    subject: np.ndarray,
    calibration: np.ndarray,
    folds: Sequence[tuple[np.ndarray, np.ndarray]],
    *,
    epochs: int,
    train_stride: int = 1,
    seed: int = 1,
    progress: Callable[[str], None] | None = None,
) -> dict[str, np.ndarray]:
    """Out-of-fold P(stress) of the CNN trained end to end, under both protocols.

    Population: the network's own head. Personal baseline: the trained network's 128-d
    embeddings taken relative to each subject's calibration mean, then a logistic regression
    fitted on the training subjects' relative embeddings (the same rule as every other row).
    ``train_stride`` keeps every n-th training window (CPU budget).
    """
    from ecgaffect.model.baselines import relative_to_baseline

    p_pop = np.full(len(y), np.nan)
    p_per = np.full(len(y), np.nan)
    for k, (tr, te) in enumerate(folds):
        t0 = time.perf_counter()
        tr_fit = tr[::train_stride]
        enc, head = _train_cnn(x[tr_fit], y[tr_fit], epochs=epochs, seed=seed + k)
        emb = embed_windows(enc, x)
        with torch.inference_mode():
            p = torch.sigmoid(head(torch.from_numpy(emb[te]))).numpy()
        p_pop[te] = p[:, 1] / np.clip(p.sum(axis=1), 1e-12, None)
        rel = relative_to_baseline(emb, subject, calibration)
        p_per[te] = fit_predict("logreg", rel[tr], y[tr], rel[te])
        if progress is not None:
            progress(
                f"fully-supervised fold {k + 1}/{len(folds)}: {time.perf_counter() - t0:.0f} s"
            )
    p_pop[calibration] = np.nan
    p_per[calibration] = np.nan
    return {"population": p_pop, "personal": p_per}


def label_fraction_curve(
    rows: Sequence[Row],
    y: np.ndarray,
    subject: np.ndarray,
    calibration: np.ndarray,
    folds: Sequence[tuple[np.ndarray, np.ndarray]],
    *,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    protocol: str = "personal",
    seed: int = 1,
    dense_epochs: int = 200,
) -> dict[str, dict[str, float]]:
    """Balanced accuracy vs the fraction of *training subjects* whose labels are kept.

    Per fold, a seeded random subset (at least 2 subjects, both classes present by
    construction: every EEGMAT subject has rest and task) of the training subjects keeps its
    windows; the rest are dropped (labels and windows both: the heads train on labelled data).
    """
    from ecgaffect.model.baselines import relative_to_baseline

    scored = ~np.asarray(calibration, bool)
    out: dict[str, dict[str, float]] = {}
    for row in rows:
        assert row.features is not None
        feats = row.features
        if protocol == "personal":
            feats = relative_to_baseline(feats, subject, calibration)
        out[row.name] = {}
        for frac in fractions:
            p_all = np.full(len(y), np.nan)
            for k, (tr, te) in enumerate(folds):
                subs = np.unique(subject[tr])
                rng = np.random.default_rng([seed, k, int(round(frac * 1000))])
                n_keep = max(2, int(round(frac * len(subs))))
                keep = set(rng.choice(subs, n_keep, replace=False).tolist())
                tr_k = tr[np.isin(subject[tr], list(keep))]
                te = te[scored[te]]
                p_all[te] = fit_predict(
                    row.classifier,
                    feats[tr_k],
                    y[tr_k],
                    feats[te],
                    seed=seed + k,
                    dense_epochs=dense_epochs,
                )
            m = scored & np.isfinite(p_all)
            out[row.name][f"{frac:g}"] = score_metrics(y[m], p_all[m], subject[m])[
                "balanced_accuracy"
            ]
    return out


def run(
    ws: Any,
    encoder: Encoder,
    out_dir: str | Path,
    *,
    encoder_description: str,
    data_description: str,
    task: str = "stress",
    calibration_s: float = 60.0,
    fs_epochs: int = 5,
    fs_folds: int = 4,
    fs_train_stride: int = 2,
    dense_epochs: int = 200,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    seed: int = 1,
    progress: Callable[[str], None] | None = print,
) -> dict[str, Any]:
    """Run every row and protocol; write ``results.json`` (see the module docstring)."""
    t_start = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if task not in ws.labels:
        raise ValueError(f"the window set has no task {task!r}; tasks: {list(ws.labels)}")
    keep = np.asarray(ws.labels[task]) >= 0
    ws = ws.subset(keep)
    y = np.asarray(ws.labels[task], dtype=np.int64)
    subject = np.asarray(ws.subject)
    window_s = float(ws.x.shape[1]) / 256.0
    cal = calibration_mask(ws.session, ws.start_s, window_s, calibration_s)
    loso = [(f.train_idx, f.test_idx) for f in leave_one_subject_out(subject)]
    say = progress or (lambda _msg: None)

    say(f"{len(ws)} windows, {len(np.unique(subject))} subjects, {int((~cal).sum())} scored")
    hrv = hrv_features(ws.x, 256.0)
    ssl = embed_windows(encoder, ws.x)
    torch.manual_seed(seed)
    rand = embed_windows(Encoder(), ws.x)
    rows = [
        Row(
            "HRV features + logistic regression",
            hrv,
            "logreg",
            description=f"neurokit2 R-peaks, artefact-rejected RR; {', '.join(HRV_FEATURES)}",
        ),
        Row(
            "self-supervised CNN (frozen encoder + dense head)",
            ssl,
            "dense",
            description=encoder_description,
        ),
        Row(
            "random frozen encoder + dense head",
            rand,
            "dense",
            description="Glorot-initialised encoder, never trained (control)",
        ),
        Row(
            "SSL embedding + HRV + logistic regression",
            np.hstack([ssl, hrv]),
            "logreg",
            description="the SSL embedding and the HRV features side by side",
        ),
        Row(
            "SSL embedding + logistic regression",
            ssl,
            "logreg",
            description="frozen encoder, linear probe",
        ),
    ]
    results: dict[str, Any] = {
        "task": task,
        "classes": ws.classes[task],
        "data": data_description,
        "n_windows": int(len(ws)),
        "n_scored": int((~cal).sum()),
        "n_subjects": int(len(np.unique(subject))),
        "calibration_s": calibration_s,
        "hop_s": ws.meta.get("hop_s"),
        "encoder": encoder_description,
        "protocols": {
            "population": "nothing known about the test subject",
            "personal": f"features relative to the subject's first {calibration_s:g} s of rest",
        },
        "folds": "leave-one-subject-out",
        "rows": {},
    }
    loso_res = compare_rows(
        rows, y, subject, cal, loso, seed=seed, dense_epochs=dense_epochs, progress=say
    )
    for row in rows:
        results["rows"][row.name] = {
            "description": row.description,
            "classifier": row.classifier,
            "folds": "leave-one-subject-out",
            **{p: {k: v for k, v in loso_res[row.name][p].items() if k != "p"} for p in PROTOCOLS},
        }

    # The fully-supervised CNN: subject-grouped k-fold (CPU budget), and the same folds for
    # the cheap rows so that it has an apples-to-apples comparison.
    kf = [(f.train_idx, f.test_idx) for f in subject_kfold(subject, fs_folds, seed)]
    if fs_epochs > 0:
        fs = fully_supervised_scores(
            ws.x,
            y,
            subject,
            cal,
            kf,
            epochs=fs_epochs,
            train_stride=fs_train_stride,
            seed=seed,
            progress=say,
        )
        fs_row = Row("fully-supervised CNN", scores=fs)
        same_folds = compare_rows(
            [fs_row, *rows], y, subject, cal, kf, seed=seed, dense_epochs=dense_epochs, progress=say
        )
        results["subject_kfold"] = {
            "n_folds": fs_folds,
            "fully_supervised": {"epochs": fs_epochs, "train_stride": fs_train_stride},
            "rows": {
                name: {
                    p: {k: v for k, v in r[p].items() if k not in ("p", "per_subject")}
                    for p in PROTOCOLS
                }
                for name, r in same_folds.items()
            },
        }
    results["label_fraction"] = {
        "protocol": "personal",
        "folds": "leave-one-subject-out",
        "fractions": list(fractions),
        "classifier": "logreg (linear probes; dense heads 28 x 5 times exceed the CPU budget)",
        "balanced_accuracy": label_fraction_curve(
            [
                rows[0],
                Row("SSL embedding + logistic regression", ssl, "logreg"),
                Row("random frozen encoder + logistic regression", rand, "logreg"),
            ],
            y,
            subject,
            cal,
            loso,
            fractions=fractions,
            seed=seed,
            dense_epochs=dense_epochs,
        ),
    }
    results["seconds"] = time.perf_counter() - t_start
    (out / "results.json").write_text(json.dumps(results, indent=1))
    np.savez_compressed(
        out / "scores.npz",
        y=y,
        subject=subject,
        calibration=cal,
        **{
            f"p_{i}_{p}": np.asarray(loso_res[r.name][p]["p"])
            for i, r in enumerate(rows)
            for p in PROTOCOLS
        },
    )
    return results


# -- the EEGMAT evaluation end to end (ecgaffect evaluate stress, scripts/evaluate_eegmat.py)
STRAP_FS_HZ = 130.0


def through_strap(session, fs_hz: float = STRAP_FS_HZ):
    """The session as a strap at ``fs_hz`` would have sampled it."""
    return replace(session, ecg=resample_ecg(session.ecg, session.fs_hz, fs_hz), fs_hz=fs_hz)


def _fmt(m: dict, key: str = "balanced_accuracy") -> str:
    return f"{m[key]:.3f}"


def _spread(m: dict) -> str:
    s = m["per_subject_balanced_accuracy"]
    return f"{s['mean']:.3f} ± {s['std']:.3f} ({s['min']:.2f}–{s['max']:.2f})"


def write_report(res: dict, out: Path, command: str) -> None:
    lines = [
        "# Stress (rest vs mental arithmetic) on EEGMAT, subject-independent",
        "",
        f"Produced by `{command}` in {res['seconds'] / 60:.1f} min on 2 CPU cores.",
        "",
        "## Data and protocol",
        "",
        f"- **Data:** {res['data']}",
        f"- {res['n_subjects']} subjects, {res['n_windows']} windows of 10 s (hop "
        f"{res['hop_s']} s), {res['n_scored']} scored. Classes: {res['classes']}.",
        "- **Folds:** leave-one-subject-out (the test subject is in nothing the classifier saw; "
        "the encoder was pretrained on QTDB only, so no EEGMAT subject was in pretraining).",
        f"- **Calibration:** the first {res['calibration_s']:g} s of each session (rest) are the "
        "live calibration period: windows that end inside it are never scored, in both "
        "protocols, so both protocols are judged on the same windows.",
        "- **population:** nothing known about the test subject (beyond the amplitude "
        "normalisation of the live calibration minute, which every row gets).",
        "- **personal baseline:** every feature vector / embedding is taken relative to the "
        "subject's mean over their calibration windows (`ecgaffect.model.baselines`).",
        "- **Metrics:** balanced accuracy at p = 0.5 and AUROC over all scored windows pooled; "
        "per-subject balanced accuracy mean ± sd (min–max); confusion matrices [true][pred] "
        "with classes [rest, arithmetic].",
        f"- **Encoder:** {res['encoder']}",
        "",
        "## Leave-one-subject-out",
        "",
        "| model | population bal. acc | population AUROC | personal bal. acc | personal AUROC "
        "| personal per-subject bal. acc | personal confusion |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in res["rows"].items():
        pop, per = r["population"], r["personal"]
        lines.append(
            f"| {name} | {_fmt(pop)} | {_fmt(pop, 'auroc')} | {_fmt(per)} | "
            f"{_fmt(per, 'auroc')} | {_spread(per)} | {per['confusion']} |"
        )
    if "subject_kfold" in res:
        kf = res["subject_kfold"]
        fsd = kf["fully_supervised"]
        lines += [
            "",
            f"## Subject-grouped {kf['n_folds']}-fold (with the fully-supervised CNN)",
            "",
            "Training the CNN end to end 28 times does not fit a 2-core CPU budget, so the "
            f"fully-supervised CNN is trained on {kf['n_folds']} subject-grouped folds, "
            f"{fsd['epochs']} epochs (the paper: 200), on one in {fsd['train_stride']} training "
            "windows, Adam 1e-3, batch 32, class-weighted BCE, bf16 autocast. Every other row is "
            "rerun on the same folds here for an apples-to-apples comparison.",
            "",
            "| model | population bal. acc | population AUROC | personal bal. acc | "
            "personal AUROC |",
            "|---|---|---|---|---|",
        ]
        for name, r in kf["rows"].items():
            pop, per = r["population"], r["personal"]
            lines.append(
                f"| {name} | {_fmt(pop)} | {_fmt(pop, 'auroc')} | {_fmt(per)} | "
                f"{_fmt(per, 'auroc')} |"
            )
    lf = res["label_fraction"]
    lines += [
        "",
        "## Labelled-data experiment (personal baseline, LOSO)",
        "",
        "Balanced accuracy when only a random fraction of the training subjects keeps its "
        "labelled windows (at least 2 subjects). Linear probes (logistic regression) on each "
        "feature set; the fully-supervised CNN and the dense heads are left out of this curve "
        "for CPU budget (each would be trained 28 × 5 times).",
        "",
        "| model | " + " | ".join(f"{float(f):.0%}" for f in lf["fractions"]) + " |",
        "|---|" + "---|" * len(lf["fractions"]),
    ]
    for name, curve in lf["balanced_accuracy"].items():
        lines.append(f"| {name} | " + " | ".join(f"{v:.3f}" for v in curve.values()) + " |")
    lines += [
        "",
        "![labelled-data curve](label_fraction.png)",
        "",
        "## Licences and citations",
        "",
        "- EEGMAT: Zyma I, Tukaev S, Seleznov I, Kiyono K, Popov A, Chernykh M, Shpenkov O. "
        "Electroencephalograms during Mental Arithmetic Task Performance. *Data* 4(1):14, 2019. "
        "ODC-By 1.0 (PhysioNet / NEMAR nm000109).",
        "- QT Database (pretraining): Laguna P, Mark RG, Goldberger AL, Moody GB. A Database "
        "for Evaluation of Algorithms for Measurement of QT and Other Waveform Intervals in the "
        "ECG. *Computers in Cardiology* 24:673–676, 1997. ODC-By 1.0.",
        "- PhysioNet: Goldberger AL et al. *Circulation* 101(23):e215–e220, 2000.",
        "- Method: Sarkar P, Etemad A. Self-supervised ECG representation learning for emotion "
        "recognition. IEEE Trans. Affective Computing (arXiv 2002.03898).",
        "",
    ]
    (out / "report.md").write_text("\n".join(lines))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 4))
        for name, curve in lf["balanced_accuracy"].items():
            ax.plot([float(f) * 100 for f in curve], list(curve.values()), marker="o", label=name)
        ax.set_xscale("log")
        ax.set_xlabel("training subjects with labels (%)")
        ax.set_ylabel("balanced accuracy (LOSO, personal baseline)")
        ax.axhline(0.5, color="grey", lw=0.5)
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out / "label_fraction.png", dpi=120)
    except ImportError:
        pass


def eegmat_stress_windows(root: str | Path) -> tuple[list[Any], Any]:
    """EEGMAT sessions through the strap's bandwidth and their 10 s windows (5 s hop,
    calibrated normalisation, task ``stress``): the windows every EEGMAT evaluation uses.
    """
    from ecgaffect.datasets.eegmat import load_sessions
    from ecgaffect.datasets.windows import make_windowset
    from ecgaffect.signal import PreprocessConfig

    sessions = [through_strap(s) for s in load_sessions(root)]
    ws = make_windowset(
        sessions,
        tasks=["stress"],
        scheme="condition",
        hop_s=5.0,
        config=PreprocessConfig(normalization="calibrated"),
        progress=False,
    )
    return sessions, ws


def evaluate_eegmat(
    root: str | Path,
    encoder_path: str | Path,
    out: str | Path,
    *,
    encoder_data: str = "",
    fs_epochs: int = 5,
    fs_folds: int = 4,
    dense_epochs: int = 200,
    command: str = "",
    progress: Callable[[str], None] | None = print,
) -> dict[str, Any]:
    """Load EEGMAT from ``root``, window it through the strap's bandwidth, run every row and
    write ``report.md``, ``results.json``, ``scores.npz`` and ``label_fraction.png`` in ``out``.
    """
    from ecgaffect.model.pretrain import load_encoder

    out = Path(out)
    sessions, ws = eegmat_stress_windows(root)
    encoder, meta = load_encoder(encoder_path)
    hist = meta.get("history") or []
    val = hist[-1].get("val_recognition_acc") if hist else None
    epochs = meta.get("epochs_trained", len(hist) or None)
    enc_desc = (
        f"{Path(encoder_path).name}: pretrained on "
        f"{encoder_data or meta.get('data') or 'unknown data'}"
        + (f"; checkpoint after {epochs} epochs" if epochs else "")
        + (f", held-out pretext recognition {val:.3f}" if val is not None else "")
    )
    res = run(
        ws,
        encoder,
        out,
        encoder_description=enc_desc,
        data_description=(
            f"EEGMAT ({len(sessions)} subjects; ECG lead 500 Hz routed through {STRAP_FS_HZ:g} Hz "
            "then 256 Hz; rest ~180 s then serial subtraction ~60 s)"
        ),
        fs_epochs=fs_epochs,
        fs_folds=fs_folds,
        dense_epochs=dense_epochs,
        progress=progress,
    )
    write_report(res, out, command or "ecgaffect evaluate stress")
    return res
