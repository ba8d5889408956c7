"""Many centres: ``cohort.centre``, ``split.method: centre`` and the internal-external cross-validation (IECV).

The fast tests check the settings, the centre checks, the demo cohort's centres and the per-centre
numerics on plain data. The study-based tests (marked slow) run one tiny IECV study of 60 demo lesions in
3 centres (OR-LR on 3 first-order features, age as the clinical factor, no SR, no CNN: about 1.5 min on
2 cores) and check its held-out rows against ``srnomogram validate`` and a label permutation.
"""

from __future__ import annotations

import dataclasses
import html
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from srnomogram.errors import ConfigError, ManifestError
from srnomogram.study.config import config_from_dict

slow = pytest.mark.slow


def _split_only(cfg):
    """Run the study's split stage alone (where the cohort is loaded and checked)."""
    from srnomogram.study.cache import Runner
    from srnomogram.study.stages import build_stages

    return Runner(cfg, build_stages(cfg)[:1]).run()["split"]


@pytest.fixture(scope="module")
def centre_cohort(tmp_path_factory):
    from srnomogram.data import demo_cohort

    return demo_cohort(tmp_path_factory.mktemp("centres"), n=12, seed=0, n_volumes=0, centres=3)


# ------------------------------------------------------------------------------------ settings
def test_new_keys_at_their_defaults_keep_the_config_hash_of_existing_studies():
    raw = {"cohort": {"manifest": "m.csv"}}
    plain = config_from_dict(raw)
    spelled = config_from_dict({"cohort": {"manifest": "m.csv", "centre": None}, "split": {"method": "random"}})
    assert plain.cohort.centre is None and plain.split.method == "random"
    assert spelled.config_hash == plain.config_hash
    assert spelled.section_hash("cohort", "split") == plain.section_hash("cohort", "split")
    centred = config_from_dict({"cohort": {"manifest": "m.csv", "centre": "hospital"}, "split": {"method": "centre"}})
    assert centred.config_hash != plain.config_hash  # a centre split is another study
    assert "centre" in centred.to_dict()["cohort"] and centred.to_dict()["split"]["method"] == "centre"


@pytest.mark.parametrize(("raw", "message"), [
    ({"split": {"method": "centre"}},
     "split.method must be 'random' unless cohort.centre names the manifest's centre column. Got 'centre' instead."),
    ({"split": {"method": "site"}}, "split.method must be one of 'random', 'centre'. Got 'site' instead."),
    ({"cohort": {"manifest": "m.csv", "centre": ""}}, "cohort.centre must be a string. Got '' instead."),
])
def test_bad_centre_settings_are_one_line_naming_the_key(raw, message):
    raw = {**raw, "cohort": raw.get("cohort", {"manifest": "m.csv"})}
    with pytest.raises(ConfigError) as info:
        config_from_dict(raw)
    assert str(info.value) == message


# ------------------------------------------------------------------------------------ the demo's centres
def test_demo_centres_shift_each_centres_images_and_keep_the_default_cohort(tmp_path):
    from PIL import Image

    from srnomogram.data import demo_cohort
    from srnomogram.data.demo import CENTRE_OFFSET

    plain = demo_cohort(tmp_path / "plain", n=12, seed=3, n_volumes=0)
    zero = demo_cohort(tmp_path / "zero", n=12, seed=3, n_volumes=0, centres=0)
    assert pd.read_csv(plain).drop(columns=["image", "mask"]).equals(pd.read_csv(zero).drop(columns=["image", "mask"]))
    assert (tmp_path / "plain" / "images" / "demo001.png").read_bytes() == (tmp_path / "zero" / "images" / "demo001.png").read_bytes()
    centred = demo_cohort(tmp_path / "centred", n=12, seed=3, n_volumes=0, centres=3)
    a, b = pd.read_csv(plain), pd.read_csv(centred)
    pd.testing.assert_frame_equal(a.drop(columns=["image", "mask"]), b.drop(columns=["image", "mask", "centre"]))
    assert sorted(b["centre"].unique()) == ["C1", "C2", "C3"]
    assert (b.groupby("centre")["label"].nunique() == 2).all()  # both classes in every centre
    for cid, centre in zip(b["case_id"], b["centre"]):
        j = int(centre[1:]) - 1
        base = np.asarray(Image.open(tmp_path / "plain" / "images" / f"{cid}.png"), dtype=float)
        got = np.asarray(Image.open(tmp_path / "centred" / "images" / f"{cid}.png"), dtype=float)
        np.testing.assert_array_equal(got, np.clip(np.rint(base + CENTRE_OFFSET * (j - 1)), 0, 255))
        assert (tmp_path / "plain" / "images" / f"{cid}_mask.png").read_bytes() == (tmp_path / "centred" / "images" / f"{cid}_mask.png").read_bytes()


