"""The ecgaffect model file: weights and card as data, never code.

A model file (suffix :data:`MODEL_SUFFIX`, ``.safetensors``) is one
`safetensors <https://github.com/huggingface/safetensors>`_ file:

- the tensors are the ``state_dict`` of :class:`~ecgaffect.model.networks.ScoringModule`
  (``encoder.features.*``, ``heads.<i>.*`` with ``i`` in the card's task order), float32 —
  or, for the personal-baseline stress model, of
  :class:`~ecgaffect.model.stress_model.StressModule` (``head.*`` and, with an encoder,
  ``encoder.features.*``; architecture network ``ecgaffect.StressBaseline/1``);
- the header's ``__metadata__`` holds ``format`` (:data:`FORMAT_NAME`), ``format_version``
  (:data:`FORMAT_VERSION`) and ``card``, the model card's JSON. The card records the
  network's ``architecture`` (a few numbers, see
  :func:`~ecgaffect.model.networks.architecture_of`) and ``weights_sha256``
  (:func:`weights_digest`).

Loading (:func:`load_model_file`) never runs anything from the file: the header is parsed as
JSON with bounded sizes, the architecture record is validated and the network is rebuilt from
our own classes (:func:`~ecgaffect.model.networks.build_scoring_module`, first on the ``meta``
device, so a hostile header allocates nothing); the tensor table must name exactly the
tensors that network has, with exactly its shapes and a float dtype, laid out back to back;
the digest of the weights must equal the card's; weights must be finite. Every failure is a
:class:`ModelFileError` (a ``ValueError``) naming the file.

Legacy ``.pt2`` (``torch.export``) and TorchScript archives contain pickles, and unpickling
can run code: they are refused with :class:`LegacyModelFileError` without being opened by
torch. :func:`convert_legacy_model` converts one, but only when the caller states it trusts
the file (``ecgaffect export --convert OLD --trust-source``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import os
import struct
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ecgaffect.model.card import CARD_FILENAME, ModelCard, ModelCardError, ModelFormatError

if TYPE_CHECKING:
    from ecgaffect.model.networks import EmotionNet

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "LEGACY_SUFFIXES",
    "MAX_FILE_BYTES",
    "MODEL_SUFFIX",
    "LegacyModelFileError",
    "ModelFileError",
    "ModelOutputError",
    "WeightsDigestError",
    "convert_legacy_model",
    "load_model_file",
    "read_model_card",
    "save_model_file",
    "weights_digest",
]

log = logging.getLogger(__name__)

#: Suffix of an ecgaffect model file.
MODEL_SUFFIX = ".safetensors"
#: ``__metadata__["format"]`` of an ecgaffect model file.
FORMAT_NAME = "ecgaffect-model"
#: ``__metadata__["format_version"]`` this ecgaffect reads and writes.
FORMAT_VERSION = "1"
#: Suffixes of the pickle-based formats earlier versions wrote (refused).
LEGACY_SUFFIXES = (".pt2", ".ts", ".pt", ".pth", ".torchscript")
#: Largest model file read (the paper's networks are about 2 MB).
MAX_FILE_BYTES = 512 * 1024 * 1024
#: Largest safetensors header read (tensor table plus card).
MAX_HEADER_BYTES = 16 * 1024 * 1024
_METADATA_KEYS = frozenset({"format", "format_version", "card"})
_DTYPES: dict[str, tuple[torch.dtype, int]] = {
    "F32": (torch.float32, 4),
    "F64": (torch.float64, 8),
    "F16": (torch.float16, 2),
    "BF16": (torch.bfloat16, 2),
}
_DTYPE_CODES = {dtype: code for code, (dtype, _) in _DTYPES.items()}
_MAX_NDIM = 4

CONVERT_HINT = (
    "re-export it from its training run (`ecgaffect export --run-dir RUN -o model.safetensors "
    "--name NAME`), or, only if you made the file or trust where it came from, convert it: "
    "`ecgaffect export --convert OLD --trust-source -o model.safetensors`"
)


class ModelFileError(ModelFormatError):
    """A model file is damaged, hostile or not an ecgaffect model; names the file and why.

    ``ModelFileError(path, message)``: ``str(exc)`` is ``"model file '<path>': <message>"``.

    Attributes:
        path: the file.
    """

    def __init__(self, path: str | Path, message: str) -> None:
        self.path = Path(path)
        super().__init__(f"model file {str(path)!r}: {message}")


class LegacyModelFileError(ModelFileError):
    """A ``.pt2``/TorchScript/pickle model: refused, because loading one can run code."""


class WeightsDigestError(ModelFileError):
    """The weights in a model file do not have the SHA-256 its card records."""


class ModelOutputError(ValueError):
    """A model produced NaN or infinite outputs (damaged weights), instead of scores."""


# -- digest -----------------------------------------------------------------------------------
def _digest(items: Iterable[tuple[str, str, tuple[int, ...], bytes]]) -> str:
    h = hashlib.sha256(b"ecgaffect-weights-v1\0")
    for name, dtype, shape, raw in sorted(items, key=lambda item: item[0]):
        key = name.encode("utf-8")
        head = f"{dtype}:{','.join(str(int(n)) for n in shape)}".encode("ascii")
        for part in (key, head, raw):
            h.update(struct.pack("<Q", len(part)))
            h.update(part)
    return h.hexdigest()


def _tensor_bytes(t: torch.Tensor) -> bytes:
    flat = t.detach().cpu().contiguous().reshape(-1)
    return flat.view(torch.uint8).numpy().tobytes()


def weights_digest(tensors: Mapping[str, torch.Tensor]) -> str:
    """Canonical SHA-256 of a set of named tensors (hex).

    Over the tensors in sorted name order: each name, its safetensors dtype code and shape,
    and its little-endian bytes, every part length-prefixed; independent of how the file
    lays the tensors out.

    Args:
        tensors: name → tensor (float dtypes only).

    Returns:
        64 lowercase hex digits.
    """
    items = []
    for name, t in tensors.items():
        if t.dtype not in _DTYPE_CODES:
            raise ValueError(f"tensor {name!r} has dtype {t.dtype}; only float tensors")
        items.append((name, _DTYPE_CODES[t.dtype], tuple(t.shape), _tensor_bytes(t)))
    return _digest(items)


# -- writing ----------------------------------------------------------------------------------
def save_model_file(
    net: EmotionNet, card: ModelCard, path: str | Path, task_order: list[str] | None = None
) -> ModelCard:
    """Write ``net`` and ``card`` as an ecgaffect model file (atomically).

    Args:
        net: the trained emotion network.
        card: its card; ``architecture`` and ``weights_sha256`` are filled in.
        path: the file to write (``.safetensors``).
        task_order: output order of the tasks (default: the card's).

    Returns:
        The card as written (with architecture and digest).

    Raises:
        ValueError: non-finite weights.
    """
    from ecgaffect.model.networks import ScoringModule, architecture_of

    module = ScoringModule(net, list(card.tasks) if task_order is None else task_order)
    return _save_module(module, architecture_of(net), card, Path(path))


def _save_module(
    module: torch.nn.Module, architecture: dict[str, Any], card: ModelCard, path: Path
) -> ModelCard:
    import safetensors.torch

    tensors = {
        k: v.detach().cpu().to(torch.float32).contiguous() for k, v in module.state_dict().items()
    }
    bad = [k for k, v in tensors.items() if not bool(torch.isfinite(v).all())]
    if bad:
        raise ValueError(f"refusing to export NaN or infinite weights (tensors {bad[:5]})")
    card = dataclasses.replace(
        card, architecture=dict(architecture), weights_sha256=weights_digest(tensors)
    )
    metadata = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "card": card.to_json(indent=None),
    }
    data = safetensors.torch.save(tensors, metadata=metadata)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    log.info("wrote model file %r to %s", card.name, path)
    return card


# -- reading ----------------------------------------------------------------------------------
def _read_file(path: Path) -> bytes:
    if not path.exists():
        raise FileNotFoundError(f"model file {str(path)!r} does not exist")
    if not path.is_file():
        raise ModelFileError(path, "is not a regular file")
    try:
        size = path.stat().st_size
        if size == 0:
            raise ModelFileError(path, "is empty")
        if size > MAX_FILE_BYTES:
            raise ModelFileError(
                path, f"is {size} bytes; an ecgaffect model file is at most {MAX_FILE_BYTES}"
            )
        with path.open("rb") as fh:
            data = fh.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ModelFileError(path, f"cannot be read: {exc}") from exc
    return data


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _parse_header(path: Path, data: bytes) -> tuple[dict[str, Any], ModelCard, int]:
    """(tensor table, card, offset of the data buffer) of a safetensors model file."""
    legacy = path.suffix.lower() in LEGACY_SUFFIXES

    def fail(message: str) -> ModelFileError:
        # Only a file that is not a valid model file is named by its magic bytes: the first
        # byte of a safetensors header length can be 0x80 (a pickle's) or its first two "PK".
        if data[:2] == b"PK" or data[:1] == b"\x80":
            kind = "zip archive (.pt2 / TorchScript)" if data[:2] == b"PK" else "Python pickle"
            return LegacyModelFileError(
                path,
                f"is a {kind}, a format that can run code when loaded, and ecgaffect no "
                f"longer loads it; {CONVERT_HINT}",
            )
        if legacy:
            return LegacyModelFileError(
                path,
                f"is not an ecgaffect model file ({message}); {path.suffix} files of earlier "
                f"versions are refused because loading them can run code; {CONVERT_HINT}",
            )
        return ModelFileError(path, message)

    if len(data) < 8:
        raise fail(f"is {len(data)} bytes, too short for a safetensors header")
    (n,) = struct.unpack("<Q", data[:8])
    if n < 2 or n > MAX_HEADER_BYTES or 8 + n > len(data):
        raise fail(
            f"header length {n} does not fit a {len(data)}-byte file (at most "
            f"{MAX_HEADER_BYTES}); not a safetensors file, or truncated"
        )
    try:
        header = json.loads(
            data[8 : 8 + n].decode("utf-8"),
            object_pairs_hook=_no_duplicates,
            parse_constant=_reject_constant,
        )
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise fail(f"header is not valid JSON ({type(exc).__name__}: {exc})") from None
    if not isinstance(header, dict):
        raise fail("header is not a JSON object")
    meta = header.pop("__metadata__", None)
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise fail(
            "a safetensors file without ecgaffect metadata (someone else's weights?); "
            "expected a model file written by `ecgaffect export`"
        )
    if set(meta) != _METADATA_KEYS or not all(isinstance(v, str) for v in meta.values()):
        raise ModelFileError(
            path, f"metadata keys {sorted(meta)} must be exactly {sorted(_METADATA_KEYS)} (strings)"
        )
    if meta["format_version"] != FORMAT_VERSION:
        raise ModelFileError(
            path,
            f"format version {meta['format_version']!r}; this ecgaffect reads version "
            f"{FORMAT_VERSION} (upgrade ecgaffect or re-export the model)",
        )
    try:
        card = ModelCard.from_json(meta["card"])
    except ModelCardError as exc:
        raise ModelFileError(path, f"invalid card: {exc}") from None
    except (TypeError, ValueError, RecursionError) as exc:
        raise ModelFileError(path, f"invalid card: {type(exc).__name__}: {exc}") from None
    if not card.architecture or not card.weights_sha256:
        raise ModelFileError(path, "card records no architecture or no weights_sha256")
    return header, card, 8 + n


def _check_table(
    path: Path, table: dict[str, Any], buffer_len: int
) -> dict[str, tuple[str, tuple[int, ...], int, int]]:
    """Validated tensor table: name → (dtype, shape, begin, end), back to back."""
    entries: dict[str, tuple[str, tuple[int, ...], int, int]] = {}
    for name, info in table.items():
        if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
            raise ModelFileError(path, f"tensor {name!r} has a malformed header entry")
        dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
        if dtype not in _DTYPES:
            raise ModelFileError(
                path, f"tensor {name!r} has dtype {dtype!r}; only float tensors {list(_DTYPES)}"
            )
        if (
            not isinstance(shape, list)
            or len(shape) > _MAX_NDIM
            or not all(_is_int(d) and 0 <= d <= buffer_len for d in shape)
        ):
            raise ModelFileError(path, f"tensor {name!r} has an invalid shape {shape!r}")
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(_is_int(o) for o in offsets)
            or not 0 <= offsets[0] <= offsets[1] <= buffer_len
        ):
            raise ModelFileError(
                path, f"tensor {name!r} has data offsets {offsets!r} outside the file"
            )
        n_bytes = math.prod(shape) * _DTYPES[dtype][1]
        if offsets[1] - offsets[0] != n_bytes:
            raise ModelFileError(
                path, f"tensor {name!r}: {offsets[1] - offsets[0]} bytes for shape {shape}"
            )
        entries[name] = (dtype, tuple(shape), offsets[0], offsets[1])
    pos = 0
    for name, (_, _, begin, end) in sorted(entries.items(), key=lambda kv: kv[1][2:]):
        if begin != pos:
            raise ModelFileError(path, f"tensor {name!r} does not follow the previous one")
        pos = end
    if pos != buffer_len:
        raise ModelFileError(
            path, f"the tensors hold {pos} bytes but the file has {buffer_len} (truncated?)"
        )
    return entries


def read_model_card(path: str | Path) -> ModelCard:
    """The card of a model file, without building the network.

    Args:
        path: the model file.

    Returns:
        Its validated card.

    Raises:
        FileNotFoundError: no such file.
        ModelFileError: anything but an ecgaffect model file (legacy ones included).
    """
    path = Path(path)
    return _parse_header(path, _read_file(path))[1]


def _names(names: Iterable[str], limit: int = 5) -> str:
    names = sorted(names)
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return f"{names[:limit]}{more}"


def load_model_file(
    path: str | Path, *, device: str | torch.device = "cpu"
) -> tuple[Any, ModelCard]:
    """Load a model file: the network rebuilt from our classes, with the file's weights.

    Args:
        path: the model file (see the module docstring for every check).
        device: torch device for the module.

    Returns:
        ``(module, card)``; the module is in eval mode, without gradients: a
        :class:`~ecgaffect.model.networks.ScoringModule`, or a
        :class:`~ecgaffect.model.stress_model.StressModule` for a personal-baseline stress
        model (architecture network ``ecgaffect.StressBaseline/1``).

    Raises:
        FileNotFoundError: no such file.
        LegacyModelFileError: a ``.pt2``/TorchScript/pickle file (never opened by torch).
        WeightsDigestError: the weights are not those the card records.
        ModelFileError: any other damage or mismatch.
    """
    from safetensors.torch import load as decode_safetensors

    from ecgaffect.model.networks import build_scoring_module

    path = Path(path)
    data = _read_file(path)
    table, card, start = _parse_header(path, data)
    tasks = {t: len(c) for t, c in card.tasks.items()}
    try:
        skeleton: torch.nn.Module
        if _is_stress_architecture(card.architecture):
            from ecgaffect.model.stress_model import build_stress_module

            skeleton = build_stress_module(card.architecture, tasks, card.window_n, device="meta")
        else:
            skeleton = build_scoring_module(card.architecture, tasks, card.window_n, device="meta")
    except ValueError as exc:
        raise ModelFileError(path, f"card architecture: {exc}") from None
    expected = {k: tuple(v.shape) for k, v in skeleton.state_dict().items()}
    missing, extra = set(expected) - set(table), set(table) - set(expected)
    if missing or extra:
        raise ModelFileError(
            path,
            f"tensors do not match the card's architecture (missing {_names(missing)}, "
            f"unexpected {_names(extra)})",
        )
    entries = _check_table(path, table, len(data) - start)
    wrong = [n for n, (_, shape, _, _) in entries.items() if shape != expected[n]]
    if wrong:
        n = sorted(wrong)[0]
        raise ModelFileError(
            path,
            f"tensor {n!r} has shape {list(entries[n][1])}; the architecture needs "
            f"{list(expected[n])} ({len(wrong)} tensors differ)",
        )
    buffer = memoryview(data)[start:]
    digest = _digest(
        (name, dtype, shape, bytes(buffer[a:b])) for name, (dtype, shape, a, b) in entries.items()
    )
    if digest != card.weights_sha256:
        raise WeightsDigestError(
            path,
            f"weights SHA-256 {digest} differs from the {card.weights_sha256} its card records "
            "(damaged or altered file); re-export or re-download the model",
        )
    try:
        tensors = decode_safetensors(data)
    except Exception as exc:  # the library's own error types; checked above, so unexpected
        raise ModelFileError(
            path, f"cannot decode the tensors: {type(exc).__name__}: {exc}"
        ) from None
    state = {k: v.to(torch.float32) for k, v in tensors.items()}
    bad = [k for k, v in state.items() if not bool(torch.isfinite(v).all())]
    if bad:
        raise ModelFileError(path, f"NaN or infinite weights in tensors {_names(bad)}")
    try:
        skeleton.load_state_dict(state, strict=True, assign=True)
        module = skeleton.to(_torch_device(device)).eval().requires_grad_(False)
    except (RuntimeError, ValueError) as exc:
        raise ModelFileError(path, f"weights do not fit the network: {exc}") from None
    return module, card


def _is_stress_architecture(architecture: Any) -> bool:
    """Whether a card's architecture is the personal-baseline stress model
    (:mod:`ecgaffect.model.stress_model`); every other record is an EmotionNet's.
    """
    from ecgaffect.model.stress_model import STRESS_ARCHITECTURE_NAME

    return (
        isinstance(architecture, dict) and architecture.get("network") == STRESS_ARCHITECTURE_NAME
    )


def _torch_device(device: str | torch.device) -> torch.device:
    return device if isinstance(device, torch.device) else torch.device(device)


# -- trusted conversion of legacy files ---------------------------------------------------------
def _legacy_card(path: Path) -> tuple[ModelCard, str]:
    """Card and format of a legacy archive, read as JSON from the zip (no unpickling)."""
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
            member = next((n for n in names if n.split("/")[1:] == ["extra", CARD_FILENAME]), None)
            if member is None:
                raise ModelFileError(path, f"has no ecgaffect card ({CARD_FILENAME})")
            fmt = "pt2" if any(n.endswith("/archive_format") for n in names) else "torchscript"
            return ModelCard.from_json(zf.read(member)), fmt
    except (zipfile.BadZipFile, OSError, EOFError, ModelCardError, UnicodeDecodeError) as exc:
        raise ModelFileError(path, f"is not a legacy ecgaffect model: {exc}") from None


def _infer_architecture(state: Mapping[str, torch.Tensor], n_tasks: int) -> dict[str, Any]:
    from ecgaffect.model.networks import ARCHITECTURE_NAME, EMBEDDING_DIM, HEAD_VARIANTS

    idx = sorted(
        {int(k.split(".")[2]) for k in state if k.startswith("heads.0.") and k.endswith("weight")}
    )
    if not idx or len({k.split(".")[1] for k in state if k.startswith("heads.")}) != n_tasks:
        raise ValueError("the archive's weights are not an ecgaffect ScoringModule")
    layers = len(idx) - 1
    width = int(state[f"heads.0.{idx[0]}.weight"].shape[0]) if layers else EMBEDDING_DIM
    has_dropout = layers > 0 and idx[1] - idx[0] == 3
    dropout = 0.0
    if has_dropout:
        dropout = next(
            (
                v.dropout
                for v in HEAD_VARIANTS.values()
                if v.n_layers == layers and v.width == width and v.dropout > 0
            ),
            0.5,
        )
    return {
        "network": ARCHITECTURE_NAME,
        "embedding_dim": EMBEDDING_DIM,
        "head_layers": layers,
        "head_width": width,
        "head_dropout": float(dropout),
    }


def convert_legacy_model(
    src: str | Path, dst: str | Path, *, trust_source: bool = False
) -> tuple[ModelCard, float]:
    """Convert a legacy ``.pt2``/TorchScript model into a model file.

    Loading the legacy file runs torch's unpickler, which can execute code from the file:
    only for files you made or trust, hence ``trust_source``.

    Args:
        src: the legacy model.
        dst: the model file to write.
        trust_source: must be True (the caller vouches for ``src``).

    Returns:
        The card written and the largest absolute difference between the old and the new
        model's outputs on a random batch (conversion fails above 1e-5).

    Raises:
        ValueError: ``trust_source`` is not True, or the conversion does not reproduce the
            old outputs.
        ModelFileError: ``src`` is not a legacy ecgaffect model.
    """
    from ecgaffect.model.networks import build_scoring_module

    src, dst = Path(src), Path(dst)
    if not trust_source:
        raise ValueError(
            f"converting {str(src)!r} loads it with torch's unpickler, which can run code from "
            "the file; pass --trust-source only for a file you made or trust"
        )
    if not src.is_file():
        raise FileNotFoundError(f"model file {str(src)!r} does not exist")
    card, fmt = _legacy_card(src)
    try:
        if fmt == "pt2":
            program = torch.export.load(str(src))
            state = {k: v.detach() for k, v in program.state_dict.items()}
            old: Any = program.module()
        else:
            from ecgaffect.model.export import quiet_torchscript_deprecation

            with quiet_torchscript_deprecation():
                old = torch.jit.load(str(src), map_location="cpu")
            state = {k: v.detach() for k, v in old.state_dict().items()}
    except Exception as exc:  # torch raises many types for a damaged archive
        raise ModelFileError(src, f"cannot be loaded: {type(exc).__name__}: {exc}") from None
    arch = _infer_architecture(state, len(card.tasks))
    tasks = {t: len(c) for t, c in card.tasks.items()}
    module = build_scoring_module(arch, tasks, card.window_n)
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ValueError(f"{str(src)!r}: weights do not fit {arch}: {exc}") from None
    x = torch.randn(3, 1, card.window_n, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        diff = float((old(x) - module(x)).abs().max())
    if not diff <= 1e-5:
        raise ValueError(f"{str(src)!r}: the converted model differs by {diff:g}; not written")
    fields = {f.name: getattr(card, f.name) for f in dataclasses.fields(card)}
    fields.pop("architecture", None)
    fields.pop("weights_sha256", None)
    written = _save_module(module, arch, ModelCard(**fields), dst)
    log.info("converted %s (%s) to %s; max abs output difference %.3g", src, fmt, dst, diff)
    return written, diff
