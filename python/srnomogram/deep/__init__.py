"""Deep-learning arm: MobileNetV2 / ResNet101 transfer learning on lesion ROIs, scores and Grad-CAM.

Split by role as torchvision's references: :mod:`~srnomogram.deep.networks` (modules and weights),
:mod:`~srnomogram.deep.data` (ROI crops), :mod:`~srnomogram.deep.presets` (train/eval transforms),
:mod:`~srnomogram.deep.engine` (training loop), :mod:`~srnomogram.deep.gradcam`,
:mod:`~srnomogram.deep.model` (:class:`DeepClassifier`) and :mod:`~srnomogram.deep.run`
(:func:`fit_and_score`, the one training routine of the study and ``deep train``, and
:func:`train_and_score`, which writes every output of one model). torch loads only when a name is used.
"""

from .._lazy import lazy_exports

__all__ = ["DeepClassifier", "load_rois", "RoiSet", "fit_and_score", "train_and_score", "GradCamResult"]


__getattr__, __dir__ = lazy_exports(__name__, {
    "DeepClassifier": ".model",
    "load_rois": ".data",
    "RoiSet": ".data",
    "fit_and_score": ".run",
    "train_and_score": ".run",
    "GradCamResult": ".gradcam",
})
