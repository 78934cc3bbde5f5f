"""Helpful errors for optional dependencies (the GUI, BLE, LSL and dataset extras)."""

from __future__ import annotations

import importlib
from types import ModuleType

#: import name -> (pip extra, PyPI name)
_EXTRAS = {
    "pyqtgraph": ("gui", "pyqtgraph"),
    "PySide6": ("gui", "PySide6-Essentials"),
    "bleak": ("ble", "bleak"),
    "pylsl": ("lsl", "pylsl"),
    "openpyxl": ("datasets", "openpyxl"),
    "pandas": ("datasets", "pandas"),
    "pyarrow": ("datasets", "pyarrow"),
}


class MissingDependencyError(ImportError):
    """An optional dependency is not installed; the message says which extra provides it."""


def require(module: str, purpose: str) -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependencyError` naming the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        extra, dist = _EXTRAS.get(module.split(".")[0], (None, module))
        hint = (
            f'pip install "ecgaffect[{extra}]"  (or: pip install {dist})'
            if extra
            else f"pip install {dist}"
        )
        raise MissingDependencyError(
            f"{purpose} needs the optional package {dist!r}, which is not installed "
            f"({exc}). Install it with: {hint}"
        ) from exc
