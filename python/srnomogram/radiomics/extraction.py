"""PyRadiomics feature extraction, with PyRadiomics' numbers and without its slow diameter search.

Every lesion goes through ``radiomics.featureextractor.RadiomicsFeatureExtractor`` itself
(loading, checks, cropping and every texture class are PyRadiomics' own code), with two changes
that leave every value as it is:

* the 3D ``shape`` class is swapped for :mod:`srnomogram.radiomics.shape`, which returns the
  same values without comparing every pair of mesh vertices (minutes on a large one-slice lesion);
* the grey-level discretisation, which each of the six classes repeats on the same ROI, is
  computed once per lesion and shared (:func:`discretise`: ``getBinEdges``' expressions with
  NumPy's min/max instead of Python's built-ins looping over the ROI, a fifth of the run time).

How an image reaches PyRadiomics (:func:`pyradiomics_input`)
-------------------------------------------------------------
* A 2D image becomes a one-slice volume (``SimpleITK.JoinSeries``: slice spacing 1 mm), which is
  how PyRadiomics sees a 2D scan saved as a one-slice NRRD/NIfTI. PyRadiomics skips the 3D shape
  class on 2D input; on the one-slice volume it computes the 14 shape features of the paper,
  and every other class gives the same values as on the 2D image.
* The image is cast to float64. PyRadiomics 3.0.1 computes the upper bin edge as
  ``max + 2 * binWidth`` in the image's own type (``imageoperations.getBinEdges``); with NumPy 2 an
  8-bit image whose ROI reaches grey level 206 or more wraps around and every texture feature
  is computed on a corrupted discretisation (for example firstorder Entropy 0.31 instead of 2.20
  on BrEaST case186). The cast changes nothing else.

The reference for every number is therefore
``RadiomicsFeatureExtractor(params).execute(*pyradiomics_input(image, mask))``.
"""

from __future__ import annotations

import collections
import functools
import json
import logging
import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError, param_error
from ..utils import atomic_path, file_sha256, hash_bytes

log = logging.getLogger(__name__)

#: Feature classes of the paper and how many features each contributes with default settings.
PAPER_CLASSES = {"firstorder": 18, "glcm": 24, "gldm": 14, "glrlm": 16, "glszm": 16, "ngtdm": 5, "shape": 14}
#: Slice spacing (mm) given to a 2D image made into a one-slice volume.
SLICE_SPACING_MM = 1.0
#: Bumped whenever a change here could change a cached value.
CACHE_FORMAT = 1


# ------------------------------------------------------------------------------------ logging
@functools.lru_cache(maxsize=1)
def _quiet_pyradiomics() -> None:
    """PyRadiomics adds a stderr handler at INFO on import; keep its own logger to errors only.

    Only the ``radiomics`` logger is touched (never the root logger); a user who wants its
    messages can lower the level again after importing srnomogram.radiomics.
    """
    import radiomics  # noqa: F401  (configures its logger on import)

    logging.getLogger("radiomics").setLevel(logging.ERROR)


# ------------------------------------------------------------------------------------ params
def _params_spec(params):
    """Normalise ``params`` into something hashable and picklable: None, ('file', text, suffix) or ('dict', json)."""
    if params is None:
        return None
    if isinstance(params, (str, os.PathLike)):
        p = Path(params)
        validate_params(p)  # PyRadiomics' own schema, before anything is read or computed
        return ("file", p.read_text(encoding="utf-8"), p.suffix.lower())
    if isinstance(params, dict):
        validate_params(params)
        try:
            return ("dict", json.dumps(params, sort_keys=True))
        except TypeError:
            raise param_error("params", "extract", "a path to a PyRadiomics parameter file, a JSON-serialisable dict or None", params) from None
    raise param_error("params", "extract", "a path to a PyRadiomics parameter file, a dict or None", params)


#: Where PyRadiomics documents its parameter files (quoted by the errors).
PARAMS_DOC = "https://pyradiomics.readthedocs.io/en/latest/customization.html"
_SECTIONS = "setting, featureClass, imageType, voxelSetting"


