"""pyproject.toml agrees with what the code imports."""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path

from ecgaffect import _optional

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _names(requirements: list[str]) -> set[str]:
    return {re.split(r"[<>=!~\[ ;]", r, maxsplit=1)[0].lower() for r in requirements}


def test_the_live_pipeline_needs_no_extra():
    # Pipeline.start imports the R-peak detector (neurokit2): it must come with the package
    core = _names(PROJECT["dependencies"])
    assert "neurokit2" in core
    assert "neurokit2" not in _optional._EXTRAS
    assert PROJECT["optional-dependencies"]["quality"] == []  # alias kept for old installs


def test_every_optional_import_names_an_extra_that_provides_it():
    extras = {k: _names(v) for k, v in PROJECT["optional-dependencies"].items()}
    core = _names(PROJECT["dependencies"])
    for module, (extra, dist) in _optional._EXTRAS.items():
        assert dist.lower() in extras[extra], (module, extra)
        assert dist.lower() not in core, module


def test_pipeline_start_requires_only_core_or_declared_modules():
    # every require("X", ...) in the package names a core dependency or a declared extra
    core = _names(PROJECT["dependencies"])
    for py in (ROOT / "src" / "ecgaffect").rglob("*.py"):
        for module in re.findall(r"require\(\s*\"([\w.]+)\"", py.read_text()):
            top = module.split(".")[0]
            assert top.lower() in core or top in _optional._EXTRAS, (py.name, module)


def test_the_suite_runs_torch_on_one_thread():
    import torch

    assert torch.get_num_threads() == min(2, os.cpu_count() or 1)  # conftest sets it once
