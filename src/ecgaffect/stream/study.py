"""Study files: which participant wears which Polar strap (TOML or JSON).

A study file lists participants, each with an id (used in LSL stream names such as
``P01-ECG``, so letters, digits, ``_`` and ``-`` only), the strap (a Bluetooth address, a
macOS device UUID, or an advertised name such as ``Polar H10 1234ABCD``; a name matches any
device whose name starts with it) and optional notes::

    # study.toml
    name = "team-stress-2026"          # optional

    [[participants]]
    id = "P01"
    strap = "A0:9E:1A:12:34:56"
    notes = "left-handed"              # optional

    [[participants]]
    id = "P02"
    strap = "Polar H10 1234ABCD"

The same as JSON: ``{"name": "...", "participants": [{"id": "P01", "strap": "..."}, ...]}``.
Ids and straps must be unique. Every error names the file, the line (syntax errors) or the
key (``participants[2].strap``) and what was expected.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "Participant",
    "Study",
    "StudyFileError",
    "is_ble_address",
    "load_study",
    "parse_strap_arg",
    "study_from_straps",
]

_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_MAC_RE = re.compile(r"^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$")
_UUID_RE = re.compile(r"^[0-9A-Fa-f]{8}-([0-9A-Fa-f]{4}-){3}[0-9A-Fa-f]{12}$")
_PARTICIPANT_KEYS = ("id", "strap", "notes")


class StudyFileError(ValueError):
    """A study file (or ``--strap`` argument) that cannot be used; the message says where."""


def is_ble_address(text: str) -> bool:
    """True for a Bluetooth address ``AA:BB:CC:DD:EE:FF`` or a macOS device UUID."""
    return bool(_MAC_RE.match(text) or _UUID_RE.match(text))


@dataclass(frozen=True)
class Participant:
    """One participant and their strap (an address, or a name prefix to scan for)."""

    id: str
    strap: str
    notes: str = ""

    @property
    def address(self) -> str | None:
        """The strap's Bluetooth address, or None when the strap is given by name."""
        return self.strap.upper() if is_ble_address(self.strap) else None

    @property
    def name_prefix(self) -> str | None:
        """The strap's advertised name (prefix), or None when given by address."""
        return None if is_ble_address(self.strap) else self.strap


@dataclass(frozen=True)
class Study:
    participants: tuple[Participant, ...]
    name: str = ""
    path: Path | None = None

    @property
    def ids(self) -> list[str]:
        return [p.id for p in self.participants]


def _check_participant(where: str, raw: Any, key: str) -> Participant:
    if not isinstance(raw, dict):
        raise StudyFileError(
            f"{where}: {key} must be a table/object with 'id' and 'strap', got {type(raw).__name__}"
        )
    unknown = sorted(set(raw) - set(_PARTICIPANT_KEYS))
    if unknown:
        raise StudyFileError(
            f"{where}: {key} has unknown key(s) {', '.join(map(repr, unknown))}; allowed: "
            + ", ".join(_PARTICIPANT_KEYS)
        )
    for field in ("id", "strap"):
        if field not in raw:
            raise StudyFileError(f"{where}: {key}.{field} is missing (expected a string)")
        if not isinstance(raw[field], str) or not raw[field].strip():
            raise StudyFileError(
                f"{where}: {key}.{field} must be a non-empty string, got {raw[field]!r}"
            )
    pid = raw["id"].strip()
    if not _ID_RE.match(pid):
        raise StudyFileError(
            f"{where}: {key}.id {pid!r} must be 1-64 letters, digits, '_' or '-' (it names "
            "the LSL streams, e.g. P01-ECG)"
        )
    notes = raw.get("notes", "")
    if not isinstance(notes, str):
        raise StudyFileError(f"{where}: {key}.notes must be a string, got {notes!r}")
    return Participant(pid, raw["strap"].strip(), notes)


