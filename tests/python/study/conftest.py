"""Helpers shared by the study tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml


def run_small_study(root: Path, sections: dict, n: int | None = None, manifest=None, output: str = "out"):
    """Write ``sections`` as ``root/study.yaml`` and run it; returns ``run_study``'s report path.

    The cohort is ``manifest``, or else a demo cohort of ``n`` 2D lesions (seed 0) written under
    ``root/cohort``; the output folder is ``root/output``.
    """
    from srnomogram.data import demo_cohort
    from srnomogram.study import load_config, run_study

    if manifest is None:
        manifest = demo_cohort(root / "cohort", n=n, seed=0, n_volumes=0)
    study = sections.get("study", {})
    cohort = sections.get("cohort", {})
    cfg = {**sections, "study": {**study, "output": str(root / output)}, "cohort": {**cohort, "manifest": str(manifest)}}
    (root / "study.yaml").write_text(yaml.safe_dump(cfg))
    return run_study(load_config(root / "study.yaml"))


def assert_models_labelled(board: Path) -> list[str]:
    """Every table pin of ``board`` with a ``model`` id column has the models' display ``label`` right after
    it (names.label of each id); returns the names of those pins."""
    from srnomogram import names
    from srnomogram.board import list_pins, pin_meta, read_pin

    found = []
    for name in list_pins(board):
        if pin_meta(board, name)["pin_type"] != "csv":
            continue
        df = read_pin(board, name)
        if "model" in df.columns:
            cols = list(df.columns)
            assert cols[cols.index("model") + 1] == "label", (name, cols)
            assert df["label"].tolist() == [names.label(m) for m in df["model"]], name
            found.append(name)
    return found


@pytest.fixture(scope="session")
def study(tmp_path_factory):
    """A tiny trained study (demo cohort of 48 lesions; tiny SR, LR + SVM, one MobileNetV2, 3 epochs at 32 px),
    trained once per session (about 2 min on 2 cores) for the tests that apply it (test_external.py,
    test_update.py); they only read it. Its output folder."""
    root = tmp_path_factory.mktemp("ext_study")
    run_small_study(root, {
        "study": {"name": "tiny", "subgroups": ["age:50"]},  # held-out statistics per age band (heldout_subgroups)
        "sr": {"params": {"iterations": 4, "patch_size": 32, "batch_size": 4, "channels": 8, "blocks": 1, "device": "cpu"}},
        "radiomics": {"jobs": 1},
        "deep": {"archs": ["mobilenet_v2"], "images": ["or"], "weights": "none", "epochs": 3, "batch_size": 8, "lr": 0.01, "device": "cpu",
                 "params": {"image_size": 32}},
        "nomogram": {"calibration_b": 20, "best_model_rule": "train_auc"},
        "report": {"formats": ["png"]},
    }, n=48)
    return root / "out"
