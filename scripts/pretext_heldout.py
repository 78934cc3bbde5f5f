"""Pretext accuracy per transformation of an encoder on held-out real ECG.

    python scripts/pretext_heldout.py --run runs/pretrain-qtdb --eegmat ../shared/data/eegmat \
        --out docs/results/pretrain_qtdb/pretext_heldout.json

Held-out sets: the QTDB records the pretraining run held out (whole records, ``corpus/``) and
the rest recordings of EEGMAT subjects (never in pretraining), both through 130 Hz like the
training data. Reports per-head binary accuracy (1 positive : 6 negatives, so 0.857 is what a
head that always says "no" gets), per-head balanced accuracy and the 7-way recognition accuracy.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from ecgaffect.model.networks import PretextNet
from ecgaffect.model.pretrain import evaluate_pretext
from ecgaffect.model.training import load_checkpoint
from ecgaffect.signal import make_windows, preprocess_ecg, resample_ecg


def eegmat_rest_windows(root: Path) -> np.ndarray:
    from ecgaffect.datasets.eegmat import load_sessions

    out = []
    for s in load_sessions(root):
        join = s.segments[0].end_s
        rest = s.ecg[: int(join * s.fs_hz)]
        y = preprocess_ecg(resample_ecg(rest, s.fs_hz, 130.0), 130.0)
        out.append(make_windows(y)[0])
    return np.concatenate(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--run", type=Path, required=True, help="pretraining run directory")
    ap.add_argument("--checkpoint", type=Path, default=None, help="default: RUN/checkpoint.pt")
    ap.add_argument("--eegmat", type=Path, default=None)
    ap.add_argument("--max-windows", type=int, default=600, help="per held-out set (seeded)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    state = load_checkpoint(args.checkpoint or args.run / "checkpoint.pt")
    net = PretextNet()
    net.load_state_dict(state["model"])
    sets = {"qtdb_held_out_records": np.load(args.run / "corpus" / "val_qtdb.npy")}
    if args.eegmat is not None:
        sets["eegmat_rest"] = eegmat_rest_windows(args.eegmat)
    res: dict = {"epochs_trained": int(state["epoch"])}
    for name, w in sets.items():
        rng = np.random.default_rng(5)
        if len(w) > args.max_windows:
            w = w[np.sort(rng.choice(len(w), args.max_windows, replace=False))]
        r = evaluate_pretext(net, w, seed=11)
        bal = [v for k, v in r.items() if k.startswith("balanced_acc/")]
        r["balanced_acc/mean"] = float(np.mean(bal))
        r["n_windows"] = int(len(w))
        res[name] = r
        print(name, json.dumps({k: round(v, 3) for k, v in r.items()}))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
