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
from pathlib import Path

import torch

from ecgaffect.model.stress_eval import evaluate_eegmat


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
    command = "python scripts/evaluate_eegmat.py " + shlex.join(
        sys.argv[1:] if argv is None else argv
    )
    res = evaluate_eegmat(
        args.root,
        args.encoder,
        args.out,
        encoder_data=args.encoder_data,
        fs_epochs=args.fs_epochs,
        fs_folds=args.fs_folds,
        dense_epochs=args.dense_epochs,
        command=command,
    )
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
