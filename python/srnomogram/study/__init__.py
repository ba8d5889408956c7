"""Studies: one YAML file in, the paper's whole analysis out (board, tables, figures, report).

* :func:`load_config` — a study YAML (+ ``--set`` overrides) into frozen dataclasses;
* :func:`run_study` — run or resume the stages (content-hash cache) and write the report;
* :func:`run_demo` — the same on the synthetic demo cohort (``srnomogram demo``).
"""

__all__ = ["load_config", "run_study", "run_demo", "StudyConfig"]


def __getattr__(name):  # lazy: importing the CLI must not import the stages' dependencies
    if name in ("load_config", "StudyConfig"):
        from . import config

        return getattr(config, name)
    if name == "run_study":
        from .pipeline import run_study

        return run_study
    if name == "run_demo":
        from .demo import run_demo

        return run_demo
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
