"""Grad-CAM (Selvaraju et al., ICCV 2017) of the last convolutional layer, and its overlays.

For a class ``c`` with logit ``y_c`` and the target layer's activations ``A_k`` (k channels),
the channel weights are the spatially averaged gradients ``α_k = mean_ij ∂y_c/∂A_k(i,j)`` and the
map is ``ReLU(Σ_k α_k A_k)``, upsampled bilinearly to the input size and scaled to [0, 1] per
image (an all-zero map stays zero). Yang & Ma showed these maps over the ROI (their Figure 5).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F


def grad_cam(model: torch.nn.Module, layer: torch.nn.Module, x: torch.Tensor, target=None):
    """Grad-CAM maps of ``layer`` for a batch.

    Parameters
    ----------
    model : torch.nn.Module
        Put in eval mode here.
    layer : torch.nn.Module
        A sub-module of ``model`` whose output is a (B, K, h, w) feature map.
    x : torch.Tensor
        Normalised input (B, 3, H, W).
    target : None, int or sequence of int
        Class per image; None takes each image's predicted class.

    Returns
    -------
    cams : torch.Tensor
        float32 (B, H, W) in [0, 1].
    logits : torch.Tensor
        float32 (B, num_classes).
    """
    model.eval()
    store = {}
    handle = layer.register_forward_hook(lambda m, i, o: store.__setitem__("a", o))
    try:
        with torch.enable_grad():
            logits = model(x).float()
            act = store["a"]
            if target is None:
                tgt = logits.argmax(1)
            else:
                tgt = torch.as_tensor(target, device=logits.device).long().expand(logits.shape[0])
            score = logits.gather(1, tgt[:, None]).sum()
            (grads,) = torch.autograd.grad(score, act)
    finally:
        handle.remove()
    weights = grads.float().mean(dim=(2, 3), keepdim=True)
    cam = F.relu((weights * act.detach().float()).sum(1, keepdim=True))
    cam = F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    peak = cam.amax(dim=(1, 2), keepdim=True)
    cam = torch.where(peak > 0, cam / peak.clamp_min(1e-12), torch.zeros_like(cam))
    return cam, logits.detach()


@dataclass
class GradCamResult:
    """Grad-CAM maps with the ROI each was computed on.

    Attributes
    ----------
    case_ids : list of str
    cams : numpy.ndarray
        float32 (N, S, S) in [0, 1], on the network's input grid.
    images : numpy.ndarray
        float32 (N, S, S) in [0, 1]: the grey ROI as the network saw it (eval crop).
    masks : numpy.ndarray
        bool (N, S, S): the lesion mask on the same grid.
    proba : numpy.ndarray
        float32 (N,): malignant probability.
    target : numpy.ndarray
        int (N,): the class each map explains.
    """

    case_ids: list
    cams: np.ndarray
    images: np.ndarray
    masks: np.ndarray
    proba: np.ndarray
    target: np.ndarray

    def peak_in_mask(self) -> np.ndarray:
        """bool (N,): whether each map's maximum lies inside the lesion mask."""
        flat = self.cams.reshape(len(self.cams), -1).argmax(1)
        return self.masks.reshape(len(self.masks), -1)[np.arange(len(flat)), flat]


def overlay(image: np.ndarray, cam: np.ndarray, alpha: float = 0.4, cmap: str = "jet") -> np.ndarray:
    """RGB uint8 overlay of a [0, 1] map on a grey [0, 1] image (same shape)."""
    from matplotlib import colormaps

    heat = colormaps[cmap](np.clip(cam, 0, 1))[..., :3]
    grey = np.repeat(np.clip(image, 0, 1)[..., None], 3, axis=-1)
    return np.round(255 * ((1 - alpha) * grey + alpha * heat)).astype(np.uint8)


def save_overlays(result: GradCamResult, out_dir, alpha: float = 0.4, contour: bool = True) -> list[Path]:
    """Write one PNG per lesion (``gradcam_<case_id>.png``): the ROI with its map (and the mask outline).

    The file name comes from :func:`srnomogram.utils.safe_names`: a plain id as it is, any other
    (``../x``, ``a/b``, ``CON``) as a sanitised, hashed name, so every file stays in ``out_dir`` and
    two lesions never share one. Returns the written paths. Files are written atomically.
    """
    from PIL import Image
    from scipy import ndimage

    from ..utils import atomic_path, safe_names

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, img, cam, msk in zip(safe_names(result.case_ids), result.images, result.cams, result.masks):
        rgb = overlay(img, cam, alpha)
        if contour and msk.any():
            edge = msk & ~ndimage.binary_erosion(msk, border_value=0)
            rgb[edge] = (255, 255, 255)
        path = out_dir / f"gradcam_{name}.png"
        with atomic_path(path) as tmp:
            Image.fromarray(rgb).save(tmp, format="PNG")
        paths.append(path)
    return paths
