"""Generator and discriminator of the lightweight super-resolution GAN (modules only, no I/O).

The generator up-samples by 2 along **one** axis (the row axis, dim -2), as SMORE does (Zhao et al.,
IEEE TMI 2021): a residual CNN (EDSR-style blocks without batch norm, Lim et al., CVPRW 2017) whose
features are up-sampled by an axial sub-pixel shuffle (Shi et al., CVPR 2016, restricted to one
axis) and added to a fixed cubic interpolation of the input, so the network learns only what cubic
interpolation misses. The last convolution starts at zero: an untrained generator *is* cubic
interpolation. The discriminator is a small PatchGAN (Isola et al., CVPR 2017).

Registry
--------
Every generator is one :class:`GeneratorSpec` (a builder, its receptive radius for ROI halos, its
own parameters' defaults), looked up by name as the CNNs are (:mod:`srnomogram.deep.registry`).
:class:`~srnomogram.sr.model.SuperResolver` ``(generator=..., generator_params=...)`` resolves
them into a *spec*, the plain dict ``{"generator": name, "params": {...}}`` that
:func:`build_generator` builds, checkpoints record and workers rebuild from. Adding a generator is
one file holding its module and one :func:`register_generator` call::

    register_generator("tiny", build=TinyNet, receptive_radius=lambda p: (p["blocks"] + 3, p["blocks"] + 3),
                       defaults={"kernel": 3})

``build(channels=, blocks=, scale=, **defaults)`` returns a module mapping ``(N, 1, h, W)`` in [0, 1]
to ``(N, 1, 2h, W)``; ``receptive_radius(params)`` bounds how far an output reaches into its input,
``(along, across)`` input pixels (exactly, for ROI SR to equal whole-image SR inside the lesion box).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import torch
from torch import nn

from ..errors import InputError, param_error
from .degradation import cubic_upsample_rows


class ResidualBlock(nn.Module):
    """conv3x3 - ReLU - conv3x3, added to the input (no batch norm, as EDSR; residual scaling only matters for wide nets)."""

    def __init__(self, channels: int, res_scale: float = 1.0):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, padding=1),
        )
        self.res_scale = res_scale

    def forward(self, x):
        return x + self.res_scale * self.body(x)


class AxialPixelShuffle(nn.Module):
    """Sub-pixel up-sampling along rows only: ``(N, C*r, H, W) -> (N, C, H*r, W)``."""

    def __init__(self, factor: int):
        super().__init__()
        self.factor = factor

    def forward(self, x):
        n, cr, h, w = x.shape
        r = self.factor
        c = cr // r
        return x.reshape(n, c, r, h, w).permute(0, 1, 3, 2, 4).reshape(n, c, h * r, w)


class _CubicResidualGenerator(nn.Module):
    """What every built-in generator shares: the scale check, the axial sub-pixel up-sampling
    (``up``), the zero-initialised last convolution (``tail``) and the fixed cubic path it is added
    to. A subclass builds its own layers between :meth:`_check_scale` and :meth:`_add_upsampling`
    (in that order, so torch's global RNG initialises its parameters in registration order) and
    returns :meth:`_upsample` of its low-resolution features.
    """

    def _check_scale(self, scale: int, func: str) -> None:
        if scale != 2:
            raise param_error("scale", func, "2 (the paper's factor; others are not implemented)", scale)
        self.scale = scale

    def _add_upsampling(self, channels: int) -> None:
        self.up = nn.Sequential(nn.Conv2d(channels, channels * self.scale, 3, padding=1), AxialPixelShuffle(self.scale),
                                nn.ReLU(inplace=True))
        self.tail = nn.Conv2d(channels, 1, 3, padding=1)
        nn.init.zeros_(self.tail.weight)  # an untrained generator is cubic interpolation
        nn.init.zeros_(self.tail.bias)

    def _upsample(self, lr: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """Cubic interpolation of ``lr`` plus the sub-pixel up-sampled ``features`` (LR grid of ``lr``)."""
        # The fixed cubic path stays float32 under bf16 autocast: bf16 would quantise it to ~1/256.
        with torch.autocast(device_type=lr.device.type, enabled=False):
            base = cubic_upsample_rows(lr.float())
        return base + self.tail(self.up(features))


class Generator(_CubicResidualGenerator):
    """Residual CNN that doubles the row count of a 1-channel image.

    Parameters
    ----------
    channels : int
        Feature channels (paper: "lightweight"; 32 by default).
    blocks : int
        Residual blocks.
    scale : int
        Up-sampling factor along rows; only 2 (the paper's factor) is implemented.

    Notes
    -----
    Input ``(N, 1, h, W)`` in [0, 1] intensity units; output ``(N, 1, 2h, W)``.
    """

    def __init__(self, channels: int = 32, blocks: int = 8, scale: int = 2):
        super().__init__()
        self._check_scale(scale, "Generator")
        self.head = nn.Conv2d(1, channels, 3, padding=1)
        self.body = nn.Sequential(*[ResidualBlock(channels) for _ in range(blocks)], nn.Conv2d(channels, channels, 3, padding=1))
        self._add_upsampling(channels)

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        f = self.head(lr)
        f = f + self.body(f)
        return self._upsample(lr, f)


class CubicUpsampler(nn.Module):
    """The generator's fixed path alone: Keys cubic up-sampling by 2 along rows (what an untrained
    :class:`Generator`, whose last convolution is zero, returns). Fills the pixels that ROI-only
    super-resolution leaves out (:func:`srnomogram.sr.apply.super_resolve_array`)."""

    scale = 2

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        return cubic_upsample_rows(lr.float())


def conv_reach(G: nn.Module) -> tuple[int, int]:
    """How far an output of a single-path convolution stack such as :class:`Generator` reaches into
    its input: ``(along, across)`` input pixels on each side.

    ``along`` counts input rows (the up-sampled axis), ``across`` input columns. Derived from the
    convolution stack in forward order (every convolution of :class:`Generator` lies on one path;
    the residual skips reach less far): a k x k convolution with dilation d adds ``d (k - 1) / 2``
    pixels of its own input; after the sub-pixel shuffle those pixels are high-resolution rows, half
    an input row each. The fixed cubic path reads rows ``i - 1 .. i + 2`` (radius 2). Exact for
    :class:`Generator` only (a network with pooling reaches further than its convolutions say);
    ``tests/python/sr/test_networks.py`` checks it against impulse responses.
    """
    before, after, shuffled = [0, 0], [0, 0], False
    for m in G.modules():
        if isinstance(m, AxialPixelShuffle):
            shuffled = True
        elif isinstance(m, nn.Conv2d):
            acc = after if shuffled else before
            for ax in (0, 1):
                acc[ax] += m.dilation[ax] * (m.kernel_size[ax] - 1) // 2
    scale = getattr(G, "scale", 2)
    along = before[0] + -(-after[0] // scale)
    return max(along, 2), before[1] + after[1]


# ---------------------------------------------------------------------------------------------
# the generator registry
# ---------------------------------------------------------------------------------------------

#: Parameters every generator's builder takes, set on :class:`~srnomogram.sr.model.SuperResolver`
#: itself (width, depth, up-sampling factor); a generator's own parameters come in ``generator_params``.
COMMON_PARAMS = ("channels", "blocks", "scale")


@dataclass(frozen=True)
class GeneratorSpec:
    """How to build one generator and how far it reaches.

    Parameters
    ----------
    name : str
        Registry key (``SuperResolver(generator=name)``); lower-case letters, digits and ``_``.
    build : callable
        ``build(channels=, blocks=, scale=, **params) -> nn.Module``: ``(N, 1, h, W)`` in [0, 1] to
        ``(N, 1, 2h, W)``.
    receptive_radius : callable
        ``receptive_radius(params) -> (along, across)``: input pixels on each side that one output
        reads, along the up-sampled rows and across them (``params``: the resolved build parameters).
        ROI-only SR (:func:`srnomogram.sr.apply.roi_halo`) gives each lesion box that much context.
    defaults : mapping
        The generator's own parameters (beyond :data:`COMMON_PARAMS`) and their defaults; the
        only keys ``generator_params`` may set.
    align : int or callable
        Window offsets for ROI-only SR are multiples of this power of two (or of ``align(params)``):
        1 for a network that commutes with shifts; ``2**levels`` for one that pools ``levels``
        times, so that an ROI window is pooled on the whole image's grid.
    label : str
        Display name.
    """

    name: str
    build: Callable[..., nn.Module]
    receptive_radius: Callable[[Mapping], tuple[int, int]]
    defaults: Mapping = field(default_factory=dict)
    align: int | Callable[[Mapping], int] = 1
    label: str = ""


_GENERATORS: dict[str, GeneratorSpec] = {}
#: The generator of ``SuperResolver()`` and of checkpoints written before generators were named.
DEFAULT_GENERATOR = "edsr"


def register_generator(name: str, *, build: Callable[..., nn.Module], receptive_radius: Callable[[Mapping], tuple[int, int]],
                       defaults: Mapping | None = None, align: int | Callable[[Mapping], int] = 1, label: str = "",
                       replace: bool = False) -> GeneratorSpec:
    """Add a generator to the registry (``replace=True`` to overwrite a name); returns its :class:`GeneratorSpec`."""
    if not isinstance(name, str) or not name or not name.replace("_", "").isalnum() or name != name.lower():
        raise param_error("name", "register_generator", "lower-case letters, digits and '_'", name)
    if name in _GENERATORS and not replace:
        raise param_error("name", "register_generator", f"a name not yet registered ({list(_GENERATORS)}), or replace=True", name)
    if not callable(build) or not callable(receptive_radius):
        raise param_error("build" if not callable(build) else "receptive_radius", "register_generator", "a callable",
                          build if not callable(build) else receptive_radius)
    defaults = dict(defaults or {})
    clash = sorted(set(defaults) & set(COMMON_PARAMS))
    if clash:
        raise param_error("defaults", "register_generator", f"the generator's own parameters, without {list(COMMON_PARAMS)} "
                          "(SuperResolver sets those)", clash)
    if not callable(align) and (isinstance(align, bool) or not isinstance(align, int) or align < 1 or align & (align - 1)):
        raise param_error("align", "register_generator", "a power of two >= 1", align)
    spec = GeneratorSpec(name, build, receptive_radius, defaults, align, label or name)
    _GENERATORS[name] = spec
    return spec


def unregister_generator(name: str) -> GeneratorSpec:
    """Remove a generator from the registry (returns its spec)."""
    return _GENERATORS.pop(get_generator(name, "unregister_generator").name)


def generator_names() -> tuple[str, ...]:
    """Registered generators, in registration order (the built-ins first)."""
    return tuple(_GENERATORS)


def get_generator(name, func: str = "SuperResolver") -> GeneratorSpec:
    """The :class:`GeneratorSpec` registered as ``name``; an error naming the registered choices otherwise."""
    if not isinstance(name, str) or name not in _GENERATORS:
        raise param_error("generator", func, f"one of {list(_GENERATORS)} (or a name added with register_generator)", name)
    return _GENERATORS[name]


def generator_spec(generator: str = DEFAULT_GENERATOR, generator_params: Mapping | None = None, *, channels: int = 32,
                   blocks: int = 8, scale: int = 2, func: str = "SuperResolver") -> dict:
    """The spec ``{"generator": name, "params": {...}}`` of a generator: the common parameters, then
    the generator's own defaults overridden by ``generator_params`` (plain data: JSON, picklable)."""
    reg = get_generator(generator, func)
    given = {} if generator_params is None else generator_params
    if not isinstance(given, Mapping):
        raise param_error("generator_params", func, f"a dict of {generator!r}'s parameters {sorted(reg.defaults)}", given)
    unknown = sorted(set(given) - set(reg.defaults))
    if unknown:
        hint = " (set those on SuperResolver itself)" if set(unknown) & set(COMMON_PARAMS) else ""
        raise param_error("generator_params", func, f"a dict with keys among {sorted(reg.defaults)}, {generator!r}'s own "
                          f"parameters{hint}", dict(given))
    return {"generator": reg.name, "params": {"channels": channels, "blocks": blocks, "scale": scale, **reg.defaults, **given}}


def _registered(spec, func: str) -> tuple[GeneratorSpec, dict]:
    if not isinstance(spec, Mapping) or set(spec) != {"generator", "params"} or not isinstance(spec["params"], Mapping):
        raise param_error("spec", func, "a dict {'generator': name, 'params': {...}} (see generator_spec)", spec)
    return get_generator(spec["generator"], func), dict(spec["params"])


def build_generator(spec: Mapping) -> nn.Module:
    """The generator a spec describes (random initialisation from torch's global RNG), carrying its
    spec as ``G.generator_spec``. The one builder used by fitting, loading and apply workers."""
    reg, params = _registered(spec, "build_generator")
    G = reg.build(**params)
    G.generator_spec = {"generator": reg.name, "params": params}
    return G


def spec_of(G: nn.Module, func: str = "spec_of") -> dict:
    """The spec a generator was built from (:func:`build_generator`)."""
    spec = getattr(G, "generator_spec", None)
    if spec is None:
        raise InputError(f"{func}: the generator {type(G).__name__} was not built by build_generator, so its spec is "
                         "unknown. Build it with srnomogram.sr.networks.build_generator(generator_spec(...)).")
    return spec


def receptive_radius(G) -> tuple[int, int]:
    """How far an output of a generator reaches into its input: ``(along, across)`` input pixels on each side.

    ``G``: a spec (:func:`generator_spec`) or a module built from one (its generator's registered
    ``receptive_radius``); a bare :class:`Generator` or :class:`CubicUpsampler` (:func:`conv_reach`).
    """
    if isinstance(G, Mapping):
        reg, params = _registered(G, "receptive_radius")
    elif getattr(G, "generator_spec", None) is not None:
        reg, params = _registered(G.generator_spec, "receptive_radius")
    elif isinstance(G, (Generator, CubicUpsampler)):
        return conv_reach(G)
    else:
        spec_of(G, "receptive_radius")
    along, across = reg.receptive_radius(params)
    return max(int(along), 2), int(across)  # the fixed cubic path reads 2 rows


def window_align(G) -> int:
    """The ROI window alignment of a generator (spec or module; :attr:`GeneratorSpec.align`)."""
    spec = G if isinstance(G, Mapping) else getattr(G, "generator_spec", None)
    if spec is None:
        return 1
    reg, params = _registered(spec, "window_align")
    return int(reg.align(params)) if callable(reg.align) else reg.align


def _edsr_radius(p: Mapping) -> tuple[int, int]:
    # head, 2 per residual block, the body's last conv and the up conv at LR; the tail's HR row is half an LR row
    r = 2 * p["blocks"] + 3 + 1
    return r, r


register_generator(DEFAULT_GENERATOR, build=Generator, receptive_radius=_edsr_radius,
                   label="EDSR-style residual CNN with axial sub-pixel up-sampling (the default)")


class UNetGenerator(_CubicResidualGenerator):
    """A small U-Net (Ronneberger et al., MICCAI 2015) in place of :class:`Generator`'s single-scale body.

    Features are taken through ``levels`` average-poolings by 2 (a residual block before each),
    ``blocks`` residual blocks at the coarsest scale, and back up by nearest up-sampling, each merged
    with its skip by a 3x3 convolution and refined by a residual block; then the same axial sub-pixel
    up-sampling, zero-initialised last convolution and fixed cubic path as :class:`Generator` (an
    untrained U-Net is cubic interpolation too). Width ``channels`` at every scale. Inputs of any
    size: they are zero-padded at the end to a multiple of ``2**levels`` and the output cropped.

    Pooling makes it commute with shifts by multiples of ``2**levels`` only, hence its registered
    ``align`` (ROI windows start on that grid).
    """

    def __init__(self, channels: int = 32, blocks: int = 8, scale: int = 2, levels: int = 2):
        super().__init__()
        self._check_scale(scale, "UNetGenerator")
        if isinstance(levels, bool) or not isinstance(levels, int) or not 1 <= levels <= 4:
            raise param_error("levels", "UNetGenerator", "an int in 1..4", levels)
        self.levels = levels
        c = channels
        self.head = nn.Conv2d(1, c, 3, padding=1)
        self.enc = nn.ModuleList([ResidualBlock(c) for _ in range(levels)])
        self.mid = nn.Sequential(*[ResidualBlock(c) for _ in range(blocks)])
        self.merge = nn.ModuleList([nn.Conv2d(2 * c, c, 3, padding=1) for _ in range(levels)])
        self.dec = nn.ModuleList([ResidualBlock(c) for _ in range(levels)])
        self._add_upsampling(c)

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        import torch.nn.functional as F

        h, w = lr.shape[-2:]
        m = 2**self.levels
        f = self.head(F.pad(lr, (0, (-w) % m, 0, (-h) % m)))
        skips = []
        for enc in self.enc:
            f = enc(f)
            skips.append(f)
            f = F.avg_pool2d(f, 2)
        f = self.mid(f)
        for merge, dec, skip in zip(reversed(self.merge), reversed(self.dec), reversed(skips)):
            f = dec(merge(torch.cat([F.interpolate(f, scale_factor=2, mode="nearest"), skip], 1)))
        return self._upsample(lr, f[..., :h, :w])


def _unet_radius(p: Mapping) -> tuple[int, int]:
    # In pixels of level l: a residual block before pooling (2), pooling then nearest up-sampling
    # (1 + twice the reach below), the merge (1) and a residual block (2); the coarsest level its
    # blocks (2 each). Then the head, the up conv and the tail's half LR row, as for Generator.
    r = 2 * p["blocks"]
    for _ in range(p["levels"]):
        r = 6 + 2 * r
    return r + 3, r + 3


register_generator("unet", build=UNetGenerator, receptive_radius=_unet_radius, defaults={"levels": 2},
                   align=lambda p: 2 ** p["levels"], label="small U-Net with axial sub-pixel up-sampling")


class PatchDiscriminator(nn.Module):
    """PatchGAN: strided 4x4 convolutions with LeakyReLU; one real/fake logit per receptive-field patch.

    Spectral normalisation (Miyato et al., ICLR 2018) keeps it stable without batch statistics,
    so results do not depend on the batch composition.
    """

    def __init__(self, channels: int = 32, layers: int = 3):
        super().__init__()
        sn = nn.utils.parametrizations.spectral_norm
        mods = []
        c_in, c = 1, channels
        for i in range(layers):
            mods += [sn(nn.Conv2d(c_in, c, 4, stride=2 if i < layers - 1 else 1, padding=1)), nn.LeakyReLU(0.2, inplace=True)]
            c_in, c = c, min(c * 2, channels * 4)
        mods.append(sn(nn.Conv2d(c_in, 1, 3, padding=1)))
        self.net = nn.Sequential(*mods)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
