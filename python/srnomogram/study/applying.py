"""Apply a finished study's own stages, frozen, to a cohort: the one apply path.

:func:`load_study` checks a study folder and reads its frozen application; :class:`ApplyRun` is what the
study's stages see as ``ctx.config`` in apply mode (:class:`~srnomogram.study.cache.Apply`);
:func:`_run_stages` runs the study's own stage list (:func:`srnomogram.study.stages.build_stages`) in that
mode and, to validate, the external statistics, pinning what each stage declares through :func:`publisher`
(the study's own publisher). :mod:`srnomogram.study.external` (``validate``, ``predict``) and
:mod:`srnomogram.study.iecv` (each held-out centre) both apply a study through it, so that neither is a
second stage graph; it sits below both, and below :mod:`~srnomogram.study.pipeline`, which runs a study
and pins its stages with the same :func:`publisher`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..errors import CheckpointError, InputError
from ..utils import file_sha256, hash_bytes
from .cache import DONE, Runner, Stage
from .freeze import APP_FORMAT
from .stages.statistics import statistics_stage

__all__ = ["publisher", "load_study", "FinishedStudy", "ApplyRun"]


# ================================================================================ pinning a stage's results
def publisher(cfg, board_dir, metadata=None):
    """``on_done`` for :class:`~srnomogram.study.cache.Runner`: pin what each finished (or reused) stage
    declares in ``Stage.pins``, with the study's provenance, updated by ``metadata`` (an applied study's:
    the new cohort, the run's options). A table with a ``model`` id column is pinned with the models'
    display ``label`` beside it (:func:`~srnomogram.study.stages.with_labels`): the id is the join key,
    the label what a reader sees.

    A reused stage's pins are checked first (:func:`~srnomogram.board.verify_pin`): pins keeps an edited
    pin file as "identical" to a rewrite of the same table, so a pin changed on the board since it was
    written is refused with :class:`~srnomogram.board.BoardError` (rerun the stage with ``--force``),
    never carried into ``tables/`` and the report. A stage that ran writes a fresh version over it."""
    from ..board import list_pins, verify_pin, write_file_pin, write_object, write_pin
    from .stages import with_labels

    def publish(stage, result, reused):
        if reused and stage.pins and Path(board_dir).is_dir():
            have = set(list_pins(board_dir))
            for pin in stage.pins:
                if pin.name in have:
                    verify_pin(board_dir, pin.name)
        meta_base = {
            "stage": stage.name,
            "stage_key": result.key,
            "seed": cfg.study.seed,
            "config_hash": cfg.config_hash,
            "config": cfg.to_dict(),
            "input_hashes": result.inputs,
            "output_hashes": {k: v for k, v in result.files.items() if k.endswith(".csv") and "/" not in k},
            **(metadata or {}),
        }
        for pin in stage.pins:
            title = pin.title_for(cfg)
            if pin.file is not None:
                if result.file(pin.file).is_file():
                    write_file_pin(board_dir, pin.name, result.file(pin.file), metadata=meta_base, title=title)
                continue
            df = pin.frame(result)
            if isinstance(df, pd.DataFrame):
                write_pin(board_dir, pin.name, with_labels(df), metadata=meta_base, title=title)
            elif df is not None:  # a fitted object, declared only where the user asked for pickles (board.pickle_models)
                write_object(board_dir, pin.name, df, metadata=meta_base, title=title)

    return publish


# ================================================================================ a finished study
@dataclass
class FinishedStudy:
    """A study folder, checked: its settings, frozen application, training summary and design."""

    path: Path
    app: dict
    summary: dict
    design: dict
    key: str

    def file(self, rel) -> Path:
        return self.path / rel

    @property
    def model_keys(self) -> list[str]:
        return list(self.app["models"])

    @property
    def clinical(self):
        """The study's :class:`~srnomogram.data.clinical.ClinicalSchema` (a study frozen before it: numeric names)."""
        from ..data.clinical import ClinicalSchema

        return ClinicalSchema.from_dicts(self.app.get("clinical_schema") or self.app["clinical_factors"])


RERUN = "recreate it with 'srnomogram run {dir}/resolved_config.yaml -o {dir}' (finished stages are reused)"


def _missing(study_dir, what):
    return InputError(f"Study folder {study_dir} lacks {what}; " + RERUN.format(dir=study_dir) + ".")


def _check_stage(study_dir: Path, name: str) -> dict:
    """A stage folder's ``done.json`` and the SHA-256 of every file it lists."""
    done = study_dir / "stages" / name / DONE
    if not done.is_file():
        raise _missing(study_dir, f"the finished stage stages/{name}")
    try:
        files = json.loads(done.read_text(encoding="utf-8"))["files"]
    except (ValueError, KeyError, TypeError):
        raise _missing(study_dir, f"a readable stages/{name}/{DONE}") from None
    for rel, sha in files.items():
        p = study_dir / "stages" / name / rel
        if not p.is_file():
            raise _missing(study_dir, f"stages/{name}/{rel}")
        if file_sha256(p) != sha:
            raise CheckpointError(
                f"{p} does not match the SHA-256 its stage recorded (corrupted or edited); "
                + RERUN.format(dir=study_dir) + " after removing stages/" + name + "."
            )
    return files


