"""``srnomogram sr train|apply|quality`` end to end on a tiny cohort."""

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from srnomogram.cli import main
from srnomogram.data import load_manifest


def test_train_apply_and_quality_from_the_command_line(tmp_path, train_images, heldout_images):
    rows = []
    for k, img in enumerate(train_images[:3] + heldout_images[:1]):
        Image.fromarray(img).save(tmp_path / f"i{k}.png")
        m = np.zeros_like(img)
        m[30:50, 30:50] = 1
        Image.fromarray(m).save(tmp_path / f"i{k}_m.png")
        rows.append(dict(case_id=f"i{k}", image=f"i{k}.png", mask=f"i{k}_m.png", label=k % 2, spacing=0.1, split="test" if k == 3 else "train"))
    pd.DataFrame(rows).to_csv(tmp_path / "manifest.csv", index=False)
    rc = main(["-q", "sr", "train", str(tmp_path / "manifest.csv"), "--out", str(tmp_path / "model"), "--iterations", "3",
               "--batch-size", "2", "--patch-size", "32", "--channels", "4", "--blocks", "1", "--device", "cpu"])
    assert rc == 0 and (tmp_path / "model" / "generator.pt").exists() and (tmp_path / "model" / "meta.json").exists()
    rc = main(["-q", "sr", "apply", str(tmp_path / "manifest.csv"), "--model", str(tmp_path / "model"), "--device", "cpu"])
    assert rc == 0
    assert "image_sr" not in pd.read_csv(tmp_path / "manifest.csv").columns  # a new manifest by default
    df = load_manifest(tmp_path / "manifest_sr.csv")
    assert all(p.endswith("_sr.png") for p in df["image_sr"])
    # --amp bf16 applies the same model in bf16: the SR PNGs stay within one grey level
    fp32 = [np.asarray(Image.open(p), dtype=int) for p in df["image_sr"]]
    rc = main(["-q", "sr", "apply", str(tmp_path / "manifest.csv"), "--model", str(tmp_path / "model"), "--device", "cpu",
               "--amp", "bf16", "--out-dir", str(tmp_path / "bf16"), "--manifest-out", str(tmp_path / "m_bf16.csv")])
    assert rc == 0
    bf16 = [np.asarray(Image.open(p), dtype=int) for p in load_manifest(tmp_path / "m_bf16.csv")["image_sr"]]
    assert all(np.abs(a - b).max() <= 1 for a, b in zip(fp32, bf16))
    import json

    assert {json.loads(open(p + ".json").read())["region"] for p in df["image_sr"]} == {"roi"}  # the default
    rc = main(["-q", "sr", "apply", str(tmp_path / "manifest.csv"), "--model", str(tmp_path / "model"), "--device", "cpu",
               "--region", "image", "--out-dir", str(tmp_path / "whole"), "--manifest-out", str(tmp_path / "m_whole.csv")])
    assert rc == 0
    assert {json.loads(open(p + ".json").read())["region"] for p in load_manifest(tmp_path / "m_whole.csv")["image_sr"]} == {"image"}
    rc = main(["-q", "sr", "apply", str(tmp_path / "manifest.csv"), "--model", str(tmp_path / "model"), "--device", "cpu", "--in-place"])
    assert rc == 0 and load_manifest(tmp_path / "manifest.csv")["image_sr"].tolist() == df["image_sr"].tolist()
    rc = main(["-q", "sr", "quality", str(tmp_path / "manifest.csv"), "--model", str(tmp_path / "model"), "--device", "cpu",
               "--out", str(tmp_path / "q.csv"), "--figure", str(tmp_path / "q.png")])
    assert rc == 0
    q = pd.read_csv(tmp_path / "q.csv")
    assert set(q["image"]) == {"i3"} and (tmp_path / "q_summary.csv").exists() and (tmp_path / "q.png").exists()


def test_cli_reports_bad_checkpoints_as_one_line_errors(tmp_path, capsys):
    pd.DataFrame([dict(case_id="a", image="a.png", mask="a.png", label=0)]).to_csv(tmp_path / "m.csv", index=False)
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "a.png")
    rc = main(["sr", "apply", str(tmp_path / "m.csv"), "--model", str(tmp_path / "nope")])
    assert rc == 2
    assert "not a SuperResolver checkpoint" in capsys.readouterr().err


def _tiny_cohort_and_model(tmp_path, images):
    rows = []
    for k, img in enumerate(images):
        Image.fromarray(img).save(tmp_path / f"i{k}.png")
        m = np.zeros_like(img)
        m[30:50, 30:50] = 1
        Image.fromarray(m).save(tmp_path / f"i{k}_m.png")
        rows.append(dict(case_id=f"i{k}", image=f"i{k}.png", mask=f"i{k}_m.png", label=k % 2, spacing=0.1))
    pd.DataFrame(rows).to_csv(tmp_path / "manifest.csv", index=False)
    rc = main(["-q", "sr", "train", str(tmp_path / "manifest.csv"), "--out", str(tmp_path / "model"), "--iterations", "2",
               "--batch-size", "2", "--patch-size", "32", "--channels", "4", "--blocks", "1", "--device", "cpu"])
    assert rc == 0
    return tmp_path / "manifest.csv", tmp_path / "model"


