"""Training and evaluation loops of the super-resolution GAN (torchvision-references style).

* :class:`PatchSampler` draws square high-resolution patches from in-plane images (2D images, or
  the axial slices of 3D volumes) with random transposition and flips, so one network learns the
  degradation along either in-plane axis (SMORE's "both orientations").
* :func:`train_step` makes the LR copies on the device (:func:`~.degradation.degrade_rows`), then
  updates the discriminator and the generator (L1 + adversarial [+ perceptual]).
* :func:`train` runs the iterations with a progress bar; :func:`upsample_rows` applies a generator
  in chunks.

Under ``amp="auto"`` the steps run in bf16 autocast with channels_last tensors where bf16 is fast (a
CUDA GPU with bf16, a CPU with AMX or AVX-512 BF16) and in float32 elsewhere; ``amp="bf16"`` asks for bf16 anywhere
(see :func:`srnomogram._torch.resolve_amp`).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .._threads import adapt_threads
from .._torch import autocast as _autocast
from .._torch import resolve_amp
from ..errors import InputError
from .degradation import degrade_rows

log = logging.getLogger(__name__)


def use_bf16(device: torch.device, bf16: bool | None = None) -> bool:
    """``bf16`` as given, or by default the ``amp="auto"`` rule (:func:`srnomogram._torch.resolve_amp`)."""
    return resolve_amp("auto", device) is not None if bf16 is None else bool(bf16)


def autocast(device: torch.device, bf16: bool | None = None):
    """bf16 autocast when ``bf16`` (default: where bf16 is fast, see :func:`srnomogram._torch.bf16_is_fast`); otherwise float32."""
    return _autocast(device, torch.bfloat16 if use_bf16(device, bf16) else None)


class PatchSampler:
    """Random square patches from a list of 2D planes, with per-plane intensity scales.

    Parameters
    ----------
    planes : list of numpy.ndarray
        2D arrays (any dtype); views into the caller's images, never copied whole.
    scales : list of (float, float)
        ``(offset, scale)`` per plane so that ``(plane - offset) * scale`` lies in [0, 1].
    patch_size : int
        Side of the square patches (even, so the degradation by 2 divides it).
    seed : int
        Seed of the sampler's own NumPy generator.
    """

    def __init__(self, planes, scales, patch_size: int, seed: int = 0):
        self.planes = list(planes)
        self.scales = list(scales)
        self.patch_size = int(patch_size)
        self.rng = np.random.default_rng(seed)
        p = self.patch_size
        ok = [i for i, a in enumerate(self.planes) if a.shape[0] >= p and a.shape[1] >= p]
        if not ok:
            shapes = sorted({tuple(a.shape) for a in self.planes})[:3]
            raise InputError(f"Every training image is smaller than the {p}x{p} patch (sizes {shapes}). Lower patch_size or use larger images.")
        self.usable = np.asarray(ok)
        # Sample a plane with probability proportional to the number of patch positions it offers.
        area = np.array([(self.planes[i].shape[0] - p + 1) * (self.planes[i].shape[1] - p + 1) for i in ok], dtype=np.float64)
        self.weights = area / area.sum()

    def sample(self, batch_size: int) -> np.ndarray:
        """A ``(batch_size, 1, p, p)`` float32 batch in [0, 1]."""
        p = self.patch_size
        out = np.empty((batch_size, 1, p, p), dtype=np.float32)
        idx = self.rng.choice(self.usable, size=batch_size, p=self.weights)
        for b, i in enumerate(idx):  # one crop per patch; the batch is small
            a = self.planes[i]
            y = int(self.rng.integers(0, a.shape[0] - p + 1))
            x = int(self.rng.integers(0, a.shape[1] - p + 1))
            off, sc = self.scales[i]
            patch = (a[y : y + p, x : x + p].astype(np.float32) - off) * sc
            t, fy, fx = self.rng.integers(0, 2, size=3)
            if t:
                patch = patch.T
            if fy:
                patch = patch[::-1]
            if fx:
                patch = patch[:, ::-1]
            out[b, 0] = patch
        return out


@dataclass
class LossWeights:
    """Weights of the generator's loss terms (L1 + adversarial [+ perceptual])."""

    l1: float = 1.0
    adv: float = 1e-3
    perceptual: float = 0.0


