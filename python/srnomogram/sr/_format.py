"""Leaf constants and helpers of the SR model shared by :mod:`.model` and :mod:`.apply`.

Kept apart so that ``apply`` (which ``model`` calls) does not import ``model`` back: the checkpoint
format string and the bf16 decision live here, below both.
"""

from __future__ import annotations

#: Format tag of a saved :class:`~srnomogram.sr.model.SuperResolver` (``meta.json``) and of SR apply settings.
#: ``/2`` records the generator's spec (``{"generator": name, "params": ...}``) and the estimator's
#: ``generator``/``generator_params``; an older package refuses it with a clear error.
FORMAT = "srnomogram.sr/2"
#: Checkpoint formats :meth:`SuperResolver.load` reads: ``/1`` holds the default generator.
READABLE_FORMATS = ("srnomogram.sr/1", FORMAT)


def uses_bf16(amp, device) -> bool:
    """Whether a SuperResolver with precision setting ``amp`` runs bf16 autocast on ``device``
    (:func:`srnomogram._torch.resolve_amp`)."""
    from .._torch import resolve_amp

    return resolve_amp(amp, device, "SuperResolver") is not None
