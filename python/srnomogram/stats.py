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

One shape out. Data frames become R data frames; 0/1 outcomes and scores may be NumPy arrays or
pandas Series. What comes back is pandas, built from R's own ``as.data.frame()`` and ``summary()``
methods of the package's classes:

* tables (decision curves, nomogram points, Table 1, Table S2, internal validation, threshold
  metrics) are DataFrames;
* scalar summaries are a :class:`pandas.Series` with documented labels: :func:`hl_test` and
  :func:`compare_roc` (R's ``as.data.frame()`` of the test), :func:`roc_auc` (``summary()``);
* fitted R objects that later calls need (:func:`fit_nomogram`, :func:`calibrate_nomogram`,
  :func:`external_validation`) are an opaque :class:`RObject` handle: pass it back to the functions
  here, or turn it into pandas with :meth:`RObject.frame` (``as.data.frame()``) and
  :meth:`RObject.summary` (``summary()``); callers never reach into its R list.

Formulas are never guessed from strings: functions that take one have a ``formula`` argument
(a string or a :class:`Formula`), converted by name, and :func:`call` converts only
:class:`Formula` values; every other string is an R character vector. :func:`predict` returns a
NumPy array of risks, as scikit-learn's ``predict_proba`` does.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import sys
import threading
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import RBridgeError

__all__ = [
    "Formula",
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
    "roc_curve",
    "classification_metrics",
    "external_validation",
    "recalibrate_risk",
    "iecv_pool",
    "update_closed_test",
    "model_formula",
    "predict",
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
        with _sigint_to_r() as interrupted:  # loading the package takes seconds: Ctrl-C stops it too
            try:
                if source:
                    ro.r["suppressMessages"](ro.r("pkgload::load_all")(source, quiet=True, export_all=False))
                    ns = ro.r("asNamespace")("srnomogram")
                else:
                    ns = ro.r("function() suppressPackageStartupMessages(asNamespace('srnomogram'))")()
            except Exception:
                if interrupted:
                    raise KeyboardInterrupt from None
                raise
        if interrupted:
            raise KeyboardInterrupt
    except Exception as exc:
        msg = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise RBridgeError(
            f"The R package 'srnomogram' could not be loaded ({msg}). Install it with "
            f"'R CMD INSTALL --library=<dir> .' and set SRNOMOGRAM_R_LIBS=<dir>, or run setup.sh "
            f"(searched: {', '.join(paths) or 'R defaults'})."
        ) from None
    helper = ro.r(_R_HELPERS)
    return ro, ns, helper


class Formula:
    """An R formula given as text, e.g. ``Formula("label ~ age + deep_score")``.

    Only a :class:`Formula` becomes an R formula in :func:`call`; a plain string is always an R
    character vector, whatever it contains.
    """

    def __init__(self, text: str):
        if not isinstance(text, str) or "~" not in text:
            from .errors import param_error

            raise param_error("text", "Formula", "a string such as 'y ~ a + b'", text)
        self.text = text

    def __repr__(self):
        return f"Formula({self.text!r})"

    def __str__(self):
        return self.text


class RObject:
    """An opaque handle to a classed R result kept on the R side (a nomogram fit, a calibration).

    Pass it back to the functions of this module (``predict``, ``calibrate_nomogram``,
    ``figure``, ...); turn it into pandas with :meth:`frame` (R's ``as.data.frame()``) and
    :meth:`summary` (R's ``summary()``). ``repr`` is R's ``print``.
    """

    def __init__(self, robj):
        self._robj = robj

    @property
    def r(self):
        """The underlying rpy2 object (for this module and for rpy2 users; not a pandas result)."""
        return self._robj

    @property
    def classes(self) -> list[str]:
        return list(self._robj.rclass)

    def frame(self, **kwargs) -> pd.DataFrame:
        """``as.data.frame()`` of the object (keyword arguments go to the R method), as pandas."""
        return _as_frame(call("as.data.frame", self, _namespace="base", **kwargs), "as.data.frame", self)

    def summary(self, **kwargs) -> pd.DataFrame:
        """``summary()`` of the object (keyword arguments go to the R method), as a pandas DataFrame."""
        return _as_frame(call("summary", self, _namespace="base", **kwargs), "summary", self)

    def __repr__(self):
        ro, _, _ = _r()
        with _LOCK:
            text = "\n".join(ro.r("function(x) utils::capture.output(print(x))")(self._robj))
        return text


def _as_frame(value, what, obj) -> pd.DataFrame:
    if not isinstance(value, pd.DataFrame):
        raise RBridgeError(f"{what}() of an R object of class {obj.classes} is not a data frame; "
                           "the R package lacks that method for it.")
    return value


def _converter():
    import rpy2.robjects as ro
    from rpy2.robjects import numpy2ri, pandas2ri

    return ro.default_converter + numpy2ri.converter + pandas2ri.converter


def _to_r(value):
    import rpy2.robjects as ro

    if isinstance(value, RObject):
        return value.r
    if isinstance(value, Formula):
        return ro.Formula(value.text)
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
        if list(df.index) == [str(i) for i in range(1, len(df) + 1)]:
            df = df.reset_index(drop=True)  # R's automatic row names 1..n: a plain RangeIndex
        return df
    if "htest" in classes:
        # the package's tests (hl_test, compare_roc) have an as.data.frame() method: one row
        if "srnomogram_htest" in classes:
            with _converter().context():
                row = ro.conversion.get_conversion().rpy2py(ro.r("as.data.frame")(obj))
            return row.iloc[0].rename(None)
        out = {}
        for name in obj.names:  # another package's htest (through call): its scalars
            v = np.asarray(obj.rx2(name))
            if v.size == 1 and name != "data.name":
                out[name.replace(".", "_")] = v.reshape(-1)[0].item() if v.dtype.kind in "fiub" else str(v.reshape(-1)[0])
        return pd.Series(out, dtype=object)
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


@contextlib.contextmanager
def _sigint_to_r():
    """While R runs, let Ctrl-C (SIGINT) interrupt R; yield a list that is non-empty once it came.

    rpy2 puts Python's default SIGINT handler back after starting R. A signal then only sets a flag
    that Python acts on when R next calls back into Python (rpy2's console and event callbacks), and
    the ``KeyboardInterrupt`` raised inside such a callback is printed as "Exception ignored from cffi
    callback" and dropped: R finished its computation and the run went on with status 0. Here the
    handler raises nothing: it records the signal and sets R's own ``R_interrupts_pending`` (as R's
    handler does; ``UserBreak`` on Windows), so that R stops at its next interrupt check and the call
    raises ``KeyboardInterrupt`` (rpy2 3.5, ``rinterface_lib/callbacks.py``; R ``src/main/errors.c``,
    ``R_CheckUserInterrupt``). Only the main thread handles signals, and a SIGINT handler other than
    Python's default (``SIG_IGN`` in a background job, an application's own) is left alone.
    """
    caught: list[int] = []
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield caught
        return
    from rpy2.rinterface_lib import openrlib

    def on_sigint(signum, frame):
        caught.append(signum)
        if os.name == "nt":
            openrlib.rlib.UserBreak = 1
        else:
            openrlib.rlib.R_interrupts_pending = 1

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield caught
    finally:
        signal.signal(signal.SIGINT, previous)
        if caught and os.name != "nt":
            openrlib.rlib.R_interrupts_pending = 0  # R may have returned before it looked: not the next call's


def _interruptible(helper, f, arglist):
    """``helper(f, arglist)`` (the R-side call wrapper); Ctrl-C while R runs raises ``KeyboardInterrupt``."""
    with _sigint_to_r() as interrupted:
        try:
            out = helper(f, arglist)
        except Exception:  # R's "interrupt" condition comes back as rpy2's RRuntimeError
            if interrupted:
                raise KeyboardInterrupt from None
            raise
    if interrupted:  # R finished before it checked for interrupts: stop here all the same
        raise KeyboardInterrupt
    return out


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
        out = _interruptible(helper, f, arglist)
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


def _vector(x) -> np.ndarray:
    return np.asarray(x, dtype=float)


def _formula(formula, func: str) -> Formula:
    """The ``formula`` argument of ``func``: a :class:`Formula` or its text."""
    if isinstance(formula, Formula):
        return formula
    if isinstance(formula, str) and "~" in formula:
        return Formula(formula)
    from .errors import param_error

    raise param_error("formula", func, "a two-sided formula such as 'label ~ age + deep_score' (a str or Formula)", formula)


def _frame(value, func: str) -> pd.DataFrame:
    """A table result: a DataFrame as it comes, or the ``as.data.frame()`` of a classed R result."""
    if isinstance(value, RObject):
        return value.frame()
    if isinstance(value, pd.DataFrame):
        return value
    raise RBridgeError(f"{func}: the R package returned {type(value).__name__}, not a data frame; reinstall it from this source.")


def _cluster(kwargs: dict) -> dict:
    """``cluster`` (patient of each row, e.g. :func:`~srnomogram.data.manifest.patient_ids`) as the integer
    codes of :func:`~srnomogram.data.manifest.patient_codes`."""
    from .data.manifest import patient_codes

    if kwargs.get("cluster") is not None:
        kwargs = {**kwargs, "cluster": patient_codes(kwargs["cluster"])}
    return kwargs


def hl_test(y, score, g: int = 10) -> pd.Series:
    """Hosmer–Lemeshow goodness-of-fit test (equal to ``ResourceSelection::hoslem.test``).

    Returns
    -------
    pandas.Series
        R's ``as.data.frame()`` of the test: ``statistic`` (X-squared), ``df``, ``p_value``,
        ``null_value`` (NaN), ``alternative`` and ``method``.
    """
    return call("hl_test", _vector(y), _vector(score), g=int(g))


def decision_curve(formula, data: pd.DataFrame, **kwargs) -> pd.DataFrame:  # noqa: D417
    """Decision curve (net benefit by threshold; equal to ``rmda::decision_curve``), as a tidy table.

    ``formula`` (a str or :class:`Formula`) names the outcome and the risk column(s) of ``data``.
    Keyword arguments go to R's ``decision_curve`` (``fitted_risk``, ``thresholds``,
    ``conf_level`` (``None`` for no bands), ``bootstraps``, ``policy``, ``study_design``, ``seed``,
    ``cluster``: the patient of each row of ``data``, so that the bands resample patients, ...).
    Returns R's ``as.data.frame()``: rmda's ``derived.data`` columns.
    """
    return _frame(call("decision_curve", _formula(formula, "decision_curve"), data, **_cluster(kwargs)), "decision_curve")


def fit_nomogram(formula, data: pd.DataFrame) -> RObject:
    """Fit the logistic model behind a nomogram (``rms::lrm``); the fit stays in R, as a handle.

    The arguments come in the order of R's ``fit_nomogram(formula, data)`` and ``rms::lrm``.
    ``fit.summary()`` gives the odds ratios (``conf_level=``) as a DataFrame; :func:`predict` the
    risks; :func:`nomogram_points` the axes.
    """
    if isinstance(formula, pd.DataFrame) and not isinstance(data, pd.DataFrame):
        warnings.warn("fit_nomogram now takes the formula first, as rms::lrm does: call fit_nomogram(formula, data); "
                      "the order (data, formula) will become an error.", FutureWarning, stacklevel=2)
        formula, data = data, formula
    return call("fit_nomogram", _formula(formula, "fit_nomogram"), data)


def predict(fit: RObject, newdata: pd.DataFrame | None = None, type: str = "fitted") -> np.ndarray:
    """Predicted risks (``type="fitted"``) or linear predictors (``"lp"``) of a fitted nomogram."""
    return np.atleast_1d(np.asarray(call("predict", fit, newdata=newdata, type=type, _namespace="stats"), dtype=float))


def model_formula(fit: RObject) -> str:
    """The formula of a fitted nomogram, as R deparses it (``"label ~ age + deep_score"``)."""
    return str(call("deparse1", call("formula", fit, _namespace="stats"), _namespace="base"))


def calibrate_nomogram(fit: RObject, **kwargs) -> RObject:
    """Calibration of a fitted nomogram, as a handle: bootstrap (``rms::calibrate``; give ``B`` and
    ``seed``, an int or ``None`` for R's current stream; ``cluster``, the patient of each row of
    the fit, to resample patients) or external (``newdata``, ``g``).

    ``.frame()`` is the curve (``predicted``, ``apparent``, ``bias_corrected`` for bootstrap;
    ``predicted``, ``observed``, ``smoothed`` for external); ``.summary()`` one row: ``mode``, ``n``,
    ``mae``, ``q90`` and ``B`` (bootstrap) or ``intercept``, ``slope``, ``hl_statistic``,
    ``hl_df``, ``hl_p`` (external).
    """
    return call("calibrate_nomogram", fit, **_cluster(kwargs))


def validate_nomogram(fit: RObject, B: int = 1000, *, seed, cluster=None) -> pd.DataFrame:
    """Internal validation by Harrell's optimism-corrected bootstrap (``rms::validate(method = "boot")``).

    Parameters
    ----------
    fit : RObject
        From :func:`fit_nomogram`.
    B : int
        Bootstrap repetitions.
    seed : int or None
        Seed of the bootstrap (required; ``None`` draws from R's current random stream).
    cluster : array-like, optional
        Patient of each row the fit used (:func:`~srnomogram.data.manifest.patient_ids`): the
        bootstrap resamples patients (rms's cluster bootstrap); ``None`` resamples rows.

    Returns
    -------
    pandas.DataFrame
        One row per index (``Dxy``, ``R2``, ``Intercept``, ``Slope``, ``Emax``, ``D``, ``U``, ``Q``,
        ``B`` (Brier), ``g``, ``gp`` as rms reports them, and ``AUC`` = Dxy/2 + 1/2), columns
        ``index``, ``index.orig`` (apparent), ``training``, ``test``, ``optimism``,
        ``index.corrected`` and ``n`` (successful bootstrap fits); ``attrs`` hold ``B``, ``seed``
        ``note`` (rms's message about failed replicates), from R's ``summary()``, and
        ``n_clusters`` (the patients resampled).
    """
    if seed is not None and (isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer))):
        from .errors import param_error

        raise param_error("seed", "validate_nomogram", "an int or None", seed)
    res = call("validate_nomogram", fit, B=B, seed=None if seed is None else int(seed), **_cluster({"cluster": cluster}))  # R checks B
    out = res.frame()
    summ = res.summary().iloc[0]
    out.attrs.update(B=int(summ["B"]), seed=seed, note=str(summ["note"]), n_clusters=int(np.asarray(res.r.rx2("n_clusters"))[0]))
    return out


