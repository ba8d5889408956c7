"""Importers: the BrEaST and BUS-BRA collections (real, when present, and miniature copies of their
layouts) and benign/ + malignant/ folders. The real imports are session fixtures (conftest.py)."""

import logging

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from PIL import Image

from srnomogram.data.importers import import_breast_lesions_usg, import_folder
from srnomogram.data.manifest import load_manifest, mask_paths
from srnomogram.data.readers import read_case
from srnomogram.errors import InputError, ManifestError


def brute_force_max_distance(mask, spacing):
    """Max distance over all pairs of mask pixel centres, reduced without a hull: a pixel with a
    mask pixel both left and right of it in its row is between them, so only the leftmost and
    rightmost pixel of each row can be an end of the longest chord."""
    rows = np.flatnonzero(mask.any(axis=1))
    left = mask[rows].argmax(axis=1)
    right = mask.shape[1] - 1 - mask[rows, ::-1].argmax(axis=1)
    pts = np.concatenate([np.c_[rows, left], np.c_[rows, right]]).astype(float) * spacing
    d2 = ((pts[:, None, :] - pts[None, :, :]) ** 2).sum(-1)
    return float(np.sqrt(d2.max()))


# ---- the real Breast-Lesions-USG collection ---------------------------------------------------

def test_breast_import_yields_252_lesions_154_benign_98_malignant(breast_manifest, breast_dir):
    df = load_manifest(breast_manifest)
    assert len(df) == 252
    assert (df.label == 0).sum() == 154 and (df.label == 1).sum() == 98
    sheet = pd.read_excel(next(breast_dir.glob("*.xlsx")))
    normals = set(sheet.loc[sheet.Classification == "normal", "Image_filename"].str.replace(".png", ""))
    assert len(normals) == 4 and not normals & set(df.case_id)


def test_breast_import_logs_what_it_wrote_and_excluded(breast_import):
    out, messages = breast_import
    text = "\n".join(messages)
    assert f"wrote 252 lesions (154 benign, 98 malignant) to {out}" in text
    assert "excluded 4 normal scan(s) and 0 scan(s) without a tumour mask" in text


def test_breast_import_keeps_missing_ages_missing_and_spacing_in_mm(breast_manifest, breast_dir):
    df = load_manifest(breast_manifest).set_index("case_id")
    sheet = pd.read_excel(next(breast_dir.glob("*.xlsx")))
    sheet["case_id"] = sheet.Image_filename.str.replace(".png", "", regex=False)
    sheet = sheet.set_index("case_id").loc[df.index]
    na = sheet.Age.astype(str).str.strip() == "not available"
    assert na.sum() > 0
    assert df.age[na.to_numpy()].isna().all()
    np.testing.assert_array_equal(df.age[~na.to_numpy()].to_numpy(), sheet.Age[~na].astype(float).to_numpy())
    np.testing.assert_allclose(df.spacing.to_numpy(), sheet.Pixel_size.to_numpy() * 10, rtol=1e-12)
    assert df.label.tolist() == (sheet.Classification == "malignant").astype(int).tolist()


def test_breast_max_diameter_agrees_with_brute_force_on_every_lesion(breast_manifest):
    df = load_manifest(breast_manifest)
    for row in df.itertuples():
        m = np.asarray(Image.open(row.mask).convert("RGB")).any(axis=-1)  # independent mask read
        ref_cm = brute_force_max_distance(m, row.spacing / 10.0)
        assert row.max_diameter_cm == pytest.approx(ref_cm, rel=1e-9, abs=1e-12), row.case_id
    assert 0.2 < df.max_diameter_cm.median() < 3.0


def test_breast_images_and_masks_read_as_cases(breast_manifest):
    df = load_manifest(breast_manifest).iloc[::50]
    for row in df.itertuples():
        image, mask = read_case(row.image, mask_paths(row.mask), row.spacing, row.case_id)
        assert image.GetSpacing() == pytest.approx((row.spacing, row.spacing))
        assert sitk.GetArrayViewFromImage(mask).any()


# ---- a miniature BrEaST folder: importer logic and bad input without the real data -----------

