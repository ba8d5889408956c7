"""Stage runner with a content-hash cache: a stopped study continues where it stopped.

Each stage writes its outputs into a fresh temporary folder under ``<output>/stages/``; when the
stage function returns, the runner hashes every file it wrote, writes ``done.json`` (the stage key
and the files' SHA-256) into that folder, and renames the folder into place. A stage is reused on a
later run only when its folder has a readable ``done.json`` whose key equals the key computed now and
every listed file is present with the listed hash; otherwise it is recomputed. Killing the process
(Ctrl-C, SIGKILL) at any moment therefore leaves either the old complete result or nothing.

The key of a stage is the hash of its name and code version, the config sections it reads, the
hashes of its input files and the hashes of the outputs of the stages it depends on, so changing one setting
recomputes exactly the stages downstream of it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pandas as pd

from ..errors import ConfigError
from ..utils import atomic_path, file_sha256, fsync_path, hash_bytes, honour_umask, write_csv_atomic

logger = logging.getLogger(__name__)

__all__ = ["Pin", "Apply", "Stage", "StageResult", "StageContext", "Runner", "DONE", "REPORT_SECTIONS", "report_pins"]

DONE = "done.json"


@dataclass(frozen=True)
class Pin:
    """A pin a stage writes to the study's board when it finishes (or is reused).

    Parameters
    ----------
    name : str
        The pin's name (snake_case noun).
    table : str, optional
        The stage's table (``<table>.csv``) pinned; default ``name``. The pin is skipped when the
        stage did not write it (e.g. ``sr_quality``).
    read : callable, optional
        ``read(result: StageResult) -> DataFrame``: builds the pinned table instead (any other object
        is pinned as a pickle: declare such pins only where the user asked for pickles,
        ``board.pickle_models``).
    title : str, optional
        The pin's title (default: its name with spaces).
    file : str, optional
        Pin this file of the stage (path relative to its folder) unchanged, as a ``file`` pin
        (:func:`srnomogram.board.write_file_pin`), instead of a table; skipped when absent.
    section : str, optional
        The report section that shows it (one of :data:`REPORT_SECTIONS`); the pin is then also
        exported to ``tables/<name>.csv``. None (default): on the board only.
    order : float
        Its place within the section (ascending).
    show : bool
        Print the table in the report (default); False for long tables, which the report only
        names (``tables/<name>.csv``).

    The title is the pin's board title and its report heading; ``{level}`` (the confidence level
    in percent, from ``nomogram.alpha``) and ``{B}`` (``nomogram.calibration_b``) are filled in
    from the study's settings (:meth:`title_for`). A new statistic reaches ``report.html`` and
    ``tables/`` by one declaration in its stage's ``pins=``:
    ``Pin("my_statistic", title="My statistic ({level}% CI)", section="tables", order=145)``.
    """

    name: str
    table: str | None = None
    read: Callable | None = None
    title: str | None = None
    file: str | None = None
    section: str | None = None
    order: float = 0
    show: bool = True

    def __post_init__(self):
        if self.section is not None and self.section not in REPORT_SECTIONS:
            raise ConfigError(f"The 'section' parameter of Pin {self.name!r} must be one of {list(REPORT_SECTIONS)} "
                              f"or None. Got {self.section!r} instead.")

    def title_for(self, cfg=None) -> str:
        """The title with the study's confidence level and bootstrap B filled in (default: the name with spaces)."""
        title = self.title or self.name.replace("_", " ")
        if cfg is None:
            return title
        # replace, not str.format: a title may quote a label with braces of its own
        return title.replace("{level}", f"{100 * (1 - cfg.nomogram.alpha):.10g}").replace("{B}", str(cfg.nomogram.calibration_b))

    def frame(self, result) -> pd.DataFrame | None:
        """The table to pin from a stage's result (None when the stage did not write it)."""
        if self.read is not None:
            return self.read(result)
        table = self.table or self.name
        return result.table(table) if (result.path / f"{table}.csv").exists() else None