def nomogram_points(fit: RObject, **kwargs) -> pd.DataFrame:
    """Axis values and points of each predictor of a fitted nomogram (``rms::nomogram``)."""
    return _frame(call("nomogram_points_table", fit, **kwargs), "nomogram_points")


def roc_auc(y, score, **kwargs) -> pd.Series:
    """AUC with DeLong confidence interval (``pROC``), R's ``summary()`` of ``roc_auc``; ``cluster`` (the
    patient of each lesion) gives Obuchowski's clustered DeLong interval when a patient has several.

    The study's tables take their AUCs from :func:`srnomogram.metrics.roc_auc_ci`, proven equal to
    this (tests/python/test_metrics.py); this is the pROC reference and the R users' function.

    Returns
    -------
    pandas.Series
        ``auc``, ``lower``, ``upper``, ``conf_level``, ``n_cases``, ``n_controls``.
    """
    return call("summary", call("roc_auc", _vector(y), _vector(score), **_cluster(kwargs)), _namespace="base").iloc[0].rename(None)


def roc_curve(y, score, **kwargs) -> pd.DataFrame:
    """The ROC curve of pROC: ``threshold``, ``sensitivity``, ``specificity`` (one row per threshold)."""
    return _frame(call("roc_auc", _vector(y), _vector(score), **kwargs), "roc_curve")


