"""Save and load fitted radiomics pipelines with skops (no pickle).

``skops.io`` (from the scikit-learn developers) stores an estimator as a zip of JSON and NumPy
arrays; loading rebuilds only the types it is told to trust and runs no code from the file. A
pipeline of :func:`~srnomogram.radiomics.make_model` holds scikit-learn and NumPy types, which
skops trusts itself, plus the types listed in :data:`TRUSTED_TYPES`: our two selectors and the
scikit-learn internals of the Platt-scaled SVM that skops' own default list leaves out. Anything
else in a file is refused.

Each ``<name>.skops`` file has a ``<name>.json`` beside it with its SHA-256, the feature columns it
expects (in order) and the versions that wrote it; :func:`load_model` checks the hash before skops
reads a byte of it.
"""

from __future__ import annotations

import platform
from pathlib import Path

from .._checkpoint import read_meta, verify_sha256, write_meta
from ..errors import CheckpointError
from ..utils import atomic_path

__all__ = ["TRUSTED_TYPES", "save_model", "load_model", "FORMAT"]

FORMAT = "srnomogram.radiomics/1"

# Types of a fitted make_model() pipeline that skops does not trust by default (checked by
# tests/python/radiomics/test_persist.py against skops.io.get_untrusted_types of both kinds).
TRUSTED_TYPES = (
    "srnomogram.radiomics.selection.CorrelationPruner",
    "srnomogram.radiomics.selection.MannWhitneySelector",
    "srnomogram.radiomics.calibration.PlattCalibratedCV",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
)


def save_model(pipeline, path, feature_names, **info) -> Path:
    """Write ``path`` (``.skops``) and its ``.json`` metadata (SHA-256, feature names, versions).

    Parameters
    ----------
    pipeline : sklearn.pipeline.Pipeline
        A fitted :func:`~srnomogram.radiomics.make_model` pipeline.
    path : path-like
        Target file, ending in ``.skops``.
    feature_names : sequence of str
        The feature columns the pipeline was fitted on, in order.
    **info
        Further JSON-safe metadata (model name, images, seed).
    """
    import sklearn
    import skops
    import skops.io as sio

    from .. import __version__

    path = Path(path)
    with atomic_path(path) as tmp:
        sio.dump(pipeline, tmp)
    meta = {
        "format": FORMAT,
        "features": [str(f) for f in feature_names],
        **info,
        "versions": {"srnomogram": __version__, "scikit-learn": sklearn.__version__, "skops": skops.__version__,
                     "python": platform.python_version()},
    }
    write_meta(path.with_suffix(".json"), meta, path)
    return path


def load_model(path):
    """Load a pipeline written by :func:`save_model`: hash checked, only trusted types rebuilt.

    Returns
    -------
    (pipeline, meta)
        The fitted pipeline and its metadata (``features`` in order, versions, ...).

    Raises
    ------
    CheckpointError
        Missing file or metadata, a hash that does not match, or a type outside the trusted list.
    """
    import skops.io as sio

    path = Path(path)
    remedy = "Rerun the study's radiomics_models stage ('srnomogram run STUDY.yaml --force radiomics_models')."
    meta = read_meta(path.with_suffix(".json"), "Radiomics model", remedy)
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path.with_suffix('.json')} has format {meta.get('format')!r}, expected {FORMAT!r}. {remedy}")
    verify_sha256(path, meta, path.with_suffix(".json").name, required=True)
    try:
        untrusted = sio.get_untrusted_types(file=path)
    except Exception as exc:  # noqa: BLE001 - a corrupted zip fails in many ways
        raise CheckpointError(f"{path} is not a readable skops file ({type(exc).__name__}: {exc}). {remedy}") from None
    unknown = sorted(set(untrusted) - set(TRUSTED_TYPES))
    if unknown:
        raise CheckpointError(f"{path} holds type(s) outside the trusted list: {', '.join(unknown)}; it was not loaded. {remedy}")
    try:
        model = sio.load(path, trusted=list(untrusted))
    except Exception as exc:  # noqa: BLE001
        raise CheckpointError(f"{path} could not be loaded by skops ({type(exc).__name__}: {exc}). {remedy}") from None
    return model, meta