def test_demo_centres_must_be_zero_or_at_least_two():
    from srnomogram.data import demo_cohort
    from srnomogram.errors import InputError

    with pytest.raises(InputError, match=r"The 'centres' parameter of demo_cohort must be 0 or an int in \[2, n / 2\]. Got 1 instead."):
        demo_cohort("unused", n=12, centres=1)


# ------------------------------------------------------------------------------------ checks when the cohort loads
def _cfg(tmp_path, manifest, method="centre", column="centre"):
    return config_from_dict({"cohort": {"manifest": str(manifest), "centre": column, "clinical": ["age"]},
                             "split": {"method": method}, "study": {"output": str(tmp_path / "out")},
                             "sr": {"enabled": False}, "deep": {"enabled": False}})


def test_the_split_stage_keeps_each_lesions_centre(tmp_path, centre_cohort):
    res = _split_only(_cfg(tmp_path, centre_cohort))
    cohort = pd.read_csv(res.file("cohort.csv"))
    assert cohort.set_index("case_id")["centre"].equals(pd.read_csv(centre_cohort).set_index("case_id")["centre"])
    assert res.json("split_info")["n_centres"] == 3


def test_centre_names_are_read_as_text(tmp_path, centre_cohort):
    from srnomogram.data.manifest import load_manifest
    from srnomogram.data.split import check_centres

    df = pd.read_csv(centre_cohort)
    df["site"] = df["centre"].map({"C1": "01", "C2": "1", "C3": " 2 "})
    path = centre_cohort.with_name("numbered.csv")
    df.to_csv(path, index=False)
    got = check_centres(load_manifest(path), "site", source=str(path))
    assert got.tolist() == df["site"].str.strip().tolist()  # "01" and "1" are two centres


def test_a_missing_centre_column_is_refused_naming_the_file_and_column(tmp_path, centre_cohort):
    with pytest.raises(ManifestError) as info:
        _split_only(_cfg(tmp_path, centre_cohort, column="hospital"))
    assert str(info.value).startswith(f"{centre_cohort}: no column 'hospital', which cohort.centre names")


def test_an_empty_centre_cell_is_refused_naming_the_row(tmp_path, centre_cohort):
    df = pd.read_csv(centre_cohort)
    df.loc[4, "centre"] = "  "
    path = centre_cohort.with_name("empty_centre.csv")
    df.to_csv(path, index=False)
    with pytest.raises(ManifestError) as info:
        _split_only(_cfg(tmp_path, path, method="random"))
    assert str(info.value) == (f"{path}, row 6, column 'centre': the centre is empty; every lesion needs the centre "
                               "(hospital or scanner) where it was imaged.")


def test_a_patient_in_two_centres_is_refused_for_a_centre_split_only(tmp_path, centre_cohort):
    df = pd.read_csv(centre_cohort)
    df["patient_id"] = [f"p{i}" for i in range(len(df))]
    other = df.index[df["centre"] != df.loc[0, "centre"]][0]
    df.loc[other, "patient_id"] = "p0"  # one patient, lesions in two centres
    path = centre_cohort.with_name("straddle.csv")
    df.to_csv(path, index=False)
    with pytest.raises(ManifestError) as info:
        _split_only(_cfg(tmp_path, path))
    two = sorted({df.loc[0, "centre"], df.loc[other, "centre"]})
    assert str(info.value) == (f"{path}, column 'centre': patient 'p0' has lesions in centres {two[0]!r}, {two[1]!r}; a centre "
                               "split needs each patient in one centre (correct the centre or the patient_id).")
    _split_only(_cfg(tmp_path / "random", path, method="random"))  # a random split keeps the patient on one side