def _read_json(study_dir: Path, rel: str) -> dict:
    """A JSON file of the study; a missing or unreadable one is named in one line (with the command that recreates it)."""
    p = study_dir / rel
    if not p.is_file():
        raise _missing(study_dir, rel)
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise _missing(study_dir, f"a readable {rel}") from None


def load_study(study_dir) -> FinishedStudy:
    """Check a finished study folder and read its frozen application; one-line error naming a missing piece.

    Every stage the application needs is checked (its ``done.json`` and the SHA-256 of each file it lists), and
    every file the application names (the models, the nomogram design) must be among them: a stage folder that
    another command replaced is named, not met later as a missing file.
    """
    study_dir = Path(study_dir).resolve()
    if not study_dir.is_dir():
        raise InputError(f"Study folder {study_dir} not found; pass the output folder of 'srnomogram run'.")
    if not (study_dir / "resolved_config.yaml").is_file():
        raise InputError(f"{study_dir} is not a study folder (no resolved_config.yaml); pass the output folder of 'srnomogram run'.")
    files = _check_stage(study_dir, "application")
    app = _read_json(study_dir, "stages/application/application.json")
    if app.get("format") != APP_FORMAT:
        raise _missing(study_dir, f"an application.json of format {APP_FORMAT}")
    named = [m[k] for m in app["models"].values() for k in ("file", "harmoniser") if m.get(k)] + [app["design"]]
    stages = {"nomogram"} | {Path(f).parts[1] for f in named}
    if app["sr"]["enabled"]:
        stages.add("sr")
    listed = {f"stages/{s}/{rel}" for s in sorted(stages) for rel in _check_stage(study_dir, s)}
    for rel in named:  # a folder is listed by the files inside it
        if not any(f == rel or f.startswith(rel.rstrip("/") + "/") for f in listed):
            raise _missing(study_dir, rel)
    summary = _read_json(study_dir, "stages/application/training_summary.json")
    design = _read_json(study_dir, app["design"])
    key = hash_bytes(json.dumps(files, sort_keys=True))
    return FinishedStudy(study_dir, app, summary, design, key)


# ================================================================================ the application run
@dataclass
class ApplyRun:
    """What the study's stages see as ``ctx.config`` in apply mode (:class:`~srnomogram.study.cache.Apply`)."""

    study: FinishedStudy
    manifest: Path
    out: Path
    need_label: bool
    options: dict = field(default_factory=dict)
    cfg: object = None  # the study's resolved config (StudyConfig): its stages, titles and settings
    #: The applied stage list (set by :func:`_run_stages`), for a stage that runs part of it on another manifest
    #: (the radiomics models stage on a centre's reference sample).
    applied: list = field(default_factory=list, repr=False)

    def __post_init__(self):
        if self.cfg is None:
            from .config import load_config

            self.cfg = load_config(self.study.path / "resolved_config.yaml")


def _apply_stages(run: ApplyRun, with_stats: bool) -> list[Stage]:
    """The study's own stage list (:func:`srnomogram.study.stages.build_stages` of its resolved config) in apply
    mode: each stage with an apply half, keyed by the frozen study; then, to validate, the external statistics."""
    from .stages import build_stages

    key = lambda r, res: {"study": r.study.key, "need_label": r.need_label}  # noqa: E731
    stages = [s.applied(extra_key=key) for s in build_stages(run.cfg) if s.apply is not None]
    if with_stats:
        stages.append(statistics_stage())
        if run.options.get("by"):
            from .stages.subgroups import external_subgroups_stage

            stages.append(external_subgroups_stage())
    return stages


def _run_stages(run: ApplyRun, with_stats: bool):
    """Run the applied stages; to validate, each finished stage pins what it declares on ``OUT/board``
    (the study's publisher, with the external run's provenance)."""
    stages = _apply_stages(run, with_stats)
    run.applied = stages
    on_done = publisher(run.cfg, run.out / "board", metadata=_board_metadata(run)) if with_stats else None
    runner = Runner(run, stages, force=run.options.get("force", ()), root=run.out / "stages", on_done=on_done)
    return runner, stages, runner.run()


def _board_metadata(run: ApplyRun) -> dict:
    """What every pin of an external board records besides the study's provenance: the applied study and cohort,
    the run's options, and the settings R's ``board_figures()`` reads (the level; the decision-curve bands' B)."""
    config = run.cfg.to_dict()
    config["nomogram"] = {**config["nomogram"], "dca_bootstraps": run.options.get("dca_bootstraps")}
    return {"study": str(run.study.path), "study_key": run.study.key, "manifest": str(run.manifest),
            "manifest_sha256": file_sha256(run.manifest), "estimate": "external", "config": config,
            "options": {k: v for k, v in run.options.items() if k != "force"}}


def _prepare(study_dir, manifest, out, need_label, options):
    from .stages import cohort_overlap, load_apply_cohort

    study = load_study(study_dir)
    manifest = Path(manifest).resolve()
    cohort = load_apply_cohort(manifest, need_label, clinical=study.clinical)  # fail early, before any stage writes
    if options.get("strict"):
        overlap = cohort_overlap(study, cohort, manifest.name)
        if overlap.get("message"):
            raise InputError(overlap["message"] + " With --strict this is an error: remove those lesions from "
                             f"{manifest.name}, or leave out --strict to report them with a warning.")
    return ApplyRun(study, manifest, Path(out).resolve(), need_label, options)
