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


def test_the_demo_card_json_is_version_2():
    from importlib import resources

    text = resources.files("ecgaffect").joinpath("data/default_model_card.json").read_text()
    data = json.loads(text)
    assert data["card_version"] == 2
    assert "fs_hz" not in data
    card = ModelCard.from_dict(data)
    assert card.preprocessing == PreprocessConfig()


def _validated_stress_metrics(**extra) -> dict:
    return {
        "protocol": "LOSO",
        "outputs": {
            "stress": {
                "validated": True,
                "validated_on": {"dataset": "EEGMAT (Zyma 2019)", "protocol": "LOSO over 28"},
                "loso_balanced_accuracy": 0.81,
                "loso_auroc": 0.85,
                "hrv_baseline_balanced_accuracy": 0.7,
                "hrv_baseline_auroc": 0.78,
                **extra,
            }
        },
    }


def test_output_validation_per_task_validated_unrecorded_and_demo():
    tasks = {"stress": ["rest", "arithmetic"], "arousal": ["low", "high"]}
    card = make_card(tasks=tasks, demo=False, metrics=_validated_stress_metrics())
    assert card.output_validation("stress") == {
        "validated": "yes",
        "dataset": "EEGMAT (Zyma 2019)",
        "protocol": "LOSO over 28",
        "metric": "LOSO balanced accuracy 0.81, AUROC 0.85 (HRV baseline 0.7 / 0.78)",
        "note": "",
    }
    arousal = card.output_validation("arousal")
    assert arousal["validated"] == "no"
    assert arousal["metric"] == "none"
    assert arousal["note"] == "no validation recorded in the card"
    with pytest.raises(ValueError, match="no task 'valence'"):
        card.output_validation("valence")
    # a demo card is never validated, whatever its metrics claim
    demo = make_card(tasks=tasks, demo=True, metrics=_validated_stress_metrics())
    assert {demo.output_validation(t)["validated"] for t in tasks} == {"no"}
    assert demo.output_validation("stress")["note"] == "demo model — not validated for affect"
    assert demo.validation_oneline() == "NOT validated (demo model — not validated for affect)"
    assert card.validation_oneline() == (
        "validated: stress on EEGMAT, LOSO balanced accuracy 0.81, AUROC 0.85 "
        "(HRV baseline 0.7 / 0.78); NOT validated: arousal"
    )


def test_validation_table_has_one_row_per_output_in_the_summary():
    tasks = {"stress": ["rest", "arithmetic"], "arousal": ["low", "high"]}
    card = make_card(tasks=tasks, demo=False, metrics=_validated_stress_metrics())
    table = card.validation_table()
    assert table[0] == "validation per output:"
    assert table[1].split() == ["output", "validated", "dataset", "metric"]
    assert table[2].split()[:3] == ["stress", "yes", "EEGMAT"]
    assert table[2].endswith("LOSO balanced accuracy 0.81, AUROC 0.85 (HRV baseline 0.7 / 0.78)")
    assert table[3].split() == ["arousal", "no", "none", "none"]
    # the columns line up
    assert len({row.index(row.split()[1]) for row in table[1:4]}) == 1
    assert "  stress: protocol: LOSO over 28" in table
    summary = card.summary()
    assert "\n".join(table) in summary
    assert "  stress: validated on:\n    dataset: EEGMAT (Zyma 2019)" in summary
    brief = card.validation_brief()
    assert brief[0].startswith("stress: VALIDATED on EEGMAT, LOSO balanced accuracy 0.81")
    assert brief[1] == "arousal: NOT VALIDATED (no validation recorded in the card)"


def test_a_personal_card_says_it_is_fitted_on_one_person():
    card = make_card(
        tasks={"stress": ["rest", "arithmetic"]},
        demo=False,
        training_data={"dataset": "guided calibration (ecgaffect calibrate)", "personal": True},
        metrics={
            "protocol": "personal: time-blocked within-person cross-validation",
            "outputs": {
                "stress": {
                    "validated": False,
                    "personal": True,
                    "cv_balanced_accuracy": 0.9,
                    "cv_auroc": 0.95,
                }
            },
        },
    )
    v = card.output_validation("stress")
    assert v["validated"] == "no"
    assert v["dataset"] == "guided calibration (ecgaffect calibrate)"
    assert v["protocol"] == "personal: time-blocked within-person cross-validation"
    assert v["metric"] == "time-blocked CV balanced accuracy 0.9, AUROC 0.95"
    assert v["note"].startswith("personal model")
    from ecgaffect.stream.factories import console_marks

    assert console_marks(card)[:2] == (["stress"], "personal model, not validated on others")
