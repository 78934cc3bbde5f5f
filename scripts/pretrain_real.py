"""Self-supervised pretraining on real ECG: the QT Database, routed through a strap's 130 Hz.

    python scripts/pretrain_real.py --qtdb ../shared/data/qtdb --out runs/pretrain-qtdb \
        --epochs 25 --windows-per-epoch 1280 --batch-size 32 --precision bf16 --threads 2

Every record and lead of QTDB (105 records x 2 leads x 15 min, 250 Hz, WFDB) is median-removed,
resampled to 130 Hz (the Polar H10's rate, so the encoder learns the bandwidth it meets live),
then through the project's one signal path (256 Hz, 0.8 Hz high-pass, per-recording robust
z-score) and cut into 10 s windows without overlap. Ten whole records (seeded choice, listed in
``corpus.json``) are held out for the pretext accuracy. No EEGMAT subject is used, so the
encoder can be evaluated on every EEGMAT subject. Checkpoints every epoch; rerunning the same
command resumes (and ``--epochs`` may be raised to train longer).
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np
import torch

from ecgaffect.io.wfdb import quiet_wfdb
from ecgaffect.model.pretrain import PretrainConfig, pretrain
from ecgaffect.signal import make_windows, preprocess_ecg, resample_ecg

STRAP_FS_HZ = 130.0


def build_corpus(root: Path, out: Path, n_held_out: int = 10, seed: int = 7) -> dict:
    import wfdb

    recs = sorted(p.stem for p in root.glob("*.hea"))
    if not recs:
        raise FileNotFoundError(f"{root}: no WFDB .hea files")
    held = sorted(np.random.default_rng(seed).choice(recs, n_held_out, replace=False).tolist())
    train, val, info = [], [], []
    for r in recs:
        with quiet_wfdb():
            rec = wfdb.rdrecord(str(root / r))
        for j in range(rec.p_signal.shape[1]):
            x = rec.p_signal[:, j].astype(np.float64)
            x = x[np.isfinite(x)]
            y = preprocess_ecg(resample_ecg(x - np.median(x), rec.fs, STRAP_FS_HZ), STRAP_FS_HZ)
            w, _ = make_windows(y)
            (val if r in held else train).append(w)
            info.append([r, rec.sig_name[j], len(w)])
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / "train.npy", np.concatenate(train))
    np.save(out / "val_qtdb.npy", np.concatenate(val))
    meta = {"held_out_records": held, "records": info, "via_fs_hz": STRAP_FS_HZ}
    (out / "corpus.json").write_text(json.dumps(meta, indent=1))
    return meta


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--qtdb", type=Path, required=True, help="QTDB folder (selNNN.hea/.dat)")
    ap.add_argument("--out", type=Path, required=True, help="run directory")
    ap.add_argument("--epochs", type=int, default=25)
    ap.add_argument("--windows-per-epoch", type=int, default=1280)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="bf16")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(args.threads)
    corpus = args.out / "corpus"
    if not (corpus / "corpus.json").is_file():
        build_corpus(args.qtdb, corpus)
    meta = json.loads((corpus / "corpus.json").read_text())
    train = np.load(corpus / "train.npy", mmap_mode="r")
    val = np.load(corpus / "val_qtdb.npy")
    val = val[np.random.default_rng(3).choice(len(val), min(256, len(val)), replace=False)]
    cfg = PretrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        precision=args.precision,
        windows_per_epoch=args.windows_per_epoch,
        device=args.device,
    )
    t0 = time.perf_counter()
    pretrain(
        train,
        cfg,
        args.out,
        val_windows=val,
        progress=False,
        data_description=(
            f"QTDB 1.0.0, {len(meta['records']) // 2 - len(meta['held_out_records'])} of "
            f"{len(meta['records']) // 2} records, both leads, via 130 Hz, 10 s windows"
        ),
        data_info={"dataset": "qtdb", "held_out_records": meta["held_out_records"]},
    )
    print(f"pretraining took {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
