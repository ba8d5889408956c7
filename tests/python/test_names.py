"""One id and one label per model: the strings the study's tables, figures and report print."""

import pytest

from srnomogram import names
from srnomogram.errors import InputError

# The labels the study printed before the names module (stages.MODEL_LABELS, external.EXTRA_LABELS),
# and the paper's spelling (Yang & Ma's Table 2; deep train's model column; radiomics' Table 2 rows).
DISPLAY = {
    "or_lr": "OR-LR", "or_svm": "OR-SVM", "sr_lr": "SR-LR", "sr_svm": "SR-SVM",
    "or_mobilenet_v2": "OR-MobileNetV2", "sr_mobilenet_v2": "SR-MobileNetV2",
    "or_resnet101": "OR-ResNet101", "sr_resnet101": "SR-ResNet101",
    "or_efficientnet_lite0": "OR-EfficientNet-Lite0", "sr_efficientnet_lite0": "SR-EfficientNet-Lite0",
    "clinical": "Clinical model", "nomogram": "Nomogram",
}
PAPER = {
    "or_lr": "OR_LR", "or_svm": "OR_SVM", "sr_lr": "SR_LR", "sr_svm": "SR_SVM",
    "or_mobilenet_v2": "ORMobileNet_v2", "sr_mobilenet_v2": "SRMobileNet_v2",
    "or_resnet101": "ORResNet101", "sr_resnet101": "SRResNet101",
    "or_efficientnet_lite0": "OREfficientNet_lite0", "sr_efficientnet_lite0": "SREfficientNet_lite0",
    "clinical": "Clinical model", "nomogram": "Nomogram",
}


def test_labels_of_every_model_are_the_strings_the_study_printed():
    assert names.labels() == DISPLAY
    assert names.labels(style="paper") == PAPER
    assert list(names.labels())[:8] == list(DISPLAY)[:8]  # Table 2's order


@pytest.mark.parametrize("mid", list(DISPLAY)[:8])
def test_model_id_and_parse_model_id_are_inverse(mid):
    images, method = names.parse_model_id(mid)
    assert names.model_id(images, method) == mid
    assert names.image_col(images) == {"or": "image", "sr": "image_sr"}[images]
    assert names.images_of(names.image_col(images)) == images


def test_unknown_models_styles_and_image_sets_are_one_line_errors():
    with pytest.raises(InputError, match="The 'model' parameter of label must be a model id"):
        names.label("sr_vgg16")
    with pytest.raises(InputError, match="The 'style' parameter of label must be one of"):
        names.label("sr_lr", style="latex")
    with pytest.raises(InputError, match="The 'images' parameter of model_id must be one of"):
        names.model_id("ct", "lr")
    with pytest.raises(InputError, match="The 'arch' parameter of model_id must be one of"):
        names.model_id("or", "vgg16")


def test_arch_labels_come_from_the_network_registry():
    assert names.arch_label("mobilenet_v2") == "MobileNetV2" and names.arch_label("mobilenet_v2", "paper") == "MobileNet_v2"
    assert names.arch_label("resnet101") == "ResNet101"
