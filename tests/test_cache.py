from __future__ import annotations

import os
import time

import numpy as np
import pytest

from fixtures_datasets import write_amigos

windows = pytest.importorskip(
    "ecgaffect.datasets.windows", reason="ecgaffect.datasets.windows has not landed yet"
)
from ecgaffect.datasets import cache, registry  # noqa: E402
from ecgaffect.signal import PreprocessConfig  # noqa: E402


@pytest.fixture
def amigos_copy(tmp_path):
    root = tmp_path / "amigos"
    files = write_amigos(root, subjects=(1, 2), short_s=21.0, long_s=12.0)
    return root, files


@pytest.fixture
def loads(monkeypatch):
    """Counts how often the dataset is actually read (a cache miss)."""
    calls = []
    real = registry.load_dataset

    def counting(*args, **kwargs):
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(registry, "load_dataset", counting)
    return calls


def _entries(cache_dir):
    return sorted(p.name for p in (cache_dir / "amigos").iterdir() if not p.name.startswith("."))


def test_second_call_is_served_from_cache(amigos_copy, tmp_path, loads):
    root, _ = amigos_copy
    cdir = tmp_path / "cache"
    first = cache.cached_windowset("amigos", root, cache_dir=cdir, progress=False)
    assert len(loads) == 1
    assert first.x.shape == (32, 2560)  # 16 short trials x 2 subjects: window 10-20 s of 5-21 s
    assert set(first.labels) == {"arousal", "valence"}
    second = cache.cached_windowset("amigos", root, cache_dir=cdir, progress=False)
    assert len(loads) == 1
    assert isinstance(second.x, np.memmap)
    assert second.fingerprint() == first.fingerprint()
    assert len(_entries(cdir)) == 1
    # a direct build gives the same windows as the cached ones
    direct = windows.make_windowset(
        registry.load_dataset("amigos", root), tasks=["arousal", "valence"], progress=False
    )
    np.testing.assert_array_equal(direct.x, second.x)
    np.testing.assert_array_equal(direct.labels["valence"], second.labels["valence"])


@pytest.mark.parametrize(
    "change",
    [
        {"hop_s": 5.0},
        {"scheme": "paper"},
        {"tasks": ["dominance"]},
        {"loader_options": {"lead": "III"}},
        {"config": PreprocessConfig(highpass_hz=0.5)},
        {"skip_bad": True},
    ],
)
def test_any_changed_parameter_builds_a_new_entry(amigos_copy, tmp_path, loads, change):
    root, _ = amigos_copy
    cdir = tmp_path / "cache"
    base = cache.cached_windowset("amigos", root, cache_dir=cdir, progress=False)
    other = cache.cached_windowset("amigos", root, cache_dir=cdir, progress=False, **change)
    assert len(loads) == 2
    assert len(_entries(cdir)) == 2
    if "skip_bad" not in change:  # a clean copy gives the same windows with skip_bad
        assert other.fingerprint() != base.fingerprint()


def test_changed_file_is_never_served_stale(amigos_copy, tmp_path, loads):
    root, files = amigos_copy
    cdir = tmp_path / "cache"

    def key():
        return cache.cache_key(
            "amigos", root, scheme="binary", hop_s=10.0, config=PreprocessConfig(),
            tasks=["arousal", "valence"], loader_options={}, skip_bad=False,
        )[0]  # fmt: skip

    cache.cached_windowset("amigos", root, cache_dir=cdir, progress=False)
    key_0 = key()
    path = files["P02"]
    st = path.stat()
    # same size and mtime, different content (first MiB): the content hash catches it
    data = bytearray(path.read_bytes())
    data[200] ^= 0xFF
    path.write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_size == st.st_size
    assert path.stat().st_mtime_ns == st.st_mtime_ns
    key_a = key()
    assert key_0 != key_a
    with pytest.raises(ValueError, match="Data_Preprocessed_P02.mat"):
        cache.cached_windowset("amigos", root, cache_dir=cdir, progress=False)
    assert len(loads) == 2  # it tried to rebuild, and the corrupted file was read


def test_interrupted_build_leaves_no_entry(amigos_copy, tmp_path, monkeypatch):
    root, _ = amigos_copy
    cdir = tmp_path / "cache"
    real_save = windows.WindowSet.save

    def dying_save(self, directory):
        np.save(os.path.join(directory, "x.npy"), np.zeros(3)) if os.path.isdir(
            directory
        ) else os.makedirs(directory)
        raise KeyboardInterrupt

    monkeypatch.setattr(windows.WindowSet, "save", dying_save)
    with pytest.raises(KeyboardInterrupt):
        cache.cached_windowset("amigos", root, cache_dir=cdir, progress=False)
    assert list((cdir / "amigos").iterdir()) == []
    monkeypatch.setattr(windows.WindowSet, "save", real_save)
    # a build killed hard leaves a .tmp folder; it is never read and cleaned once stale
    stale = cdir / "amigos" / ".tmp-deadbeef-00000000"
    stale.mkdir()
    (stale / "x.npy").write_bytes(b"partial")
    old = time.time() - 2 * 24 * 3600
    os.utime(stale, (old, old))
    ws = cache.cached_windowset("amigos", root, cache_dir=cdir, progress=False)
    assert len(ws) == 32
    assert not stale.exists()
    assert len(_entries(cdir)) == 1


