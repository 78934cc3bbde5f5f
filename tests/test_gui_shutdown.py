"""The GUI exits cleanly after long runs (ordered shutdown; PySide6 6.12.0's None-refcount bug).

PySide6 6.12.0 drops a reference to None on every void Qt call on CPython < 3.12, which aborts
the interpreter at exit after a long run; pyproject pins 6.11.x. These subprocess exit codes
are the regression guard.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from _gui_fixtures import make_demo_model, make_demo_recording

pytestmark = pytest.mark.gui

SRC = Path(__file__).resolve().parents[1] / "src"


@pytest.fixture(scope="module")
def long_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("gui_exit")
    return {
        "model": make_demo_model(d / "model.pt", weight_scale=20.0),
        "rec": make_demo_recording(d / "rec.xdf", duration_s=600.0, flat_at_s=None),
    }


def _run_gui(files, tmp_path, quit_after_s: float) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.update(
        QT_QPA_PLATFORM="offscreen",
        PYTHONPATH=str(SRC),
        ECGAFFECT_CONFIG_DIR=str(tmp_path / "config"),
        PYTHONFAULTHANDLER="1",
    )
    cmd = [
        sys.executable,
        "-m",
        "ecgaffect",
        "-v",
        "gui",
        "--replay",
        str(files["rec"]),
        "--model",
        str(files["model"]),
        "--speed",
        "8",
        "--hop",
        "1",
        "--quit-after",
        str(quit_after_s),
    ]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)


def _check_exit(proc: subprocess.CompletedProcess) -> None:
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "Fatal Python error" not in out
    assert "calibration done" in out, out[-3000:]  # it was scoring when it quit
    assert "pipeline stopped" in out  # the shutdown stopped the pipeline


def test_gui_quits_with_exit_code_0_while_scoring(long_files, tmp_path):
    _check_exit(_run_gui(long_files, tmp_path, quit_after_s=12.0))


@pytest.mark.slow
def test_gui_quits_with_exit_code_0_after_a_long_scoring_run(long_files, tmp_path):
    # before the fix, runs of 25-36 s ended in "Fatal Python error: none_dealloc" (134)
    _check_exit(_run_gui(long_files, tmp_path, quit_after_s=40.0))
