"""The exact incremental encoder (issue 14 §3): the same embeddings and scores as per-window.

Unit parity: random continuous streams cut at several hops (aligned with the pools' strides
and not), against ``Encoder.forward`` on each window. Pipeline parity: a continuous synthetic
ECG through :class:`Pipeline` scored via :class:`BatchScorer` per window and incrementally
gives the same scores for every window, across a gap (lost samples) and a recalibration.

Tolerance: 1e-5 relative to the embedding's largest value (float32 rounding: the edge
pieces are convolutions over shorter inputs); the measured difference is printed.
"""

import threading

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from _export_fixtures import PREPROCESSING, make_card, make_net  # noqa: E402
from ecg_fixtures import synthetic_ecg_uv  # noqa: E402
from ecgaffect.model.incremental import (  # noqa: E402
    IncrementalEncoder,
    IncrementalScorer,
    UnsupportedEncoderError,
    find_shift,
)
from ecgaffect.model.networks import Encoder  # noqa: E402
from ecgaffect.stream.multi import BatchScorer  # noqa: E402
from ecgaffect.stream.pipeline import Pipeline  # noqa: E402
from stream_fakes import FAKE_TASKS, CollectSink, FakeScorer, FakeSource  # noqa: E402

N = 2560
RTOL = 1e-5


@pytest.fixture(scope="module")
def encoder():
    torch.manual_seed(3)
    return Encoder().eval()


def _reference(encoder, w):
    with torch.inference_mode():
        return encoder(w)


def _assert_close(z, ref, what):
    scale = max(1.0, float(ref.abs().max()))
    diff = float((z - ref).abs().max())
    print(f"{what}: max abs diff {diff:.3g} (scale {scale:.3g})")
    assert diff <= RTOL * scale, f"{what}: max abs diff {diff} > {RTOL} x {scale}"


@pytest.mark.parametrize("hop", [3, 6, 256, 257, 1000, 2559])
def test_incremental_embeddings_equal_per_window_ones(encoder, hop):
    """Two streams, several consecutive windows each; hops aligned with the strides (6: with
    the first pool only; 256: both) and not (3, 257, 2559: nothing after the first pool).
    """
    rng = np.random.default_rng(hop)
    k_windows = 4
    sig = torch.as_tensor(rng.normal(size=(2, N + hop * k_windows)).astype(np.float32))
    inc = IncrementalEncoder(encoder, N)
    states = [inc.new_state() for _ in range(2)]
    for k in range(k_windows + 1):
        w = sig[:, k * hop : k * hop + N].unsqueeze(1).contiguous()
        _assert_close(inc.encode(w, states), _reference(encoder, w), f"hop {hop} window {k}")
    assert [s.n_full for s in states] == [1, 1]
    assert [s.n_incremental for s in states] == [k_windows, k_windows]
    assert all(s.last_shift == hop for s in states)
    # less work than a full pass, except when the shift leaves no interior to reuse
    if hop < 2500:
        assert inc.flops(hop) < inc.flops(None)
    else:
        assert inc.flops(hop) == inc.flops(None)


def test_work_per_window_follows_the_layer_geometry(encoder):
    inc = IncrementalEncoder(encoder, N)
    # the packaged architecture: "same" convolutions keep the length, each pool (8, 2)
    # gives (n - 8) // 2 + 1 positions
    assert [g.n_out for g in inc.geometry] == [2560, 2560, 1277, 1277, 1277, 635, 635, 635]
    assert inc.stage_shifts(256) == [256, 256, 128, 128, 128, 64, 64, 64]
    assert inc.stage_shifts(6)[5:] == [None, None, None]  # 3 is odd: the second pool
    full = inc.flops(None)
    assert full == sum(2 * g.macs_per_position * g.n_out for g in inc.geometry)
    # at a 1 s hop: the new tail and the edges only (3-7x less than the full pass)
    assert 3 * inc.flops(256) < full < 7 * inc.flops(256)
    # an unaligned hop still saves the first two convolutions' interior
    assert inc.flops(255) < full


def test_a_window_that_is_not_an_exact_shift_is_computed_in_full(encoder):
    rng = np.random.default_rng(1)
    sig = rng.normal(size=N + 3 * 256).astype(np.float32)
    inc = IncrementalEncoder(encoder, N)
    st = inc.new_state()
    w0 = torch.as_tensor(sig[None, None, :N])
    inc.encode(w0, [st])
    # one sample of the overlap changed (as after a restart of the preprocessor)
    w1 = sig[256 : 256 + N].copy()
    w1[1000] += 1e-3
    z = inc.encode(torch.as_tensor(w1[None, None]), [st])
    _assert_close(z, _reference(encoder, torch.as_tensor(w1[None, None])), "changed sample")
    assert (st.n_full, st.n_incremental) == (2, 0)
    # a changed normalisation: the same samples scaled
    w2 = torch.as_tensor(1.5 * w1[None, None])
    _assert_close(inc.encode(w2, [st]), _reference(encoder, w2), "rescaled")
    assert (st.n_full, st.n_incremental) == (3, 0)
    # and an exact shift again after that is incremental
    w3 = 1.5 * w1[None, None].copy()
    w3 = np.concatenate([w3[..., 512:], rng.normal(size=(1, 1, 512)).astype(np.float32)], -1)
    w3t = torch.as_tensor(w3)
    _assert_close(inc.encode(w3t, [st]), _reference(encoder, w3t), "shift after rescale")
    assert st.n_incremental == 1
    assert st.last_shift == 512