def test_rebuild_and_corrupt_entry(amigos_copy, tmp_path, loads):
    root, _ = amigos_copy
    cdir = tmp_path / "cache"
    first = cache.cached_windowset("amigos", root, cache_dir=cdir, progress=False)
    cache.cached_windowset("amigos", root, cache_dir=cdir, progress=False, rebuild=True)
    assert len(loads) == 2
    (entry,) = _entries(cdir)
    (cdir / "amigos" / entry / "x.npy").unlink()
    again = cache.cached_windowset("amigos", root, cache_dir=cdir, progress=False)
    assert len(loads) == 3
    assert again.fingerprint() == first.fingerprint()
    assert cache.clear_cache(cdir, "amigos") == 1
    assert _entries(cdir) == []


def test_cache_dir_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path / "envcache"))
    assert cache.default_cache_dir() == tmp_path / "envcache"
    monkeypatch.delenv(cache.CACHE_ENV)
    assert cache.default_cache_dir().parts[-2:] == ("ecgaffect", "windows")


def test_file_fingerprint_reads_only_the_edges(tmp_path):
    big = tmp_path / "big.bin"
    payload = np.random.default_rng(0).integers(0, 255, 3 << 20, dtype=np.uint8).tobytes()
    big.write_bytes(payload)
    fp = cache.file_fingerprint(big)
    assert fp["size"] == 3 << 20
    middle = bytearray(payload)
    middle[len(payload) // 2] ^= 1
    big.write_bytes(bytes(middle))
    os.utime(big, ns=(fp["mtime_ns"], fp["mtime_ns"]))
    assert cache.file_fingerprint(big)["edge_sha256"] == fp["edge_sha256"]  # by design
    tail = bytearray(payload)
    tail[-10] ^= 1
    big.write_bytes(bytes(tail))
    assert cache.file_fingerprint(big)["edge_sha256"] != fp["edge_sha256"]


def test_build_command_fills_and_reuses_the_cache(amigos_copy, tmp_path, loads, capsys):
    from ecgaffect.cli import main

    root, _ = amigos_copy
    args = ["datasets", "build", "amigos", str(root), "--cache-dir", str(tmp_path / "c")]
    assert main([*args, "--no-progress"]) == 0
    assert main([*args, "--no-progress", "-o", "lead=III"]) == 0
    assert main([*args, "--no-progress"]) == 0
    assert len(loads) == 2
    assert "amigos: 32 windows, tasks arousal, valence" in capsys.readouterr().out
    assert main(["datasets", "clear-cache", "amigos", "--cache-dir", str(tmp_path / "c")]) == 0
    assert "removed 2 cache entries" in capsys.readouterr().out


def test_swell_label_sheet_outside_root_is_fingerprinted(tmp_path, loads):
    """A label sheet given with ``label_file=`` outside the root is part of the key."""
    from fixtures_swell import (
        LABEL_STEM,
        default_blocks,
        label_rows,
        make_swell_tree,
        write_label_tab,
    )

    blocks = default_blocks()
    root = make_swell_tree(tmp_path / "swell", labels="none", blocks=blocks)
    (tmp_path / "elsewhere").mkdir()
    sheet = write_label_tab(tmp_path / "elsewhere" / f"{LABEL_STEM}.tab", label_rows(blocks))
    files = registry.source_files("swell", root, label_file=str(sheet))
    assert sheet.resolve() in files
    assert all(p.suffix == ".S00" for p in files if p != sheet.resolve())
    pp2 = registry.source_files("swell", root, participants=[2], label_file=str(sheet))
    assert {p.name for p in pp2} == {
        sheet.name, "pp2_9-10-212_c1.S00", "pp2_9-10-2013_c2.S00", "pp2_9-10-2012_c2_cont.S00"
    }  # fmt: skip
    cdir = tmp_path / "cache"
    opts = {"label_file": str(sheet)}
    first = cache.cached_windowset(
        "swell", root, cache_dir=cdir, loader_options=opts, skip_bad=True, progress=False
    )
    assert len(loads) == 1
    # move every arousal rating of PP1 to the other side of the 1-9 scale's middle
    for b in blocks:
        if b.pp == 1:
            b.ratings["Arousal_rc"] = 10.0 - b.ratings["Arousal_rc"]
    write_label_tab(sheet, label_rows(blocks))
    second = cache.cached_windowset(
        "swell", root, cache_dir=cdir, loader_options=opts, skip_bad=True, progress=False
    )
    assert len(loads) == 2  # the changed sheet was read again, not served from the cache
    assert len(first) == len(second)
    assert not np.array_equal(first.labels["arousal"], second.labels["arousal"])
