"""The R statistics from Python, through rpy2: pandas in, pandas out.

The statistics of the paper (nomogram, bootstrap calibration, Hosmer–Lemeshow, decision curves,
DeLong ROC comparisons, baseline and logistic tables, figures) have one implementation, in the R
package ``srnomogram`` (folder ``R/`` of the repository). This module calls it:

* rpy2 is imported only when a function here is first called;
* conversions happen only inside ``with (ro.default_converter + pandas2ri.converter).context():``,
  never through a global ``pandas2ri.activate()``;
* the R package is found in the folders of the ``SRNOMOGRAM_R_LIBS`` environment variable
  (``os.pathsep``-separated), then ``<sys.prefix>/R-library`` (where ``setup.sh`` installs it), then
  R's own library paths; setting ``SRNOMOGRAM_R_SOURCE`` to a source checkout loads the package
  from source with ``pkgload::load_all`` instead (for development);
* an R error becomes :class:`~srnomogram.errors.RBridgeError` carrying R's message and condition
  classes; R warnings become Python :class:`RWarning` warnings.

Data frames become R data frames; 0/1 outcomes and scores may be NumPy arrays or pandas Series.
Results that are R data frames come back as pandas DataFrames; ``htest`` results (``hl_test``,
``compare_roc``) as dicts; classed model objects (``fit_nomogram``) as :class:`RObject`, which can be
passed back to other functions here and turned into tables with :meth:`RObject.frame`.
"""

from __future__ import annotations

import functools
import os
import sys
import threading
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import RBridgeError

__all__ = [
    "RObject",
    "RWarning",
    "call",
    "r_library_paths",
    "hl_test",
    "decision_curve",
    "fit_nomogram",
    "calibrate_nomogram",
    "validate_nomogram",
    "nomogram_points",
    "roc_auc",
    "compare_roc",
    "classification_metrics",
    "baseline_table",
    "logistic_table",
    "figure",
    "save_plot",
    "r_versions",
]

_LOCK = threading.RLock()


class RWarning(UserWarning):
    """A warning raised by R code (R's message)."""


def r_library_paths() -> list[str]:
    """Folders searched first for the R package: ``$SRNOMOGRAM_R_LIBS`` then ``<sys.prefix>/R-library``."""
    paths = [p for p in os.environ.get("SRNOMOGRAM_R_LIBS", "").split(os.pathsep) if p]
    default = Path(sys.prefix) / "R-library"
    if default.is_dir():
        paths.append(str(default))
    return paths


_R_HELPERS = r"""
local({
  .srn_call <- function(f, args) {
    warns <- character()
    value <- withCallingHandlers(
      tryCatch(do.call(f, args),
               error = function(e) structure(list(message = conditionMessage(e),
                                                  classes = class(e)),
                                             class = "srnomogram_bridge_error")),
      warning = function(w) { warns <<- c(warns, conditionMessage(w)); invokeRestart("muffleWarning") })
    list(value = value, warnings = warns)
  }
  .srn_call
})
"""


def _restore_ld_library_path(value):
    """Undo R's start-up change to the process's LD_LIBRARY_PATH.

    R's start-up script sets LD_LIBRARY_PATH (R's and the system's library folders) in the C environment
    of the process that embeds it, meant for R's own child processes. Python's child processes inherit
    it too (multiprocessing, loky and Dask workers, subprocess), and a Python that is not the system's
    then loads the system's extension modules and fails (``undefined symbol`` in ``_ssl``, seen as Dask's
    "Nanny failed to start worker process"). R itself has resolved its libraries by then.
    """
    if value is None:
        os.environ.pop("LD_LIBRARY_PATH", None)
        os.unsetenv("LD_LIBRARY_PATH")  # R set it behind os.environ's back
    else:
        os.environ["LD_LIBRARY_PATH"] = value


