"""What every dataset loader shares: the problem report and the loader contract.

Each loader module (``swell``, ``amigos``, ``dreamer``, ``wesad``, ``synthetic``,
``recording``) exposes::

    load_sessions(root, *, skip_bad=False, report=None, **options) -> list[Session]

``skip_bad=False`` raises :class:`DatasetError` at the first bad file (naming it and what was
expected); ``skip_bad=True`` records the problem in ``report`` and goes on. Problems that are
normal for a dataset (AMIGOS P08 has no long videos) are recorded as notes, never raised.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["DatasetError", "LoadReport", "Problem"]

log = logging.getLogger(__name__)


class DatasetError(ValueError):
    """A dataset file or folder is not what the loader expects; names the path and why."""

    def __init__(self, path: str | Path, message: str) -> None:
        self.path = Path(path)
        super().__init__(f"{path}: {message}")


@dataclass(frozen=True)
class Problem:
    path: str
    message: str
    skipped: bool = True

    def __str__(self) -> str:
        action = "skipped" if self.skipped else "note"
        return f"[{action}] {self.path}: {self.message}"


@dataclass
class LoadReport:
    """What a loader found, skipped and noted; printed by ``ecgaffect datasets info/check``."""

    dataset: str = ""
    root: str = ""
    problems: list[Problem] = field(default_factory=list)
    files_read: int = 0

    def skip(self, path: str | Path, message: str) -> None:
        self.problems.append(Problem(str(path), message, skipped=True))
        log.warning("skipped %s: %s", path, message)

    def note(self, path: str | Path, message: str) -> None:
        self.problems.append(Problem(str(path), message, skipped=False))
        log.info("note on %s: %s", path, message)

    @property
    def skipped(self) -> list[Problem]:
        return [p for p in self.problems if p.skipped]

    def summary(self) -> str:
        lines = [
            f"{self.dataset} at {self.root}: {self.files_read} files read, "
            f"{len(self.skipped)} skipped, {len(self.problems) - len(self.skipped)} notes"
        ]
        lines += [f"  {p}" for p in self.problems]
        return "\n".join(lines)
