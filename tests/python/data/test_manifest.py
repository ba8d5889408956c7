"""Manifest loading and writing, and the bad inputs it must reject with one clear line."""

import os

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from srnomogram.data.manifest import load_manifest, mask_paths, write_manifest
from srnomogram.errors import ManifestError


@pytest.fixture()
def cohort(tmp_path):
    """Three tiny cases and a manifest with relative paths."""
    (tmp_path / "img").mkdir()
    for k in range(3):
        Image.fromarray(np.full((6, 6), 100, np.uint8)).save(tmp_path / "img" / f"c{k}.png")
        Image.fromarray(np.pad(np.full((2, 2), 255, np.uint8), 2)).save(tmp_path / "img" / f"c{k}_mask.png")
    df = pd.DataFrame(
        dict(
            case_id=["c0", "c1", "c2"],
            image=[f"img/c{k}.png" for k in range(3)],
            mask=[f"img/c{k}_mask.png" for k in range(3)],
            label=["benign", "malignant", 1],
            spacing=[0.1, 0.1, 0.2],
            age=[40, np.nan, 61],
        )
    )
    path = tmp_path / "manifest.csv"
    df.to_csv(path, index=False)
    return path, df


def _rewrite(path, df):
    df.to_csv(path, index=False)
    return path


def test_load_manifest_resolves_paths_and_labels(cohort):
    path, _ = cohort
    df = load_manifest(path)
    assert df["label"].tolist() == [0, 1, 1]
    assert df["label"].dtype.kind == "i"
    assert all(os.path.isabs(p) and os.path.exists(p) for p in df["image"])
    assert np.isnan(df.loc[1, "age"])
    assert df["spacing"].tolist() == [0.1, 0.1, 0.2]


def test_write_manifest_keeps_inside_paths_relative_and_outside_paths_absolute(cohort, tmp_path):
    path, _ = cohort
    df = load_manifest(path)
    out = write_manifest(df, tmp_path / "copy.csv")
    raw = pd.read_csv(out)
    assert raw["image"].tolist() == [f"img/c{k}.png" for k in range(3)]
    sub = tmp_path / "elsewhere" / "m.csv"
    raw2 = pd.read_csv(write_manifest(df, sub))
    assert all(os.path.isabs(p) for p in raw2["image"])  # outside the new folder: absolute, never ../
    pd.testing.assert_series_equal(load_manifest(sub)["image"], df["image"])


def test_mask_paths_splits_joined_masks():
    assert mask_paths("a.png") == "a.png"
    assert mask_paths("a.png;b.png") == ["a.png", "b.png"]


def test_missing_file_names_manifest_row_column_and_remedy(cohort):
    path, df = cohort
    df.loc[1, "image"] = "img/gone.png"
    _rewrite(path, df)
    with pytest.raises(ManifestError, match=r"manifest\.csv, row 3, column 'image': file .*gone\.png does not exist\. Fix the path") as exc:
        load_manifest(path)
    assert "\n" not in str(exc.value)


def test_missing_manifest_says_how_to_make_one(tmp_path):
    with pytest.raises(ManifestError, match=r"Manifest .*none\.csv not found\. Create one with 'srnomogram cohort import"):
        load_manifest(tmp_path / "none.csv")


def test_label_outside_0_1_benign_malignant_is_rejected(cohort):
    path, df = cohort
    df.loc[2, "label"] = "2"
    _rewrite(path, df)
    with pytest.raises(ManifestError, match=r"manifest\.csv, row 4, column 'label': value '2' is not 0/1 or benign/malignant\. Fix the label"):
        load_manifest(path)
    df.loc[2, "label"] = "suspicious"
    _rewrite(path, df)
    with pytest.raises(ManifestError, match=r"row 4, column 'label': value 'suspicious'"):
        load_manifest(path)


def test_duplicate_case_ids_are_rejected(cohort):
    path, df = cohort
    df.loc[2, "case_id"] = "c0"
    _rewrite(path, df)
    with pytest.raises(ManifestError, match=r"manifest\.csv, row 2: case_id 'c0' appears more than once\. Each lesion needs its own case_id"):
        load_manifest(path)


