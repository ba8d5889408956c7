"""Network construction and weight loading (torchvision models, safe state_dict files)."""

import pytest
import torch
import torchvision

from srnomogram.deep.networks import build_model, last_conv_layer, load_state_dict_file, normalization
from srnomogram.errors import CheckpointError, InputError


def test_normalization_is_read_from_torchvision_weights_meta():
    n = normalization("resnet101")
    assert n["mean"] == pytest.approx([0.485, 0.456, 0.406]) and n["std"] == pytest.approx([0.229, 0.224, 0.225])


@pytest.mark.parametrize("arch,channels", [("mobilenet_v2", 1280), ("resnet101", 2048)])
def test_models_have_a_two_class_head_and_a_last_conv_layer(arch, channels):
    torch.manual_seed(0)
    model = build_model(arch, "none").eval()
    store = {}
    last_conv_layer(model, arch).register_forward_hook(lambda m, i, o: store.setdefault("a", o))
    with torch.no_grad():
        out = model(torch.randn(2, 3, 64, 64))
    assert out.shape == (2, 2)
    assert store["a"].shape == (2, channels, 2, 2)


def test_resnet101_trains_one_step():
    torch.manual_seed(0)
    model = build_model("resnet101", "none")
    opt = torch.optim.SGD(model.parameters(), lr=0.005, momentum=0.9)
    x, y = torch.randn(2, 3, 64, 64), torch.tensor([0, 1])
    before = model.fc.weight.detach().clone()
    loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    assert torch.isfinite(loss) and not torch.equal(before, model.fc.weight)


def test_imagenet_weights_offline_without_the_file_give_one_line_naming_the_file_and_its_url(offline, tmp_path):
    with pytest.raises(CheckpointError) as ei:
        build_model("mobilenet_v2", "imagenet")
    assert offline, "the download was not attempted"
    offline.clear()
    msg = str(ei.value)
    expected = tmp_path / "torch_home" / "hub" / "checkpoints" / "mobilenet_v2-b0353104.pth"
    assert "\n" not in msg and str(expected) in msg and "https://download.pytorch.org/models/mobilenet_v2-b0353104.pth" in msg
    assert "weights='none'" in msg and not expected.exists()


def _cache_file(tmp_path, name):
    path = tmp_path / "torch_home" / "hub" / "checkpoints" / name
    path.parent.mkdir(parents=True)
    return path


def test_a_torchvision_file_copied_into_torch_home_loads_offline(offline, tmp_path):
    torch.manual_seed(1)
    ref = torchvision.models.mobilenet_v2(weights=None)  # stands in for the downloaded ImageNet file
    torch.save(ref.state_dict(), _cache_file(tmp_path, "mobilenet_v2-b0353104.pth"))
    model = build_model("mobilenet_v2", "imagenet")
    sd, want = model.state_dict(), ref.state_dict()
    assert model.classifier[-1].out_features == 2 and set(sd) == set(want)
    for k in sd:
        if not k.startswith("classifier.1."):
            torch.testing.assert_close(sd[k], want[k], rtol=0, atol=0)


def test_a_cached_torchvision_file_is_never_unpickled(offline, tmp_path):
    """torchvision reads its cache with weights_only=False; a file there that runs code on loading must not run."""
    marker = tmp_path / "code_ran"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    torch.save({"features.0.0.weight": Payload()}, _cache_file(tmp_path, "mobilenet_v2-b0353104.pth"))
    with pytest.raises(CheckpointError, match="corrupted or not a state_dict") as ei:
        build_model("mobilenet_v2", "imagenet")
    assert "\n" not in str(ei.value) and "mobilenet_v2-b0353104.pth" in str(ei.value)
    assert not marker.exists()


def test_local_imagenet_state_dict_loads_backbone_and_replaces_head(tmp_path):
    torch.manual_seed(0)
    ref = torchvision.models.mobilenet_v2(weights=None)  # a 1000-class "ImageNet" stand-in
    torch.save(ref.state_dict(), tmp_path / "imnet.pt")
    model = build_model("mobilenet_v2", tmp_path / "imnet.pt")
    torch.testing.assert_close(model.features[0][0].weight, ref.features[0][0].weight, rtol=0, atol=0)
    assert model.classifier[-1].out_features == 2
    # a 2-class state_dict loads whole
    torch.save(model.state_dict(), tmp_path / "two.pt")
    again = build_model("mobilenet_v2", str(tmp_path / "two.pt"))
    torch.testing.assert_close(again.classifier[-1].weight, model.classifier[-1].weight, rtol=0, atol=0)


def test_state_dict_of_another_arch_is_a_checkpoint_error(tmp_path):
    torch.save(torchvision.models.mobilenet_v2(weights=None).state_dict(), tmp_path / "mb.pt")
    with pytest.raises(CheckpointError, match="does not fit a torchvision resnet101"):
        build_model("resnet101", tmp_path / "mb.pt")


def test_corrupted_or_unsafe_weight_files_are_checkpoint_errors(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a torch file")
    with pytest.raises(CheckpointError, match="corrupted"):
        load_state_dict_file(bad)
    # a pickled module (not a state_dict) is refused by weights_only=True, never unpickled
    torch.save(torch.nn.Linear(2, 2), tmp_path / "module.pt")
    with pytest.raises(CheckpointError, match="corrupted or not a state_dict"):
        load_state_dict_file(tmp_path / "module.pt")
    with pytest.raises(CheckpointError, match="not found"):
        load_state_dict_file(tmp_path / "missing.pt")


def test_unknown_arch_and_weights_tag_are_input_errors():
    with pytest.raises(InputError, match="The 'arch' parameter of build_model must be one of"):
        build_model("vgg16", "none")
    with pytest.raises(InputError, match="The 'weights' parameter"):
        build_model("mobilenet_v2", "IMAGENET1K_V9")