def mini_breast(tmp_path, rows=None):
    src = tmp_path / "breast"
    (src / "images").mkdir(parents=True)
    rows = rows or [
        ("case001.png", "case001_tumor.png", 0.0078125, 57, "benign"),
        ("case002.png", "case002_tumor.png", 0.01, "not available", "malignant"),
        ("case003.png", None, 0.0078125, 44, "normal"),
        ("case004.png", "case004_tumor.png&case004_tumor2.png", 0.005, 61, "malignant"),
    ]
    for img, mask, *_ in rows:
        Image.fromarray(np.full((20, 30, 4), 90, np.uint8), "RGBA").save(src / "images" / img)
        for k, m in enumerate(str(mask).split("&") if mask else []):
            a = np.zeros((20, 30, 4), np.uint8)
            a[3 + k : 8 + 2 * k, 4 + 5 * k : 15 + 5 * k, :3] = 255
            a[..., 3] = 255
            Image.fromarray(a, "RGBA").save(src / "images" / m)
    sheet = pd.DataFrame(rows, columns=["Image_filename", "Mask_tumor_filename", "Pixel_size", "Age", "Classification"])
    sheet["Shape"] = "oval"
    sheet.to_excel(src / "BrEaST-Lesions-USG-clinical-data.xlsx", index=False)
    return src


def test_mini_breast_import_excludes_normals_and_merges_several_tumour_masks(tmp_path):
    src = mini_breast(tmp_path)
    out = import_breast_lesions_usg(src, tmp_path / "out" / "manifest.csv", progress=False)
    raw = pd.read_csv(out)
    assert raw.case_id.tolist() == ["case001", "case002", "case004"]
    assert raw.label.tolist() == [0, 1, 1]
    assert np.isnan(raw.age[1]) and raw.age[0] == 57
    assert raw.spacing.tolist() == pytest.approx([0.078125, 0.1, 0.05])
    assert raw["shape"].tolist() == ["oval"] * 3  # descriptor columns kept (snake_case)
    df = load_manifest(out)
    merged = mask_paths(df["mask"][2])
    assert isinstance(merged, list) and len(merged) == 2
    union = np.zeros((20, 30), bool)
    union[3:8, 4:15] = True
    union[4:10, 9:20] = True
    assert df.max_diameter_cm[2] == pytest.approx(brute_force_max_distance(union, 0.005), rel=1e-12)
    assert df.max_diameter_cm[0] == pytest.approx(np.hypot(4, 10) * 0.0078125, rel=1e-12)


def test_breast_import_rejects_an_unknown_classification_and_writes_nothing(tmp_path):
    src = mini_breast(tmp_path, rows=[("case001.png", "case001_tumor.png", 0.01, 50, "benign"), ("case002.png", "case002_tumor.png", 0.01, 50, "suspicious")])
    out = tmp_path / "manifest.csv"
    with pytest.raises(ManifestError, match=r"BrEaST-Lesions-USG-clinical-data\.xlsx, row 3, column 'Classification': value 'suspicious' is not benign, malignant or normal"):
        import_breast_lesions_usg(src, out, progress=False)
    assert not out.exists()


def test_breast_import_rejects_a_missing_image_and_keeps_an_old_manifest(tmp_path):
    src = mini_breast(tmp_path)
    (src / "images" / "case002_tumor.png").unlink()
    out = tmp_path / "manifest.csv"
    out.write_text("old\n")
    with pytest.raises(InputError, match=r"row 3, column 'Mask_tumor_filename': file .*case002_tumor\.png does not exist\. Restore the file"):
        import_breast_lesions_usg(src, out, progress=False)
    assert out.read_text(encoding="utf-8") == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["breast", "manifest.csv"]


def test_breast_import_rejects_an_empty_tumour_mask(tmp_path):
    src = mini_breast(tmp_path)
    Image.fromarray(np.zeros((20, 30, 4), np.uint8), "RGBA").save(src / "images" / "case001_tumor.png")
    with pytest.raises(InputError, match=r"row 2: tumour mask .*case001_tumor\.png is empty"):
        import_breast_lesions_usg(src, tmp_path / "m.csv", progress=False)


