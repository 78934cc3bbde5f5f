#!/usr/bin/env python
r"""Build the personal-baseline stress model ``src/ecgaffect/data/stress_model.safetensors``.

    python scripts/build_stress_model.py --data ../shared/data/eegmat \\
        --encoder runs/enc_qtdb_e30.pt --out src/ecgaffect/data/stress_model.safetensors
    make stress-model STRESS_DATA=... STRESS_ENCODER=...

1. EEGMAT through the strap's bandwidth (500 Hz → 130 Hz → 256 Hz, 10 s windows, 5 s hop,
   calibrated normalisation: :func:`ecgaffect.model.stress_eval.eegmat_stress_windows`).
2. Leave-one-subject-out evaluation of the candidate feature sets (HRV features; HRV + the
   frozen encoder's embedding) with logistic regression, under the population and
   personal-baseline protocols (:func:`ecgaffect.model.compare.compare_rows`); calibration
   windows (ending within the first 60 s) are never scored.
3. The best feature set under the personal-baseline protocol (balanced accuracy, then AUROC)
   is kept; a temperature is fitted on its out-of-fold LOSO scores; the final head is trained
   on every subject (:func:`ecgaffect.model.stress_model.fit_stress_head`).
4. Checks: the model file's offline scores reproduce the LOSO-path probabilities of the final
   head; the share of windows of the real Polar H10 recording at rest
   (``recordings/polar_h10_detectpvc.xdfz``) scored as stressed.
5. Writes the model file (card: per-output validation, protocol, LOSO numbers beside the HRV
   baseline, limits) and ``results.json`` next to ``--report-dir``.

Deterministic: seeded, one torch thread, sklearn's deterministic lbfgs solver.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

DEFAULT_OUT = ROOT / "src" / "ecgaffect" / "data" / "stress_model.safetensors"
POLAR = ROOT / "recordings" / "polar_h10_detectpvc.xdfz"
CANDIDATES = ("hrv", "hrv+ssl")

LIMITS = (
    "VALIDATED ONLY for rest vs lab mental arithmetic (serial subtraction) in EEGMAT: healthy "
    "students aged 16-26 (mostly 17), clinical ECG electrodes at 500 Hz routed through 130 Hz "
    "(the Polar H10's rate) before resampling to 256 Hz — NOT recorded with a Polar strap. "
    "Scores are relative to the person's baseline taken over the first 60 s at rest (the "
    "calibration minute): a baseline taken while not at rest, or a different posture or "
    "activity later, makes the score meaningless. Mental arithmetic raises heart rate; so do "
    "movement, talking, caffeine, standing up and heat: the model cannot tell them apart. Not "
    "a medical device; not validated for emotions, chronic stress, anxiety, or any clinical "
    "use, nor for people outside that population (older adults, heart conditions, "
    "medication affecting heart rate)."
)


#: The subject of recordings/eegmat_subject07_rest_arithmetic.xdfz (the demo): never trained on.
DEMO_SUBJECT = "Subject07"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="EEGMAT folder")
    parser.add_argument("--encoder", type=Path, required=True, help="pretrained encoder (.pt)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="model file to write")
    parser.add_argument(
        "--report-dir",
        type=Path,
        default=ROOT / "docs" / "results" / "stress_model_v2",
        help="where results.json goes",
    )
    parser.add_argument(
        "--exclude-subject",
        action="append",
        default=None,
        metavar="SUBJECT",
        help="keep this subject out of the final model's training (repeatable; default: "
        f"{DEMO_SUBJECT}, the subject of the bundled demo recording). LOSO still reports "
        "every subject",
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)

    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    from ecgaffect.model.baselines import calibration_mask, hrv_features, relative_to_baseline
    from ecgaffect.model.card import ModelCard
    from ecgaffect.model.compare import PROTOCOLS, Row, compare_rows
    from ecgaffect.model.evaluate import leave_one_subject_out
    from ecgaffect.model.offline import preprocess_windows, read_recording
    from ecgaffect.model.pretrain import load_encoder
    from ecgaffect.model.scorer import Scorer
    from ecgaffect.model.stress_eval import STRAP_FS_HZ, eegmat_stress_windows, embed_windows
    from ecgaffect.model.stress_model import (
        FEATURE_SETS,
        StressModule,
        fit_stress_head,
        fit_temperature,
        save_stress_model_file,
        score_session_offline,
    )
    from ecgaffect.signal import PreprocessConfig

    t0 = time.perf_counter()

    def say(msg: str) -> None:
        print(f"[{time.perf_counter() - t0:7.1f} s] {msg}", flush=True)

    sessions, ws = eegmat_stress_windows(args.data)
    keep = np.asarray(ws.labels["stress"]) >= 0
    ws = ws.subset(keep)
    y = np.asarray(ws.labels["stress"], dtype=np.int64)
    subject = np.asarray(ws.subject)
    window_s = float(ws.x.shape[1]) / 256.0
    cal = calibration_mask(ws.session, ws.start_s, window_s, 60.0)
    n_sub = len(np.unique(subject))
    say(f"{len(sessions)} sessions, {len(ws)} windows, {n_sub} subjects, {(~cal).sum()} scored")

    hrv = hrv_features(ws.x, 256.0)
    encoder, enc_meta = load_encoder(args.encoder)
    ssl = embed_windows(encoder, ws.x)
    say("features done")
    feats = {"hrv": hrv, "hrv+ssl": np.hstack([hrv, ssl.astype(np.float64)])}
    loso = [(f.train_idx, f.test_idx) for f in leave_one_subject_out(subject)]
    rows = [Row(name, feats[name], "logreg") for name in CANDIDATES]
    res = compare_rows(rows, y, subject, cal, loso, seed=args.seed, progress=say)

    def key(name: str) -> tuple[float, float]:
        r = res[name]["personal"]
        return (r["balanced_accuracy"], r["auroc"])

    best = max(CANDIDATES, key=key)
    say(f"picked feature set {best!r} (personal LOSO balanced acc {key(best)[0]:.3f})")
    p_oof = np.asarray(res[best]["personal"]["p"], dtype=np.float64)
    scored = ~cal & np.isfinite(p_oof)
    temperature = fit_temperature(p_oof[scored], y[scored])
    say(f"temperature {temperature:.3f} (fitted on the LOSO out-of-fold scores)")

    module = StressModule(best)
    if FEATURE_SETS[best]:
        assert module.encoder is not None
        module.encoder.load_state_dict(encoder.state_dict())
    # windows name subjects "eegmat/SubjectNN"; accept either spelling
    excluded = sorted(
        {e if "/" in e else f"eegmat/{e}" for e in args.exclude_subject or [DEMO_SUBJECT]}
    )
    unknown = [e for e in excluded if e not in set(subject.tolist())]
    if unknown:
        parser.error(f"--exclude-subject {unknown}: not in {args.data}")
    rel = relative_to_baseline(feats[best], subject, cal)
    train = ~np.isin(subject, excluded)
    fit_stress_head(module, rel[train], y[train], temperature=temperature)
    say(f"final head fitted on {len(np.unique(subject[train]))} subjects (left out: {excluded})")
    module.eval()

    def metrics(name: str, protocol: str) -> dict[str, Any]:
        r = res[name][protocol]
        return {
            "balanced_accuracy": round(r["balanced_accuracy"], 4),
            "auroc": round(r["auroc"], 4),
            "per_subject_balanced_accuracy": {
                k: round(v, 4) for k, v in r["per_subject_balanced_accuracy"].items()
            },
            "confusion": r["confusion"],
            "n_windows": r["n_windows"],
        }

    loso_table = {n: {p: metrics(n, p) for p in PROTOCOLS} for n in CANDIDATES}
    # how many held-out subjects' scores rise from rest to the task (LOSO, out-of-fold)
    rising = 0
    for s in np.unique(subject):
        m = (subject == s) & scored
        if (y[m] == 1).any() and (y[m] == 0).any():
            rising += int(p_oof[m & (y == 1)].mean() > p_oof[m & (y == 0)].mean())
    say(f"LOSO: mean P(stress) higher in the task than at rest for {rising}/{n_sub} subjects")
    classes = list(ws.classes["stress"])
    val = loso_table[best]["personal"]
    validated_on = {
        "dataset": "EEGMAT (Zyma et al. 2019, PhysioNet/NEMAR, ODC-By 1.0)",
        "population": (
            f"healthy students aged 16-26, mostly 17 (36 in the dataset; trained and LOSO-"
            f"evaluated on {n_sub}; subjects 28-35 are held back for an independent check)"
        ),
        "task": "rest (~180 s) vs lab mental arithmetic (serial subtraction, ~60 s)",
        "sensor": (
            f"clinical ECG electrodes at 500 Hz, routed through {STRAP_FS_HZ:g} Hz (a Polar "
            "H10's rate) then 256 Hz — not a Polar strap"
        ),
        "protocol": (
            "leave-one-subject-out; personal baseline = the person's mean features over the "
            "windows ending within the first 60 s (rest); those windows are not scored"
        ),
    }
    card = ModelCard(
        name="eegmat-stress-baseline-v2",
        tasks={"stress": classes},
        preprocessing=PreprocessConfig(normalization="calibrated"),
        label_scheme="condition",
        thresholds={"stress": 0.5},
        training_data={
            "dataset": "EEGMAT",
            "subjects": int(len(np.unique(subject[train]))),
            "subjects_left_out": excluded,
            "subjects_left_out_why": "the subject of the bundled demo recording",
            "windows": int(len(ws)),
            "window": "10 s, hop 5 s",
            "path_through_strap_hz": STRAP_FS_HZ,
            "feature_set": best,
            "encoder": (
                f"{args.encoder.name} (QTDB, {enc_meta.get('epochs_trained', '?')} epochs)"
                if FEATURE_SETS[best]
                else "not used (HRV features won the LOSO comparison)"
            ),
        },
        metrics={
            "protocol": "LOSO, personal baseline (calibration minute), calibration unscored",
            "outputs": {
                "stress": {
                    "validated": True,
                    "validated_on": validated_on,
                    "loso_balanced_accuracy": val["balanced_accuracy"],
                    "loso_auroc": val["auroc"],
                    "hrv_baseline_balanced_accuracy": loso_table["hrv"]["personal"][
                        "balanced_accuracy"
                    ],
                    "hrv_baseline_auroc": loso_table["hrv"]["personal"]["auroc"],
                    "loso_subjects_rising": f"{rising}/{n_sub}",
                }
            },
            "temperature": round(temperature, 4),
            "loso": loso_table,
        },
        demo=False,
        notes=LIMITS,
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    card = save_stress_model_file(module, card, args.out)
    say(f"wrote {args.out}")

    # -- check: the model file reproduces the final head on the training path --------------
    scorer = Scorer.load(args.out)
    worst = 0.0
    for s in np.unique(subject)[:3]:
        m = subject == s
        p_file, _ = score_session_offline(scorer, ws.x[m], ws.start_s[m])
        with torch.inference_mode():
            p_ref = module(torch.as_tensor(rel[m], dtype=torch.float32))[:, 1].numpy()
        ok = np.isfinite(p_file)
        worst = max(worst, float(np.abs(p_file[ok] - p_ref[ok]).max()))
    say(f"model file vs training path: max |dp| {worst:.2e} on 3 subjects")

    # -- check: the real Polar H10 recording, a person at rest ------------------------------
    polar: dict[str, Any] = {}
    if POLAR.exists():
        ecg, fs = read_recording(POLAR, None, None, "uV")
        x, start = preprocess_windows(ecg, fs, scorer.card, hop_s=5.0, normalization="live")
        p, pcal = score_session_offline(scorer, x, start)
        ok = ~pcal & np.isfinite(p)
        polar = {
            "recording": POLAR.name,
            "duration_s": round(len(ecg) / fs, 1),
            "fs_hz": round(fs, 2),
            "windows_scored": int(ok.sum()),
            "fraction_stressed": round(float(np.mean(p[ok] >= 0.5)), 4),
            "median_p_stress": round(float(np.median(p[ok])), 4),
            "max_p_stress": round(float(np.max(p[ok])), 4),
        }
        say(
            f"Polar H10 at rest: {polar['fraction_stressed']:.1%} of {ok.sum()} windows "
            f"scored stressed (median p {polar['median_p_stress']:.3f})"
        )
        card.metrics["polar_h10_rest_check"] = polar
        card = save_stress_model_file(module, card, args.out)

    seconds = time.perf_counter() - t0
    args.report_dir.mkdir(parents=True, exist_ok=True)
    out = {
        "picked": best,
        "temperature": temperature,
        "loso": loso_table,
        "polar_h10_rest_check": polar,
        "loso_subjects_rising": f"{rising}/{n_sub}",
        "model_file_check_max_abs_dp": worst,
        "seconds": seconds,
        "threads": args.threads,
        "weights_sha256": card.weights_sha256,
    }
    (args.report_dir / "results.json").write_text(json.dumps(out, indent=1))
    say(f"done in {seconds / 60:.1f} min ({args.threads} thread)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