class PerceptualLoss(torch.nn.Module):
    """L1 between VGG16 ``relu3_3`` features (Johnson et al., ECCV 2016); needs ImageNet weights.

    Optional: only built when ``perceptual_weight > 0``; raises a clear error when torchvision cannot
    load the weights (e.g. offline).
    """

    def __init__(self):
        super().__init__()
        from torchvision.models import VGG16_Weights, vgg16

        try:
            feats = vgg16(weights=VGG16_Weights.IMAGENET1K_V1).features[:16]
        except Exception as exc:  # network errors come in many types
            raise InputError(f"perceptual_weight > 0 needs torchvision's VGG16 ImageNet weights, which could not be loaded ({type(exc).__name__}). Set perceptual_weight=0.") from None
        for q in feats.parameters():
            q.requires_grad_(False)
        self.features = feats.eval()
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def forward(self, sr, hr):
        def f(x):
            return self.features((x.expand(-1, 3, -1, -1) - self.mean) / self.std)

        return F.l1_loss(f(sr), f(hr))


def train_step(G, D, opt_g, opt_d, hr, *, weights: LossWeights, noise_sigma: float, mode: str,
               generator: torch.Generator | None, adversarial: bool, perceptual=None, device=None, bf16=None) -> dict:
    """One GAN iteration on a batch of HR patches already on the device.

    The LR copies are made here, on the device, by the paper's degradation. The discriminator is
    updated first (non-saturating BCE loss), then the generator with
    ``l1 * L1(G(lr), hr) + adv * BCE(D(G(lr)), real) [+ perceptual * VGG-L1]``.

    Returns the float losses ``{"l1", "adv", "d"}`` (``adv``/``d`` are NaN when not adversarial).
    """
    device = device or hr.device
    bf16 = use_bf16(device, bf16)
    lr = degrade_rows(hr, 2, noise_sigma, mode, generator)
    if bf16:
        lr = lr.contiguous(memory_format=torch.channels_last)
    out = {"l1": math.nan, "adv": math.nan, "d": math.nan}
    with autocast(device, bf16):
        sr = G(lr)
    if adversarial:
        opt_d.zero_grad(set_to_none=True)
        with autocast(device, bf16):
            d_real = D(hr)
            d_fake = D(sr.detach())
            loss_d = F.binary_cross_entropy_with_logits(d_real.float(), torch.ones_like(d_real, dtype=torch.float32)) + \
                F.binary_cross_entropy_with_logits(d_fake.float(), torch.zeros_like(d_fake, dtype=torch.float32))
        loss_d.backward()
        opt_d.step()
        out["d"] = float(loss_d.detach())
    opt_g.zero_grad(set_to_none=True)
    with autocast(device, bf16):
        l1 = F.l1_loss(sr.float(), hr)
        loss = weights.l1 * l1
        if adversarial:
            d_sr = D(sr)
            adv = F.binary_cross_entropy_with_logits(d_sr.float(), torch.ones_like(d_sr, dtype=torch.float32))
            loss = loss + weights.adv * adv
            out["adv"] = float(adv.detach())
        if perceptual is not None and weights.perceptual > 0:
            loss = loss + weights.perceptual * perceptual(sr.float(), hr)
    loss.backward()
    opt_g.step()
    out["l1"] = float(l1.detach())
    return out


