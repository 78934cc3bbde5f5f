"""Study files (TOML/JSON) and --strap arguments: the format and every error path."""

from __future__ import annotations

import json

import pytest

from ecgaffect.stream.study import (
    Participant,
    StudyFileError,
    is_ble_address,
    load_study,
    parse_strap_arg,
    study_from_straps,
)

TOML = """
name = "team-stress"

[[participants]]
id = "P01"
strap = "a0:9e:1a:12:34:56"
notes = "left-handed"

[[participants]]
id = "P02"
strap = "Polar H10 1234ABCD"
"""


def test_toml_and_json_give_the_same_study(tmp_path):
    t = tmp_path / "study.toml"
    t.write_text(TOML)
    j = tmp_path / "study.json"
    j.write_text(
        json.dumps(
            {
                "name": "team-stress",
                "participants": [
                    {"id": "P01", "strap": "a0:9e:1a:12:34:56", "notes": "left-handed"},
                    {"id": "P02", "strap": "Polar H10 1234ABCD"},
                ],
            }
        )
    )
    a, b = load_study(t), load_study(j)
    assert a.participants == b.participants
    assert a.name == "team-stress"
    assert a.ids == ["P01", "P02"]
    p1, p2 = a.participants
    assert p1 == Participant("P01", "a0:9e:1a:12:34:56", "left-handed")
    assert p1.address == "A0:9E:1A:12:34:56"
    assert p1.name_prefix is None
    assert p2.address is None
    assert p2.name_prefix == "Polar H10 1234ABCD"


def test_addresses():
    assert is_ble_address("A0:9E:1A:12:34:56")
    assert is_ble_address("12345678-1234-1234-1234-1234567890AB")  # macOS
    assert not is_ble_address("Polar H10 1234ABCD")
    assert not is_ble_address("A0:9E:1A:12:34")


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("[[participants]\nid = 1", r"not valid TOML: .*line 1"),
        ("name = 3\n[[participants]]\nid='P1'\nstrap='x'", r"name must be a string, got 3"),
        ("title = 'x'", r"unknown top-level key\(s\) 'title'; allowed: name, participants"),
        ("name = 'x'", r"no 'participants' \(expected \[\[participants\]\] tables"),
        ("participants = []", r"participants must be a non-empty list"),
        ("participants = [1]", r"participants\[0\] must be a table/object .* got int"),
        (
            "[[participants]]\nid = 'P01'",
            r"participants\[0\]\.strap is missing \(expected a string\)",
        ),
        (
            "[[participants]]\nid = 'P01'\nstrap = 7",
            r"participants\[0\]\.strap must be a non-empty string, got 7",
        ),
        (
            "[[participants]]\nid = 'P 01'\nstrap = 'x'",
            r"participants\[0\]\.id 'P 01' must be 1-64 letters",
        ),
        (
            "[[participants]]\nid = 'P01'\nstrap = 'x'\nnote = 'y'",
            r"unknown key\(s\) 'note'; allowed: id, strap, notes",
        ),
        (
            "[[participants]]\nid = 'P01'\nstrap = 'x'\nnotes = 5",
            r"participants\[0\]\.notes must be a string",
        ),
        (
            "[[participants]]\nid='P01'\nstrap='AA:BB:CC:DD:EE:FF'\n"
            "[[participants]]\nid='P01'\nstrap='x'",
            r"participants\[1\]\.id 'P01' is already used by participants\[0\]",
        ),
        (
            "[[participants]]\nid='P01'\nstrap='AA:BB:CC:DD:EE:FF'\n"
            "[[participants]]\nid='P02'\nstrap='aa:bb:cc:dd:ee:ff'",
            r"participants\[1\]\.strap 'aa:bb:cc:dd:ee:ff' is already worn by participants\[0\]",
        ),
    ],
)
def test_bad_toml_files_name_file_key_and_expectation(tmp_path, text, match):
    path = tmp_path / "s.toml"
    path.write_text(text)
    with pytest.raises(StudyFileError, match=match) as info:
        load_study(path)
    assert str(path) in str(info.value)


def test_bad_json_names_line_and_column(tmp_path):
    path = tmp_path / "s.json"
    path.write_text('{\n  "participants": [\n    {"id": "P01",}\n  ]\n}')
    with pytest.raises(StudyFileError, match=r"s\.json'.*not valid JSON at line 3, column"):
        load_study(path)
    path.write_text("[1, 2]")
    with pytest.raises(StudyFileError, match=r"top level must be a table/object.*got list"):
        load_study(path)


def test_missing_unreadable_and_wrong_suffix(tmp_path):
    with pytest.raises(StudyFileError, match=r"nope\.toml' does not exist"):
        load_study(tmp_path / "nope.toml")
    with pytest.raises(StudyFileError, match=r"expected a \.toml or \.json file, got '\.yaml'"):
        load_study(tmp_path / "s.yaml")
    bad = tmp_path / "s.toml"
    bad.write_bytes(b"\xff\xfe\x00name")
    with pytest.raises(StudyFileError, match="cannot be read as UTF-8"):
        load_study(bad)


def test_strap_arguments():
    assert parse_strap_arg("P01=A0:9E:1A:12:34:56") == Participant("P01", "A0:9E:1A:12:34:56")
    assert parse_strap_arg("P02=Polar H10 1234ABCD").name_prefix == "Polar H10 1234ABCD"
    study = study_from_straps(["P01=A0:9E:1A:12:34:56", "P02=Polar H10 1"])
    assert study.ids == ["P01", "P02"]
    for bad in ("P01", "=AA", "P01=", "P 1=AA"):
        with pytest.raises(StudyFileError, match=r"--strap '"):
            parse_strap_arg(bad)
    with pytest.raises(StudyFileError, match="already used"):
        study_from_straps(["P01=A", "P01=B"])
    with pytest.raises(StudyFileError, match="no straps given"):
        study_from_straps([])
