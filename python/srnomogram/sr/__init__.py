"""Self-supervised super-resolution (Yang & Ma's GAN; SMORE's degradation-and-restore scheme).

``SuperResolver`` is loaded lazily so that importing :mod:`srnomogram.sr` (e.g. to build the CLI)
does not import torch. Its generator network is a registry entry
(:func:`~srnomogram.sr.networks.register_generator`): swapping one is one file.
"""

from .._lazy import lazy_exports

__all__ = ["SuperResolver", "apply_manifest", "quality_table", "summarise", "register_generator", "generator_names"]


__getattr__, __dir__ = lazy_exports(__name__, {
    "SuperResolver": ".model",
    "apply_manifest": ".apply",
    "quality_table": ".quality",
    "summarise": ".quality",
    "register_generator": ".networks",
    "generator_names": ".networks",
})
