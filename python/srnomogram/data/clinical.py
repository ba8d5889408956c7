"""Clinical factors: what each column of ``cohort.clinical`` is, written once and used everywhere.

A study file names its clinical factors in ``cohort.clinical``. An entry is a bare column name (a
numeric factor, as ``age``) or a mapping that pre-specifies a categorical one::

    cohort:
      clinical:
        - age
        - {name: max_diameter_cm, unit: cm, label: Maximum diameter}
        - {name: shape, type: categorical, levels: [oval, round, irregular], reference: oval}

The levels of a categorical factor are fixed in the study file, not read from the data: the
training set must not decide them, and an external cohort is checked against the same list (a value
outside it is an error, never a silent new level). The reference level (default: the first) is
the level without a coefficient; rms names the other levels' terms ``shape=irregular``
(``rms::lrm`` with treatment contrasts, Harrell 2015, *Regression Modeling Strategies*, 2nd ed.,
section 2.4). One :class:`ClinicalSchema` serves the study's checks (:func:`srnomogram.data.check.check_clinical`),
the R fits (:meth:`ClinicalSchema.to_frame` gives pandas categoricals, which the rpy2 bridge passes
as R factors with these levels, reference first), the frozen design file, external validation and
the calculator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Mapping, Optional

import numpy as np
import pandas as pd

from ..errors import ConfigError, InputError

__all__ = ["ClinicalFactor", "ClinicalSchema", "FACTOR_TYPES", "level_text"]

FACTOR_TYPES = ("numeric", "categorical")
KEYS = ("name", "type", "levels", "reference", "unit", "label")


def level_text(value) -> str | None:
    """A cell or a level as text: ``3``, ``3.0`` and ``"3"`` are all ``"3"``; None for an empty cell.

    A CSV column of BI-RADS categories with an empty cell is read as floats (``4.0``): the level
    must still be ``"4"``.
    """
    if value is None:
        return None
    if isinstance(value, (float, np.floating)):
        if math.isnan(value):
            return None
        if float(value).is_integer():
            return str(int(value))
    if isinstance(value, (bool, np.bool_)):
        return str(value).lower()  # YAML's true/false, as the CSV cell would be written
    text = str(value).strip()
    return text or None


def _first_bad_cell(col: pd.Series, bad: pd.Series, source: str, name: str) -> tuple[int, str]:
    """The position of the first flagged cell of ``col`` and the start of the error naming it:
    ``"<source>, row <n>, column '<name>': <value>"`` (header = row 1, so row = position + 2).

    A numpy scalar is shown as its Python value (``3``, not ``np.int64(3)``).
    """
    i = int(np.flatnonzero(bad.to_numpy())[0])
    v = col.iloc[i]
    v = v.item() if isinstance(v, np.generic) else v
    return i, f"{source}, row {i + 2}, column {name!r}: {v!r}"


@dataclass(frozen=True)
class ClinicalFactor:
    """One clinical factor: a manifest column, its type and, for a categorical one, its levels.

    Parameters
    ----------
    name : str
        The manifest column (and the model term's name).
    type : {"numeric", "categorical"}
        A number per lesion, or one of ``levels``.
    levels : tuple of str, optional
        Categorical only, required: every allowed value, in display order (at least two).
    reference : str, optional
        Categorical only: the level without a coefficient (default: the first level).
    unit : str, optional
        The unit of a numeric factor (``years``, ``cm``), shown in labels.
    label : str, optional
        The display name (default: ``cohort.clinical_labels`` or the name).
    """

    name: str
    type: str = "numeric"
    levels: Optional[tuple[str, ...]] = None
    reference: Optional[str] = None
    unit: Optional[str] = None
    label: Optional[str] = None

    def __post_init__(self):
        where = f"cohort.clinical entry {self.name!r}"
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError(f"A cohort.clinical entry must have a non-empty column name. Got {self.name!r} instead.")
        if self.type not in FACTOR_TYPES:
            raise ConfigError(f"{where}: type must be 'numeric' or 'categorical'. Got {self.type!r} instead.")
        for key in ("unit", "label"):
            v = getattr(self, key)
            if v is not None and not isinstance(v, str):
                raise ConfigError(f"{where}: {key} must be a string. Got {v!r} instead.")
        if self.type == "numeric":
            if self.levels is not None or self.reference is not None:
                raise ConfigError(f"{where} is numeric, so it takes no levels or reference; "
                                  "add 'type: categorical' to make it a categorical factor.")
            return
        if self.levels is None or isinstance(self.levels, (str, bytes)) or not isinstance(self.levels, Iterable):
            raise ConfigError(f"{where} is categorical: give its levels, pre-specified, e.g. "
                              f"{{name: {self.name}, type: categorical, levels: [a, b, c]}}. Got levels {self.levels!r} instead.")
        levels = tuple(level_text(v) for v in self.levels)
        if any(v is None for v in levels) or len(set(levels)) != len(levels) or len(levels) < 2:
            raise ConfigError(f"{where}: levels must be at least two distinct, non-empty values. Got {list(self.levels)!r} instead.")
        reference = levels[0] if self.reference is None else level_text(self.reference)
        if reference not in levels:
            raise ConfigError(f"{where}: reference must be one of its levels {list(levels)}. Got {self.reference!r} instead.")
        object.__setattr__(self, "levels", levels)
        object.__setattr__(self, "reference", reference)

    @classmethod
    def parse(cls, entry) -> "ClinicalFactor":
        """A factor from a study-file entry: a column name (numeric) or a mapping with :data:`KEYS`."""
        if isinstance(entry, ClinicalFactor):
            return entry
        if isinstance(entry, str):
            return cls(entry)
        if isinstance(entry, Mapping):
            unknown = [k for k in entry if k not in KEYS]
            if unknown:
                raise ConfigError(f"cohort.clinical entry {entry.get('name')!r}: unknown key {unknown[0]!r}; "
                                  f"allowed: {', '.join(KEYS)}.")
            if "name" not in entry:
                raise ConfigError(f"A cohort.clinical mapping needs a 'name' (the manifest column). Got {dict(entry)!r} instead.")
            return cls(**entry)
        raise ConfigError("cohort.clinical must be a list of column names or {name, type, levels, reference, unit, label} "
                          f"mappings. Got {entry!r} instead.")

    @property
    def categorical(self) -> bool:
        return self.type == "categorical"

    @property
    def ordered_levels(self) -> tuple[str, ...]:
        """The levels, reference first: R's factor levels (treatment contrasts drop the first)."""
        return (self.reference, *[v for v in self.levels if v != self.reference])

    def term(self, level: str) -> str:
        """The rms term of a non-reference level: ``shape=irregular``."""
        return f"{self.name}={level}"

    def display(self, labels: Mapping | None = None) -> str:
        """The display name: ``label``, else ``labels[name]``, else the name; with the unit when given."""
        text = self.label or dict(labels or {}).get(self.name) or self.name
        return f"{text} ({self.unit})" if self.unit and self.unit not in text else text

    def to_plain(self):
        """As written in ``resolved_config.yaml``: a bare name when nothing but the name is set (so that the
        config hashes of studies written before categorical factors stay), else a mapping."""
        if self == ClinicalFactor(self.name):
            return self.name
        out = {"name": self.name, "type": self.type}
        if self.categorical:
            out.update(levels=list(self.levels), reference=self.reference)
        out.update({k: getattr(self, k) for k in ("unit", "label") if getattr(self, k) is not None})
        return out

    def to_dict(self) -> dict:
        """Every field, for JSON files (``application.json``, the design file)."""
        return {"name": self.name, "type": self.type, "levels": list(self.levels) if self.levels else None,
                "reference": self.reference, "unit": self.unit, "label": self.label}


class ClinicalSchema(tuple):
    """The study's clinical factors, in order: a tuple of :class:`ClinicalFactor`.

    Build it with :meth:`parse` from ``cohort.clinical`` entries (or names), or from the
    ``clinical_schema`` of ``application.json`` (:meth:`from_dicts`).
    """

    def __new__(cls, factors=()):
        factors = tuple(ClinicalFactor.parse(f) for f in factors)
        seen = set()
        for f in factors:
            if f.name in seen:
                raise ConfigError(f"cohort.clinical names {f.name!r} twice; give each column once.")
            seen.add(f.name)
        return super().__new__(cls, factors)

    @classmethod
    def parse(cls, entries) -> "ClinicalSchema":
        """From ``cohort.clinical`` entries: names, mappings or :class:`ClinicalFactor` objects."""
        return entries if isinstance(entries, cls) else cls(entries)

    @classmethod
    def from_dicts(cls, items) -> "ClinicalSchema":
        """From :meth:`ClinicalFactor.to_dict` records, or from plain names (a study frozen before the schema)."""
        return cls(i if isinstance(i, str) else {k: v for k, v in i.items() if v is not None} for i in items)

    @property
    def names(self) -> list[str]:
        return [f.name for f in self]

    @property
    def categorical(self) -> list[ClinicalFactor]:
        return [f for f in self if f.categorical]

    def __getitem__(self, key):
        if isinstance(key, str):
            for f in self:
                if f.name == key:
                    return f
            raise KeyError(key)
        return super().__getitem__(key)

    def get(self, name, default=None):
        return next((f for f in self if f.name == name), default)

    def to_dicts(self) -> list[dict]:
        return [f.to_dict() for f in self]

    def check(self, df: pd.DataFrame, source="manifest", setting: str = "cohort.clinical", columns=None) -> pd.DataFrame:
        """``df`` with its factor columns checked and typed: numbers as numbers, categories as pandas
        categoricals with the factor's levels, reference first (empty cells stay missing).

        Only the factors in ``columns`` (default: every one) are checked; they must be in ``df``.

        Raises
        ------
        InputError
            The first cell that is not a finite number (numeric) or not one of the levels
            (categorical), naming the file, its row (header = row 1), the column, the value and
            what is allowed.
        """
        df = df.copy()
        for f in self:
            if (columns is not None and f.name not in columns) or f.name not in df.columns:
                continue
            col = df[f.name]
            if f.categorical:
                text = col.map(level_text)
                bad = text.notna() & ~text.isin(f.levels)
                if bad.any():
                    _, cell = _first_bad_cell(col, bad, source, f.name)
                    raise InputError(
                        f"{cell} is not a level of the categorical factor "
                        f"{f.name!r}; allowed: {', '.join(f.levels)} (fix the cell, leave it empty when unknown, "
                        f"or add the level to {setting})."
                    )
                df[f.name] = pd.Categorical(text, categories=list(f.ordered_levels))
                continue
            values = pd.to_numeric(col, errors="coerce")
            bad = col.notna() & ~np.isfinite(values.to_numpy(dtype=float))  # not a number, or +-inf
            if bad.any():
                i, cell = _first_bad_cell(col, bad, source, f.name)
                raise InputError(
                    f"{cell} is not a {'finite ' if pd.notna(values.iloc[i]) else ''}number; "
                    f"clinical factors must be numeric unless {setting} declares them categorical "
                    "(leave the cell empty when unknown)."
                )
            df[f.name] = values  # as pandas.to_numeric reads them (whole numbers stay ints: cohort.csv unchanged)
        return df

    def check_levels_present(self, df: pd.DataFrame, where: str = "the training set", setting: str = "cohort.clinical") -> None:
        """Refuse a declared level no lesion of ``df`` has: its coefficient would not exist (rms::lrm
        stops on a singular information matrix), so say which level, and what to do, before fitting.

        Raises
        ------
        InputError
            Naming the factor, the level, ``where`` and the remedy.
        """
        for f in self.categorical:
            if f.name not in df.columns:
                continue
            text = df[f.name].map(level_text)
            absent = [lv for lv in f.levels if not (text == lv).any()]
            if absent:
                raise InputError(
                    f"{setting} factor {f.name!r}: level {absent[0]!r} has no lesion in {where} ({len(df)} lesions), so "
                    "its coefficient cannot be estimated; merge it into another level (recode the manifest) or remove it "
                    "from levels."
                )

    def to_frame(self, df: pd.DataFrame) -> pd.DataFrame:
        """``df`` with the factor columns typed as :meth:`check` types them (for R: factors, reference first)."""
        return self.check(df, source="table")

    def labels(self, labels: Mapping | None = None) -> dict:
        """``{name: display name}`` of every factor (see :meth:`ClinicalFactor.display`)."""
        return {f.name: f.display(labels) for f in self}