def test_find_shift_needs_the_whole_overlap_to_match():
    rng = np.random.default_rng(2)
    x = rng.normal(size=100).astype(np.float32)
    new = np.concatenate([x[7:], rng.normal(size=7).astype(np.float32)])
    assert find_shift(x, new) == 7
    assert find_shift(x, new, hint=7) == 7
    bad = new.copy()
    bad[50] = 0.5
    assert find_shift(x, bad) is None
    assert find_shift(x, x) == 0
    flat = np.zeros(100, np.float32)  # a flat line matches at every shift: any is exact
    assert find_shift(flat, flat, hint=10) == 10


def test_many_streams_with_different_shifts_and_scattered_slots_in_one_call(encoder):
    """Fresh, shifted and not-shifted streams mixed in one call; a released slot in the
    middle makes the others' slots non-consecutive (the gather/scatter path).
    """
    rng = np.random.default_rng(4)
    inc = IncrementalEncoder(encoder, N)
    hops = [256, 128, 256, 300, 256]
    sigs = [rng.normal(size=N + 4 * h).astype(np.float32) for h in hops]
    states = [inc.new_state() for _ in hops]
    gone = inc.new_state()
    w = [torch.as_tensor(s[None, :N]) for s in sigs]
    order = [0, 1, 2, 3, 4]
    inc.encode(torch.stack(w), states)
    inc.encode(torch.as_tensor(rng.normal(size=(1, 1, N)).astype(np.float32)), [gone])
    states[2].release()  # slot 2 freed: the others are no longer consecutive
    for k in range(1, 4):
        order = order[1:] + order[:1]  # a different row order every call
        wins = torch.stack(
            [torch.as_tensor(sigs[i][None, k * hops[i] : k * hops[i] + N]) for i in order]
        )
        z = inc.encode(wins, [states[i] for i in order])
        _assert_close(z, _reference(encoder, wins), f"mixed call {k}")
    assert states[2].n_full == 2  # released: started afresh
    assert [states[i].n_incremental for i in (0, 1, 3, 4)] == [3, 3, 3, 3]
    assert inc.streams == 6  # 5 + gone (2 was released, and took its slot again)


def test_a_state_twice_in_one_call_is_refused(encoder):
    inc = IncrementalEncoder(encoder, N)
    st = inc.new_state()
    with pytest.raises(ValueError, match="twice"):
        inc.encode(torch.zeros(2, 1, N), [st, st])
    with pytest.raises(ValueError, match=r"expected \[batch, 1, 2560\]"):
        inc.encode(torch.zeros(1, 1, 100), [st])
    other = IncrementalEncoder(encoder, N).new_state()
    with pytest.raises(ValueError, match="another IncrementalEncoder"):
        inc.encode(torch.zeros(1, 1, N), [other])


def test_an_encoder_with_other_layers_is_refused():
    enc = Encoder()
    enc.features.append(torch.nn.AvgPool1d(2))
    with pytest.raises(UnsupportedEncoderError, match="AvgPool1d"):
        IncrementalEncoder(enc, N)


# -- the scorer and the batcher ----------------------------------------------------------------


@pytest.fixture(scope="module")
def real_scorer(tmp_path_factory):
    from ecgaffect.model.export import export_model
    from ecgaffect.model.scorer import Scorer

    card = make_card(preprocessing={**PREPROCESSING, "calibration_s": 20.0})
    path = export_model(make_net(), card, tmp_path_factory.mktemp("incr") / "m.safetensors")
    return Scorer.load(path)


def test_incremental_scorer_equals_the_scorer_for_requests_of_several_windows(real_scorer):
    rng = np.random.default_rng(5)
    sig = rng.normal(size=(3, N + 6 * 256)).astype(np.float32)
    inc = IncrementalScorer.for_scorer(real_scorer)
    states = [inc.new_state() for _ in range(3)]
    starts = [0, 0, 0]
    for counts in ([1, 2, 1], [2, 1, 0], [1, 1, 2]):
        reqs = []
        for i, n in enumerate(counts):
            rows = [sig[i, (starts[i] + j) * 256 :][:N] for j in range(n)]
            reqs.append(np.stack(rows) if rows else np.zeros((0, N), np.float32))
            starts[i] += n
        got = inc.score(reqs, states, fs_hz=256.0)
        for req, res in zip(reqs, got, strict=True):
            want = real_scorer.score(req, fs_hz=256.0) if req.shape[0] else None
            for task in real_scorer.tasks:
                if want is None:
                    assert res[task].shape[0] == 0
                else:
                    np.testing.assert_allclose(res[task], want[task], rtol=0, atol=1e-5)
    assert inc.encoder.n_incremental == sum(starts) - 3
    with pytest.raises(ValueError, match="expects windows sampled at 256"):
        inc.score([sig[:1, :N]], [states[0]], fs_hz=130.0)