def test_breast_import_without_a_sheet_says_what_to_point_at(tmp_path):
    (tmp_path / "x").mkdir()
    with pytest.raises(InputError, match=r"No \.xlsx clinical sheet found in .*x\. Point the importer"):
        import_breast_lesions_usg(tmp_path / "x", tmp_path / "m.csv")


# ---- benign/ + malignant/ folders -------------------------------------------------------------

def make_folder(tmp_path):
    src = tmp_path / "busi"
    for cls in ("benign", "malignant", "normal"):
        (src / cls).mkdir(parents=True)

    def save(path, arr):
        Image.fromarray(arr).save(path)

    img = np.full((12, 16, 3), 120, np.uint8)
    m1 = np.zeros((12, 16), np.uint8)
    m1[2:5, 2:6] = 255
    m2 = np.zeros((12, 16), np.uint8)
    m2[7:10, 9:14] = 255
    save(src / "benign" / "benign (1).png", img)
    save(src / "benign" / "benign (1)_mask.png", m1)
    save(src / "benign" / "benign (2).png", img)
    save(src / "benign" / "benign (2)_mask.png", m1)
    save(src / "benign" / "benign (2)_mask_1.png", m2)
    save(src / "benign" / "benign (3).png", img)  # no mask: excluded
    save(src / "malignant" / "malignant (1).png", img)
    save(src / "malignant" / "malignant (1)_mask.png", m2)
    save(src / "normal" / "normal (1).png", img)
    return src, m1, m2


def test_folder_import_pairs_images_with_masks_and_merges_several(tmp_path):
    src, m1, m2 = make_folder(tmp_path)
    out = import_folder(src, tmp_path / "manifest.csv", spacing=0.08)
    raw = pd.read_csv(out)
    assert raw.case_id.tolist() == ["benign_benign_1", "benign_benign_2", "malignant_malignant_1"]
    assert raw.label.tolist() == [0, 0, 1]
    assert raw.spacing.tolist() == [0.08] * 3
    assert raw["image"][0] == "busi/benign/benign (1).png"  # relative to the manifest
    df = load_manifest(out)
    _, mask = read_case(df.image[1], mask_paths(df["mask"][1]), df.spacing[1], df.case_id[1])
    np.testing.assert_array_equal(sitk.GetArrayFromImage(mask), ((m1 > 0) | (m2 > 0)).astype(np.uint8))


def test_folder_import_rejects_a_mask_without_image(tmp_path):
    src, m1, _ = make_folder(tmp_path)
    Image.fromarray(m1).save(src / "malignant" / "lost_mask.png")
    with pytest.raises(InputError, match=r"Mask .*lost_mask\.png has no image lost\.\* beside it"):
        import_folder(src, tmp_path / "manifest.csv")
    assert not (tmp_path / "manifest.csv").exists()


def test_folder_import_needs_both_class_folders(tmp_path):
    (tmp_path / "d" / "benign").mkdir(parents=True)
    with pytest.raises(InputError, match=r"has no malignant/ sub-folder"):
        import_folder(tmp_path / "d", tmp_path / "m.csv")


def test_folder_import_rejects_two_images_with_the_same_case_id(tmp_path):
    src, m1, _ = make_folder(tmp_path)
    Image.fromarray(np.full((12, 16), 9, np.uint8)).save(src / "malignant" / "malignant_1_.png")
    Image.fromarray(m1).save(src / "malignant" / "malignant_1__mask.png")
    with pytest.raises(ManifestError, match=r"give the same case_id 'malignant_malignant_1'\. Rename one of them"):
        import_folder(src, tmp_path / "manifest.csv")
    assert not (tmp_path / "manifest.csv").exists()


def test_breast_import_rejects_a_mask_of_another_size(tmp_path):
    src = mini_breast(tmp_path)
    Image.fromarray(np.full((21, 30), 255, np.uint8)).save(src / "images" / "case002_tumor.png")
    with pytest.raises(InputError, match=r"row 3: mask .*case002_tumor\.png is 30x21 pixels but image .*case002\.png is 30x20\. Masks must be drawn"):
        import_breast_lesions_usg(src, tmp_path / "m.csv", progress=False)
    assert not (tmp_path / "m.csv").exists()


