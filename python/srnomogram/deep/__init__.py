"""Deep-learning arm: MobileNetV2 / ResNet101 transfer learning on lesion ROIs, scores and Grad-CAM.

Split by role as torchvision's references: :mod:`~srnomogram.deep.networks` (modules and weights),
:mod:`~srnomogram.deep.data` (ROI crops), :mod:`~srnomogram.deep.presets` (train/eval transforms),
:mod:`~srnomogram.deep.engine` (training loop), :mod:`~srnomogram.deep.gradcam`,
:mod:`~srnomogram.deep.model` (:class:`DeepClassifier`) and :mod:`~srnomogram.deep.run`
(train, score and write every output of one model). torch loads only when a name is used.
"""

__all__ = ["DeepClassifier", "load_rois", "RoiSet", "train_and_score", "GradCamResult"]


def __getattr__(name):
    if name == "DeepClassifier":
        from .model import DeepClassifier

        return DeepClassifier
    if name in ("load_rois", "RoiSet"):
        from . import data

        return getattr(data, name)
    if name == "train_and_score":
        from .run import train_and_score

        return train_and_score
    if name == "GradCamResult":
        from .gradcam import GradCamResult

        return GradCamResult
    raise AttributeError(name)
