"""``radiomics.harmonise`` wired into the ``radiomics_models`` stage (fit) and its apply half (``validate``/``predict``).

The fast tests run the split, extraction and models stages alone on 60 demo lesions in 3 centres (3
first-order features, OR-LR): the stage's harmoniser and scores against CentreStandardiser/ComBat fitted
directly on the training rows, and label permutations. The study-based test (marked slow) fits a study on two
centres and applies it to the third, the new centre brought in from the cohort itself or a reference manifest.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from srnomogram.errors import ConfigError, InputError
from srnomogram.study.config import config_from_dict

slow = pytest.mark.slow

PARAMS = "setting:\n  binWidth: 25\nimageType:\n  Original: {}\nfeatureClass:\n  firstorder: [Mean, Skewness, Uniformity]\n"
SETTINGS = {
    "study": {"name": "harmonise"},
    "cohort": {"centre": "centre", "clinical": ["age"]},
    "sr": {"enabled": False}, "deep": {"enabled": False},
    "radiomics": {"jobs": 1, "models": ["lr"]},
    "validation": {"folds": 3},
    "nomogram": {"calibration_b": 20, "hl_groups": 4, "dca_bootstraps": 0, "threshold": 0.3},
    "report": {"formats": ["png"]},
}


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    """60 demo lesions in 3 centres with a fixed split column (so that label permutations keep the split)."""
    from srnomogram.data import demo_cohort

    root = tmp_path_factory.mktemp("harmonise")
    (root / "params.yaml").write_text(PARAMS)
    manifest = demo_cohort(root / "cohort", n=60, seed=0, n_volumes=0, centres=3)
    df = pd.read_csv(manifest)
    rng = np.random.default_rng(1)
    df["split"] = np.where(rng.random(len(df)) < 0.75, "train", "test")
    df.to_csv(manifest, index=False)
    return root, manifest


def _cfg(root, manifest, out, harmonise="combat", centre="centre"):
    return config_from_dict({**SETTINGS, "cohort": {**SETTINGS["cohort"], "manifest": str(manifest), "centre": centre},
                             "split": {"use_manifest_split": True}, "study": {"output": str(out)},
                             "radiomics": {**SETTINGS["radiomics"], "params": str(root / "params.yaml"), "harmonise": harmonise}})


def _models_stage(cfg):
    """Run split → radiomics_or → radiomics_models; their results."""
    from srnomogram.study.cache import Runner
    from srnomogram.study.stages import build_stages

    stages = build_stages(cfg)
    end = [s.name for s in stages].index("radiomics_models")
    return Runner(cfg, stages[:end + 1]).run()


# ------------------------------------------------------------------------------------ settings
def test_harmonise_without_a_centre_column_is_one_line_naming_the_key(cohort, tmp_path):
    root, manifest = cohort
    with pytest.raises(ConfigError) as info:
        _cfg(root, manifest, tmp_path / "out", centre=None)
    assert str(info.value) == ("radiomics.harmonise must be 'none' unless cohort.centre names the manifest's centre "
                               "column. Got 'combat' instead.")


def test_harmonise_none_keeps_the_stage_keys_of_existing_studies(cohort, tmp_path):
    from srnomogram.study.stages import build_stages

    root, manifest = cohort
    plain = config_from_dict({**SETTINGS, "cohort": {**SETTINGS["cohort"], "manifest": str(manifest)},
                              "study": {"output": str(tmp_path)}, "radiomics": {**SETTINGS["radiomics"], "params": str(root / "params.yaml")}})
    spelled = _cfg(root, manifest, tmp_path, harmonise="none")
    combat = _cfg(root, manifest, tmp_path)
    assert spelled.section_hash("radiomics") == plain.section_hash("radiomics") != combat.section_hash("radiomics")
    stage = {s.name: s for s in build_stages(plain)}["radiomics_models"]
    assert stage.version == "6"
    assert stage.extra_key(plain, {}) == {"seed": plain.study.seed, "device": plain.deep.device}  # as before
    assert {s.name: s for s in build_stages(combat)}["radiomics_models"].extra_key(combat, {})["centre"] == "centre"


def test_iecv_methods_say_the_held_out_centre_is_its_own_unlabelled_reference(cohort, tmp_path):
    import dataclasses

    from srnomogram.study.iecv import iecv_methods_text

    root, manifest = cohort
    cfg = _cfg(root, manifest, tmp_path)
    cfg = dataclasses.replace(cfg, split=dataclasses.replace(cfg.split, method="centre"))
    text = iecv_methods_text(cfg, k=3)
    assert ("each held-out centre's parameters were estimated from its own unlabelled lesions (their features and "
            "centre, never their labels), so its held-out results are conditional on that reference sample") in text
    assert "ComBat" in text
    plain = dataclasses.replace(cfg, radiomics=dataclasses.replace(cfg.radiomics, harmonise="none"))
    assert "harmonised" not in iecv_methods_text(plain, k=3) and iecv_methods_text(plain, k=3) in text


def test_a_reference_manifest_is_refused_for_a_study_that_harmonises_nothing(cohort, tmp_path):
    from srnomogram.errors import ManifestError
    from srnomogram.study.applying import FinishedStudy
    from srnomogram.study.external import _reference_option

    root, manifest = cohort
    model = {"kind": "radiomics", "images": "or", "file": "stages/radiomics_models/model/or_lr.skops"}
    plain = FinishedStudy(tmp_path / "plain", {"models": {"or_lr": model}}, {}, {}, "k")
    with pytest.raises(InputError) as info:
        _reference_option(plain, manifest)
    assert str(info.value) == (f"--centre-reference is for a study that harmonises its radiomics features by centre "
                               f"(radiomics.harmonise); the study {tmp_path / 'plain'} does not, so leave it out.")
    assert _reference_option(plain, None) == {}
    harmonised = FinishedStudy(tmp_path / "h", {"models": {"or_lr": {**model, "harmoniser": "stages/radiomics_models/harmoniser.json"}}},
                               {}, {}, "k")
    assert _reference_option(harmonised, manifest) == {"centre_reference": str(manifest.resolve())}
    with pytest.raises(ManifestError, match="missing.csv"):
        _reference_option(harmonised, tmp_path / "missing.csv")


# ------------------------------------------------------------------------------------ the fit mode
@pytest.mark.parametrize("method", ["centre", "combat"])
def test_stage_harmoniser_equals_the_estimator_fitted_on_the_training_rows(cohort, tmp_path, method):
    from srnomogram.radiomics.harmonise import CentreStandardiser, ComBat
    from srnomogram.radiomics.persist import load_model

    root, manifest = cohort
    res = _models_stage(_cfg(root, manifest, tmp_path / "out", harmonise=method))
    rad = res["radiomics_models"]
    split = pd.read_csv(res["split"].file("cohort.csv"), dtype={"case_id": str, "centre": str}).set_index("case_id")
    feats = res["radiomics_or"].table("radiomics_features_or").set_index("case_id").loc[split.index]
    train = (split["split"] == "train").to_numpy()
    est = (CentreStandardiser if method == "centre" else ComBat)().fit(feats[train], centre=split["centre"][train].to_numpy())
    state = json.loads(rad.file("harmoniser.json").read_text())
    assert state["method"] == method and state["column"] == "centre"
    got = state["images"]["or"]
    want = est.to_dict()
    assert got["training_centres"] == want["training_centres"] == ["C1", "C2", "C3"]
    for key in [a for a, _ in type(est)._STATE]:
        np.testing.assert_allclose(got[key], want[key], rtol=0, atol=1e-12)
    # the stage's models were fitted on, and scored, the features harmonised by that estimator
    X = pd.DataFrame(est.transform(feats, centre=split["centre"].to_numpy()), index=feats.index, columns=feats.columns)
    pipe, meta = load_model(rad.file("model/or_lr.skops"))
    scores = rad.table("radiomics_scores").set_index("case_id").loc[split.index, "or_lr"]
    np.testing.assert_allclose(scores.to_numpy(), pipe.predict_proba(X[meta["features"]])[:, 1], rtol=0, atol=1e-12)
    plain = pipe.predict_proba(feats[meta["features"]])[:, 1]
    assert np.abs(scores.to_numpy() - plain).max() > 1e-3  # the harmonisation changed the scores


def test_test_labels_never_reach_the_harmoniser(cohort, tmp_path):
    root, manifest = cohort
    df = pd.read_csv(manifest)
    test = df["split"] == "test"
    df.loc[test, "label"] = np.random.default_rng(7).permutation(df.loc[test, "label"].to_numpy())
    assert not df["label"].equals(pd.read_csv(manifest)["label"])
    permuted = manifest.with_name("permuted.csv")
    df.to_csv(permuted, index=False)
    a = _models_stage(_cfg(root, manifest, tmp_path / "a"))["radiomics_models"]
    b = _models_stage(_cfg(root, permuted, tmp_path / "b"))["radiomics_models"]
    assert a.file("harmoniser.json").read_bytes() == b.file("harmoniser.json").read_bytes()
    pd.testing.assert_series_equal(a.table("radiomics_scores")["or_lr"], b.table("radiomics_scores")["or_lr"])


def test_none_writes_no_harmoniser_and_the_scores_of_no_harmonisation(cohort, tmp_path):
    from srnomogram.radiomics import fit_or_sr_models

    root, manifest = cohort
    res = _models_stage(_cfg(root, manifest, tmp_path / "out", harmonise="none"))
    rad = res["radiomics_models"]
    assert not rad.file("harmoniser.json").exists()
    split = pd.read_csv(res["split"].file("cohort.csv"), dtype={"case_id": str}).set_index("case_id")
    feats = res["radiomics_or"].table("radiomics_features_or").set_index("case_id")
    want = fit_or_sr_models(split["label"], split["split"], feats, kinds=("lr",), random_state=0)["scores"]
    np.testing.assert_array_equal(rad.table("radiomics_scores")["or_lr"].to_numpy(), want["or_lr"].to_numpy())


# ------------------------------------------------------------------------------------ the apply mode
@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """A ComBat-harmonised study fitted on centres C1 and C2 of 90 demo lesions; C3 (30 lesions) is new to it."""
    from srnomogram.data import demo_cohort

    from .conftest import run_small_study

    root = tmp_path_factory.mktemp("harmonised_study")
    (root / "params.yaml").write_text(PARAMS)
    df = pd.read_csv(demo_cohort(root / "cohort", n=90, seed=0, n_volumes=0, centres=3))
    df[df["centre"] != "C3"].to_csv(root / "cohort" / "c12.csv", index=False)
    df[df["centre"] == "C3"].to_csv(root / "cohort" / "c3.csv", index=False)
    settings = {**SETTINGS, "radiomics": {**SETTINGS["radiomics"], "params": str(root / "params.yaml"), "harmonise": "combat"}}
    run_small_study(root, settings, manifest=root / "cohort" / "c12.csv")
    return root


def _direct_scores(study_dir, features, reference_ids):
    """OR-LR scores of C3 from the frozen ComBat state and pipeline, C3 brought in from ``reference_ids``' features."""
    from srnomogram.radiomics.harmonise import ComBat
    from srnomogram.radiomics.persist import load_model

    state = json.loads((study_dir / "stages" / "radiomics_models" / "harmoniser.json").read_text())
    est = ComBat.from_dict(state["images"]["or"])
    cols = list(est.feature_names_in_)
    est.add_reference(features.loc[reference_ids, cols], "C3")
    X = features.copy()
    X[cols] = est.transform(features[cols], centre="C3")
    pipe, meta = load_model(study_dir / "stages" / "radiomics_models" / "model" / "or_lr.skops")
    return pipe.predict_proba(X[meta["features"]])[:, 1]


