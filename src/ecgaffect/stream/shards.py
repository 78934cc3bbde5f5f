"""Past one core or one machine: several scorers, each taking a share of the LSL streams.

One ``ecgaffect live`` is one Python interpreter: its pipelines and its batched model call
share one GIL, so it uses about one core (see :mod:`ecgaffect.stream.multi`). To score more
participants, start K scorers with ``--share I/K`` (I = 1..K), on one machine or several:
each takes only the streams whose **stable key** hashes into its share,

    share(key) = (first 8 bytes of SHA-256(key as UTF-8), big-endian) mod K + 1

where the key is the stream's LSL source id, or its name when it has none (``--lsl NAME``
streams: the name given, since a named stream is chosen before it is resolved). SHA-256 is
the same on every machine, Python version and run (Python's own ``hash()`` of a string is
salted per process), so K scorers started with the same K split all streams between them
with no overlap and no coordination, and a stream that appears later lands in one share
only. LSL is the fabric: there is no coordinator to fail. (Not :func:`zlib.crc32`: a CRC is
linear, so names that differ in a digit or two barely change its low bits -- ``P01-ECG`` to
``P07-ECG`` all give crc32 mod 2 = 1 -- and a lab's consecutively named streams would pile
into one share.)

:class:`Workers` is ``--workers K`` on one machine: it starts K - 1 child ``ecgaffect live``
processes with ``--share i/K`` (i = 2..K; the calling process is share 1/K), forwards their
console lines prefixed with their share, reports a child that ends early without stopping the
others, and terminates the children when the parent ends. One XDF file cannot be written by
several processes, so ``--record FILE.xdf`` becomes one file per share,
``FILE-share1of2.xdf``, ``FILE-share2of2.xdf`` (:func:`share_record_path`).
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

__all__ = [
    "Share",
    "Workers",
    "parse_share",
    "share_index",
    "share_record_path",
    "stream_key",
    "threads_per_share",
]

_SHARE_RE = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


def share_index(key: str, count: int) -> int:
    """The share (1..``count``) that the stream with stable key ``key`` belongs to."""
    if count < 1:
        raise ValueError(f"share count must be >= 1, got {count}")
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % count + 1


def stream_key(name: str, source_id: str | None) -> str:
    """A stream's stable key: its source id, else its name."""
    return source_id or name


@dataclass(frozen=True)
class Share:
    """Share ``index`` of ``count`` (1-based): which streams this scorer takes."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if not (1 <= self.index <= self.count):
            raise ValueError(f"--share expects I/K with 1 <= I <= K, got {self.index}/{self.count}")

    def takes(self, key: str) -> bool:
        """Whether the stream with stable key ``key`` is this share's."""
        return share_index(key, self.count) == self.index

    def split(self, keys: Iterable[str]) -> tuple[list[str], list[str]]:
        """``keys`` as (taken by this share, left to the others), order kept."""
        taken: list[str] = []
        left: list[str] = []
        for key in keys:
            (taken if self.takes(key) else left).append(key)
        return taken, left

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_share(text: str) -> Share:
    """``"I/K"`` (e.g. ``"1/2"``) -> :class:`Share`; a clear error for anything else."""
    m = _SHARE_RE.match(text)
    if m is None:
        raise ValueError(f"--share expects I/K with 1 <= I <= K (e.g. 1/2), got {text!r}")
    return Share(int(m.group(1)), int(m.group(2)))


def share_record_path(path: Path, share: Share) -> Path:
    """``session.xdf`` -> ``session-share1of2.xdf``: one recording per share."""
    return path.with_name(f"{path.stem}-share{share.index}of{share.count}{path.suffix}")


