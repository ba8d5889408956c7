"""Run a whole study: stages (cached, resumable) → board pins → tables, figures, report, calculator.

>>> from srnomogram.study import run_study, load_config      # doctest: +SKIP
>>> report = run_study(load_config("study.yaml"))             # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from ..utils import atomic_path, write_csv_atomic
from .applying import publisher  # noqa: F401 - pins each stage's results; re-exported where it used to live
from .cache import Runner, report_pins
from .stages import build_stages

logger = logging.getLogger(__name__)


def run_study(cfg, force=(), progress=None) -> Path:
    """Run (or resume) a study; return the path of its ``report.html``.

    Parameters
    ----------
    cfg : StudyConfig
        From :func:`~srnomogram.study.config.load_config`.
    force : iterable of str
        Stages to recompute (``"all"`` for every stage).

    Notes
    -----
    Outputs under ``cfg.study.output``: ``resolved_config.yaml``, ``board/`` (pins), ``stages/``
    (the cache), ``tables/*.csv``, ``figures/*.png|pdf``, ``report.html``, ``calculator.html``. The
    folder is claimed as a study folder (:func:`srnomogram.study.folders.claim_output`): a folder of
    ``validate`` or ``predict``, or a non-empty one srnomogram did not write, raises
    :class:`~srnomogram.errors.OutputOwnerError`; its lock is held while it runs: a second run on the same
    folder raises :class:`~srnomogram.errors.OutputInUseError`.
    """
    if cfg.study.subgroups:  # a subgroup column the manifest lacks is said before anything is written
        from .subgroups import check_manifest_subgroups

        check_manifest_subgroups(cfg.cohort.manifest, cfg.study.subgroups, "study.subgroups")
    from .folders import Owner, claim_output

    out = Path(cfg.study.output)
    with claim_output(out, Owner("study", "run")):  # one writer per study folder: a second run is refused in one line
        return _run_study(cfg, out, force)


def study_stages(cfg) -> list:
    """Every stage of a study, each with the pins it declares: :func:`~srnomogram.study.stages.build_stages`,
    and the repeated splits (``validation.repeats`` > 0) and the internal-external cross-validation (``split.method:
    centre``, :mod:`srnomogram.study.iecv`) before the last stage, ``main_result``, which summarises them."""
    stages = build_stages(cfg)
    if cfg.validation.repeats:
        from .repeats import repeats_stage

        stages.insert(len(stages) - 1, repeats_stage(cfg))
    if cfg.split.method == "centre":
        from .iecv import iecv_stage

        stages.insert(len(stages) - 1, iecv_stage(cfg))
    from .main_result import main_result_stage
    from .report import board_checklist

    stages[-1] = main_result_stage(cfg, checklist=board_checklist)  # its tripod_ai pin: what the report will have
    return stages


def _run_study(cfg, out: Path, force) -> Path:
    from .._torch import seed_everything

    if cfg.study.threads is not None:  # else the caller's (the command line sets it at its start)
        from .._threads import set_threads

        set_threads(cfg.study.threads)
    out.mkdir(parents=True, exist_ok=True)
    cfg.write(out / "resolved_config.yaml")
    seed_everything(cfg.study.seed)
    board_dir = out / "board"
    stages = study_stages(cfg)
    force = tuple(force or ())
    if force and cfg.validation.repeats and "repeats" not in force:
        force = (*force, "repeats")  # a forced stage is forced in every split seed too (each seed reuses the rest)
    if force and cfg.split.method == "centre" and "iecv" not in force:
        force = (*force, "iecv")  # and in every held-out centre's fold
    runner = Runner(cfg, stages, force=force, on_done=publisher(cfg, board_dir))
    results = runner.run()
    with atomic_path(out / "run_log.json") as tmp:
        tmp.write_text(json.dumps(runner.log, indent=1), encoding="utf-8")
    report = publish(cfg, [s for s in stages if s.name in results], runner.log, out)
    logger.info("Report: %s", report)
    return report


def publish(cfg, stages, log, out: Path) -> Path:
    """``tables/``, ``figures/``, ``calculator.html`` and ``report.html``, from the board's pins alone.

    The pins come from what ``stages`` declare (:class:`~srnomogram.study.cache.Pin`): those with a
    report ``section`` are exported to ``tables/<pin>.csv`` and shown in the report in their order;
    the figures are drawn from the pins by :func:`srnomogram.study.figures.study_figures`. A new
    statistic reaches the report by one declared pin. The stages' JSON records that the methods text
    quotes (the split's counts, the chosen model, the score's sign check) are pins too, read back from
    the board (:class:`~srnomogram.study.report.BoardRecords`). ``log``: the runner's, for the Run table.
    """
    from . import figures as F
    from .report import BoardRecords, write_calculator, write_report

    board_dir = Path(out) / "board"
    shown = report_pins(stages)
    tables = export_tables(board_dir, [p.name for p in shown], Path(out) / "tables")
    declared = [p.name for s in stages for p in s.pins]
    figures = F.study_figures(board_dir, Path(out) / "figures", formats=("png", *cfg.report.formats), pins=declared,
                              labels=cfg.cohort.schema.labels(cfg.cohort.clinical_labels))
    records = BoardRecords(board_dir, stages)
    calc = write_calculator(cfg, records, Path(out) / "calculator.html", board_dir=board_dir)
    return write_report(cfg, records, tables, figures, log, Path(out) / "report.html", calculator=calc,
                        pins=shown, board_dir=board_dir)


def export_tables(board_dir: Path, pins, folder: Path) -> dict:
    """Write the latest version of each pin in ``pins`` (those on the board) to ``folder/<pin>.csv``;
    return ``{pin: DataFrame}`` in the order of ``pins``."""
    from ..board import list_pins, read_pin

    folder.mkdir(parents=True, exist_ok=True)
    have = set(list_pins(board_dir)) if Path(board_dir).is_dir() else set()
    out = {}
    for name in pins:
        if name in have:
            out[name] = read_pin(board_dir, name)
            write_csv_atomic(out[name], folder / f"{name}.csv")
    return out
