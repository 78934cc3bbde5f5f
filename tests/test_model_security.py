"""Model files are data, never code: crafted, hostile and damaged files (issue 15, items 1, 7).

Every crafted file here must be refused with one of our named errors (a
:class:`~ecgaffect.model.modelfile.ModelFileError`) and must never run anything: the pickle
payloads would create a marker file, and the tests check it does not exist afterwards (and,
as a control, that the payload really does create it when unpickled).
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import random
import re
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load as decode_safetensors
from safetensors.torch import save as encode_safetensors

from _export_fixtures import make_card, make_net, make_windows
from ecgaffect.cli import main
from ecgaffect.model.card import CARD_FILENAME
from ecgaffect.model.export import export_model, export_pt2, export_torchscript
from ecgaffect.model.modelfile import (
    FORMAT_NAME,
    LegacyModelFileError,
    ModelFileError,
    ModelOutputError,
    WeightsDigestError,
    convert_legacy_model,
    load_model_file,
    read_model_card,
    weights_digest,
)
from ecgaffect.model.scorer import Scorer

SRC = Path(__file__).resolve().parents[1] / "src" / "ecgaffect"


class _Payload:
    """Unpickling this creates the folder ``marker`` (an attacker's ``__reduce__``)."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def _evil_pickle(marker: Path) -> bytes:
    return pickle.dumps({"weights": _Payload(marker)}, protocol=2)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    d = tmp_path_factory.mktemp("secure")
    return export_model(make_net(), make_card(), d / "m.safetensors")


@pytest.fixture(autouse=True)
def no_unpickling(monkeypatch):
    """Loading a model must not reach any unpickler or torch's pickle-based loaders."""

    def refuse(*args, **kwargs):
        raise AssertionError("a pickle-based loader was called while loading a model file")

    for target, name in [
        (torch, "load"),
        (torch.jit, "load"),
        (torch.export, "load"),
        (pickle, "load"),
        (pickle, "loads"),
    ]:
        monkeypatch.setattr(target, name, refuse)


def _assert_refused(path: Path, error=ModelFileError, match: str | None = None):
    with pytest.raises(error, match=match) as info:
        Scorer.load(path)
    assert str(path) in str(info.value)
    return info.value


# -- parts of a model file ----------------------------------------------------------------------
def _header(path: Path) -> tuple[dict, bytes]:
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8 : 8 + n]), data[8 + n :]


def _raw(path: Path, header: dict | bytes, buffer: bytes) -> Path:
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + buffer)
    return path


def _write(path: Path, tensors: dict, card: dict, *, digest: bool = True, **meta) -> Path:
    """A model file with these tensors and card (the digest recomputed unless told not to)."""
    if digest:
        card = {**card, "weights_sha256": weights_digest(tensors)}
    metadata = {"format": FORMAT_NAME, "format_version": "1", "card": json.dumps(card), **meta}
    path.write_bytes(encode_safetensors(tensors, metadata=metadata))
    return path


def _parts(model: Path) -> tuple[dict, dict]:
    tensors = decode_safetensors(model.read_bytes())
    header, _ = _header(model)
    return tensors, json.loads(header["__metadata__"]["card"])


# -- legacy pickle-based files: refused unopened, no code runs ----------------------------------
def test_the_payload_is_real(tmp_path, monkeypatch):
    monkeypatch.undo()  # the control needs the real unpickler
    marker = tmp_path / "pwned"
    pickle.loads(_evil_pickle(marker))
    assert marker.exists()


def _pt2_with_payload(path: Path, marker: Path) -> Path:
    """A .pt2 layout (archive_format, model.json, card) whose members hold a pickle payload."""
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("m/archive_format", "pt2")
        zf.writestr("m/models/model.json", "{}")
        zf.writestr(f"m/extra/{CARD_FILENAME}", make_card().to_json())
        zf.writestr("m/data/sample_inputs/model.pt", _evil_pickle(marker))
        zf.writestr("m/data/constants/opaque_obj_0", _evil_pickle(marker))
    return path


