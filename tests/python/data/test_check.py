"""check_cohort: every case read, the first bad one named by manifest row."""

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from srnomogram.data.check import check_cohort
from srnomogram.errors import InputError


@pytest.fixture()
def small(tmp_path):
    for k in range(4):
        Image.fromarray(np.full((8, 9), 80, np.uint8)).save(tmp_path / f"c{k}.png")
        m = np.zeros((8, 9), np.uint8)
        m[2:5, 3:6] = 255
        Image.fromarray(m).save(tmp_path / f"c{k}_mask.png")
    df = pd.DataFrame(dict(case_id=[f"c{k}" for k in range(4)], image=[f"c{k}.png" for k in range(4)], mask=[f"c{k}_mask.png" for k in range(4)], label=[0, 1, 0, 1], spacing=0.1, split=["train", "train", "test", "train"]))
    df.to_csv(tmp_path / "manifest.csv", index=False)
    return tmp_path / "manifest.csv"


def test_check_cohort_summarises_labels_and_splits(small):
    assert check_cohort(small, progress=False) == dict(n=4, by_label={0: 2, 1: 2}, by_split={"train": 3, "test": 1}, dims={2})


def test_check_cohort_names_the_row_of_an_unreadable_image(small):
    (small.parent / "c2.png").write_bytes(b"not an image")
    with pytest.raises(InputError, match=r"^manifest\.csv, row 4: Image file .*c2\.png cannot be read as an image") as exc:
        check_cohort(small, progress=False)
    assert "\n" not in str(exc.value)


def test_check_cohort_names_the_row_of_an_empty_or_mismatched_mask(small):
    Image.fromarray(np.zeros((8, 9), np.uint8)).save(small.parent / "c1_mask.png")
    with pytest.raises(InputError, match=r"^manifest\.csv, row 3: case 'c1': mask .*c1_mask\.png is empty"):
        check_cohort(small, progress=False)
    Image.fromarray(np.full((7, 9), 255, np.uint8)).save(small.parent / "c1_mask.png")
    with pytest.raises(InputError, match=r"^manifest\.csv, row 3: case 'c1': mask .* has size \(9, 7\) but image .* has size \(9, 8\)"):
        check_cohort(small, progress=False)


def test_check_cohort_rejects_an_unknown_column(small):
    with pytest.raises(InputError, match=r"column 'image_sr' not found"):
        check_cohort(small, image_col="image_sr", progress=False)


def test_check_clinical_converts_numbers_and_excludes_lesions_with_a_missing_value():
    from srnomogram.data.check import check_clinical

    df = pd.DataFrame({"case_id": list("abc"), "label": [0, 1, 1], "age": ["40", None, "61.5"]})
    kept, excluded = check_clinical(df, ["age"], source="m.csv")
    assert kept["age"].tolist() == [40.0, 61.5] and kept["case_id"].tolist() == ["a", "c"]
    assert excluded.to_dict("records") == [{"case_id": "b", "label": 1, "reason": "missing clinical value"}]


def test_check_clinical_names_the_row_and_column_of_a_value_that_is_not_a_number():
    from srnomogram.data.check import check_clinical

    df = pd.DataFrame({"case_id": list("abc"), "label": [0, 1, 1], "age": [40, "abc", 61]})
    with pytest.raises(InputError, match=r"^m\.csv, row 3, column 'age': 'abc' is not a number; clinical factors must be numeric"):
        check_clinical(df, ["age"], source="m.csv")
    with pytest.raises(InputError, match=r"^m\.csv, row 2, column 'age': inf is not a finite number; clinical factors must be numeric"):
        check_clinical(df.assign(age=[np.inf, 50, 61]), ["age"], source="m.csv")


def test_check_clinical_says_when_no_lesion_is_left_and_why():
    """Every lesion excluded: the error names the reason, not a later 'the train set has only one class'."""
    from srnomogram.data.check import check_clinical

    df = pd.DataFrame({"case_id": list("abc"), "label": [0, 1, 1], "age": [40, None, 61], "size": [None, 2.0, None]})
    with pytest.raises(InputError) as e:
        check_clinical(df, ["age", "size"], source="m.csv")
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith("m.csv: 0 of 3 lesions are left after excluding those with a missing clinical value "
                          "(cohort.clinical: 'age' empty in 1 row, 'size' empty in 2 rows)")
    assert "fill in the values or remove the factor from cohort.clinical" in msg
    kept, excluded = check_clinical(df, ["age", "size"], source="m.csv", require_rows=False)
    assert len(kept) == 0 and len(excluded) == 3
