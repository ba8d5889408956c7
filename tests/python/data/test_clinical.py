"""Clinical factors: one schema for the study file, the checks, R's factors and the frozen design."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from srnomogram.data.check import check_clinical
from srnomogram.data.clinical import ClinicalFactor, ClinicalSchema, level_text
from srnomogram.errors import ConfigError, InputError

SHAPE = {"name": "shape", "type": "categorical", "levels": ["oval", "round", "irregular"]}


def test_a_bare_name_is_numeric_and_a_mapping_declares_levels_with_the_first_as_reference():
    s = ClinicalSchema.parse(["age", SHAPE, {"name": "birads", "type": "categorical", "levels": [3, 4, 5], "reference": 4}])
    assert s.names == ["age", "shape", "birads"]
    assert s["age"] == ClinicalFactor("age") and not s["age"].categorical
    assert s["shape"].reference == "oval" and s["shape"].ordered_levels == ("oval", "round", "irregular")
    # levels are text (YAML 3 and a CSV's 3.0 are the same level); the reference comes first in R
    assert s["birads"].levels == ("3", "4", "5") and s["birads"].ordered_levels == ("4", "3", "5")
    assert s["shape"].term("irregular") == "shape=irregular"
    # written back as it was given: a bare name stays a bare name (config hashes of older studies stay)
    assert [f.to_plain() for f in s][0] == "age"
    assert ClinicalSchema.from_dicts(s.to_dicts()) == s


@pytest.mark.parametrize(("entry", "message"), [
    ({"name": "shape", "type": "categorical"}, "cohort.clinical entry 'shape' is categorical: give its levels, pre-specified"),
    ({"name": "shape", "type": "categorical", "levels": ["oval"]}, "levels must be at least two distinct, non-empty values"),
    ({"name": "shape", "type": "categorical", "levels": ["a", "a"]}, "levels must be at least two distinct"),
    ({**SHAPE, "reference": "square"}, "reference must be one of its levels ['oval', 'round', 'irregular']. Got 'square' instead."),
    ({"name": "age", "levels": ["a", "b"]}, "cohort.clinical entry 'age' is numeric, so it takes no levels or reference"),
    ({"name": "age", "type": "ordinal"}, "type must be 'numeric' or 'categorical'. Got 'ordinal' instead."),
    ({"name": "age", "units": "y"}, "unknown key 'units'; allowed: name, type, levels, reference, unit, label."),
    ({"type": "numeric"}, "A cohort.clinical mapping needs a 'name'"),
])
def test_bad_entries_are_one_line_config_errors_naming_the_entry(entry, message):
    with pytest.raises(ConfigError) as info:
        ClinicalSchema.parse(["age", entry] if entry.get("name") != "age" else [entry])
    assert message in str(info.value) and "\n" not in str(info.value)


def test_the_study_file_takes_both_forms_and_bare_names_keep_their_hash():
    from srnomogram.study.config import config_from_dict

    plain = config_from_dict({"cohort": {"manifest": "m.csv", "clinical": ["age", "max_diameter_cm"]}})
    mapped = config_from_dict({"cohort": {"manifest": "m.csv", "clinical": ["age", {"name": "max_diameter_cm"}]}})
    assert plain.config_hash == mapped.config_hash  # a mapping with only a name is the bare name
    cat = config_from_dict({"cohort": {"manifest": "m.csv", "clinical": ["age", SHAPE]}})
    assert cat.cohort.schema["shape"].categorical and cat.config_hash != plain.config_hash
    assert cat.to_dict()["cohort"]["clinical"] == ["age", {**SHAPE, "reference": "oval"}]
    assert config_from_dict(cat.to_dict()) == cat  # resolved_config.yaml reads back to the same settings
    with pytest.raises(ConfigError, match=r"^cohort.clinical entry 'shape': reference must be one of its levels"):
        config_from_dict({"cohort": {"manifest": "m.csv", "clinical": [{**SHAPE, "reference": "x"}]}})


def test_check_clinical_types_categories_with_their_levels_and_refuses_an_undeclared_one():
    df = pd.DataFrame({"case_id": list("abcd"), "label": [0, 1, 0, 1], "age": [40, 50, None, 60],
                       "shape": ["round", "irregular", "oval", None]})
    kept, excluded = check_clinical(df, ClinicalSchema.parse(["age", {**SHAPE, "reference": "round"}]), source="m.csv")
    assert kept["case_id"].tolist() == ["a", "b"] and excluded["case_id"].tolist() == ["c", "d"]
    assert list(kept["shape"].cat.categories) == ["round", "oval", "irregular"]  # reference first: R's first level
    assert kept["age"].tolist() == [40.0, 50.0]
    df.loc[2, "shape"] = "lobulated"
    with pytest.raises(InputError) as info:
        check_clinical(df, ClinicalSchema.parse(["age", SHAPE]), source="m.csv")
    assert str(info.value) == ("m.csv, row 4, column 'shape': 'lobulated' is not a level of the categorical factor 'shape'; "
                               "allowed: oval, round, irregular (fix the cell, leave it empty when unknown, or add the level "
                               "to cohort.clinical).")
    # numbers read from a CSV with an empty cell are floats: 4.0 is the level "4"
    b = pd.DataFrame({"case_id": ["a", "b"], "label": [0, 1], "birads": [4.0, np.nan]})
    kept, _ = check_clinical(b, [{"name": "birads", "type": "categorical", "levels": [3, 4, 5]}], source="m.csv")
    assert kept["birads"].tolist() == ["4"] and level_text(5.0) == "5" and level_text(" ") is None


def _data(n=160, seed=3):
    rng = np.random.default_rng(seed)
    d = pd.DataFrame({"age": rng.normal(50, 10, n).round(), "deep_score": rng.uniform(size=n),
                      "shape": rng.choice(["oval", "round", "irregular"], n)})
    lp = -5 + 0.06 * d["age"] + 2.5 * d["deep_score"] + 1.4 * (d["shape"] == "irregular") - 0.5 * (d["shape"] == "round")
    d["label"] = (rng.uniform(size=n) < 1 / (1 + np.exp(-lp))).astype(int)
    return d


def test_the_design_of_a_categorical_factor_predicts_as_r_predict_with_rms_term_names(tmp_path):
    """rms names the factor's terms shape=level; the frozen design gives R's risks to 1e-10 and rms' points per level."""
    import json
    from types import SimpleNamespace

    from srnomogram import stats
    from srnomogram.study.freeze import nomogram_predict, save_nomogram_fits

    schema = ClinicalSchema.parse(["age", {**SHAPE, "reference": "round"}])
    d = _data()
    train = schema.to_frame(d.iloc[:120].reset_index(drop=True))
    fit = stats.fit_nomogram("label ~ age + shape + deep_score", train)
    assert fit.summary()["term"].tolist() == ["Intercept", "age", "shape=oval", "shape=irregular", "deep_score"]
    ctx = SimpleNamespace(path=lambda name: tmp_path / name,
                          write_json=lambda name, obj: (tmp_path / f"{name}.json").write_text(json.dumps(obj)))
    save_nomogram_fits(ctx, {"nomogram": fit}, train, schema)
    design = json.loads((tmp_path / "nomogram_design.json").read_text(encoding="utf-8"))["nomogram"]
    assert design["terms"] == ["age", "shape=oval", "shape=irregular", "deep_score"]
    shape = next(p for p in design["predictors"] if p["name"] == "shape")
    assert shape["type"] == "categorical" and shape["levels"] == ["round", "oval", "irregular"] and shape["coef"][0] == 0.0
    assert shape["coef"][2] == design["coefficients"]["shape=irregular"]
    info = next(f for f in design["clinical_factors"] if f["name"] == "shape")
    assert info["training"]["counts"] == {lv: int((train["shape"] == lv).sum()) for lv in ("oval", "round", "irregular")}
    new = d.iloc[120:].copy()  # plain strings, as an external manifest gives them
    new.iloc[0, 0] = 99.0
    got = nomogram_predict(design, new)
    want = stats.predict(fit, newdata=schema.to_frame(new))
    np.testing.assert_allclose(got["risk"], want, rtol=1e-10, atol=0)
    # rms' own points: each level's points are the nomogram's, and the total maps back to the risk
    pts = stats.nomogram_points(fit)
    axis = pts[(pts["axis"] == "predictor") & (pts["variable"] == "shape")].set_index("value")["points"].astype(float)
    np.testing.assert_allclose(got["points_shape"], new["shape"].map(axis), rtol=1e-12)
    sc = pts[pts["axis"] == "scaling"].set_index("variable")["value"].astype(float)
    back = 1 / (1 + np.exp(-(sc["intercept"] + got["points"] / sc["points_per_lp"])))
    np.testing.assert_allclose(back, got["risk"], rtol=1e-8)
    with pytest.raises(InputError, match=r"Column 'shape': 'square' is not a level .* allowed: round, oval, irregular"):
        nomogram_predict(design, new.assign(shape="square"))


def test_a_declared_level_without_training_lesions_is_named_before_rms_fails_on_it():
    schema = ClinicalSchema.parse(["age", SHAPE])
    train = pd.DataFrame({"age": [40, 50, 60], "shape": ["oval", "irregular", "oval"]})
    with pytest.raises(InputError, match=r"^cohort.clinical factor 'shape': level 'round' has no lesion in the training set "
                                         r"\(3 lesions\), so its coefficient cannot be estimated; merge it"):
        schema.check_levels_present(train)
    schema.check_levels_present(train.assign(shape=["oval", "round", "irregular"]))
