"""AffectOutlet, EcgOutlet and MarkerInlet against local LSL inlets/outlets."""

from __future__ import annotations

import time

import numpy as np
import pylsl
import pytest

from ecgaffect.stream.outlets import AffectOutlet, EcgOutlet, MarkerInlet
from ecgaffect.stream.sinks import Score
from ecgaffect.stream.sources.base import EcgChunk
from lsl_helpers import RESOLVE_S, resolve_one, unique_name, wait_until

CLASSES = {"arousal": ("low", "high"), "stress": ("no-stress", "stress")}


def _pull_all(inlet: pylsl.StreamInlet, n: int, timeout_s: float = 3.0):
    samples, stamps = [], []
    deadline = time.monotonic() + timeout_s
    while len(samples) < n and time.monotonic() < deadline:
        chunk, ts = inlet.pull_chunk(timeout=0.05)
        samples.extend(chunk)
        stamps.extend(ts)
    assert len(samples) == n, f"received {len(samples)} of {n} samples"
    return np.asarray(samples), np.asarray(stamps)


def test_affect_outlet_layout_metadata_and_samples():
    name = unique_name("affect")
    info_meta = {
        "name": "cpc-ecg-v1",
        "training_data": ["amigos", "swell"],
        "preprocessing": {"fs_hz": 256.0, "window_s": 10.0},
    }
    with AffectOutlet(CLASSES, name=name, model_info=info_meta) as outlet:
        info = resolve_one(name)
        assert info.type() == "Affect"
        assert info.nominal_srate() == pylsl.IRREGULAR_RATE
        inlet = pylsl.StreamInlet(info)
        full = inlet.info(timeout=RESOLVE_S)
        ch = full.desc().child("channels").child("channel")
        labels = []
        while not ch.empty():
            labels.append(ch.child_value("label"))
            ch = ch.next_sibling()
        assert labels == [
            "arousal:low",
            "arousal:high",
            "stress:no-stress",
            "stress:stress",
            "quality_ok",
            "heart_rate_bpm",
        ]
        model = full.desc().child("model")
        assert model.child_value("name") == "cpc-ecg-v1"
        assert model.child("preprocessing").empty()  # only the public keys go out
        assert model.child("training_data").empty()  # never published (issue 15 item 11)
        assert model.child("classes").child("stress").child("item").child_value() == "no-stress"
        inlet.open_stream(timeout=RESOLVE_S)
        assert wait_until(outlet.have_consumers)
        score = Score(
            timestamp_s=pylsl.local_clock(),
            window_start_s=pylsl.local_clock() - 10,
            window_index=3,
            probabilities={"arousal": np.array([0.25, 0.75])},  # no stress task
            classes={"arousal": ("low", "high")},
            quality_ok=False,
            heart_rate_bpm=64.0,
        )
        outlet.on_score(score)
        samples, stamps = _pull_all(inlet, 1)
    np.testing.assert_allclose(samples[0, :2], [0.25, 0.75])
    assert np.isnan(samples[0, 2:4]).all()
    assert samples[0, 4] == 0.0
    assert samples[0, 5] == 64.0
    assert stamps[0] == pytest.approx(score.timestamp_s, abs=1e-6)


def test_affect_outlet_rejects_empty_layout():
    with pytest.raises(ValueError, match="non-empty class names"):
        AffectOutlet({"arousal": ()})


def test_ecg_outlet_per_sample_timestamps():
    name = unique_name("ecg")
    fs = 130.0
    with EcgOutlet(fs, name=name) as outlet:
        info = resolve_one(name)
        assert (info.type(), info.nominal_srate(), info.channel_count()) == ("ECG", fs, 1)
        inlet = pylsl.StreamInlet(info)
        inlet.open_stream(timeout=RESOLVE_S)
        assert wait_until(outlet.have_consumers)
        t0 = pylsl.local_clock()
        # irregular spacing survives: the outlet must not re-derive times from the rate
        ts = (
            t0 + np.cumsum(np.r_[0.0, np.full(72, 1 / fs)]) + np.r_[np.zeros(40), 0.5 * np.ones(33)]
        )
        outlet.on_chunk(EcgChunk(np.arange(73.0), ts, 0))
        samples, stamps = _pull_all(inlet, 73)
    np.testing.assert_array_equal(samples[:, 0], np.arange(73.0))
    np.testing.assert_allclose(stamps, ts, atol=1e-6)
    with pytest.raises(ValueError, match="fs_hz must be a positive number, got -1"):
        EcgOutlet(-1)