def test_batcher_is_incremental_only_for_a_model_that_can_be(real_scorer):
    fake = FakeScorer(make_card(name="fake", tasks=FAKE_TASKS, window_s=1.0))
    with BatchScorer(fake) as b:
        assert b.incremental is None
    with BatchScorer(fake, incremental=False) as b:
        assert b.incremental is None
    with pytest.raises(ValueError, match="cannot be scored incrementally"):
        BatchScorer(fake, incremental=True)
    with BatchScorer(real_scorer) as b:
        assert b.incremental is not None
        c = b.client()
        assert c.state is not None
        c.close()


def test_a_bad_window_fails_alone_and_the_others_stay_exact(real_scorer):
    rng = np.random.default_rng(6)
    sig = rng.normal(size=(3, N + 3 * 256)).astype(np.float32)
    with BatchScorer(real_scorer, max_wait_s=30.0, incremental=True) as batcher:
        clients = [batcher.client() for _ in range(3)]
        for k in range(3):
            wins = [sig[i, k * 256 : k * 256 + N][None].copy() for i in range(3)]
            if k == 1:
                wins[1][0, 5] = np.nan
            results, errors = [None] * 3, [None] * 3

            def go(i, wins=wins, results=results, errors=errors):
                try:
                    results[i] = clients[i].score(wins[i], fs_hz=256.0)
                except Exception as exc:
                    errors[i] = exc

            threads = [threading.Thread(target=go, args=(i,)) for i in range(3)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(30)
            for i in range(3):
                if k == 1 and i == 1:
                    assert isinstance(errors[i], ValueError)
                    assert "NaN" in str(errors[i])
                    continue
                assert errors[i] is None
                want = real_scorer.score(wins[i], fs_hz=256.0)
                for task in real_scorer.tasks:
                    np.testing.assert_allclose(results[i][task], want[task], rtol=0, atol=1e-5)
        for c in clients:
            c.close()
    assert batcher.windows_incremental >= 4  # clients 0 and 2 at k = 1, 2


def _run(scorer, x, *, incremental, recal_at):
    sink = CollectSink()
    with BatchScorer(scorer, incremental=incremental) as batcher:
        client = batcher.client()
        pipe = Pipeline(
            FakeSource(x, 130.0, chunk_n=73, skip={50: 650}),  # 5 s of samples lost
            client,
            hop_s=1.0,
            sinks=[sink],
            max_pending=10_000,
        )

        class Recal(CollectSink):  # on the I/O thread: at a fixed point of the stream
            called = False

            def on_chunk(self, chunk):
                if chunk.first_index >= recal_at * 130 and not Recal.called:
                    pipe.recalibrate()
                    Recal.called = True

        pipe.sinks.append(Recal())
        with pipe:
            assert pipe.wait(120)
        client.close()
        counts = (batcher.windows_full, batcher.windows_incremental)
    assert pipe.counters.gaps == 1
    assert pipe.counters.windows_dropped == 0
    assert Recal.called
    assert not pipe.recalibrating
    return sink.scores, counts, pipe


def test_pipeline_scores_incrementally_equal_per_window_across_a_gap_and_a_recalibration(
    real_scorer,
):
    x = synthetic_ecg_uv(70.0, 130.0, seed=21)
    per_window, counts0, _ = _run(real_scorer, x, incremental=False, recal_at=25)
    incr, counts1, pipe = _run(real_scorer, x, incremental=True, recal_at=25)
    assert counts0 == (0, 0)
    assert len(incr) == len(per_window) > 20
    assert [s.window_index for s in incr] == [s.window_index for s in per_window]
    worst = 0.0
    for a, b in zip(per_window, incr, strict=True):
        for task in real_scorer.tasks:
            worst = max(worst, float(np.abs(a.probabilities[task] - b.probabilities[task]).max()))
            np.testing.assert_allclose(b.probabilities[task], a.probabilities[task], atol=1e-5)
    print(f"pipeline: {len(incr)} windows, max abs probability diff {worst:.3g}")
    # the preprocessed stream stays continuous across the gap and the recalibration, so
    # after the first window every one was computed from its predecessor
    assert counts1 == (1, len(incr) - 1)
    assert pipe.baseline is not None