def test_path_escaping_the_manifest_folder_is_rejected(cohort):
    path, df = cohort
    df.loc[0, "mask"] = "../../etc/passwd"
    _rewrite(path, df)
    with pytest.raises(ManifestError, match=r"row 2, column 'mask': path '\.\./\.\./etc/passwd' escapes the manifest's folder .*Write an absolute path"):
        load_manifest(path, check_files=False)


def test_bad_split_and_spacing_values_are_rejected(cohort):
    path, df = cohort
    df["split"] = ["train", "test", "validation"]
    _rewrite(path, df)
    with pytest.raises(ManifestError, match=r"row 4, column 'split': value 'validation' is not 'train' or 'test'"):
        load_manifest(path)
    df["split"] = ["train", "test", "train"]
    df.loc[1, "spacing"] = -0.1
    _rewrite(path, df)
    with pytest.raises(ManifestError, match=r"row 3, column 'spacing': value -0\.1 is not a finite number > 0 \(mm per pixel\)"):
        load_manifest(path)


def test_missing_required_column_is_named(cohort):
    path, df = cohort
    _rewrite(path, df.drop(columns="label"))
    with pytest.raises(ManifestError, match=r"missing column\(s\) \['label'\]"):
        load_manifest(path)


def test_numeric_label_outside_0_1_is_shown_as_written(cohort):
    path, df = cohort
    df["label"] = [0, 1, 2]
    _rewrite(path, df)
    with pytest.raises(ManifestError, match=r"row 4, column 'label': value 2 is not 0/1"):
        load_manifest(path)


def test_patient_id_is_read_as_text_and_round_trips_through_write_manifest(cohort, tmp_path):
    from srnomogram.data.manifest import patient_ids

    path, df = cohort
    _rewrite(path, df.assign(patient_id=["007", " 007 ", np.nan]))
    m = load_manifest(path)
    assert m["patient_id"].tolist()[:2] == ["007", "007"] and pd.isna(m.at[2, "patient_id"])  # zeros kept, stripped
    assert patient_ids(m).tolist() == ["007", "007", "\x00case:c2"]
    again = load_manifest(write_manifest(m, tmp_path / "again.csv"))
    assert again["patient_id"].tolist()[:2] == ["007", "007"] and pd.isna(again.at[2, "patient_id"])
    _rewrite(path, df.assign(patient_id=[12, 12, 13]))  # numbers are names too: "12", not "12.0"
    assert load_manifest(path)["patient_id"].tolist() == ["12", "12", "13"]


def test_patient_codes_number_patients_from_1_in_order_of_first_appearance_each_unlisted_lesion_its_own():
    from srnomogram.data.manifest import patient_codes, patient_ids

    df = pd.DataFrame({"case_id": ["a", "b", "c", "d", "e", "f", "g"],
                       "patient_id": ["P2", np.nan, "P1", "P2", " ", "P1", np.nan]})
    pid = patient_ids(df)
    assert pid.tolist() == ["P2", "\x00case:b", "P1", "P2", "\x00case:e", "P1", "\x00case:g"]
    codes = patient_codes(pid)
    assert codes.dtype == np.int64 and codes.tolist() == [1, 2, 3, 1, 4, 3, 5]
    # without a patient_id column every lesion is its own patient; ids compare as text (7 and "7" are one)
    assert patient_codes(patient_ids(df[["case_id"]])).tolist() == [1, 2, 3, 4, 5, 6, 7]
    assert patient_codes([7, "7", 8, "x", 8]).tolist() == [1, 1, 2, 3, 2]


@pytest.mark.parametrize("value", ["inf", "-inf", "Infinity", "0"])
def test_spacing_must_be_finite_and_positive(cohort, value):
    path, df = cohort
    df["spacing"] = df["spacing"].astype(object)
    df.loc[2, "spacing"] = value
    _rewrite(path, df)
    with pytest.raises(ManifestError, match=r"manifest\.csv, row 4, column 'spacing': value .* is not a finite number > 0 \(mm per pixel\)"):
        load_manifest(path)


def test_empty_spacing_is_unknown_not_an_error(cohort):
    path, df = cohort
    df.loc[1, "spacing"] = np.nan
    _rewrite(path, df)
    assert load_manifest(path)["spacing"].isna().tolist() == [False, True, False]


