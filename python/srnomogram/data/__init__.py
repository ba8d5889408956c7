"""Cohorts: manifest, readers (2D, 3D), importers, split and the synthetic demo cohort."""

from .manifest import load_manifest, validate_manifest, write_manifest  # noqa: F401
from .readers import read_case, read_image, read_mask  # noqa: F401

__all__ = ["load_manifest", "validate_manifest", "write_manifest", "read_case", "read_image", "read_mask", "demo_cohort", "stratified_split"]


def __getattr__(name):  # lazy: the demo generator and split pull in more than a manifest read needs
    if name == "demo_cohort":
        from .demo import demo_cohort

        return demo_cohort
    if name == "stratified_split":
        from .split import stratified_split

        return stratified_split
    raise AttributeError(name)
