"""Pick one session of a research dataset (or of our recordings) to replay in the GUI.

The dialog lists the datasets of :data:`ecgaffect.datasets.registry.DATASETS`, takes the
dataset's root folder, loads its sessions with :func:`~ecgaffect.datasets.registry.load_dataset`
on a worker thread (reading a dataset takes seconds; the Qt thread only polls the future) and
lists them by :attr:`Session.key`. :meth:`DatasetSessionDialog.selected_session` returns the
chosen :class:`~ecgaffect.datasets.session.Session`, which the main window replays with
:class:`~ecgaffect.stream.sources.replay.ReplaySource`.
"""

from __future__ import annotations

import concurrent.futures
import logging
from pathlib import Path
from typing import Any

from ecgaffect.datasets.registry import DATASETS, GENERATED, get_loader, load_dataset
from ecgaffect.datasets.session import Session
from ecgaffect.gui.widgets import QtCore, QtWidgets

__all__ = ["DatasetSessionDialog", "load_sessions"]

log = logging.getLogger(__name__)


def load_sessions(name: str, root: str | Path) -> list[Session]:
    """The sessions of dataset ``name`` under ``root`` that have ECG, in key order.

    Raises:
        ValueError: unknown dataset name (the message lists the known ones).
        FileNotFoundError: ``root`` is not a folder (for datasets read from files).
    """
    get_loader(name)  # ValueError naming the known datasets
    if name not in GENERATED:
        root_path = Path(root)
        if not str(root).strip() or not root_path.exists():
            raise FileNotFoundError(f"dataset {name!r}: root folder {str(root)!r} does not exist")
    sessions = load_dataset(name, root, skip_bad=True)
    sessions = [s for s in sessions if s.ecg.size > 0]
    return sorted(sessions, key=lambda s: s.key)


class DatasetSessionDialog(QtWidgets.QDialog):
    """Dataset name, root folder and a session list (see the module docstring).

    Args:
        executor: where :func:`load_sessions` runs (default: a private one-thread pool).
        dataset, root: initial values of the fields.
    """

    def __init__(
        self,
        parent: Any = None,
        *,
        executor: concurrent.futures.Executor | None = None,
        dataset: str = "amigos",
        root: str = "",
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Replay a dataset session")
        self._own_executor = executor is None
        self._executor = executor or concurrent.futures.ThreadPoolExecutor(
            1, "ecgaffect-gui-dataset"
        )
        self._future: concurrent.futures.Future | None = None
        self.sessions: list[Session] = []
        self.error = ""

        self.dataset = QtWidgets.QComboBox()
        self.dataset.addItems(sorted(DATASETS))
        if dataset in DATASETS:
            self.dataset.setCurrentText(dataset)
        self.root = QtWidgets.QLineEdit(root)
        self.root.setPlaceholderText("dataset root folder")
        browse = QtWidgets.QPushButton("Folder…")
        browse.clicked.connect(self._browse)
        self.load_button = QtWidgets.QPushButton("List sessions")
        self.load_button.clicked.connect(self.load)
        self.session_list = QtWidgets.QListWidget()
        self.session_list.itemDoubleClicked.connect(lambda *_: self.accept())
        self.note = QtWidgets.QLabel("")
        self.note.setWordWrap(True)
        self.buttons = QtWidgets.QDialogButtonBox(
            QtWidgets.QDialogButtonBox.StandardButton.Ok
            | QtWidgets.QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.session_list.currentRowChanged.connect(self._update_ok)

        grid = QtWidgets.QGridLayout(self)
        grid.addWidget(QtWidgets.QLabel("dataset"), 0, 0)
        grid.addWidget(self.dataset, 0, 1, 1, 2)
        grid.addWidget(QtWidgets.QLabel("root"), 1, 0)
        grid.addWidget(self.root, 1, 1)
        grid.addWidget(browse, 1, 2)
        grid.addWidget(self.load_button, 2, 0, 1, 3)
        grid.addWidget(self.session_list, 3, 0, 1, 3)
        grid.addWidget(self.note, 4, 0, 1, 3)
        grid.addWidget(self.buttons, 5, 0, 1, 3)
        self.resize(460, 420)
        self._poll = QtCore.QTimer(self)
        self._poll.timeout.connect(self._check)
        self._update_ok()

    def _browse(self) -> None:
        path = QtWidgets.QFileDialog.getExistingDirectory(self, "Dataset root folder")
        if path:
            self.root.setText(path)

    @property
    def loading(self) -> bool:
        """True while the sessions are being read."""
        return self._future is not None and not self._future.done()

    def load(self) -> None:
        """Read the sessions of the chosen dataset in the background and list them."""
        if self.loading:
            return
        name, root = self.dataset.currentText(), self.root.text().strip()
        self.session_list.clear()
        self.sessions = []
        self.error = ""
        self.note.setText(f"reading {name} from {root or '(generated)'}…")
        self.load_button.setEnabled(False)
        self._future = self._executor.submit(load_sessions, name, root)
        self._poll.start(100)
        self._update_ok()

    def _check(self) -> None:
        fut = self._future
        if fut is None or not fut.done():
            return
        self._poll.stop()
        self.load_button.setEnabled(True)
        exc = fut.exception()
        if exc is not None:
            self.error = f"{type(exc).__name__}: {exc}"
            self.note.setText(self.error)
            self.note.setStyleSheet("color: #c92a2a;")
            return
        self.sessions = list(fut.result())
        for s in self.sessions:
            self.session_list.addItem(f"{s.key}  ({s.duration_s:.0f} s at {s.fs_hz:g} Hz)")
        self.note.setStyleSheet("")
        self.note.setText(f"{len(self.sessions)} session(s)" if self.sessions else "no sessions")
        if self.sessions:
            self.session_list.setCurrentRow(0)
        self._update_ok()

    def _update_ok(self, *_: Any) -> None:
        ok = self.buttons.button(QtWidgets.QDialogButtonBox.StandardButton.Ok)
        ok.setEnabled(self.selected_session() is not None)

    def select(self, key: str) -> None:
        """Select the session whose :attr:`Session.key` is ``key`` (ValueError if absent)."""
        keys = [s.key for s in self.sessions]
        if key not in keys:
            raise ValueError(f"session {key!r} is not in this dataset; available: {keys}")
        self.session_list.setCurrentRow(keys.index(key))

    def selected_session(self) -> Session | None:
        """The chosen session (None while nothing is listed or selected)."""
        row = self.session_list.currentRow()
        return self.sessions[row] if 0 <= row < len(self.sessions) else None

    def done(self, result: int) -> None:  # noqa: D102 - Qt's dialog end
        self._poll.stop()
        if self._own_executor:
            self._executor.shutdown(wait=False, cancel_futures=True)
        super().done(result)
