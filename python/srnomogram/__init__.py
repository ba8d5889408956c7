"""srnomogram: super-resolution ultrasound radiomics, deep learning and a validated nomogram.

Reproduces the study of Yang & Ma, "Nomogram Based on Super-Resolution Ultrasound Images
Outperforms in Predicting Benign and Malignant Breast Lesions", on a user's own cohort.

Nothing heavy is imported here: torch, SimpleITK, PyRadiomics and rpy2 load only when the
stage that needs them runs.
"""

from importlib import metadata as _metadata

from .errors import (  # noqa: F401
    CheckpointError,
    ClusterError,
    ConfigError,
    InputError,
    ManifestError,
    RBridgeError,
    SrnomogramError,
)

try:
    __version__ = _metadata.version("srnomogram")
except _metadata.PackageNotFoundError:  # running from a source tree
    __version__ = "0.1.0"

from ._lazy import lazy_exports

# srnomogram.validate / srnomogram.predict: apply a finished study to another cohort (loaded on use)
# srnomogram.set_threads: CPU threads for torch, OpenMP/BLAS and local workers (srnomogram._threads)
__getattr__, __dir__ = lazy_exports(__name__, {"validate": ".study.external", "predict": ".study.external", "set_threads": "._threads"})

__all__ = [
    "__version__",
    "validate",
    "predict",
    "set_threads",
    "SrnomogramError",
    "InputError",
    "ManifestError",
    "ConfigError",
    "CheckpointError",
    "ClusterError",
    "RBridgeError",
]
