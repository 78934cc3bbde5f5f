#!/usr/bin/env python
r"""Rebuild the packaged, validated stress model from real data, end to end: ``make model``.

    python scripts/build_model.py --data ../shared/data          # = make model DATA=../shared/data
    python scripts/build_model.py --qtdb ~/data/qtdb --eegmat ~/data/eegmat

Two steps, each timed and recorded in ``<run-dir>/build.json``:

1. **Pretraining** (``scripts/pretrain_real.py``): the self-supervised encoder on the QT Database
   routed through a strap's 130 Hz, 30 epochs x 1280 windows, batch 32, bf16, one thread —
   the run of ``docs/results/pretrain_qtdb/`` (66 min on this project's 2-core machine). Its
   checkpoint is resumed when it is already there, so an interrupted build continues where
   it stopped and a finished one is reused (``--fresh`` starts over).
2. **Stress model** (``scripts/build_stress_model.py``): EEGMAT through 130 Hz, LOSO comparison
   of the feature sets, temperature, the final head on every subject but the demo
   recording's, the checks on the real Polar H10 recording (about 20 s).

Both steps are seeded and run on one torch thread, so the same data gives the same model
(the weights' digest is printed and stored). ``--data`` is a folder holding ``qtdb/`` and
``eegmat/`` (the layout of ``../shared/data`` and of ``ecgaffect datasets download``); the two
folders can also be given one by one. The old demo model (synthetic labels) is rebuilt by
``make demo-model`` (``scripts/build_default_model.py``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "src" / "ecgaffect" / "data" / "stress_model.safetensors"


def _folder(path: Path | None, what: str, probe: str) -> Path:
    if path is None or not path.is_dir():
        raise SystemExit(f"build_model: {what} folder not found: {path} (expected a folder)")
    if not any(path.glob(probe)):
        raise SystemExit(f"build_model: {path}: no {probe} files — is this the {what} folder?")
    return path


def _run(step: str, cmd: list[str], record: dict) -> None:
    print(f"== {step}: {' '.join(cmd)}", flush=True)
    t0 = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(cmd, cwd=ROOT)
    wall = time.perf_counter() - t0
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    record[step] = {
        "command": cmd,
        "wall_s": round(wall, 1),
        "cpu_s": round(usage.ru_utime + usage.ru_stime - before.ru_utime - before.ru_stime, 1),
        "returncode": proc.returncode,
    }
    print(
        f"== {step}: {wall / 60:.1f} min wall, {record[step]['cpu_s'] / 60:.1f} CPU-min "
        f"(exit {proc.returncode})",
        flush=True,
    )
    if proc.returncode != 0:
        raise SystemExit(f"build_model: step '{step}' failed with exit code {proc.returncode}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--data", type=Path, help="folder holding qtdb/ and eegmat/")
    ap.add_argument("--qtdb", type=Path, help="QT Database folder (default: DATA/qtdb)")
    ap.add_argument("--eegmat", type=Path, help="EEGMAT folder (default: DATA/eegmat)")
    ap.add_argument("--run-dir", type=Path, default=ROOT / "runs" / "pretrain-qtdb")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="model file to write")
    ap.add_argument("--epochs", type=int, default=30, help="pretraining epochs (default 30)")
    ap.add_argument("--windows-per-epoch", type=int, default=1280)
    ap.add_argument(
        "--report-dir",
        type=Path,
        help="where the stress step's results.json goes (default: docs/results/stress_model_v2 "
        "when --out is the packaged model, else the folder of --out)",
    )
    ap.add_argument("--fresh", action="store_true", help="discard an existing pretraining run")
    args = ap.parse_args(argv)
    if args.data is None and (args.qtdb is None or args.eegmat is None):
        ap.error("give --data (holding qtdb/ and eegmat/) or both --qtdb and --eegmat")
    qtdb = _folder(args.qtdb or args.data / "qtdb", "QT Database", "*.hea")
    eegmat = _folder(args.eegmat or args.data / "eegmat", "EEGMAT", "*.edf")
    run_dir = args.run_dir.resolve()
    if args.fresh and run_dir.exists():
        import shutil

        shutil.rmtree(run_dir)
    out = args.out.resolve()
    report_dir = args.report_dir or (
        ROOT / "docs" / "results" / "stress_model_v2" if out == DEFAULT_OUT else out.parent
    )
    record: dict = {"qtdb": str(qtdb), "eegmat": str(eegmat), "run_dir": str(run_dir)}
    t0 = time.perf_counter()
    py = sys.executable
    _run(
        "pretrain",
        [py, "scripts/pretrain_real.py", "--qtdb", str(qtdb), "--out", str(run_dir),
         "--epochs", str(args.epochs), "--windows-per-epoch", str(args.windows_per_epoch),
         "--batch-size", "32", "--precision", "bf16", "--threads", "1"],
        record,
    )  # fmt: skip
    checkpoint = run_dir / "checkpoint.pt"
    if not checkpoint.is_file():
        raise SystemExit(f"build_model: pretraining wrote no checkpoint at {checkpoint}")
    _run(
        "stress_model",
        [py, "scripts/build_stress_model.py", "--threads", "1", "--data", str(eegmat),
         "--encoder", str(checkpoint), "--out", str(out), "--report-dir", str(report_dir)],
        record,
    )  # fmt: skip
    record["total_wall_s"] = round(time.perf_counter() - t0, 1)
    record["sha256"] = hashlib.sha256(args.out.read_bytes()).hexdigest()
    (run_dir / "build.json").write_text(json.dumps(record, indent=1) + "\n")
    print(
        f"model: {args.out} (sha256 {record['sha256'][:16]}…); "
        f"total {record['total_wall_s'] / 60:.1f} min wall; record: {run_dir / 'build.json'}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
