"""What ``ecgaffect demo`` needs: the bundled recording, the packaged model, a display.

The demo replays a bundled real ECG recording as if it were live and scores it with the
packaged default model (a demo model, not validated for affect).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

from ecgaffect.model import stress_model_path

__all__ = [
    "BUNDLED_DEMO_RECORDING",
    "demo_inputs",
    "find_bundled_recording",
    "gui_available",
    "has_display",
    "probe_qt_platform",
]

#: What Debian/Ubuntu need for Qt's xcb platform plugin (Qt names only the first).
QT_XCB_PACKAGES = ("libxcb-cursor0", "libxcb-icccm4", "libxcb-keysyms1")
#: The exact line that installs them.
QT_XCB_INSTALL = "sudo apt-get install -y " + " ".join(QT_XCB_PACKAGES)

_QT_PROBE = (
    "import sys\n"
    "from PySide6.QtWidgets import QApplication\n"
    "app = QApplication(['ecgaffect-probe'])\n"
    "sys.stdout.write(app.platformName())\n"
)

#: The recording ``ecgaffect demo`` replays (in ``recordings/``): EEGMAT Subject07 at rest,
#: then doing mental arithmetic (task onset marker at 182 s); the stress model never trained
#: on this subject.
BUNDLED_DEMO_RECORDING = "eegmat_subject07_rest_arithmetic.xdfz"


def find_bundled_recording(name: str = BUNDLED_DEMO_RECORDING) -> Path | None:
    """The bundled recording ``recordings/NAME`` from the working folder or the source tree."""
    here = Path(__file__).resolve()
    for base in (Path.cwd(), *here.parents):
        candidate = base / "recordings" / name
        if candidate.is_file():
            return candidate
    return None


def has_display() -> bool:
    """True when a GUI window can be shown (an X11/Wayland display, or macOS/Windows)."""
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def gui_available() -> bool:
    """True when the ``gui`` extra (pyqtgraph, PySide6) is installed."""
    return all(importlib.util.find_spec(m) is not None for m in ("pyqtgraph", "PySide6"))


def probe_qt_platform(
    timeout_s: float = 20.0, env: dict[str, str] | None = None
) -> tuple[bool, str]:
    """Try Qt's platform plugin in a child process before the GUI commits to it.

    Qt aborts the whole process (SIGABRT) when its platform plugin (xcb on Linux) cannot
    load, so the check runs in a throwaway ``python`` that only creates a ``QApplication``.

    Args:
        timeout_s: how long the child may take.
        env: its environment (default: this process's).

    Returns:
        ``(True, platform name)`` when a window can be opened, else ``(False, why)`` with
        the install line for the system packages the xcb plugin needs.
    """
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _QT_PROBE],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"Qt probe did not finish ({exc})"
    if proc.returncode == 0:
        return True, proc.stdout.strip() or "ok"
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    detail = next((ln for ln in lines if "plugin" in ln.lower()), lines[-1] if lines else "")
    why = f"Qt cannot open a window (exit {proc.returncode}): {detail.strip()}"
    if sys.platform.startswith("linux"):
        why += f"\n  on Debian/Ubuntu install the libraries Qt's xcb plugin needs: {QT_XCB_INSTALL}"
    return False, why


def demo_inputs(recording: Path | None = None) -> tuple[Path, Path]:
    """``(recording, model)`` for the demo: ``recording`` or the bundled one, and the
    packaged stress model (validated on EEGMAT); :class:`FileNotFoundError` naming what is
    missing.
    """
    recording = recording or find_bundled_recording()
    if recording is None or not Path(recording).is_file():
        raise FileNotFoundError(
            f"demo recording not found ({recording or 'recordings/' + BUNDLED_DEMO_RECORDING}); "
            "run from the repository folder or pass --recording FILE"
        )
    model = stress_model_path()
    if model is None:
        raise FileNotFoundError(
            "the packaged stress model is missing; rebuild it with `make stress-model`"
        )
    return Path(recording), model
