"""``srnomogram deep train/predict/gradcam`` on the demo cohort (1 epoch, 64 px)."""

import json

import numpy as np
import pandas as pd
import pytest

from srnomogram.cli import main


def test_deep_train_writes_every_output_and_predict_reproduces_the_scores(demo_split, tmp_path):
    df, manifest = demo_split
    out, board = tmp_path / "out", tmp_path / "board"
    rc = main(["-q", "deep", "train", str(manifest), "--arch", "mobilenet_v2", "--image-col", "image", "--weights", "none", "--epochs", "1", "--batch-size", "8", "--image-size", "64", "--device", "cpu", "--out", str(out), "--board", str(board), "--gradcam", "3"])
    assert rc == 0
    scores = pd.read_csv(out / "scores.csv", dtype={"case_id": str})
    assert list(scores.columns) == ["case_id", "split", "label", "deep_score", "model"]
    assert scores.case_id.tolist() == df.case_id.tolist() and (scores.model == "ORMobileNet_v2").all()
    assert scores.deep_score.between(0, 1).all()
    loss = pd.read_csv(out / "loss.csv")
    assert list(loss.columns) == ["iteration", "epoch", "loss"] and len(loss) == 4  # 28 train lesions / 8
    assert (out / "loss.png").stat().st_size > 1000
    assert len(list((out / "gradcam").glob("gradcam_*.png"))) == 3
    t2 = pd.read_csv(out / "table2.csv")
    assert t2.set.tolist() == ["train", "test"] and (t2.model == "or_mobilenet_v2").all() and (t2.label == "ORMobileNet_v2").all()
    from sklearn.metrics import roc_auc_score

    te = scores[scores.split == "test"]
    assert t2.auc[1] == pytest.approx(roc_auc_score(te.label, te.deep_score), abs=1e-12)
    cfg = json.loads((out / "config.json").read_text(encoding="utf-8"))
    assert cfg["name"] == "ORMobileNet_v2" and cfg["params"]["epochs"] == 1
    from srnomogram.board import read_pin

    pin = read_pin(board, "scores_or_mobilenet_v2")
    assert list(pin.columns) == ["case_id", "split", "label", "score"]
    np.testing.assert_allclose(pin.score.to_numpy(), scores.deep_score.to_numpy(), rtol=0, atol=1e-12)
    pd.testing.assert_frame_equal(read_pin(board, "loss_history_or_mobilenet_v2"), loss)

    rc = main(["-q", "deep", "predict", str(out / "checkpoint"), str(manifest), "-o", str(tmp_path / "pred.csv"), "--device", "cpu"])
    assert rc == 0
    pred = pd.read_csv(tmp_path / "pred.csv", dtype={"case_id": str})
    np.testing.assert_allclose(pred.deep_score.to_numpy(), scores.deep_score.to_numpy(), rtol=0, atol=1e-6)
    # the --out folder of deep train itself is accepted too (its checkpoint/ is found)
    assert main(["-q", "deep", "predict", str(out), str(manifest), "-o", str(tmp_path / "pred2.csv"), "--device", "cpu"]) == 0
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "pred2.csv"), pd.read_csv(tmp_path / "pred.csv"))

    rc = main(["-q", "deep", "gradcam", str(out / "checkpoint"), str(manifest), "--out", str(tmp_path / "gc"), "--split", "test", "--device", "cpu"])
    assert rc == 0 and len(list((tmp_path / "gc").glob("*.png"))) == (df.split == "test").sum()


def test_deep_train_without_split_column_is_a_clear_error(demo_dir, tmp_path, capsys):
    rc = main(["deep", "train", str(demo_dir / "manifest.csv"), "--weights", "none", "--out", str(tmp_path)])
    assert rc == 2
    assert "no 'split' column" in capsys.readouterr().err


def test_deep_predict_with_corrupted_checkpoint_exits_with_a_message(demo_split, tmp_path, capsys):
    (tmp_path / "ck").mkdir()
    (tmp_path / "ck" / "meta.json").write_text("{}")
    (tmp_path / "ck" / "model.pt").write_bytes(b"junk")
    rc = main(["deep", "predict", str(tmp_path / "ck"), str(demo_split[1]), "-o", str(tmp_path / "p.csv")])
    assert rc == 2
    assert "corrupted" in capsys.readouterr().err