def test_folder_import_rejects_a_mask_of_another_size(tmp_path):
    src, _, _ = make_folder(tmp_path)
    Image.fromarray(np.full((5, 5), 255, np.uint8)).save(src / "malignant" / "malignant (1)_mask.png")
    with pytest.raises(InputError, match=r"busi/malignant: mask .*malignant \(1\)_mask\.png is 5x5 pixels but image .* is 16x12"):
        import_folder(src, tmp_path / "manifest.csv")


def test_breast_import_keeps_a_patient_column_as_text(tmp_path):
    src = mini_breast(tmp_path)
    sheet = pd.read_excel(src / "BrEaST-Lesions-USG-clinical-data.xlsx")
    sheet["Patient_ID"] = [7.0, 7.0, 8.0, np.nan]  # as a spreadsheet stores whole numbers
    sheet.to_excel(src / "BrEaST-Lesions-USG-clinical-data.xlsx", index=False)
    df = load_manifest(import_breast_lesions_usg(src, tmp_path / "m.csv", progress=False))
    assert df["patient_id"].tolist()[:2] == ["7", "7"] and pd.isna(df.at[2, "patient_id"])
    plain = load_manifest(import_breast_lesions_usg(mini_breast(tmp_path / "b"), tmp_path / "p.csv", progress=False))
    assert "patient_id" not in plain.columns  # a source without patients: each lesion its own patient


def test_folder_import_takes_the_patient_from_a_pattern_on_the_image_name(tmp_path):
    src, _, _ = make_folder(tmp_path)
    df = load_manifest(import_folder(src, tmp_path / "m.csv", patient_pattern=r"\((?P<patient>\d+)\)"))
    assert df["patient_id"].tolist() == ["1", "2", "1"]
    with pytest.raises(InputError, match=r"busi/benign: image benign \(1\)\.png does not match patient_pattern 'x\(\\d\+\)'\. Fix the pattern"):
        import_folder(src, tmp_path / "m2.csv", patient_pattern=r"x(\d+)")
    assert not (tmp_path / "m2.csv").exists()


def test_folder_import_refuses_a_decompression_bomb_in_one_line(tmp_path, monkeypatch):
    from srnomogram.data.readers import MAX_PIXELS_ENV

    from .test_readers import _png_header

    monkeypatch.delenv(MAX_PIXELS_ENV, raising=False)
    src, _, _ = make_folder(tmp_path)
    _png_header(src / "malignant" / "malignant (1).png", 30000, 30000)
    with pytest.raises(InputError, match=rf"malignant \(1\)\.png has 30000 x 30000 = 900000000 pixels, over the limit of 89478485 pixels.*{MAX_PIXELS_ENV}"):
        import_folder(src, tmp_path / "manifest.csv")
    assert not (tmp_path / "manifest.csv").exists()


# ---- the real BUS-BRA collection --------------------------------------------------------------

