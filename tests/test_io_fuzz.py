"""Bounded mutation fuzzing of every reader of ecgaffect.io (fixed seed, a few seconds each).

Each mutant of a valid file (bytes flipped, set to 0x00/0xFF, inserted, deleted, or the file
cut short) must either load or raise :class:`~ecgaffect.io.errors.FileFormatError`; nothing
else (no ``struct.error``, ``BadZipFile``, ``MemoryError``, ``UnicodeDecodeError``...).
"""

from __future__ import annotations

import gzip
import pickle
import warnings
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from ecgaffect.io import FileFormatError, load_session
from ecgaffect.io.poly5 import read_poly5
from ecgaffect.stream.recorder import XdfRecorder
from ecgaffect.stream.sources.base import EcgChunk, Marker
from fixtures_swell import write_poly5

N_MUTANTS = 200


def _mutate(data: bytes, rng: np.random.Generator) -> bytes:
    b = bytearray(data)
    for _ in range(int(rng.integers(1, 4))):
        kind = int(rng.integers(0, 6))
        i = int(rng.integers(0, max(len(b), 1)))
        if kind == 0 and b:
            b[i % len(b)] ^= 1 << int(rng.integers(0, 8))
        elif kind == 1 and b:
            b[i % len(b)] = int(rng.choice([0x00, 0xFF, 0x7F, 0x80]))
        elif kind == 2:
            b[i:i] = bytes(rng.integers(0, 256, int(rng.integers(1, 9)), dtype=np.uint8))
        elif kind == 3:
            del b[i : i + int(rng.integers(1, 9))]
        elif kind == 4:
            b = b[:i]
        else:  # a plausible "size" field: a run of 0xFF
            b[i : i + 4] = b"\xff\xff\xff\x7f"
    return bytes(b)


def _fuzz(
    valid: bytes,
    path: Path,
    load: Callable[[Path], object],
    seed: int,
    *,
    n: int = N_MUTANTS,
    must_fail: bool = True,
) -> dict[str, int]:
    rng = np.random.default_rng(seed)
    outcomes = {"loaded": 0, "named error": 0}
    for _ in range(n):
        path.write_bytes(_mutate(valid, rng))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # a damaged file may warn; it must not crash
                load(path)
        except FileFormatError as exc:
            named = str(exc).startswith(str(path))
            outcomes["named error"] += named
            outcomes.setdefault("error not naming the file", 0)
            outcomes["error not naming the file"] += not named
        else:
            outcomes["loaded"] += 1
    assert outcomes.get("error not naming the file", 0) == 0, outcomes
    if must_fail:
        assert outcomes["named error"] > 0  # the mutations did damage something
    return outcomes


def _recording(path: Path) -> bytes:
    with XdfRecorder(path, ecg_fs_hz=130.0, subject="P1") as rec:
        for k in range(4):
            idx = np.arange(k * 73, (k + 1) * 73)
            rec.on_chunk(EcgChunk(np.sin(idx / 5.0) * 800, 10.0 + idx / 130.0, k * 73))
            rec.flush()
        rec.on_marker(Marker(11.0, "go"))
    return path.read_bytes()


def test_fuzz_xdf(tmp_path):
    valid = _recording(tmp_path / "valid.xdf")
    _fuzz(valid, tmp_path / "m.xdf", load_session, seed=1)


def test_fuzz_xdfz(tmp_path):
    valid = gzip.compress(_recording(tmp_path / "valid.xdf"), mtime=0)
    _fuzz(valid, tmp_path / "m.xdfz", load_session, seed=2)


def test_fuzz_poly5(tmp_path):
    rng = np.random.default_rng(0)
    path = write_poly5(
        tmp_path / "valid.S00",
        rng.normal(0, 300, (3, 300)),
        fs_hz=256,
        names=["ECG", "HR", "Raw physiological signal"],
        units=["µVolt", "bpm", "mV"],
        start_time=datetime(2012, 9, 18, 13, 0),
        version=204,
        periods_per_block=64,
    )

    def load(p: Path) -> None:
        with read_poly5(p, allow_truncated=True) as f:
            for ch in range(len(f.signals)):
                f.read_channel(ch)

    _fuzz(path.read_bytes(), tmp_path / "m.S00", load, seed=3)


