"""What ``ecgaffect demo`` needs: the bundled recording, the packaged model, a display.

The demo replays a bundled real ECG recording as if it were live and scores it with the
packaged default model (a demo model, not validated for affect).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

from ecgaffect.model import default_model_path

__all__ = [
    "BUNDLED_DEMO_RECORDING",
    "demo_inputs",
    "find_bundled_recording",
    "gui_available",
    "has_display",
]

#: The recording ``ecgaffect demo`` replays (in ``recordings/``).
BUNDLED_DEMO_RECORDING = "systole_emotional_images.xdfz"


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


def demo_inputs(recording: Path | None = None) -> tuple[Path, Path]:
    """``(recording, model)`` for the demo: ``recording`` or the bundled one, and the
    packaged default model; :class:`FileNotFoundError` naming what is missing.
    """
    recording = recording or find_bundled_recording()
    if recording is None or not Path(recording).is_file():
        raise FileNotFoundError(
            f"demo recording not found ({recording or 'recordings/' + BUNDLED_DEMO_RECORDING}); "
            "run from the repository folder or pass --recording FILE"
        )
    model = default_model_path()
    if model is None:
        raise FileNotFoundError(
            "the packaged default model is missing; rebuild it with `make model`"
        )
    return Path(recording), model
