"""Train and eval transforms, applied to whole batches on the training device.

The paper augmented with random horizontal flips and random crops. The stored ROIs
(:mod:`srnomogram.deep.data`) are ``P × P`` uint8 with ``P = round(S · 256 / 224)`` for an
input size ``S`` (torchvision's ImageNet ``resize 256 → crop 224`` ratio, read from
``weights.transforms()``), so:

* **train**: a random ``S × S`` crop (offsets uniform over all positions) and a horizontal flip
  with probability 0.5, per image, drawn from a seeded ``torch.Generator`` on the device;
* **eval**: the centre ``S × S`` crop (same scale as in training);

then grey → 3 channels, scaling to [0, 1] and ImageNet normalisation (mean/std of
``weights.transforms()``). Crop and flip are one gather over the batch, so the loop never leaves
the device and never synchronises with the host.
"""

from __future__ import annotations

import torch

from .networks import IMAGENET_MEAN, IMAGENET_STD

#: torchvision's ImageNet resize/crop ratio (``weights.transforms()``: resize 256, crop 224).
PRECROP_RATIO = 256 / 224


def precrop_size(image_size: int) -> int:
    """Side of the stored ROI for a network input of ``image_size``."""
    return int(round(image_size * PRECROP_RATIO))


class _Preset:
    def __init__(self, crop_size: int, mean=IMAGENET_MEAN, std=IMAGENET_STD):
        self.crop_size = int(crop_size)
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)

    def normalize(self, grey_u8: torch.Tensor) -> torch.Tensor:
        """uint8 (B, 1, S, S) or (B, S, S) → float32 (B, 3, S, S), ImageNet-normalised."""
        x = grey_u8.reshape(grey_u8.shape[0], 1, *grey_u8.shape[-2:]).float().div_(255.0)
        mean, inv_std = self._constants(x.device)
        return (x - mean) * inv_std

    def _constants(self, device):
        # Built once per device: a host-to-device copy every step would make the host wait for
        # the GPU queue (a pageable copy is synchronous with the stream).
        cache = self.__dict__.setdefault("_cache", {})
        if device not in cache:
            mean = torch.tensor(self.mean, dtype=torch.float32).view(1, 3, 1, 1).to(device)
            inv_std = (1.0 / torch.tensor(self.std, dtype=torch.float32)).view(1, 3, 1, 1).to(device)
            cache[device] = (mean, inv_std)
        return cache[device]

    def _gather(self, x: torch.Tensor, off_r: torch.Tensor, off_c: torch.Tensor, flip: torch.Tensor | None) -> torch.Tensor:
        s = self.crop_size
        ar = torch.arange(s, device=x.device)
        rows = off_r[:, None] + ar[None, :]
        cols = off_c[:, None] + ar[None, :]
        if flip is not None:
            cols = torch.where(flip[:, None], off_c[:, None] + (s - 1 - ar)[None, :], cols)
        b = torch.arange(x.shape[0], device=x.device)[:, None, None]
        return x[:, 0][b, rows[:, :, None], cols[:, None, :]]


class TrainPreset(_Preset):
    """Random crop + random horizontal flip + normalisation of a uint8 batch (B, 1, P, P)."""

    def __init__(self, crop_size: int, hflip_prob: float = 0.5, mean=IMAGENET_MEAN, std=IMAGENET_STD):
        super().__init__(crop_size, mean, std)
        self.hflip_prob = float(hflip_prob)

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        n, p = x.shape[0], x.shape[-1]
        span = p - self.crop_size + 1
        off = torch.randint(0, span, (2, n), device=x.device, generator=generator)
        flip = torch.rand(n, device=x.device, generator=generator) < self.hflip_prob
        return self.normalize(self._gather(x, off[0], off[1], flip))


class EvalPreset(_Preset):
    """Centre crop + normalisation of a uint8 batch (B, 1, P, P)."""

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.normalize(self.center(x))

    def center(self, x: torch.Tensor) -> torch.Tensor:
        """The centre crop, still uint8 (B, 1, S, S): what the network sees, before normalisation."""
        o = (x.shape[-1] - self.crop_size) // 2
        return x[..., o : o + self.crop_size, o : o + self.crop_size]
