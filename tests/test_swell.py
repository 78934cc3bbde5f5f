"""SWELL-KW loader tests on a generated tree in the official layout."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import numpy as np
import pytest

from ecgaffect.datasets import swell
from ecgaffect.datasets.base import DatasetError, LoadReport
from ecgaffect.datasets.session import get_scheme
from ecgaffect.io.poly5 import read_poly5
from fixtures_swell import (
    FS_HZ,
    LABEL_STEM,
    RAW_DIR,
    SWELL_CHANNELS,
    BlockSpec,
    default_blocks,
    label_rows,
    make_swell_tree,
    write_block_files,
    write_label_xlsx,
)


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return make_swell_tree(tmp_path_factory.mktemp("swell_xlsx"), labels="xlsx")


@pytest.fixture(scope="module")
def tab_tree(tmp_path_factory):
    return make_swell_tree(tmp_path_factory.mktemp("swell_tab"), labels="tab")


@pytest.fixture(scope="module")
def loaded(tree):
    report = LoadReport()
    return swell.load_sessions(tree, report=report, progress=False), report


# -- file names -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "pp", "block", "cont", "year"),
    [
        ("pp1_18-9-2012_c1.S00", 1, 1, False, 2012),
        ("pp1_18-9-2012-c1.S00", 1, 1, False, 2012),
        ("pp12_9-10-212_c1.S00", 12, 1, False, 2012),
        ("pp23_1-11-2012_c2_cont.S00", 23, 2, True, 2012),
        ("PP5_3-10-12_c3.s00", 5, 3, False, 2012),
        ("pp2_9-10-2013_c2.S00", 2, 2, False, 2013),
    ],
)
def test_parse_filename(name, pp, block, cont, year):
    parsed = swell.parse_filename(name)
    assert parsed is not None
    assert (parsed.pp, parsed.block, parsed.continuation) == (pp, block, cont)
    assert parsed.date is not None
    assert parsed.date.year == year


def test_parse_filename_notes_typos():
    assert swell.parse_filename("pp1_18-9-2012_c1.S00").notes == ()
    assert any("separator '-c'" in n for n in swell.parse_filename("pp1_18-9-2012-c1.S00").notes)
    assert any("three-digit" in n for n in swell.parse_filename("pp12_9-10-212_c1.S00").notes)


@pytest.mark.parametrize("name", ["readme.txt", "pp1_18-9-2012_c4.S00", "pp1.S00", "x_c1.S00"])
def test_parse_filename_rejects(name):
    assert swell.parse_filename(name) is None


# -- loading --------------------------------------------------------------------------------


def test_sessions_per_block(loaded):
    sessions, _ = loaded
    keys = [s.key for s in sessions]
    assert keys == [
        "swell/PP01/block1",
        "swell/PP01/block2",
        "swell/PP01/block3",
        "swell/PP02/block1",
        "swell/PP02/block2",
    ]
    for s in sessions:
        assert s.fs_hz == FS_HZ
        assert s.units == "uV"
        assert s.provenance["channel"] == "Raw physiological signal"


def test_ecg_is_the_raw_physiological_channel(tree, loaded):
    sessions, _ = loaded
    s = sessions[0]
    with read_poly5(tree / RAW_DIR / "pp1_18-9-2012-c1.S00") as f:
        expected = f.read_channel("Raw physiological signal")
        other = f.read_channel(0)
    np.testing.assert_allclose(s.ecg, expected, rtol=1e-6)
    assert not np.allclose(s.ecg, other)


def test_segments_follow_minute_timestamps(loaded):
    sessions, _ = loaded
    spec = default_blocks()[0]  # PP1 block 1: N, 3 minutes, first R; file starts 20 s early
    s = sessions[0]
    assert s.start_time == spec.start - timedelta(seconds=20)
    assert [seg.start_s for seg in s.segments] == [20.0, 80.0, 140.0]
    assert all(seg.end_s - seg.start_s == 60.0 for seg in s.segments)
    assert [seg.labels["condition"] for seg in s.segments] == ["R", "N", "N"]
    assert [seg.labels["stress"] for seg in s.segments] == ["R", "N", "N"]
    r, n, _ = s.segments
    assert math.isnan(r.labels["arousal"])
    assert n.labels["arousal"] == spec.ratings["Arousal_rc"]
    assert n.labels["valence"] == spec.ratings["Valence_rc"]
    assert n.labels["dominance"] == spec.ratings["Dominance"]
    assert s.provenance["block_condition"] == "N"


def test_nan_rating_and_schemes(loaded):
    sessions, _ = loaded
    t_block = sessions[1]  # PP1 block 2 (T): dominance missing in the sheet
    assert t_block.provenance["block_condition"] == "T"
    assert all(math.isnan(seg.labels["dominance"]) for seg in t_block.segments)
    scheme = get_scheme("binary")
    codes = [scheme.encode("stress", "swell", seg.labels["stress"]) for seg in t_block.segments]
    assert codes == [-1, 1, 1]  # R dropped, T = stress
    arousal = [scheme.encode("arousal", "swell", seg.labels["arousal"]) for seg in t_block.segments]
    assert arousal == [-1, 1, 1]  # 7 > 5


def test_continuation_appended_with_gap(tree, loaded):
    sessions, report = loaded
    s = sessions[4]  # PP2 block 2 with a 30 s gap before its continuation
    spec = default_blocks()[4]
    main = tree / RAW_DIR / spec.filename
    cont = tree / RAW_DIR / spec.cont_filename
    with read_poly5(main) as f1, read_poly5(cont) as f2:
        a, b = f1.read_channel(5), f2.read_channel(5)
    gap_n = spec.cont_gap_s * FS_HZ
    assert s.ecg.shape[0] == a.size + gap_n + b.size
    np.testing.assert_allclose(s.ecg[: a.size], a, rtol=1e-6)
    np.testing.assert_allclose(s.ecg[a.size + gap_n :], b, rtol=1e-6)
    fill = s.ecg[a.size : a.size + gap_n]
    assert fill.min() >= min(a[-1], b[0]) - 1e-3
    assert fill.max() <= max(a[-1], b[0]) + 1e-3
    assert [e.label for e in s.events] == ["gap_start", "gap_end"]
    assert s.events[0].time_s == pytest.approx(a.size / FS_HZ)
    assert s.events[1].time_s - s.events[0].time_s == pytest.approx(spec.cont_gap_s)
    # minute 1 overlaps the gap: dropped; minutes 0 (R), 2 and 3 (in the continuation) kept
    start = spec.start - timedelta(seconds=20)
    kept = [start + timedelta(seconds=seg.start_s) for seg in s.segments]
    assert kept == [spec.start + timedelta(minutes=m) for m in (0, 2, 3)]
    assert s.provenance["minutes_dropped"] == 1
    assert any("gap of 30.0 s" in p.message for p in report.problems)
    for seg in s.segments:
        for ev_s in (e.time_s for e in s.events):
            assert not seg.start_s <= ev_s < seg.end_s


def test_report_notes_typos_wrong_year_and_missing_participant(loaded):
    _, report = loaded
    msgs = [str(p) for p in report.problems]
    assert any("pp1_18-9-2012-c1.S00" in m and "separator" in m for m in msgs)
    assert any("pp2_9-10-212_c1.S00" in m and "three-digit" in m for m in msgs)
    assert any("pp2_9-10-2013_c2.S00" in m and "differs from the header" in m for m in msgs)
    assert any("PP03 block 1 has label rows but no .S00 file" in m for m in msgs)
    assert report.skipped == []
    assert report.dataset == "swell"


def test_tab_labels_give_the_same_sessions(tab_tree, loaded):
    sessions_xlsx, _ = loaded
    sessions_tab = swell.load_sessions(tab_tree, progress=False)
    assert [s.key for s in sessions_tab] == [s.key for s in sessions_xlsx]
    for a, b in zip(sessions_tab, sessions_xlsx, strict=True):
        assert len(a.segments) == len(b.segments)
        for sa, sb in zip(a.segments, b.segments, strict=True):
            assert (sa.start_s, sa.end_s) == (sb.start_s, sb.end_s)
            for k in sa.labels:
                va, vb = sa.labels[k], sb.labels[k]
                assert va == vb or (math.isnan(va) and math.isnan(vb))


def test_participants_filter_and_channel_override(tree):
    sessions = swell.load_sessions(
        tree, participants=["pp02"], channel="ECG lead 1", progress=False
    )
    assert [s.key for s in sessions] == ["swell/PP02/block1", "swell/PP02/block2"]
    assert sessions[0].provenance["channel"] == "ECG lead 1"
    with read_poly5(tree / RAW_DIR / "pp2_9-10-212_c1.S00") as f:
        np.testing.assert_allclose(sessions[0].ecg, f.read_channel(0), rtol=1e-6)
    by_index = swell.load_sessions(tree, participants=[2], channel=0, progress=False)
    np.testing.assert_array_equal(by_index[0].ecg, sessions[0].ecg)


def test_bad_participant_value(tree):
    with pytest.raises(ValueError, match="participants: 'someone' is not a SWELL participant"):
        swell.load_sessions(tree, participants=["someone"], progress=False)


def test_unknown_channel_name(tree):
    with pytest.raises(ValueError, match="no channel named 'EEG'"):
        swell.load_sessions(tree, participants=[1], channel="EEG", progress=False)


def test_scan(tree):
    info = swell.scan(tree)
    assert info.participants == ["PP01", "PP02"]
    assert len(info.blocks) == 5
    expected_s = sum(b.n_samples for b in info.blocks) / FS_HZ
    assert info.hours == pytest.approx(expected_s / 3600)
    # minutes inside recordings: PP1 3+3+2, PP2 2 + (4 - 1 in gap)
    assert info.minute_counts["condition"] == {"R": 5, "N": 3, "T": 2, "I": 3}
    text = info.summary()
    assert "2 participants, 5 blocks" in text
    assert "PP03 block 1" in text


# -- errors ---------------------------------------------------------------------------------


def test_wrong_directory(tmp_path):
    (tmp_path / "something").mkdir()
    with pytest.raises(DatasetError, match="no '0 - Raw data/D - Physiology.*expected the SWELL"):
        swell.load_sessions(tmp_path, progress=False)
    with pytest.raises(FileNotFoundError, match="is not a directory"):
        swell.load_sessions(tmp_path / "nothing", progress=False)


def test_root_one_level_up(tree):
    parent = tree.parent
    sessions = swell.load_sessions(parent / tree.name, participants=[1], progress=False)
    assert len(sessions) == 3


def test_missing_label_file(tmp_path):
    (tmp_path / RAW_DIR).mkdir(parents=True)
    with pytest.raises(DatasetError, match=f"missing label file '{LABEL_STEM}.xlsx'"):
        swell.load_sessions(tmp_path, progress=False)


def test_unexpected_sheet_name(tmp_path):
    (tmp_path / RAW_DIR).mkdir(parents=True)
    write_label_xlsx(tmp_path / f"{LABEL_STEM}.xlsx", label_rows(default_blocks()[:1]), "Sheet1")
    with pytest.raises(DatasetError, match=r"no sheet named 'SWELLdata'.*\['Sheet1'\]"):
        swell.load_sessions(tmp_path, progress=False)


def test_bad_label_row(tmp_path):
    (tmp_path / RAW_DIR).mkdir(parents=True)
    rows = label_rows(default_blocks()[:1])
    rows[1]["Condition"] = "X"
    write_label_xlsx(tmp_path / f"{LABEL_STEM}.xlsx", rows)
    with pytest.raises(DatasetError, match=r"row 3: .*Condition='X'"):
        swell.load_sessions(tmp_path, progress=False)


def _tree_with_unlabelled_participant(tmp_path):
    make_swell_tree(tmp_path, blocks=default_blocks()[:1])
    extra = BlockSpec(9, 1, "N", datetime(2012, 12, 3, 9, 0), 2, filename="pp9_3-12-2012_c1.S00")
    write_block_files(tmp_path / RAW_DIR, extra)
    return tmp_path


def test_file_whose_participant_has_no_labels(tmp_path):
    root = _tree_with_unlabelled_participant(tmp_path)
    with pytest.raises(DatasetError, match=r"pp9_3-12-2012_c1\.S00: participant 9 .* no label"):
        swell.load_sessions(root, progress=False)
    report = LoadReport()
    sessions = swell.load_sessions(root, skip_bad=True, report=report, progress=False)
    assert [s.key for s in sessions] == ["swell/PP01/block1"]
    assert [p.path for p in report.skipped] == [str(root / RAW_DIR / "pp9_3-12-2012_c1.S00")]


def test_unparseable_file_name(tmp_path):
    root = make_swell_tree(tmp_path, blocks=default_blocks()[:1])
    (root / RAW_DIR / "calibration.S00").write_bytes(b"")
    with pytest.raises(DatasetError, match=r"calibration\.S00: file name is not ppN"):
        swell.load_sessions(root, progress=False)
    report = LoadReport()
    assert len(swell.load_sessions(root, skip_bad=True, report=report, progress=False)) == 1
    assert len(report.skipped) == 1


def test_clock_mismatch_is_reported(tmp_path):
    spec = default_blocks()[0]
    make_swell_tree(tmp_path, blocks=[spec])
    shifted = BlockSpec(**{**spec.__dict__, "start": spec.start + timedelta(days=1)})
    write_block_files(tmp_path / RAW_DIR, shifted)  # same name, header a day later
    with pytest.raises(DatasetError, match="none of the 3 label minutes .* clocks"):
        swell.load_sessions(tmp_path, progress=False)


def test_truncated_file_needs_allow_truncated(tmp_path):
    root = make_swell_tree(tmp_path, blocks=default_blocks()[:1])
    path = root / RAW_DIR / default_blocks()[0].filename
    path.write_bytes(path.read_bytes()[:-1000])
    with pytest.raises(DatasetError, match="truncated data"):
        swell.load_sessions(root, progress=False)
    report = LoadReport()
    (s,) = swell.load_sessions(root, allow_truncated=True, report=report, progress=False)
    assert s.segments[-1].end_s <= s.duration_s
    assert any("truncated" in p.message for p in report.problems)


def test_ecg_channel_not_recognised(tmp_path):
    from fixtures_swell import write_poly5

    path = write_poly5(
        tmp_path / "a.S00",
        np.zeros((2, 10)),
        fs_hz=256,
        names=["Bip 1", "Bip 2"],
        units=["µV", "µV"],
        start_time=datetime(2012, 9, 18, 13, 0),
    )
    with read_poly5(path) as f:
        with pytest.raises(
            DatasetError,
            match=r"cannot tell the ECG channel.*0: 'Bip 1' \[µV\].*published SWELL code.*6th "
            r"measured channel of the Mobi files.*only 2 measured channels",
        ):
            swell.select_ecg_channel(f)
        sig, how = swell.select_ecg_channel(f, "bip 2")
    assert sig.index == 1
    assert "requested" in how


def test_scan_records_bad_files_instead_of_raising(tmp_path):
    root = _tree_with_unlabelled_participant(tmp_path)
    info = swell.scan(root)
    assert info.participants == ["PP01"]
    assert [p.path for p in info.skipped] == [str(root / RAW_DIR / "pp9_3-12-2012_c1.S00")]
    assert "no label rows" in info.summary()


def _poly5(tmp_path, names, units):
    from fixtures_swell import write_poly5

    return write_poly5(
        tmp_path / "a.S00",
        np.zeros((len(names), 10)),
        fs_hz=256,
        names=names,
        units=units,
        start_time=datetime(2012, 9, 18, 13, 0),
    )


@pytest.mark.parametrize("unit", ["µVolt", "uVolt", "µ V", "microvolts"])
def test_ecg_channel_found_with_tmsi_unit_spellings(tmp_path, unit):
    names = [c[0] for c in SWELL_CHANNELS]
    units = [unit if u == "µV" else u for _, u in SWELL_CHANNELS]
    with read_poly5(_poly5(tmp_path, names, units)) as f:
        sig, how = swell.select_ecg_channel(f)
    assert sig.name == "Raw physiological signal"
    assert "raw" in how


def test_fallback_is_the_published_codes_6th_measured_channel(tmp_path, caplog):
    # no description matches; an unused (unnamed) channel is dropped before counting
    names = ["Bip 1", "", "Bip 2", "Bip 3", "Bip 4", "Bip 5", "Bip 6", "Aux"]
    units = ["µVolt"] * 8
    with read_poly5(_poly5(tmp_path, names, units)) as f, caplog.at_level("WARNING"):
        sig, how = swell.select_ecg_channel(f)
    assert (sig.index, sig.name) == (6, "Bip 6")
    assert "6th measured channel" in how
    assert "published SWELL code" in how
    assert any("published SWELL code" in r.getMessage() for r in caplog.records)


def test_fallback_refuses_a_6th_channel_that_is_no_voltage(tmp_path):
    names = ["Bip 1", "Bip 2", "Bip 3", "Bip 4", "Bip 5", "Counter"]
    with (
        read_poly5(_poly5(tmp_path, names, ["µV"] * 5 + ["-"])) as f,
        pytest.raises(DatasetError, match=r"6th measured channel is 'Counter' \[-\], not a"),
    ):
        swell.select_ecg_channel(f)


def test_nan_samples_in_a_block_are_a_named_error(tmp_path):
    from ecgaffect.io import NonFiniteSamplesError
    from ecgaffect.io.poly5 import BLOCK_HEADER_SIZE, SIGNAL_DESCRIPTION_SIZE

    root = make_swell_tree(tmp_path, blocks=default_blocks()[:1])
    path = root / RAW_DIR / default_blocks()[0].filename
    with read_poly5(path) as f:
        ch = swell.select_ecg_channel(f)[0].index
        offset = f.header_size + f.n_signals * SIGNAL_DESCRIPTION_SIZE + BLOCK_HEADER_SIZE
        n_channels = f.n_signals // 2
    raw = bytearray(path.read_bytes())
    for period in (3, 4):  # two NaN samples of the ECG channel in the first block
        at = offset + 4 * (period * n_channels + ch)
        raw[at : at + 4] = np.float32(np.nan).tobytes()
    path.write_bytes(bytes(raw))
    with pytest.raises(NonFiniteSamplesError, match=r"\.S00: 2 of \d+ samples of channel 'Raw"):
        swell.load_sessions(root, progress=False)
    report = LoadReport()
    assert swell.load_sessions(root, skip_bad=True, report=report, progress=False) == []
    assert "not finite" in report.skipped[0].message


def test_datasets_check_reports_nan_samples_like_the_loader(tmp_path, capsys):
    """``datasets check`` and the loader (training, replay) agree: NaN samples are a skip."""
    from ecgaffect.cli import main
    from ecgaffect.io.poly5 import BLOCK_HEADER_SIZE, SIGNAL_DESCRIPTION_SIZE

    root = make_swell_tree(tmp_path, blocks=default_blocks()[:2])
    path = root / RAW_DIR / default_blocks()[0].filename
    with read_poly5(path) as f:
        ch = swell.select_ecg_channel(f)[0].index
        at = f.header_size + f.n_signals * SIGNAL_DESCRIPTION_SIZE + BLOCK_HEADER_SIZE + 4 * ch
    raw = bytearray(path.read_bytes())
    raw[at : at + 4] = np.float32(np.inf).tobytes()
    path.write_bytes(bytes(raw))
    assert main(["datasets", "check", "swell", str(root), "--no-progress"]) != 0
    out = capsys.readouterr().out
    assert path.name in out
    assert "not finite" in out
    report = LoadReport()
    sessions = swell.load_sessions(root, skip_bad=True, report=report, progress=False)
    assert len(sessions) == 1  # the other block
    assert all(np.isfinite(s.ecg).all() for s in sessions)
    assert [path.name in p.path for p in report.skipped] == [True]
