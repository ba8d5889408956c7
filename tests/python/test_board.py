"""Board: CSV pins with provenance, index round trip, and the pickle rules."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
import yaml

from srnomogram import board
from srnomogram.errors import InputError


def _features():
    return pd.DataFrame(
        {"original_shape_Elongation": [0.5, 0.25, 1.0], "label": [0, 1, 1]},
        index=pd.Index(["001", "002", "010"], name="case_id"),
    )


def test_write_then_read_returns_the_same_table_with_string_ids(tmp_path):
    df = _features()
    version = board.write_pin(tmp_path, "radiomics_features", df, metadata={"seed": 7})
    back = board.read_pin(tmp_path, "radiomics_features")
    pd.testing.assert_frame_equal(back, df)
    assert back.index.tolist() == ["001", "002", "010"]  # leading zeros survive
    assert board.pin_versions(tmp_path, "radiomics_features") == [version]
    assert board.list_pins(tmp_path) == ["radiomics_features"]  # not the board's marker file


def test_model_scores_is_the_one_pin_schema_of_a_models_scores():
    wide = pd.DataFrame({"case_id": ["001", "002"], "split": ["train", "test"], "label": [0, 1], "or_lr": [0.25, 0.5], "sr_lr": [0.0, 1.0]})
    one = board.model_scores(wide, "sr_lr")
    assert list(one.columns) == list(board.SCORE_COLUMNS) and one["score"].tolist() == [0.0, 1.0]
    assert board.scores_pin_name("sr_lr") == "scores_sr_lr"
    with pytest.raises(InputError, match="no column 'or_svm'"):
        board.model_scores(wide, "or_svm")


def test_pin_metadata_carries_provenance_and_caller_fields(tmp_path):
    from importlib import metadata

    board.write_pin(
        tmp_path, "scores", _features(), metadata={"seed": np.int64(3), "input_hashes": {"manifest": "ab" * 32}}
    )
    meta = board.pin_meta(tmp_path, "scores")
    assert meta["seed"] == 3 and isinstance(meta["seed"], int)
    assert meta["input_hashes"] == {"manifest": "ab" * 32}
    assert meta["versions"]["pandas"] == metadata.version("pandas")
    assert meta["pyradiomics_version"] == metadata.version("pyradiomics")
    assert meta["pin_type"] == "csv"
    # the metadata lives in pins' own data.txt, where R's pins::pin_meta reads it
    (data_txt,) = (tmp_path / "scores").glob("*/data.txt")
    assert yaml.safe_load(data_txt.read_text(encoding="utf-8"))["user"]["seed"] == 3


def test_new_content_makes_a_new_version_and_old_versions_stay_readable(tmp_path):
    df = _features()
    v1 = board.write_pin(tmp_path, "scores", df)
    df2 = df.assign(label=[1, 1, 1])
    v2 = board.write_pin(tmp_path, "scores", df2)
    assert v1 != v2
    pd.testing.assert_frame_equal(board.read_pin(tmp_path, "scores", version=v1), df)
    pd.testing.assert_frame_equal(board.read_pin(tmp_path, "scores"), df2)


def test_csv_is_plain_and_readable_without_pins(tmp_path):
    board.write_pin(tmp_path, "scores", _features())
    (csv,) = (tmp_path / "scores").glob("*/scores.csv")
    raw = pd.read_csv(csv, dtype={"case_id": str})
    assert list(raw.columns) == ["case_id", "original_shape_Elongation", "label"]


def test_bad_names_and_missing_pins_are_one_line_errors(tmp_path):
    with pytest.raises(InputError, match="'name' parameter of write_pin must be a snake_case"):
        board.write_pin(tmp_path, "Scores!", _features())
    board.write_pin(tmp_path, "scores", _features())
    with pytest.raises(board.BoardError, match="pin 'nothing' not found"):
        board.read_pin(tmp_path, "nothing")
    with pytest.raises(board.BoardError, match="not found"):
        board.read_pin(tmp_path / "absent", "scores")


def test_pickles_need_allow_pickle(tmp_path):
    board.write_object(tmp_path, "lr_model", {"coef": [1.0, 2.0]})
    with pytest.raises(board.BoardError, match="allow_pickle=True"):
        board.read_pin(tmp_path, "lr_model")
    assert board.read_pin(tmp_path, "lr_model", allow_pickle=True) == {"coef": [1.0, 2.0]}


def test_pickles_are_not_read_from_a_board_the_user_did_not_create(tmp_path):
    board.write_object(tmp_path, "lr_model", {"coef": [1.0]})
    (tmp_path / board.MARKER).unlink()  # e.g. a board copied from elsewhere
    with pytest.raises(board.BoardError, match="not created by the current user"):
        board.read_object(tmp_path, "lr_model", allow_pickle=True)


def test_pickles_are_not_read_when_others_can_write_the_board(tmp_path):
    board.write_object(tmp_path, "lr_model", {"coef": [1.0]})
    os.chmod(tmp_path, 0o777)
    try:
        with pytest.raises(board.BoardError, match="writable by others"):
            board.read_object(tmp_path, "lr_model", allow_pickle=True)
    finally:
        os.chmod(tmp_path, 0o755)


def test_file_pin_returns_the_same_bytes_and_refuses_a_changed_file(tmp_path):
    src = tmp_path / "maps.npz"
    np.savez(src, case_id=np.array(["a", "b"]), cam=np.arange(6.0).reshape(2, 3))
    board.write_file_pin(tmp_path / "b", "gradcam_or_lr", src, metadata={"seed": 3})
    path = board.read_file_pin(tmp_path / "b", "gradcam_or_lr")
    assert path.read_bytes() == src.read_bytes()
    with np.load(path) as d:  # allow_pickle=False: plain arrays only
        assert d["case_id"].tolist() == ["a", "b"]
    meta = board.pin_meta(tmp_path / "b", "gradcam_or_lr")
    assert meta["seed"] == 3 and meta["pin_type"] == "file"
    board.write_pin(tmp_path / "b", "scores", pd.DataFrame({"a": [1]}))
    with pytest.raises(board.BoardError, match="read_file_pin reads 'file' pins"):
        board.read_file_pin(tmp_path / "b", "scores")
    path.write_bytes(b"changed")
    with pytest.raises(board.BoardError, match="does not match its SHA-256"):
        board.read_file_pin(tmp_path / "b", "gradcam_or_lr")
    with pytest.raises(InputError, match="must be an existing file"):
        board.write_file_pin(tmp_path / "b", "gradcam_x", tmp_path / "missing.npz")


def test_r_reads_a_file_pins_npz_exactly_as_numpy_wrote_it(tmp_path):
    """R's read_file_pin + read_npz (base R, for the Grad-CAM figure) give NumPy's arrays: strings, float32,
    float64, booleans, uint8, C and Fortran order, shapes and index order unchanged."""
    pytest.importorskip("rpy2")
    import numpy as np

    from srnomogram import stats
    from srnomogram.board import write_file_pin

    rng = np.random.default_rng(0)
    arrays = {"case_id": np.array(["demo001", "lésion2"]), "cam": rng.random((2, 3, 4)).astype(np.float32),
              "image": rng.random((2, 3, 4)), "mask": rng.random((2, 3, 4)) > 0.5,
              "u8": rng.integers(0, 255, (2, 3), dtype=np.uint8), "fortran": np.asfortranarray(rng.random((3, 2)))}
    np.savez_compressed(tmp_path / "maps.npz", **arrays)
    write_file_pin(tmp_path / "board", "gradcam_or_lr", tmp_path / "maps.npz")
    path = stats.call("read_file_pin", str(tmp_path / "board"), "gradcam_or_lr")
    got = stats.call("read_npz", str(np.asarray(path).ravel()[0]))
    assert sorted(got) == sorted(arrays)
    for k, want in arrays.items():
        assert got[k].shape == want.shape, k
        np.testing.assert_array_equal(got[k].astype(want.dtype), want, err_msg=k)


def _edit_first_number(csv_path, new="0.999"):
    """Change the first row's second cell of a CSV in place, as a hand edit of a table would."""
    lines = csv_path.read_text(encoding="utf-8").splitlines()
    cells = lines[1].split(",")
    cells[1] = new
    lines[1] = ",".join(cells)
    csv_path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_pin_records_the_sha256_of_exactly_the_bytes_pins_wrote(tmp_path):
    import hashlib

    df = _features().assign(score=[0.125, np.nan, 1 / 3])
    board.write_pin(tmp_path, "scores", df)
    (csv,) = (tmp_path / "scores").glob("*/scores.csv")
    table = df.rename_axis("case_id").reset_index()
    assert csv.read_bytes() == table.to_csv(index=False).encode("utf-8")
    assert board.pin_meta(tmp_path, "scores")["content_sha256"] == hashlib.sha256(csv.read_bytes()).hexdigest()


