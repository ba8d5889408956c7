"""Combining the manifests of several cohorts: centres, namespaced patients, rewritten paths, and one-line
errors for what clashes (real BrEaST + BUS-BRA when present; small synthetic manifests otherwise)."""

import logging

import numpy as np
import pandas as pd
import pytest

from srnomogram.cli import main
from srnomogram.data.combine import combine_manifests
from srnomogram.data.manifest import load_manifest, patient_ids
from srnomogram.errors import InputError, ManifestError


def manifest(folder, rows, **extra):
    """A manifest in ``folder`` with one (empty) image and mask file per row; ``rows``: (case_id, patient_id, label)."""
    (folder / "img").mkdir(parents=True, exist_ok=True)
    table = []
    for cid, pid, label in rows:
        for kind in ("image", "mask"):
            (folder / "img" / f"{cid}_{kind}.png").write_bytes(b"")
        table.append(dict(case_id=cid, image=f"img/{cid}_image.png", mask=f"img/{cid}_mask.png", label=label, patient_id=pid))
    df = pd.DataFrame(table)
    for col, values in extra.items():
        df[col] = values
    if df["patient_id"].isna().all():
        df = df.drop(columns="patient_id")
    path = folder / "manifest.csv"
    df.to_csv(path, index=False)
    return path


@pytest.fixture
def two(tmp_path):
    """Two hospitals whose patient '12' are two people."""
    a = manifest(tmp_path / "a", [("c1", "12", 0), ("c2", "12", 1), ("c3", "13", "malignant")], age=[50, 61, 70])
    b = manifest(tmp_path / "b", [("d1", "12", "benign"), ("d2", None, 1)], birads=["3", "4a"])
    return a, b


# ---- what a combined manifest holds ---------------------------------------------------------

def test_centres_named_per_manifest_and_patients_namespaced_by_centre(two, tmp_path):
    a, b = two
    out = combine_manifests([a, b], tmp_path / "combined.csv", centres=["hosp_a", "hosp_b"])
    raw = pd.read_csv(out, dtype={"patient_id": str})
    assert raw.case_id.tolist() == ["c1", "c2", "c3", "d1", "d2"]
    assert raw.centre.tolist() == ["hosp_a"] * 3 + ["hosp_b"] * 2
    assert raw.patient_id.tolist()[:4] == ["hosp_a:12", "hosp_a:12", "hosp_a:13", "hosp_b:12"] and pd.isna(raw.patient_id[4])
    assert raw.label.tolist() == [0, 1, 1, 0, 1]  # words and numbers, one coding
    df = load_manifest(out)
    assert patient_ids(df).nunique() == 4  # 12 at a, 13 at a, 12 at b, and d2 alone
    # columns of one cohort only are kept, empty for the other's rows
    assert raw.age.tolist()[:3] == [50, 61, 70] and raw.age[3:].isna().all()
    assert raw.birads[:3].isna().all() and raw.birads[3:].tolist() == ["3", "4a"]
    assert list(raw.columns[:6]) == ["case_id", "image", "mask", "label", "patient_id", "centre"]


def test_paths_are_rewritten_to_resolve_from_the_combined_manifest(two, tmp_path):
    a, b = two
    raw = pd.read_csv(combine_manifests([a, b], tmp_path / "combined.csv", centres=["x", "y"]))
    assert raw["image"].tolist()[0] == "a/img/c1_image.png" and raw["mask"].tolist()[3] == "b/img/d1_mask.png"
    deeper = pd.read_csv(combine_manifests([a, b], tmp_path / "out" / "combined.csv", centres=["x", "y"]))
    assert deeper["image"][0] == str((tmp_path / "a" / "img" / "c1_image.png").resolve())  # outside its folder: absolute
    for path in (tmp_path / "combined.csv", tmp_path / "out" / "combined.csv"):
        df = load_manifest(path)  # every file found from the combined manifest
        assert df["image"].tolist() == [*load_manifest(a)["image"], *load_manifest(b)["image"]]


def test_integer_columns_stay_integers_when_another_cohort_lacks_them(two, tmp_path):
    a, b = two
    out = combine_manifests([a, b], tmp_path / "c.csv", centres=["x", "y"])
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[1].endswith(",50,") and lines[4].endswith(",,3")  # not 50.0; b's rows have no age


