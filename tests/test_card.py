"""The model card's version 2 layout (typed preprocessing) and the version 1 reader."""

from __future__ import annotations

import dataclasses
import json

import pytest

from _export_fixtures import TASKS, make_card
from ecgaffect.model.card import CARD_VERSION, ModelCard, ModelCardError
from ecgaffect.signal import PreprocessConfig
from ecgaffect.stream.scoring import ScorerCard

PREP = PreprocessConfig(fs_hz=128.0, window_s=8.0, normalization="calibrated", calibration_s=30.0)


def v1_dict(prep: PreprocessConfig = PREP, **overrides) -> dict:
    """A card in the version 1 layout: the input fields repeated at the top level."""
    data = {
        "name": "old-model",
        "tasks": TASKS,
        "preprocessing": prep.to_dict(),
        "normalization": prep.normalization,
        "label_scheme": "paper",
        "fs_hz": prep.fs_hz,
        "window_n": prep.window_n,
        "window_s": prep.window_s,
        "thresholds": {"arousal": 0.4, "affect": None},
        "demo": True,
        "notes": "an old card",
        "card_version": 1,
    }
    data.update(overrides)
    return data


def test_card_version_2_preprocessing_is_typed_and_input_fields_derive_from_it():
    card = make_card(preprocessing=PREP)
    assert CARD_VERSION == 2
    assert isinstance(card.preprocessing, PreprocessConfig)
    assert card.preprocessing == PREP
    assert (card.fs_hz, card.window_n, card.window_s) == (128.0, 1024, 8.0)
    assert card.normalization == "calibrated"
    with pytest.raises(AttributeError):  # derived, not stored: cannot disagree
        card.fs_hz = 256.0  # type: ignore[misc]
    field_names = {f.name for f in dataclasses.fields(card)}
    assert not field_names & {"fs_hz", "window_n", "window_s", "normalization"}
    assert {"architecture", "weights_sha256"} <= field_names


def test_card_version_2_round_trips_typed():
    card = make_card(
        preprocessing=PREP,
        architecture={"network": "x", "head_layers": 1},
        weights_sha256="ab" * 32,
        metrics={"protocol": "loso", "accuracy": 0.5},
    )
    data = card.to_dict()
    assert data["card_version"] == 2
    assert data["preprocessing"] == PREP.to_dict()
    assert not set(data) & {"fs_hz", "window_n", "window_s", "normalization"}
    json.dumps(data, allow_nan=False)
    again = ModelCard.from_dict(data)
    assert again == card
    assert isinstance(again.preprocessing, PreprocessConfig)
    assert again.to_dict() == data
    assert ModelCard.from_json(card.to_json()) == card


def test_card_constructor_wants_a_preprocess_config():
    with pytest.raises(ModelCardError, match=r"'preprocessing' = .*must be an ecgaffect"):
        ModelCard(
            name="x",
            tasks=TASKS,
            preprocessing=PREP.to_dict(),  # type: ignore[arg-type]
            label_scheme="binary",
        )


def test_card_satisfies_the_scorer_card_protocol():
    card: ScorerCard = make_card(preprocessing=PREP)
    assert card.fs_hz == 128.0
    assert card.window_n == 1024
    assert card.preprocessing == PREP


def test_version_1_card_is_read_and_converted():
    card = ModelCard.from_dict(v1_dict())
    assert card.card_version == 2
    assert card.preprocessing == PREP
    assert (card.fs_hz, card.window_n, card.normalization) == (128.0, 1024, "calibrated")
    assert card.label_scheme == "paper"
    assert card.thresholds == {"arousal": 0.4, "affect": None}
    assert card.to_dict()["card_version"] == 2
    again = ModelCard.from_json(json.dumps(v1_dict()))
    # a v1 card without created_utc gets the time it was read: compare everything else
    assert dataclasses.replace(again, created_utc=card.created_utc) == card


def test_version_1_top_level_fields_fill_a_partial_preprocessing():
    # early cards held a partial preprocessing; the top-level fields complete it
    data = v1_dict(preprocessing={"fs_hz": 128.0, "highpass_hz": 0.8, "version": "test"})
    data.update(window_s=8.0, window_n=1024, normalization="calibrated")
    card = ModelCard.from_dict(data)
    assert card.preprocessing.window_s == 8.0
    assert card.normalization == "calibrated"
    assert card.preprocessing.version == "test"


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"fs_hz": 256.0}, r"'fs_hz' = 256.0: must equal preprocessing\['fs_hz'\] = 128.0"),
        ({"normalization": "subject"}, r"'normalization' = 'subject': must equal"),
        ({"window_s": 10.0}, r"'window_s' = 10.0: must equal preprocessing\['window_s'\]"),
        ({"window_n": 2560}, r"'window_n' = 2560: must equal fs_hz \* window_s"),
    ],
)
def test_version_1_card_with_disagreeing_input_fields_is_refused(overrides, match):
    with pytest.raises(ModelCardError, match=match):
        ModelCard.from_dict(v1_dict(**overrides))


def test_the_packaged_card_json_is_version_2():
    from importlib import resources

    text = resources.files("ecgaffect").joinpath("data/default_model_card.json").read_text()
    data = json.loads(text)
    assert data["card_version"] == 2
    assert "fs_hz" not in data
    card = ModelCard.from_dict(data)
    assert card.preprocessing == PreprocessConfig()