def test_apply_refuses_to_write_sr_paths_into_the_columns_it_reads(tmp_path, train_images, capsys):
    manifest, model = _tiny_cohort_and_model(tmp_path, train_images[:2])
    before = manifest.read_bytes()
    for extra, flag in ((["--column", "image", "--in-place"], "--column"), (["--column", "image"], "--column"),
                        (["--mask-column", "mask", "--no-resample-back"], "--mask-column"),
                        (["--column", "sr", "--mask-column", "sr"], "--mask-column")):
        rc = main(["sr", "apply", str(manifest), "--model", str(model), "--device", "cpu", *extra])
        err = capsys.readouterr().err.strip()
        assert rc == 2, extra
        assert err.startswith("srnomogram: error: ") and "\n" not in err and flag in err and "default" in err, err
    assert manifest.read_bytes() == before  # the input manifest is untouched
    assert not list(tmp_path.glob("*_sr.png")) and not (tmp_path / "manifest_sr.csv").exists()  # nothing computed


def test_apply_refuses_a_manifest_whose_images_are_sr_outputs(tmp_path, train_images, capsys):
    manifest, model = _tiny_cohort_and_model(tmp_path, train_images[:2])
    assert main(["-q", "sr", "apply", str(manifest), "--model", str(model), "--device", "cpu"]) == 0
    sr = pd.read_csv(tmp_path / "manifest_sr.csv")
    # what '--column image --in-place' used to leave behind: SR paths in the image column
    sr.assign(image=sr["image_sr"]).drop(columns=["image_sr", "mask_sr"]).to_csv(tmp_path / "again.csv", index=False)
    rc = main(["sr", "apply", str(tmp_path / "again.csv"), "--model", str(model), "--device", "cpu"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "\n" not in err
    assert "again.csv, row 2" in err and "i0_sr.png is an SR output" in err and "i0.png" in err
    assert not (tmp_path / "again_sr.csv").exists() and not list(tmp_path.glob("*_sr_sr.png"))


def test_apply_refuses_to_overwrite_a_clinical_column_and_rewrites_its_own_sr_columns(tmp_path, train_images, capsys):
    manifest, model = _tiny_cohort_and_model(tmp_path, train_images[:2])
    pd.read_csv(manifest).assign(age=[41, 67], image_us2=["i1.png", "i0.png"]).to_csv(manifest, index=False)
    before = manifest.read_bytes()
    for extra, flag, column in ((["--column", "age", "--in-place"], "--column", "age"),
                                (["--column", "image_us2", "--in-place"], "--column", "image_us2"),
                                (["--mask-column", "age", "--in-place"], "--mask-column", "age"),
                                (["--column", "spacing"], "--column", "spacing")):
        rc = main(["sr", "apply", str(manifest), "--model", str(model), "--device", "cpu", *extra])
        err = capsys.readouterr().err.strip()
        assert rc == 2, extra
        assert err.startswith(f"srnomogram: error: {flag} {column!r} names a column of {manifest} that holds other data (row 2: "), err
        assert "\n" not in err and "new column name" in err
    assert manifest.read_bytes() == before  # byte-identical
    assert not list(tmp_path.glob("*_sr.png")) and not (tmp_path / "manifest_sr.csv").exists()  # nothing computed
    # its own columns, under any name, are rewritten: the default pair, then a named one, in place
    assert main(["-q", "sr", "apply", str(manifest), "--model", str(model), "--device", "cpu", "--in-place"]) == 0
    assert main(["-q", "sr", "apply", str(manifest), "--model", str(model), "--device", "cpu", "--in-place"]) == 0
    assert main(["-q", "sr", "apply", str(manifest), "--model", str(model), "--device", "cpu", "--in-place",
                 "--column", "sr_image", "--mask-column", "sr_mask", "--no-resample-back"]) == 0
    assert main(["-q", "sr", "apply", str(manifest), "--model", str(model), "--device", "cpu", "--in-place",
                 "--column", "sr_image", "--mask-column", "sr_mask", "--no-resample-back"]) == 0
    raw = pd.read_csv(manifest)
    assert raw["age"].tolist() == [41, 67] and raw["image_us2"].tolist() == ["i1.png", "i0.png"]
    assert raw["image_sr"].tolist() == ["i0_sr.png", "i1_sr.png"] and raw["mask_sr"].tolist() == ["i0_m.png", "i1_m.png"]
    assert [p.rsplit("/", 1)[-1] for p in raw["sr_image"]] == ["i0_sr2x.png", "i1_sr2x.png"]
    assert raw["spacing_sr"].tolist() == [0.05, 0.05]
    # the SR image column is not an SR mask column (its paths are not the row's mask) and the reverse
    before = manifest.read_bytes()
    assert main(["sr", "apply", str(manifest), "--model", str(model), "--device", "cpu", "--in-place", "--mask-column", "spacing_sr"]) == 2
    assert "--mask-column 'spacing_sr'" in capsys.readouterr().err and manifest.read_bytes() == before
    raw.assign(spacing_sr=[0.5, 0.05]).to_csv(manifest, index=False)
    before = manifest.read_bytes()
    assert main(["sr", "apply", str(manifest), "--model", str(model), "--device", "cpu", "--in-place", "--no-resample-back",
                 "--column", "sr_image", "--mask-column", "sr_mask"]) == 2
    err = capsys.readouterr().err.strip()
    assert "'spacing_sr' (row 2: 0.5)" in err and "\n" not in err
    assert manifest.read_bytes() == before


def _subparser(parser, *names):
    import argparse

    for name in names:
        parser = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[name]
    return parser


@pytest.mark.parametrize("command", ["train", "apply"])
def test_sr_options_take_their_defaults_from_the_estimator_signature(command):
    """No default is repeated in the CLI: an option not given is not passed, so ``sr train`` builds
    SuperResolver with its own defaults and ``sr apply`` calls apply_manifest with its own, option by
    option, and the help prints the signature's."""
    import argparse
    import inspect

    from srnomogram.cli import build_parser
    from srnomogram.sr import SuperResolver
    from srnomogram.sr._cli import _APPLY_OPTIONS, _ESTIMATOR_OPTIONS, _params

    names, target = (_ESTIMATOR_OPTIONS, SuperResolver) if command == "train" else (_APPLY_OPTIONS, SuperResolver.apply_manifest)
    signature = inspect.signature(target).parameters
    parser = build_parser()
    sub = _subparser(parser, "sr", command)
    options = {a.dest: a for a in sub._actions}
    text = " ".join(sub.format_help().split())
    for name in names:
        assert name in signature and options[name].default is argparse.SUPPRESS, name
        assert f"(default {signature[name].default})" in text, name
    required = ["--out", "o"] if command == "train" else ["--model", "m"]
    args = parser.parse_args(["sr", command, "m.csv", *required])
    assert _params(args, (*names, "resample_back")) == {}  # every default is the signature's
    if command == "train":
        built = SuperResolver(**_params(args)).get_params()
        for name in names:  # each CLI default equals the estimator's
            assert built[name] == signature[name].default, name
        args = parser.parse_args(["sr", "train", "m.csv", "--out", "o", "--generator", "unet", "--generator-param", "levels=3",
                                  "--generator-param", "note=x", "--channels", "4", "--lr", "0.01"])
        assert _params(args) == {"generator": "unet", "generator_params": {"levels": 3, "note": "x"}, "channels": 4, "lr": 0.01}
    else:
        args = parser.parse_args(["sr", "apply", "m.csv", "--model", "m", "--no-resample-back", "--jobs", "2", "--in-place"])
        assert _params(args, (*names, "resample_back")) == {"resample_back": False, "jobs": 2, "in_place": True}
        assert signature["resample_back"].default is True


def test_sr_train_with_another_generator_from_the_command_line(tmp_path, train_images, capsys):
    import json

    rows = []
    for k, img in enumerate(train_images[:2]):
        Image.fromarray(img).save(tmp_path / f"i{k}.png")
        Image.fromarray(np.pad(np.ones((20, 20), np.uint8), 30)).save(tmp_path / f"i{k}_m.png")
        rows.append(dict(case_id=f"i{k}", image=f"i{k}.png", mask=f"i{k}_m.png", label=k % 2))
    pd.DataFrame(rows).to_csv(tmp_path / "manifest.csv", index=False)
    common = ["--iterations", "2", "--batch-size", "2", "--patch-size", "32", "--channels", "4", "--blocks", "0", "--device", "cpu"]
    rc = main(["-q", "sr", "train", str(tmp_path / "manifest.csv"), "--out", str(tmp_path / "model"), "--generator", "unet",
               "--generator-param", "levels=1", *common])
    assert rc == 0
    meta = json.loads((tmp_path / "model" / "meta.json").read_text(encoding="utf-8"))
    assert meta["generator"] == {"generator": "unet", "params": {"channels": 4, "blocks": 0, "scale": 2, "levels": 1}}
    rc = main(["-q", "sr", "train", str(tmp_path / "manifest.csv"), "--out", str(tmp_path / "bad"), "--generator", "srgan", *common])
    assert rc != 0 and "'generator' parameter of SuperResolver.fit must be one of ['edsr', 'unet'" in capsys.readouterr().err
