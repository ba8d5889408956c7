"""Held-out and external statistics per subgroup (TRIPOD+AI items 14 and 23a).

A subgroup variable is a manifest column, given as ``COLUMN`` (a categorical or text column: one
subgroup per value) or ``COLUMN:EDGES`` (a numeric column cut into bands at the edges, e.g.
``age:40,60`` gives ``<40``, ``[40, 60)`` and ``≥60``). Bands are **left-closed**: a value equal to
an edge belongs to the band that starts there (``age = 40`` is in ``[40, 60)``, ``age = 60`` in
``≥60``). Lesions without a value form the subgroup ``(missing)``, so the subgroups' ``n`` and
``events`` add up to the whole cohort.

:func:`subgroup_table` applies to each subgroup alone the same R function as the whole cohort's
statistics (``external_validation``: AUC, calibration-in-the-large, calibration slope, Brier), with
every CI a percentile bootstrap over the subgroup's own patients. No subgroup p-value or
interaction test is computed: subgroup estimates are descriptive. A subgroup with no events or no
non-events has its counts and NA statistics, with a note.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import InputError

MISSING = "(missing)"
#: The columns of ``external_subgroups`` and ``heldout_subgroups``.
COLUMNS = ("subgroup_variable", "subgroup", "model", "label", "n", "n_patients", "events", "auc", "auc_lower",
           "auc_upper", "citl", "citl_lower", "citl_upper", "slope", "slope_lower", "slope_upper", "brier", "method", "note")


@dataclass(frozen=True)
class SubgroupSpec:
    """One subgroup variable: a manifest ``column`` and, for a numeric one, its band ``edges`` (increasing)."""

    column: str
    edges: tuple[float, ...] = ()

    def __str__(self):
        return self.column + (":" + ",".join(f"{e:g}" for e in self.edges) if self.edges else "")


def parse_subgroup(text, setting: str = "--by") -> SubgroupSpec:
    """``"COLUMN"`` or ``"COLUMN:E1,E2,..."`` (increasing numbers) as a :class:`SubgroupSpec`; one-line error otherwise."""
    text = str(text).strip()
    column, sep, rest = text.partition(":")
    column = column.strip()
    if not column:
        raise InputError(f"{setting} {text!r} names no column; give COLUMN or COLUMN:EDGES, e.g. age:40,60.")
    if not sep:
        return SubgroupSpec(column)
    try:
        edges = tuple(float(e) for e in rest.split(","))
    except ValueError:
        edges = ()
    if not edges or not all(np.isfinite(edges)) or any(b <= a for a, b in zip(edges, edges[1:])):
        raise InputError(f"{setting} {text!r}: the band edges after ':' must be increasing numbers separated by commas, "
                         f"e.g. {column}:40,60.")
    return SubgroupSpec(column, edges)


def parse_subgroups(items, setting: str = "--by") -> tuple[SubgroupSpec, ...]:
    """Every entry of ``items`` parsed (:func:`parse_subgroup`); a column given twice is an error."""
    specs = tuple(parse_subgroup(t, setting) for t in (items or ()))
    seen = [s.column for s in specs]
    dup = sorted({c for c in seen if seen.count(c) > 1})
    if dup:
        raise InputError(f"{setting} names column {dup[0]!r} twice; give each subgroup column once.")
    return specs


def check_subgroups(specs, df: pd.DataFrame, source, setting: str = "--by") -> None:
    """Refuse, in one line, a subgroup column the manifest ``source`` lacks, a numeric one without band
    edges, or band edges on a column that is not numeric."""
    for s in specs:
        if s.column not in df.columns:
            raise InputError(f"{source} has no column {s.column!r} ({setting} {s}); add it to the manifest or "
                             "name one of its columns.")
        numeric = pd.api.types.is_numeric_dtype(df[s.column]) and not pd.api.types.is_bool_dtype(df[s.column])
        if numeric and not s.edges:
            raise InputError(f"{source}: column {s.column!r} is numeric, so {setting} needs its band edges: "
                             f"give {s.column}:EDGES, e.g. {s.column}:40,60 for <40, [40, 60) and ≥60.")
        if s.edges and not numeric:
            raise InputError(f"{source}: column {s.column!r} is not numeric, so it takes no band edges; "
                             f"give {setting} {s.column} (one subgroup per value).")


def _edge(e: float) -> str:
    return f"{e:g}"


def band_labels(edges) -> list[str]:
    """The labels of the bands of ``edges``, in order: ``<e1``, ``[e1, e2)``, ..., ``≥ek``."""
    e = [_edge(x) for x in edges]
    inner = ["[" + lo + ", " + hi + ")" for lo, hi in zip(e, e[1:])]
    return ["<" + e[0], *inner, "≥" + e[-1]]


def subgroups_of(values: pd.Series, spec: SubgroupSpec) -> pd.Series:
    """Each row's subgroup under ``spec`` (an ordered categorical): its band (left-closed) or its value as text;
    ``(missing)`` where the value is missing. Categories: the bands in order (or the values sorted), then ``(missing)``."""
    if spec.edges:
        v = pd.to_numeric(values, errors="raise").to_numpy(dtype=float)
        labels = band_labels(spec.edges)
        # searchsorted side="right": a value equal to an edge goes to the band that starts at it (left-closed)
        idx = np.searchsorted(np.asarray(spec.edges, dtype=float), v, side="right")
        out = np.array([labels[i] if np.isfinite(x) else MISSING for i, x in zip(idx, v)], dtype=object)
        cats = labels
    else:
        missing = values.isna().to_numpy()
        text = values.astype(str).to_numpy(dtype=object)
        out = np.where(missing, MISSING, text)
        cats = sorted({t for t, m in zip(text, missing) if not m})
    if (out == MISSING).any():
        cats = [*cats, MISSING]
    return pd.Series(pd.Categorical(out, categories=cats, ordered=True), index=values.index, name=spec.column)


def patient_subgroups(groups: dict, pid, setting: str = "--by") -> dict:
    """Per patient (in order of first appearance) the subgroup of its lesions; an error when a patient's
    lesions fall in different subgroups (a patient-level estimand needs one subgroup per patient)."""
    pid = pd.Series(np.asarray(pid, dtype=object))
    out = {}
    for variable, sub in groups.items():
        sub = pd.Series(sub).reset_index(drop=True)
        n = sub.astype(str).groupby(pid, sort=False).nunique()
        if (n > 1).any():
            bad = str(n.index[(n > 1).to_numpy()][0]).replace("\x00case:", "")
            raise InputError(f"{setting} {variable}: the lesions of patient {bad} fall in different subgroups, so --unit patient "
                             "cannot place the patient; use --unit lesion or a column constant within a patient.")
        first = sub.groupby(pid, sort=False).first()
        out[variable] = pd.Series(pd.Categorical(first.astype(str), categories=sub.cat.categories, ordered=True))
    return out


def check_manifest_subgroups(manifest, items, setting: str = "--by", unit: str = "lesion") -> tuple[SubgroupSpec, ...]:
    """Parse ``items`` and check them against the manifest file ``manifest`` (:func:`check_subgroups`; with
    ``unit="patient"``, :func:`patient_subgroups`): what ``validate --by`` and ``study.subgroups`` check before
    any work. Returns the parsed specs."""
    from ..data.manifest import load_manifest, patient_ids

    specs = parse_subgroups(items, setting)
    if specs:
        df = load_manifest(manifest, require_label=False, check_files=False)
        check_subgroups(specs, df, manifest, setting)
        if unit == "patient":
            patient_subgroups({str(s): subgroups_of(df[s.column], s) for s in specs}, patient_ids(df), setting)
    return specs


def subgroup_table(data: pd.DataFrame, groups: dict, models, patients, bootstraps: int, seed: int,
                   conf_level: float = 0.95, labels=None) -> pd.DataFrame:
    """Statistics of each model in each subgroup: R's ``external_validation`` on that subgroup's rows alone.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per unit (lesion or patient): ``label`` (0/1) and one risk column per model.
    groups : dict
        ``{subgroup_variable: Series of subgroups}`` aligned with ``data`` (:func:`subgroups_of`).
    models : list of str
        The risk columns of ``data`` to assess (model ids).
    patients : array-like
        Each row's patient (any hashable); a subgroup's CIs resample its own patients.
    bootstraps, seed : int
        Resamples and seed of the percentile bootstrap over patients (the same seed in every subgroup).
    conf_level : float
        Confidence level of the intervals.
    labels : dict, optional
        Display label of each model id (default :func:`srnomogram.names.label`).

    Returns
    -------
    pandas.DataFrame
        :data:`COLUMNS`: per subgroup variable, subgroup and model, ``n`` (rows), ``n_patients``,
        ``events``, AUC, calibration-in-the-large and slope with their bootstrap CIs, the Brier score,
        ``method`` (the CI method and the unit resampled) and ``note`` (why statistics are NA). No p-values.
    """
    from .. import names, stats
    from ..data.manifest import patient_codes

    label_of = labels or {}
    pid = np.asarray(patients, dtype=object)
    if len(pid) != len(data) or any(len(g) != len(data) for g in groups.values()):
        raise ValueError("subgroup_table: data, patients and every groups entry must have one row per unit")  # programming error
    y_all = data["label"].to_numpy(dtype=float)
    rows = []
    for variable, sub in groups.items():
        sub = pd.Series(sub).reset_index(drop=True)
        for level in sub.cat.categories:
            keep = (sub == level).to_numpy()
            if not keep.any():
                continue
            y = y_all[keep]
            codes = patient_codes(pid[keep])
            for m in models:
                s = data[m].to_numpy(dtype=float)[keep]
                ok = ~(np.isnan(y) | np.isnan(s))
                n, events = int(ok.sum()), int(np.sum(y[ok] == 1))
                row = {"subgroup_variable": variable, "subgroup": str(level), "model": m,
                       "label": label_of.get(m) or names.label(m), "n": n, "n_patients": int(len(np.unique(codes[ok]))),
                       "events": events}
                if events == 0 or events == n:
                    rows.append({**row, "method": "none",
                                 "note": ("no events" if events == 0 else "no non-events") + ": AUC and calibration not estimable"})
                    continue
                ev = stats.external_validation(y[ok], s[ok], cluster=[int(c) for c in codes[ok]], B=int(bootstraps),
                                               seed=int(seed), conf_level=float(conf_level))
                r = ev.summary().iloc[0]
                rows.append({**row, **{k: float(r[k]) for k in COLUMNS[7:17]},
                             "method": f"percentile bootstrap over the subgroup's patients (B = {int(bootstraps)}), "
                                       f"{100 * conf_level:g}% CI", "note": str(r.get("note", "") or "")})
    out = pd.DataFrame(rows, columns=list(COLUMNS))
    return out.astype({c: float for c in COLUMNS[7:17]})
