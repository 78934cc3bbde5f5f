"""On-disk cache of preprocessed windows, so a second run over a dataset starts in seconds.

An entry is a saved :class:`~ecgaffect.datasets.windows.WindowSet` in
``<cache dir>/<dataset>/<key>/``. The key is a SHA-256 over

* every source file the loader reads: resolved path, size, ``mtime_ns`` and a SHA-256 of its
  first and last MiB (so a replaced or re-downloaded file is noticed even when its size and
  time happen to match);
* every parameter that changes the windows: dataset, tasks, label scheme, hop, window
  alignment, the full
  :class:`~ecgaffect.signal.PreprocessConfig`, the loader options, ``skip_bad``, the window
  set format and the ecgaffect version.

So any changed file or parameter gives a new key and never reuses a stale entry. Entries are
built in a temporary folder next to their final place and renamed into place only when
complete, so a killed build leaves no half entry (only a ``.tmp-*`` folder, removed by later
builds once it is a day old).

The cache folder is, in order: the ``cache_dir`` argument, ``$ECGAFFECT_CACHE_DIR``, or
``platformdirs.user_cache_dir("ecgaffect")/windows``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ecgaffect
from ecgaffect.datasets import registry
from ecgaffect.datasets.base import LoadReport

if TYPE_CHECKING:
    from ecgaffect.datasets.windows import WindowSet
    from ecgaffect.signal import PreprocessConfig

__all__ = [
    "CACHE_ENV",
    "cache_key",
    "cached_windowset",
    "clear_cache",
    "default_cache_dir",
    "file_fingerprint",
]

log = logging.getLogger(__name__)

CACHE_ENV = "ECGAFFECT_CACHE_DIR"
CACHE_FORMAT = 1
MANIFEST = "cache.json"
_EDGE_BYTES = 1 << 20
_STALE_TMP_S = 24 * 3600.0


def default_cache_dir() -> Path:
    """``$ECGAFFECT_CACHE_DIR`` or the per-user cache folder of ecgaffect, plus ``windows``."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    try:
        from platformdirs import user_cache_dir

        base = Path(user_cache_dir("ecgaffect"))
    except ImportError:  # platformdirs is a dependency; keep working without it anyway
        base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "ecgaffect"
    return base / "windows"


def file_fingerprint(path: str | Path) -> dict[str, Any]:
    """Path, size, ``mtime_ns`` and a SHA-256 of the first and last MiB of ``path``."""
    p = Path(path).resolve()
    st = p.stat()
    h = hashlib.sha256()
    with p.open("rb") as f:
        h.update(f.read(_EDGE_BYTES))
        if st.st_size > _EDGE_BYTES:
            f.seek(max(_EDGE_BYTES, st.st_size - _EDGE_BYTES))
            h.update(f.read(_EDGE_BYTES))
    return {
        "path": str(p),
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "edge_sha256": h.hexdigest(),
    }


def _config_dict(config: Any) -> dict[str, Any]:
    if hasattr(config, "to_dict"):
        return dict(config.to_dict())
    if is_dataclass(config) and not isinstance(config, type):
        return asdict(config)
    raise TypeError(f"config must be a PreprocessConfig, got {type(config).__name__}")


