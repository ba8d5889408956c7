"""Run a whole study: stages (cached, resumable) → board pins → tables, figures, report, calculator.

>>> from srnomogram.study import run_study, load_config      # doctest: +SKIP
>>> report = run_study(load_config("study.yaml"))             # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd

from ..utils import atomic_path, output_lock, write_csv_atomic
from .cache import Runner
from .. import names
from .stages import build_stages

logger = logging.getLogger(__name__)

REPORT_TABLES = {
    "table1": ("clinical", "table1"),
    "table2": ("table2", "table2"),
    "score_check": ("table2", "score_check"),
    "table_s2": ("clinical", "table_s2"),
    "nomogram_coefficients": ("nomogram", "nomogram_coefficients"),
    "roc_auc": ("nomogram", "roc_auc"),
    "roc_comparison": ("nomogram", "roc_comparison"),
    "hosmer_lemeshow": ("nomogram", "hosmer_lemeshow"),
    "calibration_summary": ("nomogram", "calibration_summary"),
    "nomogram_thresholds": ("nomogram", "nomogram_thresholds"),
    "heldout_validation": ("nomogram", "heldout_validation"),
    "added_value": ("nomogram", "added_value"),
    "net_benefit_difference": ("nomogram", "net_benefit_difference"),
    "internal_validation": ("nomogram", "internal_validation"),
    "decision_curves": ("nomogram", "decision_curves"),
}


def _publisher(cfg, board_dir):
    """Pin what each finished (or reused) stage declares in ``Stage.pins``, with the study's provenance."""
    from ..board import write_file_pin, write_pin

    def publish(stage, result, reused):
        meta_base = {
            "stage": stage.name,
            "stage_key": result.key,
            "seed": cfg.study.seed,
            "config_hash": cfg.config_hash,
            "config": cfg.to_dict(),
            "input_hashes": result.inputs,
            "output_hashes": {k: v for k, v in result.files.items() if k.endswith(".csv") and "/" not in k},
        }
        for pin in stage.pins:
            title = pin.title or pin.name.replace("_", " ")
            if pin.file is not None:
                if result.file(pin.file).is_file():
                    write_file_pin(board_dir, pin.name, result.file(pin.file), metadata=meta_base, title=title)
                continue
            df = pin.frame(result)
            if df is not None:
                write_pin(board_dir, pin.name, df, metadata=meta_base, title=title)

    return publish


def run_study(cfg, force=(), progress=None) -> Path:
    """Run (or resume) a study; return the path of its ``report.html``.

    Parameters
    ----------
    cfg : StudyConfig
        From :func:`~srnomogram.study.config.load_config`.
    force : iterable of str
        Stages to recompute (``"all"`` for every stage).

    Outputs under ``cfg.study.output``: ``resolved_config.yaml``, ``board/`` (pins), ``stages/``
    (the cache), ``tables/*.csv``, ``figures/*.png|pdf``, ``report.html``, ``calculator.html``. The
    folder's lock (:func:`srnomogram.utils.output_lock`) is held while it runs: a second run on the same
    folder raises :class:`~srnomogram.errors.OutputInUseError`.
    """
    out = Path(cfg.study.output)
    with output_lock(out, "run"):  # one writer per study folder: a second run is refused in one line
        return _run_study(cfg, out, force)


def _run_study(cfg, out: Path, force) -> Path:
    from .._torch import seed_everything

    if cfg.study.threads is not None:  # else the caller's (the command line sets it at its start)
        from .._threads import set_threads

        set_threads(cfg.study.threads)
    out.mkdir(parents=True, exist_ok=True)
    cfg.write(out / "resolved_config.yaml")
    seed_everything(cfg.study.seed)
    board_dir = out / "board"
    stages = build_stages(cfg)
    runner = Runner(cfg, stages, force=force, on_done=_publisher(cfg, board_dir))
    # the main_result stage (last) summarises the repeated splits too: the seeds run before it
    *study_stages, main = stages
    results = runner.run(until=study_stages[-1].name)
    repeats = None
    if cfg.validation.repeats:
        repeats = repeated_splits(cfg, out, force=force)
    runner.run_stage(main)  # into runner.results, which is `results`
    with atomic_path(out / "run_log.json") as tmp:
        tmp.write_text(json.dumps(runner.log, indent=1), encoding="utf-8")
    tables = export_tables(results, out / "tables")
    export_pins(board_dir, MAIN_TABLES, out / "tables")
    figures = make_figures(cfg, results, out / "figures", board_dir)
    from .report import write_calculator, write_report

    calc = write_calculator(cfg, results, out / "calculator.html")
    report = write_report(cfg, results, tables, figures, runner.log, out / "report.html", calculator=calc, repeats=repeats)
    logger.info("Report: %s", report)
    return report


