"""``DeepClassifier``: the paper's transfer-learning models as a scikit-learn style estimator.

Yang & Ma fine-tuned ImageNet MobileNetV2 and ResNet101 on ROI crops of original (OR) and
super-resolved (SR) images (ORMobileNet_v2, ORResNet101, SRMobileNet_v2, SRResNet101); the
malignant probability of the best one (SRMobileNet_v2) became the nomogram's deep-learning
score. Defaults follow the paper: SGD (momentum 0.9), learning rate 0.005, cosine annealing,
200 epochs, batch 16, 224 × 224 inputs, random horizontal flip and random crop.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import platform
import time
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from .._checkpoint import verify_sha256, write_meta
from ..errors import CheckpointError, InputError, param_error
from ..utils import atomic_path
from . import networks

# torch and the modules that need it load on first use, so that the estimator's signature (the one
# place its defaults are written; read by the CLI and the study's config) is cheap to import.

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "srnomogram.deep/1"
MODEL_FILE = "model.pt"
META_FILE = "meta.json"


@contextlib.contextmanager
def _deterministic_scope(on: bool):
    """Deterministic algorithms for the duration of a fit only; the caller's settings come back after."""
    if not on:
        yield
        return
    import torch

    prev = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(), torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(prev[0], warn_only=prev[1])
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = prev[2], prev[3]


def _eta(start: float, done: int, total: int) -> str:
    elapsed = time.perf_counter() - start
    return f"{elapsed:.0f} s elapsed, ETA {elapsed / max(done, 1) * (total - done):.0f} s"