def test_a_per_row_centre_column_is_kept_and_combining_again_changes_nothing(two, tmp_path):
    a, b = two
    c = manifest(tmp_path / "c", [("e1", "1", 0), ("e2", "1", 0), ("e3", "2", 1)], centre=["scan_1", "scan_1", "scan_2"])
    first = combine_manifests([a, c], tmp_path / "one.csv", centres=["hosp_a", None], centre_from=[None, "centre"])
    raw = pd.read_csv(first, dtype={"patient_id": str})
    assert raw.centre.tolist() == ["hosp_a"] * 3 + ["scan_1", "scan_1", "scan_2"]
    assert raw.patient_id.tolist()[3:] == ["scan_1:1", "scan_1:1", "scan_2:2"]
    again = combine_manifests([first], tmp_path / "two.csv")  # default: the centre column
    pd.testing.assert_frame_equal(pd.read_csv(again, dtype={"patient_id": str}), raw)


def test_numbered_centres_stay_names(tmp_path):
    c = manifest(tmp_path / "c", [("e1", "7", 0), ("e2", "8", 1)], site=[1, 2])
    df = load_manifest(combine_manifests([c], tmp_path / "c.csv", centre_from="site"))
    assert df.centre.tolist() == ["1", "2"] and df.patient_id.tolist() == ["1:7", "2:8"]


def test_prefix_case_ids_resolves_a_clash(two, tmp_path):
    a, _ = two
    b = manifest(tmp_path / "b2", [("c1", "1", 0)])
    raw = pd.read_csv(combine_manifests([a, b], tmp_path / "c.csv", centres=["x", "y"], prefix_case_ids=True))
    assert raw.case_id.tolist() == ["x_c1", "x_c2", "x_c3", "y_c1"]


# ---- clashes: one line naming both manifests, nothing written -------------------------------

def test_a_case_id_in_two_manifests_is_refused_and_the_old_output_kept(two, tmp_path):
    a, _ = two
    b = manifest(tmp_path / "b2", [("d1", "1", 0), ("c2", "2", 1)])
    out = tmp_path / "c.csv"
    out.write_text("old\n")
    with pytest.raises(ManifestError, match=rf"case_id 'c2' is in both {a} and {b}\. Rename it in one, or prefix every case id with its centre \(--prefix-case-ids\)"):
        combine_manifests([a, b], out, centres=["x", "y"])
    assert out.read_text(encoding="utf-8") == "old\n"


def test_a_column_with_numbers_in_one_manifest_and_text_in_another_is_refused(two, tmp_path):
    a, b = two
    c = manifest(tmp_path / "c", [("e1", "1", 0), ("e2", "2", 1)], birads=[3, 4])
    with pytest.raises(ManifestError, match=rf"Column 'birads' holds numbers in {c} but text in {b} \(row 3: '4a'\)\. .* leave it out with --drop birads"):
        combine_manifests([a, b, c], tmp_path / "out.csv", centres=["x", "y", "z"])
    assert not (tmp_path / "out.csv").exists()
    raw = pd.read_csv(combine_manifests([a, b, c], tmp_path / "out.csv", centres=["x", "y", "z"], drop=["birads"]))
    assert "birads" not in raw.columns and len(raw) == 7


def test_a_label_coded_otherwise_is_refused_with_its_manifest_and_row(two, tmp_path):
    a, _ = two
    b = manifest(tmp_path / "b2", [("d1", "1", 1), ("d2", "2", 2)])
    with pytest.raises(ManifestError, match=rf"{b}, row 3, column 'label': value 2 is not 0/1 or benign/malignant"):
        combine_manifests([a, b], tmp_path / "c.csv", centres=["x", "y"])


def test_a_centre_from_two_manifests_and_a_patient_at_two_centres_are_refused(two, tmp_path):
    a, b = two
    with pytest.raises(ManifestError, match=rf"Centre 'x' is in both {a} and {b}; a centre is one source of patients"):
        combine_manifests([a, b], tmp_path / "c.csv", centres=["x", "x"])
    c = manifest(tmp_path / "c", [("e1", "7", 0), ("e2", "7", 0)], site=["s1", "s2"])
    with pytest.raises(ManifestError, match=rf"Manifest {c}: patient '7' has images at centres \['s1', 's2'\]; a patient belongs to one centre"):
        combine_manifests([a, c], tmp_path / "c.csv", centres=["x", None], centre_from=[None, "site"])
    assert not (tmp_path / "c.csv").exists()


