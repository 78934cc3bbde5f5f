"""The exact incremental encoder: score a continuous stream without redoing the overlap.

At a 1 s hop a 10 s window shares 90 % of its samples with the previous window of the same
stream, and so do the interior activations of every layer of the :class:`Encoder`: a
position whose receptive field lies inside both windows sees the same samples, so its value
is the same (a "same"-padded convolution, an activation and an unpadded max-pool are all
translation-equivariant away from the window's edges). Only two ranges of positions must be
computed again at each layer:

- the **left edge** ``[0, lo)``: its receptive field reaches the zero padding before the
  window's first sample (which is a different sample now);
- the **new tail** and the **right edge** ``[hi - shift, n)``: positions whose receptive
  field reaches samples the previous window did not have, or its zero padding after the
  last sample.

Everything in ``[lo, hi - shift)`` is copied from the previous window's activation at
``[lo + shift, hi)``. ``lo``/``hi`` (the "clean" range whose receptive field avoids the
padding) are derived per layer from the kernel sizes and paddings (:class:`StageGeometry`),
never hard-coded. A max-pool of stride 2 halves the shift, so it is reusable only when the
shift, in that layer's input samples, is a multiple of the stride; otherwise that layer and
every later one are computed in full (the earlier ones are still reused: at an odd hop only
the first two convolutions' interior, 152 of 674 MFLOP, is saved).

**Exactness.** Reuse is decided by the samples themselves: a window is taken as a shift of
the previous one by ``s`` samples only when ``previous[s:] == new[:-s]`` holds exactly
(:func:`find_shift`). Then every reused activation is, by the argument above, the value the
per-window encoder computes at that position (up to float32 rounding: the edge pieces are
computed by convolutions over shorter inputs, whose summation order may differ in the last
bit). Anything else (the first window, a changed normalisation, a restart of the
preprocessor, a window that is not an exact shift for any other reason) is computed in full.
A gap or a recalibration in :class:`~ecgaffect.stream.pipeline.Pipeline` does not break the
stream (its preprocessed samples stay one continuous array), so those windows are still
exact shifts and still reused, correctly, because correctness rests on the sample equality
alone. The final embedding is the global max over the last layer, recomputed each time.

**Work.** For the packaged architecture at 2560 samples and a 256-sample (1 s) hop,
:meth:`IncrementalEncoder.flops` counts the multiply-adds of the positions computed:
about 100 MFLOP per window instead of 674 MFLOP for the full forward pass (issue 14's
estimate of 218 recomputed a wider band; here each layer recomputes only its own edges, 15-31
positions, and the shift), measured 0 to 2e-7 from the per-window embedding
(``tests/test_incremental.py``; ``benchmarks/bench_incremental.py`` prints the time).

**Memory.** Each stream keeps its last window's activations of every layer (about 570 000
float32 = 2.2 MiB for the packaged encoder at 2560 samples) twice, as one row ("slot") of
its encoder's pool (:class:`_SlotPool`): a step reads copy ``p`` and writes copy ``1 - p``,
so a batch of streams is handled with a few tensor operations per layer, however many
streams there are (every operation hands the GIL over and back; see
:mod:`ecgaffect.stream.multi`). 4.4 MiB per stream; a released stream's slot is reused.

:class:`IncrementalScorer` puts it behind a :class:`~ecgaffect.model.scorer.Scorer`: the same
window checks, the same heads and output check, one batched call for many streams' windows
(what :class:`ecgaffect.stream.multi.BatchScorer` makes per hop).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ecgaffect.model.networks import Encoder, ScoringModule

__all__ = [
    "IncrementalEncoder",
    "IncrementalScorer",
    "StageGeometry",
    "StreamState",
    "UnsupportedEncoderError",
    "find_shift",
]

#: Candidate shifts tried beyond the stream's last one (for flat signals, where the first
#: sample of the new window matches many samples of the old one).
MAX_SHIFT_CANDIDATES = 16


class UnsupportedEncoderError(ValueError):
    """The network is not a stack this module can run incrementally."""


@dataclass(frozen=True)
class _Stage:
    """One layer of the encoder's ``features``: a padded convolution (+ activation) or a
    max-pool.
    """

    kind: str  # "conv" | "pool"
    modules: tuple[nn.Module, ...]  # the encoder's own modules, for the full forward pass
    kernel: int
    stride: int = 1
    pad_left: int = 0
    pad_right: int = 0
    conv: nn.Conv1d | None = None
    act: nn.Module | None = None
    pool: nn.MaxPool1d | None = None

    def full(self, x: torch.Tensor) -> torch.Tensor:
        for m in self.modules:
            x = m(x)
        return x

    def span(self, a: int, b: int, n_in: int) -> tuple[int, int]:
        """The input positions ``[lo, hi)`` (clipped to the input) that output positions
        ``[a, b)`` read.
        """
        if self.kind == "pool":
            return self.stride * a, self.stride * (b - 1) + self.kernel
        return max(0, a - self.pad_left), min(n_in, b - self.pad_left + self.kernel - 1)

    def part(self, seg: torch.Tensor, a: int, b: int, n_in: int) -> torch.Tensor:
        """Output positions ``[a, b)`` from ``seg``, the input ``[B, C, n_in]`` cut to
        :meth:`span` (the zero padding beyond the input is added here).
        """
        if self.kind == "pool":
            assert self.pool is not None
            return self.pool(seg)
        assert self.conv is not None
        in_lo = a - self.pad_left
        in_hi = b - self.pad_left + self.kernel - 1
        left, right = max(0, -in_lo), max(0, in_hi - n_in)
        if left or right:
            seg = F.pad(seg, (left, right))
        y = self.conv(seg)
        return self.act(y) if self.act is not None else y


@dataclass(frozen=True)
class StageGeometry:
    """One layer at a given input length.

    Attributes:
        n_out: output positions.
        lo, hi: the clean output range ``[lo, hi)``: positions whose receptive field lies
            inside the window (touches no padding); ``lo >= hi`` when there is none.
        stride_in: input samples per step of this layer's *input* (1, then 2 after a
            stride-2 pool, ...): a shift of ``s`` input samples is ``s / stride_in`` here.
        macs_per_position: multiply-adds per output position (0 for a pool).
    """

    n_out: int
    lo: int
    hi: int
    stride_in: int
    macs_per_position: int


def _parse(encoder: Encoder) -> list[_Stage]:
    if type(encoder).forward is not Encoder.forward:
        raise UnsupportedEncoderError(
            f"{type(encoder).__name__} overrides Encoder.forward; only the global max-pool "
            "over Encoder.features is run incrementally"
        )
    mods = list(encoder.features)
    stages: list[_Stage] = []
    i = 0
    while i < len(mods):
        m = mods[i]
        if isinstance(m, nn.ConstantPad1d) and i + 1 < len(mods):
            conv = mods[i + 1]
            pad = m.padding
            if (
                not isinstance(conv, nn.Conv1d)
                or float(m.value) != 0.0
                or conv.stride != (1,)
                or conv.dilation != (1,)
                or conv.padding != (0,)
                or not isinstance(pad, tuple)
                or len(pad) != 2
            ):
                raise UnsupportedEncoderError(f"layer {i}: only zero padding + a plain Conv1d")
            act = mods[i + 2] if i + 2 < len(mods) else None
            if isinstance(act, nn.LeakyReLU | nn.ReLU | nn.Identity):
                modules: tuple[nn.Module, ...] = (m, conv, act)
                step = 3
            else:
                act, modules, step = None, (m, conv), 2
            stages.append(
                _Stage(
                    "conv",
                    modules,
                    kernel=int(conv.kernel_size[0]),
                    pad_left=int(pad[0]),
                    pad_right=int(pad[1]),
                    conv=conv,
                    act=act,
                )
            )
            i += step
        elif isinstance(m, nn.MaxPool1d):
            k, s = m.kernel_size, m.stride
            if not (isinstance(k, int) and isinstance(s, int)):
                raise UnsupportedEncoderError(f"layer {i}: MaxPool1d with tuple sizes")
            if m.padding != 0 or m.dilation != 1 or m.ceil_mode or m.return_indices:
                raise UnsupportedEncoderError(f"layer {i}: only an unpadded plain MaxPool1d")
            stages.append(_Stage("pool", (m,), kernel=k, stride=s, pool=m))
            i += 1
        else:
            raise UnsupportedEncoderError(
                f"layer {i} ({type(m).__name__}) is not zero padding + Conv1d or MaxPool1d"
            )
    if not stages:
        raise UnsupportedEncoderError("the encoder has no layers")
    return stages


def _geometry(stages: Sequence[_Stage], window_n: int) -> list[StageGeometry]:
    out: list[StageGeometry] = []
    n, lo, hi, stride = int(window_n), 0, int(window_n), 1
    for st in stages:
        if st.kind == "conv":
            assert st.conv is not None
            k = st.kernel
            n_out = n + st.pad_left + st.pad_right - k + 1
            # out[i] reads in[i - pad_left : i - pad_left + k]
            lo_o = lo + st.pad_left
            hi_o = min(n_out, hi - k + st.pad_left + 1)
            macs = st.conv.in_channels // st.conv.groups * st.conv.out_channels * k
        else:
            k, s = st.kernel, st.stride
            n_out = (n - k) // s + 1
            lo_o = -(-lo // s)
            hi_o = min(n_out, (hi - k) // s + 1) if hi >= k else 0
            macs = 0
        if n_out < 1:
            raise UnsupportedEncoderError(f"window of {window_n} samples is too short")
        out.append(StageGeometry(n_out, max(0, lo_o), max(0, hi_o), stride, macs))
        if st.kind == "pool":
            stride *= st.stride
        n, lo, hi = n_out, max(0, lo_o), max(0, hi_o)
    return out


def find_shift(previous: np.ndarray, new: np.ndarray, hint: int | None = None) -> int | None:
    """The ``s`` with ``previous[s:] == new[:len - s]`` exactly (``0 <= s < len``), or None.

    ``hint`` (the stream's last shift) is tried first; then the positions where ``previous``
    holds ``new[0]`` (at most :data:`MAX_SHIFT_CANDIDATES` of them).
    """
    n = previous.shape[0]
    if new.shape != previous.shape or n == 0:
        return None
    first = new[0]
    cands: list[int] = []
    if hint is not None and 0 <= hint < n:
        cands.append(int(hint))
    for s in np.flatnonzero(previous == first)[:MAX_SHIFT_CANDIDATES]:
        if int(s) not in cands:
            cands.append(int(s))
    for s in cands:
        if previous[s] == first and np.array_equal(previous[s:], new[: n - s]):
            return s
    return None


class StreamState:
    """One stream's cache: its last window, and a slot of its encoder's activation pool.

    Create with :meth:`IncrementalEncoder.new_state`; :meth:`release` it when the stream
    ends (it is also released when garbage-collected).

    Attributes:
        n_full: windows computed by the full forward pass.
        n_incremental: windows computed from the previous one.
        last_shift: the shift of the last incremental window (samples), or None.
    """

    def __init__(self, pool: _SlotPool) -> None:
        self._pool = pool
        self.slot: int | None = None
        self.parity = 0  # which of the pool's two copies holds this stream's activations
        self.x: np.ndarray | None = None
        self.last_shift: int | None = None
        self.n_full = 0
        self.n_incremental = 0
        self._finalizer: weakref.finalize | None = None

    @property
    def ready(self) -> bool:
        """Whether a window is cached (the next one may be computed incrementally)."""
        return self.x is not None and self.slot is not None

    def reset(self) -> None:
        """Forget the cached window: the stream's next window is computed in full."""
        self.x, self.last_shift = None, None

    def release(self) -> None:
        """Give the pool slot back (the state can be used again: it starts afresh)."""
        self.reset()
        if self._finalizer is not None:
            self._finalizer()  # releases the slot, once
            self._finalizer = None
        self.slot = None

    def _acquire(self) -> int:
        if self.slot is None:
            self.slot = self._pool.acquire()
            self._finalizer = weakref.finalize(self, self._pool.release, self.slot)
        return self.slot


class _SlotPool:
    """Every stream's activations, one slot (row) per stream, per layer, in two copies.

    ``copies[c][k]`` is ``[capacity, C_k, n_k]``. A step reads a stream's previous window
    from one copy and writes the new one to the other (its ``parity`` flips), so a batch
    of streams is read and written with a handful of tensor operations per layer, however
    many streams there are (each operation releases and retakes the GIL; see
    :mod:`ecgaffect.stream.multi`).
    """

    def __init__(self, channels: Sequence[int], lengths: Sequence[int]) -> None:
        self.channels = list(channels)
        self.lengths = list(lengths)
        self.capacity = 0
        self.copies: list[list[torch.Tensor]] = []
        self._free: list[int] = []
        self._lock = threading.RLock()

    def ensure(self, device: torch.device) -> None:
        with self._lock:
            if self.copies and self.copies[0][0].device != device:
                self.copies = [[t.to(device) for t in copy] for copy in self.copies]
            if not self.copies and self.capacity:
                self._grow_to(self.capacity, device)

    def _grow_to(self, capacity: int, device: torch.device) -> None:
        def resized(old: torch.Tensor | None, c: int, n: int) -> torch.Tensor:
            new = torch.empty((capacity, c, n), dtype=torch.float32, device=device)
            if old is not None:
                new[: old.shape[0]].copy_(old)
            return new

        self.copies = [
            [
                resized(self.copies[i][k] if self.copies else None, c, n)
                for k, (c, n) in enumerate(zip(self.channels, self.lengths, strict=True))
            ]
            for i in range(2)
        ]

    def acquire(self) -> int:
        with self._lock:
            if not self._free:
                old = self.capacity
                new = old + max(8, old // 4)
                if self.copies:
                    self._grow_to(new, self.copies[0][0].device)
                self.capacity = new
                self._free = list(range(new - 1, old - 1, -1))
            return self._free.pop()

    def release(self, slot: int) -> None:
        with self._lock:
            if 0 <= slot < self.capacity and slot not in self._free:
                self._free.append(slot)

    @property
    def slots_in_use(self) -> int:
        return self.capacity - len(self._free)


class _Rows:
    """A batch's slots in a pool tensor: a slice when they are consecutive, else indices."""

    def __init__(self, slots: Sequence[int], device: torch.device) -> None:
        self.slots = list(slots)
        first = self.slots[0]
        self.range: tuple[int, int] | None = None
        if self.slots == list(range(first, first + len(self.slots))):
            self.range = (first, first + len(self.slots))
        self.index = torch.as_tensor(self.slots, dtype=torch.long, device=device)

    def read(self, t: torch.Tensor, lo: int, hi: int) -> torch.Tensor:
        """``t[slots, :, lo:hi]`` (a view when consecutive, else a copy of that span)."""
        if self.range is not None:
            return t[self.range[0] : self.range[1], :, lo:hi]
        return t[:, :, lo:hi].index_select(0, self.index)

    def write(self, t: torch.Tensor, lo: int, hi: int, value: torch.Tensor) -> None:
        """``t[slots, :, lo:hi] = value``."""
        if self.range is not None:
            t[self.range[0] : self.range[1], :, lo:hi].copy_(value)
        elif lo == 0 and hi == t.shape[-1]:
            t.index_copy_(0, self.index, value)
        else:
            t[:, :, lo:hi].index_copy_(0, self.index, value)


class IncrementalEncoder:
    """Runs an :class:`Encoder` on windows of continuous streams, reusing the overlap.

    Args:
        encoder: the (eval-mode) encoder; its own modules are called, nothing is copied.
        window_n: samples per window.

    Raises:
        UnsupportedEncoderError: the encoder is not a stack of zero-padded convolutions
            and unpadded max-pools with the global max-pool of :class:`Encoder`.
    """

    def __init__(self, encoder: Encoder, window_n: int) -> None:
        self.encoder = encoder
        self.window_n = int(window_n)
        self._stages = _parse(encoder)
        self.geometry: tuple[StageGeometry, ...] = tuple(_geometry(self._stages, window_n))
        self._channels = [self._out_channels_of(k) for k in range(len(self._stages))]
        self._pool = _SlotPool(self._channels, [g.n_out for g in self.geometry])
        #: windows computed in full / incrementally, over all streams
        self.n_full = 0
        self.n_incremental = 0

    def new_state(self) -> StreamState:
        """An empty cache for one stream."""
        return StreamState(self._pool)

    def state_bytes(self) -> int:
        """Bytes of activations one stream's cache holds (both copies, float32)."""
        return 2 * 4 * sum(c * g.n_out for c, g in zip(self._channels, self.geometry, strict=True))

    @property
    def streams(self) -> int:
        """Streams holding a slot of the activation pool."""
        return self._pool.slots_in_use

    def _out_channels_of(self, k: int) -> int:
        for st in reversed(self._stages[: k + 1]):
            if st.conv is not None:
                return int(st.conv.out_channels)
        first = self._stages[0].conv
        return int(first.in_channels) if first is not None else 1

    # -- bookkeeping -----------------------------------------------------------------------
    def stage_shifts(self, shift: int | None) -> list[int | None]:
        """The shift at each layer's output for an input shift (None: not reusable)."""
        out: list[int | None] = []
        s = shift
        for st in self._stages:
            if s is not None and st.kind == "pool":
                s = s // st.stride if s % st.stride == 0 else None
            out.append(s)
        return out

    def _reused(self, g: StageGeometry, s: int | None) -> tuple[int, int] | None:
        """The output range ``[lo, hi)`` copied from the previous window, or None."""
        if s is None or g.hi - s <= g.lo:
            return None
        return g.lo, g.hi - s

    def flops(self, shift: int | None) -> int:
        """Multiply-add FLOPs (2 per MAC) of the convolutions for one window: in full
        (``shift=None``) or incrementally after a shift of ``shift`` samples.
        """
        total = 0
        for g, s in zip(self.geometry, self.stage_shifts(shift), strict=True):
            r = self._reused(g, s)
            computed = g.n_out if r is None else g.n_out - (r[1] - r[0])
            total += 2 * g.macs_per_position * computed
        return total

    # -- the forward pass --------------------------------------------------------------------
    def encode(self, windows: torch.Tensor, states: Sequence[StreamState]) -> torch.Tensor:
        """Embeddings ``[B, 128]`` of ``windows`` ``[B, 1, window_n]`` (float32, finite),
        row ``b`` being the next window of the stream whose cache is ``states[b]``.

        Every state is updated to its row's window. A stream's row is computed
        incrementally when its window is an exact shift of the cached one
        (:func:`find_shift`), else in full.

        Raises:
            ValueError: wrong shape, a state of another encoder, or the same state twice in
                one call (give a stream's consecutive windows in consecutive calls).
        """
        if windows.ndim == 2:
            windows = windows.unsqueeze(1)
        if windows.ndim != 3 or windows.shape[1] != 1 or windows.shape[2] != self.window_n:
            raise ValueError(
                f"windows have shape {tuple(windows.shape)}; expected [batch, 1, {self.window_n}]"
            )
        if len(states) != windows.shape[0]:
            raise ValueError(f"{windows.shape[0]} windows but {len(states)} stream states")
        if len({id(s) for s in states}) != len(states):
            raise ValueError("a stream state appears twice in one encode() call")
        if any(s._pool is not self._pool for s in states):
            raise ValueError("a stream state of another IncrementalEncoder")
        windows = windows.to(torch.float32)
        xs = windows.detach().cpu().numpy().reshape(len(states), -1)
        try:
            with self._pool._lock, torch.inference_mode():
                z = self._encode(windows, xs, states)
        except BaseException:
            for st in states:  # their activations may be half written: start afresh
                st.reset()
            raise
        for b, st in enumerate(states):
            st.x = xs[b].copy()
        return z

    def _encode(
        self, windows: torch.Tensor, xs: np.ndarray, states: Sequence[StreamState]
    ) -> torch.Tensor:
        for st in states:
            st._acquire()
        self._pool.ensure(windows.device)
        groups: dict[tuple[int | None, int], list[int]] = {}
        for b, st in enumerate(states):
            shift = None
            if st.ready:
                assert st.x is not None
                shift = find_shift(st.x, xs[b], st.last_shift)
            groups.setdefault((shift, st.parity if shift is not None else 0), []).append(b)
        z = windows.new_empty((windows.shape[0], self._channels[-1]))
        everyone = list(range(len(states)))
        for (shift, parity), rows in groups.items():
            rows.sort(key=lambda b: states[b].slot or 0)
            sub = [states[b] for b in rows]
            where = _Rows([st.slot or 0 for st in sub], windows.device)
            x = windows if rows == everyone else windows[rows]
            if shift is None:
                zs = self._full(x, sub, where)
            else:
                zs = self._step(x, sub, where, shift, parity)
            if rows == everyone:
                z = zs
            else:
                z[rows] = zs
        return z

    def _full(self, x: torch.Tensor, states: Sequence[StreamState], where: _Rows) -> torch.Tensor:
        dst = self._pool.copies[0]
        for k, st in enumerate(self._stages):
            x = st.full(x)
            where.write(dst[k], 0, x.shape[-1], x)
        for state in states:
            state.parity = 0
            state.last_shift = None
            state.n_full += 1
        self.n_full += len(states)
        return torch.amax(x, dim=-1)

    def _step(
        self,
        x: torch.Tensor,
        states: Sequence[StreamState],
        where: _Rows,
        shift: int,
        parity: int,
    ) -> torch.Tensor:
        """One incremental step for streams whose windows all moved by ``shift`` samples
        and whose activations are in copy ``parity`` of the pool.

        Layer by layer: the edges are computed as one batch from the new window's layer
        input, and written with the reused part (the previous window's, moved by the
        layer's shift) into the other copy.
        """
        src, dst = self._pool.copies[parity], self._pool.copies[1 - parity]
        batch_in: torch.Tensor | None = x  # the layer input as one tensor, when held
        for k, (stage, g, s) in enumerate(
            zip(self._stages, self.geometry, self.stage_shifts(shift), strict=True)
        ):
            reuse = self._reused(g, s)
            n_in = self.window_n if k == 0 else self.geometry[k - 1].n_out
            if reuse is None:
                if batch_in is None:
                    batch_in = where.read(dst[k - 1], 0, n_in)
                out = stage.full(batch_in)
                where.write(dst[k], 0, g.n_out, out)
                batch_in = out
                continue
            assert s is not None
            lo, hi = reuse
            edges: list[torch.Tensor | None] = []
            for a, b in ((0, lo), (hi, g.n_out)):
                if b <= a:
                    edges.append(None)
                    continue
                in_lo, in_hi = stage.span(a, b, n_in)
                if batch_in is not None:
                    seg = batch_in[..., in_lo:in_hi]
                else:
                    seg = where.read(dst[k - 1], in_lo, in_hi)
                edges.append(stage.part(seg, a, b, n_in))
            left, right = edges
            # the kept part, moved by the layer's shift, and the two edges (with consecutive
            # slots: copies into views; else one gather and scatters)
            where.write(dst[k], lo, hi, where.read(src[k], lo + s, hi + s))
            if left is not None:
                where.write(dst[k], 0, lo, left)
            if right is not None:
                where.write(dst[k], hi, g.n_out, right)
            batch_in = None
        for state in states:
            state.parity = 1 - parity
            state.last_shift = shift
            state.n_incremental += 1
        self.n_incremental += len(states)
        if batch_in is not None:
            return torch.amax(batch_in, dim=-1)
        return torch.amax(where.read(dst[-1], 0, self.geometry[-1].n_out), dim=-1)


def _heads(module: ScoringModule, z: torch.Tensor) -> torch.Tensor:
    """:meth:`ScoringModule.forward` after the encoder (the same operations)."""
    outs: list[torch.Tensor] = []
    for head in module.heads:
        logits = head(z)
        if logits.shape[-1] == 2:
            p = torch.sigmoid(logits)
            outs.append(p / p.sum(dim=-1, keepdim=True).clamp_min(1e-12))
        else:
            outs.append(torch.softmax(logits, dim=-1))
    return torch.cat(outs, dim=1)


class IncrementalScorer:
    """A :class:`~ecgaffect.model.scorer.Scorer`'s model, run incrementally per stream.

    Build with :meth:`for_scorer`. :meth:`score` takes one request per stream (its new
    windows, oldest first) with that stream's :class:`StreamState`, and makes one batched
    encoder call per window position across the streams (one call per hop when each stream
    brings one window), then one call of the heads for all.
    """

    def __init__(self, scorer: Any, module: ScoringModule) -> None:
        self.scorer = scorer
        self.module = module
        self.encoder = IncrementalEncoder(module.encoder, int(scorer.card.window_n))

    @staticmethod
    def unsupported_reason(scorer: Any) -> str | None:
        """Why ``scorer`` cannot be run incrementally, or None when it can."""
        module = getattr(scorer, "_module", None)
        if not isinstance(module, ScoringModule):
            return "its model is not an ecgaffect ScoringModule (e.g. a baseline model)"
        if getattr(scorer, "needs_baseline", False):
            return "its model scores relative to a personal baseline"
        if not callable(getattr(scorer, "_check_windows", None)):
            return "it has no window check"
        try:
            IncrementalEncoder(module.encoder, int(scorer.card.window_n))
        except UnsupportedEncoderError as exc:
            return str(exc)
        return None

    @classmethod
    def for_scorer(cls, scorer: Any) -> IncrementalScorer:
        """Wrap ``scorer`` (a loaded :class:`~ecgaffect.model.scorer.Scorer`).

        Raises:
            UnsupportedEncoderError: naming why its model cannot run incrementally.
        """
        why = cls.unsupported_reason(scorer)
        if why is not None:
            name = getattr(getattr(scorer, "card", None), "name", type(scorer).__name__)
            raise UnsupportedEncoderError(f"model {name!r} cannot be scored incrementally: {why}")
        return cls(scorer, scorer._module)

    def new_state(self) -> StreamState:
        return self.encoder.new_state()

    def score(
        self, requests: Sequence[np.ndarray], states: Sequence[StreamState], *, fs_hz: float
    ) -> list[dict[str, np.ndarray]]:
        """Class probabilities per request, as ``scorer.score`` gives them for each alone.

        Args:
            requests: per stream ``[n_i, window_n]`` windows, consecutive ones of that stream.
            states: per stream its cache (distinct).
            fs_hz: the windows' rate (must be the card's).

        Raises:
            ValueError: windows the scorer's checks refuse (rate, shape, non-finite).
            ModelOutputError: non-finite outputs (damaged weights).
        """
        from ecgaffect.model.modelfile import ModelOutputError

        if len(requests) != len(states):
            raise ValueError(f"{len(requests)} requests but {len(states)} stream states")
        counts = [int(np.shape(r)[0]) if np.ndim(r) >= 2 else -1 for r in requests]
        if any(n < 0 for n in counts):
            shapes = [np.shape(r) for r, n in zip(requests, counts, strict=True) if n < 0]
            raise ValueError(f"windows have shape {shapes[0]}; expected [batch, window_n]")
        # one check of all windows (the scorer's: rate, shape, finite values)
        x_all = self.scorer._check_windows(np.concatenate(requests), fs_hz)
        device = self.scorer.device
        starts = np.concatenate([[0], np.cumsum(counts)]).astype(int)
        total = int(starts[-1])
        if total == 0:
            n_out = int(self.scorer.card.n_outputs)
            return [
                self.scorer.card.split_outputs(np.zeros((0, n_out), np.float32)) for _ in requests
            ]
        with torch.inference_mode():
            z_all: torch.Tensor | None = None
            for r in range(max(counts)):
                who = [i for i, n in enumerate(counts) if n > r]
                rows = [int(starts[i]) + r for i in who]
                whole = rows == list(range(total))
                z = self.encoder.encode(
                    (x_all if whole else x_all[rows]).to(device), [states[i] for i in who]
                )
                if whole:
                    z_all = z
                    break
                if z_all is None:
                    z_all = z.new_empty((total, z.shape[1]))
                z_all[rows] = z
            assert z_all is not None
            out = _heads(self.module, z_all).detach().cpu().numpy()
        out = np.asarray(out, dtype=np.float32)
        if not np.isfinite(out).all():
            bad = np.flatnonzero(~np.isfinite(out).all(axis=1))
            raise ModelOutputError(
                f"model {self.scorer.card.name!r} ({getattr(self.scorer, 'path', '?')}) returned "
                f"NaN or infinite outputs for windows {bad[:10].tolist()}"
                f"{' ...' if len(bad) > 10 else ''} of finite input; its weights are damaged "
                "or unusable: re-export the model"
            )
        results: list[dict[str, np.ndarray]] = []
        lo = 0
        for n in counts:
            split = self.scorer.card.split_outputs(out[lo : lo + n])
            results.append({t: np.ascontiguousarray(p) for t, p in split.items()})
            lo += n
        return results