@functools.lru_cache(maxsize=1)
def _r():
    """Start R once: library paths, the srnomogram package, the call helper."""
    ld_before = os.environ.get("LD_LIBRARY_PATH")
    try:
        import rpy2.robjects as ro
    except Exception as exc:  # ImportError, or R not found by rpy2
        raise RBridgeError(f"rpy2 cannot start R ({exc}). Install R and rpy2, or use the R package directly.") from None
    finally:
        _restore_ld_library_path(ld_before)
    paths = r_library_paths()
    if paths:
        ro.r[".libPaths"](ro.StrVector(paths + list(ro.r[".libPaths"]())))
    ro.r("options(cli.num_colors = 1, cli.unicode = FALSE, width = 200)")
    source = os.environ.get("SRNOMOGRAM_R_SOURCE")
    try:
        if source:
            ro.r["suppressMessages"](ro.r("pkgload::load_all")(source, quiet=True, export_all=False))
            ns = ro.r("asNamespace")("srnomogram")
        else:
            ns = ro.r("function() suppressPackageStartupMessages(asNamespace('srnomogram'))")()
    except Exception as exc:
        msg = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise RBridgeError(
            f"The R package 'srnomogram' could not be loaded ({msg}). Install it with "
            f"'R CMD INSTALL --library=<dir> .' and set SRNOMOGRAM_R_LIBS=<dir>, or run setup.sh "
            f"(searched: {', '.join(paths) or 'R defaults'})."
        ) from None
    helper = ro.r(_R_HELPERS)
    return ro, ns, helper


class RObject:
    """An R object returned by the package (e.g. a fitted nomogram), kept on the R side.

    Pass it back to the functions of this module; turn it into a table with :meth:`frame`.
    """

    def __init__(self, robj):
        self.r = robj

    @property
    def classes(self) -> list[str]:
        return list(self.r.rclass)

    def frame(self) -> pd.DataFrame:
        """``as.data.frame()`` of the object, as pandas."""
        return call("as.data.frame", self, _namespace="base")

    def summary(self, **kwargs):
        """``summary()`` of the object, converted (a DataFrame when R returns a data frame)."""
        return call("summary", self, _namespace="base", **kwargs)

    def element(self, name):
        """One element of the underlying R list, converted."""
        ro, _, _ = _r()
        with _LOCK:
            return _from_r(self.r.rx2(name))

    def __repr__(self):
        ro, _, _ = _r()
        with _LOCK:
            text = "\n".join(ro.r("function(x) utils::capture.output(print(x))")(self.r))
        return text


def _converter():
    import rpy2.robjects as ro
    from rpy2.robjects import numpy2ri, pandas2ri

    return ro.default_converter + numpy2ri.converter + pandas2ri.converter


def _to_r(value):
    import rpy2.robjects as ro

    if isinstance(value, RObject):
        return value.r
    if isinstance(value, pd.Series):
        if value.dtype == object or (
            isinstance(value.dtype, pd.api.extensions.ExtensionDtype) and not isinstance(value.dtype, pd.CategoricalDtype)
        ):
            return _column_to_r(value)
        value = value.to_numpy()
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value):
        return ro.StrVector(value)
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, (int, float, np.number)) for v in value):
        return ro.FloatVector([float(v) for v in value])
    if isinstance(value, dict):
        return ro.ListVector({k: _to_r(v) for k, v in value.items()})
    if isinstance(value, str) and "~" in value:
        return ro.Formula(value)
    if isinstance(value, str):
        return ro.StrVector([value])
    if isinstance(value, (bool, np.bool_)):
        return ro.BoolVector([bool(value)])
    if isinstance(value, (int, np.integer)):
        return ro.IntVector([int(value)])
    if isinstance(value, (float, np.floating)):
        return ro.FloatVector([float(value)])
    if isinstance(value, pd.DataFrame):
        return _frame_to_r(value)
    if value is None:
        return ro.NULL
    with _converter().context():
        return ro.conversion.get_conversion().py2rpy(value)


