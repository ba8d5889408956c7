"""Stratified split: the hash rule, stratification, determinism, and equality with R."""

import hashlib
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from srnomogram.data import stratified_split
from srnomogram.data.split import split_manifest
from srnomogram.errors import InputError

REPO = Path(__file__).resolve().parents[3]


def cohort(n0=34, n1=23):
    ids = [f"case{k:03d}" for k in range(n0 + n1)]
    return pd.DataFrame(dict(case_id=ids, label=[0] * n0 + [1] * n1))


def test_split_is_stratified_with_floor_of_test_size_times_class_size_plus_half():
    df = cohort(34, 23)
    s = stratified_split(df, test_size=0.2, seed=0)
    assert s.name == "split"
    assert s.index.equals(df.index)
    counts = pd.crosstab(s, df["label"])
    assert counts.loc["test", 0] == 7 and counts.loc["test", 1] == 5  # 6.8 -> 7, 4.6 -> 5
    assert counts.loc["train", 0] == 27 and counts.loc["train", 1] == 18


def test_split_takes_the_smallest_sha256_of_seed_and_case_id_in_each_class():
    df = cohort(10, 10)
    s = stratified_split(df, test_size=0.3, seed=11)
    for lab in (0, 1):
        ids = df.loc[df.label == lab, "case_id"]
        digests = sorted(ids, key=lambda c: hashlib.sha256(f"11:{c}".encode()).hexdigest())
        assert set(df.case_id[(s == "test") & (df.label == lab)]) == set(digests[:3])


def test_split_is_deterministic_and_changes_with_the_seed_and_not_with_row_order():
    df = cohort(40, 30)
    a = stratified_split(df, seed=5)
    pd.testing.assert_series_equal(a, stratified_split(df, seed=5))
    assert not a.equals(stratified_split(df, seed=6))
    shuffled = df.sample(frac=1, random_state=0)
    pd.testing.assert_series_equal(stratified_split(shuffled, seed=5).sort_index(), a)


def test_split_that_leaves_a_class_empty_is_an_error():
    df = cohort(20, 2)
    with pytest.raises(InputError, match=r"leaves class label=1 empty in the test set \(2 case\(s\), test_size=0.2\)\. Add cases"):
        stratified_split(df, test_size=0.2)
    with pytest.raises(InputError, match=r"empty in the train set"):
        stratified_split(cohort(20, 20), test_size=0.99)


def test_split_parameters_are_validated():
    with pytest.raises(InputError, match=r"The 'test_size' parameter of stratified_split must be a float in \(0, 1\)\. Got 1.5 instead\."):
        stratified_split(cohort(), test_size=1.5)
    with pytest.raises(InputError, match=r"The 'seed' parameter of stratified_split must be an int >= 0\. Got -1 instead\."):
        stratified_split(cohort(), seed=-1)
    df = cohort()
    df.loc[3, "case_id"] = df.loc[4, "case_id"]
    with pytest.raises(InputError, match="appears more than once"):
        stratified_split(df)


def test_split_manifest_writes_only_the_split_column_atomically(tmp_path):
    df = cohort(10, 10)
    df["image"] = "img/x.png"  # relative paths stay as written (files not needed for a split)
    df["mask"] = "img/x_mask.png"
    df["age"] = np.arange(20) + 0.5
    path = tmp_path / "m.csv"
    df.to_csv(path, index=False)
    split_manifest(path, seed=3)
    out = pd.read_csv(path)
    assert out["image"].tolist() == df["image"].tolist()
    assert out["age"].tolist() == df["age"].tolist()
    assert out["split"].tolist() == stratified_split(df, seed=3).tolist()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.csv"]  # no temporary left behind


