"""Deep-model fixtures: demo cohorts with a split, and one small model trained on the demo (CPU)."""

import pytest

from srnomogram.data import load_manifest, stratified_split, write_manifest

# Small enough for two CPU cores: 40 demo lesions (28 train), 64 px inputs.
TINY = dict(weights="none", epochs=2, batch_size=8, lr=0.01, image_size=64, margin=0.5, progress=False, device="cpu")
# The "learns" fixture: 120 demo lesions (84 train / 36 test) at 32 px, 12 epochs. A random-init
# MobileNetV2 cannot generalise from 28 lesions, and 12 test lesions make a noisy AUC. Batches of 14
# split the 84 lesions evenly: with 16 the sixth batch held 4 lesions, whose BatchNorm statistics
# (1 x 1 feature maps at 32 px) made training a coin flip that depended on the CPU's kernels and
# thread count (no learning on an AMD EPYC, AUC 0.54). With 14 every seed and kernel path tried
# learns (see test_training_loss_falls_and_test_auc_beats_chance). Those margins were measured in
# float32, so the fixture asks for it: amp="auto" trains in bf16 on CPUs with AVX-512 BF16 or AMX.
LEARN = dict(weights="none", epochs=12, batch_size=14, lr=0.01, image_size=32, margin=0.5, progress=False, device="cpu", amp="none")


def cam_reference(clf, te, features, head, size):
    """CAM of ``clf``'s Grad-CAM targets on lesions ``te``: ReLU(sum_k w_ck A_k) on the eval crop, upsampled
    to ``size`` and scaled to a peak of 1, from the activations ``features(x)`` and the linear ``head``.

    For conv -> global average pool -> linear, the gradient of logit c with respect to A_k(i, j) is
    w_ck / (h w), so Grad-CAM equals this (Selvaraju et al. 2017, section 3.1): an independent
    reference from the weights alone. Returns ``(Grad-CAM result, reference maps)``.
    """
    import torch
    import torch.nn.functional as F

    from srnomogram.deep.data import load_rois
    from srnomogram.deep.presets import EvalPreset, precrop_size

    cam = clf.gradcam(te)
    rois = load_rois(te, "image", size=precrop_size(size), margin=clf.margin, progress=False)
    x = EvalPreset(size, clf.normalization_["mean"], clf.normalization_["std"])(rois.images)
    with torch.no_grad():
        a = features(x)
        w = head.weight[torch.as_tensor(cam.target)]
        ref = F.relu((w[:, :, None, None] * a).sum(1, keepdim=True))
        ref = F.interpolate(ref, size=(size, size), mode="bilinear", align_corners=False)[:, 0]
        peak = ref.amax(dim=(1, 2), keepdim=True)
        ref = torch.where(peak > 0, ref / peak.clamp_min(1e-12), torch.zeros_like(ref)).numpy()
    return cam, ref


def _split(df, path):
    df = df.copy()
    df["split"] = stratified_split(df, test_size=0.3, seed=0).to_numpy()
    return df, write_manifest(df, path)


@pytest.fixture(scope="session")
def demo_split(demo_dir, tmp_path_factory):
    """The 40-lesion demo cohort with a stratified 70/30 split, as a DataFrame and a manifest file."""
    return _split(load_manifest(demo_dir / "manifest.csv"), tmp_path_factory.mktemp("deep") / "manifest.csv")


@pytest.fixture(scope="session")
def demo120_split(tmp_path_factory):
    from srnomogram.data import demo_cohort

    path = tmp_path_factory.mktemp("demo120")
    demo_cohort(path, n=120, seed=0, n_volumes=0)
    return _split(load_manifest(path / "manifest.csv"), path / "split.csv")


@pytest.fixture(scope="session")
def fitted(demo120_split):
    from srnomogram.deep import DeepClassifier

    df, _ = demo120_split
    return DeepClassifier(**LEARN).fit(df[df.split == "train"])


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No network: every socket, DNS lookup and urlopen raises (and is recorded, so that a caller that
    swallows the error still fails the test), and TORCH_HOME is an empty temporary folder."""
    import socket
    import urllib.request

    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args[:2])
        raise OSError("network access in an offline test")

    for name in ("socket", "create_connection", "getaddrinfo"):
        monkeypatch.setattr(socket, name, refuse)
    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    yield attempts
    assert not attempts, f"network access attempted: {attempts}"
