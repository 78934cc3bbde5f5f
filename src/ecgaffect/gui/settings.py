"""GUI settings that persist between runs (last source, hop, trace window, model).

Stored as JSON in ``platformdirs.user_config_dir("ecgaffect")/gui.json``; the environment
variable ``ECGAFFECT_CONFIG_DIR`` overrides the folder (tests point it at a temporary
directory). A missing file gives the defaults; a corrupt file, or a field with a bad value,
gives the defaults for what cannot be read plus a logged warning, never a crash.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "CONFIG_DIR_ENV",
    "SETTINGS_FILE",
    "SOURCE_KINDS",
    "GuiSettings",
    "config_dir",
    "load_settings",
    "record_dir",
    "save_settings",
    "settings_path",
]

log = logging.getLogger(__name__)

CONFIG_DIR_ENV = "ECGAFFECT_CONFIG_DIR"
SETTINGS_FILE = "gui.json"
SOURCE_KINDS = ("replay", "lsl", "polar")


@dataclass
class GuiSettings:
    """What the GUI remembers.

    Attributes:
        source_kind: the last source used: ``"replay"``, ``"lsl"`` or ``"polar"``.
        polar_address: BLE address (or name) of the last Polar strap; empty = first found.
        lsl_name: name of the last LSL stream.
        replay_path: the last recording replayed.
        replay_speed: replay speed (1 = real time).
        hop_s: seconds between scores.
        trace_window_s: seconds of ECG shown in the scrolling trace.
        model_path: the exported model; empty = the packaged default.
        record_dir: folder for new recordings; empty = :data:`DEFAULT_RECORD_DIR`.
    """

    source_kind: str = "replay"
    polar_address: str = ""
    lsl_name: str = ""
    replay_path: str = ""
    replay_speed: float = 1.0
    hop_s: float = 1.0
    trace_window_s: float = 10.0
    model_path: str = ""
    record_dir: str = ""

    def validate(self) -> None:
        """Raise ValueError naming the first field with a value that is not allowed."""
        if self.source_kind not in SOURCE_KINDS:
            raise ValueError(f"source_kind must be one of {SOURCE_KINDS}, got {self.source_kind!r}")
        for name in ("replay_speed", "hop_s", "trace_window_s"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
                or value <= 0
            ):
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        if not 1.0 <= self.trace_window_s <= 60.0:
            raise ValueError(
                f"trace_window_s must be between 1 and 60 seconds, got {self.trace_window_s!r}"
            )
        for name in ("polar_address", "lsl_name", "replay_path", "model_path", "record_dir"):
            if not isinstance(getattr(self, name), str):
                raise ValueError(f"{name} must be a string, got {getattr(self, name)!r}")


#: where recordings go until a folder is chosen (``~/ecgaffect-recordings``)
DEFAULT_RECORD_DIR = Path("~") / "ecgaffect-recordings"


def record_dir(settings: GuiSettings) -> Path:
    """The absolute folder for new recordings: ``settings.record_dir`` or the default."""
    return Path(settings.record_dir or DEFAULT_RECORD_DIR).expanduser().resolve()


def config_dir() -> Path:
    """``$ECGAFFECT_CONFIG_DIR`` if set, else ``platformdirs.user_config_dir("ecgaffect")``."""
    env = os.environ.get(CONFIG_DIR_ENV)
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_config_dir("ecgaffect"))


def settings_path() -> Path:
    """Where :func:`load_settings` / :func:`save_settings` read and write by default."""
    return config_dir() / SETTINGS_FILE


def load_settings(path: str | os.PathLike[str] | None = None) -> GuiSettings:
    """Read the settings; defaults (and a warning) for anything missing, unknown or invalid."""
    path = Path(path) if path is not None else settings_path()
    if not path.exists():
        return GuiSettings()
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        log.warning("settings file %s cannot be read (%s); using the defaults", path, exc)
        return GuiSettings()
    if not isinstance(data, dict):
        log.warning(
            "settings file %s holds %s, not a JSON object; using the defaults",
            path,
            type(data).__name__,
        )
        return GuiSettings()
    settings = GuiSettings()
    names = {f.name for f in dataclasses.fields(GuiSettings)}
    for key, value in data.items():
        if key not in names:
            log.warning("settings file %s: ignoring unknown setting %r", path, key)
            continue
        trial = dataclasses.replace(settings, **{key: value})
        try:
            trial.validate()
        except ValueError as exc:
            log.warning(
                "settings file %s: %s; using the default %r", path, exc, getattr(settings, key)
            )
            continue
        settings = trial
    return settings


def save_settings(settings: GuiSettings, path: str | os.PathLike[str] | None = None) -> Path:
    """Write ``settings`` as JSON (atomically: a temporary file renamed over the old one)."""
    settings.validate()
    path = Path(path) if path is not None else settings_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(dataclasses.asdict(settings), indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path
