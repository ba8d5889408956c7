"""``srnomogram demo``: the whole study on the synthetic demo cohort, on CPU, in minutes."""

from __future__ import annotations

import logging
from importlib import resources
from pathlib import Path

import yaml

logger = logging.getLogger(__name__)

DEMO_N = 120


def demo_config_text() -> str:
    """The shipped demo study file (``srnomogram/study/demo.yaml``, also ``inst/study/demo.yaml``)."""
    return resources.files("srnomogram.study").joinpath("demo.yaml").read_text(encoding="utf-8")


def run_demo(output="demo_study", n=None, overrides=(), force=()) -> Path:
    """Generate the demo cohort under ``output/cohort`` and run the demo study; return the report path.

    Claims ``output`` as a study folder and holds its lock while it runs
    (:func:`srnomogram.study.folders.claim_output`).
    """
    from .folders import Owner, claim_output

    out = Path(output).resolve()
    with claim_output(out, Owner("study", "demo")):  # the cohort and the study are written under out: one writer
        return _run_demo(out, n, overrides, force)


def _run_demo(out: Path, n, overrides, force) -> Path:
    from ..data import demo_cohort
    from .config import load_config
    from .pipeline import run_study

    raw = yaml.safe_load(demo_config_text())
    n = int(n or DEMO_N)
    cohort_dir = out / "cohort"
    manifest = cohort_dir / "manifest.csv"
    marker = cohort_dir / ".n"
    if not manifest.exists() or not marker.exists() or marker.read_text(encoding="utf-8").strip() != str(n):
        logger.info("Writing the demo cohort (%d lesions) to %s", n, cohort_dir)
        manifest = demo_cohort(cohort_dir, n=n, seed=0)
        (cohort_dir / ".n").write_text(str(n), encoding="utf-8")
    raw.setdefault("cohort", {})["manifest"] = str(manifest)
    raw.setdefault("study", {})["output"] = str(out)
    out.mkdir(parents=True, exist_ok=True)
    study_file = out / "demo.yaml"
    study_file.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    cfg = load_config(study_file, overrides=overrides)
    return run_study(cfg, force=force)