class Workers:
    """K - 1 child scorer processes for ``--workers K`` (this process being share 1/K).

    Args:
        commands: one argv per child (``[sys.executable, "-m", "ecgaffect", "live", ...]``).
        labels: one label per child (its share, ``"2/3"``), used in its console lines.
        out: where the children's lines go, each prefixed with ``[share 2/3] ``.
        env: the children's environment (default: this process's).
    """

    def __init__(
        self,
        commands: Sequence[Sequence[str]],
        labels: Sequence[str],
        out: TextIO,
        env: Mapping[str, str] | None = None,
    ):
        if len(commands) != len(labels):
            raise ValueError("one label per worker command")
        self.out = out
        self.labels = list(labels)
        self._lock = threading.Lock()
        self._stopping = False
        #: after :meth:`stop`: labels of the children that failed
        self.failed: list[str] = []
        self.procs: list[subprocess.Popen[str]] = []
        self._threads: list[threading.Thread] = []
        for cmd, label in zip(commands, labels, strict=True):
            proc = subprocess.Popen(
                list(cmd),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                bufsize=1,
                env=None if env is None else dict(env),
            )
            self.procs.append(proc)
            t = threading.Thread(
                target=self._pump, args=(proc, label), name=f"ecgaffect-share-{label}", daemon=True
            )
            t.start()
            self._threads.append(t)
            self._say(f"workers: share {label} started (pid {proc.pid})")

    def _say(self, line: str) -> None:
        with self._lock:
            print(line, file=self.out, flush=True)

    def _pump(self, proc: subprocess.Popen[str], label: str) -> None:
        """Forward the child's lines; report it when it ends while the others go on."""
        assert proc.stdout is not None
        for line in proc.stdout:
            self._say(f"[share {label}] {line.rstrip()}")
        rc = proc.wait()
        if not self._stopping:
            self._say(
                f"workers: share {label} (pid {proc.pid}) ended with exit code {rc}; "
                "the other shares go on"
            )

    def alive(self) -> list[str]:
        """Labels of the children still running."""
        return [lb for lb, p in zip(self.labels, self.procs, strict=True) if p.poll() is None]

    def wait(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for every child to end by itself; True when all did."""
        deadline = time.monotonic() + timeout_s
        for p in self.procs:
            try:
                p.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                return False
        return True

    def stop(self, timeout_s: float = 10.0) -> list[int]:
        """SIGTERM the children still running (each stops and writes its summary), kill
        any that has not ended after ``timeout_s``; returns their exit codes.
        """
        self._stopping = True
        signalled = set()
        for i, p in enumerate(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                signalled.add(i)
        deadline = time.monotonic() + timeout_s
        for p, label in zip(self.procs, self.labels, strict=True):
            try:
                p.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self._say(f"workers: share {label} (pid {p.pid}) did not stop; killed")
                p.kill()
                p.wait()
        for t, p in zip(self._threads, self.procs, strict=True):
            t.join(timeout=2.0)
            if p.stdout is not None and not t.is_alive():
                p.stdout.close()
        codes = [int(p.returncode) for p in self.procs]
        for label, rc in zip(self.labels, codes, strict=True):
            self._say(f"workers: share {label} exit code {rc}")
        # a child our SIGTERM reached before it set up its handler ended with -SIGTERM
        self.failed = [
            lb
            for i, (lb, rc) in enumerate(zip(self.labels, codes, strict=True))
            if rc != 0 and not (i in signalled and rc == -signal.SIGTERM)
        ]
        return codes


def threads_per_share(k: int, cpu_count: int | None = None) -> int:
    """The torch threads for each of ``k`` scorer processes on one machine: the cores shared
    out (at least 1). Each process's default (one thread per core) would make K processes
    oversubscribe the cores: measured with 2 shares of 100 participants on 2 cores, p99
    1.25 s with the default threads and 0.56 s with one thread each (quiet machine both times).
    """
    cores = cpu_count if cpu_count is not None else (os.cpu_count() or 1)
    return max(1, cores // max(1, k))


def python_command() -> list[str]:
    """How to start ``ecgaffect`` again with this interpreter."""
    return [sys.executable, "-m", "ecgaffect"]
