"""Small helpers shared by the LSL source and the LSL outlets/marker inlet."""

from __future__ import annotations

__all__ = ["lsl_config_with_log_level", "quiet_liblsl", "quote_query_value", "user_lsl_config"]


def quote_query_value(value: str) -> str:
    """``value`` quoted for an LSL resolve predicate (``name='...'``).

    LSL predicates (XPath 1.0) have no escape for the quote character, so a value containing
    a single quote cannot be matched exactly: it is rejected with ValueError.
    """
    if "'" in value:
        raise ValueError(f"LSL query values cannot contain a single quote, got {value!r}")
    return f"'{value}'"


#: Where liblsl looks for its configuration file, first match wins (liblsl's documented order
#: after the ``LSLAPICFG`` environment variable).
LSL_CONFIG_PATHS = ("lsl_api.cfg", "~/lsl_api/lsl_api.cfg", "/etc/lsl_api/lsl_api.cfg")
#: liblsl log levels: -2 errors, -1 warnings, 0 info, 1-9 more detail.
LSL_LOG_LEVELS = {"error": -2, "warning": -1, "info": 0, "debug": 9}


def user_lsl_config() -> tuple[str, str | None]:
    """The text of the liblsl configuration file liblsl itself would read, and its path
    (``("", None)`` when there is none)."""
    import os
    from pathlib import Path

    candidates = [os.environ["LSLAPICFG"]] if os.environ.get("LSLAPICFG") else []
    candidates += list(LSL_CONFIG_PATHS)
    for c in candidates:
        p = Path(c).expanduser()
        if p.is_file():
            try:
                return p.read_text(encoding="utf-8", errors="replace"), str(p)
            except OSError:
                continue
    return "", None


def lsl_config_with_log_level(config: str, level: str) -> str:
    """``config`` (an lsl_api.cfg text) with a ``[log] level`` added when it sets none: the
    user's own ``[log]`` section always wins, and every other setting (ResolveScope,
    KnownPeers, ...) is kept as it is."""
    if level not in LSL_LOG_LEVELS:
        raise ValueError(f"liblsl log level must be one of {sorted(LSL_LOG_LEVELS)}, got {level!r}")
    if any(line.strip().lower() == "[log]" for line in config.splitlines()):
        return config
    sep = "" if not config or config.endswith("\n") else "\n"
    return f"{config}{sep}[log]\nlevel = {LSL_LOG_LEVELS[level]}\n"


def quiet_liblsl(level: str = "warning") -> bool:
    """Make liblsl log only ``level`` and above (its default prints INFO lines to stderr).

    Must run before the first LSL call of the process (liblsl reads its configuration once);
    keeps the user's lsl_api.cfg settings. Returns False (and changes nothing) when pylsl is
    not installed or ``ECGAFFECT_KEEP_LSL_CONFIG`` is set in the environment: an application
    (or a test suite) that configures liblsl itself keeps its configuration.
    """
    import os

    if os.environ.get("ECGAFFECT_KEEP_LSL_CONFIG"):
        return False
    try:
        import pylsl
    except ImportError:
        return False
    text, _ = user_lsl_config()
    pylsl.set_config_content(lsl_config_with_log_level(text, level))
    return True
