"""Cohorts: manifest, readers (2D, 3D), importers, split and the synthetic demo cohort."""

from .._lazy import lazy_exports
from .manifest import load_manifest, validate_manifest, write_manifest  # noqa: F401
from .readers import read_case, read_image, read_mask  # noqa: F401

__all__ = [
    "load_manifest",
    "validate_manifest",
    "write_manifest",
    "read_case",
    "read_image",
    "read_mask",
    "check_cohort",
    "check_clinical",
    "combine_manifests",
    "demo_cohort",
    "import_breast_lesions_usg",
    "import_bus_bra",
    "import_folder",
    "max_feret_diameter",
    "split_manifest",
    "stratified_split",
]

# lazy: the demo generator, importers and split pull in more than a manifest read needs
_LAZY = {
    "demo_cohort": ".demo",
    "stratified_split": ".split",
    "split_manifest": ".split",
    "import_breast_lesions_usg": ".importers",
    "import_bus_bra": ".importers",
    "import_folder": ".importers",
    "check_cohort": ".check",
    "check_clinical": ".check",
    "combine_manifests": ".combine",
    "max_feret_diameter": ".geometry",
}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
