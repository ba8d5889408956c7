"""Study settings: one YAML file loaded into frozen dataclasses, with command-line overrides.

A study file has these sections (every key optional except ``cohort.manifest``; see
``inst/study/demo.yaml`` for a commented example)::

    study:      name, seed, output, deterministic
    cohort:     manifest, clinical, clinical_labels, label_names
    split:      test_size, seed, use_manifest_split
    sr:         enabled, params (passed to srnomogram.sr.SuperResolver), region (roi | image), image_size
    radiomics:  enabled, params (a PyRadiomics parameter file), jobs, models
    deep:       enabled, archs, images, weights, epochs, batch_size, lr, device, params
    nomogram:   best_model_rule, train_score, calibration_b, bootstrap_seed, hl_groups, dca_thresholds,
                dca_bootstraps, alpha, require_signal
    validation: folds, repeats
    board:      pickle_models
    report:     formats, title

Unknown keys and values of the wrong type raise :class:`~srnomogram.errors.ConfigError` naming the
key's full path, e.g. ``deep.epochs must be an int > 0. Got 'ten' instead.``. Paths in the file are
relative to the file's folder; paths given on the command line are relative to the working directory.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..errors import ConfigError
from ..metrics import BEST_MODEL_RULES  # one list of rules, where the rules live
from ..utils import hash_bytes

__all__ = ["StudyConfig", "load_config", "config_from_dict", "parse_override", "BEST_MODEL_RULES"]

TRAIN_SCORES = ("cross_fitted", "cross_validated", "fitted")  # cross_validated: the old name of cross_fitted
MODEL_IMAGES = ("or", "sr")
ARCHS = ("mobilenet_v2", "resnet101")


def _spec(default, *, check=None, choices=None, path=False, doc=""):
    """A field with its validation rule. ``check`` is (predicate, words) for e.g. 'an int > 0'."""
    meta = {"check": check, "choices": choices, "path": path, "doc": doc}
    if isinstance(default, (list, dict)):
        raise TypeError("use tuples / mappings via default_factory")
    return field(default=default, metadata=meta)


_POS = (lambda v: v > 0, "> 0")
_NONNEG = (lambda v: v >= 0, ">= 0")
_PROB = (lambda v: 0 < v < 1, "in (0, 1)")


@dataclass(frozen=True)
class StudySection:
    name: str = _spec("study", doc="short name shown in the report")
    seed: int = _spec(0, check=_NONNEG, doc="seed for every random step (split, models, bootstrap)")
    output: str = _spec("study_output", path=True, doc="output folder: board, stages, report")
    deterministic: bool = _spec(True, doc="ask PyTorch for deterministic algorithms")
    scheduler: str = _spec(
        None,
        doc="dask.distributed scheduler address (tcp://host:8786) that radiomics extraction runs on "
        "(default: $DASK_SCHEDULER_ADDRESS, else locally); needs a filesystem shared with the workers",
    )


@dataclass(frozen=True)
class CohortSection:
    manifest: str = _spec("", path=True, doc="cohort manifest CSV (srnomogram.data.manifest)")
    clinical: tuple = _spec(("age", "max_diameter_cm"), doc="clinical factor columns of the manifest")
    clinical_labels: typing.Mapping = _spec(None, doc="display names of clinical columns")
    label_names: tuple = _spec(("benign", "malignant"), doc="names of label 0 and 1")


@dataclass(frozen=True)
class SplitSection:
    test_size: float = _spec(0.2, check=_PROB, doc="fraction of lesions in the test set")
    seed: int = _spec(None, check=_NONNEG, doc="split seed (default: study.seed)")
    use_manifest_split: bool = _spec(True, doc="keep the manifest's 'split' column when it has one")


@dataclass(frozen=True)
class SRSection:
    enabled: bool = _spec(True, doc="train the super-resolution GAN and build SR models")
    params: typing.Mapping = _spec(None, doc="keyword arguments of srnomogram.sr.SuperResolver")
    region: str = _spec("roi", choices=("roi", "image"), doc="roi: SR of each lesion's box + the CNN margin only (identical there, "
                        "faster; radiomics settings that read the whole image switch it to image); image: whole images")


@dataclass(frozen=True)
class RadiomicsSection:
    enabled: bool = _spec(True)
    params: str = _spec(None, path=True, doc="PyRadiomics parameter file (default: the package's)")
    jobs: int = _spec(None, check=_POS, doc="worker processes for feature extraction")
    models: tuple = _spec(("lr", "svm"), choices=("lr", "svm"), doc="classifiers on the features")


@dataclass(frozen=True)
class DeepSection:
    enabled: bool = _spec(True)
    archs: tuple = _spec(ARCHS, choices=ARCHS, doc="CNN architectures")
    images: tuple = _spec(MODEL_IMAGES, choices=MODEL_IMAGES, doc="train each CNN on OR and/or SR images")
    weights: str = _spec("imagenet", doc="'imagenet', 'none' or a weights file")
    epochs: int = _spec(200, check=_POS)
    batch_size: int = _spec(16, check=_POS)
    lr: float = _spec(0.005, check=_POS)
    device: str = _spec("auto", doc="'auto', 'cpu', 'cuda', ...")
    params: typing.Mapping = _spec(None, doc="further keyword arguments of srnomogram.deep.DeepClassifier")


@dataclass(frozen=True)
class NomogramSection:
    best_model_rule: str = _spec(
        "cv_auc",
        choices=BEST_MODEL_RULES,
        doc="which model gives the deep-learning score: cv_auc (highest cross-validated training AUC; the test set "
        "chooses nothing), test_auc (the paper's rule: highest test AUC, which makes the chosen model's and the "
        "nomogram's test AUCs optimistic), train_auc, test_auc_cnn",
    )
    train_score: str = _spec(
        "cross_fitted",
        choices=TRAIN_SCORES,
        doc="training-set deep-learning score: cross_fitted (out-of-fold, from a model that never saw the lesion; "
        "'cross_validated' is accepted as the old name) or fitted (the paper's in-sample score)",
    )
    calibration_b: int = _spec(
        1000,
        check=_POS,
        doc="bootstrap repetitions of the calibration curve (rms::calibrate) and of the internal validation "
        "(rms::validate, optimism-corrected indexes)",
    )
    bootstrap_seed: int = _spec(None, check=_NONNEG, doc="seed of the bootstrap (default: study.seed)")
    hl_groups: int = _spec(10, check=(lambda v: v >= 3, ">= 3"), doc="Hosmer-Lemeshow groups")
    dca_thresholds: tuple = _spec((0.0, 0.99, 0.01), doc="decision-curve thresholds: from, to, by")
    dca_bootstraps: int = _spec(500, check=_NONNEG, doc="bootstrap replicates of the decision curves' bands (0: none)")
    alpha: float = _spec(
        0.05,
        check=_PROB,
        doc="1 - confidence level of every interval the study reports: Table 2 and ROC AUCs (DeLong), odds ratios "
        "(Table S2, coefficients) and decision-curve bands",
    )
    require_signal: bool = _spec(
        False,
        doc="score check: when the chosen model's cross-validated training AUC has a CI reaching 0.5 (no evidence "
        "that the deep-learning score discriminates), false warns in the log and the report, true stops the study "
        "at the table2 stage",
    )


@dataclass(frozen=True)
class ValidationSection:
    folds: int = _spec(5, check=(lambda v: v >= 2, ">= 2"), doc="k of the stratified k-fold cross-fitting inside the training set")
    repeats: int = _spec(0, check=_NONNEG, doc="repeated splits: rerun the split-dependent stages for split seeds 0 … N-1 (0: none)")


@dataclass(frozen=True)
class BoardSection:
    pickle_models: bool = _spec(False, doc="also pin fitted scikit-learn models as joblib pickles")


@dataclass(frozen=True)
class ReportSection:
    title: str = _spec(None, doc="report title (default from study.name)")
    formats: tuple = _spec(("png", "pdf"), choices=("png", "pdf"), doc="figure file formats")


SECTIONS = {
    "study": StudySection,
    "cohort": CohortSection,
    "split": SplitSection,
    "sr": SRSection,
    "radiomics": RadiomicsSection,
    "deep": DeepSection,
    "nomogram": NomogramSection,
    "validation": ValidationSection,
    "board": BoardSection,
    "report": ReportSection,
}


@dataclass(frozen=True)
class StudyConfig:
    """The resolved settings of one study (all sections, defaults filled in, paths absolute)."""

    study: StudySection
    cohort: CohortSection
    split: SplitSection
    sr: SRSection
    radiomics: RadiomicsSection
    deep: DeepSection
    nomogram: NomogramSection
    validation: ValidationSection
    board: BoardSection
    report: ReportSection
    source: str = field(default=None, compare=False)

    @property
    def output(self) -> Path:
        return Path(self.study.output)

    @property
    def split_seed(self) -> int:
        return self.study.seed if self.split.seed is None else self.split.seed

    @property
    def bootstrap_seed(self) -> int:
        return self.study.seed if self.nomogram.bootstrap_seed is None else self.nomogram.bootstrap_seed

    def to_dict(self) -> dict:
        """Plain nested dict (tuples as lists), as written to ``resolved_config.yaml``."""
        out = {}
        for name in SECTIONS:
            sec = getattr(self, name)
            out[name] = {f.name: _to_plain(getattr(sec, f.name)) for f in dataclasses.fields(sec)}
        return out

    def section_hash(self, *names) -> str:
        """Content hash of some sections (what a stage's cache key depends on)."""
        d = self.to_dict()
        d["study"].pop("output")  # where results go does not change them
        return hash_bytes(json.dumps({n: d[n] for n in names}, sort_keys=True))

    @property
    def config_hash(self) -> str:
        d = self.to_dict()
        d["study"].pop("output")  # where results go does not change them
        return hash_bytes(json.dumps(d, sort_keys=True))

    def write(self, path) -> Path:
        from ..utils import atomic_path

        with atomic_path(path) as tmp:
            tmp.write_text(
                "# Resolved study settings (defaults filled in, paths absolute) written by srnomogram.\n"
                + yaml.safe_dump(self.to_dict(), sort_keys=False)
            , encoding="utf-8")
        return Path(path)


def _to_plain(v):
    if isinstance(v, tuple):
        return [_to_plain(x) for x in v]
    if isinstance(v, typing.Mapping):
        return {str(k): _to_plain(x) for k, x in v.items()}
    return v


# ---------------------------------------------------------------------------------------- validation
_WORDS = {int: "an int", float: "a number", bool: "true or false", str: "a string", tuple: "a list"}


def _fail(key, allowed, got):
    return ConfigError(f"{key} must be {allowed}. Got {got!r} instead.")


def _coerce(key, f, value, base: Path):
    kind = f.type if not isinstance(f.type, str) else eval(f.type, vars(typing), globals())  # noqa: S307
    check, choices = f.metadata["check"], f.metadata["choices"]
    if value is None:
        if f.default is None:
            return None
        raise _fail(key, _describe(kind, check, choices), value)
    if kind is bool:
        if not isinstance(value, bool):
            raise _fail(key, "true or false", value)
    elif kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _fail(key, _describe(kind, check, choices), value)
    elif kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _fail(key, _describe(kind, check, choices), value)
        value = float(value)
    elif kind is str:
        if not isinstance(value, str) or (f.metadata["path"] and not value):
            raise _fail(key, _describe(kind, check, choices), value)
        if f.metadata["path"] and not (f.name == "output" and value == ""):
            value = str((base / os.path.expanduser(value)).resolve())
    elif kind is tuple:
        if isinstance(value, (str, int, float)):
            value = [value]
        if not isinstance(value, (list, tuple)):
            raise _fail(key, _describe(kind, check, choices), value)
        if choices is not None:
            bad = [v for v in value if v not in choices]
            if bad:
                raise _fail(key, f"a list of {', '.join(map(repr, choices))}", bad[0])
        if f.name == "dca_thresholds":
            if len(value) != 3 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
                raise _fail(key, "a list [from, to, by] of numbers", value)
            lo, hi, by = value
            if not (0 <= lo < hi < 1 and by > 0):
                raise _fail(key, "[from, to, by] with 0 <= from < to < 1 and by > 0", value)
        elif not all(isinstance(v, str) for v in value):
            raise _fail(key, "a list of strings", value)
        value = tuple(value)
        if not value:
            raise _fail(key, "a non-empty list", [])
        return value
    elif kind is typing.Mapping:
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise _fail(key, "a mapping of names to values", value)
        return dict(value)
    if choices is not None and value not in choices:
        raise _fail(key, f"one of {', '.join(map(repr, choices))}", value)
    if check is not None and not check[0](value):
        raise _fail(key, _describe(kind, check, choices), value)
    return value


def _describe(kind, check, choices):
    if choices is not None:
        return f"one of {', '.join(map(repr, choices))}"
    words = _WORDS.get(kind, "a value")
    return f"{words} {check[1]}" if check else words


def _unknown(key_path, key, allowed):
    near = difflib.get_close_matches(str(key), allowed, n=1)
    hint = f" Did you mean '{key_path}{near[0]}'?" if near else ""
    return ConfigError(
        f"Unknown key '{key_path}{key}' in the study settings; allowed: {', '.join(allowed)}.{hint}"
    )


def config_from_dict(raw: dict, base_dir=".", source=None) -> StudyConfig:
    """Validate a nested dict (a parsed study YAML) into a :class:`StudyConfig`.

    Parameters
    ----------
    raw : dict
        Sections as in the YAML file.
    base_dir : path-like
        Folder that relative paths are resolved against (the YAML file's folder).
    """
    base = Path(base_dir)
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"The study settings must be a mapping of sections. Got {type(raw).__name__} instead.")
    for key in raw:
        if key not in SECTIONS:
            raise _unknown("", key, list(SECTIONS))
    sections = {}
    for name, cls in SECTIONS.items():
        given = raw.get(name) or {}
        if not isinstance(given, dict):
            raise ConfigError(f"{name} must be a mapping of settings. Got {given!r} instead.")
        fields = {f.name: f for f in dataclasses.fields(cls)}
        for key in given:
            if key not in fields:
                raise _unknown(f"{name}.", key, list(fields))
        kwargs = {}
        for fname, f in fields.items():
            if fname in given:
                kwargs[fname] = _coerce(f"{name}.{fname}", f, given[fname], base)
            elif f.metadata["path"] and f.default:
                kwargs[fname] = str((base / f.default).resolve())
        sections[name] = cls(**kwargs)
    if sections["nomogram"].train_score == "cross_validated":
        sections["nomogram"] = dataclasses.replace(sections["nomogram"], train_score="cross_fitted")
    if not sections["cohort"].manifest:
        raise ConfigError("cohort.manifest must be the path of a cohort manifest CSV. Got '' instead.")
    if sections["sr"].enabled is False:
        for sec, images in (("deep", sections["deep"].images),):
            if "sr" in images:
                sections[sec] = dataclasses.replace(sections[sec], images=tuple(i for i in images if i != "sr"))
    return StudyConfig(**sections, source=str(source) if source else None)


