"""Quality of the super-resolution against interpolation, on held-out images.

Protocol (Yang & Ma's degradation, SMORE's evaluation): each held-out image is scaled to [0, 1]
(uint8 / 255; other types by their min/max), cropped to an even length along the tested axis and
degraded exactly as in training (down-sampling by 2 + Gaussian noise of the model's
``noise_sigma``, seeded per image). The low-resolution copy is brought back to the original length
by nearest, linear and cubic B-spline interpolation (SciPy, independent of the model's code), by
Keys' cubic convolution (``keys``: the generator's fixed skip path, i.e. an untrained generator) and
by the generator; PSNR and SSIM against the original use ``data_range=1`` (the full [0, 1] scale,
i.e. 255 grey levels for uint8). 2D images are tested along both axes; 3D volumes along z (SSIM in
3D, 7-voxel windows).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import InputError
from .degradation import degrade_axis, interpolate_axis

METHODS = ("nearest", "linear", "cubic", "keys", "sr")
ORDERS = {"nearest": 0, "linear": 1, "cubic": 3}


def _metrics(ref, x):
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    x = np.clip(x, 0.0, 1.0)  # what an image file can hold; the same for every method
    psnr = peak_signal_noise_ratio(ref, x, data_range=1.0)
    win = min(7, *[n if n % 2 else n - 1 for n in ref.shape])
    ssim = structural_similarity(ref, x, data_range=1.0, win_size=win)
    return float(psnr), float(ssim)


def _keys_axis(lr: np.ndarray, axis: int) -> np.ndarray:
    import torch

    from .degradation import cubic_upsample_rows

    moved = np.moveaxis(lr, axis, 0)
    t = torch.from_numpy(np.ascontiguousarray(moved.reshape(moved.shape[0], -1)))[None, None]
    up = cubic_upsample_rows(t)[0, 0].numpy().reshape((2 * moved.shape[0],) + moved.shape[1:])
    return np.moveaxis(up, 0, axis)


def reconstructions(model, image: np.ndarray, axis: int, seed: int = 0) -> dict:
    """Degrade ``image`` along ``axis`` and rebuild it by each method.

    Returns ``{"original", "lr", "nearest", "linear", "cubic", "keys", "sr"}``, all float32 in [0, 1]
    scale except that reconstructions are not clipped.
    """
    from .apply import check_array, intensity_scaling

    a = check_array(image)
    off, sc = intensity_scaling(a)
    x = (a.astype(np.float32) - off) * sc
    n = x.shape[axis] - x.shape[axis] % 2
    if n < 4:
        raise InputError(f"Quality needs at least 4 samples along axis {axis}; got shape {a.shape}.")
    x = np.take(x, np.arange(n), axis=axis)
    lr = degrade_axis(x, axis, 2, model.noise_sigma, model.degradation, seed=seed)
    out = {"original": x, "lr": lr}
    for name, order in ORDERS.items():
        out[name] = interpolate_axis(lr, axis, order)
    out["keys"] = _keys_axis(lr, axis)
    out["sr"] = model.upsample_axis(lr, axis)
    return out


def quality_table(model, images, ids=None, seed: int = 0) -> pd.DataFrame:
    """PSNR (dB) and SSIM of nearest / linear / cubic / SR per held-out image and axis.

    Parameters
    ----------
    model : SuperResolver
        Fitted model (its ``noise_sigma`` and ``degradation`` define the test degradation).
    images : list of numpy.ndarray
        Held-out 2D images (tested along axes 0 and 1) or 3D ``(z, y, x)`` volumes (along z).
    ids : list of str, optional
        Names for the rows (default: the list index).
    seed : int
        Noise seed; image ``k`` uses ``seed + k``.

    Returns
    -------
    pandas.DataFrame
        Columns ``image, axis, method, psnr, ssim``.
    """
    rows = []
    ids = list(ids) if ids is not None else [str(k) for k in range(len(images))]
    for k, img in enumerate(images):
        axes = (0, 1) if np.ndim(img) == 2 else (0,)
        for ax in axes:
            rec = reconstructions(model, img, ax, seed=seed + k)
            for m in METHODS:
                p, s = _metrics(rec["original"], rec[m])
                rows.append({"image": ids[k], "axis": ax, "method": m, "psnr": p, "ssim": s})
    return pd.DataFrame(rows)


def summarise(table: pd.DataFrame) -> pd.DataFrame:
    """Mean PSNR/SSIM per method, with the paired mean gain of SR over each method and the share of images SR wins.

    Index: method; columns ``psnr, ssim, sr_gain_db, sr_gain_ssim, sr_wins_psnr, sr_wins_ssim``.
    """
    wide_p = table.pivot_table(index=["image", "axis"], columns="method", values="psnr")
    wide_s = table.pivot_table(index=["image", "axis"], columns="method", values="ssim")
    out = table.groupby("method")[["psnr", "ssim"]].mean().reindex(list(METHODS))
    out["sr_gain_db"] = [(wide_p["sr"] - wide_p[m]).mean() for m in out.index]
    out["sr_gain_ssim"] = [(wide_s["sr"] - wide_s[m]).mean() for m in out.index]
    out["sr_wins_psnr"] = [(wide_p["sr"] > wide_p[m]).mean() for m in out.index]
    out["sr_wins_ssim"] = [(wide_s["sr"] > wide_s[m]).mean() for m in out.index]
    return out


def quality_figure(model, image: np.ndarray, path, axis: int = 0, crop: int = 96, seed: int = 0, title: str | None = None):
    """Save original / cubic / SR crops side by side (PNG), for the image degraded along ``axis``.

    The crop (``crop`` x ``crop`` pixels, or an in-plane crop of the middle-y plane for 3D) is centred
    on the region of highest local variance, where SR and interpolation differ most.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from scipy import ndimage

    from ..utils import atomic_path

    rec = reconstructions(model, image, axis, seed=seed)
    if rec["original"].ndim == 3:  # show the (z, x) plane through the middle of y
        mid = rec["original"].shape[1] // 2
        rec = {k: v[:, mid, :] for k, v in rec.items() if k != "lr"}
    o = rec["original"]
    c = min(crop, *o.shape)
    var = ndimage.uniform_filter(o**2, c) - ndimage.uniform_filter(o, c) ** 2
    h = c // 2
    inner = var[h : o.shape[0] - (c - h) + 1, h : o.shape[1] - (c - h) + 1]
    cy, cx = np.unravel_index(np.argmax(inner), inner.shape)
    sl = (slice(cy, cy + c), slice(cx, cx + c))
    fig, axs = plt.subplots(1, 3, figsize=(9, 3.3))
    for axp, key, name in zip(axs, ("original", "cubic", "sr"), ("original", "cubic interpolation", "SR (GAN)")):
        x = np.clip(rec[key][sl], 0, 1)
        axp.imshow(x, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        if key != "original":
            p, s = _metrics(rec["original"], rec[key])
            name = f"{name}\nPSNR {p:.2f} dB, SSIM {s:.3f}"
        axp.set_title(name, fontsize=9)
        axp.axis("off")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=130, format="png")
    plt.close(fig)
    return path
