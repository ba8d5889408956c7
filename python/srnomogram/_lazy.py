"""Lazy package exports: names resolve to their submodule on first use (PEP 562).

Importing a subpackage (e.g. to build the CLI) must not import torch, PyRadiomics or rpy2.
"""

from __future__ import annotations

import importlib
import sys


def lazy_exports(package: str, table: dict[str, str]):
    """Return ``(__getattr__, __dir__)`` for ``package`` that load ``name`` from ``table[name]``.

    ``table`` maps an exported name to the relative module that defines it (``".model"``).
    """

    def __getattr__(name):
        module = table.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(module, package), name)

    def __dir__():
        return sorted(set(vars(sys.modules[package])) | set(table))

    return __getattr__, __dir__