#: The report's sections that show pins, in page order: the main result, the tables, the repeated
#: splits and the TRIPOD+AI tables; ``external``: the report of ``srnomogram validate``.
REPORT_SECTIONS = ("main", "tables", "repeats", "tripod", "external")


def pins(*names) -> tuple:
    """Pins of stage tables of the same names: ``pins("table1", "table_s2")``."""
    return tuple(Pin(n) for n in names)


def record(name: str, title: str) -> Pin:
    """The stage's JSON record ``<name>.json`` (its settings and counts, e.g. the split's ``split_info``),
    pinned unchanged as a ``file`` pin: the report's methods text and warnings read it from the board
    (:class:`srnomogram.study.report.BoardRecords`)."""
    return Pin(name, file=f"{name}.json", title=title)


def report_pins(stages) -> list:
    """The pins of ``stages`` that the report shows (those with a ``section``), in page order."""
    found = [p for s in stages for p in s.pins if p.section is not None]
    return sorted(found, key=lambda p: (REPORT_SECTIONS.index(p.section), p.order))


@dataclass(frozen=True)
class Apply:
    """The apply half of a stage: what the stage does to a new cohort with the study's fitted state.

    ``srnomogram validate`` and ``predict`` run the study's own stage list in apply mode
    (:meth:`Stage.applied`), as ``Pipeline.predict`` runs a fitted pipeline's steps: the same names
    and dependencies, each stage's ``fn`` reading the frozen study instead of fitting.

    Parameters
    ----------
    fn : callable
        ``fn(ctx: StageContext) -> None``; ``ctx.config`` is the application run
        (:class:`srnomogram.study.external.ApplyRun`: ``study``, ``manifest``, ``out``,
        ``need_label``, ``options``).
    version : str
        Bump when the apply code changes its results.
    inputs : callable, optional
        As :attr:`Stage.inputs`, on the application run (e.g. the new cohort's files).
    pins : tuple of Pin
        The pins the apply half writes (the application's board).
    """

    fn: Callable
    version: str = "1"
    inputs: Callable | None = None
    pins: tuple = ()


@dataclass(frozen=True)
class Stage:
    """One step of a study.

    Parameters
    ----------
    name : str
        Folder name under ``stages/``.
    fn : callable
        ``fn(ctx: StageContext) -> None``; writes its files with ``ctx.write_table`` etc.
    deps : tuple of str
        Names of the stages whose results it reads (``ctx.inputs[name]``).
    sections : tuple of str
        Config sections its results depend on.
    inputs : callable, optional
        ``inputs(config, results) -> dict[str, str]`` naming input files hashes (e.g. the manifest
        and every image), computed on each run.
    version : str
        Bump when the stage's code changes its results.
    extra_key : callable, optional
        ``extra_key(config, results) -> dict`` of further settings its results depend on.
    pins : tuple of Pin
        The pins it writes (the study's publisher reads them; not part of the stage key).
    apply : Apply, optional
        Its apply half (stages that fit something, or load the cohort); None: not run when applying.
    """

    name: str
    fn: Callable
    deps: tuple = ()
    sections: tuple = ()
    inputs: Callable | None = None
    version: str = "1"
    extra_key: Callable | None = None
    pins: tuple = ()
    apply: Apply | None = None

    def applied(self, extra_key: Callable | None = None) -> Stage:
        """This stage in apply mode: its :class:`Apply` half under the same name and dependencies.

        ``extra_key(run, results)``: what every applied result depends on besides its inputs (the
        frozen study's key, the run's options).
        """
        if self.apply is None:
            raise ValueError(f"stage {self.name} has no apply half")  # programming error
        a = self.apply
        return Stage(self.name, a.fn, deps=self.deps, inputs=a.inputs, version=a.version, extra_key=extra_key, pins=a.pins)


