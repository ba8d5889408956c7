"""Grad-CAM against its closed form for global-average-pooled networks (CAM, Zhou et al. 2016).

For MobileNetV2 and ResNet101 the last conv block feeds global average pooling and one linear
layer, so ∂y_c/∂A_k(i,j) = W_ck / (h·w) and Grad-CAM equals ReLU(Σ_k W_ck A_k) up to a positive
factor, which the per-image scaling to [0, 1] removes.
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from srnomogram.deep.gradcam import GradCamResult, grad_cam, overlay, save_overlays
from srnomogram.deep.networks import build_model, classifier_layer, last_conv_layer


def _cam_reference(model, arch, x, target):
    model.eval()
    with torch.no_grad():
        if arch == "mobilenet_v2":
            a = model.features(x)
        else:
            m = model
            a = m.layer4(m.layer3(m.layer2(m.layer1(m.maxpool(m.relu(m.bn1(m.conv1(x))))))))
        w = classifier_layer(model, arch).weight[target]  # (B, K)
        cam = F.relu(torch.einsum("bk,bkhw->bhw", w, a))[:, None]
        cam = F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
        peak = cam.amax((1, 2), keepdim=True)
        return torch.where(peak > 0, cam / peak, torch.zeros_like(cam))  # an all-zero map stays zero


@pytest.mark.parametrize("arch,size", [("mobilenet_v2", 96), ("resnet101", 64)])
def test_grad_cam_equals_the_closed_form_cam(arch, size):
    torch.manual_seed(0)
    model = build_model(arch, "none")
    x = torch.randn(3, 3, size, size)
    cam, logits = grad_cam(model, last_conv_layer(model, arch), x, target=None)
    tgt = logits.argmax(1)
    ref = _cam_reference(model, arch, x, tgt)
    assert cam.shape == (3, size, size)
    assert (cam.amax((1, 2)) == 1).all()  # non-zero maps for this seed, so the scaling is tested
    torch.testing.assert_close(cam, ref, rtol=1e-4, atol=1e-5)
    # explaining the other class gives that class's map
    cam1, _ = grad_cam(model, last_conv_layer(model, arch), x, target=1)
    torch.testing.assert_close(cam1, _cam_reference(model, arch, x, torch.ones(3, dtype=torch.long)), rtol=1e-4, atol=1e-5)


def test_grad_cam_removes_its_hook():
    torch.manual_seed(0)
    model = build_model("mobilenet_v2", "none")
    layer = last_conv_layer(model, "mobilenet_v2")
    grad_cam(model, layer, torch.randn(1, 3, 64, 64))
    assert len(layer._forward_hooks) == 0


def test_peak_in_mask_and_overlay_files(tmp_path):
    cams = np.zeros((2, 8, 8), np.float32)
    cams[0, 2, 3] = 1
    cams[1, 7, 7] = 1
    masks = np.zeros((2, 8, 8), bool)
    masks[:, 1:4, 1:4] = True
    res = GradCamResult(["a/1", "b"], cams, np.full((2, 8, 8), 0.5, np.float32), masks, np.array([0.2, 0.9]), np.array([0, 1]))
    assert res.peak_in_mask().tolist() == [True, False]
    rgb = overlay(res.images[0], res.cams[0], alpha=0.0)
    assert rgb.shape == (8, 8, 3) and (rgb == 128).all()
    paths = save_overlays(res, tmp_path)
    assert [p.name for p in paths] == ["gradcam_a_1~773232abe9343f0e.png", "gradcam_b.png"]
    from PIL import Image

    assert Image.open(paths[1]).size == (8, 8)


def test_overlay_file_names_stay_in_the_folder_and_never_collide(tmp_path):
    """Case ids are user data: "a/1" must not overwrite "a_1"'s overlay, nor "../x" leave the folder."""
    ids = ["a/1", "a_1", "../../x", "x", "CON", "..", "A1", "a1"]
    n = len(ids)
    res = GradCamResult(ids, np.zeros((n, 8, 8), np.float32), np.full((n, 8, 8), 0.5, np.float32), np.zeros((n, 8, 8), bool), np.zeros(n), np.zeros(n, int))
    out = tmp_path / "a" / "b"
    paths = save_overlays(res, out)
    assert len({p.name.casefold() for p in paths}) == n
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in paths)
    assert [p for p in tmp_path.rglob("*") if p.is_file() and p.parent != out] == []
    assert paths[1].name == "gradcam_a_1.png" and paths[3].name == "gradcam_x.png"  # plain ids keep their names
