from __future__ import annotations

import sys
import types

import pytest

from ecgaffect.datasets import registry
from ecgaffect.datasets.base import LoadReport
from fixtures_datasets import write_dreamer


def test_names_tasks_and_options():
    assert set(registry.DATASETS) == {
        "swell",
        "amigos",
        "dreamer",
        "wesad",
        "synthetic",
        "recording",
        "eegmat",
        "qtdb",
        "wfdb",
        "drivedb",
    }
    assert registry.dataset_tasks("amigos") == ("arousal", "valence")
    assert registry.dataset_tasks("dreamer") == ("arousal", "valence")
    assert registry.dataset_tasks("swell") == ("stress", "arousal", "valence")
    assert registry.dataset_tasks("wesad") == ("affect_state",)
    opts = registry.loader_options("amigos")
    assert opts["lead"] == "II"
    assert opts["videos"] == "short"
    assert "skip_bad" not in opts
    with pytest.raises(ValueError, match=r"unknown dataset 'deap'; choose one of \['amigos'"):
        registry.dataset_tasks("deap")


def test_load_dataset_passes_options_and_rejects_unknown_ones(tmp_path):
    write_dreamer(tmp_path, n_subjects=2, n_clips=2)
    report = LoadReport()
    sessions = registry.load_dataset("dreamer", tmp_path, report=report, subjects=["S02"])
    assert {s.subject for s in sessions} == {"S02"}
    assert report.files_read == 1
    with pytest.raises(ValueError, match=r"no loader option\(s\) \['lead'\]; allowed: \["):
        registry.load_dataset("dreamer", tmp_path, lead="II")
    assert registry.source_files("dreamer", tmp_path) == [(tmp_path / "DREAMER.mat").resolve()]


@pytest.fixture
def fake_loader(monkeypatch):
    module = types.ModuleType("ecgaffect.datasets._fake")
    calls = []

    def load_sessions(root, *, skip_bad=False, report=None, **options):
        calls.append(options)
        return []

    module.load_sessions = load_sessions
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setitem(registry.DATASETS, "fake", module.__name__)
    monkeypatch.setitem(registry.DEFAULT_TASKS, "fake", ())
    return calls


def test_loader_with_var_keywords_gets_every_option_and_files_fallback(fake_loader, tmp_path):
    registry.load_dataset("fake", tmp_path, anything=3)
    assert fake_loader == [{"anything": 3}]  # no progress: the loader does not name it
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.bin").write_bytes(b"1")
    (tmp_path / "y.bin").write_bytes(b"2")
    assert [p.name for p in registry.source_files("fake", tmp_path)] == ["x.bin", "y.bin"]
    assert registry.source_files("synthetic", tmp_path) == []


def test_missing_loader_module_is_a_clear_import_error(monkeypatch):
    monkeypatch.setitem(registry.DATASETS, "ghost", "ecgaffect.datasets._no_such_loader")
    with pytest.raises(ImportError, match=r"'ghost' dataset loader .* is not part of this"):
        registry.get_loader("ghost")