def test_marker_inlet_delivers_clock_corrected_markers():
    name = unique_name("markers")
    info = pylsl.StreamInfo(name, "Markers", 1, pylsl.IRREGULAR_RATE, pylsl.cf_string, name)
    outlet = pylsl.StreamOutlet(info)
    got = []
    with MarkerInlet(got.append, name=name, resolve_timeout_s=0.5) as inlet:
        assert inlet.connected.wait(RESOLVE_S + 1)
        assert wait_until(outlet.have_consumers)
        t = pylsl.local_clock()
        outlet.push_sample(["trial 1 start"], t)
        outlet.push_sample(["trial 1 end"], t + 0.25)
        assert wait_until(lambda: len(got) >= 2)
    assert [m.text for m in got] == ["trial 1 start", "trial 1 end"]
    # same machine: clock correction is ~0, timestamps come back as pushed
    assert got[0].timestamp_s == pytest.approx(t, abs=1e-3)
    assert got[1].timestamp_s - got[0].timestamp_s == pytest.approx(0.25, abs=1e-6)
    assert inlet.stream_name == name
    del outlet


def test_marker_inlet_rejects_bad_timeout():
    with pytest.raises(ValueError, match="resolve_timeout_s must be > 0, got 0"):
        MarkerInlet(print, resolve_timeout_s=0)


def test_marker_inlet_rejects_a_name_lsl_cannot_match():
    with pytest.raises(ValueError, match=r"cannot contain a single quote, got \"it's\""):
        MarkerInlet(print, name="it's", resolve_timeout_s=0.1)


def test_affect_outlet_publishes_no_training_data_paths_or_host():
    name = unique_name("affect")
    meta = {
        "name": "my-model",
        "version": "3",
        "training_data": {"amigos": "/home/alice/data/amigos"},
        "hostname": "alice-laptop",
        "validation": {"loso_balanced_accuracy": 0.61},
        "notes": "/home/alice/secret",
    }
    with AffectOutlet(CLASSES, name=name, model_info=meta):
        info = resolve_one(name)
        full = pylsl.StreamInlet(info).info(timeout=RESOLVE_S)
        xml = full.as_xml()
    model = full.desc().child("model")
    assert model.child_value("name") == "my-model"
    assert model.child_value("version") == "3"
    assert model.child("validation").child_value("loso_balanced_accuracy") == "0.61"
    desc_xml = xml[xml.index("<desc>") :]
    assert "alice" not in desc_xml
    assert "training_data" not in desc_xml


def test_marker_inlet_survives_invalid_utf8():
    name = unique_name("markers")
    info = pylsl.StreamInfo(name, "Markers", 1, pylsl.IRREGULAR_RATE, pylsl.cf_string, name)
    outlet = pylsl.StreamOutlet(info)
    got = []
    with MarkerInlet(got.append, name=name, resolve_timeout_s=0.5) as inlet:
        assert inlet.connected.wait(RESOLVE_S + 1)
        assert wait_until(outlet.have_consumers)
        t = pylsl.local_clock()
        outlet.push_sample(["before"], t)
        outlet.push_sample([b"bad \xff\xfe marker"], t + 0.1)
        outlet.push_sample(["after"], t + 0.2)
        assert wait_until(lambda: len(got) >= 3)
        assert inlet._thread.is_alive()
    assert [m.text for m in got] == ["before", "bad \ufffd\ufffd marker", "after"]
    assert inlet.n_undecodable == 1
    del outlet