class StageResult:
    """The files of a finished stage."""

    def __init__(self, name, path: Path, key: str, files: dict):
        self.name, self.path, self.key, self.files = name, Path(path), key, files
        self.inputs = {}  # hashes of the input files and of the upstream stages' outputs

    def table(self, name: str) -> pd.DataFrame:
        return pd.read_csv(self.path / f"{name}.csv", dtype={"case_id": str})

    def json(self, name: str):
        return json.loads((self.path / f"{name}.json").read_text(encoding="utf-8"))

    def file(self, relpath: str) -> Path:
        return self.path / relpath

    def tables(self) -> list[str]:
        return sorted(p[:-4] for p in self.files if p.endswith(".csv") and "/" not in p)

    def __repr__(self):
        return f"StageResult({self.name!r}, key={self.key[:8]})"


@dataclass
class StageContext:
    """What a stage function sees: the config, its upstream results, and its own output folder.

    ``extra["scratch"]`` is a folder outside the stage's temporary folder (``<root>/../cache/<stage>``)
    for work that must survive a killed run, e.g. finished cross-fitting folds; ``extra["force"]`` the
    stages the run recomputes (``--force``), for a stage that runs stages of its own (the repeated splits).
    """

    config: object
    inputs: dict
    dir: Path
    stage: Stage
    key: str
    extra: dict = field(default_factory=dict)

    def write_table(self, name: str, df: pd.DataFrame, index=False) -> Path:
        return write_csv_atomic(df, self.dir / f"{name}.csv", index=index)

    def write_json(self, name: str, obj) -> Path:
        with atomic_path(self.dir / f"{name}.json") as tmp:
            tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=_json_default), encoding="utf-8")
        return self.dir / f"{name}.json"

    def path(self, relpath: str) -> Path:
        p = self.dir / relpath
        p.parent.mkdir(parents=True, exist_ok=True)
        return p