def test_a_manifest_with_a_header_and_no_row_is_refused(cohort):
    path, df = cohort
    _rewrite(path, df.iloc[:0])
    with pytest.raises(ManifestError, match=r"manifest\.csv has no rows \(only a header\); a manifest needs one row per lesion") as e:
        load_manifest(path)
    assert "\n" not in str(e.value)


def test_an_unlabelled_cohort_loads_with_require_label_false_and_no_placeholder_label(cohort):
    """``predict``'s cohorts: no label column, or empty label cells, without a made-up label."""
    path, df = cohort
    _rewrite(path, df.drop(columns="label"))
    got = load_manifest(path, require_label=False)
    assert "label" not in got.columns and got["case_id"].tolist() == ["c0", "c1", "c2"]
    _rewrite(path, df.assign(label=["benign", None, 1]))
    got = load_manifest(path, require_label=False)
    assert str(got["label"].dtype) == "Int64" and got["label"].isna().tolist() == [False, True, False]
    assert got["label"].iloc[[0, 2]].tolist() == [0, 1]
    with pytest.raises(ManifestError, match=r"row 3, column 'label': value nan is not 0/1"):
        load_manifest(path)  # a study still needs every label
    _rewrite(path, df.assign(label=["benign", "maybe", 1]))
    with pytest.raises(ManifestError, match=r"row 3, column 'label': value 'maybe' is not 0/1"):
        load_manifest(path, require_label=False)  # a label that is there is still checked
    _rewrite(path, df.drop(columns=["label", "image"]))
    with pytest.raises(ManifestError, match=r"missing column\(s\) \['image'\]; a manifest needs \['case_id', 'image', 'mask'\]\."):
        load_manifest(path, require_label=False)


# ---- hostile paths: a folder or a named pipe where a file goes (issue 28) ---------------------------------
# before the check, the study's input hashes and the readers waited on the pipe for ever (thread: a
# wait in C is ended too, with the run)
@pytest.mark.timeout(60, method="thread")
@pytest.mark.parametrize("col", ["image", "mask"])
def test_an_image_or_mask_that_is_a_named_pipe_is_refused_with_its_row_and_column(cohort, col):
    path, df = cohort
    os.mkfifo(path.parent / "img" / "pipe.png")
    df.loc[2, col] = "img/c2.png;img/pipe.png" if col == "mask" else "img/pipe.png"  # one of several masks too
    _rewrite(path, df)
    with pytest.raises(ManifestError) as e:
        load_manifest(path)
    kind = "a mask" if col == "mask" else "an image"
    assert str(e.value) == (f"{path}, row 4, column {col!r}: {path.parent / 'img' / 'pipe.png'} is a named pipe (FIFO), not a "
                            f"file. Give the path of {kind} file or a DICOM series folder.")
    assert load_manifest(path, check_files=False).loc[2, col].endswith("pipe.png")  # predict's first look reads no file


def test_a_folder_in_an_image_column_is_left_to_the_readers_as_a_dicom_series(cohort):
    path, df = cohort
    (path.parent / "img" / "series").mkdir()
    df.loc[0, "image"] = "img/series"
    _rewrite(path, df)
    assert load_manifest(path).loc[0, "image"] == str(path.parent / "img" / "series")


def test_a_manifest_that_is_a_folder_names_the_csvs_inside_it(cohort, tmp_path):
    path, _ = cohort
    with pytest.raises(ManifestError) as e:
        load_manifest(tmp_path)
    assert str(e.value) == f"Manifest {tmp_path} is a folder; give the CSV inside it (e.g. {path}; it holds manifest.csv)."
    (tmp_path / "empty").mkdir()
    with pytest.raises(ManifestError, match=r"^Manifest .*empty is a folder; give the CSV inside it \(e\.g\. .*empty/manifest\.csv\)\.$"):
        load_manifest(tmp_path / "empty")


@pytest.mark.timeout(60, method="thread")
def test_a_manifest_that_is_a_named_pipe_is_refused_unopened(tmp_path):
    os.mkfifo(tmp_path / "m.csv")
    with pytest.raises(ManifestError, match=r"^Manifest .*m\.csv is a named pipe \(FIFO\), not a file; give the path of a CSV\.$"):
        load_manifest(tmp_path / "m.csv")
