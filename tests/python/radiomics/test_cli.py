"""``srnomogram radiomics extract|fit`` call the API and write what they say."""

from __future__ import annotations

import numpy as np
import pandas as pd

from srnomogram.cli import main
from srnomogram.data.manifest import write_manifest
from srnomogram.radiomics.extraction import extract


def test_extract_writes_parquet_and_csv_equal_to_the_api(breast_sample, tmp_path):
    manifest = write_manifest(breast_sample.iloc[:2], tmp_path / "manifest.csv")
    assert main(["-q", "radiomics", "extract", str(manifest), "-o", str(tmp_path / "f.parquet"), "-j", "1"]) == 0
    assert main(["-q", "radiomics", "extract", str(manifest), "-o", str(tmp_path / "f.csv"), "-j", "1", "--board", str(tmp_path / "board")]) == 0
    api = extract(breast_sample.iloc[:2], jobs=1, progress=False)
    pq = pd.read_parquet(tmp_path / "f.parquet")
    pd.testing.assert_frame_equal(pq, api)
    csv = pd.read_csv(tmp_path / "f.csv", index_col="case_id")
    np.testing.assert_allclose(csv.to_numpy(), api.to_numpy(), rtol=1e-15)
    from srnomogram.board import read_pin

    assert read_pin(tmp_path / "board", "radiomics_features_or").shape[1] >= 107


def test_fit_writes_table2_scores_and_models(tmp_path):
    rng = np.random.default_rng(0)
    n = 60
    img = tmp_path / "img.png"
    from PIL import Image

    Image.fromarray(np.zeros((4, 4), np.uint8)).save(img)
    y = (np.arange(n) % 3 == 0).astype(int)
    ids = [f"c{i:02d}" for i in range(n)]
    man = pd.DataFrame({"case_id": ids, "image": "img.png", "mask": "img.png", "label": y, "spacing": 0.1, "split": np.where(np.arange(n) % 4 == 0, "test", "train")})
    man.to_csv(tmp_path / "manifest.csv", index=False)
    X = pd.DataFrame(rng.normal(size=(n, 5)) + y[:, None] * [1.5, 1.0, 0, 0, 0.5], index=pd.Index(ids, name="case_id"), columns=[f"original_firstorder_F{i}" for i in range(5)])
    X.to_parquet(tmp_path / "or.parquet")
    out = tmp_path / "out"
    assert main(["-q", "radiomics", "fit", str(tmp_path / "manifest.csv"), "--features", str(tmp_path / "or.parquet"), "-o", str(out)]) == 0
    t2 = pd.read_csv(out / "radiomics_table2.csv")
    assert list(t2["model"]) == ["or_lr", "or_lr", "or_svm", "or_svm"]  # the id is the key, the label a column
    assert list(t2["label"]) == ["OR_LR", "OR_LR", "OR_SVM", "OR_SVM"]
    assert (out / "or_lr.joblib").is_file() and (out / "radiomics_scores.csv").is_file()
    # a manifest without split and no --split-seed: a one-line error, exit status 2
    man.drop(columns="split").to_csv(tmp_path / "nosplit.csv", index=False)
    assert main(["-q", "radiomics", "fit", str(tmp_path / "nosplit.csv"), "--features", str(tmp_path / "or.parquet"), "-o", str(out)]) == 2


def test_extract_on_a_dask_scheduler_writes_the_local_features(demo_dir, dask_cluster, tmp_path, capsys):
    import dask

    from srnomogram.data.manifest import load_manifest

    df = load_manifest(demo_dir / "manifest.csv").iloc[:3]
    manifest = write_manifest(df, tmp_path / "manifest.csv")
    assert main(["-q", "radiomics", "extract", str(manifest), "-o", str(tmp_path / "f.parquet"), "--scheduler", dask_cluster.scheduler_address]) == 0
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "f.parquet"), extract(df, jobs=1, progress=False), check_exact=True)
    capsys.readouterr()
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        assert main(["-q", "radiomics", "extract", str(manifest), "-o", str(tmp_path / "g.parquet"), "--scheduler", "tcp://127.0.0.1:1"]) == 2
    err = capsys.readouterr().err
    assert "Could not reach the Dask scheduler at tcp://127.0.0.1:1" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "g.parquet").exists()


def test_extract_with_an_invalid_params_file_is_one_line_and_writes_nothing(tmp_path, capsys):
    from PIL import Image

    img = np.zeros((16, 16), np.uint8)
    img[4:12, 4:12] = 200
    Image.fromarray(img).save(tmp_path / "a.png")
    Image.fromarray((img > 0).astype(np.uint8)).save(tmp_path / "a_m.png")
    pd.DataFrame([dict(case_id="a", image="a.png", mask="a_m.png", label=0, spacing=0.1)]).to_csv(tmp_path / "m.csv", index=False)
    params = tmp_path / "params.yaml"
    params.write_text("setting:\n  binWidht: 25\n")
    rc = main(["radiomics", "extract", str(tmp_path / "m.csv"), "--params", str(params), "-o", str(tmp_path / "f.csv"), "-j", "1"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "\n" not in err
    assert f"PyRadiomics parameter file {params} is invalid at setting: Key 'binWidht' was not defined" in err
    assert not (tmp_path / "f.csv").exists()
