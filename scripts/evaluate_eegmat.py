"""Stress on EEGMAT, subject-independent, every row and both protocols -> docs/results/.

    python scripts/evaluate_eegmat.py --root ../shared/data/eegmat \
        --encoder runs/pretrain-qtdb/checkpoint.pt --out docs/results/eegmat_stress

The EEGMAT ECG (500 Hz) is routed through the Polar H10's 130 Hz (resampled to 130 Hz, then by
the ordinary signal path to 256 Hz), so the numbers hold for the bandwidth of the strap the live
product meets. Windows: 10 s, hop 5 s, the live normalisation (robust statistics of the first
60 s, frozen). Writes ``results.json``, ``scores.npz``, ``report.md`` and
``label_fraction.png`` in ``--out``.
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

from ecgaffect.datasets.eegmat import load_sessions
from ecgaffect.datasets.windows import make_windowset
from ecgaffect.model.pretrain import load_encoder
from ecgaffect.model.stress_eval import run
from ecgaffect.signal import PreprocessConfig, resample_ecg

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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--root", type=Path, required=True, help="EEGMAT folder")
    ap.add_argument("--encoder", type=Path, required=True, help="encoder.pt / checkpoint.pt")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--encoder-data", default="", help="what the encoder was pretrained on")
    ap.add_argument("--fs-epochs", type=int, default=5, help="fully-supervised CNN epochs")
    ap.add_argument("--fs-folds", type=int, default=4)
    ap.add_argument("--dense-epochs", type=int, default=200)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    sessions = [through_strap(s) for s in load_sessions(args.root)]
    ws = make_windowset(
        sessions,
        tasks=["stress"],
        scheme="condition",
        hop_s=5.0,
        config=PreprocessConfig(normalization="calibrated"),
        progress=False,
    )
    encoder, meta = load_encoder(args.encoder)
    hist = meta.get("history") or []
    val = hist[-1].get("val_recognition_acc") if hist else None
    epochs = meta.get("epochs_trained", len(hist) or None)
    enc_desc = (
        f"{args.encoder.name}: pretrained on "
        f"{args.encoder_data or meta.get('data') or 'unknown data'}"
        + (f"; checkpoint after {epochs} epochs" if epochs else "")
        + (f", held-out pretext recognition {val:.3f}" if val is not None else "")
    )
    res = run(
        ws,
        encoder,
        args.out,
        encoder_description=enc_desc,
        data_description=(
            f"EEGMAT ({len(sessions)} subjects; ECG lead 500 Hz routed through {STRAP_FS_HZ:g} Hz "
            "then 256 Hz; rest ~180 s then serial subtraction ~60 s)"
        ),
        fs_epochs=args.fs_epochs,
        fs_folds=args.fs_folds,
        dense_epochs=args.dense_epochs,
    )
    command = "python scripts/evaluate_eegmat.py " + shlex.join(
        sys.argv[1:] if argv is None else argv
    )
    write_report(res, args.out, command)
    print(f"wrote {args.out}/report.md in {time.perf_counter() - t0:.0f} s")
    print(
        json.dumps(
            {
                n: {p: round(r[p]["balanced_accuracy"], 3) for p in ("population", "personal")}
                for n, r in res["rows"].items()
            },
            indent=1,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