def _json_default(o):
    if hasattr(o, "item"):
        return o.item()
    if hasattr(o, "tolist"):
        return o.tolist()
    if isinstance(o, (Path, os.PathLike)):
        return os.fspath(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def _hash_files(folder: Path) -> dict:
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file() and p.name != DONE:
            out[p.relative_to(folder).as_posix()] = file_sha256(p)
    return out


class Runner:
    """Run stages in order, reusing the finished ones.

    Parameters
    ----------
    config : StudyConfig
        The resolved settings.
    stages : list of Stage
        In dependency order.
    force : iterable of str
        Stage names to recompute even when cached (``--force STAGE``); ``"all"`` recomputes all.
    on_done : callable, optional
        ``on_done(stage, result, reused)`` after each stage (e.g. to pin its tables).
    """

    def __init__(self, config, stages, force=(), on_done=None, root=None):
        self.config = config
        self.stages = list(stages)
        self.root = Path(root) if root is not None else Path(config.study.output) / "stages"
        names = [s.name for s in self.stages]
        force = set(force or ())
        unknown = force - set(names) - {"all"}
        if unknown:
            raise ConfigError(
                f"--force names an unknown stage {sorted(unknown)[0]!r}; stages are: {', '.join(names)}."
            )
        self.force = set(names) if "all" in force else force
        self.on_done = on_done
        self.results: dict[str, StageResult] = {}
        self._inputs: dict[str, dict] = {}
        self.log: list[dict] = []

    # ---------------------------------------------------------------- keys and cache checks
    def stage_key(self, stage: Stage) -> str:
        cfg = self.config
        parts = {
            "stage": stage.name,
            "version": stage.version,
            "config": cfg.section_hash(*stage.sections) if stage.sections else "",
            # upstream *content*, so a forced rerun that changes nothing keeps downstream stages
            "deps": {d: hash_bytes(json.dumps(self.results[d].files, sort_keys=True)) for d in stage.deps},
            "inputs": stage.inputs(cfg, self.results) if stage.inputs else {},
            "extra": stage.extra_key(cfg, self.results) if stage.extra_key else None,
        }
        self._inputs[stage.name] = {"inputs": parts["inputs"], "upstream": parts["deps"]}
        return hash_bytes(json.dumps(parts, sort_keys=True, default=str))

    def cached(self, stage: Stage, key: str) -> StageResult | None:
        """The stage's finished result if it is complete and current, else None (and why, logged)."""
        folder = self.root / stage.name
        marker = folder / DONE
        if not marker.is_file():
            return None
        try:
            done = json.loads(marker.read_text(encoding="utf-8"))
            files = done["files"]
            ok_key = done["key"] == key
        except (ValueError, KeyError, TypeError):
            logger.warning("Stage %s: its done.json is unreadable; recomputing.", stage.name)
            return None
        if not ok_key:
            logger.info("Stage %s: settings or inputs changed; recomputing.", stage.name)
            return None
        for rel, sha in files.items():
            p = folder / rel
            if not p.is_file() or file_sha256(p) != sha:
                logger.warning("Stage %s: output %s is missing or corrupted; recomputing.", stage.name, rel)
                return None
        return StageResult(stage.name, folder, key, files)

    # ---------------------------------------------------------------- running
    def run_stage(self, stage: Stage) -> StageResult:
        for d in stage.deps:
            if d not in self.results:
                raise RuntimeError(f"stage {stage.name} needs {d}, which has not run")  # programming error
        key = self.stage_key(stage)
        hit = None if stage.name in self.force else self.cached(stage, key)
        if hit is not None:
            logger.info("Stage %s: reused (key %s).", stage.name, key[:8])
            hit.inputs = self._inputs[stage.name]
            self.results[stage.name] = hit
            self.log.append({"stage": stage.name, "key": key, "reused": True, "seconds": 0.0})
            if self.on_done:
                self.on_done(stage, hit, True)
            return hit
        self.root.mkdir(parents=True, exist_ok=True)
        self._clean_leftovers(stage.name)
        tmp = Path(tempfile.mkdtemp(dir=self.root, prefix=f".{stage.name}.tmp-"))
        honour_umask(tmp, directory=True)  # mkdtemp's 0700 would make every stage folder private
        t0 = time.perf_counter()
        logger.info("Stage %s: running.", stage.name)
        try:
            ctx = StageContext(self.config, {d: self.results[d] for d in stage.deps}, tmp, stage, key,
                               extra={"scratch": self.root.parent / "cache" / stage.name, "force": tuple(sorted(self.force))})
            stage.fn(ctx)
            files = _hash_files(tmp)
            with atomic_path(tmp / DONE) as t:
                t.write_text(json.dumps({"key": key, "stage": stage.name, "files": files}, indent=1), encoding="utf-8")
            final = self.root / stage.name
            if final.exists():
                old = self.root / f".{stage.name}.old-{os.getpid()}"
                os.replace(final, old)
                os.replace(tmp, final)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, final)
            fsync_path(self.root, directory=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        seconds = time.perf_counter() - t0
        res = StageResult(stage.name, final, key, files)
        res.inputs = self._inputs[stage.name]
        self.results[stage.name] = res
        self.log.append({"stage": stage.name, "key": key, "reused": False, "seconds": round(seconds, 2)})
        logger.info("Stage %s: done in %.1f s.", stage.name, seconds)
        if self.on_done:
            self.on_done(stage, res, False)
        return res

    def _clean_leftovers(self, name):
        for p in self.root.glob(f".{name}.*"):
            with contextlib.suppress(OSError):
                shutil.rmtree(p) if p.is_dir() else p.unlink()

    def run(self, until: str | None = None) -> dict:
        """Run every stage (or up to and including ``until``); return their results by name."""
        for stage in self.stages:
            self.run_stage(stage)
            if stage.name == until:
                break
        return self.results