def test_fuzz_csv(tmp_path):
    t = np.arange(300) / 100.0
    x = np.round(np.sin(t * 7) * 500, 2)
    text = "time_s,ecg [uV]\n" + "".join(f"{a:.2f},{b}\n" for a, b in zip(t, x, strict=True))
    _fuzz(text.encode(), tmp_path / "m.csv", load_session, seed=4)


def test_fuzz_npy(tmp_path):
    np.save(tmp_path / "valid.npy", np.sin(np.arange(500) / 5.0))
    valid = (tmp_path / "valid.npy").read_bytes()
    _fuzz(valid, tmp_path / "m.npy", lambda p: load_session(p, fs_hz=100.0), seed=5)


@pytest.mark.parametrize("compressed", [False, True])
def test_fuzz_npz(tmp_path, compressed):
    save = np.savez_compressed if compressed else np.savez
    save(tmp_path / "valid.npz", ecg=np.sin(np.arange(500) / 5.0), fs_hz=100.0)
    valid = (tmp_path / "valid.npz").read_bytes()
    _fuzz(valid, tmp_path / "m.npz", load_session, seed=6 + compressed)


def test_fuzz_wesad_pickle(tmp_path):
    from ecgaffect.datasets.wesad import load_pickle
    from fixtures_datasets import write_wesad

    files = write_wesad(tmp_path / "valid", subjects=(2,))
    raw = files["S2"].read_bytes()
    # the fixture is ~1 MB: mutate a short pickle of the same layout, so each try is quick
    data = pickle.loads(raw, encoding="latin1")
    small = {
        "signal": {"chest": {"ECG": data["signal"]["chest"]["ECG"][:500]}},
        "label": data["label"][:500],
        "subject": "S2",
    }
    valid = pickle.dumps(small, protocol=2).replace(b"numpy._core", b"numpy.core")
    _fuzz(valid, tmp_path / "m.pkl", load_pickle, seed=8)


@pytest.mark.parametrize("compressed", [False, True])
def test_fuzz_mat(tmp_path, compressed):
    """Mutated MATLAB files through the isolated reader: a crash of scipy is a named error."""
    import scipy.io

    from ecgaffect.datasets._util import load_mat

    path = tmp_path / "valid.mat"
    trials = np.empty((1, 3), dtype=object)
    for k in range(3):
        trials[0, k] = np.sin(np.arange(200.0) / (k + 3)).reshape(-1, 1)
    scipy.io.savemat(
        path, {"joined_data": trials, "labels_selfassessment": trials}, do_compression=compressed
    )
    _fuzz(path.read_bytes(), tmp_path / "m.mat", load_mat, seed=9 + compressed, n=100)


def test_fuzz_edf(tmp_path):
    from ecgaffect.io.edf import read_edf
    from fixtures_physionet import ecg_mv, write_edf

    path = write_edf(
        tmp_path / "valid.edf",
        {"ECG ECG": ecg_mv(4, 100.0, seed=1, hr_bpm=70), "EEG Fz": np.zeros(400)},
        100.0,
        units={"EEG Fz": "uV"},
    )
    _fuzz(path.read_bytes(), tmp_path / "m.edf", lambda p: read_edf(p, channel="ECG ECG"), 11)


def test_fuzz_wfdb(tmp_path):
    from ecgaffect.io.wfdb import read_wfdb
    from fixtures_physionet import ecg_mv, write_wfdb

    write_wfdb(tmp_path, "valid", {"ECG": ecg_mv(4, 100.0, seed=2, hr_bpm=70)}, 100.0)
    for suffix in (".hea", ".dat"):
        for other in (".hea", ".dat"):
            if other != suffix:
                (tmp_path / f"m{other}").write_bytes((tmp_path / f"valid{other}").read_bytes())
        _fuzz(
            (tmp_path / f"valid{suffix}").read_bytes(),
            tmp_path / f"m{suffix}",
            lambda p: read_wfdb(p.with_suffix("")),
            seed=12 + (suffix == ".dat"),
            n=100,
            must_fail=suffix == ".hea",
        )
