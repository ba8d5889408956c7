"""Study YAML -> frozen dataclasses; errors name the key; overrides; resolved config."""

from __future__ import annotations

import dataclasses

import pytest
import yaml

from srnomogram.errors import ConfigError
from srnomogram.study.config import config_from_dict, load_config


def _write(tmp_path, d):
    p = tmp_path / "study.yaml"
    p.write_text(yaml.safe_dump(d))
    return p


def test_defaults_follow_the_paper_and_paths_are_relative_to_the_file(tmp_path):
    p = _write(tmp_path, {"cohort": {"manifest": "data/manifest.csv"}, "study": {"output": "out"}})
    cfg = load_config(p)
    assert cfg.cohort.manifest == str(tmp_path / "data" / "manifest.csv")
    assert cfg.study.output == str(tmp_path / "out")
    assert cfg.deep.epochs == 200 and cfg.deep.batch_size == 16 and cfg.deep.lr == 0.005
    assert cfg.nomogram.calibration_b == 1000
    # validity first: the test set does not choose the model, training scores are cross-fitted over 5 folds
    assert cfg.nomogram.best_model_rule == "cv_auc" and cfg.nomogram.train_score == "cross_fitted"
    assert cfg.validation.folds == 5 and cfg.validation.repeats == 0
    assert cfg.cohort.clinical == ("age", "max_diameter_cm")
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.deep.epochs = 3


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"deep": {"epochs": "ten"}}, "deep.epochs must be an int > 0. Got 'ten' instead."),
        ({"deep": {"epochs": 0}}, "deep.epochs must be an int > 0. Got 0 instead."),
        ({"deep": {"epochs": True}}, "deep.epochs must be an int > 0. Got True instead."),
        ({"split": {"test_size": 1.5}}, "split.test_size must be a number in (0, 1). Got 1.5 instead."),
        ({"sr": {"enabled": "yes"}}, "sr.enabled must be true or false. Got 'yes' instead."),
        ({"deep": {"archs": ["vgg16"]}}, "deep.archs must be a list of 'mobilenet_v2', 'resnet101'. Got 'vgg16'"),
        ({"nomogram": {"best_model_rule": "auc"}}, "nomogram.best_model_rule must be one of 'cv_auc', 'test_auc'"),
        ({"nomogram": {"train_score": "oof"}}, "nomogram.train_score must be one of 'cross_fitted', 'cross_validated', 'fitted'"),
        ({"validation": {"folds": 1}}, "validation.folds must be an int >= 2. Got 1 instead."),
        ({"validation": {"repeats": -1}}, "validation.repeats must be an int >= 0. Got -1 instead."),
        ({"deep": {"epoch": 3}}, "Unknown key 'deep.epoch' in the study settings"),
        ({"deeep": {}}, "Unknown key 'deeep'"),
        ({"deep": 3}, "deep must be a mapping of settings. Got 3 instead."),
    ],
)
def test_bad_settings_raise_configerror_naming_the_key(raw, message):
    raw = {"cohort": {"manifest": "m.csv"}, **raw}
    with pytest.raises(ConfigError) as info:
        config_from_dict(raw)
    assert message in str(info.value)


def test_unknown_key_suggests_the_near_one():
    with pytest.raises(ConfigError, match="Did you mean 'deep.epochs'"):
        config_from_dict({"cohort": {"manifest": "m.csv"}, "deep": {"epoch": 3}})


def test_manifest_is_required():
    with pytest.raises(ConfigError, match="cohort.manifest must be the path"):
        config_from_dict({})


def test_cli_overrides_are_validated_like_the_file(tmp_path):
    p = _write(tmp_path, {"cohort": {"manifest": "m.csv"}})
    cfg = load_config(p, overrides=["deep.epochs=2", "deep.archs=[mobilenet_v2]", "sr.enabled=false"])
    assert cfg.deep.epochs == 2 and cfg.deep.archs == ("mobilenet_v2",) and cfg.sr.enabled is False
    assert cfg.deep.images == ("or",)  # no SR images without SR
    with pytest.raises(ConfigError, match="deep.epochs must be an int > 0. Got 'two' instead."):
        load_config(p, overrides=["deep.epochs=two"])
    with pytest.raises(ConfigError, match="Unknown key 'deep.epoch'"):
        load_config(p, overrides=["deep.epoch=2"])
    with pytest.raises(ConfigError, match="SECTION.KEY=VALUE"):
        load_config(p, overrides=["epochs"])