def _bus_sheet(src):
    """bus_data.csv read independently of the importer (csv module, every cell text)."""
    import csv

    with open(src / "bus_data.csv", newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_bus_bra_import_yields_1875_images_of_1064_patients_722_benign_342_malignant(bus_bra_manifest, bus_bra_dir):
    df = load_manifest(bus_bra_manifest)
    sheet = _bus_sheet(bus_bra_dir)
    assert len(df) == len(sheet) == 1875
    assert df.case_id.tolist() == [r["ID"] for r in sheet]
    assert df.patient_id.tolist() == [r["Case"] for r in sheet]
    assert df.label.tolist() == [int(r["Pathology"] == "malignant") for r in sheet]
    per_patient = df.groupby("patient_id").label.agg(["min", "max"])
    assert len(per_patient) == 1064 and (per_patient["min"] == per_patient["max"]).all()  # two views, one pathology
    assert (per_patient["max"] == 0).sum() == 722 and (per_patient["max"] == 1).sum() == 342
    assert df.groupby("patient_id").size().value_counts().to_dict() == {2: 811, 1: 253}
    assert df.view.value_counts().to_dict() == {"left": 811, "right": 811, "single": 253}
    assert (df.view.str[0] == df.case_id.str[-1]).all()  # Side names the view: -l left, -r right, -s single
    assert df.birads.tolist() == [int(r["BIRADS"]) for r in sheet]
    assert df.histology.tolist() == [r["Histology"] for r in sheet]


def test_bus_bra_centres_are_the_four_scanners_902_809_139_25(bus_bra_manifest, bus_bra_dir):
    df = load_manifest(bus_bra_manifest)
    assert df.centre.value_counts().to_dict() == {"ge_logiq_7": 902, "ge_logiq_5": 809, "toshiba_aplio_300": 139, "u_systems": 25}
    assert df.device.tolist() == [r["Device"] for r in _bus_sheet(bus_bra_dir)]
    assert (df.groupby("patient_id").centre.nunique() == 1).all()  # a patient is at one scanner


@pytest.mark.parametrize("name, col, k", [("5-fold-cv.csv", "fold5", 5), ("10-fold-cv.csv", "fold10", 10)])
def test_bus_bra_folds_are_the_authors_and_keep_each_patient_in_one_fold(bus_bra_manifest, bus_bra_dir, name, col, k):
    df = load_manifest(bus_bra_manifest)
    folds = pd.read_csv(bus_bra_dir / name).set_index("ID")
    assert df[col].tolist() == folds.loc[df.case_id, "kFold"].tolist()
    assert sorted(df[col].unique()) == list(range(1, k + 1))
    assert (df.groupby("patient_id")[col].nunique() == 1).all()
    # in its test fold an image has no train/validation flag (valid_j is empty exactly when j is its fold)
    flags = folds.loc[df.case_id, [f"valid_{j}" for j in range(1, k + 1)]].to_numpy()
    np.testing.assert_array_equal(np.isnan(flags), df[col].to_numpy()[:, None] == np.arange(1, k + 1))


def test_bus_bra_sizes_come_from_the_png_where_the_sheet_is_wrong(bus_bra_import, bus_bra_dir):
    out, messages = bus_bra_import
    df = load_manifest(out)
    sizes = [Image.open(p).size for p in df.image]
    assert df.width_px.tolist() == [w for w, _ in sizes] and df.height_px.tolist() == [h for _, h in sizes]
    assert [Image.open(p).size for p in df["mask"]] == sizes
    sheet = _bus_sheet(bus_bra_dir)
    wrong = [r["ID"] for r, s in zip(sheet, sizes) if (int(r["Width"]), int(r["Height"])) != s]
    assert wrong == ["bus_0856-l", "bus_0857-r", "bus_0912-l", "bus_0990-l"]
    text = "\n".join(messages)
    assert f"wrote 1875 images of 1064 patients (722 benign, 342 malignant patients; 1268 benign, 607 malignant images) from 4 scanner(s)" in text
    assert "4 image size(s) in bus_data.csv differ from the PNG (bus_0856-l, bus_0857-r, bus_0912-l, bus_0990-l; the PNG's size is kept)" in text


def test_bus_bra_spacing_is_unknown_as_for_a_folder_without_spacing(bus_bra_manifest):
    raw = pd.read_csv(bus_bra_manifest)
    assert raw.spacing.isna().all()  # empty cells: the manifest's "unknown", features per pixel
    df = load_manifest(bus_bra_manifest).iloc[::300]
    for row in df.itertuples():
        image, mask = read_case(row.image, row.mask, None, row.case_id)
        assert image.GetSpacing() == (1.0, 1.0) and image.GetSize() == (row.width_px, row.height_px)
        assert sitk.GetArrayViewFromImage(mask).any()


# ---- a miniature BUS-BRA folder: importer logic and bad input without the real data ----------

def mini_bus_bra(tmp_path, rows=None, folds=None):
    """bus_data.csv, Images/, Masks/ and both fold files for a few images; the last row's Width is wrong."""
    src = tmp_path / "busbra"
    (src / "Images").mkdir(parents=True)
    (src / "Masks").mkdir()
    rows = rows or [
        ("bus_0001-l", 1, "invasive ductal carcinoma", "malignant", 4, "GE Logiq 7 @10-14MHz", "left"),
        ("bus_0001-r", 1, "invasive ductal carcinoma", "malignant", 5, "GE Logiq 7 @10-14MHz", "right"),
        ("bus_0002-s", 2, "fibroadenoma", "benign", 3, "Toshiba Aplio 300 @12-14 MHz", "single"),
        ("bus_0003-l", 3, "cyst", "benign", 2, "U-Systems @10-14MHz", "left"),
    ]
    table = []
    for k, (rid, case, hist, path, birads, device, side) in enumerate(rows):
        w, h = 30 + k, 20
        Image.fromarray(np.full((h, w), 90, np.uint8)).save(src / "Images" / f"{rid}.png")
        m = np.zeros((h, w), bool)
        m[4:9, 5:15 + k] = True
        Image.fromarray(m).save(src / "Masks" / f"mask_{rid[4:]}.png")  # 1-bit, as published
        table.append(dict(ID=rid, Case=case, Histology=hist, Pathology=path, BIRADS=birads, Device=device,
                          Width=w + (k == len(rows) - 1), Height=h, Side=side, BBOX="[5,4,10,5]"))
    pd.DataFrame(table).to_csv(src / "bus_data.csv", index=False)
    folds = folds or {r[0]: 1 + int(r[1]) % 2 for r in rows}
    for name, k in (("5-fold-cv.csv", 5), ("10-fold-cv.csv", 10)):
        f = pd.DataFrame({"ID": list(folds), "Pathology": "x", "kFold": list(folds.values())})
        for j in range(1, k + 1):
            f[f"valid_{j}"] = np.where(f.kFold == j, np.nan, 1.0)
        f.to_csv(src / name, index=False)
    return src


def test_mini_bus_bra_import_reads_patients_scanners_folds_and_png_sizes(tmp_path, caplog):
    from srnomogram.data.importers import import_bus_bra

    src = mini_bus_bra(tmp_path)
    with caplog.at_level(logging.INFO, logger="srnomogram.data.importers"):
        out = import_bus_bra(src, tmp_path / "manifest.csv", progress=False)
    raw = pd.read_csv(out, dtype={"patient_id": str})
    assert raw.case_id.tolist() == ["bus_0001-l", "bus_0001-r", "bus_0002-s", "bus_0003-l"]
    assert raw.patient_id.tolist() == ["1", "1", "2", "3"]
    assert raw.label.tolist() == [1, 1, 0, 0]
    assert raw.centre.tolist() == ["ge_logiq_7", "ge_logiq_7", "toshiba_aplio_300", "u_systems"]
    assert raw.fold5.tolist() == raw.fold10.tolist() == [2, 2, 1, 2]
    assert raw.width_px.tolist() == [30, 31, 32, 33]  # the sheet says 34 for the last: the PNG wins
    assert raw.spacing.isna().all()
    assert raw["image"][0] == "busbra/Images/bus_0001-l.png" and raw["mask"][2] == "busbra/Masks/mask_0002-s.png"
    assert "1 image size(s) in bus_data.csv differ from the PNG (bus_0003-l;" in caplog.text


def test_bus_bra_import_rejects_an_unknown_pathology_and_keeps_an_old_manifest(tmp_path):
    from srnomogram.data.importers import import_bus_bra

    src = mini_bus_bra(tmp_path)
    sheet = pd.read_csv(src / "bus_data.csv")
    sheet.loc[2, "Pathology"] = "suspicious"
    sheet.to_csv(src / "bus_data.csv", index=False)
    out = tmp_path / "manifest.csv"
    out.write_text("old\n")
    with pytest.raises(ManifestError, match=r"bus_data\.csv, row 4, column 'Pathology': value 'suspicious' is not benign or malignant\. Fix the sheet"):
        import_bus_bra(src, out, progress=False)
    assert out.read_text(encoding="utf-8") == "old\n"


def test_bus_bra_import_rejects_folds_that_split_a_patient(tmp_path):
    from srnomogram.data.importers import import_bus_bra

    src = mini_bus_bra(tmp_path, folds={"bus_0001-l": 1, "bus_0001-r": 3, "bus_0002-s": 2, "bus_0003-l": 2})
    with pytest.raises(ManifestError, match=r"5-fold-cv\.csv puts the images of patient \(Case\) 1 in folds \[1, 3\]; the authors' folds keep a patient's images together"):
        import_bus_bra(src, tmp_path / "m.csv", progress=False)
    assert not (tmp_path / "m.csv").exists()


def test_bus_bra_import_rejects_a_fold_out_of_range_and_an_image_without_fold(tmp_path):
    from srnomogram.data.importers import import_bus_bra

    src = mini_bus_bra(tmp_path, folds={"bus_0001-l": 7, "bus_0001-r": 7, "bus_0002-s": 2, "bus_0003-l": 2})
    with pytest.raises(ManifestError, match=r"5-fold-cv\.csv, row 2, column 'kFold': value 7 is not a fold number 1 to 5"):
        import_bus_bra(src, tmp_path / "m.csv", progress=False)
    src = mini_bus_bra(tmp_path / "b", folds={"bus_0001-l": 1, "bus_0001-r": 1, "bus_0002-s": 2})
    with pytest.raises(ManifestError, match=r"5-fold-cv\.csv has no fold for image 'bus_0003-l' \(and 0 more\) of bus_data\.csv"):
        import_bus_bra(src, tmp_path / "m.csv", progress=False)


def test_bus_bra_import_without_fold_files_writes_no_fold_columns(tmp_path, caplog):
    from srnomogram.data.importers import import_bus_bra

    src = mini_bus_bra(tmp_path)
    (src / "10-fold-cv.csv").unlink()
    with caplog.at_level(logging.INFO, logger="srnomogram.data.importers"):
        raw = pd.read_csv(import_bus_bra(src, tmp_path / "m.csv", progress=False))
    assert "fold5" in raw.columns and "fold10" not in raw.columns
    assert "no 10-fold-cv.csv in" in caplog.text


def test_bus_bra_import_rejects_a_missing_mask_an_empty_mask_and_a_mask_of_another_size(tmp_path):
    from srnomogram.data.importers import import_bus_bra

    src = mini_bus_bra(tmp_path)
    (src / "Masks" / "mask_0002-s.png").unlink()
    with pytest.raises(InputError, match=r"bus_data\.csv, row 4: file .*mask_0002-s\.png does not exist\. Restore it in Masks/"):
        import_bus_bra(src, tmp_path / "m.csv", progress=False)
    Image.fromarray(np.zeros((20, 32), bool)).save(src / "Masks" / "mask_0002-s.png")
    with pytest.raises(InputError, match=r"row 4: mask .*mask_0002-s\.png is empty"):
        import_bus_bra(src, tmp_path / "m.csv", progress=False)
    Image.fromarray(np.ones((21, 32), bool)).save(src / "Masks" / "mask_0002-s.png")
    with pytest.raises(InputError, match=r"row 4: mask .*mask_0002-s\.png is 32x21 pixels but image .*bus_0002-s\.png is 32x20"):
        import_bus_bra(src, tmp_path / "m.csv", progress=False)
    assert not (tmp_path / "m.csv").exists()


def test_bus_bra_import_without_its_sheet_says_what_to_point_at(tmp_path):
    from srnomogram.data.importers import import_bus_bra

    (tmp_path / "x").mkdir()
    with pytest.raises(InputError, match=r"No bus_data\.csv found in .*x\. Point the importer at the BUS-BRA folder"):
        import_bus_bra(tmp_path / "x", tmp_path / "m.csv")


def test_bus_bra_import_from_the_command_line(tmp_path, capsys):
    from srnomogram.cli import main

    src = mini_bus_bra(tmp_path)
    assert main(["-q", "cohort", "import", "bus-bra", str(src), "-o", str(tmp_path / "m.csv")]) == 0
    assert load_manifest(tmp_path / "m.csv").centre.nunique() == 3
    assert main(["cohort", "import", "bus-bra", str(tmp_path / "nowhere"), "-o", str(tmp_path / "m2.csv")]) == 2
    assert "srnomogram: error: Folder" in capsys.readouterr().err and not (tmp_path / "m2.csv").exists()