def test_an_edited_csv_pin_is_refused_on_read_naming_pin_board_and_stage(tmp_path):
    df = pd.DataFrame({"model": ["or_lr", "sr_lr"], "auc": [0.812, 0.845]})
    board.write_pin(tmp_path, "table2", df, metadata={"stage": "table2"})
    pd.testing.assert_frame_equal(board.read_pin(tmp_path, "table2"), df)
    (csv,) = (tmp_path / "table2").glob("*/table2.csv")
    _edit_first_number(csv)
    assert pd.read_csv(csv)["auc"].tolist() == [0.999, 0.845]  # the edit is there to be read
    with pytest.raises(board.BoardError, match=r"Pin 'table2' on board .* was changed after it was written: table2\.csv .*"
                                               r"--force table2") as err:
        board.read_pin(tmp_path, "table2")
    assert str(tmp_path) in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(board.BoardError, match="changed after it was written"):
        board.verify_pin(tmp_path, "table2")
    # rewriting the same table (what --force STAGE does) makes a fresh version, although pins would
    # take the unchanged table for the edited file's "identical" content
    board.write_pin(tmp_path, "table2", df, metadata={"stage": "table2"})
    pd.testing.assert_frame_equal(board.read_pin(tmp_path, "table2"), df)
    assert len(board.pin_versions(tmp_path, "table2")) == 2