def compare_roc(y, score1, score2, **kwargs) -> pd.Series:
    """DeLong test of two correlated ROC curves (``pROC::roc.test``); clustered (Obuchowski 1997) with
    ``cluster``, the patient of each lesion, when a patient has several.

    Returns
    -------
    pandas.Series
        R's ``as.data.frame()`` of the test: ``statistic`` (Z), ``df`` (NaN), ``p_value``,
        ``auc_of_score1``, ``auc_of_score2``, ``null_value``, ``alternative``, ``method``.
    """
    return call("compare_roc", _vector(y), _vector(score1), _vector(score2), **_cluster(kwargs))


def classification_metrics(y, score, **kwargs) -> pd.DataFrame:
    """Sensitivity, specificity, accuracy, PPV, NPV at a threshold (one row; R implementation)."""
    return _frame(call("classification_metrics", _vector(y), _vector(score), **kwargs), "classification_metrics")


def external_validation(y, score, **kwargs) -> RObject:
    """External validation of frozen risks (R's ``external_validation``), as a handle.

    Keyword arguments go to R (``threshold``, ``g``, ``cluster``, ``B``, ``seed`` (required with
    ``cluster`` or ``calibration_B``), ``conf_level``, ``calibration_B`` (the calibration curve's
    bootstrap band), ``eps``). ``.summary()`` is one row of every number (AUC,
    calibration-in-the-large, slope, Brier, Hosmer–Lemeshow, ...); ``.frame(what="calibration")``
    the smoothed calibration curve; ``.frame(what="classification")`` the metrics at ``threshold``
    (no rows without one).
    """
    return call("external_validation", _vector(y), _vector(score), **kwargs)


