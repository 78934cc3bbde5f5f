"""The one parser of unit names written into files and stream metadata.

Instrument software spells units in many ways: TMSi writes ``µVolt``/``uVolt``, LSL apps
``microvolts``, EDF headers ``uV``, mojibake turns ``µ`` into ``Âµ``. :func:`parse_unit` maps
all of them (case and whitespace do not matter; ``MV`` is read as millivolts, as nobody
records megavolts) to one :class:`Unit` with a canonical symbol and its factor to microvolts;
:func:`session_units` turns that into what a :class:`~ecgaffect.datasets.session.Session`
stores (``uV``, ``mV``, ``V``, ``au``).

Used by the Poly5, SWELL, XDF, CSV/array readers and the LSL source.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["KNOWN_SPELLINGS", "Unit", "parse_unit", "session_units"]


@dataclass(frozen=True)
class Unit:
    """A parsed unit: canonical ``symbol`` (``nV``, ``uV``, ``mV``, ``V`` or ``au``) and the
    factor that turns a value in it into microvolts (1.0 for ``au``).
    """

    symbol: str
    scale_to_uv: float

    @property
    def is_voltage(self) -> bool:
        return self.symbol != "au"


_VOLT_PREFIXES = {"n": "nV", "nano": "nV", "u": "uV", "micro": "uV", "m": "mV", "milli": "mV"}
_VOLT_PREFIXES[""] = "V"
_SCALE_TO_UV = {"nV": 1e-3, "uV": 1.0, "mV": 1e3, "V": 1e6, "au": 1.0}
_VOLT = re.compile(r"^(nano|micro|milli|n|u|m|)(v|volt|volts)$")
_ARBITRARY = {"au", "a.u.", "a.u", "arbitrary", "arbitraryunit", "arbitraryunits", "adu"}

#: Examples of what :func:`parse_unit` accepts (documentation and tests; not a lookup table).
KNOWN_SPELLINGS = (
    *("µV", "uV", "μV", "µVolt", "uVolt", "µ Volt", "µvolts", "microvolt", "microvolts"),
    *("nV", "nanovolt", "nanovolts", "mV", "MV", "mVolt", "millivolt", "millivolts"),
    *("V", "Volt", "volts", "au", "a.u.", "arbitrary units"),
)


def _normalise(text: str) -> str:
    s = text.replace("Âµ", "µ").casefold()  # casefold maps µ (U+00B5) to μ (U+03BC)
    s = s.replace("μ", "u")
    s = re.sub(r"[\s\[\]\(\)_\-]+", "", s)  # "µ Volt", "[uV]", "micro-volts"
    return s


def parse_unit(text: str | None) -> Unit | None:
    """The :class:`Unit` named by ``text``, or ``None`` if it names none we know (or is empty).

    >>> parse_unit(" µVolt ").symbol, parse_unit("millivolts").scale_to_uv
    ('uV', 1000.0)
    """
    if not text:
        return None
    s = _normalise(text)
    if s in _ARBITRARY:
        return Unit("au", 1.0)
    m = _VOLT.match(s)
    if m is None:
        return None
    symbol = _VOLT_PREFIXES[m.group(1)]
    return Unit(symbol, _SCALE_TO_UV[symbol])


def session_units(unit: Unit) -> tuple[str, float]:
    """``(session_units, factor)``: a :class:`Session` stores ``samples * factor`` in
    ``session_units``. Nanovolts, which a Session does not hold, become microvolts.
    """
    if unit.symbol == "nV":
        return "uV", 1e-3
    return unit.symbol, 1.0