def _column_to_r(col: pd.Series):
    """An object/string/nullable column as an R vector, its missing values (None, NaN, pd.NA) as ``NA``.

    All-boolean columns become logical, all-integer integer, all-numeric double, anything else
    character (each value through ``str``); ``astype(str)`` would turn a missing value into the
    string "nan" or "None", which R takes for a category.
    """
    import rpy2.robjects as ro

    values = col.to_numpy(dtype=object, na_value=None)
    missing = pd.isna(values)
    present = values[~missing]
    if len(present) and all(isinstance(v, (bool, np.bool_)) for v in present):
        return ro.BoolVector([ro.NA_Logical if m else bool(v) for v, m in zip(values, missing)])
    if all(isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) for v in present) and (
        not len(present) or max(abs(int(v)) for v in present) <= 2**31 - 1
    ):
        return ro.IntVector([ro.NA_Integer if m else int(v) for v, m in zip(values, missing)])
    if all(isinstance(v, (int, float, np.number)) and not isinstance(v, (bool, np.bool_)) for v in present):
        return ro.FloatVector([ro.NA_Real if m else float(v) for v, m in zip(values, missing)])
    return ro.StrVector([ro.NA_Character if m else str(v) for v, m in zip(values, missing)])


def _frame_to_r(df: pd.DataFrame):
    """A pandas DataFrame as an R data.frame (index dropped; missing values as ``NA`` in every column)."""
    import rpy2.robjects as ro

    df = df.reset_index(drop=True)
    special = {}
    plain = df.copy()
    for c in df.columns:
        dtype = df[c].dtype
        if isinstance(dtype, pd.CategoricalDtype):
            continue  # pandas2ri makes a factor, NaN as NA
        if dtype == object or isinstance(dtype, pd.api.extensions.ExtensionDtype):
            special[c] = _column_to_r(df[c])  # object, string, Int64/Float64/boolean (pd.NA)
            plain[c] = 0.0
    with _converter().context():
        out = ro.conversion.get_conversion().py2rpy(plain)
    if special:
        cols = list(map(str, plain.columns))
        for c, vec in special.items():
            out[cols.index(str(c))] = vec
    return out


def _from_r(obj):
    import rpy2.robjects as ro
    from rpy2.rinterface import NULLType

    if isinstance(obj, NULLType):
        return None
    classes = list(getattr(obj, "rclass", []) or [])
    if "data.frame" in classes:
        with _converter().context():
            df = ro.conversion.get_conversion().rpy2py(obj)
        return df
    if "htest" in classes:
        out = {}
        for name in obj.names:
            if name == "data.name":  # R's deparse of the inputs; not useful in Python
                continue
            v = obj.rx2(name)
            try:
                arr = np.asarray(v)
            except Exception:  # pragma: no cover - unusual element
                continue
            if arr.dtype.kind in "fiub" and arr.size == 1:
                out[name.replace(".", "_")] = float(arr.reshape(-1)[0])
            elif arr.dtype.kind in "fiub":
                out[name.replace(".", "_")] = arr.astype(float)
            elif arr.size == 1:
                out[name.replace(".", "_")] = str(arr.reshape(-1)[0])
        if "parameter" in out:
            out["df"] = out["parameter"]
        return out
    plain = {"numeric", "integer", "character", "logical", "matrix", "array"}
    if classes and set(classes) <= plain:
        arr = np.asarray(obj)
        names = list(obj.names) if getattr(obj, "names", None) is not ro.NULL and obj.names is not None else None
        if names and len(names) == arr.size and arr.ndim == 1:
            return pd.Series(arr, index=names)
        if arr.size == 1 and arr.ndim == 1:
            v = arr[0]
            return v.item() if hasattr(v, "item") else v
        return arr
    if classes == ["list"]:
        return {n: _from_r(obj.rx2(n)) for n in obj.names} if obj.names is not ro.NULL else [_from_r(x) for x in obj]
    return RObject(obj)