def validate_params(params) -> dict:
    """Check PyRadiomics parameters against PyRadiomics' own schema; return them as a dict.

    The check is the one ``RadiomicsFeatureExtractor`` runs when it loads parameters (pykwalify with
    ``radiomics/schemas/paramSchema.yaml`` and ``schemaFuncs.py``), run up front so that a mistake is
    one line naming the file and the key, before any image is read, rather than a traceback from a
    worker. A file is read as :func:`srnomogram.utils.read_yaml_file` reads user YAML (at most 1 MiB,
    aliases bounded); a ``.json`` file as JSON.

    Parameters
    ----------
    params : path-like or dict
        A PyRadiomics parameter file (YAML or JSON) or its content.

    Raises
    ------
    InputError
        "PyRadiomics parameter file F is invalid at setting.label: Value 'one' is not of type 'int'. ..."
        (the first of pykwalify's errors, and how many more), or the file is missing, too large, not
        YAML/JSON, empty, or not a mapping.
    """
    if isinstance(params, dict):
        what, data = "PyRadiomics parameters (a dict) are", params
    else:
        from ..utils import YAML_MAX_BYTES, check_user_file, load_json, read_yaml_file

        path = Path(params)
        what = f"PyRadiomics parameter file {path} is"
        if not path.exists():
            raise InputError(f"PyRadiomics parameter file {path} not found. Give a YAML or JSON parameter file, or none "
                             "for PyRadiomics' defaults.")
        check_user_file(path, "PyRadiomics parameter file", InputError, (".yaml", ".yml", ".json"), "params.yaml",
                        noun="YAML or JSON parameter file")
        if path.suffix.lower() == ".json":
            if path.stat().st_size > YAML_MAX_BYTES:
                raise InputError(f"{what} over 1 MiB; check that it is the right file.")
            try:
                data = load_json(path.read_text(encoding="utf-8"), source=f"PyRadiomics parameter file {path}")
            except InputError:  # nested too deep: already one line
                raise
            except (ValueError, UnicodeDecodeError) as exc:
                raise InputError(f"{what} not valid JSON ({str(exc)[:120]}).") from None
        else:
            data = read_yaml_file(path, what="PyRadiomics parameter file", example="params.yaml")
        if data is None:
            raise InputError(f"{what} empty; give the settings to change ({PARAMS_DOC}), or no file for PyRadiomics' defaults.")
    if not isinstance(data, dict):
        raise InputError(f"{what[:-3] if what.endswith(' is') else what} must be a mapping of sections ({_SECTIONS}). "
                         f"Got {type(data).__name__} instead.")
    _schema_check(data, what)
    return data