@pytest.mark.parametrize(("relabel", "message"), [
    ({"C1": "C2", "C3": "C2"}, "split.method 'centre' needs lesions of at least 2 centres in column 'centre'. Got 1 ('C2') instead"),
    (None, "centre 'C9' (column 'centre') has only benign lesions; a held-out centre needs both classes"),
])
def test_the_iecv_stage_refuses_one_centre_or_a_centre_without_both_classes(tmp_path, centre_cohort, relabel, message):
    from srnomogram.errors import InputError
    from srnomogram.study.cache import Runner
    from srnomogram.study.iecv import iecv_stage

    df = pd.read_csv(centre_cohort)
    if relabel:
        df["centre"] = df["centre"].replace(relabel)
    else:
        df.loc[df.index[df["label"] == 0][:2], "centre"] = "C9"
    path = centre_cohort.with_name("bad_centres.csv")
    df.to_csv(path, index=False)
    cfg = _cfg(tmp_path, path)
    with pytest.raises(InputError) as info:
        Runner(cfg, [iecv_stage(cfg)]).run()
    assert str(info.value) == f"{path}: {message}" + (
        "; use split.method: random." if relabel else " for its AUC and calibration. Merge it with another centre.")
    assert not (tmp_path / "out" / "iecv").exists()  # refused before any fold was written


# ------------------------------------------------------------------------------------ per-centre numerics
def test_net_benefit_and_its_se_match_the_decision_curve_and_a_simulation():
    from srnomogram import stats
    from srnomogram.study.iecv import net_benefit_se

    rng = np.random.default_rng(0)
    risk = rng.uniform(0, 1, 400)
    y = (rng.uniform(0, 1, 400) < risk).astype(int)
    nb, se = net_benefit_se(y, risk, 0.3)
    try:
        dca = stats.decision_curve("label ~ risk", pd.DataFrame({"label": y, "risk": risk}), fitted_risk=True, thresholds=[0.3])
    except Exception as exc:  # noqa: BLE001 - no R here: the simulation below still checks the SE
        pytest.skip(f"R package not available: {exc}")
    ref = dca[(dca["model"] == "label ~ risk")]["NB"].iloc[0]
    assert nb == pytest.approx(ref, abs=1e-12)
    # the SE of a multinomial proportion contrast: the SD of NB over samples drawn from the same population
    sims = []
    for _ in range(2000):
        i = rng.integers(0, 400, 400)
        sims.append(net_benefit_se(y[i], risk[i], 0.3)[0])
    assert se == pytest.approx(np.std(sims, ddof=1), rel=0.08)


def test_the_long_frame_holds_one_row_per_model_estimand_and_centre():
    from srnomogram.study.iecv import CENTRE_COLUMNS, iecv_long

    rows = pd.DataFrame([{"centre": c, "model": m, "auc": 0.7, "auc_se": 0.3, "citl": 0.1, "citl_se": 0.2, "slope": 1.0,
                          "slope_se": 0.25, "brier": 0.2, "brier_se": 0.02} for c in ("A", "B") for m in ("or_lr", "nomogram")]
                        ).reindex(columns=CENTRE_COLUMNS)
    rows.loc[rows["model"] == "nomogram", ["delta_auc", "delta_auc_se"]] = [0.05, 0.03]
    long = iecv_long(rows)
    assert list(long.columns) == ["model", "estimand", "centre", "estimate", "se"]
    assert len(long) == 2 * 2 * 4 + 2  # NaN net benefit (no pre-specified threshold) is left out
    assert set(long.loc[long["estimand"] == "delta_auc", "model"]) == {"nomogram"}


# ------------------------------------------------------------------------------------ the study
@pytest.fixture(scope="module")
def iecv_pool_available():
    """``srnomogram.stats.iecv_pool`` (the R package's ``iecv_pool``); until the Python bridge is merged, the R
    function through :func:`srnomogram.stats.call` (as the bridge calls it)."""
    from srnomogram import stats

    try:
        has = stats.has_function("iecv_pool")
    except Exception:  # noqa: BLE001 - no R
        has = False
    if not has:
        pytest.skip("the installed R package has no iecv_pool")
    if not hasattr(stats, "iecv_pool"):
        mp = pytest.MonkeyPatch()
        mp.setattr(stats, "iecv_pool", lambda df, conf_level=0.95: stats.call("iecv_pool", df, conf_level=conf_level), raising=False)
        yield
        mp.undo()
    else:
        yield