def call(fname: str, *args, _namespace: str | None = None, **kwargs):
    """Call an R function of the srnomogram package (or of ``_namespace``) with converted arguments.

    Raises
    ------
    RBridgeError
        With R's condition message and classes when the R function signals an error.
    """
    ro, ns, helper = _r()
    with _LOCK:
        try:
            f = ns.find(fname) if _namespace is None else ro.r(f"{_namespace}::`{fname}`")
        except (KeyError, LookupError):
            raise RBridgeError(
                f"The R package 'srnomogram' has no function {fname!r}; reinstall it from this "
                "version of the source (setup.sh, or R CMD INSTALL --library=<dir> .)."
            ) from None
        rargs = [_to_r(a) for a in args]
        rkw = {k: _to_r(v) for k, v in kwargs.items()}
        arglist = ro.vectors.ListVector.from_length(len(rargs) + len(rkw))
        names = [""] * len(rargs) + list(rkw)
        for i, v in enumerate([*rargs, *rkw.values()]):
            arglist[i] = v
        if names:
            arglist.names = ro.StrVector(names)
        out = helper(f, arglist)
        value, warns = out.rx2("value"), list(out.rx2("warnings"))
        for w in warns:
            warnings.warn(f"R: {w}", RWarning, stacklevel=2)
        if "srnomogram_bridge_error" in list(getattr(value, "rclass", [])):
            msg = " ".join(str(value.rx2("message")[0]).split())
            classes = list(value.rx2("classes"))
            err = RBridgeError(f"{fname}: {msg}")
            err.r_classes = classes
            err.r_message = msg
            raise err
        return _from_r(value)


# ---------------------------------------------------------------------------------------------- API
def has_function(fname: str) -> bool:
    """Whether the loaded R package defines ``fname`` (an older installed version may not)."""
    _, ns, _ = _r()
    with _LOCK:
        try:
            ns.find(fname)
        except (KeyError, LookupError):
            return False
    return True


def hl_test(y, prob, g: int = 10) -> dict:
    """Hosmer–Lemeshow goodness-of-fit test (equal to ``ResourceSelection::hoslem.test``).

    Returns a dict with ``statistic`` (X-squared), ``df``, ``p_value`` and ``method``.
    """
    return call("hl_test", np.asarray(y, dtype=float), np.asarray(prob, dtype=float), g=int(g))


def decision_curve(formula: str, data: pd.DataFrame, **kwargs) -> pd.DataFrame:  # noqa: D417
    """Decision curve (net benefit by threshold; equal to ``rmda::decision_curve``), as a tidy table.

    Keyword arguments go to R's ``decision_curve`` (``fitted_risk``, ``thresholds``,
    ``confidence_intervals``, ``bootstraps``, ``policy``, ``study_design``, ...).
    """
    res = call("decision_curve", formula, data, **kwargs)
    return res.frame() if isinstance(res, RObject) else res


def fit_nomogram(data: pd.DataFrame, formula: str, **kwargs) -> RObject:
    """Fit the logistic model behind a nomogram (``rms::lrm``); the result stays in R."""
    return call("fit_nomogram", data=data, formula=formula, **kwargs)


def predict(fit: RObject, newdata: pd.DataFrame | None = None, type: str = "fitted") -> np.ndarray:
    """Predicted risks (or linear predictors) of a fitted nomogram."""
    return np.atleast_1d(np.asarray(call("predict", fit, newdata=newdata, type=type, _namespace="stats"), dtype=float))


def calibrate_nomogram(fit: RObject, **kwargs) -> RObject:
    """Calibration of a fitted nomogram: bootstrap (``rms::calibrate``; give ``B`` and ``seed``, an int
    or ``None`` for R's current stream) or external (``newdata``, ``g``); ``.frame()`` is the curve."""
    return call("calibrate_nomogram", fit, **kwargs)


def validate_nomogram(fit: RObject, B: int = 1000, *, seed) -> pd.DataFrame:
    """Internal validation by Harrell's optimism-corrected bootstrap (``rms::validate(method = "boot")``).

    Parameters
    ----------
    fit : RObject
        From :func:`fit_nomogram`.
    B : int
        Bootstrap repetitions.
    seed : int or None
        Seed of the bootstrap (required; ``None`` draws from R's current random stream).

    Returns
    -------
    pandas.DataFrame
        One row per index (``Dxy``, ``R2``, ``Intercept``, ``Slope``, ``Emax``, ``D``, ``U``, ``Q``,
        ``B`` (Brier), ``g``, ``gp`` as rms reports them, and ``AUC`` = Dxy/2 + 1/2), columns
        ``index``, ``index.orig`` (apparent), ``training``, ``test``, ``optimism``,
        ``index.corrected`` and ``n`` (successful bootstrap fits); ``attrs`` hold ``B`` and ``seed``.
    """
    if seed is not None and (isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer))):
        from .errors import param_error

        raise param_error("seed", "validate_nomogram", "an int or None", seed)
    res = call("validate_nomogram", fit, B=B, seed=None if seed is None else int(seed))  # R checks B
    out = res.frame()
    out.attrs.update(B=int(res.element("B")), seed=seed, note=str(res.element("note") or ""))
    return out