def recalibrate_risk(y, score, **kwargs) -> pd.Series:
    """Logistic recalibration ``plogis(a + b * qlogis(score))`` fitted on ``y`` (R's ``recalibrate_risk``).

    Returns
    -------
    pandas.Series
        The recalibrated risks, in the input's order (NaN where ``y`` or ``score`` was missing);
        ``attrs`` hold the fitted ``intercept`` and ``slope``.
    """
    res = call("recalibrate_risk", _vector(y), _vector(score), **kwargs)
    out = pd.Series(np.atleast_1d(np.asarray(res["score"], dtype=float)), name="score")
    out.attrs.update(intercept=float(res["intercept"]), slope=float(res["slope"]))
    return out


def iecv_pool(centres: pd.DataFrame, conf_level: float = 0.95) -> pd.DataFrame:
    """Random-effects pooling of internal-external cross-validation results (R's ``iecv_pool``).

    Parameters
    ----------
    centres : pandas.DataFrame
        One row per model, measure and held-out centre, with columns ``model``, ``estimand``
        (``auc``, ``citl``, ``slope``, ``brier``, ``delta_auc`` or ``net_benefit``), ``centre``,
        ``estimate`` (on the measure's natural scale: the AUC itself) and ``se`` (the standard error
        on the scale of the analysis: for ``auc`` the SE of logit(AUC), ``se_auc / (auc * (1 - auc))``
        by the delta method; for the others the SE of the estimate).
    conf_level : float
        Level of the confidence and prediction intervals.

    Returns
    -------
    pandas.DataFrame
        One row per model and estimand: ``model``, ``estimand``, ``estimate``, ``lower``, ``upper``
        (Knapp-Hartung confidence interval), ``pi_lower``, ``pi_upper`` (prediction interval),
        ``tau2`` (REML; logit scale for ``auc``), ``i2`` (percent) and ``k`` (centres), from
        ``metafor::rma(method = "REML", test = "knha")``; the AUC pooled on the logit scale and
        back-transformed. A model and estimand with one centre is a row of NaN with ``k = 1`` and an
        :class:`RWarning`. Bad rows (``se`` <= 0 or missing, an AUC of 0 or 1) raise
        :class:`~srnomogram.errors.RBridgeError` naming the row.
    """
    if not isinstance(centres, pd.DataFrame):
        from .errors import param_error

        raise param_error("centres", "iecv_pool", "a pandas DataFrame", centres)
    return _frame(call("iecv_pool", centres, conf_level=float(conf_level)), "iecv_pool")


