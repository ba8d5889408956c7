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
