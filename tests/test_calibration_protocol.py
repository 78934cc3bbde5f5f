"""The guided-calibration protocol: blocks by samples received, markers, SAM, faults."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest

from ecg_fixtures import synthetic_ecg_uv
from ecgaffect.datasets.session import Session
from ecgaffect.stream.calibration import (
    CalibrationError,
    CalibrationProtocol,
    ConsolePresenter,
    SamAnswer,
    ScriptedPresenter,
    SerialSubtraction,
    run_calibration,
)
from ecgaffect.stream.recorder import XdfRecorder
from ecgaffect.stream.sources.base import EcgChunk, Source, SourceState
from ecgaffect.stream.sources.replay import ReplaySource

FS = 130.0


def _session(rest_s: float = 185.0, task_s: float = 70.0) -> Session:
    ecg = np.concatenate(
        [
            synthetic_ecg_uv(rest_s, FS, hr_bpm=64.0, seed=1),
            synthetic_ecg_uv(task_s, FS, hr_bpm=88.0, seed=2),
        ]
    )
    return Session("test", "S01", "rest-task", ecg, FS)


def test_blocks_follow_the_samples_and_markers_reach_the_recording(tmp_path):
    import pyxdf

    path = tmp_path / "cal.xdf"
    presenter = ScriptedPresenter(answers={"rest": SamAnswer(6, 2), "task": SamAnswer(4, 7)})
    proto = CalibrationProtocol(rest_s=180.0, task_s=60.0, seed=3)
    with XdfRecorder(path, ecg_fs_hz=FS) as rec:
        out = run_calibration(
            ReplaySource(_session(), speed=math.inf), proto, presenter, recorder=rec
        )
    assert out.rest_span_s == (0.0, 180.0)
    # a replay is held at the block boundary while the scripted user answers: no pause
    assert out.task_span_s == pytest.approx((180.0, 240.0), abs=1.0 / FS)
    assert out.ecg_uv.shape[0] >= 240 * FS
    assert out.lost_samples == 0
    assert out.sam == {"rest": SamAnswer(6, 2), "task": SamAnswer(4, 7)}
    assert [b for b, _ in presenter.shown] == ["rest", "task", "done"]
    assert str(out.task.start) in presenter.shown[1][1]
    assert 1000 <= out.task.start <= 9999
    assert 11 <= out.task.step <= 99
    streams, _ = pyxdf.load_xdf(str(path))
    markers = next(s for s in streams if s["info"]["type"][0] == "Markers")
    texts = [m[0] for m in markers["time_series"]]
    assert texts[0].endswith("rest start")
    assert any("serial subtraction" in t for t in texts)
    assert any("sam task valence=4 arousal=7" in t for t in texts)
    ts = np.asarray(markers["time_stamps"])
    assert np.all(np.diff(ts) >= 0)
    ecg = next(s for s in streams if s["info"]["type"][0] == "ECG")
    # the marker of the task's start sits on the ECG sample 180 s in
    t_task = ts[[i for i, t in enumerate(texts) if "task start" in t][0]]
    assert t_task - ecg["time_stamps"][0] == pytest.approx(180.0, abs=0.05)


def test_session_is_eegmat_shaped_and_windows_like_it():
    from ecgaffect.datasets.windows import make_windowset
    from ecgaffect.signal import PreprocessConfig

    proto = CalibrationProtocol(rest_s=180.0, task_s=60.0, sam=False, seed=0)
    out = run_calibration(ReplaySource(_session(), speed=math.inf), proto, ScriptedPresenter())
    session = out.to_session("me")
    labels = [dict(s.labels)["stress"] for s in session.segments]
    assert labels == ["rest", "arithmetic"]
    ws = make_windowset(
        [session],
        tasks=["stress"],
        scheme="condition",
        hop_s=5.0,
        config=PreprocessConfig(normalization="calibrated"),
        progress=False,
    )
    y = np.asarray(ws.labels["stress"])
    assert (y == 0).sum() >= 30
    assert (y == 1).sum() >= 8


class _Dying(Source):
    """Streams 100 s of ECG then fails (a strap that vanished)."""

    name = "dying strap"
    live = True

    def __init__(self) -> None:
        super().__init__()
        self.fs_hz = FS
        self._x = synthetic_ecg_uv(100.0, FS, seed=4)
        self._i = 0

    def _open(self) -> None:
        self._set_status(SourceState.STREAMING)

    def _close(self) -> None:
        pass

    def _read(self, timeout_s: float) -> list:
        if self._i >= self._x.size:
            return [self._set_status(SourceState.FAILED, "device disconnected")]
        hi = min(self._i + 130, self._x.size)
        gap = self._i == 1300  # 10 frames never arrived
        first = self._i + (260 if gap else 0) + (260 if self._i > 1300 else 0)
        chunk = EcgChunk(self._x[self._i : hi], np.arange(first, first + hi - self._i) / FS, first)
        self._i = hi
        return [chunk]


def test_a_vanishing_source_is_named_and_the_recording_keeps_what_came(tmp_path):
    import pyxdf

    path = tmp_path / "cal.xdf"
    with (
        XdfRecorder(path, ecg_fs_hz=FS) as rec,
        pytest.raises(
            CalibrationError, match=r"during the rest block: .*disconnected.*102 s.*cal\.xdf"
        ),
    ):
        run_calibration(_Dying(), CalibrationProtocol(sam=False), ScriptedPresenter(), recorder=rec)
    streams, _ = pyxdf.load_xdf(str(path))
    ecg = next(s for s in streams if s["info"]["type"][0] == "ECG")
    assert len(ecg["time_stamps"]) == 13000  # every sample that arrived is in the file


def test_lost_samples_are_nan_not_bridged():
    class _Short(_Dying):
        def __init__(self) -> None:
            super().__init__()
            self._x = synthetic_ecg_uv(260.0, FS, seed=5)

    # unpaced fake: hold it at block ends as a replay is (a real strap streams in real time)
    out = run_calibration(
        _Short(),
        CalibrationProtocol(rest_s=180, task_s=60, sam=False),
        ScriptedPresenter(),
        hold_source_when_paused=True,
    )
    assert out.lost_samples == 260
    assert np.isnan(out.ecg_uv[1300:1560]).all()
    assert np.isfinite(out.ecg_uv[:1300]).all()


def test_protocol_limits_and_task_draw():
    with pytest.raises(ValueError, match="rest must last at least 90 s"):
        CalibrationProtocol(rest_s=30)
    with pytest.raises(ValueError, match="task must last at least 40 s"):
        CalibrationProtocol(task_s=10)
    rng = np.random.default_rng(0)
    for _ in range(200):
        t = SerialSubtraction.draw(rng)
        assert 1000 <= t.start <= 9999
        assert 11 <= t.step <= 99
        assert t.step % 10 != 0
    with pytest.raises(ValueError, match="SAM valence must be an integer 1-9"):
        SamAnswer(0, 5)


def test_console_presenter_asks_again_on_bad_answers_and_allows_skipping():
    answers = iter(["x", "12", "7", "3"])
    out = io.StringIO()
    p = ConsolePresenter(out, ask=lambda _prompt: next(answers))
    assert p.ask_sam("task") == SamAnswer(7, 3)
    assert out.getvalue().count("please type a whole number from 1 to 9") == 2
    p2 = ConsolePresenter(out, ask=lambda _prompt: "")
    assert p2.ask_sam("rest") is None


# ---------------------------------------------------------------------------------------
# The personal model and `ecgaffect calibrate`, end to end with a scripted user
# ---------------------------------------------------------------------------------------


def test_calibrate_end_to_end_makes_a_model_live_accepts(tmp_path):
    import pyxdf

    from ecgaffect.cli import main
    from ecgaffect.model.scorer import Scorer

    rec = tmp_path / "me.npy"
    np.save(rec, _session(185.0, 75.0).ecg.astype(np.float32))
    model = tmp_path / "me.safetensors"
    xdf = tmp_path / "me.xdf"
    answers = iter(["6", "2", "4", "8"])  # SAM after rest, then after the task
    import builtins

    real_input = builtins.input
    builtins.input = lambda _prompt="": next(answers)
    try:
        code = main(
            ["calibrate", "--replay", str(rec), "--fs-hz", "130", "--speed", "inf",
             "--task-min", "1", "--out", str(model), "--record", str(xdf), "--profile", "me",
             "--seed", "2"]
        )  # fmt: skip
    finally:
        builtins.input = real_input
    assert code == 0
    scorer = Scorer.load(model)
    out = scorer.card.metrics["outputs"]["stress"]
    assert out["personal"] is True
    assert out["validated"] is False  # personal: not validated on other people
    assert out["cv_balanced_accuracy"] >= 0.8  # the fixture's HR rises 62 -> 88 bpm
    assert scorer.card.training_data["profile"] == "me"
    streams, _ = pyxdf.load_xdf(str(xdf))
    texts = [m[0] for s in streams if s["info"]["type"][0] == "Markers" for m in s["time_series"]]
    assert any("sam rest valence=6 arousal=2" in t for t in texts)
    assert any("sam task valence=4 arousal=8" in t for t in texts)
    # live accepts it: a replay of a new rest -> task session scores the task higher
    from ecgaffect.model.offline import preprocess_windows
    from ecgaffect.model.stress_model import score_session_offline

    ecg = _session(120.0, 60.0).ecg
    x, start = preprocess_windows(ecg, FS, scorer.card, hop_s=5.0, normalization="live")
    p, cal = score_session_offline(scorer, x, start)
    rest = ~cal & (start + 10 <= 120)
    task = start >= 120
    assert np.nanmean(p[task]) > np.nanmean(p[rest]) + 0.3


def test_personal_model_refuses_too_little_data(tmp_path):
    from ecgaffect.datasets.session import Segment
    from ecgaffect.model.personal_model import PersonalModelError, fit_personal_model

    s = _session(120.0, 60.0)
    x = s.ecg.copy()
    x[int(130 * FS) : int(170 * FS)] = np.nan  # a strap off for 40 s of the task
    s = Session("test", "S01", "t", x, FS, segments=(
        Segment(0.0, 120.0, {"stress": "rest"}), Segment(120.0, 180.0, {"stress": "arithmetic"})
    ))  # fmt: skip
    with pytest.raises(PersonalModelError, match=r"too few usable windows.* during the task"):
        fit_personal_model(s, tmp_path / "m.safetensors")
    assert not (tmp_path / "m.safetensors").exists()
