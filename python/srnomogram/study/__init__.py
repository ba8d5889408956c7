"""Studies: one YAML file in, the paper's whole analysis out (board, tables, figures, report).

* :func:`load_config` — a study YAML (+ ``--set`` overrides) into frozen dataclasses;
* :func:`run_study` — run or resume the stages (content-hash cache) and write the report;
* :func:`run_demo` — the same on the synthetic demo cohort (``srnomogram demo``);
* :func:`validate` / :func:`predict` — apply a finished study, frozen, to another cohort;
* :func:`update` — update its nomogram for a new centre (closed testing procedure).
"""

from .._lazy import lazy_exports

__all__ = ["load_config", "run_study", "run_demo", "StudyConfig", "validate", "predict", "update"]


__getattr__, __dir__ = lazy_exports(__name__, {
    "load_config": ".config",
    "StudyConfig": ".config",
    "run_study": ".pipeline",
    "run_demo": ".demo",
    "validate": ".external",
    "predict": ".external",
    "update": ".update",
})