def parse_override(text: str) -> tuple[list[str], object]:
    """Split ``'deep.epochs=2'`` into (['deep', 'epochs'], 2); the value is read as YAML."""
    if "=" not in text:
        raise ConfigError(f"--set takes SECTION.KEY=VALUE, e.g. deep.epochs=2. Got {text!r} instead.")
    key, value = text.split("=", 1)
    parts = key.strip().split(".")
    if len(parts) != 2 or not all(parts):
        raise ConfigError(f"--set takes SECTION.KEY=VALUE, e.g. deep.epochs=2. Got {text!r} instead.")
    try:
        parsed = yaml.safe_load(value) if value.strip() else None
    except yaml.YAMLError:
        parsed = value
    return parts, parsed


def load_config(path, overrides=(), output=None) -> StudyConfig:
    """Read a study YAML, apply ``--set`` overrides and an output folder, and validate.

    Parameters
    ----------
    path : path-like
        The study file.
    overrides : iterable of str
        ``SECTION.KEY=VALUE`` strings (values parsed as YAML); path values relative to the working
        directory.
    output : path-like, optional
        Output folder, relative to the working directory (overrides ``study.output``).
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"Study file {path} not found.")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"Study file {path} is not valid YAML ({str(exc).splitlines()[0]}).") from None
    raw = raw or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"Study file {path} must hold a mapping of sections. Got {type(raw).__name__} instead.")
    raw = {k: (dict(v) if isinstance(v, dict) else v) for k, v in raw.items()}
    for text in overrides:
        (sec, key), value = parse_override(text)
        if sec not in SECTIONS:
            raise _unknown("", sec, list(SECTIONS))
        section = raw.setdefault(sec, {})
        if not isinstance(section, dict):
            raise ConfigError(f"{sec} must be a mapping of settings. Got {section!r} instead.")
        fields = {f.name: f for f in dataclasses.fields(SECTIONS[sec])}
        if key in fields and fields[key].metadata["path"] and isinstance(value, str) and value:
            value = str((Path.cwd() / os.path.expanduser(value)).resolve())  # command line: relative to the cwd
        section[key] = value  # unknown keys and bad values are caught by the validation below
    if output is not None:
        raw.setdefault("study", {})["output"] = str(Path(output).resolve())
    cfg = config_from_dict(raw, base_dir=path.parent.resolve(), source=path.resolve())
    return cfg
