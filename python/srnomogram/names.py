"""One id and one label for every model of the study.

Every model has one **id**, the form the study's stages, tables, pins and files use, and one
**label**, the form tables, figures and the report print:

==================  ===================  ==================  ====================
model               id                   label               ``style="paper"``
==================  ===================  ==================  ====================
radiomics LR, OR    ``or_lr``            ``OR-LR``           ``OR_LR``
radiomics SVM, SR   ``sr_svm``           ``SR-SVM``          ``SR_SVM``
CNN on SR images    ``sr_mobilenet_v2``  ``SR-MobileNetV2``  ``SRMobileNet_v2``
CNN on OR images    ``or_resnet101``     ``OR-ResNet101``    ``ORResNet101``
clinical model      ``clinical``         ``Clinical model``  ``Clinical model``
nomogram            ``nomogram``         ``Nomogram``        ``Nomogram``
==================  ===================  ==================  ====================

The paper's style is Yang & Ma's spelling (their Table 2: ``SRMobileNet_v2``, ``OR_LR``). CNN
names and labels come from the network registry (:mod:`srnomogram.deep.registry`), so a network
added with :func:`~srnomogram.deep.networks.register_network` gets its ids and labels here too.
"""

from __future__ import annotations

from .deep.registry import get_network, network_names
from .errors import param_error

__all__ = ["IMAGES", "IMAGE_COLS", "RADIOMICS_METHODS", "model_id", "parse_model_id", "label", "labels", "model_ids",
           "arch_label", "image_col", "images_of"]

#: Image sets models are trained on: original (OR) and super-resolved (SR) images.
IMAGES = ("or", "sr")
#: Manifest column of each image set.
IMAGE_COLS = {"or": "image", "sr": "image_sr"}
#: Radiomics classifiers and their label part (the same in both styles).
RADIOMICS_METHODS = {"lr": "LR", "svm": "SVM"}
#: Models that are not trained on one image set.
_SINGLE = {"clinical": "Clinical model", "nomogram": "Nomogram"}
_STYLES = ("display", "paper")


def image_col(images: str) -> str:
    """``"or"`` → ``"image"``, ``"sr"`` → ``"image_sr"``."""
    if images not in IMAGE_COLS:
        raise param_error("images", "image_col", f"one of {list(IMAGES)}", images)
    return IMAGE_COLS[images]


def images_of(column: str) -> str:
    """The image set of a manifest column: ``"sr"`` for ``image_sr`` (or any ``*_sr``), else ``"or"``."""
    return "sr" if str(column).endswith("_sr") else "or"


def model_id(images: str, method: str) -> str:
    """The id of a model trained on ``images`` (``"or"``/``"sr"``) with ``method`` (``"lr"``, ``"svm"`` or a
    registered network): ``model_id("sr", "mobilenet_v2") == "sr_mobilenet_v2"``."""
    if images not in IMAGES:
        raise param_error("images", "model_id", f"one of {list(IMAGES)}", images)
    if method not in RADIOMICS_METHODS:
        get_network(method, "model_id")
    return f"{images}_{method}"


def parse_model_id(mid: str) -> tuple[str | None, str]:
    """``"sr_mobilenet_v2"`` → ``("sr", "mobilenet_v2")``; ``"nomogram"`` → ``(None, "nomogram")``."""
    if mid in _SINGLE:
        return None, mid
    images, _, method = str(mid).partition("_")
    if images not in IMAGES or not (method in RADIOMICS_METHODS or method in network_names()):
        raise param_error("model", "label", f"a model id such as {model_ids()[:3] + ['nomogram']}", mid)
    return images, method


def arch_label(arch: str, style: str = "display") -> str:
    """A network's own label: ``"MobileNetV2"`` (display) or ``"MobileNet_v2"`` (paper)."""
    spec = get_network(arch, "arch_label")
    return spec.paper_label if _style(style) == "paper" else spec.label


def label(mid: str, style: str = "display") -> str:
    """The label of model ``mid``: ``"SR-MobileNetV2"``, or with ``style="paper"`` ``"SRMobileNet_v2"``."""
    paper = _style(style) == "paper"
    images, method = parse_model_id(mid)
    if images is None:
        return _SINGLE[method]
    prefix = images.upper()
    if method in RADIOMICS_METHODS:
        return f"{prefix}{'_' if paper else '-'}{RADIOMICS_METHODS[method]}"
    return f"{prefix}{'' if paper else '-'}{arch_label(method, style)}"


def model_ids(methods=None, archs=None, images=IMAGES) -> list[str]:
    """Image models in Table 2's order: radiomics (OR-LR, OR-SVM, SR-LR, SR-SVM), then every network on
    OR and SR (default: every registered network)."""
    methods = tuple(RADIOMICS_METHODS) if methods is None else tuple(methods)
    archs = network_names() if archs is None else tuple(archs)
    return [model_id(i, m) for i in images for m in methods] + [model_id(i, a) for a in archs for i in images]


def labels(ids=None, style: str = "display") -> dict:
    """``{id: label}`` of ``ids`` (default: every image model, the clinical model and the nomogram)."""
    ids = [*model_ids(), *_SINGLE] if ids is None else ids
    return {m: label(m, style) for m in ids}


def _style(style):
    if style not in _STYLES:
        raise param_error("style", "label", f"one of {list(_STYLES)}", style)
    return style
