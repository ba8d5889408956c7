"""The estimator: :class:`SuperResolver`, the paper's self-supervised super-resolution GAN."""

from __future__ import annotations

import json
import logging
import pickle
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator

from ..errors import CheckpointError, InputError, param_error
from ._format import FORMAT, READABLE_FORMATS, uses_bf16

log = logging.getLogger(__name__)


class SuperResolver(BaseEstimator):
    """Self-supervised 2x super-resolution GAN (Yang & Ma; SMORE, Zhao et al. 2021).

    Training pairs come from the cohort's own images: each high-resolution patch is degraded by the
    paper's recipe (down-sampling by 2 along one axis plus Gaussian noise, see
    :mod:`srnomogram.sr.degradation`) and the generator learns to restore it, so no external
    high-resolution data is needed. 2D images teach both in-plane axes; 3D volumes are learned from
    their axial slices and applied along z.

    Parameters
    ----------
    scale : int
        Up-sampling factor; 2 as in the paper (the only one implemented).
    channels, blocks : int
        Generator width and residual-block count (lightweight: 32 x 8 by default); every registered
        generator takes them (``"unet"``: width at every scale, blocks at the coarsest).
    generator : str
        The generator network, a name registered with
        :func:`~srnomogram.sr.networks.register_generator`: ``"edsr"`` (the default: a residual CNN
        with axial sub-pixel up-sampling, see :class:`~srnomogram.sr.networks.Generator`),
        ``"unet"`` (a small U-Net, :class:`~srnomogram.sr.networks.UNetGenerator`) or one you add.
    generator_params : dict, optional
        The generator's own parameters beyond ``channels``/``blocks``/``scale`` (``"unet"``:
        ``{"levels": 2}``); None: its registered defaults.
    patch_size : int
        Side of the square training patches (even); every training image must have one.
    iterations : int
        Training iterations (one batch each).
    batch_size : int
        Patches per iteration.
    lr : float
        Adam learning rate of both networks (halved at 50% and 75% of the run).
    l1_weight, adv_weight, perceptual_weight : float
        Loss weights: L1, adversarial (non-saturating BCE on a PatchGAN) and optional VGG16
        perceptual loss (needs ImageNet weights; 0 disables it).
    adv_start : float
        Fraction of the iterations trained with L1 only before the adversarial term starts.
    noise_sigma : float
        Standard deviation of the degradation's Gaussian noise, in [0, 1] intensity units
        (uint8 images are divided by 255).
    degradation : {"downsample", "blur"}
        Plain down-sampling (the paper) or Gaussian blur of FWHM 2 px before it (SMORE).
    seed : int
        Seeds initialisation, patch sampling and noise: the same seed gives the same model on CPU.
    device : str
        ``"auto"`` (CUDA if available), ``"cpu"`` or ``"cuda[:k]"``.
    amp : {"auto", "bf16", "none"}
        bf16 autocast and channels-last tensors. ``"auto"``: where bf16 is faster than float32, as
        the device reports it (a CUDA GPU with bf16; a CPU with AMX or AVX-512 BF16, see
        :func:`srnomogram._torch.bf16_is_fast`); float32, bit-reproducible, elsewhere, e.g. on CPUs
        without native bf16 (AVX2, plain AVX-512), where bf16 measured slower. ``"bf16"``: on any
        device. ``"none"``: float32.
        The fixed cubic path stays float32. Can be changed after fitting (``set_params(amp=...)``)
        to apply a model in another precision.
    progress : bool or None
        Progress bar; ``None`` shows it only on a terminal.
    image_col : str
        Manifest column :meth:`fit` reads the training images from (``"image"``, the original images).

    Attributes
    ----------
    generator_ : torch.nn.Module
        Built by :func:`~srnomogram.sr.networks.build_generator` from ``generator_spec_``.
    generator_spec_ : dict
        ``{"generator": name, "params": {...}}``, recorded in the checkpoint.
    discriminator_ : srnomogram.sr.networks.PatchDiscriminator
    history_ : list of dict
        Per-iteration losses ``l1``, ``adv``, ``d``.
    device_ : torch.device
    n_training_planes_ : int
    """

    def __init__(self, scale=2, channels=32, blocks=8, generator="edsr", generator_params=None, patch_size=64, iterations=2000, batch_size=16, lr=2e-4,
                 l1_weight=1.0, adv_weight=1e-3, perceptual_weight=0.0, adv_start=0.25, noise_sigma=0.01,
                 degradation="downsample", seed=0, device="auto", amp="auto", progress=None, image_col="image"):
        self.scale = scale
        self.channels = channels
        self.blocks = blocks
        self.generator = generator
        self.generator_params = generator_params
        self.patch_size = patch_size
        self.iterations = iterations
        self.batch_size = batch_size
        self.lr = lr
        self.l1_weight = l1_weight
        self.adv_weight = adv_weight
        self.perceptual_weight = perceptual_weight
        self.adv_start = adv_start
        self.noise_sigma = noise_sigma
        self.degradation = degradation
        self.seed = seed
        self.device = device
        self.amp = amp
        self.progress = progress
        self.image_col = image_col

    # -- validation -------------------------------------------------------------------------

    def _validate_params(self, func="SuperResolver"):
        def is_int(v, lo):
            return isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= lo

        def is_num(v, lo, strict):
            return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) and np.isfinite(v) and (v > lo if strict else v >= lo)

        if self.scale != 2:
            raise param_error("scale", func, "2 (the paper's factor; others are not implemented)", self.scale)
        for name, lo in (("channels", 1), ("blocks", 0), ("iterations", 1), ("batch_size", 1), ("seed", 0)):
            if not is_int(getattr(self, name), lo):
                raise param_error(name, func, f"an int >= {lo}", getattr(self, name))
        if not is_int(self.patch_size, 8) or self.patch_size % 2:
            raise param_error("patch_size", func, "an even int >= 8", self.patch_size)
        if not is_num(self.lr, 0, True):
            raise param_error("lr", func, "a float > 0", self.lr)
        for name in ("l1_weight", "adv_weight", "perceptual_weight", "noise_sigma"):
            if not is_num(getattr(self, name), 0, False):
                raise param_error(name, func, "a float >= 0", getattr(self, name))
        if not is_num(self.adv_start, 0, False) or self.adv_start > 1:
            raise param_error("adv_start", func, "a float in [0, 1]", self.adv_start)
        if self.degradation not in ("downsample", "blur"):
            raise param_error("degradation", func, "'downsample' or 'blur'", self.degradation)
        if self.amp not in ("auto", "bf16", "none"):
            raise param_error("amp", func, "'auto', 'bf16' or 'none'", self.amp)
        return self._generator_spec(func)

    def _generator_spec(self, func="SuperResolver") -> dict:
        """The spec of the generator these parameters describe (:func:`~srnomogram.sr.networks.generator_spec`)."""
        from .networks import generator_spec

        return generator_spec(self.generator, self.generator_params, channels=self.channels, blocks=self.blocks,
                              scale=self.scale, func=func)

    def _check_fitted(self):
        if not hasattr(self, "generator_"):
            from sklearn.exceptions import NotFittedError

            raise NotFittedError("This SuperResolver is not fitted yet. Call fit or fit_images, or SuperResolver.load(dir).")

    # -- fitting ----------------------------------------------------------------------------

    def fit(self, X, y=None):
        """Train on the images of a manifest DataFrame (column ``image_col``); labels are not used.

        3D volumes are checked (:func:`~srnomogram.sr.apply.check_volume_geometry`) and learned from
        their axial slices. Use only training rows (e.g. ``df[df.split == "train"]``) to keep
        held-out images for :meth:`quality`.
        """
        import SimpleITK as sitk

        from ..data.readers import read_image
        from .apply import check_volume_geometry

        image_col = self.image_col
        if not hasattr(X, "columns") or image_col not in X.columns:
            raise param_error("image_col", "SuperResolver.fit", "a column of the manifest DataFrame", image_col)
        images = []
        for i, row in X.reset_index(drop=True).iterrows():
            spacing = row["spacing"] if "spacing" in X.columns else None
            img = read_image(row[image_col], spacing)
            where = f"row {i} ({row[image_col]})"
            if img.GetDimension() == 3:
                check_volume_geometry(img, where)
            images.append(sitk.GetArrayFromImage(img))
        return self.fit_images(images)

    def fit_images(self, images):
        """Train on a list of arrays: 2D images ``(H, W)`` or 3D volumes ``(z, y, x)`` (axial slices used)."""
        import torch

        from .._torch import resolve_device, seed_everything
        from .apply import check_array, intensity_scaling
        from .engine import LossWeights, PatchSampler, train
        from .networks import PatchDiscriminator, build_generator

        spec = self._validate_params("SuperResolver.fit")
        if len(images) == 0:
            raise InputError("SuperResolver.fit got no images. Pass at least one 2D image or 3D volume.")
        planes, scales, dims = [], [], set()
        for k, a in enumerate(images):
            a = check_array(a, f"training image {k}")
            dims.add(a.ndim)
            sc = intensity_scaling(a)
            for plane in (a if a.ndim == 3 else [a]):
                planes.append(plane)
                scales.append(sc)
        if len(dims) > 1:
            raise InputError("SuperResolver.fit got both 2D images and 3D volumes; train one model per kind.")
        self.device_ = resolve_device(self.device, "SuperResolver")
        seed_everything(self.seed)
        sampler = PatchSampler(planes, scales, self.patch_size, seed=self.seed)
        torch.manual_seed(self.seed)
        G = build_generator(spec)
        D = PatchDiscriminator(max(8, self.channels))
        w = LossWeights(self.l1_weight, self.adv_weight, self.perceptual_weight)
        self.history_ = train(G, D, sampler, iterations=self.iterations, batch_size=self.batch_size, lr=self.lr, weights=w,
                              noise_sigma=self.noise_sigma, mode=self.degradation, adv_start=self.adv_start, seed=self.seed,
                              device=self.device_, progress=self.progress, bf16=self._bf16())
        self.generator_ = G
        self.generator_spec_ = spec
        self.discriminator_ = D
        self.ndim_ = dims.pop()
        self.n_training_planes_ = len(sampler.usable)
        return self

    def _bf16(self) -> bool:
        return uses_bf16(self.amp, self.device_)

    # -- inference --------------------------------------------------------------------------

    def upsample_axis(self, image: np.ndarray, axis: int) -> np.ndarray:
        """Double one axis of a [0, 1]-scaled array (2D, or 3D with orthogonal-plane averaging)."""
        from .apply import check_array, upsample_axis01

        self._check_fitted()
        return upsample_axis01(self.generator_, check_array(image), axis, self.device_, self._bf16())

    def predict(self, image: np.ndarray) -> np.ndarray:
        """SR at 2x: 2D images on both axes, 3D ``(z, y, x)`` volumes along z; float32 in the input's units."""
        from .apply import super_resolve_array

        self._check_fitted()
        return super_resolve_array(self.generator_, image, self.device_, resample_back=False, bf16=self._bf16())

    def transform(self, image: np.ndarray) -> np.ndarray:
        """SR anti-aliased back onto the input's grid (the paper's "original image dimensions")."""
        from .apply import super_resolve_array

        self._check_fitted()
        return super_resolve_array(self.generator_, image, self.device_, resample_back=True, bf16=self._bf16())

    def apply_manifest(self, manifest_path, out_dir=None, column="image_sr", mask_column="mask_sr", resample_back=True,
                       manifest_out=None, overwrite=False, in_place=False, region="roi", roi_margin=0.1, scheduler=None, jobs=1):
        """Write SR images and a manifest with ``image_sr``/``mask_sr``; see :func:`srnomogram.sr.apply.apply_manifest`.

        ``region="roi"`` (default) runs the generator on each lesion's ROI only (bit-identical there
        to whole-image SR); ``region="image"`` on whole images. ``scheduler`` (a Dask address) or
        ``jobs`` spread the images over workers.
        """
        from .apply import apply_manifest

        self._check_fitted()
        return apply_manifest(self, manifest_path, out_dir=out_dir, column=column, mask_column=mask_column,
                              resample_back=resample_back, manifest_out=manifest_out, overwrite=overwrite, progress=self.progress,
                              in_place=in_place, region=region, roi_margin=roi_margin, scheduler=scheduler, jobs=jobs)

    def quality(self, images, ids=None, seed=0):
        """PSNR/SSIM of SR vs nearest/linear/cubic on held-out images; see :func:`srnomogram.sr.quality.quality_table`."""
        from .quality import quality_table

        self._check_fitted()
        return quality_table(self, images, ids=ids, seed=seed)

    # -- persistence ------------------------------------------------------------------------

    def save(self, path) -> Path:
        """Write ``generator.pt`` (state_dict) and ``meta.json`` (parameters, versions, training summary) into ``path``."""
        import torch

        from .. import __version__
        from .._checkpoint import write_meta
        from ..utils import atomic_path

        self._check_fitted()
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu() for k, v in self.generator_.state_dict().items()}
        with atomic_path(path / "generator.pt") as tmp:
            torch.save(state, tmp)
        l1 = [h["l1"] for h in getattr(self, "history_", [])]
        k = max(1, len(l1) // 10)
        if not l1 and hasattr(self, "meta_"):  # a loaded model keeps its training summary
            l1_first, l1_last = self.meta_.get("l1_first"), self.meta_.get("l1_last")
        else:
            l1_first, l1_last = float(np.mean(l1[:k])), float(np.mean(l1[-k:]))
        meta = {
            "format": FORMAT,
            "srnomogram_version": __version__,
            "torch_version": torch.__version__,
            "params": {k_: v for k_, v in self.get_params().items() if k_ not in ("progress",)},
            "generator": self.generator_spec_,
            "ndim": self.ndim_,
            "n_training_planes": self.n_training_planes_,
            "l1_first": l1_first,
            "l1_last": l1_last,
        }
        write_meta(path / "meta.json", meta, path / "generator.pt", key="generator_sha256")
        return path

    @classmethod
    def load(cls, path, device="auto"):
        """Load a model written by :meth:`save` (``torch.load(weights_only=True)``).

        The generator is rebuilt from the spec the checkpoint records (``meta.json``'s ``generator``);
        a checkpoint written before generators were named (format ``srnomogram.sr/1``) holds the
        default generator, described by its ``channels``/``blocks``. A generator registered outside
        the package must be registered (its module imported) before loading.
        """
        import torch

        from .._checkpoint import verify_sha256
        from .._torch import resolve_device
        from .networks import build_generator

        path = Path(path)
        meta_p, gen_p = path / "meta.json", path / "generator.pt"
        if not meta_p.exists() or not gen_p.exists():
            raise CheckpointError(f"{path} is not a SuperResolver checkpoint (needs generator.pt and meta.json). Train one with 'srnomogram sr train'.")
        try:
            meta = json.loads(meta_p.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise CheckpointError(f"{meta_p} is not valid JSON ({exc}).") from None
        if meta.get("format") not in READABLE_FORMATS:
            raise CheckpointError(f"{meta_p} has format {meta.get('format')!r}, expected {FORMAT!r}; it belongs to another model.")
        verify_sha256(gen_p, meta, meta_p.name, key="generator_sha256")
        params = dict(meta["params"])
        params["device"] = device
        model = cls(**params)
        try:
            spec = model._generator_spec("SuperResolver.load")
        except InputError as exc:
            raise CheckpointError(f"{meta_p}: {exc}") from None
        if meta.get("generator", spec) != spec:
            raise CheckpointError(f"{gen_p} cannot be loaded: {meta_p} records the generator {meta['generator']} but its params describe {spec}.")
        try:
            state = torch.load(gen_p, map_location="cpu", weights_only=True)
            G = build_generator(spec)
            G.load_state_dict(state)
        except (RuntimeError, KeyError, EOFError, OSError, ValueError, pickle.UnpicklingError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise CheckpointError(f"{gen_p} cannot be loaded into the generator described by {meta_p} ({first}).") from None
        model.device_ = resolve_device(device, "SuperResolver.load")
        model.generator_ = G.to(model.device_).eval()
        model.generator_spec_ = spec
        model.ndim_ = meta.get("ndim", 2)
        model.n_training_planes_ = meta.get("n_training_planes")
        model.history_ = []
        model.meta_ = meta
        return model