def nomogram_points(fit: RObject, **kwargs) -> pd.DataFrame:
    """Axis values and points of each predictor of a fitted nomogram (``rms::nomogram``)."""
    return call("nomogram_points_table", fit, **kwargs)


def roc_auc(y, score, **kwargs) -> dict:
    """AUC with DeLong confidence interval (``pROC``): dict ``auc``, ``lower``, ``upper``, ``curve``."""
    res = call("roc_auc", np.asarray(y, dtype=float), np.asarray(score, dtype=float), **kwargs)
    out = {k: float(res.element(k)) for k in ("auc", "lower", "upper")}
    out["curve"] = res.element("curve")
    return out


def compare_roc(y, score1, score2, **kwargs) -> dict:
    """DeLong test of two correlated ROC curves (``pROC::roc.test``)."""
    return call(
        "compare_roc",
        np.asarray(y, dtype=float),
        np.asarray(score1, dtype=float),
        np.asarray(score2, dtype=float),
        **kwargs,
    )


def classification_metrics(y, score, **kwargs):
    """Sensitivity, specificity, accuracy, PPV, NPV at a threshold (R implementation)."""
    return call("classification_metrics", np.asarray(y, dtype=float), np.asarray(score, dtype=float), **kwargs)


def baseline_table(data: pd.DataFrame, **kwargs) -> pd.DataFrame:
    """Table 1: clinical characteristics by group, with tests."""
    res = call("baseline_table", data, **kwargs)
    return res.frame() if isinstance(res, RObject) else res


def logistic_table(data: pd.DataFrame, **kwargs) -> pd.DataFrame:
    """Univariate and multivariate logistic regression (OR, 95% CI, p) of the clinical factors."""
    res = call("logistic_table", data, **kwargs)
    return res.frame() if isinstance(res, RObject) else res


def figure(name: str, *args, **kwargs) -> RObject:
    """Call an R figure function (e.g. ``"plot_roc"``); returns the ggplot object as an :class:`RObject`."""
    return call(name, *args, **kwargs)


def save_plot(plot, path, width: float = 7.0, height: float = 5.0, dpi: int = 300) -> Path:
    """Save a ggplot (an :class:`RObject` or any classed R result with a ``plot`` method) to PNG/PDF."""
    ro, ns, _ = _r()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _LOCK:
        robj = plot.r if isinstance(plot, RObject) else plot
        saver = ro.r(
            """function(p, path, width, height, dpi) {
                 if (!inherits(p, "ggplot") && !inherits(p, "patchwork")) p <- graphics::plot(p)
                 ggplot2::ggsave(path, p, width = width, height = height, dpi = dpi, units = "in")
                 invisible(path)
               }"""
        )
        helper = _r()[2]
        args = ro.vectors.ListVector(
            {
                "p": robj,
                "path": ro.StrVector([str(path)]),
                "width": ro.FloatVector([width]),
                "height": ro.FloatVector([height]),
                "dpi": ro.IntVector([dpi]),
            }
        )
        out = helper(saver, args)
        value = out.rx2("value")
        if "srnomogram_bridge_error" in list(getattr(value, "rclass", [])):
            raise RBridgeError(f"save_plot: {' '.join(str(value.rx2('message')[0]).split())}")
    return path


def r_versions() -> dict:
    """Versions of R and of the R packages the statistics use."""
    ro, _, _ = _r()
    with _LOCK:
        v = ro.r(
            """function() {
                 pk <- c("srnomogram", "rms", "pROC", "ggplot2")
                 out <- vapply(pk, function(p) tryCatch(as.character(utils::packageVersion(p)),
                                                        error = function(e) NA_character_), "")
                 c(R = paste(R.version$major, R.version$minor, sep = "."), out)
               }"""
        )()
        return dict(zip(v.names, list(v)))