SETTINGS = {
    "study": {"name": "iecv"},
    "cohort": {"centre": "centre", "clinical": ["age"]},
    "split": {"method": "centre"},
    "sr": {"enabled": False}, "deep": {"enabled": False},
    "radiomics": {"jobs": 1, "models": ["lr"]},
    "validation": {"folds": 3},
    "nomogram": {"calibration_b": 20, "hl_groups": 4, "dca_bootstraps": 0, "threshold": 0.3},
    "report": {"formats": ["png"]},
}
PARAMS = "setting:\n  binWidth: 25\nimageType:\n  Original: {}\nfeatureClass:\n  firstorder: [Mean, Skewness, Uniformity]\n"


@pytest.fixture(scope="module")
def study(tmp_path_factory, iecv_pool_available):
    from srnomogram.data import demo_cohort

    from .conftest import run_small_study

    root = tmp_path_factory.mktemp("iecv")
    (root / "params.yaml").write_text(PARAMS)
    manifest = demo_cohort(root / "cohort", n=60, seed=0, n_volumes=0, centres=3)
    settings = {**SETTINGS, "radiomics": {**SETTINGS["radiomics"], "params": str(root / "params.yaml")}}
    run_small_study(root, settings, manifest=manifest)
    return root, manifest


def _load(root):
    from srnomogram.study import load_config

    return load_config(root / "out" / "resolved_config.yaml")


@slow
def test_iecv_writes_one_row_per_centre_and_model_equal_to_validate(study, tmp_path):
    from srnomogram import validate

    root, manifest = study
    out = root / "out"
    cohort = pd.read_csv(manifest)
    centres = pd.read_csv(out / "tables" / "iecv_centres.csv")
    assert list(centres.columns[:4]) == ["centre", "model", "label", "n"]
    assert len(centres) == 3 * 3 and set(centres["model"]) == {"or_lr", "clinical", "nomogram"}
    counts = cohort.groupby("centre")["label"].agg(["size", "sum"])
    for _, r in centres.iterrows():
        assert (r["n"], r["events"]) == tuple(counts.loc[r["centre"]])
        assert r["auc_lower"] <= r["auc"] <= r["auc_upper"] and 0.5 < r["auc"] <= 1  # the demo's signal transports
        assert r["citl_lower"] < r["citl"] < r["citl_upper"] and 0 < r["brier"] < 0.25
    z = norm.ppf(0.975)
    # SEs: CITL and slope are Wald, so their CI is estimate ± z SE; the AUC's logit SE is DeLong's (pROC's CI,
    # where not clipped at 1) over AUC (1 - AUC)
    np.testing.assert_allclose(centres["citl_upper"] - centres["citl_lower"], 2 * z * centres["citl_se"], rtol=1e-9)
    np.testing.assert_allclose(centres["slope_upper"] - centres["slope_lower"], 2 * z * centres["slope_se"], rtol=1e-9)
    open_ci = centres[(centres["auc_upper"] < 1) & (centres["auc_lower"] > 0)]
    assert len(open_ci)
    np.testing.assert_allclose((open_ci["auc_upper"] - open_ci["auc_lower"]) / (2 * z),
                               open_ci["auc_se"] * open_ci["auc"] * (1 - open_ci["auc"]), rtol=1e-6)
    # one centre's rows are what `srnomogram validate` of its fold's study gives on that centre
    fold = out / "iecv" / "C2"
    validate(fold / "study", fold / "heldout_centre.csv", tmp_path / "v", bootstraps=20, dca_bootstraps=0)
    auc = pd.read_csv(tmp_path / "v" / "tables" / "external_auc.csv").set_index("model")
    cal = pd.read_csv(tmp_path / "v" / "tables" / "external_calibration.csv").set_index("model")
    mine = centres[centres["centre"] == "C2"].set_index("model")
    for m in mine.index:
        assert mine.loc[m, ["auc", "auc_lower", "auc_upper"]].tolist() == pytest.approx(auc.loc[m, ["auc", "lower", "upper"]].tolist(), abs=1e-12)
        for k in ("citl", "slope", "brier"):
            assert mine.loc[m, k] == pytest.approx(cal.loc[m, k], abs=1e-12)
    assert set(pd.read_csv(fold / "heldout_centre.csv")["centre"]) == {"C2"}
    assert "C2" not in set(pd.read_csv(fold / "training_centres.csv")["centre"])
    # the fold's own study chose its model inside its training set (cv_auc), never on C2
    info = json.loads((out / "stages" / "iecv" / "iecv_info.json").read_text())
    assert [c["centre"] for c in info["centres"]] == ["C1", "C2", "C3"] and info["k"] == 3


