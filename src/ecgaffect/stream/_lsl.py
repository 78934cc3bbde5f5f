"""Small helpers shared by the LSL source and the LSL outlets/marker inlet."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["configure_liblsl", "quote_query_value", "set_extra_config"]


def quote_query_value(value: str) -> str:
    """``value`` quoted for an LSL resolve predicate (``name='...'``).

    LSL predicates (XPath 1.0) have no escape for the quote character, so a value containing
    a single quote cannot be matched exactly: it is rejected with ValueError.
    """
    if "'" in value:
        raise ValueError(f"LSL query values cannot contain a single quote, got {value!r}")
    return f"'{value}'"


#: liblsl's ``[log] level`` (loguru verbosity, -3 to 9): -2 shows errors only, 0 adds INFO.
LIBLSL_QUIET_LEVEL = -2
LIBLSL_VERBOSE_LEVEL = 0

_extra_config = ""


def set_extra_config(content: str) -> None:
    """INI text that :func:`configure_liblsl` adds to liblsl's configuration.

    For settings that would otherwise be set with :func:`pylsl.set_config_content`
    (e.g. ``[multicast] ResolveScope = machine`` in tests), which that function would
    replace. Applies it at once, too, keeping the current log level.
    """
    global _extra_config
    _extra_config = content
    configure_liblsl(quiet=_quiet)


_quiet = True


def _user_config_file() -> Path | None:
    """The configuration file liblsl would read (its own search order), if any."""
    env = os.environ.get("LSLAPICFG")
    candidates = [Path(env)] if env else []
    candidates += [
        Path("lsl_api.cfg"),
        Path.home() / "lsl_api" / "lsl_api.cfg",
        Path("/etc/lsl_api/lsl_api.cfg"),
    ]
    return next((p for p in candidates if p.is_file()), None)


def configure_liblsl(*, quiet: bool = True) -> str:
    """Set liblsl's log level before its first use; returns the configuration content set.

    liblsl writes INFO lines to stderr ("Loaded default config", its git build, network
    interfaces) when the first stream is created; ``quiet`` keeps only its errors
    (``[log] level = -2``), otherwise INFO shows too. liblsl reads its configuration once, at
    its first use, so this must run before any stream, outlet or resolve (``ecgaffect``'s
    ``main`` calls it); later calls have no effect on a running liblsl.

    A user's ``lsl_api.cfg`` (``LSLAPICFG``, the working directory, ``~/lsl_api/``,
    ``/etc/lsl_api/``) is kept: the content set here is that file's text, plus the log level
    unless the file sets its own ``[log]`` section (the user's choice wins).
    """
    global _quiet
    _quiet = quiet
    import pylsl

    user = _user_config_file()
    text = user.read_text(encoding="utf-8", errors="replace") if user else ""
    parts = [text] if text else []
    if _extra_config:
        parts.append(_extra_config)
    if not any(line.strip().lower() == "[log]" for line in text.splitlines()):
        level = LIBLSL_QUIET_LEVEL if quiet else LIBLSL_VERBOSE_LEVEL
        parts.append(f"[log]\nlevel = {level}\n")
    content = "\n".join(p.rstrip("\n") + "\n" for p in parts)
    pylsl.set_config_content(content)
    return content