def test_resolved_config_round_trips_and_hash_ignores_output(tmp_path):
    p = _write(tmp_path, {"cohort": {"manifest": "m.csv"}, "deep": {"epochs": 3}})
    cfg = load_config(p)
    written = cfg.write(tmp_path / "resolved.yaml")
    again = config_from_dict(yaml.safe_load(written.read_text()))
    assert again == cfg
    moved = load_config(p, output=tmp_path / "elsewhere")
    assert moved.config_hash == cfg.config_hash
    assert load_config(p, overrides=["deep.epochs=4"]).config_hash != cfg.config_hash


def test_invalid_yaml_and_missing_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("deep: [1, 2\n")
    with pytest.raises(ConfigError, match="is not valid YAML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "absent.yaml")


def test_cross_validated_is_the_old_name_of_cross_fitted_and_the_paper_rules_stay_available():
    cfg = config_from_dict({"cohort": {"manifest": "m.csv"}, "nomogram": {"train_score": "cross_validated"}})
    assert cfg.nomogram.train_score == "cross_fitted"
    paper = config_from_dict({"cohort": {"manifest": "m.csv"}, "nomogram": {"train_score": "fitted", "best_model_rule": "test_auc"}})
    assert (paper.nomogram.train_score, paper.nomogram.best_model_rule) == ("fitted", "test_auc")


def test_shipped_study_files_are_valid_and_the_packaged_demo_matches_inst():
    from pathlib import Path

    from srnomogram.study.demo import demo_config_text

    repo = Path(__file__).resolve().parents[3]
    for name in ("demo.yaml", "breast-lesions-usg.yaml"):
        cfg = load_config(repo / "inst" / "study" / name)
        assert cfg.cohort.clinical == ("age", "max_diameter_cm")
    assert demo_config_text() == (repo / "inst" / "study" / "demo.yaml").read_text()
    breast = load_config(repo / "inst" / "study" / "breast-lesions-usg.yaml")
    assert breast.deep.epochs == 200 and breast.nomogram.calibration_b == 1000  # the paper's recipe


def test_nomogram_interval_settings_default_and_are_validated():
    cfg = config_from_dict({"cohort": {"manifest": "m.csv"}})
    assert cfg.nomogram.dca_bootstraps == 500 and cfg.nomogram.alpha == 0.05
    assert config_from_dict({"cohort": {"manifest": "m.csv"}, "nomogram": {"dca_bootstraps": 0}}).nomogram.dca_bootstraps == 0
    for key, value, message in (
        ("dca_bootstraps", -1, "nomogram.dca_bootstraps must be an int >= 0. Got -1 instead."),
        ("dca_bootstraps", 2.5, "nomogram.dca_bootstraps must be an int >= 0. Got 2.5 instead."),
        ("alpha", 1.0, "nomogram.alpha must be a number in (0, 1). Got 1.0 instead."),
    ):
        with pytest.raises(ConfigError) as info:
            config_from_dict({"cohort": {"manifest": "m.csv"}, "nomogram": {key: value}})
        assert message in str(info.value)


def test_require_signal_defaults_to_warn_only_and_must_be_a_bool():
    assert config_from_dict({"cohort": {"manifest": "m.csv"}}).nomogram.require_signal is False
    assert config_from_dict({"cohort": {"manifest": "m.csv"}, "nomogram": {"require_signal": True}}).nomogram.require_signal is True
    with pytest.raises(ConfigError, match="nomogram.require_signal"):
        config_from_dict({"cohort": {"manifest": "m.csv"}, "nomogram": {"require_signal": "sometimes"}})