@slow
def test_iecv_pooled_rows_reach_the_main_result_with_prediction_intervals(study):
    from srnomogram import stats
    from srnomogram.study.iecv import iecv_long

    root, _ = study
    out = root / "out"
    centres = pd.read_csv(out / "tables" / "iecv_centres.csv")
    pooled = pd.read_csv(out / "tables" / "iecv_pooled.csv")
    assert {"model", "estimand", "estimate", "lower", "upper", "pi_lower", "pi_upper", "tau2", "i2", "k"} <= set(pooled.columns)
    assert (pooled["k"] == 3).all()
    assert set(pooled["estimand"]) == {"auc", "citl", "slope", "brier", "delta_auc", "net_benefit"}
    again = stats.iecv_pool(iecv_long(centres.drop(columns="label")), conf_level=0.95)
    np.testing.assert_allclose(pooled["estimate"], pd.DataFrame(again)["estimate"], rtol=1e-12)
    # every pooled estimate lies within its centres' range; the AUC is pooled on the logit scale
    for (m, e), g in iecv_long(centres).groupby(["model", "estimand"]):
        p = pooled[(pooled["model"] == m) & (pooled["estimand"] == e)].iloc[0]
        assert g["estimate"].min() - 1e-12 <= p["estimate"] <= g["estimate"].max() + 1e-12
        assert p["pi_lower"] <= p["lower"] <= p["estimate"] <= p["upper"] <= p["pi_upper"]
    main = pd.read_csv(out / "tables" / "main_result.csv").set_index("estimand")
    row = main.loc["iecv_auc_nomogram"]
    p = pooled[(pooled["model"] == "nomogram") & (pooled["estimand"] == "auc")].iloc[0]
    assert [row["estimate"], row["lower"], row["upper"], row["pi_lower"], row["pi_upper"]] == pytest.approx(
        [p["estimate"], p["lower"], p["upper"], p["pi_lower"], p["pi_upper"]], abs=1e-12)
    assert "internal-external cross-validation" in row["method"] and "prediction interval" in row["method"]
    report = (out / "report.html").read_text(encoding="utf-8")
    assert "iecv_pooled" in report and "internal-external cross-validation over 3 centres" in report
    # the forest plots: drawn in R from the two pins, PNG at 300 dpi, shown in the report's IECV section with their
    # titles; their pooled rows are iecv_pooled's as pinned (the R reader of the Python-written pins)
    from PIL import Image

    from srnomogram.study.iecv import IECV_FIGURES

    section = report[report.index('<h2 id="iecv">'):]
    for name, title in IECV_FIGURES.items():
        with Image.open(out / "figures" / f"{name}.png") as im:
            assert im.info["dpi"] == pytest.approx((300, 300), abs=0.01) and im.width > 1500
        assert html.escape(title.format(level="95")) in section
    assert section.count("data:image/png;base64,") >= 3
    for e in ("auc", "citl", "slope"):
        drawn = stats.call("iecv_forest_data", centres, pooled, e, conf_level=0.95)
        want = pooled[pooled["estimand"] == e].reset_index(drop=True)
        np.testing.assert_allclose(drawn[["estimate", "lower", "upper", "pi_lower", "pi_upper"]].to_numpy(float),
                                   want[["estimate", "lower", "upper", "pi_lower", "pi_upper"]].to_numpy(float), rtol=0, atol=1e-12)
        assert list(drawn["model"]) == list(want["model"]) and (drawn["k"] == 3).all()


#: What a fold's files record that is not a fit: the skops file's own SHA-256 (a skops zip holds object ids and
#: times, so its bytes differ between two saves of one model; the models are compared by their parameters and
#: predictions instead) and the config hash (it holds the fold's manifest path).
NOT_FITS = {"model_sha256", "config_hash"}