def _check_unique(where: str, participants: Sequence[Participant], keys: Sequence[str]) -> None:
    seen_id: dict[str, str] = {}
    seen_strap: dict[str, str] = {}
    for p, key in zip(participants, keys, strict=True):
        if p.id in seen_id:
            raise StudyFileError(
                f"{where}: {key}.id {p.id!r} is already used by {seen_id[p.id]}; ids must be unique"
            )
        strap = p.strap.upper()
        if strap in seen_strap:
            raise StudyFileError(
                f"{where}: {key}.strap {p.strap!r} is already worn by {seen_strap[strap]}; "
                "one strap per participant"
            )
        seen_id[p.id] = key
        seen_strap[strap] = key


def study_from_mapping(data: Any, where: str, path: Path | None = None) -> Study:
    """Validate a parsed study document (``where`` names it in errors)."""
    if not isinstance(data, dict):
        raise StudyFileError(
            f"{where}: the top level must be a table/object with 'participants', got "
            f"{type(data).__name__}"
        )
    unknown = sorted(set(data) - {"name", "participants"})
    if unknown:
        raise StudyFileError(
            f"{where}: unknown top-level key(s) {', '.join(map(repr, unknown))}; allowed: "
            "name, participants"
        )
    name = data.get("name", "")
    if not isinstance(name, str):
        raise StudyFileError(f"{where}: name must be a string, got {name!r}")
    raw = data.get("participants")
    if raw is None:
        raise StudyFileError(
            f"{where}: no 'participants' (expected [[participants]] tables in TOML or a "
            '"participants" list in JSON)'
        )
    if not isinstance(raw, list) or not raw:
        raise StudyFileError(
            f"{where}: participants must be a non-empty list of tables/objects, got {raw!r}"
        )
    keys = [f"participants[{i}]" for i in range(len(raw))]
    participants = [_check_participant(where, r, k) for r, k in zip(raw, keys, strict=True)]
    _check_unique(where, participants, keys)
    return Study(tuple(participants), name, path)


def load_study(path: str | Path) -> Study:
    """Read a study file (``.toml`` or ``.json``); :class:`StudyFileError` if unusable."""
    path = Path(path)
    where = f"study file {str(path)!r}"
    suffix = path.suffix.lower()
    if suffix not in (".toml", ".json"):
        raise StudyFileError(f"{where}: expected a .toml or .json file, got {suffix or 'none'!r}")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise StudyFileError(f"{where} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise StudyFileError(f"{where}: cannot be read as UTF-8 text ({exc})") from exc
    try:
        data = tomllib.loads(text) if suffix == ".toml" else json.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # tomllib's message ends with "(at line L, column C)"
        raise StudyFileError(f"{where}: not valid TOML: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise StudyFileError(
            f"{where}: not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from exc
    return study_from_mapping(data, where, path)


def parse_strap_arg(text: str) -> Participant:
    """``--strap ID=STRAP`` (``P01=A0:9E:1A:12:34:56`` or ``P02=Polar H10 1234ABCD``)."""
    pid, sep, strap = text.partition("=")
    if not sep or not pid.strip() or not strap.strip():
        raise StudyFileError(
            f"--strap {text!r}: expected ID=ADDRESS or ID=NAME, e.g. P01=A0:9E:1A:12:34:56 or "
            "'P02=Polar H10 1234ABCD'"
        )
    return _check_participant(f"--strap {text!r}", {"id": pid, "strap": strap}, "participant")


def study_from_straps(args: Iterable[str]) -> Study:
    """A study from ``--strap`` arguments (same checks as a file: unique ids and straps)."""
    participants = [parse_strap_arg(a) for a in args]
    if not participants:
        raise StudyFileError("no straps given: use --strap ID=STRAP (repeatable) or --study FILE")
    _check_unique("--strap", participants, [f"--strap {p.id}={p.strap}" for p in participants])
    return Study(tuple(participants))
