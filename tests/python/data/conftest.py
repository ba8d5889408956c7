"""The real cohorts imported once per test session (BrEaST about 8 s, BUS-BRA about 4 s on 2 cores),
with what their importer logged; the tests of the importers and of combining share them."""

from __future__ import annotations

import logging

import pytest

from ..conftest import SHARED

BUS_BRA = SHARED / "data" / "bus-bra"


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.INFO)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def _import_logged(importer, src, out):
    """Run ``importer(src, out)``; return ``(out, the messages it logged)``."""
    logger = logging.getLogger("srnomogram.data.importers")
    handler, level = _Records(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        importer(src, out, progress=False)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    return out, handler.messages


@pytest.fixture(scope="session")
def breast_import(breast_dir, tmp_path_factory):
    """Import the real BrEaST collection once per session; keep what the importer logged."""
    from srnomogram.data.importers import import_breast_lesions_usg

    return _import_logged(import_breast_lesions_usg, breast_dir, tmp_path_factory.mktemp("breast") / "manifest.csv")


@pytest.fixture(scope="session")
def breast_manifest(breast_import):
    return breast_import[0]


@pytest.fixture(scope="session")
def bus_bra_dir():
    """The BUS-BRA collection (Gómez-Flores et al., Med Phys 2024), read from ../shared, never copied in."""
    if not (BUS_BRA / "bus_data.csv").is_file():
        pytest.skip(f"BUS-BRA cohort not found at {BUS_BRA} (bus_data.csv, Images/, Masks/)")
    return BUS_BRA


@pytest.fixture(scope="session")
def bus_bra_import(bus_bra_dir, tmp_path_factory):
    """Import the real BUS-BRA collection once per session; keep what the importer logged."""
    from srnomogram.data.importers import import_bus_bra

    return _import_logged(import_bus_bra, bus_bra_dir, tmp_path_factory.mktemp("busbra") / "manifest.csv")


@pytest.fixture(scope="session")
def bus_bra_manifest(bus_bra_import):
    return bus_bra_import[0]
