"""Hashed checkpoint files, shared by the deep, SR and radiomics models (no torch import here).

A saved model is a weights file (a torch ``state_dict``, a skops file) plus a ``meta.json`` that
records the weights file's SHA-256. :func:`write_meta` writes the JSON after the weights file;
:func:`verify_sha256` checks the hash before anything reads the weights, so a file that was
replaced, truncated or edited is refused with one line instead of being loaded.
"""

from __future__ import annotations

import json
from pathlib import Path

from .errors import CheckpointError
from .utils import atomic_path, file_sha256

__all__ = ["write_meta", "read_meta", "verify_sha256"]


def write_meta(meta_path, meta: dict, weights_path, key: str = "model_sha256") -> Path:
    """Write ``meta`` (plus ``key`` = SHA-256 of ``weights_path``) atomically as JSON."""
    meta = {**meta, key: file_sha256(weights_path)}
    meta_path = Path(meta_path)
    with atomic_path(meta_path) as tmp:
        tmp.write_text(json.dumps(meta, indent=1, default=str), encoding="utf-8")
    return meta_path


def read_meta(meta_path, what: str, remedy: str) -> dict:
    """The JSON metadata of a checkpoint; one-line :class:`CheckpointError` when absent or unreadable."""
    meta_path = Path(meta_path)
    if not meta_path.is_file():
        raise CheckpointError(f"{what} {meta_path.parent} has no {meta_path.name}. {remedy}")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{what} metadata {meta_path} is not valid JSON ({exc}). {remedy}") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{what} metadata {meta_path} is not a JSON object. {remedy}")
    return meta


def verify_sha256(weights_path, meta: dict, meta_name: str = "meta.json", key: str = "model_sha256", required: bool = False) -> None:
    """Refuse a weights file whose SHA-256 differs from the one its metadata recorded.

    ``required=False`` accepts metadata written before hashes were recorded (no ``key``);
    ``required=True`` refuses it.
    """
    weights_path = Path(weights_path)
    if not weights_path.is_file():
        raise CheckpointError(f"Checkpoint file {weights_path} not found; re-save the model.")
    expected = meta.get(key)
    if expected is None:
        if required:
            raise CheckpointError(f"{meta_name} beside {weights_path} records no SHA-256; re-save the model.")
        return
    if file_sha256(weights_path) != expected:
        raise CheckpointError(
            f"Checkpoint {weights_path} is corrupted or was replaced: its SHA-256 does not match {meta_name}. "
            "Re-save the model (or rerun the study stage that wrote it)."
        )