@slow
def test_a_new_centre_comes_from_the_cohort_or_a_reference_manifest(study, tmp_path):
    from srnomogram import predict, validate

    study_dir = study / "out"
    app = json.loads((study_dir / "stages" / "application" / "application.json").read_text())
    assert app["models"]["or_lr"]["harmoniser"] == "stages/radiomics_models/harmoniser.json"
    c3 = pd.read_csv(study / "cohort" / "c3.csv", dtype={"case_id": str})
    # the default reference: the cohort itself (its features and centres)
    predict(study_dir, study / "cohort" / "c3.csv", tmp_path / "self.csv")
    work = tmp_path / "self_work" / "stages"
    feats = pd.read_csv(work / "radiomics_or" / "radiomics_features_or.csv", dtype={"case_id": str}).set_index("case_id").loc[c3["case_id"]]
    got = pd.read_csv(tmp_path / "self.csv", dtype={"case_id": str}).set_index("case_id").loc[c3["case_id"], "or_lr"]
    np.testing.assert_allclose(got.to_numpy(), _direct_scores(study_dir, feats, c3["case_id"]), rtol=0, atol=1e-12)
    record = json.loads((work / "radiomics_models" / "radiomics_harmonisation.json").read_text())
    assert record["new_centres"] == {"C3": 30} and record["training_centres"] == ["C1", "C2"]
    assert record["reference"]["is_cohort"] and record["reference"]["name"] == "c3.csv"
    # another reference manifest: 15 of C3's lesions, without labels
    ref = c3.iloc[:15].drop(columns=["label"])
    ref.to_csv(study / "cohort" / "ref.csv", index=False)
    predict(study_dir, study / "cohort" / "c3.csv", tmp_path / "ref_scores.csv", centre_reference=study / "cohort" / "ref.csv")
    by_ref = pd.read_csv(tmp_path / "ref_scores.csv", dtype={"case_id": str}).set_index("case_id").loc[c3["case_id"], "or_lr"]
    np.testing.assert_allclose(by_ref.to_numpy(), _direct_scores(study_dir, feats, ref["case_id"]), rtol=0, atol=1e-12)
    assert np.abs(by_ref.to_numpy() - got.to_numpy()).max() > 1e-6  # the reference sample matters
    # validate (labels read) scores as predict (labels dropped) and names the reference in its methods
    report = validate(study_dir, study / "cohort" / "c3.csv", tmp_path / "val", bootstraps=20, dca_bootstraps=0,
                      centre_reference=study / "cohort" / "ref.csv")
    scores = pd.read_csv(tmp_path / "val" / "stages" / "radiomics_models" / "radiomics_scores.csv", dtype={"case_id": str})
    np.testing.assert_array_equal(scores.set_index("case_id").loc[c3["case_id"], "or_lr"].to_numpy(), by_ref.to_numpy())
    text = report.read_text(encoding="utf-8")
    assert "the reference manifest ref.csv" in text and "conditional on that reference sample" in text


