"""Fixtures for the radiomics tests: a few BrEaST lesions as a manifest DataFrame."""

from __future__ import annotations

import pandas as pd
import pytest

SHEET = "BrEaST-Lesions-USG-clinical-data-Dec-15-2023.xlsx"


def breast_manifest(breast_dir, case_ids) -> pd.DataFrame:
    """Manifest rows for the given BrEaST cases, built as the BrEaST importer builds them
    (spacing mm = Pixel_size cm x 10, label 1 = malignant)."""
    from srnomogram.data.manifest import validate_manifest

    sheet = pd.read_excel(breast_dir / SHEET)
    sheet["case_id"] = sheet["Image_filename"].str.replace(".png", "", regex=False)
    sheet = sheet.set_index("case_id").loc[list(case_ids)]
    df = pd.DataFrame(
        {
            "case_id": sheet.index,
            "image": [str(breast_dir / "images" / f) for f in sheet["Image_filename"]],
            "mask": [str(breast_dir / "images" / f) for f in sheet["Mask_tumor_filename"]],
            "label": (sheet["Classification"] == "malignant").astype(int).to_numpy(),
            "spacing": sheet["Pixel_size"].to_numpy() * 10.0,
        }
    )
    return validate_manifest(df, base=breast_dir)


@pytest.fixture(scope="session")
def breast_sample(breast_dir):
    """Small to mid-sized lesions (1.5k to 22k pixels), benign and malignant."""
    return breast_manifest(breast_dir, ["case181", "case057", "case042", "case009", "case072"])


@pytest.fixture(scope="session")
def breast_cases(breast_dir):
    """Function: list of BrEaST case ids -> manifest DataFrame."""
    return lambda ids: breast_manifest(breast_dir, ids)
