"""Run every benchmark script in this folder in turn (``make bench``), printing their figures.

The machine should be otherwise idle; each script prints what it measured and how.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
ORDER = [
    "bench_signal.py",
    "bench_synthetic.py",
    "bench_pmd.py",
    "bench_poly5.py",
    "bench_dataset_cache.py",
    "bench_training.py",
    "bench_inference.py",
    "bench_live.py",
    "bench_gui.py",
]


def main() -> int:
    scripts = [HERE / n for n in ORDER if (HERE / n).is_file()]
    scripts += sorted(p for p in HERE.glob("bench_*.py") if p.name not in ORDER)
    failed = []
    for script in scripts:
        print(f"\n===== {script.name} =====", flush=True)
        if subprocess.run([sys.executable, str(script)]).returncode:
            failed.append(script.name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