def repeated_splits(cfg, out: Path, force=()) -> dict:
    """Run the repeated splits (``validation.repeats`` seeds); write their tables and figure."""
    from . import figures as F
    from .repeats import run_repeats, summarise

    rows = run_repeats(cfg, cfg.validation.repeats, force=force)
    summary = summarise(rows)
    write_csv_atomic(rows, out / "tables" / "repeated_splits.csv")
    write_csv_atomic(summary, out / "tables" / "repeated_splits_summary.csv")
    from ..board import write_pin

    meta = {"seed": cfg.study.seed, "config_hash": cfg.config_hash, "config": cfg.to_dict()}
    write_pin(out / "board", "repeated_splits", rows, metadata=meta, title="test AUCs over split seeds")
    fmts = tuple(dict.fromkeys(("png", *cfg.report.formats)))
    (out / "figures").mkdir(parents=True, exist_ok=True)
    fig = F.save(F.figure_repeated_splits(rows, names.labels()), out / "figures" / "figure_repeated_splits", formats=fmts)[0]
    return {"rows": rows, "summary": summary, "figure": fig}


#: Tables the report reads from the board (its first section and the TRIPOD+AI section), exported to ``tables/``.
MAIN_TABLES = ("main_result", "participant_flow", "sample_size")


def export_pins(board_dir: Path, pins, folder: Path) -> dict:
    """Write the latest version of each pin in ``pins`` (those on the board) to ``folder/<pin>.csv``."""
    from ..board import list_pins, read_pin

    folder.mkdir(parents=True, exist_ok=True)
    have = set(list_pins(board_dir)) if Path(board_dir).is_dir() else set()
    out = {}
    for name in pins:
        if name in have:
            out[name] = read_pin(board_dir, name)
            write_csv_atomic(out[name], folder / f"{name}.csv")
    return out


def export_tables(results, folder: Path) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, (stage, table) in REPORT_TABLES.items():
        if stage in results and (results[stage].path / f"{table}.csv").exists():
            df = results[stage].table(table)
            write_csv_atomic(df, folder / f"{name}.csv")
            out[name] = df
    return out


def make_figures(cfg, results, folder: Path, board_dir: Path) -> dict:
    """Figures 3–7 as PNG/PDF; returns {name: png path}. Figures 3, 6 and 7 are drawn in R from the board."""
    from . import figures as F

    folder.mkdir(parents=True, exist_ok=True)
    fmts = tuple(dict.fromkeys(("png", *cfg.report.formats)))
    labels = {**names.labels(names.model_ids()), **cfg.cohort.schema.labels(cfg.cohort.clinical_labels)}
    # the board may hold pins of stages this run does not have (an earlier run's): draw only this run's
    wanted = [n for n, stage in zip(F.R_FIGURES, ("table2", "nomogram", "nomogram")) if stage in results]
    drawn_in_r = F.r_figures(board_dir, folder, labels, fmts, names=wanted)
    made = {}

    def keep(name, fig):
        if fig is not None:
            paths = F.save(fig, folder / name, formats=fmts)
            made[name] = paths[0]

    if "figure3_roc_models" in drawn_in_r:
        made["figure3_roc_models"] = drawn_in_r["figure3_roc_models"]
    deep = {n: r for n, r in results.items() if n.startswith("deep_")}
    if deep:
        loss = pd.concat(
            [r.table("loss_history").assign(model=names.label(n[5:])) for n, r in deep.items()],
            ignore_index=True,
        )
        keep("figure4_loss", F.figure4_loss(loss))
        keep("figure5_gradcam", F.figure5_gradcam({names.label(n[5:]): r.file("gradcam.npz") for n, r in deep.items()}))
    made.update({n: drawn_in_r[n] for n in ("figure6_nomogram", "figure7_validation") if n in drawn_in_r})
    return made
