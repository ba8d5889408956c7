"""Statistics per subgroup (``validate --by``, ``study.subgroups``): bands, checks and the table builder."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from srnomogram.errors import InputError
from srnomogram.study.subgroups import (
    COLUMNS,
    MISSING,
    SubgroupSpec,
    check_manifest_subgroups,
    check_subgroups,
    parse_subgroup,
    patient_subgroups,
    subgroup_table,
    subgroups_of,
)


def test_bands_are_left_closed_at_every_edge():
    spec = parse_subgroup("age:40,60")
    assert spec == SubgroupSpec("age", (40.0, 60.0)) and str(spec) == "age:40,60"
    v = pd.Series([39.999999, 40.0, 59.999999, 60.0, 85.0, np.nan, 12.0])
    got = subgroups_of(v, spec)
    assert list(got.astype(str)) == ["<40", "[40, 60)", "[40, 60)", "≥60", "≥60", MISSING, "<40"]
    assert list(got.cat.categories) == ["<40", "[40, 60)", "≥60", MISSING]
    sizes = subgroups_of(pd.Series([0.99, 1.0, 1.5, 2.0]), parse_subgroup("max_diameter_cm:1,2"))
    assert list(sizes.astype(str)) == ["<1", "[1, 2)", "[1, 2)", "≥2"]


def test_a_text_column_gives_one_subgroup_per_value_sorted_with_missing_last():
    got = subgroups_of(pd.Series(["B", "A", None, "B"]), SubgroupSpec("centre"))
    assert list(got.astype(str)) == ["B", "A", MISSING, "B"] and list(got.cat.categories) == ["A", "B", MISSING]


@pytest.mark.parametrize("text", ["age:", "age:60,40", "age:40,40", "age:forty", ":40", "age:40,inf"])
def test_bad_band_edges_are_refused_in_one_line(text):
    with pytest.raises(InputError, match=r"(increasing numbers|names no column)") as e:
        parse_subgroup(text)
    assert "\n" not in str(e.value)


def test_missing_column_numeric_without_edges_and_text_with_edges_are_refused_naming_the_manifest(tmp_path):
    df = pd.DataFrame({"case_id": ["a", "b"], "image": ["a.png", "b.png"], "mask": ["a.png", "b.png"], "label": [0, 1],
                       "age": [40, 61], "centre": ["X", "Y"]})
    man = tmp_path / "cohort.csv"
    df.to_csv(man, index=False)
    with pytest.raises(InputError, match=r"cohort\.csv has no column 'birads' \(--by birads\)"):
        check_manifest_subgroups(man, ["centre", "birads"])
    with pytest.raises(InputError, match=r"column 'age' is numeric, so --by needs its band edges: give age:EDGES, e.g. age:40,60"):
        check_manifest_subgroups(man, ["age"])
    with pytest.raises(InputError, match=r"column 'centre' is not numeric, so it takes no band edges"):
        check_subgroups([parse_subgroup("centre:1")], df, man)
    with pytest.raises(InputError, match=r"study.subgroups names column 'age' twice"):
        check_manifest_subgroups(man, ["age:40", "age:50"], "study.subgroups")
    assert [str(s) for s in check_manifest_subgroups(man, ["age:50", "centre"])] == ["age:50", "centre"]


def test_patient_level_subgroups_need_one_subgroup_per_patient():
    groups = {"centre": subgroups_of(pd.Series(["A", "A", "B", "B"]), SubgroupSpec("centre"))}
    got = patient_subgroups(groups, ["p1", "p1", "p2", "p2"])
    assert list(got["centre"].astype(str)) == ["A", "B"]
    with pytest.raises(InputError, match=r"--by centre: the lesions of patient p2 fall in different subgroups"):
        patient_subgroups(groups, ["p1", "p2", "p2", "p3"])


def _cohort(seed=5, n=150):
    rng = np.random.default_rng(seed)
    k = n // 2  # the first half of the lesions in pairs of one patient, the rest one lesion each
    pid = np.array([f"q{i // 2}" for i in range(k)] + [f"p{i}" for i in range(n - k)], dtype=object)
    centre = np.array(["ABC"[i % 3] for i in range(n)], dtype=object)
    centre[:k] = ["AB"[(i // 2) % 2] for i in range(k)]  # one centre per patient
    x = rng.normal(size=n)
    y = (rng.random(n) < 1 / (1 + np.exp(-(0.3 + 1.2 * x)))).astype(float)
    y[centre == "C"] = 0.0  # a centre without events: counts and NA statistics
    data = pd.DataFrame({"label": y, "or_lr": 1 / (1 + np.exp(-x)), "nomogram": 1 / (1 + np.exp(-(0.5 * x + rng.normal(scale=0.8, size=n))))})
    age = rng.uniform(30, 80, size=n).round()
    age[:3] = [40, 60, np.nan]
    return data, pid, centre, age


def test_each_subgroup_row_equals_the_whole_cohort_function_on_that_subgroup_alone():
    from srnomogram import metrics, stats
    from srnomogram.data.manifest import patient_codes

    data, pid, centre, age = _cohort()
    groups = {"centre": subgroups_of(pd.Series(centre), SubgroupSpec("centre")),
              "age:40,60": subgroups_of(pd.Series(age), parse_subgroup("age:40,60"))}
    t = subgroup_table(data, groups, ["or_lr", "nomogram"], pid, bootstraps=30, seed=11, conf_level=0.9)
    assert list(t.columns) == list(COLUMNS)
    for (var, model), part in t.groupby(["subgroup_variable", "model"]):
        assert part["n"].sum() == len(data) and part["events"].sum() == data["label"].sum()
        assert part["n_patients"].sum() >= len(set(pid))  # a patient in two age bands counts in each
    checked = 0
    for r in t.itertuples():
        keep = (groups[r.subgroup_variable].astype(str) == r.subgroup).to_numpy()
        y, s = data["label"].to_numpy()[keep], data[r.model].to_numpy()[keep]
        assert r.n == keep.sum() and r.events == y.sum() and r.n_patients == len(set(pid[keep]))
        if r.events in (0, r.n):  # centre C (no events by construction), the one lesion without an age
            assert np.isnan([r.auc, r.citl, r.slope, r.brier, r.auc_lower, r.slope_upper]).all() and r.method == "none"
            assert r.note == ("no events" if r.events == 0 else "no non-events") + ": AUC and calibration not estimable"
            continue
        assert r.auc == pytest.approx(metrics.roc_auc(y, s), abs=1e-10)
        plain = stats.external_validation(y, s).summary().iloc[0]  # no cluster: an independent call, its point estimates
        for k in ("auc", "citl", "slope", "brier"):
            assert getattr(r, k) == pytest.approx(plain[k], abs=1e-10)
        boot = stats.external_validation(y, s, cluster=[int(c) for c in patient_codes(pid[keep])], B=30, seed=11,
                                         conf_level=0.9).summary().iloc[0]
        for k in ("auc_lower", "auc_upper", "citl_lower", "citl_upper", "slope_lower", "slope_upper"):
            assert getattr(r, k) == pytest.approx(boot[k], abs=1e-10)
        assert r.auc_lower <= r.auc <= r.auc_upper and "bootstrap over the subgroup's patients (B = 30)" in r.method
        checked += 1
    assert checked == 2 * (2 + 3)  # centres A and B, three age bands, two models
    assert set(t.loc[t["subgroup"].isin(["C", MISSING]), "method"]) == {"none"} and len(t) == 2 * (3 + 4)


def test_study_subgroups_are_checked_when_the_config_loads_and_leave_the_config_hash_alone():
    from srnomogram.errors import ConfigError
    from srnomogram.study.config import config_from_dict

    base = {"cohort": {"manifest": "m.csv"}}
    cfg = config_from_dict({**base, "study": {"subgroups": ["centre", "age:40,60"]}})
    assert cfg.study.subgroups == ("centre", "age:40,60")
    assert config_from_dict({**base, "study": {"subgroups": "centre"}}).study.subgroups == ("centre",)
    assert cfg.config_hash == config_from_dict(base).config_hash  # reporting only: no stage but its own reruns
    with pytest.raises(ConfigError, match=r"study.subgroups 'age:60,40': the band edges after ':' must be increasing") as e:
        config_from_dict({**base, "study": {"subgroups": ["age:60,40"]}})
    assert "\n" not in str(e.value)


def test_a_study_subgroup_column_the_manifest_lacks_is_refused_before_any_stage_runs(tmp_path):
    from srnomogram.data import demo_cohort
    from srnomogram.study import run_study
    from srnomogram.study.config import config_from_dict

    man = demo_cohort(tmp_path / "cohort", n=8, seed=0, n_volumes=0)
    out = tmp_path / "out"
    for by, words in ((["birads"], r"manifest.csv has no column 'birads' \(study.subgroups birads\)"),
                      (["age"], r"column 'age' is numeric, so study.subgroups needs its band edges: give age:EDGES")):
        cfg = config_from_dict({"cohort": {"manifest": str(man)}, "study": {"output": str(out), "subgroups": by}})
        with pytest.raises(InputError, match=words):
            run_study(cfg)
        assert not out.exists()


def test_the_tripod_checklist_points_items_14_and_23a_to_the_subgroup_table():
    from srnomogram.study.config import config_from_dict
    from srnomogram.study.tripod import TODO, tripod_checklist

    cfg = config_from_dict({"cohort": {"manifest": "m.csv"}})
    rows = tripod_checklist(cfg, {"main_result", "table2", "heldout_subgroups"}).set_index("item")
    for item in ("14", "23a"):
        assert "Subgroups (pin heldout_subgroups)" in rows.loc[item, "where the report answers it"]
        assert "heldout_subgroups" in rows.loc[item, "pins"].split(";")
    rows = tripod_checklist(cfg, {"main_result", "table2"}).set_index("item")
    assert "heldout_subgroups" not in rows.loc["14", "pins"] and rows.loc["14", "where the report answers it"].startswith(TODO)


def test_validate_by_refuses_a_bad_subgroup_in_one_line_before_writing_anything(tmp_path, capsys):
    from srnomogram.cli import main
    from srnomogram.data import demo_cohort

    man = demo_cohort(tmp_path / "c", n=8, seed=0, n_volumes=0)
    out = tmp_path / "out"
    for by, words in (("age", "column 'age' is numeric, so --by needs its band edges: give age:EDGES, e.g. age:40,60"),
                      ("birads", "manifest.csv has no column 'birads' (--by birads)"),
                      ("age:x", "--by 'age:x': the band edges after ':' must be increasing numbers")):
        assert main(["validate", str(tmp_path / "study"), str(man), "-o", str(out), "--by", "max_diameter_cm:2", "--by", by]) == 2
        err = capsys.readouterr().err.strip()
        assert words in err and "\n" not in err
        assert not out.exists()
