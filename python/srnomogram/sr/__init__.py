"""Self-supervised super-resolution (Yang & Ma's GAN; SMORE's degradation-and-restore scheme).

``SuperResolver`` is loaded lazily so that importing :mod:`srnomogram.sr` (e.g. to build the CLI)
does not import torch.
"""

__all__ = ["SuperResolver", "apply_manifest", "quality_table", "summarise"]


def __getattr__(name):
    if name == "SuperResolver":
        from .model import SuperResolver

        return SuperResolver
    if name == "apply_manifest":
        from .apply import apply_manifest

        return apply_manifest
    if name in ("quality_table", "summarise"):
        from . import quality

        return getattr(quality, name)
    raise AttributeError(name)
