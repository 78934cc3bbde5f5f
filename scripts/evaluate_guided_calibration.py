"""Offline evaluation of the guided-calibration protocol (issue 13 §3) on EEGMAT.

Within each subject, time-blocked (see :mod:`ecgaffect.model.personal_eval`): the early part of
the rest block and of the arithmetic block train a per-subject logistic regression, the rest of
each block (minus windows overlapping training ones) is tested. Feature sets: HRV features, a
random frozen encoder's embedding, and a pretrained encoder's embedding if ``--encoder`` is
given. Writes ``results.json`` and ``report.md``::

    python scripts/evaluate_guided_calibration.py --root ../shared/data/eegmat \
        --out docs/results/eegmat_guided_calibration
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch


def main(argv: list[str] | None = None) -> int:
    """Run the evaluation; 0 on success."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, required=True, help="EEGMAT folder")
    ap.add_argument("--out", type=Path, required=True, help="report folder")
    ap.add_argument("--encoder", type=Path, default=None, help="pretrained encoder.pt (optional)")
    ap.add_argument("--fractions", type=float, nargs="+", default=[0.25, 0.5])
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    from ecgaffect.model.baselines import hrv_features
    from ecgaffect.model.networks import Encoder
    from ecgaffect.model.personal_eval import within_subject_scores
    from ecgaffect.model.stress_eval import STRAP_FS_HZ, eegmat_stress_windows, embed_windows

    t0 = time.perf_counter()
    sessions, ws = eegmat_stress_windows(args.root)
    keep = np.asarray(ws.labels["stress"]) >= 0
    ws = ws.subset(keep)
    y = np.asarray(ws.labels["stress"], dtype=np.int64)
    window_s = ws.x.shape[1] / 256.0
    print(f"{len(ws)} windows, {len(set(ws.subject))} subjects", flush=True)
    features = {"HRV features": hrv_features(ws.x, 256.0)}
    torch.manual_seed(1)
    features["random frozen encoder embedding"] = embed_windows(Encoder(), ws.x)
    if args.encoder is not None:
        from ecgaffect.model.pretrain import load_encoder

        enc, _ = load_encoder(args.encoder)
        features[f"SSL embedding ({args.encoder.name})"] = embed_windows(enc, ws.x)
    res = within_subject_scores(
        features, y, np.asarray(ws.subject), np.asarray(ws.start_s), window_s,
        train_fractions=args.fractions,
    )  # fmt: skip
    seconds = time.perf_counter() - t0
    args.out.mkdir(parents=True, exist_ok=True)
    payload = {
        "protocol": "within-subject, time-blocked: the early part of each class block trains "
        "a per-subject logistic regression; the rest of the block, minus windows overlapping "
        "training windows, is tested",
        "data": f"EEGMAT ({len(sessions)} subjects), ECG through {STRAP_FS_HZ:g} Hz then 256 Hz, "
        "10 s windows, 5 s hop",
        "n_windows": int(len(ws)),
        "seconds": seconds,
        "results": res,
    }
    (args.out / "results.json").write_text(json.dumps(payload, indent=1))
    lines = [
        "# Guided calibration, evaluated offline on EEGMAT (within-subject, time-blocked)",
        "",
        f"Produced in {seconds / 60:.1f} min on 2 CPU cores by",
        "",
        "```bash",
        "python " + " ".join([sys.argv[0], *(argv if argv is not None else sys.argv[1:])]),
        "```",
        "",
        "Protocol: " + payload["protocol"] + ". " + payload["data"] + ". One classifier per "
        "subject, trained only on that subject's own early minutes — what `ecgaffect calibrate` "
        "would fit. Optimistic by construction (same sitting, minutes apart); compare with the "
        "subject-independent table in [`../eegmat_stress/report.md`](../eegmat_stress/report.md).",
        "",
        "| train share of each block | labelled min / subject | subjects | features | "
        "balanced acc. | AUROC | per-subject bal. acc. mean ± sd (min) |",
        "|---|---|---|---|---|---|---|",
    ]
    for frac, r in res.items():
        for name, m in r["rows"].items():
            ps = m["per_subject_balanced_accuracy"]
            lines.append(
                f"| {float(frac):.0%} | {r['train_minutes_per_subject']:.1f} | {r['subjects']} | "
                f"{name} | {m['balanced_accuracy']:.3f} | {m['auroc']:.3f} | "
                f"{ps['mean']:.3f} ± {ps['std']:.3f} ({ps['min']:.3f}) |"
            )
    skipped = sorted({s for r in res.values() for s in r["subjects_skipped"]})
    if skipped:
        lines += ["", f"Subjects skipped (a block too short to split): {', '.join(skipped)}."]
    lines += [
        "",
        "Data: EEGMAT (Zyma et al. 2019, PhysioNet, ODC-By 1.0).",
        "",
    ]
    (args.out / "report.md").write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
