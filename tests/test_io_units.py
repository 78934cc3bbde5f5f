"""io.units: the one parser of unit names (Poly5, SWELL, XDF, CSV, LSL)."""

from __future__ import annotations

import pytest

from ecgaffect.io.units import KNOWN_SPELLINGS, Unit, parse_unit, session_units


@pytest.mark.parametrize(
    ("text", "symbol"),
    [
        ("µV", "uV"),  # micro sign U+00B5
        ("μV", "uV"),  # greek mu U+03BC
        ("uV", "uV"),
        ("µVolt", "uV"),  # what TMSi writes
        ("uVolt", "uV"),
        (" µ Volt ", "uV"),
        ("Âµ V", "uV"),  # UTF-8 µ read as latin-1
        ("microvolt", "uV"),
        ("Microvolts", "uV"),
        ("[uV]", "uV"),
        ("nV", "nV"),
        ("nanovolts", "nV"),
        ("mV", "mV"),
        ("MV", "mV"),
        ("millivolt", "mV"),
        ("milli-volts", "mV"),
        ("V", "V"),
        ("Volt", "V"),
        ("VOLTS", "V"),
        ("a.u.", "au"),
        ("arbitrary units", "au"),
    ],
)
def test_spellings(text, symbol):
    unit = parse_unit(text)
    assert unit is not None
    assert unit.symbol == symbol


def test_every_documented_spelling_parses():
    assert all(parse_unit(s) is not None for s in KNOWN_SPELLINGS)


@pytest.mark.parametrize("text", ["", None, "bpm", "-", "µS", "kV", "furlongs", "volt-ampere"])
def test_not_a_unit_we_know(text):
    assert parse_unit(text) is None


def test_scales_and_session_units():
    assert parse_unit("µVolt").scale_to_uv == 1.0
    assert parse_unit("mV").scale_to_uv == 1e3
    assert parse_unit("V").scale_to_uv == 1e6
    assert parse_unit("nV").scale_to_uv == pytest.approx(1e-3)
    assert not parse_unit("au").is_voltage
    assert session_units(Unit("nV", 1e-3)) == ("uV", 1e-3)
    assert session_units(parse_unit("millivolts")) == ("mV", 1.0)


def test_xdf_and_csv_use_the_parser(tmp_path):
    import numpy as np

    from ecgaffect.io import load_session
    from ecgaffect.io.xdf import XdfStreamSpec, XdfWriter

    path = tmp_path / "tmsi.xdf"
    with open(path, "wb", buffering=0) as f:
        w = XdfWriter(f)
        w.add_stream(1, XdfStreamSpec("ECG", "ECG", [{"label": "ECG", "unit": "µVolt"}], 100.0))
        w.write_samples(1, np.arange(10) / 100.0, np.ones((10, 1)))
    assert load_session(path).units == "uV"
    table = tmp_path / "t.csv"
    table.write_text("time_s,ecg [mV]\n0,1\n0.01,2\n0.02,3\n")
    s = load_session(table)
    assert s.units == "mV"
    assert s.fs_hz == pytest.approx(100.0)
    with pytest.raises(ValueError, match=r"units='uV' was given but column 'ecg \[mV\]' says"):
        load_session(table, units="uV")