def train(G, D, sampler: PatchSampler, *, iterations: int, batch_size: int, lr: float, weights: LossWeights,
          noise_sigma: float, mode: str, adv_start: float, seed: int, device: torch.device, progress: bool | None = None,
          bf16: bool | None = None) -> list[dict]:
    """Train ``G`` (and ``D``) for ``iterations`` steps; return the per-iteration loss history.

    Adam (betas 0.9, 0.99) for both networks; the learning rate halves at 50% and 75% of the run.
    The first ``adv_start`` fraction of the iterations is L1-only (the usual warm-up for SR GANs, e.g.
    ESRGAN), so the adversarial term refines a generator that already reconstructs.
    """
    from tqdm.auto import tqdm

    G.to(device).train()
    D.to(device).train()
    bf16 = use_bf16(device, bf16)
    if bf16:
        G.to(memory_format=torch.channels_last)
        D.to(memory_format=torch.channels_last)
    opt_g = torch.optim.Adam(G.parameters(), lr=lr, betas=(0.9, 0.99))
    opt_d = torch.optim.Adam(D.parameters(), lr=lr, betas=(0.9, 0.99))
    gen = torch.Generator(device=device).manual_seed(int(seed))
    perceptual = PerceptualLoss().to(device) if weights.perceptual > 0 else None
    first_adv = int(math.ceil(adv_start * iterations))
    history = []
    bar = tqdm(range(iterations), desc="sr train", disable=None if progress is None else not progress, leave=False)
    for it in bar:
        adapt_threads()  # a shared machine: compute with the cores other jobs leave free
        rate = lr * (0.5 ** ((it >= iterations // 2) + (it >= (3 * iterations) // 4)))
        for group in opt_g.param_groups + opt_d.param_groups:
            group["lr"] = rate
        batch = torch.from_numpy(sampler.sample(batch_size))
        if device.type == "cuda":
            batch = batch.pin_memory().to(device, non_blocking=True)
        if bf16:
            batch = batch.contiguous(memory_format=torch.channels_last)
        adversarial = weights.adv > 0 and it >= first_adv
        h = train_step(G, D, opt_g, opt_d, batch, weights=weights, noise_sigma=noise_sigma, mode=mode,
                       generator=gen, adversarial=adversarial, perceptual=perceptual, device=device, bf16=bf16)
        history.append(h)
        if it % 20 == 0:
            bar.set_postfix(l1=f"{h['l1']:.4f}")
        if (it + 1) % max(1, iterations // 10) == 0:
            recent = history[-max(1, iterations // 10):]
            log.info("iteration %d/%d: mean L1 %.5f", it + 1, iterations, float(np.mean([r["l1"] for r in recent])))
    G.eval()
    D.eval()
    return history


@torch.no_grad()
def evaluate(G, hr: np.ndarray, *, noise_sigma: float, mode: str = "downsample", seed: int = 0, device=None) -> dict:
    """L1 and MSE of ``G`` on a fixed batch of HR patches ``(N, 1, p, p)`` in [0, 1], degraded with seeded noise.

    The same ``seed`` gives the same LR inputs, so two generators can be compared on equal terms.
    """
    device = device or torch.device("cpu")
    x = torch.from_numpy(np.ascontiguousarray(hr, dtype=np.float32)).to(device)
    g = torch.Generator(device=device).manual_seed(int(seed))
    lr = degrade_rows(x, 2, noise_sigma, mode, g)
    G.eval()
    with autocast(device):
        sr = G(lr).float()
    return {"l1": float(F.l1_loss(sr, x)), "mse": float(F.mse_loss(sr, x))}


@torch.no_grad()
def upsample_rows(G, stack: np.ndarray, device: torch.device, chunk_pixels: int = 1 << 21, bf16: bool | None = None) -> np.ndarray:
    """Apply ``G`` to a ``(N, h, W)`` float32 stack in [0, 1]; return ``(N, 2h, W)`` float32.

    Planes go through in chunks of about ``chunk_pixels`` input pixels (at most twice that) to bound
    memory. ``bf16`` (default: the ``amp="auto"`` rule) runs the network's convolutions in bf16 with
    channels-last tensors; its fixed cubic path stays float32.
    """
    G.eval()
    bf16 = use_bf16(device, bf16)
    # One weight layout per precision: channels-last for bf16 (3.4x faster than channels-last inputs
    # alone on the CPU), the default layout for float32. The layout picks the convolution kernel, so a
    # float32 result must not depend on whether the model ran in bf16 before (nor on being saved and
    # loaded, which restores the default layout): the same numbers by construction.
    G.to(memory_format=torch.channels_last if bf16 else torch.contiguous_format)
    n, h, w = stack.shape
    # Chunks of near-equal size, none of a single plane when there are several: PyTorch convolves a
    # lone small float32 plane with another kernel than a batch (see sr.apply.ONEDNN_MIN_VALUES),
    # so a plane's result would otherwise depend on where the chunks happen to end.
    bounds = np.linspace(0, n, max(1, n // max(2, chunk_pixels // max(1, h * w))) + 1).round().astype(int)
    out = np.empty((n, 2 * h, w), dtype=np.float32)
    for s, e in zip(bounds[:-1], bounds[1:]):
        x = torch.from_numpy(np.ascontiguousarray(stack[s:e], dtype=np.float32)).unsqueeze(1).to(device)
        if bf16:
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast(device, bf16):
            y = G(x)
        out[s:e] = y.float()[:, 0].cpu().numpy()
    return out