def _fold_files(fold: Path) -> dict:
    """``{stage/file: sha256}`` of every file the fold's sub-study stages wrote (their done.json records), JSON files
    without :data:`NOT_FITS`, skops files left out (:func:`_same_models` compares them)."""
    from srnomogram.utils import hash_bytes

    out = {}
    for done in sorted((fold / "study" / "stages").glob("*/done.json")):
        for rel, sha in json.loads(done.read_text())["files"].items():
            path = done.parent / rel
            if path.suffix == ".skops":
                continue
            if path.suffix == ".json":
                sha = hash_bytes(json.dumps({k: v for k, v in json.loads(path.read_text()).items() if k not in NOT_FITS}, sort_keys=True))
            out[f"{done.parent.name}/{rel}"] = sha
    return out


def _same_models(a: Path, b: Path, features: pd.DataFrame):
    """The fold's radiomics pipelines of two runs: equal fitted coefficients and equal risks on ``features``."""
    from srnomogram.radiomics.persist import load_model

    files = sorted(p.relative_to(a) for p in (a / "study" / "stages").rglob("*.skops"))
    assert files
    for rel in files:
        (pa, meta), (pb, _) = load_model(a / rel), load_model(b / rel)
        np.testing.assert_array_equal(pa[-1].coef_, pb[-1].coef_)
        x = features[meta["features"]]
        np.testing.assert_array_equal(pa.predict_proba(x), pb.predict_proba(x))


@slow
def test_permuting_a_held_out_centres_labels_changes_its_statistics_and_no_fit_of_its_fold(study, tmp_path):
    from srnomogram.data.manifest import load_manifest
    from srnomogram.study.iecv import centre_rows, run_centre

    root, manifest = study
    cfg = _load(root)
    df = pd.read_csv(manifest)
    held = df["centre"] == "C1"
    labels = df.loc[held, "label"].to_numpy()
    df.loc[held, "label"] = labels[np.r_[1:len(labels), 0]]  # a rotation: the same events, other lesions
    assert (df.loc[held, "label"].to_numpy() != labels).any()
    for col in ("image", "mask"):
        df[col] = [str(Path(manifest).parent / p) for p in df[col]]
    permuted = tmp_path / "permuted.csv"
    df.to_csv(permuted, index=False)
    new = dataclasses.replace(cfg, cohort=dataclasses.replace(cfg.cohort, manifest=str(permuted)),
                              study=dataclasses.replace(cfg.study, output=str(tmp_path / "out")))
    cohort = load_manifest(permuted)
    cohort["centre"] = cohort["centre"].astype(str)
    stats_c1 = run_centre(new, cohort, "C1")["statistics"]
    before, after = _fold_files(root / "out" / "iecv" / "C1"), _fold_files(tmp_path / "out" / "iecv" / "C1")
    assert before.keys() == after.keys() and len(before) > 20
    assert before == after  # every fit of the fold that holds C1 out: selection, cut-offs, nomogram, chosen model
    fold = root / "out" / "iecv" / "C1"
    _same_models(fold, tmp_path / "out" / "iecv" / "C1",
                 pd.read_csv(fold / "validation" / "stages" / "radiomics_or" / "radiomics_features_or.csv"))
    frozen = [pd.read_csv(f / "validation" / "stages" / "nomogram" / "scores.csv") for f in (fold, tmp_path / "out" / "iecv" / "C1")]
    pd.testing.assert_frame_equal(frozen[0].drop(columns="label"), frozen[1].drop(columns="label"))  # C1's risks
    assert not frozen[0]["label"].equals(frozen[1]["label"])
    old = pd.read_csv(root / "out" / "tables" / "iecv_centres.csv")
    old_c1 = old[old["centre"] == "C1"].set_index("model")
    new_c1 = centre_rows("C1", stats_c1, alpha=cfg.nomogram.alpha, threshold=cfg.nomogram.threshold).set_index("model")
    assert (new_c1["events"] == old_c1["events"]).all()
    assert not np.allclose(new_c1["auc"], old_c1.loc[new_c1.index, "auc"])  # only the held-out statistics change
    # the other centres' folds train on C1: their fits see the permuted labels (the invariance above is not vacuous)
    run_centre(new, cohort, "C2")
    assert _fold_files(root / "out" / "iecv" / "C2") != _fold_files(tmp_path / "out" / "iecv" / "C2")