def test_failed_split_leaves_the_manifest_untouched(tmp_path):
    df = cohort(10, 1)
    df["image"] = "a.png"
    df["mask"] = "a_mask.png"
    path = tmp_path / "m.csv"
    df.to_csv(path, index=False)
    before = path.read_bytes()
    with pytest.raises(InputError, match=r"m\.csv: the split leaves class label=1 empty"):
        split_manifest(path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.csv"]


@pytest.mark.skipif(shutil.which("Rscript") is None, reason="Rscript not installed")
@pytest.mark.parametrize("seed,test_size", [(0, 0.2), (42, 0.25), (7, 0.5)])
def test_python_and_r_give_the_same_split(tmp_path, seed, test_size):
    rng = np.random.default_rng(seed)
    ids = [f"BUS-{k}" for k in range(83)] + ["café_01", "lésion 2", "ü3"]  # non-ASCII ids hash as UTF-8
    df = pd.DataFrame(dict(case_id=ids, label=rng.integers(0, 2, len(ids))))
    df.to_csv(tmp_path / "in.csv", index=False, encoding="utf-8")
    script = (
        "suppressMessages({e <- new.env(); sys.source('R/utils.R', e); sys.source('R/split.R', e)});"
        f"d <- utils::read.csv('{tmp_path / 'in.csv'}', encoding = 'UTF-8', stringsAsFactors = FALSE);"
        f"cat(e$stratified_split(d, test_size = {test_size}, seed = {seed}), sep = '\\n')"
    )
    res = subprocess.run(["Rscript", "-e", script], cwd=REPO, capture_output=True, encoding="utf-8", timeout=120)
    assert res.returncode == 0, res.stderr
    r_split = res.stdout.split()
    py_split = stratified_split(df, test_size=test_size, seed=seed).tolist()
    assert r_split == py_split
    assert 0 < r_split.count("test") < len(r_split)


def test_lesion_split_is_pinned_to_the_split_before_patients_existed():
    # sha256 of the comma-joined split, computed at 7ca53b4 (before the split knew patients)
    ids = [f"demo{k:03d}" for k in range(1, 121)]
    df = pd.DataFrame(dict(case_id=ids, label=(np.arange(120) * 7 % 5 < 2).astype(int)))
    pinned = {0: "a75263d20a52ff76e4acdfafe33d9525b558bb4edef3cb99b136afd5a31a3772",
              3: "42d2d6e9a75f77cce7bed7d294c6f3bbd9dce0c223193ceb6fb5f840ea652de1"}
    for seed, digest in pinned.items():
        assert hashlib.sha256(",".join(stratified_split(df, seed=seed)).encode()).hexdigest() == digest
        # a patient column is ignored with patient_col=None
        with_pid = df.assign(patient_id=[f"p{k // 2}" for k in range(120)])
        assert hashlib.sha256(",".join(stratified_split(with_pid, seed=seed, patient_col=None)).encode()).hexdigest() == digest


def patients_cohort(seed=0, n_patients=60):
    """Patients with 1-3 lesions; a patient with a malignant lesion may have benign ones too."""
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(n_patients):
        mal = rng.random() < 0.4
        for j in range(int(rng.integers(1, 4))):
            rows.append(dict(case_id=f"L{p:03d}_{j}", patient_id=f"P{p:03d}", label=int(mal and (j == 0 or rng.random() < 0.5))))
    return pd.DataFrame(rows)


def test_patient_split_keeps_each_patient_on_one_side_and_takes_the_smallest_patient_hashes():
    df = patients_cohort(0)
    s = stratified_split(df, test_size=0.25, seed=4)
    assert (df.assign(s=s).groupby("patient_id")["s"].nunique() == 1).all()
    # reference, written out: a patient is malignant when any lesion is; per class the
    # floor(0.25 n + 0.5) patients with the smallest sha256("4:<patient_id>") go to test
    plab = df.groupby("patient_id")["label"].max()
    expected = set()
    for lab in (0, 1):
        pts = sorted(plab.index[plab == lab], key=lambda p: hashlib.sha256(f"4:{p}".encode()).hexdigest())
        expected |= set(pts[: int(np.floor(0.25 * len(pts) + 0.5))])
    assert set(df.patient_id[s == "test"]) == expected
    assert (df.groupby("patient_id").size() > 1).any() and (plab[df.groupby("patient_id")["label"].min() == 0] == 1).any()


def test_patient_split_with_one_lesion_per_patient_ranks_patient_ids_and_missing_ids_by_case_id():
    df = cohort(30, 20)
    same = df.assign(patient_id=df["case_id"])  # patient = lesion, named alike: the lesion split
    pd.testing.assert_series_equal(stratified_split(same, seed=2), stratified_split(df, seed=2))
    blank = df.assign(patient_id=[None if k % 3 else "" for k in range(len(df))])  # no id: own patient
    pd.testing.assert_series_equal(stratified_split(blank, seed=2), stratified_split(df, seed=2))
    two = df.assign(patient_id=[f"p{k // 2}" for k in range(len(df))])
    with pytest.raises(InputError, match=r"leaves class label=1 empty in the test set \(1 patient\(s\), test_size=0.2\)"):
        stratified_split(two.assign(label=[0] * 48 + [1, 1]), seed=0)


@pytest.mark.skipif(shutil.which("Rscript") is None, reason="Rscript not installed")
@pytest.mark.parametrize("seed,test_size", [(0, 0.2), (9, 0.3)])
def test_python_and_r_give_the_same_patient_split(tmp_path, seed, test_size):
    df = patients_cohort(seed, 70)
    df.loc[[3, 10], "patient_id"] = None  # lesions without a patient id are their own patients
    df.loc[5, "patient_id"] = df.loc[6, "case_id"]  # a patient named like a lone lesion: tie broken alike
    df.loc[6, "patient_id"] = None
    df.to_csv(tmp_path / "in.csv", index=False, encoding="utf-8")
    script = (
        "suppressMessages({e <- new.env(); sys.source('R/utils.R', e); sys.source('R/split.R', e)});"
        f"d <- utils::read.csv('{tmp_path / 'in.csv'}', encoding = 'UTF-8', stringsAsFactors = FALSE);"
        f"cat(e$stratified_split(d, test_size = {test_size}, seed = {seed}), sep = '\\n')"
    )
    res = subprocess.run(["Rscript", "-e", script], cwd=REPO, capture_output=True, encoding="utf-8", timeout=120)
    assert res.returncode == 0, res.stderr
    py = stratified_split(df, test_size=test_size, seed=seed)
    assert res.stdout.split() == py.tolist()
    assert (df.dropna(subset=["patient_id"]).assign(s=py).groupby("patient_id")["s"].nunique() == 1).all()


def test_split_manifest_into_another_folder_rewrites_relative_paths(tmp_path):
    (tmp_path / "img").mkdir()
    df = cohort(5, 5)
    df["image"] = [f"img/{c}.png" for c in df.case_id]
    df["mask"] = [f"img/{c}_mask.png" for c in df.case_id]
    df.to_csv(tmp_path / "m.csv", index=False)
    out = split_manifest(tmp_path / "m.csv", seed=0, output=tmp_path / "other" / "m.csv")
    raw = pd.read_csv(out)
    assert raw["image"].tolist() == [str(tmp_path / "img" / f"{c}.png") for c in df.case_id]
    assert raw["split"].tolist() == stratified_split(df, seed=0).tolist()


def test_split_manifest_says_when_it_replaces_an_earlier_split(tmp_path, caplog):
    df = cohort(10, 10)
    df["image"], df["mask"] = "a.png", "a_mask.png"
    path = tmp_path / "m.csv"
    df.to_csv(path, index=False)
    split_manifest(path, seed=3)
    with caplog.at_level("WARNING", logger="srnomogram.data.split"):
        split_manifest(path, seed=3)  # the same split: nothing to say
    assert not caplog.records
    first = pd.read_csv(path)["split"]
    split_manifest(path, seed=4)
    changed = int((pd.read_csv(path)["split"] != first).sum())
    assert changed > 0
    assert f"already has a split column; {changed} of its 20 rows change side (seed 4" in caplog.text