def update_closed_test(y, lp, X=None, alpha: float = 0.05) -> pd.DataFrame:
    """Closed testing procedure to choose how to update a logistic model (R's ``update_closed_test``).

    Vergouwe et al. (2017, Stat Med 36:4529-39): likelihood-ratio tests of the original model
    (``none``), recalibration in the large (``intercept``) and logistic recalibration
    (``recalibration``) against the refit model (``refit``: ``X`` re-estimated; without ``X`` the most
    extensive model is ``recalibration``), stopping at the first candidate not rejected at ``alpha``.

    Parameters
    ----------
    y : array-like
        0/1 outcomes in the new data.
    lp : array-like
        The original model's linear predictor (log-odds) for the same rows.
    X : pandas.DataFrame or numpy.ndarray, optional
        The original model's predictors for the same rows (``lp`` must be linear in them).
    alpha : float
        Level of each test.

    Returns
    -------
    pandas.DataFrame
        One row per step: ``step``, ``null_model``, ``alternative``, ``statistic`` (LR chi-square),
        ``df``, ``p_value``, ``performed``, ``rejected``. ``attrs`` hold ``method`` (the chosen
        candidate), ``coefficients`` (a Series: ``intercept`` added to ``lp``; ``intercept`` and
        ``slope`` on ``lp``; or the refit coefficients; empty for ``none``), ``loglik`` (a Series per
        candidate), ``alpha`` and ``n``.
    """
    if X is not None and not isinstance(X, pd.DataFrame):
        X = np.asarray(X, dtype=float)
        X = X.reshape(-1, 1) if X.ndim == 1 else X
        X = pd.DataFrame(X, columns=[f"x{i + 1}" for i in range(X.shape[1])])
    res = call("update_closed_test", _vector(y), _vector(lp), X=X, alpha=float(alpha))
    out = res.summary()
    r = res.r
    coefs = r.rx2("coefficients")
    names = list(coefs.names) if len(coefs) and coefs.names is not None else []
    out.attrs.update(
        method=str(r.rx2("method")[0]),
        coefficients=pd.Series(np.asarray(coefs, dtype=float), index=names, dtype=float),
        loglik=pd.Series(np.asarray(r.rx2("loglik"), dtype=float), index=list(r.rx2("loglik").names)),
        alpha=float(r.rx2("alpha")[0]),
        n=int(r.rx2("n")[0]),
    )
    return out


def baseline_table(data: pd.DataFrame, **kwargs) -> pd.DataFrame:
    """Table 1: clinical characteristics by group, with tests."""
    return _frame(call("baseline_table", data, **kwargs), "baseline_table")


def logistic_table(data: pd.DataFrame, **kwargs) -> pd.DataFrame:
    """Univariate and multivariate logistic regression (OR, CI at ``conf_level``, p) of the clinical factors.

    ``alpha`` here is the univariate p-value below which a variable enters the multivariate model,
    not a confidence level.
    """
    return _frame(call("logistic_table", data, **kwargs), "logistic_table")


def figure(name: str, *args, **kwargs) -> RObject:
    """Call an R figure function (e.g. ``"plot_roc"``); returns the ggplot object as an :class:`RObject`."""
    return call(name, *args, **kwargs)


def save_plot(plot, path, width: float = 7.0, height: float = 5.0, dpi: int = 300) -> Path:
    """Save a ggplot (an :class:`RObject` or any classed R result with a ``plot`` method) to PNG/PDF."""
    ro, ns, _ = _r()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _LOCK:
        robj = _to_r(plot)
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
        out = _interruptible(helper, saver, args)
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