def _channels_by_label(xml_text: str) -> dict[str, dict[str, str]]:
    """``desc/channels`` of an LSL stream's XML: label -> {field: text}."""
    import xml.etree.ElementTree as ET

    root = ET.fromstring(xml_text)
    chans = root.find("desc/channels")
    assert chans is not None
    return {
        ch.findtext("label"): {c.tag: (c.text or "") for c in ch} for ch in chans.findall("channel")
    }


def _mixed_card():
    """A card whose ``stress`` output is validated and whose ``arousal`` output is not."""
    from _export_fixtures import make_card

    return make_card(
        name="mixed",
        tasks={"arousal": ["low", "high"], "stress": ["no-stress", "stress"]},
        demo=False,
        metrics={
            "protocol": "LOSO",
            "outputs": {
                "stress": {
                    "validated": True,
                    "validated_on": {"dataset": "EEGMAT (Zyma 2019)", "protocol": "LOSO, 28"},
                    "loso_balanced_accuracy": 0.81,
                    "loso_auroc": 0.85,
                },
            },
        },
    )


def test_affect_outlet_says_per_channel_what_is_validated():
    from types import SimpleNamespace

    from ecgaffect.stream import factories

    name = unique_name("affect")
    scorer = SimpleNamespace(card=_mixed_card())
    with AffectOutlet(CLASSES, name=name, model_info=factories.model_info(scorer)):
        info = resolve_one(name)
        xml_text = pylsl.StreamInlet(info).info(timeout=RESOLVE_S).as_xml()
    chans = _channels_by_label(xml_text)
    for label in ("stress:no-stress", "stress:stress"):
        ch = chans[label]
        assert ch["validated"] == "yes"
        assert ch["dataset"] == "EEGMAT (Zyma 2019)"
        assert ch["protocol"] == "LOSO, 28"
        assert ch["metric"] == "LOSO balanced accuracy 0.81, AUROC 0.85"
        assert "note" not in ch  # nothing to add
    for label in ("arousal:low", "arousal:high"):
        ch = chans[label]
        assert ch["validated"] == "no"
        assert ch["dataset"] == "none"
        assert ch["metric"] == "none"
        assert ch["note"] == "no validation recorded in the card"
    for label in ("quality_ok", "heart_rate_bpm"):  # not model outputs: no validation fields
        assert "validated" not in chans[label]


def test_affect_outlet_of_the_packaged_models_by_channel():
    from ecgaffect.model.card import DEMO_WARNING
    from ecgaffect.stream import factories

    for model, expected in (("stress", "yes"), ("demo", "no")):
        scorer = factories.load_scorer(model)
        classes = {t: scorer.classes(t) for t in scorer.tasks}
        name = unique_name("affect")
        with AffectOutlet(classes, name=name, model_info=factories.model_info(scorer)):
            xml_text = pylsl.StreamInlet(resolve_one(name)).info(timeout=RESOLVE_S).as_xml()
        chans = _channels_by_label(xml_text)
        probs = {k: v for k, v in chans.items() if ":" in k}
        assert len(probs) == sum(len(c) for c in classes.values())
        assert {ch["validated"] for ch in probs.values()} == {expected}
        if model == "stress":
            ch = probs["stress:arithmetic"]
            assert ch["dataset"].startswith("EEGMAT")
            assert ch["protocol"].startswith("leave-one-subject-out")
            assert ch["metric"].startswith("LOSO balanced accuracy 0.8")
            assert "note" not in ch
        else:
            assert {ch["note"] for ch in probs.values()} == {DEMO_WARNING}


def test_channel_validation_withholds_paths_and_defaults_to_not_validated():
    from ecgaffect.stream.outlets import channel_validation

    assert channel_validation(None) == {
        "validated": "no",
        "dataset": "none",
        "protocol": "none",
        "metric": "none",
        "note": "no validation recorded for this output",
    }
    out = channel_validation({"validated": "yes", "dataset": "/home/alice/eegmat", "note": ""})
    assert out == {"validated": "yes", "dataset": "withheld", "protocol": "none", "metric": "none"}
