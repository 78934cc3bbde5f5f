"""``make model`` = scripts/build_model.py: its input checks (the real build runs on real data)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def build_model():
    path = ROOT / "scripts" / "build_model.py"
    spec = importlib.util.spec_from_file_location("build_model", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["build_model"] = module
    spec.loader.exec_module(module)
    return module


def test_needs_data_or_both_folders(build_model, capsys):
    with pytest.raises(SystemExit) as exc:
        build_model.main([])
    assert exc.value.code == 2
    assert "--data" in capsys.readouterr().err


def test_missing_folder_is_named(build_model, tmp_path):
    with pytest.raises(SystemExit, match=r"QT Database folder not found: .*nowhere"):
        build_model.main(["--data", str(tmp_path / "nowhere")])


def test_wrong_folder_says_what_was_expected(build_model, tmp_path):
    (tmp_path / "qtdb").mkdir()
    (tmp_path / "qtdb" / "notes.txt").write_text("not WFDB")
    with pytest.raises(SystemExit, match=r"no \*\.hea files — is this the QT Database folder"):
        build_model.main(["--data", str(tmp_path)])


def test_eegmat_checked_before_any_work(build_model, tmp_path):
    (tmp_path / "qtdb").mkdir()
    (tmp_path / "qtdb" / "sel100.hea").write_text("sel100 2 250 225000\n")
    (tmp_path / "eegmat").mkdir()
    with pytest.raises(SystemExit, match=r"no \*\.edf files — is this the EEGMAT folder"):
        build_model.main(["--data", str(tmp_path), "--run-dir", str(tmp_path / "run")])
    assert not (tmp_path / "run").exists()