def _torchscript_with_payload(src: Path, path: Path, marker: Path) -> Path:
    """A real TorchScript export whose data.pkl and constants.pkl are the payload."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(path, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename.endswith(("data.pkl", "constants.pkl")):
                data = _evil_pickle(marker)
            zout.writestr(item, data)
    return path


@pytest.mark.parametrize("suffix", [".pt2", ".safetensors", ".bin"])
def test_crafted_pt2_runs_no_code(tmp_path, suffix):
    marker = tmp_path / "pwned"
    path = _pt2_with_payload(tmp_path / f"evil{suffix}", marker)
    error = _assert_refused(path, LegacyModelFileError, "can run code")
    assert "--trust-source" in str(error)
    with pytest.raises(LegacyModelFileError):
        read_model_card(path)
    assert main(["model-info", str(path)]) == 1
    assert not marker.exists()


def test_crafted_torchscript_runs_no_code(tmp_path):
    real = export_torchscript(make_net(), make_card(), tmp_path / "real.ts")  # loads nothing
    marker = tmp_path / "pwned"
    path = _torchscript_with_payload(real, tmp_path / "evil.ts", marker)
    _assert_refused(path, LegacyModelFileError, "zip archive")
    assert not marker.exists()


def test_real_legacy_exports_are_refused(tmp_path):
    pt2 = export_pt2(make_net(), make_card(), tmp_path / "m.pt2")
    _assert_refused(pt2, LegacyModelFileError, r"ecgaffect export --run-dir")


def test_bare_pickle_runs_no_code(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.safetensors"
    path.write_bytes(_evil_pickle(marker))
    _assert_refused(path, LegacyModelFileError, "Python pickle")
    assert not marker.exists()


@pytest.mark.parametrize("length_mod", [(256, 0x80), (65536, 0x4B50)], ids=["0x80", "PK"])
def test_a_header_length_that_looks_like_a_pickle_or_zip_still_loads(model, tmp_path, length_mod):
    # the first bytes of a valid file are its header length: 0x80.. or "PK" are possible
    mod, rest = length_mod
    data = model.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    target = n + (rest - n) % mod
    path = tmp_path / "lookalike.safetensors"
    path.write_bytes(
        struct.pack("<Q", target) + data[8 : 8 + n] + b" " * (target - n) + data[8 + n :]
    )
    assert path.read_bytes()[: 2 if rest > 255 else 1] in (b"PK", b"\x80")
    assert Scorer.load(path).card.name == "test-model"


def test_legacy_suffix_with_garbage_says_it_is_refused(tmp_path):
    path = tmp_path / "old.pt2"
    path.write_bytes(b"\x01" * 64)
    _assert_refused(path, LegacyModelFileError, r"\.pt2 files of earlier versions are refused")


def test_no_model_loader_calls_a_pickle_based_loader():
    """torch.export.load / torch.jit.load only in the opt-in converter; no pickle.load(s)."""
    allowed = {("modelfile.py", "convert_legacy_model")}
    found = []
    for py in SRC.rglob("*.py"):
        text = py.read_text(encoding="utf-8")
        for m in re.finditer(r"torch\.(export|jit)\.load\(|pickle\.loads?\(", text):
            func = re.findall(r"^def (\w+)", text[: m.start()], flags=re.M)
            found.append((py.name, func[-1] if func else "<module>"))
    assert set(found) <= allowed, found


def test_convert_needs_trust_source(tmp_path):
    with pytest.raises(ValueError, match="--trust-source"):
        convert_legacy_model(tmp_path / "x.pt2", tmp_path / "x.safetensors")


# -- hostile or damaged safetensors files -------------------------------------------------------
def test_model_file_round_trip_and_card_records(model):
    module, card = load_model_file(model)
    assert card.architecture["network"] == "ecgaffect.EmotionNet/1"
    assert card.architecture["head_layers"] == 3  # the fixture's amigos heads
    assert card.weights_sha256 == weights_digest(decode_safetensors(model.read_bytes()))
    assert not any(p.requires_grad for p in module.parameters())


@pytest.mark.parametrize(
    ("arch", "match"),
    [
        ({"head_width": 10**9}, "head_width"),
        ({"head_layers": 10**6}, "head_layers"),
        ({"head_layers": 8, "head_width": 4096}, "parameters; at most"),
        ({"head_width": 512.0}, "head_width"),
        ({"head_dropout": float("inf")}, None),  # json refuses Infinity: not valid JSON
        ({"network": "os.system"}, "not one this ecgaffect builds"),
        ({"embedding_dim": 4096}, "embedding_dim"),
        ({"extra": 1}, "unknown: \\['extra'\\]"),
    ],
)
def test_hostile_architecture_is_refused_before_anything_is_built(model, tmp_path, arch, match):
    tensors, card = _parts(model)
    card["architecture"] = {**card["architecture"], **arch}
    card_text = json.dumps(card)  # allow_nan: writes Infinity, which the loader refuses
    path = tmp_path / "arch.safetensors"
    meta = {"format": FORMAT_NAME, "format_version": "1", "card": card_text}
    path.write_bytes(encode_safetensors(tensors, metadata=meta))
    _assert_refused(path, ModelFileError, match)


def test_missing_architecture_key(model, tmp_path):
    tensors, card = _parts(model)
    del card["architecture"]["head_width"]
    _assert_refused(_write(tmp_path / "a.safetensors", tensors, card), match="missing")


def test_huge_window_in_card(model, tmp_path):
    tensors, card = _parts(model)
    card.update(window_n=10**9, fs_hz=1e8)
    card["preprocessing"] = {**card["preprocessing"], "fs_hz": 1e8}
    _assert_refused(_write(tmp_path / "w.safetensors", tensors, card), match="window_n")


def test_wrong_missing_and_extra_tensors(model, tmp_path):
    tensors, card = _parts(model)
    renamed = dict(tensors)
    renamed["heads.0.0.evil"] = renamed.pop("heads.0.0.weight")
    _assert_refused(
        _write(tmp_path / "r.safetensors", renamed, card), match=r"missing \['heads.0.0.weight'\]"
    )
    extra = {**tensors, "__class__": torch.zeros(1)}
    _assert_refused(_write(tmp_path / "e.safetensors", extra, card), match="unexpected")
    fewer = dict(tensors)
    fewer.pop("encoder.features.1.bias")
    _assert_refused(_write(tmp_path / "f.safetensors", fewer, card), match="missing")


def test_wrong_shapes_and_dtypes(model, tmp_path):
    tensors, card = _parts(model)
    wide = {**tensors, "heads.0.0.bias": torch.zeros(10_000)}
    _assert_refused(_write(tmp_path / "s.safetensors", wide, card), match="has shape \\[10000\\]")
    ints = {**tensors, "heads.0.0.bias": tensors["heads.0.0.bias"].to(torch.int32)}
    path = tmp_path / "i.safetensors"
    meta = {"format": FORMAT_NAME, "format_version": "1", "card": json.dumps(card)}
    path.write_bytes(encode_safetensors(ints, metadata=meta))
    _assert_refused(path, match="dtype 'I32'; only float")


def test_half_precision_weights_load_as_float32(model, tmp_path):
    tensors, card = _parts(model)
    half = {k: v.to(torch.float16) for k, v in tensors.items()}
    scorer = Scorer.load(_write(tmp_path / "h.safetensors", half, card))
    assert np.isfinite(scorer.score_outputs(make_windows(1), fs_hz=256.0)).all()


def test_huge_shape_in_tensor_table(model, tmp_path):
    header, buffer = _header(model)
    name = next(k for k in header if k != "__metadata__")
    header[name]["shape"] = [10**12, 10**12]
    _assert_refused(_raw(tmp_path / "big.safetensors", header, buffer), match="invalid shape")


def test_nan_and_inf_weights(model, tmp_path):
    tensors, card = _parts(model)
    for value in (float("nan"), float("inf")):
        bad = dict(tensors)
        bad["heads.1.0.weight"] = bad["heads.1.0.weight"].clone()
        bad["heads.1.0.weight"][0, 0] = value
        path = _write(tmp_path / "nan.safetensors", bad, card)
        _assert_refused(path, match=r"NaN or infinite weights in tensors \['heads.1.0.weight'\]")


def test_weights_digest_mismatch(model, tmp_path):
    data = bytearray(model.read_bytes())
    data[-5] ^= 0x01  # one bit of one weight
    path = tmp_path / "flip.safetensors"
    path.write_bytes(bytes(data))
    error = _assert_refused(path, WeightsDigestError, "differs from")
    assert isinstance(error, ValueError)
    tensors, card = _parts(model)
    other = _write(tmp_path / "other.safetensors", tensors, card, digest=False)  # still right
    Scorer.load(other)
    card["weights_sha256"] = "0" * 64
    _assert_refused(
        _write(tmp_path / "zero.safetensors", tensors, card, digest=False), WeightsDigestError
    )


@pytest.mark.parametrize(
    "make",
    [
        lambda d, h, b: _raw(d, b"\x00" * 8 + b"{}", b""),  # header length 0
        lambda d, h, b: d.write_bytes(struct.pack("<Q", 2**63) + b"{}") and d,
        lambda d, h, b: _raw(d, b"[1, 2]", b),
        lambda d, h, b: _raw(d, b"\xff\xfe{}", b),
        lambda d, h, b: _raw(d, b"[" * 100_000 + b"]" * 100_000, b),
        lambda d, h, b: _raw(d, {k: v for k, v in h.items() if k != "__metadata__"}, b),
        lambda d, h, b: _raw(d, {**h, "__metadata__": {**h["__metadata__"], "exec": "x"}}, b),
        lambda d, h, b: _raw(d, {**h, "__metadata__": {**h["__metadata__"], "card": "{"}}, b),
        lambda d, h, b: _raw(
            d, {**h, "__metadata__": {**h["__metadata__"], "format_version": "99"}}, b
        ),
        lambda d, h, b: _raw(d, json.dumps(h).replace("{", '{"a": 1, "a": 2, ', 1).encode(), b),
        lambda d, h, b: _raw(d, h, b + b"\x00" * 4),  # trailing bytes
        lambda d, h, b: _raw(d, h, b[:-4]),  # truncated buffer
        lambda d, h, b: _raw(d, _overlap(h), b),
    ],
    ids=[
        "zero-header", "huge-header-length", "header-list", "header-not-utf8", "deep-json",
        "no-metadata", "unknown-metadata", "card-not-json", "future-version", "duplicate-key",
        "trailing-bytes", "truncated-buffer", "overlapping-offsets",
    ],
)  # fmt: skip
def test_malformed_safetensors_is_refused(model, tmp_path, make):
    header, buffer = _header(model)
    path = tmp_path / "bad.safetensors"
    make(path, header, buffer)
    _assert_refused(path)


def _overlap(header: dict) -> dict:
    header = json.loads(json.dumps(header))
    names = sorted((k for k in header if k != "__metadata__"), key=lambda k: header[k]["shape"])
    a, b = names[0], names[1]
    header[b]["data_offsets"] = list(header[a]["data_offsets"])
    return header


def test_truncated_and_random_files(model, tmp_path):
    data = model.read_bytes()
    rng = random.Random(0)
    for cut in [1, 7, 8, 9, 50, len(data) // 3, len(data) - 1]:
        _assert_refused(_cut(tmp_path, data, cut))
    for i in range(5):
        path = tmp_path / f"rand{i}.safetensors"
        path.write_bytes(rng.randbytes(rng.randint(1, 5000)))
        _assert_refused(path)


def _cut(tmp_path: Path, data: bytes, n: int) -> Path:
    path = tmp_path / f"cut{n}.safetensors"
    path.write_bytes(data[:n])
    return path


def test_not_a_regular_file_and_too_large(tmp_path):
    _assert_refused(tmp_path, match="not a regular file")
    big = tmp_path / "big.safetensors"
    with big.open("wb") as fh:
        fh.truncate(600 * 1024 * 1024)  # sparse: no disk used
    _assert_refused(big, match="at most")


def test_someone_elses_safetensors(tmp_path):
    path = tmp_path / "foreign.safetensors"
    path.write_bytes(encode_safetensors({"w": torch.zeros(3)}, metadata={"format": "pt"}))
    _assert_refused(path, match="without ecgaffect metadata")


# -- outputs ------------------------------------------------------------------------------------
def test_finite_weights_with_non_finite_outputs_raise_model_output_error(model, tmp_path):
    tensors, card = _parts(model)
    huge = {k: v * 1e8 for k, v in tensors.items()}
    scorer = Scorer.load(_write(tmp_path / "huge.safetensors", huge, card))
    with pytest.raises(ModelOutputError, match="NaN or infinite outputs"):
        scorer.score(make_windows(2).numpy(), fs_hz=256.0)


def test_score_command_exits_1_instead_of_writing_nan_rows(model, tmp_path, capsys):
    from ecg_fixtures import synthetic_ecg_uv

    tensors, card = _parts(model)
    huge = _write(tmp_path / "huge.safetensors", {k: v * 1e8 for k, v in tensors.items()}, card)
    rec = tmp_path / "rec.npy"
    np.save(rec, synthetic_ecg_uv(25.0, 256.0))
    out = tmp_path / "scores.csv"
    rc = main(["score", str(rec), "--model", str(huge), "--fs-hz", "256", "-o", str(out),
               "--no-progress", "--normalization", "subject"])  # fmt: skip
    assert rc == 1
    assert "NaN or infinite outputs" in capsys.readouterr().err
    assert not out.exists()


# -- fuzz ---------------------------------------------------------------------------------------
def test_byte_mutation_fuzz_gives_a_load_or_a_named_error(model, tmp_path):
    """About 100 mutants: header bytes, anywhere, truncation and insertion."""
    data = model.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    rng = random.Random(15)
    outcomes = {"loaded": 0, "refused": 0}
    messages: list[tuple[str, str]] = []
    x = make_windows(1)
    for i in range(100):
        mutant = bytearray(data)
        kind = i % 4
        if kind == 0:  # the header: where parsing decisions are made
            for _ in range(rng.randint(1, 4)):
                mutant[rng.randrange(0, 8 + n)] = rng.randrange(256)
        elif kind == 1:
            for _ in range(rng.randint(1, 8)):
                mutant[rng.randrange(len(mutant))] = rng.randrange(256)
        elif kind == 2:
            mutant = mutant[: rng.randrange(len(mutant))]
        else:
            at = rng.randrange(8 + n)
            mutant[at:at] = rng.randbytes(rng.randint(1, 16))
        path = tmp_path / f"mut{i}.safetensors"
        path.write_bytes(bytes(mutant))
        try:
            scorer = Scorer.load(path)
        except ModelFileError as exc:
            messages.append((str(path), str(exc)))
            outcomes["refused"] += 1
        else:
            # a mutation the checks cannot see (e.g. inside a free-text card field)
            with contextlib.suppress(ModelOutputError, ValueError):
                assert np.isfinite(scorer.score_outputs(x, fs_hz=scorer.card.fs_hz)).all()
            outcomes["loaded"] += 1
        os.unlink(path)
    assert outcomes["refused"] >= 80, outcomes
    assert all(path in message for path, message in messages)


def test_live_and_gui_loader_refuses_legacy_files(tmp_path):
    # `ecgaffect live --model` and the GUI's model chooser load through factories.load_scorer
    from ecgaffect.stream import factories

    marker = tmp_path / "pwned"
    path = _pt2_with_payload(tmp_path / "evil.pt2", marker)
    with pytest.raises(LegacyModelFileError, match="evil.pt2"):
        factories.load_scorer(path)
    assert not marker.exists()