def cache_key(
    dataset: str,
    root: str | Path,
    *,
    scheme: str,
    hop_s: float,
    config: PreprocessConfig,
    tasks: list[str],
    loader_options: dict[str, Any],
    skip_bad: bool,
    align: str = "segment",
) -> tuple[str, dict[str, Any]]:
    """The entry key (hex) and the document it hashes (kept in the entry's manifest)."""
    from ecgaffect.datasets.windows import FORMAT_VERSION

    files = registry.source_files(dataset, root, **loader_options)
    if not files and dataset not in registry.GENERATED:
        raise FileNotFoundError(f"dataset {dataset!r}: no source files found under {root}")
    doc = {
        "cache_format": CACHE_FORMAT,
        "windowset_format": FORMAT_VERSION,
        "ecgaffect_version": ecgaffect.__version__,
        "dataset": dataset,
        "tasks": list(tasks),
        "scheme": scheme,
        "hop_s": float(hop_s),
        "align": align,
        "config": _config_dict(config),
        "loader_options": {k: loader_options[k] for k in sorted(loader_options)},
        "skip_bad": bool(skip_bad),
        "files": [file_fingerprint(p) for p in files],
    }
    text = json.dumps(doc, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest(), doc


def _remove_stale_tmp(folder: Path) -> None:
    now = time.time()
    for tmp in folder.glob(".tmp-*"):
        try:
            if now - tmp.stat().st_mtime > _STALE_TMP_S:
                shutil.rmtree(tmp, ignore_errors=True)
        except FileNotFoundError:
            pass


def cached_windowset(
    dataset: str,
    root: str | Path,
    *,
    scheme: str = "binary",
    hop_s: float = 10.0,
    config: PreprocessConfig | None = None,
    loader_options: dict[str, Any] | None = None,
    tasks: list[str] | None = None,
    cache_dir: str | Path | None = None,
    rebuild: bool = False,
    skip_bad: bool = False,
    report: LoadReport | None = None,
    progress: bool = True,
    align: str = "segment",
) -> WindowSet:
    """Windows of ``dataset`` at ``root``, from the cache when an identical entry exists.

    Args:
        dataset: a :data:`~ecgaffect.datasets.registry.DATASETS` name.
        root: the user's copy of the dataset.
        scheme: label scheme, passed to :func:`~ecgaffect.datasets.windows.make_windowset`
            (as are ``hop_s``, ``config``, ``tasks`` and ``align``).
        hop_s: window hop in seconds.
        config: the signal path (default :class:`~ecgaffect.signal.PreprocessConfig`).
        tasks: label names to encode (``None``: the dataset's default tasks).
        align: window grid of labelled sessions (``"segment"`` or ``"session"``).
        loader_options: keyword options of the dataset's ``load_sessions`` (``lead="III"``).
        cache_dir: cache folder (default: see :func:`default_cache_dir`).
        rebuild: build even when an entry exists, replacing it.
        skip_bad: skip bad files/sessions (listed in ``report``) instead of raising.
        report: filled by the loader when the set is (re)built.
        progress: show progress bars while building.

    Returns:
        The window set; ``x`` is memory-mapped from the cache. ``meta["cache"]`` says
        ``{"status": "hit" | "built", "entry": folder, "key": hex}`` (not saved with the
        entry, so it does not change the set's fingerprint).
    """
    from ecgaffect.datasets.windows import WindowSet, make_windowset
    from ecgaffect.signal import PreprocessConfig

    config = config if config is not None else PreprocessConfig()
    options = dict(loader_options or {})
    task_list = list(tasks) if tasks is not None else list(registry.dataset_tasks(dataset))
    key, doc = cache_key(
        dataset,
        root,
        scheme=scheme,
        hop_s=hop_s,
        config=config,
        tasks=task_list,
        loader_options=options,
        skip_bad=skip_bad,
        align=align,
    )
    folder = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    folder = folder / dataset
    entry = folder / key[:32]
    if not rebuild and (entry / MANIFEST).is_file():
        try:
            stored = json.loads((entry / MANIFEST).read_text())
            if stored.get("key") == key:
                ws = WindowSet.load(entry, mmap=True)
                log.info("%s: %d windows from cache %s", dataset, len(ws), entry)
                ws.meta["cache"] = {"status": "hit", "entry": str(entry), "key": key}
                return ws
            log.warning("cache entry %s has another key; rebuilding", entry)
        except (OSError, ValueError) as exc:
            log.warning("cache entry %s is unreadable (%s); rebuilding", entry, exc)

    log.info("%s: building windows (cache miss) into %s", dataset, entry)
    t0 = time.perf_counter()
    report = report if report is not None else LoadReport(dataset=dataset, root=str(root))
    sessions = registry.load_dataset(
        dataset, root, skip_bad=skip_bad, report=report, progress=progress, **options
    )
    if not sessions:
        raise ValueError(f"dataset {dataset!r} at {root}: no sessions loaded\n{report.summary()}")
    ws = make_windowset(
        sessions,
        tasks=task_list,
        scheme=scheme,
        hop_s=hop_s,
        config=config,
        progress=progress,
        skip_bad=skip_bad,
        align=align,
    )
    folder.mkdir(parents=True, exist_ok=True)
    _remove_stale_tmp(folder)
    tmp = folder / f".tmp-{key[:32]}-{uuid.uuid4().hex[:8]}"
    try:
        ws.save(tmp)
        manifest = {"key": key, "created": time.time(), "problems": len(report.problems), **doc}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True, default=str))
        old = None
        if entry.exists():
            old = folder / f".tmp-old-{uuid.uuid4().hex[:8]}"
            entry.rename(old)
        try:
            tmp.rename(entry)
        except OSError:
            if not (entry / MANIFEST).is_file():  # not another process finishing first
                raise
            log.info("another process filled %s first; using its entry", entry)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    log.info("%s: %d windows built in %.1f s", dataset, len(ws), time.perf_counter() - t0)
    ws = WindowSet.load(entry, mmap=True)
    ws.meta["cache"] = {"status": "built", "entry": str(entry), "key": key}
    return ws


def clear_cache(cache_dir: str | Path | None = None, dataset: str | None = None) -> int:
    """Delete cache entries (of one dataset, or all); returns how many were removed."""
    folder = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    parents = [folder / dataset] if dataset else [p for p in folder.glob("*") if p.is_dir()]
    n = 0
    for parent in parents:
        for entry in parent.glob("*"):
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
                n += not entry.name.startswith(".tmp-")
    return n
