"""The network registry: a network added by one ``register_network`` call trains, scores, explains and
saves like the built-ins, and every choice (config, CLI, model ids and labels) sees it."""

import numpy as np
import pytest
from torch import nn

from srnomogram import names
from srnomogram.deep import DeepClassifier
from srnomogram.deep.networks import (
    NetworkSpec,
    build_model,
    get_network,
    last_conv_layer,
    network_names,
    register_network,
    unregister_network,
)
from srnomogram.errors import InputError

from .conftest import cam_reference


class TinyCNN(nn.Module):
    """Two convolutions, global average pooling and a linear head: CAM's architecture (Zhou et al. 2016)."""

    def __init__(self, num_classes=10):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU())
        self.fc = nn.Linear(16, num_classes)

    def forward(self, x):
        return self.fc(self.features(x).mean(dim=(2, 3)))


TINY_SPEC = NetworkSpec("tiny_cnn", builder=lambda weights=None: TinyCNN(), head="fc", gradcam_layer="features", label="TinyCNN", paper_label="Tiny_cnn")
KW = dict(arch="tiny_cnn", weights="none", epochs=1, batch_size=8, lr=0.01, image_size=32, margin=0.5, progress=False, device="cpu")


@pytest.fixture
def tiny():
    register_network(TINY_SPEC)
    try:
        yield TINY_SPEC
    finally:
        unregister_network("tiny_cnn")


def test_a_network_registered_in_a_test_trains_scores_explains_and_reloads(tiny, demo_split, tmp_path):
    df, _ = demo_split
    tr, te = df[df.split == "train"], df[df.split == "test"]
    clf = DeepClassifier(**KW).fit(tr)
    assert isinstance(clf.model_, TinyCNN) and clf.model_.fc.out_features == 2
    assert len(clf.loss_history_) == 4 and np.all(np.isfinite(clf.loss_history_))  # 28 lesions, batches of 8
    p = clf.predict_proba(te)
    assert p.shape == (len(te), 2) and np.all(np.isfinite(p))
    np.testing.assert_allclose(p.sum(1), 1, atol=1e-6)

    # Grad-CAM on the declared layer equals CAM for conv -> global average pool -> linear
    cam, ref = cam_reference(clf, te, clf.model_.features, clf.model_.fc, 32)
    assert cam.cams.shape == (len(te), 32, 32)
    np.testing.assert_allclose(cam.cams, ref, atol=1e-5)
    np.testing.assert_allclose(cam.proba, p[:, 1], atol=1e-6)

    loaded = DeepClassifier.load(clf.save(tmp_path / "ck"), device="cpu")
    np.testing.assert_array_equal(loaded.predict_proba(te), p)


def test_a_registered_network_gets_ids_labels_and_a_place_in_table2(tiny):
    assert "tiny_cnn" in network_names() and get_network("tiny_cnn") is TINY_SPEC
    assert names.model_id("sr", "tiny_cnn") == "sr_tiny_cnn"
    assert names.label("sr_tiny_cnn") == "SR-TinyCNN" and names.label("or_tiny_cnn", style="paper") == "ORTiny_cnn"
    assert names.model_ids()[-2:] == ["or_tiny_cnn", "sr_tiny_cnn"]
    model = build_model("tiny_cnn", "none")
    assert last_conv_layer(model, "tiny_cnn") is model.features
    with pytest.raises(InputError, match="tiny_cnn has no pretrained weights"):
        build_model("tiny_cnn", "imagenet")


def test_study_config_and_cli_choices_include_a_registered_network(tiny, tmp_path):
    from srnomogram.cli import build_parser
    from srnomogram.errors import ConfigError
    from srnomogram.study.config import config_from_dict

    cfg = config_from_dict({"cohort": {"manifest": "m.csv"}, "deep": {"archs": ["tiny_cnn", "resnet101"]}}, base_dir=tmp_path)
    assert cfg.deep.archs == ("tiny_cnn", "resnet101")
    args = build_parser().parse_args(["deep", "train", "m.csv", "--out", str(tmp_path), "--arch", "tiny_cnn"])
    assert args.arch == "tiny_cnn"
    unregister_network("tiny_cnn")
    try:
        with pytest.raises(ConfigError, match="deep.archs"):
            config_from_dict({"cohort": {"manifest": "m.csv"}, "deep": {"archs": ["tiny_cnn"]}}, base_dir=tmp_path)
        with pytest.raises(SystemExit):
            build_parser().parse_args(["deep", "train", "m.csv", "--out", str(tmp_path), "--arch", "tiny_cnn"])
    finally:
        register_network(TINY_SPEC)


def test_the_built_in_specs_match_torchvision_and_bad_specs_are_refused():
    assert network_names()[:2] == ("mobilenet_v2", "resnet101")
    model = build_model("mobilenet_v2", "none")
    assert last_conv_layer(model, "mobilenet_v2") is model.features[-1]  # the 1x1 conv to 1280 channels
    assert last_conv_layer(model, "mobilenet_v2")[0].out_channels == 1280
    with pytest.raises(InputError, match="a name not yet registered"):
        register_network(get_network("resnet101"))
    with pytest.raises(InputError, match="lower-case letters"):
        register_network(NetworkSpec("Tiny-CNN", builder=TinyCNN, head="fc", gradcam_layer="features", label="x", paper_label="x"))
    with pytest.raises(InputError, match=r"The 'arch' parameter of build_model must be one of \['mobilenet_v2', 'resnet101'"):
        build_model("vgg16")
