"""BatchScorer: one model call for the windows of many pipelines (issue 14 §2)."""

import threading

import numpy as np
import pytest

from _export_fixtures import make_card
from ecgaffect.stream.multi import BatchScorer, PrefixedWriter, affect_stream_names
from stream_fakes import FAKE_TASKS, FakeScorer


class KwScorer(FakeScorer):
    """A fake that takes an optional per-window ``baseline`` and refuses NaN windows."""

    def __init__(self):
        super().__init__(make_card(name="fake", tasks=FAKE_TASKS, window_s=1.0))
        self.kwargs = []

    def score(self, windows, *, fs_hz, **kw):
        self.kwargs.append({k: np.asarray(v).copy() for k, v in kw.items()})
        if not np.isfinite(windows).all():
            raise ValueError("windows are not finite")
        out = super().score(windows, fs_hz=fs_hz)
        if "baseline" in kw:  # make the rows depend on the baseline, to check the split
            out["arousal"] = np.repeat(np.asarray(kw["baseline"])[:, :1], 2, axis=1)
        return out


def _submit_all(batcher, clients, windows, **extras_per_client):
    results, errors = [None] * len(clients), [None] * len(clients)

    def go(i):
        try:
            kw = {k: v[i] for k, v in extras_per_client.items()}
            results[i] = clients[i].score(windows[i], fs_hz=256.0, **kw)
        except Exception as exc:
            errors[i] = exc

    threads = [threading.Thread(target=go, args=(i,)) for i in range(len(clients))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
        assert not t.is_alive(), "a client never got its result"
    return results, errors


def test_one_call_for_every_client_and_rows_go_back_to_their_owner():
    scorer = KwScorer()
    rng = np.random.default_rng(0)
    windows = [rng.normal(size=(1 + i % 2, 256)).astype(np.float32) for i in range(5)]
    with BatchScorer(scorer, max_wait_s=30.0) as batcher:  # waits for all 5, not the deadline
        clients = [batcher.client() for _ in range(5)]
        results, errors = _submit_all(batcher, clients, windows)
    assert errors == [None] * 5
    assert scorer.batches == [sum(w.shape[0] for w in windows)]
    assert batcher.n_calls == 1
    for w, res in zip(windows, results, strict=True):
        alone = FakeScorer(scorer.card).score(w, fs_hz=256.0)
        for task in FAKE_TASKS:
            np.testing.assert_allclose(res[task], alone[task], rtol=1e-6)


def test_extra_per_window_arrays_are_concatenated_and_passed_as_keywords():
    scorer = KwScorer()
    windows = [np.zeros((2, 256), np.float32), np.zeros((1, 256), np.float32)]
    baselines = [np.array([[1.0], [2.0]]), np.array([[3.0]])]
    with BatchScorer(scorer, max_wait_s=30.0) as batcher:
        clients = [batcher.client() for _ in range(2)]
        results, errors = _submit_all(batcher, clients, windows, baseline=baselines)
    assert errors == [None, None]
    assert len(scorer.kwargs) == 1
    assert sorted(scorer.kwargs[0]["baseline"].ravel().tolist()) == [1.0, 2.0, 3.0]
    assert results[0]["arousal"][:, 0].tolist() == [1.0, 2.0]
    assert results[1]["arousal"][:, 0].tolist() == [3.0]


def test_extra_array_of_the_wrong_length_is_a_clear_error():
    with BatchScorer(KwScorer()) as batcher:
        client = batcher.client()
        with pytest.raises(ValueError, match="'baseline' must have one row per window"):
            client.score(np.zeros((2, 256)), fs_hz=256.0, baseline=np.zeros((3, 1)))


def test_a_bad_window_fails_only_its_own_request():
    scorer = KwScorer()
    good = np.zeros((1, 256), np.float32)
    bad = np.full((1, 256), np.nan, np.float32)
    with BatchScorer(scorer, max_wait_s=30.0) as batcher:
        clients = [batcher.client() for _ in range(3)]
        results, errors = _submit_all(batcher, clients, [good, bad, good])
    assert isinstance(errors[1], ValueError)
    assert "not finite" in str(errors[1])
    assert errors[0] is None
    assert errors[2] is None
    assert results[0]["arousal"].shape == (1, 2)
    assert results[2]["arousal"].shape == (1, 2)


def test_a_closed_client_is_not_waited_for():
    scorer = KwScorer()
    with BatchScorer(scorer, max_wait_s=60.0) as batcher:
        a, b = batcher.client(), batcher.client()
        b.close()  # b's pipeline ended: a alone must not wait 60 s for it
        done = []
        t = threading.Thread(target=lambda: done.append(a.score(np.zeros((1, 256)), fs_hz=256.0)))
        t.start()
        t.join(10)
        assert done, "the batcher waited for a closed client"


def test_max_batch_splits_calls():
    scorer = KwScorer()
    windows = [np.zeros((1, 256), np.float32) for _ in range(4)]
    with BatchScorer(scorer, max_batch=2, max_wait_s=30.0) as batcher:
        clients = [batcher.client() for _ in range(4)]
        _, errors = _submit_all(batcher, clients, windows)
    assert errors == [None] * 4
    assert max(scorer.batches) <= 2
    assert sum(scorer.batches) == 4


@pytest.mark.parametrize(
    ("name", "sid", "expected"),
    [
        ("P01-ECG", "h10-AB12", ("P01-affect", "h10-AB12/affect")),
        ("P02_ecg", "", ("P02-affect", "P02_ecg/affect")),
        ("strap7", "s7", ("strap7-affect", "s7/affect")),
    ],
)
def test_affect_stream_names(name, sid, expected):
    assert affect_stream_names(name, sid) == expected


def test_prefixed_writer_prefixes_whole_lines():
    import io

    out = io.StringIO()
    w = PrefixedWriter(out, "P01: ", threading.Lock())
    w.write("a")
    w.write("b\nc\n")
    assert out.getvalue() == "P01: ab\nP01: c\n"
    assert not w.isatty()