@slow
def test_a_bad_reference_sample_is_one_line(study, tmp_path, capsys):
    from srnomogram import predict
    from srnomogram.cli import main
    from srnomogram.errors import ManifestError

    c3 = pd.read_csv(study / "cohort" / "c3.csv")
    c3.iloc[:5].to_csv(study / "cohort" / "small.csv", index=False)
    with pytest.raises(InputError) as info:
        predict(study / "out", study / "cohort" / "c3.csv", tmp_path / "a.csv", centre_reference=study / "cohort" / "small.csv")
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith("small.csv: The reference sample of centre 'C3' has 5 lesions") and "min_samples=10" in msg
    assert main(["predict", str(study / "out"), str(study / "cohort" / "c3.csv"), "-o", str(tmp_path / "cli.csv"),
                 "--centre-reference", str(study / "cohort" / "small.csv")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "small.csv: The reference sample of centre 'C3' has 5 lesions" in err
    assert not (tmp_path / "cli.csv").exists()
    c12 = pd.read_csv(study / "cohort" / "c12.csv")
    c12.to_csv(study / "cohort" / "other.csv", index=False)
    with pytest.raises(InputError, match=r"^other\.csv: no lesion of centre 'C3' \(column 'centre'\)"):
        predict(study / "out", study / "cohort" / "c3.csv", tmp_path / "b.csv", centre_reference=study / "cohort" / "other.csv")
    c3.drop(columns=["centre"]).to_csv(study / "cohort" / "nocentre.csv", index=False)
    with pytest.raises(ManifestError, match=r"^nocentre\.csv: no column 'centre'"):
        predict(study / "out", study / "cohort" / "nocentre.csv", tmp_path / "c.csv")


@slow
def test_iecv_harmonises_each_held_out_centre_from_its_own_unlabelled_lesions(tmp_path):
    from srnomogram.data import demo_cohort
    from srnomogram.study.iecv import centre_folder

    from .conftest import run_small_study

    (tmp_path / "params.yaml").write_text(PARAMS)
    manifest = demo_cohort(tmp_path / "cohort", n=60, seed=0, n_volumes=0, centres=3)
    settings = {**SETTINGS, "split": {"method": "centre"},
                "radiomics": {**SETTINGS["radiomics"], "params": str(tmp_path / "params.yaml"), "harmonise": "combat"}}
    run_small_study(tmp_path, settings, manifest=manifest)
    for c in ("C1", "C2", "C3"):
        folder = centre_folder(tmp_path / "out", c)
        state = json.loads((folder / "study" / "stages" / "radiomics_models" / "harmoniser.json").read_text())
        assert state["images"]["or"]["training_centres"] == sorted({"C1", "C2", "C3"} - {c})
        record = json.loads((folder / "validation" / "stages" / "radiomics_models" / "radiomics_harmonisation.json").read_text())
        assert record["new_centres"] == {c: 20} and record["reference"]["is_cohort"]
        assert record["reference"]["name"] == "heldout_centre.csv"
    assert len(pd.read_csv(tmp_path / "out" / "tables" / "iecv_centres.csv")) == 9  # 3 centres x (or_lr, clinical, nomogram)
