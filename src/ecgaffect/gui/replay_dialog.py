"""The small dialog that asks for what a CSV/NPY recording does not say: rate and unit.

``live --replay x.csv`` takes ``--fs-hz`` and ``--units``; the GUI asks for the same with
:class:`ReplayOptionsDialog`, only for what :func:`probe_array_file` finds missing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ecgaffect.gui.widgets import QtWidgets

__all__ = ["ARRAY_SUFFIXES", "UNIT_CHOICES", "ReplayOptionsDialog", "probe_array_file"]

#: formats that may lack a sampling rate or a unit (XDF files always state both)
ARRAY_SUFFIXES = (".npy", ".npz", ".csv", ".tsv", ".txt")
#: ``(shown, passed to load_session(units=...))``
UNIT_CHOICES = (("µV", "uV"), ("mV", "mV"), ("V", "V"), ("arbitrary units", "au"))


def probe_array_file(path: str | Path) -> tuple[float | None, str | None] | None:
    """What a CSV/NPY file states: ``(fs_hz or None, unit symbol or None)``.

    Returns None for formats that state both (XDF) or that ecgaffect does not read (the
    replay then reports the error). Raises the reader's error for a damaged file.
    """
    from ecgaffect.io import arrays
    from ecgaffect.io.errors import FileFormatError

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in ARRAY_SUFFIXES or not path.is_file():
        return None
    read = {".npy": arrays.read_npy, ".npz": arrays.read_npz}.get(suffix, arrays.read_table)
    fs_hz: float | None
    try:
        _, fs, prov = read(path, fs_hz=None, column=None)
        fs_hz = float(fs)
    except FileFormatError as exc:
        if "fs_hz is required" not in str(exc):
            raise
        _, _, prov = read(path, fs_hz=100.0, column=None)  # any rate: only the unit is read
        fs_hz = None
    unit = prov.get("unit")
    return fs_hz, (unit.symbol if unit is not None else None)


class ReplayOptionsDialog(QtWidgets.QDialog):
    """Asks for the sampling rate and/or the unit of a recording that does not state them.

    Args:
        path: the file (shown).
        fs_hz: the rate the file states (then not asked), or None.
        unit: the unit the file states (then not asked), or None.
    """

    def __init__(
        self, path: str | Path, fs_hz: float | None, unit: str | None, parent: Any = None
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Replay options")
        self._fs_from_file, self._unit_from_file = fs_hz, unit
        form = QtWidgets.QFormLayout(self)
        name = QtWidgets.QLabel(Path(path).name)
        name.setToolTip(str(path))
        form.addRow("file", name)
        form.addRow(QtWidgets.QLabel(f"{Path(path).name} does not say all of this:"))
        self.rate = QtWidgets.QDoubleSpinBox()
        self.rate.setRange(1.0, 100_000.0)
        self.rate.setDecimals(3)
        self.rate.setSuffix(" Hz")
        self.rate.setValue(fs_hz if fs_hz is not None else 130.0)
        self.rate.setEnabled(fs_hz is None)
        form.addRow("sampling rate", self.rate)
        self.units = QtWidgets.QComboBox()
        for shown, code in UNIT_CHOICES:
            self.units.addItem(shown, code)
        if unit is not None:
            self.units.clear()
            self.units.addItem(f"{unit} (from the file)", None)
        self.units.setEnabled(unit is None)
        form.addRow("sample unit", self.units)
        buttons = QtWidgets.QDialogButtonBox(
            QtWidgets.QDialogButtonBox.StandardButton.Ok
            | QtWidgets.QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def set_unit(self, code: str) -> None:
        """Choose the unit by its code (``"uV"``, ``"mV"``, ``"V"``, ``"au"``)."""
        i = self.units.findData(code)
        if i < 0:
            raise ValueError(f"unit must be one of {[c for _, c in UNIT_CHOICES]}, got {code!r}")
        self.units.setCurrentIndex(i)

    def values(self) -> tuple[float | None, str | None]:
        """``(fs_hz, units)`` for :func:`ecgaffect.io.load_session` (None: the file's own)."""
        fs = None if self._fs_from_file is not None else float(self.rate.value())
        unit = None if self._unit_from_file is not None else self.units.currentData()
        return fs, unit