def _cut(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _schema_check(data: dict, what: str) -> None:
    """pykwalify with PyRadiomics' schema, its log silenced; the first error as one line."""
    _quiet_pyradiomics()
    import pykwalify.core
    from pykwalify.errors import PyKwalifyException
    from radiomics import getParameterValidationFiles

    schema, funcs = getParameterValidationFiles()
    log, disabled = pykwalify.core.log, pykwalify.core.log.disabled
    log.disabled = True  # it logs every error at ERROR level before raising them all
    core = None
    try:
        with warnings.catch_warnings():  # its loader of schemaFuncs.py uses the deprecated load_module()
            warnings.simplefilter("ignore", DeprecationWarning)
            core = pykwalify.core.Core(source_data=data, schema_files=[schema], extensions=[funcs])
            core.validate(raise_exception=True)
    except PyKwalifyException:
        errors = list(getattr(core, "errors", None) or [])
        first = errors[0] if errors else None
        path = str(getattr(first, "path", "") or "").strip("/")
        text = str(first).split(" Path: ")[0].rstrip(".") if first is not None else "rejected by PyRadiomics' schema"
        more = f" ({len(errors) - 1} more)" if len(errors) > 1 else ""
        raise InputError(f"{what} invalid at {path.replace('/', '.') or 'top level'}: {_cut(text, 160)}{more} "
                         f"(see {PARAMS_DOC} for the keys and values PyRadiomics accepts).") from None
    except (ValueError, TypeError) as exc:  # PyRadiomics' own checks (feature classes, image types, wavelets, ...)
        tb = exc.__traceback__
        while tb.tb_next is not None:  # the check that raised: schemaFuncs.checkX(value, rule_obj, path)
            tb = tb.tb_next
        path = str(tb.tb_frame.f_locals.get("path") or "").strip("/")
        raise InputError(f"{what} invalid at {path.replace('/', '.') or 'top level'}: {_cut(str(exc).rstrip('.'), 200)} "
                         f"(see {PARAMS_DOC} for the keys and values PyRadiomics accepts).") from None
    finally:
        log.disabled = disabled


# ------------------------------------------------------------------------------------ discretisation
def discretise(matrix: np.ndarray, mask: np.ndarray, settings: dict) -> tuple[np.ndarray, np.ndarray]:
    """PyRadiomics' grey-level discretisation of the ROI: ``imageoperations.binImage`` and the grey levels.

    Returns ``(binned, grayLevels)``, equal to ``binImage(matrix, mask, **settings)[0]`` and
    ``numpy.unique(binned[mask])``. With a fixed bin width (the default) the bin edges follow
    ``getBinEdges``' own expressions, with NumPy's min and max of the ROI values in place of
    Python's built-in ``min``/``max`` iterating over the array (the same float64 values, a few
    hundred times faster); a bin count, or NaN in the ROI, goes through PyRadiomics' code itself.
    """
    from radiomics import imageoperations

    values = matrix[mask]
    bin_width = settings.get("binWidth", 25)
    if settings.get("binCount") is not None or values.size == 0:
        binned = imageoperations.binImage(matrix, mask, **settings)[0]
        return binned, np.unique(binned[mask])
    minimum, maximum = values.min(), values.max()
    if np.isnan(minimum) or np.isnan(maximum):  # Python's min/max depend on where the NaN sits
        binned = imageoperations.binImage(matrix, mask, **settings)[0]
        return binned, np.unique(binned[mask])
    low = minimum - (minimum % bin_width)
    high = maximum + 2 * bin_width
    edges = np.arange(low, high, bin_width)
    if len(edges) == 1:  # a flat ROI: one bin, as getBinEdges makes it
        edges = [edges[0] - 0.5, edges[0] + 0.5]
    binned = np.zeros(matrix.shape, dtype="int")
    binned[mask] = np.digitize(values, edges)
    return binned, np.unique(binned[mask])


@functools.lru_cache(maxsize=16)
def _shared_binning_class(feature_class):
    """``feature_class`` whose ``_applyBinning`` reuses a discretisation given before ``__init__``.

    Every PyRadiomics feature class of one lesion discretises the same image with the same mask
    and settings in its ``__init__``; the first one computes it (:func:`discretise`), the others
    receive it (``obj._binning``) instead of computing it again. The feature names, which
    PyRadiomics looks up by introspection in every ``__init__``, are looked up once.
    """

    names = feature_class.getFeatureNames()  # inspect.getmembers: once here, not in every __init__

    class SharedBinning(feature_class):
        _binning = None

        @classmethod
        def getFeatureNames(cls):
            return dict(names)

        def _applyBinning(self, matrix):
            if self._binning is None:
                self._binning = discretise(matrix, self.maskArray, self.settings)
            binned, gray = self._binning
            self.coefficients["grayLevels"] = gray.copy()
            self.coefficients["Ng"] = int(np.max(gray))
            return binned.copy()

    SharedBinning.__name__ = SharedBinning.__qualname__ = feature_class.__name__
    SharedBinning.__module__ = feature_class.__module__  # its logger stays PyRadiomics' (quiet)
    return SharedBinning


@functools.lru_cache(maxsize=8)
def _extractor(spec):
    """A PyRadiomics extractor for ``spec`` whose 3D shape class is the fast one (cached per process)."""
    _quiet_pyradiomics()
    import tempfile

    from radiomics import featureextractor, getFeatureClasses, imageoperations

    from .shape import fast_shape_class

    class _Extractor(featureextractor.RadiomicsFeatureExtractor):
        def computeShape(self, image, mask, boundingBox, **kwargs):
            enabled = self.enabledFeatures
            out = collections.OrderedDict()
            if "shape" in enabled and mask.GetDimension() == 3:
                croppedImage, croppedMask = imageoperations.cropToTumorMask(image, mask, boundingBox)
                shape = fast_shape_class()(croppedImage, croppedMask, **kwargs)
                for feature in enabled["shape"] or []:
                    shape.enableFeatureByName(feature)
                for name, value in shape.execute().items():
                    out[f"original_shape_{name}"] = value
            rest = {k: v for k, v in enabled.items() if k != "shape" or mask.GetDimension() != 3}
            if "shape2D" not in rest and "shape" not in rest:
                return out  # nothing left for PyRadiomics' computeShape (which would crop once more)
            self.enabledFeatures = rest
            try:
                out.update(super().computeShape(image, mask, boundingBox, **kwargs))
            finally:
                self.enabledFeatures = enabled
            return out

        def computeFeatures(self, image, mask, imageTypeName, **kwargs):
            # RadiomicsFeatureExtractor.computeFeatures, with one discretisation shared by the classes
            if kwargs.get("voxelBased", False):
                return super().computeFeatures(image, mask, imageTypeName, **kwargs)
            classes = getFeatureClasses()
            out = collections.OrderedDict()
            binning = None
            for class_name, feature_names in self.enabledFeatures.items():
                if class_name.startswith("shape") or class_name not in classes:
                    continue
                cls = _shared_binning_class(classes[class_name])
                fc = cls.__new__(cls)
                fc._binning = binning
                fc.__init__(image, mask, **kwargs)
                binning = fc._binning
                for feature in feature_names or []:
                    fc.enableFeatureByName(feature)
                for name, value in fc.execute().items():
                    out[f"{imageTypeName}_{class_name}_{name}"] = value
            return out

    if spec is None:
        ex = _Extractor()
    elif spec[0] == "dict":
        ex = _Extractor(json.loads(spec[1]))
    else:
        _, text, suffix = spec
        with tempfile.TemporaryDirectory() as tmp:  # PyRadiomics only reads parameter files by path
            path = Path(tmp) / f"params{suffix or '.yaml'}"
            path.write_text(text, encoding="utf-8")
            ex = _Extractor(str(path))
    # diagnostics_* entries only (image hashes, connected components): a third of the run time
    ex.settings["additionalInfo"] = False
    return ex


def _can_precrop(ex) -> bool:
    """True when PyRadiomics only ever looks at the mask's bounding box of the image.

    With the original image type only, no normalisation and no resampling, PyRadiomics crops
    image and mask to the mask's bounding box before every feature class, so cropping first
    gives the same arrays (and skips work on the whole scan).
    """
    s = ex.settings
    return (
        set(ex.enabledImagetypes) == {"Original"}
        and not ex.enabledImagetypes["Original"]
        and not s.get("normalize", False)
        and s.get("resampledPixelSpacing") is None
    )


def reads_only_lesion_box(params=None) -> bool:
    """True when an extraction with ``params`` reads nothing of the image beyond the mask's bounding
    box plus one voxel (original image type only, no normalisation, no resampling); ROI-only
    super-resolution (:func:`srnomogram.sr.apply.apply_manifest`) is then exact for it."""
    return _can_precrop(_extractor(_params_spec(params)))


def _precropped_input(image, mask):
    """``pyradiomics_input`` of image and mask cropped to the mask's bounding box plus one voxel.

    The same images as ``pyradiomics_input(crop(image), crop(mask))`` (physical position kept;
    a 2D image becomes the one-slice volume ``JoinSeries`` makes: z origin 0, slice spacing
    :data:`SLICE_SPACING_MM`, the 2D direction in the upper-left block), built from NumPy arrays
    in one step instead of through four intermediate SimpleITK images.
    """
    import SimpleITK as sitk

    marr = sitk.GetArrayViewFromImage(mask)
    nz = np.nonzero(marr)
    # one voxel of margin: PyRadiomics refuses a mask without background (a lesion filling its box)
    region = tuple(slice(max(int(a.min()) - 1, 0), min(int(a.max()) + 2, n)) for a, n in zip(nz, marr.shape))
    origin = image.TransformIndexToPhysicalPoint([r.start for r in region][::-1])
    spacing, direction = image.GetSpacing(), image.GetDirection()
    img = sitk.GetArrayViewFromImage(image)[region].astype(np.float64)
    msk = np.ascontiguousarray(marr[region])
    if image.GetDimension() == 2:
        img, msk = img[None], msk[None]
        spacing, origin = (*spacing, SLICE_SPACING_MM), (*origin, 0.0)
        d = direction
        direction = (d[0], d[1], 0.0, d[2], d[3], 0.0, 0.0, 0.0, 1.0)
    out = []
    for arr in (img, msk):
        cropped = sitk.GetImageFromArray(arr)
        cropped.SetSpacing(spacing)
        cropped.SetDirection(direction)
        cropped.SetOrigin(origin)
        out.append(cropped)
    return out[0], out[1]


@functools.lru_cache(maxsize=8)
def _reference_extractor(spec):
    """PyRadiomics' own extractor (all-pairs diameters) for ``spec``; for tests and benchmarks."""
    _quiet_pyradiomics()
    import tempfile

    from radiomics import featureextractor

    if spec is None:
        return featureextractor.RadiomicsFeatureExtractor()
    if spec[0] == "dict":
        return featureextractor.RadiomicsFeatureExtractor(json.loads(spec[1]))
    _, text, suffix = spec
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"params{suffix or '.yaml'}"
        path.write_text(text, encoding="utf-8")
        return featureextractor.RadiomicsFeatureExtractor(str(path))


# ------------------------------------------------------------------------------------ one lesion
def pyradiomics_input(image, mask):
    """The SimpleITK image and mask handed to PyRadiomics for one lesion.

    2D images become one-slice volumes (slice spacing :data:`SLICE_SPACING_MM`) and the image is
    cast to float64 (see the module notes); the mask is a uint8 0/1 image on the image's grid.
    """
    import SimpleITK as sitk

    if image.GetDimension() == 2:
        image = sitk.JoinSeries(image, 0.0, SLICE_SPACING_MM)
        mask = sitk.JoinSeries(mask, 0.0, SLICE_SPACING_MM)
    if image.GetPixelID() != sitk.sitkFloat64:
        image = sitk.Cast(image, sitk.sitkFloat64)
    return image, mask


def _check_mask(mask, case_id):
    import SimpleITK as sitk

    arr = sitk.GetArrayViewFromImage(mask)
    n = int(np.count_nonzero(arr))
    where = f"case {case_id!r}: " if case_id is not None else ""
    if n == 0:
        raise InputError(f"{where}the mask is empty (no non-zero voxel). Draw the lesion or drop the case.")
    if n == 1:
        raise InputError(f"{where}the mask holds a single voxel; PyRadiomics needs a lesion spanning at least 2 dimensions. Redraw the mask or drop the case.")


def extract_case(image, mask, params=None, case_id=None, reference: bool = False) -> dict:
    """The ``original_*`` PyRadiomics features of one lesion.

    Parameters
    ----------
    image, mask : SimpleITK.Image
        Image and 0/1 mask on the same grid (2D or 3D), e.g. from
        :func:`srnomogram.data.readers.read_case`.
    params : path-like, dict or None
        A PyRadiomics parameter file (YAML/JSON) or dict; None for PyRadiomics' defaults.
    case_id : str, optional
        Used in error messages.
    reference : bool
        Use PyRadiomics' unmodified extractor (its all-pairs diameter search; slow).

    Returns
    -------
    dict
        Feature name (``original_<class>_<feature>``) to float, in PyRadiomics' order.

    Raises
    ------
    InputError
        For an empty or one-voxel mask, or a mask PyRadiomics rejects.
    """
    spec = params if isinstance(params, tuple) or params is None else _params_spec(params)
    _check_mask(mask, case_id)
    ex = _reference_extractor(spec) if reference else _extractor(spec)
    if not reference and _can_precrop(ex):
        img, msk = _precropped_input(image, mask)
    else:
        img, msk = pyradiomics_input(image, mask)
    try:
        result = ex.execute(img, msk)
    except (ValueError, AssertionError) as exc:
        where = f"case {case_id!r}: " if case_id is not None else ""
        raise InputError(f"{where}PyRadiomics rejected the image/mask ({exc}). Check that the mask marks the lesion with 1 on the image's grid.") from None
    return {k: float(v) for k, v in result.items() if k.startswith("original_")}


# ------------------------------------------------------------------------------------ cache
@functools.lru_cache(maxsize=1)
def _versions() -> str:
    from importlib import metadata

    from .. import __version__

    try:
        pyrad = metadata.version("pyradiomics")
    except metadata.PackageNotFoundError:  # pragma: no cover
        pyrad = "unknown"
    return f"srnomogram={__version__};pyradiomics={pyrad};format={CACHE_FORMAT}"


def _paths(cell) -> list[str]:
    return [s for s in str(cell).split(";") if s]


def case_key(image_path, mask_cell, spacing, spec) -> str:
    """Content hash of one extraction: image and mask bytes, spacing, parameters, versions."""
    parts = [_versions(), "image", file_sha256(image_path)]
    for m in _paths(mask_cell):
        parts += ["mask", file_sha256(m)]
    parts += ["spacing", repr(None if spacing is None else float(spacing)), "params", json.dumps(spec)]
    return hash_bytes(*parts)


def _cache_file(cache_dir: Path, key: str) -> Path:
    return cache_dir / key[:2] / f"{key}.json"


def _cache_read(cache_dir, key):
    if cache_dir is None:
        return None
    f = _cache_file(cache_dir, key)
    try:
        with open(f, encoding="utf-8") as fh:
            return json.load(fh)
    except (FileNotFoundError, json.JSONDecodeError):  # absent, or a file not written by us
        return None


def _cache_write(cache_dir, key, features):
    if cache_dir is None:
        return
    with atomic_path(_cache_file(cache_dir, key)) as tmp:
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(features, fh)  # float repr round-trips float64 exactly


# ------------------------------------------------------------------------------------ cohort
def _one(case_id, image_path, mask_cell, spacing, spec, cache_dir, key):
    """Worker: read, extract, cache. Returns (case_id, features)."""
    from ..data.readers import read_case

    cached = _cache_read(cache_dir, key)
    if cached is not None:
        return case_id, cached
    import SimpleITK as sitk

    masks = _paths(mask_cell)
    # ITK's own threads only add overhead on images this small, and fight the lesion-level workers
    threads = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
    try:
        image, mask = read_case(image_path, masks[0] if len(masks) == 1 else masks, spacing, case_id)
        feats = extract_case(image, mask, spec, case_id=case_id)
    finally:
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(threads)
    _cache_write(cache_dir, key, feats)
    return case_id, feats


def _resolve_mask_col(df, image_col, mask_col):
    if mask_col is not None:
        return mask_col
    suffix = image_col[len("image"):]
    candidate = f"mask{suffix}"
    if suffix and candidate in df.columns and df[candidate].notna().all():
        return candidate
    return "mask"


def extract(
    manifest,
    image_col: str = "image",
    jobs: int | None = None,
    params=None,
    cache_dir=None,
    mask_col: str | None = None,
    progress: bool | None = None,
    scheduler: str | None = None,
) -> pd.DataFrame:
    """Extract PyRadiomics features for every lesion of a manifest.

    Parameters
    ----------
    manifest : path-like or pandas.DataFrame
        A cohort manifest (see :func:`srnomogram.data.manifest.load_manifest`).
    image_col : str
        Column with the image paths: ``"image"`` (original, OR) or ``"image_sr"`` (super-resolved).
    jobs : int or None
        Parallel worker processes (joblib loky); None uses every core, 1 runs in this process.
        Not used with a ``scheduler``.
    params : path-like, dict or None
        A PyRadiomics parameter file (YAML/JSON, used unchanged) or parameter dict; None keeps
        PyRadiomics' defaults, which give the paper's 107 features.
    cache_dir : path-like, optional
        Folder of per-lesion results keyed by a content hash of the image and mask bytes, the
        spacing, the parameters and the srnomogram/PyRadiomics versions; a rerun with nothing
        changed reads them back instead of extracting.
    mask_col : str, optional
        Mask column; default ``"mask"``, or ``"mask_sr"`` for ``image_col="image_sr"`` when the
        manifest has that column filled (SR images on a finer grid).
    progress : bool or None
        Show a progress bar (None: only on a terminal).
    scheduler : str or None
        Address of a running ``dask.distributed`` scheduler (``tcp://host:8786``): extract on
        that cluster's workers instead of local processes (``jobs`` is then not used). None
        reads ``$DASK_SCHEDULER_ADDRESS`` and runs locally when it is unset. The workers read the
        images, masks and ``cache_dir`` by the manifest's paths: the cluster needs a filesystem
        shared with this machine at the same paths. See :mod:`srnomogram.parallel`.

    Returns
    -------
    pandas.DataFrame
        Index ``case_id`` (manifest order), one float column per feature, named as PyRadiomics
        names them (``original_glcm_Contrast``, ...): 107 columns with default settings.

    Raises
    ------
    InputError
        For unreadable images, empty or one-voxel masks, masks PyRadiomics rejects (the message
        names the case), or invalid arguments.
    ClusterError
        When a scheduler is given but cannot be used (unreachable, no worker, other versions).

    Notes
    -----
    Each value equals ``RadiomicsFeatureExtractor(params).execute()`` on
    :func:`pyradiomics_input` of the lesion (see the module notes); NaN or infinite values that
    PyRadiomics returns (e.g. some texture features of a constant ROI) are kept as they are and
    reported with a warning.
    """
    from tqdm.auto import tqdm

    from ..data.manifest import load_manifest
    from ..parallel import imap_unordered, resolve_scheduler

    if isinstance(manifest, (str, os.PathLike)):
        df = load_manifest(manifest)
    elif isinstance(manifest, pd.DataFrame):
        df = manifest
    else:
        raise param_error("manifest", "extract", "a manifest path or a pandas DataFrame", type(manifest).__name__)
    if jobs is not None and (isinstance(jobs, bool) or not isinstance(jobs, (int, np.integer)) or jobs == 0 or jobs < -1):
        raise param_error("jobs", "extract", "a positive int, -1 or None", jobs)
    mask_col = _resolve_mask_col(df, image_col, mask_col)
    for col in ("case_id", image_col, mask_col):
        if col not in df.columns:
            raise InputError(f"The manifest has no column {col!r}; columns are {list(df.columns)}.")
    if df.empty:
        raise InputError("The manifest has no rows; nothing to extract.")
    spec = _params_spec(params)
    scheduler = resolve_scheduler(scheduler)
    cache_dir = None if cache_dir is None else Path(cache_dir)
    spacing = df["spacing"] if "spacing" in df.columns else pd.Series([None] * len(df), index=df.index)

    tasks = []
    for (_, row), sp in zip(df.iterrows(), spacing):
        sp = None if sp is None or (isinstance(sp, float) and not np.isfinite(sp)) else float(sp)
        image_path, mask_cell = row[image_col], row[mask_col]
        if image_path is None or (isinstance(image_path, float) and np.isnan(image_path)):
            raise InputError(f"case {row['case_id']!r}: column {image_col!r} is empty. Fill it (e.g. run the SR stage) or drop the case.")
        key = case_key(image_path, mask_cell, sp, spec) if cache_dir is not None else None
        tasks.append((str(row["case_id"]), str(image_path), str(mask_cell), sp, spec, cache_dir, key))

    n_jobs = -1 if jobs is None else int(jobs)
    results = {}
    for t in tasks:  # cache hits are read here: a rerun starts no worker
        cached = _cache_read(cache_dir, t[-1]) if cache_dir is not None else None
        if cached is not None:
            results[t[0]] = cached
    pending = [t for t in tasks if t[0] not in results]
    if len(results):
        log.info("%d of %d lesions read from the cache %s", len(results), len(tasks), cache_dir)
    bar = tqdm(total=len(pending), desc=f"radiomics ({image_col})", unit="lesion", disable=None if progress is None or not pending else not progress)
    try:
        for cid, feats in imap_unordered(_one, pending, jobs=n_jobs, scheduler=scheduler):
            results[cid] = feats
            bar.update()
    finally:
        bar.close()

    out = pd.DataFrame.from_dict({cid: results[cid] for cid, *_ in tasks}, orient="index")
    out.index.name = "case_id"
    out = out.astype(np.float64)
    bad = ~np.isfinite(out.to_numpy())
    if bad.any():
        cols = list(out.columns[bad.any(axis=0)])
        log.warning("%d non-finite feature value(s) (PyRadiomics' own) in %d column(s): %s", int(bad.sum()), len(cols), ", ".join(cols[:5]) + (" ..." if len(cols) > 5 else ""))
    return out


def feature_class_counts(columns) -> dict:
    """Number of ``original_<class>_*`` columns per feature class."""
    counts = collections.Counter(c.split("_")[1] for c in columns if c.startswith("original_"))
    return dict(counts)