def test_a_pin_without_a_stage_names_the_command_that_wrote_it(tmp_path):
    board.write_pin(tmp_path, "scores", _features())
    (csv,) = (tmp_path / "scores").glob("*/scores.csv")
    _edit_first_number(csv)
    with pytest.raises(board.BoardError, match="rewrite it with the command that wrote it"):
        board.read_pin(tmp_path, "scores")


def test_pins_recorded_with_the_earlier_length_prefixed_hash_still_read(tmp_path):
    """Boards written before content_sha256 was the file's plain SHA-256 held hash_bytes(csv text)."""
    from srnomogram.utils import hash_bytes

    df = pd.DataFrame({"a": [1.5, 2.5]})
    board.write_pin(tmp_path, "scores", df)
    (txt,) = (tmp_path / "scores").glob("*/data.txt")
    meta = yaml.safe_load(txt.read_text(encoding="utf-8"))
    meta["user"]["content_sha256"] = hash_bytes(df.to_csv(index=False))
    txt.write_text(yaml.safe_dump(meta), encoding="utf-8")
    pd.testing.assert_frame_equal(board.read_pin(tmp_path, "scores"), df)
    (csv,) = (tmp_path / "scores").glob("*/scores.csv")
    csv.write_text("a\n0.999\n2.5\n", encoding="utf-8")
    with pytest.raises(board.BoardError, match="changed after it was written"):
        board.read_pin(tmp_path, "scores")


def test_rewriting_an_edited_file_pin_makes_a_fresh_version(tmp_path):
    src = tmp_path / "split_info.json"
    src.write_text('{"n_train": 96}', encoding="utf-8")
    board.write_file_pin(tmp_path / "b", "split_info", src, metadata={"stage": "split"})
    path = board.read_file_pin(tmp_path / "b", "split_info")
    path.write_text('{"n_train": 9}', encoding="utf-8")
    with pytest.raises(board.BoardError, match="--force split"):
        board.read_file_pin(tmp_path / "b", "split_info")
    board.write_file_pin(tmp_path / "b", "split_info", src, metadata={"stage": "split"})
    assert board.read_file_pin(tmp_path / "b", "split_info").read_text(encoding="utf-8") == '{"n_train": 96}'