class DeepClassifier(ClassifierMixin, BaseEstimator):
    """MobileNetV2 / ResNet101 lesion classifier on ROI crops (Yang & Ma's deep-learning arm).

    Parameters
    ----------
    arch : str, default "mobilenet_v2"
        A registered network (:func:`srnomogram.deep.networks.network_names`; built in: the paper's
        ``"mobilenet_v2"`` and ``"resnet101"``, and ``"efficientnet_lite0"``, whose ImageNet weights
        need no network).
    weights : "imagenet", "none" or path
        Initial weights (see :mod:`srnomogram.deep.networks`).
    image_col : str, default "image"
        Manifest column of the images: ``image`` (OR) or ``image_sr`` (SR). Read by ``fit``,
        ``predict_proba`` and ``gradcam`` when they get a manifest; a :class:`RoiSet` carries its own.
    epochs : int, default 200
    batch_size : int, default 16
    lr : float, default 0.005
        Initial SGD learning rate, annealed to 0 by a cosine schedule over ``epochs`` (stepped
        once per epoch).
    momentum : float, default 0.9
    weight_decay : float, default 1e-4
        L2 penalty of SGD (not given in the paper; torchvision references' value).
    image_size : int, default 224
        Network input side. ROIs are stored at ``round(image_size · 256/224)`` and cropped.
    margin : float, default 0.1
        ROI margin around the mask's bounding box, as a fraction of its height/width per side.
    roi_bounds : {"clip", "pad", "error"}, default "clip"
        When the grown box leaves the image (see :mod:`srnomogram.deep.data`).
    hflip_prob : float, default 0.5
        Probability of the random horizontal flip; random crop is always on in training.
    seed : int, default 0
        Seeds initialisation, shuffling and augmentation (:func:`srnomogram._torch.seed_everything`).
    deterministic : bool, default False
        Use PyTorch's deterministic algorithms during ``fit`` (restored afterwards; slower on a
        GPU, identical numbers run to run on the same device).
    device : str, default "auto"
    amp : {"auto", "bf16", "none"}, default "auto"
        ``"auto"``: bf16 autocast for training where bf16 is faster (a CUDA GPU with bf16, a CPU
        with AMX or AVX-512 BF16: :func:`srnomogram._torch.bf16_is_fast`), fp32 elsewhere, and fp32 for
        ``predict_proba`` everywhere, so scores do not depend on the device.
        ``"bf16"``: bf16 for training and prediction, also on the CPU. ``"none"``: fp32.
    channels_last : "auto" or bool, default "auto"
        Channels-last memory format (on for CUDA).
    compile : bool, default False
        ``torch.compile`` the training step.
    eval_batch_size : int, default 64
    progress : bool or None, default None
        tqdm bars (None: only on a terminal). The epoch bar shows the mean loss and the ETA.

    Attributes
    ----------
    model_ : torch.nn.Module
    classes_ : ndarray, [0, 1] (benign, malignant)
    loss_history_ : ndarray of float32
        Training cross-entropy of every iteration (the paper's Figure 4).
    epoch_of_iteration_ : ndarray of int
    image_col_ : str
    normalization_ : dict
        mean/std of ``weights.transforms()`` and the crop sizes.
    n_train_ : int
    """

    def __init__(
        self,
        arch="mobilenet_v2",
        weights="imagenet",
        image_col="image",
        epochs=200,
        batch_size=16,
        lr=0.005,
        momentum=0.9,
        weight_decay=1e-4,
        image_size=224,
        margin=0.1,
        roi_bounds="clip",
        hflip_prob=0.5,
        seed=0,
        deterministic=False,
        device="auto",
        amp="auto",
        channels_last="auto",
        compile=False,
        eval_batch_size=64,
        progress=None,
    ):
        self.arch = arch
        self.weights = weights
        self.image_col = image_col
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.image_size = image_size
        self.margin = margin
        self.roi_bounds = roi_bounds
        self.hflip_prob = hflip_prob
        self.seed = seed
        self.deterministic = deterministic
        self.device = device
        self.amp = amp
        self.channels_last = channels_last
        self.compile = compile
        self.eval_batch_size = eval_batch_size
        self.progress = progress

    # ------------------------------------------------------------------ checks
    def _check_params(self):
        f = "DeepClassifier"
        networks.check_arch(self.arch, f)
        networks.check_weights_param(self.weights, f)
        if not isinstance(self.image_col, str) or not self.image_col:
            raise param_error("image_col", f, "a manifest column name such as 'image' or 'image_sr'", self.image_col)

        def pos_int(name, lo=1):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
                raise param_error(name, f, f"an int >= {lo}", v)

        def num(name, lo, lo_open=False, hi=None):
            v = getattr(self, name)
            ok = isinstance(v, (int, float, np.floating)) and not isinstance(v, bool) and math.isfinite(v)
            ok = ok and (v > lo if lo_open else v >= lo) and (hi is None or v <= hi)
            if not ok:
                rng = f"a float {'>' if lo_open else '>='} {lo}" + (f" and <= {hi}" if hi is not None else "")
                raise param_error(name, f, rng, v)

        pos_int("epochs")
        pos_int("batch_size", 2)
        pos_int("eval_batch_size")
        pos_int("image_size", 32)
        num("lr", 0, lo_open=True)
        num("momentum", 0, hi=1)
        num("weight_decay", 0)
        num("margin", 0)
        num("hflip_prob", 0, hi=1)
        from .data import BOUNDS

        if self.roi_bounds not in BOUNDS:
            raise param_error("roi_bounds", f, f"one of {list(BOUNDS)}", self.roi_bounds)
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            raise param_error("seed", f, "an int >= 0", self.seed)
        if self.channels_last not in ("auto", True, False):
            raise param_error("channels_last", f, "'auto', True or False", self.channels_last)

    def _rois(self, X) -> RoiSet:
        from .data import RoiSet, load_rois
        from .presets import precrop_size

        if isinstance(X, RoiSet):
            if X.images.shape[-1] != precrop_size(self.image_size):
                raise InputError(f"The RoiSet holds {X.images.shape[-1]} px crops; image_size={self.image_size} needs {precrop_size(self.image_size)} px.")
            return X
        return load_rois(X, self.image_col, size=precrop_size(self.image_size), margin=self.margin, bounds=self.roi_bounds, progress=self.progress)

    def _runtime(self, training: bool = True):
        """``(device, autocast dtype or None, channels_last)`` for training or for inference."""
        from .._torch import resolve_amp, resolve_device

        device = resolve_device(self.device, "DeepClassifier")
        # "auto" scores in fp32 on every device, so that scores (and the Table 2, nomogram and
        # Grad-CAM built on them) carry full precision and agree between a GPU and a CPU.
        amp_dtype = resolve_amp(self.amp, device, "DeepClassifier", auto_bf16=training)
        cl = device.type == "cuda" if self.channels_last == "auto" else bool(self.channels_last)
        return device, amp_dtype, cl

    def _norm(self):
        return networks.normalization(self.arch)

    # ------------------------------------------------------------------ fit
    def fit(self, X, y=None):
        """Fine-tune the network on the lesions of ``X``.

        Parameters
        ----------
        X : pandas.DataFrame or RoiSet
            A manifest (rows = training lesions; images from column ``image_col``) or preloaded ROIs
            (:func:`~srnomogram.deep.data.load_rois`).
        y : array-like of {0, 1}, optional
            Labels; default the manifest's ``label`` column.

        Returns
        -------
        self
        """
        import torch

        self._check_params()
        rois = self._rois(X)
        held = rois.meta.get("image_col", self.image_col)
        if held != self.image_col:
            raise InputError(f"The RoiSet holds crops of column {held!r} but the 'image_col' parameter of DeepClassifier is {self.image_col!r}. "
                             f"Build the estimator with image_col={held!r}.")
        labels = rois.labels if y is None else torch.as_tensor(np.asarray(y), dtype=torch.long)
        n = len(rois)
        if labels.shape[0] != n:
            raise InputError(f"y has {labels.shape[0]} labels but X has {n} lesions.")
        bad = ~((labels == 0) | (labels == 1))
        if bool(bad.any()):
            raise InputError(f"Labels must be 0 (benign) or 1 (malignant); lesion {rois.case_ids[int(bad.nonzero()[0, 0])]!r} has {int(labels[bad][0])}.")
        present = sorted(set(labels.tolist()))
        if len(present) < 2:
            raise InputError(f"The training set has only class {present} ({n} lesions); DeepClassifier needs benign (0) and malignant (1) lesions.")
        if self.batch_size > n:
            raise InputError(f"The 'batch_size' parameter of DeepClassifier ({self.batch_size}) is larger than the training set ({n} lesions). Lower batch_size to at most {n}.")

        device, amp_dtype, cl = self._runtime()
        with _deterministic_scope(bool(self.deterministic)):
            from .._torch import seed_everything

            seed_everything(int(self.seed), bool(self.deterministic))
            self._fit(rois, labels, device, amp_dtype, cl)
        return self

    def _fit(self, rois, labels, device, amp_dtype, cl):
        import torch
        import torch.nn.functional as F
        from tqdm.auto import tqdm

        from .engine import train_one_epoch
        from .presets import TrainPreset

        n = len(rois)
        model = networks.build_model(self.arch, self.weights, num_classes=2).to(device)
        if cl:
            model = model.to(memory_format=torch.channels_last)
        norm = self._norm()
        optimizer = torch.optim.SGD(model.parameters(), lr=float(self.lr), momentum=float(self.momentum), weight_decay=float(self.weight_decay))
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=int(self.epochs))
        gen = torch.Generator(device=device)
        gen.manual_seed(int(self.seed))
        images = rois.images.to(device, non_blocking=True)
        labels = labels.to(device, non_blocking=True)
        preset = TrainPreset(int(self.image_size), float(self.hflip_prob), norm["mean"], norm["std"])
        step_fn = None
        if self.compile:
            compiled = torch.compile(model)

            def step_fn(x, y):
                return F.cross_entropy(compiled(x), y)

        losses = []
        start = time.perf_counter()
        bar = tqdm(range(int(self.epochs)), desc=f"{self.arch} ({rois.meta.get('image_col', self.image_col)})", unit="epoch", disable=None if self.progress is None else not self.progress)
        for _ in bar:
            ep = train_one_epoch(model, optimizer, images, labels, int(self.batch_size), preset, gen, amp_dtype=amp_dtype, channels_last=cl, step_fn=step_fn)
            scheduler.step()
            losses.append(ep)
            # At most one host sync per epoch, for the bar or the log only.
            if not bar.disable:
                bar.set_postfix(loss=f"{float(ep.mean()):.4f}", lr=f"{scheduler.get_last_lr()[0]:.2e}")
            elif log.isEnabledFor(logging.INFO):
                log.info("%s epoch %d/%d: loss %.4f (%s)", self.arch, len(losses), int(self.epochs), float(ep.mean()), _eta(start, len(losses), int(self.epochs)))
        bar.close()
        hist = torch.cat(losses).cpu().numpy().astype(np.float32)
        if not np.all(np.isfinite(hist)):
            log.warning("training loss became non-finite; lower 'lr'")
        self.model_ = model
        self.classes_ = np.array([0, 1])
        self.loss_history_ = hist
        self.epoch_of_iteration_ = np.concatenate([np.full(len(e), i) for i, e in enumerate(losses)])
        self.image_col_ = rois.meta.get("image_col", self.image_col)
        self.normalization_ = norm
        self.roi_meta_ = dict(rois.meta)
        self.n_train_ = n
        self.train_case_ids_ = list(rois.case_ids)

    # ------------------------------------------------------------------ predict
    def _check_fitted(self):
        if not hasattr(self, "model_"):
            from sklearn.exceptions import NotFittedError

            raise NotFittedError("This DeepClassifier is not fitted yet. Call 'fit' or DeepClassifier.load(dir) first.")

    def _eval_inputs(self, X):
        from .presets import EvalPreset

        self._check_fitted()
        rois = self._rois(X)
        device, amp_dtype, cl = self._runtime(training=False)
        self.model_.to(device)
        preset = EvalPreset(int(self.image_size), self.normalization_["mean"], self.normalization_["std"])
        return rois, device, amp_dtype, cl, preset

    def predict_proba(self, X):
        """Probabilities ``(n, 2)``: columns benign, malignant; column 1 is the deep-learning score.

        Images of a manifest come from column ``image_col`` (the one the model was fitted on unless
        changed with ``set_params``). The network runs in fp32 unless ``amp="bf16"`` (see the class
        docstring), as Grad-CAM does.
        """
        from .engine import evaluate

        rois, device, amp_dtype, cl, preset = self._eval_inputs(X)
        p = evaluate(self.model_, rois.images.to(device), preset, int(self.eval_batch_size), amp_dtype=amp_dtype, channels_last=cl)
        return p.cpu().numpy().astype(np.float64)

    def predict(self, X):
        return self.classes_[self.predict_proba(X).argmax(1)]

    def gradcam(self, X, target=None, batch_size=16) -> GradCamResult:
        """Grad-CAM of the network's last convolutional block (its spec's ``gradcam_layer``) for every
        lesion of ``X`` (the paper's Figure 5).

        Parameters
        ----------
        target : None or {0, 1}
            Class to explain; None: each lesion's predicted class.

        Returns
        -------
        GradCamResult
            Maps on the network's input grid (``image_size`` square), with the ROI and mask.
        """
        import torch

        from .gradcam import GradCamResult, grad_cam

        rois, device, _, cl, preset = self._eval_inputs(X)
        layer = networks.last_conv_layer(self.model_, self.arch)
        cams, probs, tgts = [], [], []
        for s in range(0, len(rois), batch_size):
            x = preset(rois.images[s : s + batch_size].to(device))
            if cl:
                x = x.contiguous(memory_format=torch.channels_last)
            cam, logits = grad_cam(self.model_, layer, x, target)
            p = torch.softmax(logits, 1)
            cams.append(cam.cpu())
            probs.append(p[:, 1].cpu())
            tgts.append(p.argmax(1).cpu() if target is None else torch.full((len(p),), int(target)))
        images = preset.center(rois.images)[:, 0].float().numpy() / 255.0
        masks = preset.center(rois.masks)[:, 0].numpy().astype(bool)
        return GradCamResult(list(rois.case_ids), torch.cat(cams).numpy(), images.astype(np.float32), masks, torch.cat(probs).numpy(), torch.cat(tgts).numpy())

    # ------------------------------------------------------------------ persistence
    def save(self, path) -> Path:
        """Write ``model.pt`` (state_dict) and ``meta.json`` (architecture, parameters, class order,
        normalisation, ROI settings, loss history, versions, seed, model hash) into folder ``path``."""
        import torch
        import torchvision

        from .. import __version__

        self._check_fitted()
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        sd = {k: v.detach().cpu().contiguous() for k, v in self.model_.state_dict().items()}
        with atomic_path(path / MODEL_FILE) as tmp:
            torch.save(sd, tmp)
        params = {k: (str(v) if isinstance(v, os.PathLike) else v) for k, v in self.get_params().items()}
        meta = {
            "format": CHECKPOINT_FORMAT,
            "arch": self.arch,
            "params": params,
            "classes": self.classes_.tolist(),
            "class_names": ["benign", "malignant"],
            "image_col": self.image_col_,
            "normalization": self.normalization_,
            "roi": self.roi_meta_,
            "n_train": self.n_train_,
            "train_case_ids": self.train_case_ids_,
            "seed": int(self.seed),
            "loss_history": [float(v) for v in self.loss_history_],
            "epoch_of_iteration": [int(v) for v in self.epoch_of_iteration_],
            "versions": {"srnomogram": __version__, "torch": torch.__version__, "torchvision": torchvision.__version__, "python": platform.python_version()},
        }
        write_meta(path / META_FILE, meta, path / MODEL_FILE)
        return path

    @classmethod
    def load(cls, path, device="auto") -> "DeepClassifier":
        """Load a folder written by :meth:`save`, or the ``--out`` folder of ``deep train`` (its
        ``checkpoint/``), with ``torch.load(weights_only=True)``; nothing is unpickled.

        Raises
        ------
        CheckpointError
            Missing files, unreadable JSON, a state_dict that does not match ``meta.json`` (hash)
            or the architecture.
        """
        path = Path(path)
        if not (path / META_FILE).is_file() and (path / "checkpoint" / META_FILE).is_file():
            path = path / "checkpoint"  # the folder `srnomogram deep train --out` wrote
        meta_path, model_path = path / META_FILE, path / MODEL_FILE
        for p in (meta_path, model_path):
            if not p.is_file():
                raise CheckpointError(f"Checkpoint folder {path} has no {p.name}. Point to a folder written by DeepClassifier.save().")
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            if meta.get("format") != CHECKPOINT_FORMAT:
                raise ValueError(f"format {meta.get('format')!r}, expected {CHECKPOINT_FORMAT!r}")
            params = dict(meta["params"])
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
            raise CheckpointError(f"Checkpoint metadata {meta_path} is corrupted ({exc}). Re-save the model.") from None
        verify_sha256(model_path, meta, meta_path.name)
        sd = networks.load_state_dict_file(model_path, "Checkpoint")
        params["device"] = device
        try:
            est = cls(**params)
        except TypeError as exc:
            raise CheckpointError(f"Checkpoint metadata {meta_path} has parameters this version does not know ({exc}).") from None
        model = networks.build_model(est.arch, "none", num_classes=len(meta["classes"]))
        networks._load(model, sd, model_path, est.arch)
        from .._torch import resolve_device

        est.model_ = model.to(resolve_device(device, "DeepClassifier.load"))
        est.classes_ = np.asarray(meta["classes"])
        est.image_col_ = meta["image_col"]
        if "image_col" not in meta["params"]:  # checkpoints saved before image_col was a parameter
            est.image_col = est.image_col_
        est.normalization_ = meta["normalization"]
        est.roi_meta_ = meta.get("roi", {})
        est.n_train_ = meta.get("n_train")
        est.train_case_ids_ = meta.get("train_case_ids", [])
        est.loss_history_ = np.asarray(meta.get("loss_history", []), dtype=np.float32)
        est.epoch_of_iteration_ = np.asarray(meta.get("epoch_of_iteration", []), dtype=int)
        return est
