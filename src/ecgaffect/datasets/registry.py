"""Dataset names -> loader modules, default tasks, and a uniform way to call them.

Loader modules are imported on first use, so a loader that needs an optional package (SWELL
needs openpyxl) only fails when that dataset is asked for, with a clear message.
"""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path
from types import ModuleType
from typing import Any

from ecgaffect.datasets.base import LoadReport
from ecgaffect.datasets.session import Session

__all__ = [
    "DATASETS",
    "DEFAULT_TASKS",
    "GENERATED",
    "dataset_tasks",
    "get_loader",
    "load_dataset",
    "loader_options",
    "source_files",
]

#: Dataset name -> module exposing ``load_sessions(root, *, skip_bad, report, **options)``.
DATASETS: dict[str, str] = {
    "swell": "ecgaffect.datasets.swell",
    "amigos": "ecgaffect.datasets.amigos",
    "dreamer": "ecgaffect.datasets.dreamer",
    "wesad": "ecgaffect.datasets.wesad",
    "synthetic": "ecgaffect.datasets.synthetic",
    "recording": "ecgaffect.datasets.recording",
    "eegmat": "ecgaffect.datasets.eegmat",
    "qtdb": "ecgaffect.datasets.qtdb",
    "wfdb": "ecgaffect.datasets.physionet_wfdb",
    "drivedb": "ecgaffect.datasets.drivedb",
}

#: Datasets generated rather than read: no source files to fingerprint, ``root`` is ignored.
GENERATED = frozenset({"synthetic"})

#: Tasks a model is trained on by default, per dataset.
DEFAULT_TASKS: dict[str, tuple[str, ...]] = {
    "amigos": ("arousal", "valence"),
    "dreamer": ("arousal", "valence"),
    "swell": ("stress", "arousal", "valence"),
    "wesad": ("affect_state",),
    "synthetic": ("arousal", "valence"),
    "recording": (),
    "eegmat": ("stress",),
    "qtdb": (),
    "wfdb": (),
    "drivedb": ("stress",),
}


def _check_name(name: str) -> str:
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {sorted(DATASETS)}")
    return name


def get_loader(name: str) -> ModuleType:
    """The loader module of dataset ``name``."""
    module = DATASETS[_check_name(name)]
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name != module:
            raise  # a dependency of the loader is missing: keep that message
        raise ImportError(
            f"the {name!r} dataset loader ({module}) is not part of this installation"
        ) from exc


def dataset_tasks(name: str) -> tuple[str, ...]:
    """Default tasks for dataset ``name`` (``amigos``: arousal, valence; ...)."""
    return DEFAULT_TASKS[_check_name(name)]


def loader_options(name: str) -> dict[str, Any]:
    """The keyword options ``load_sessions`` of dataset ``name`` accepts, with defaults."""
    sig = inspect.signature(get_loader(name).load_sessions)
    skip = {"root", "skip_bad", "report", "progress"}
    return {
        p.name: p.default
        for p in sig.parameters.values()
        if p.kind is p.KEYWORD_ONLY and p.name not in skip
    }


def load_dataset(
    name: str,
    root: str | Path,
    *,
    skip_bad: bool = False,
    report: LoadReport | None = None,
    progress: bool = False,
    **options: Any,
) -> list[Session]:
    """Load every session of dataset ``name`` from ``root`` (options go to its loader).

    ``progress`` is passed on only to loaders that take it.

    Raises:
        ValueError: unknown dataset name or an option the loader does not take (the message
            lists the ones it does).
    """
    loader = get_loader(name)
    allowed = inspect.signature(loader.load_sessions).parameters
    takes_any = any(p.kind is p.VAR_KEYWORD for p in allowed.values())
    unknown = sorted(set(options) - set(allowed))
    if unknown and not takes_any:
        raise ValueError(
            f"dataset {name!r} has no loader option(s) {unknown}; "
            f"allowed: {sorted(loader_options(name))}"
        )
    report = report if report is not None else LoadReport(dataset=name, root=str(root))
    if "progress" in allowed:
        options["progress"] = progress
    return loader.load_sessions(root, skip_bad=skip_bad, report=report, **options)


def source_files(name: str, root: str | Path, **options: Any) -> list[Path]:
    """The files dataset ``name`` reads from ``root`` with these options.

    Uses the loader's own ``source_files`` when it has one, else every file below ``root``
    (or ``root`` itself when it is a file); none for generated datasets.
    """
    if name in GENERATED:
        return []
    loader = get_loader(name)
    fn = getattr(loader, "source_files", None)
    if fn is not None:
        return sorted(Path(p) for p in fn(root, **options))
    path = Path(root).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"{name} root {str(path)!r} does not exist")
    if path.is_file():
        return [path.resolve()]
    return sorted(p.resolve() for p in path.rglob("*") if p.is_file())
