"""Radiomics: PyRadiomics-exact feature extraction (fast), feature selection and LR/SVM models.

* :func:`extract` — the paper's 107 PyRadiomics features per lesion of a manifest, equal to
  ``RadiomicsFeatureExtractor().execute()`` and much faster (parallel, cached).
* :func:`make_model` — the paper's pipeline as a scikit-learn ``Pipeline``: Mann–Whitney U
  filter (p < 0.05) → z-score → Pearson |r| > 0.9 pruning → logistic regression or SVM.
* :class:`CentreStandardiser`, :class:`ComBat` — label-free harmonisation of the features across
  centres, frozen after fitting; a new centre comes in from its unlabelled reference sample.

Nothing heavy is imported until used (PyRadiomics, SimpleITK, scikit-learn load lazily).
"""

from .._lazy import lazy_exports

__all__ = [
    "extract",
    "extract_case",
    "pyradiomics_input",
    "PAPER_CLASSES",
    "make_model",
    "MannWhitneySelector",
    "CorrelationPruner",
    "model_report",
    "fit_or_sr_models",
    "CentreStandardiser",
    "ComBat",
]

_LAZY = {
    "extract": ".extraction",
    "extract_case": ".extraction",
    "pyradiomics_input": ".extraction",
    "PAPER_CLASSES": ".extraction",
    "make_model": ".models",
    "MannWhitneySelector": ".selection",
    "CorrelationPruner": ".selection",
    "model_report": ".models",
    "fit_or_sr_models": ".models",
    "CentreStandardiser": ".harmonise",
    "ComBat": ".harmonise",
}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