def test_centre_names_and_columns_are_checked(two, tmp_path):
    a, b = two
    with pytest.raises(InputError, match=r"The 'centres' parameter of combine_manifests must be centre ids .* Got 'Hospital A' instead"):
        combine_manifests([a, b], tmp_path / "c.csv", centres=["Hospital A", "y"])
    with pytest.raises(ManifestError, match=rf"Manifest {a} has no column 'centre' to take the centre from; name its centre with --centre NAME"):
        combine_manifests([a, b], tmp_path / "c.csv")
    c = manifest(tmp_path / "c", [("e1", "1", 0), ("e2", "2", 0)], centre=["ok", "St Mary"])
    with pytest.raises(ManifestError, match=rf"{c}, row 3, column 'centre': value 'St Mary' is not a centre id"):
        combine_manifests([a, c], tmp_path / "c.csv", centres=["x", None], centre_from=[None, "centre"])
    with pytest.raises(ManifestError, match=rf"Manifest {c} already has a 'centre' column; keep it with --centre-from centre"):
        combine_manifests([a, c], tmp_path / "c.csv", centres=["x", "y"])
    with pytest.raises(InputError, match=rf"Manifest {a}: give either its centre .* not both"):
        combine_manifests([a, c], tmp_path / "c.csv", centres=["x", None], centre_from=["centre", "centre"])


def test_a_split_in_only_some_manifests_is_refused(two, tmp_path):
    a, _ = two
    b = manifest(tmp_path / "b2", [("d1", "1", 0), ("d2", "2", 1)], split=["train", "test"])
    with pytest.raises(ManifestError, match=rf"Column 'split' is in {b} but not in {a}; a split must cover every row\. Leave it out with --drop split"):
        combine_manifests([a, b], tmp_path / "c.csv", centres=["x", "y"])


# ---- the command line -------------------------------------------------------------------------

def test_combine_from_the_command_line_pairs_centre_options_with_manifests_in_order(two, tmp_path, capsys):
    a, b = two
    c = manifest(tmp_path / "c", [("e1", "1", 0)], scanner=["ge"])
    out = tmp_path / "c.csv"
    assert main(["-q", "cohort", "combine", str(a), str(c), str(b), "--centre", "x", "--centre-from", "scanner", "--centre", "y",
                 "--drop", "birads", "-o", str(out)]) == 0
    assert pd.read_csv(out).centre.tolist() == ["x"] * 3 + ["ge"] + ["y"] * 2
    assert main(["cohort", "combine", str(a), str(b), "--centre", "x", "-o", str(tmp_path / "d.csv")]) == 2
    assert "Give one --centre NAME or --centre-from COLUMN per manifest, in their order: 2 manifests, 1 given." in capsys.readouterr().err
    assert main(["cohort", "combine", str(a), str(b), "--centre", "x", "--centre", "y", "-o", str(a)]) == 2
    assert "the input MANIFEST" in capsys.readouterr().err and not (tmp_path / "d.csv").exists()


# ---- the real cohorts: BrEaST (one centre) + BUS-BRA (four scanners) -------------------------

def test_breast_and_bus_bra_combine_into_five_centres(breast_manifest, bus_bra_manifest, tmp_path, caplog):
    with pytest.raises(ManifestError, match=rf"Column 'birads' holds numbers in {bus_bra_manifest} but text in {breast_manifest} \(row 3: '4b'\)"):
        combine_manifests([breast_manifest, bus_bra_manifest], tmp_path / "c.csv", centres=["breast", None], centre_from=[None, "centre"])
    with caplog.at_level(logging.INFO, logger="srnomogram.data.combine"):
        out = combine_manifests([breast_manifest, bus_bra_manifest], tmp_path / "c.csv", centres=["breast", None], centre_from=[None, "centre"],
                                drop=["birads"])
    assert "spacing is known for 252 rows (centres ['breast']) and unknown for 1875" in caplog.text
    df = load_manifest(out)
    breast, bus = load_manifest(breast_manifest), load_manifest(bus_bra_manifest)
    assert len(df) == 252 + 1875
    assert df.centre.value_counts().to_dict() == {"ge_logiq_7": 902, "ge_logiq_5": 809, "breast": 252, "toshiba_aplio_300": 139, "u_systems": 25}
    assert df.label.tolist() == [*breast.label, *bus.label]
    assert df["image"].tolist() == [*breast["image"], *bus["image"]]
    is_bus = df.centre != "breast"
    assert df.patient_id[is_bus].tolist() == [f"{c}:{p}" for c, p in zip(bus.centre, bus.patient_id)]
    assert patient_ids(df).nunique() == 252 + 1064  # BrEaST: one scan per patient, no patient_id
    assert df.fold5[~is_bus].isna().all() and df.fold5[is_bus].tolist() == bus.fold5.tolist()
    np.testing.assert_array_equal(df.spacing[~is_bus].to_numpy(), breast.spacing.to_numpy())
    assert df.spacing[is_bus].isna().all() and df.age[is_bus].isna().all()
