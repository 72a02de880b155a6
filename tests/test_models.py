"""The model registry, the seed CNN's exact architecture, and the intensity door check."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from covidxray.errors import CovidxrayError
from covidxray.imaging.augment import augmentation
from covidxray.imaging.preprocess import IntensityRangeError, Preprocessing, PreprocessingError, check_intensity, prepare_array
from covidxray.imaging.preprocess_torch import Screener
from covidxray.models.outputs import output_width
from covidxray.models.registry import UnknownModelError, create_model, input_arguments, list_models, model_spec


@pytest.mark.parametrize("name", list_models())
@pytest.mark.parametrize("outputs", [1, 3])
def test_every_registered_model_builds_with_right_output_shape(name, outputs):
    kwargs = {"size": 64} if name == "seed-cnn" else {}
    network = create_model(name, outputs, **kwargs).eval()
    channels = model_spec(name).preprocessing.channels
    with torch.no_grad():
        logits = network(torch.rand(2, channels, 64, 64))
    assert logits.shape == (2, outputs)


def test_registry_holds_the_baseline_and_stronger_networks():
    assert {"seed-cnn", "densenet121", "efficientnet-b0", "xray-cnn"} <= set(list_models())


def test_unknown_model_name_is_refused_with_the_known_names():
    with pytest.raises(UnknownModelError) as caught:
        create_model("resnet-9000", 1)
    message = str(caught.value)
    assert "resnet-9000" in message
    assert all(name in message for name in list_models())
    assert isinstance(caught.value, CovidxrayError)


def test_unknown_builder_argument_is_refused_by_name():
    with pytest.raises(UnknownModelError, match="colour"):
        create_model("xray-cnn", 1, colour=True)


def test_seed_cnn_is_the_seed_study_network_layer_for_layer():
    network = create_model("seed-cnn", 1)
    convs = [m for m in network.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [32, 64, 128, 256]
    assert all(c.kernel_size == (3, 3) and c.padding == (0, 0) for c in convs)
    assert convs[0].in_channels == 3
    layers = list(network.features)
    pools = [i for i, layer in enumerate(layers) if isinstance(layer, nn.MaxPool2d)]
    assert pools == [2, 5]  # after the first two convolutions only
    dense = [m for m in network.modules() if isinstance(m, nn.Linear)]
    assert [d.out_features for d in dense] == [32, 1]
    dropout = [m for m in network.modules() if isinstance(m, nn.Dropout)]
    assert [d.p for d in dropout] == [0.25]
    # same parameter count as the Keras model summary for a 150x150x3 input
    assert sum(p.numel() for p in network.parameters()) == 896 + 18496 + 73856 + 295168 + (256 * 32 * 32 * 32 + 32) + 33
    spec = model_spec("seed-cnn")
    assert spec.preprocessing.size == 150 and spec.preprocessing.channels == 3
    assert input_arguments("seed-cnn", spec.preprocessing) == {"size": 150}  # its dense layer is sized by the input
    assert input_arguments("xray-cnn", Preprocessing(size=96)) == {}


def test_output_width_is_one_logit_for_binary_and_one_per_label_otherwise():
    assert output_width("binary", ("not_covid", "covid")) == 1
    assert output_width("3class", ("covid", "pneumonia", "normal")) == 3


def test_the_models_package_names_its_public_api_without_importing_torch():
    import subprocess
    import sys

    code = ("import sys, covidxray.models as m, covidxray.models.outputs; "
            "assert 'torch' not in sys.modules; assert m.output_width('binary', ['a', 'b']) == 1; "
            "assert set(m.__all__) >= {'create_model', 'list_models', 'model_spec', 'output_width'}; print('ok')")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "ok"


def test_intensity_check_refuses_8_bit_values_with_a_hint():
    with pytest.raises(IntensityRangeError, match="0-255"):
        check_intensity(np.full((8, 8), 200.0, dtype=np.float32))


def test_intensity_check_refuses_16_bit_integers_and_normalised_inputs():
    with pytest.raises(IntensityRangeError, match="integer"):
        check_intensity(np.zeros((8, 8), dtype=np.uint16))
    with pytest.raises(IntensityRangeError, match="negative"):
        check_intensity(torch.full((1, 1, 8, 8), -0.8))
    with pytest.raises(IntensityRangeError, match="NaN"):
        check_intensity(torch.tensor([0.5, float("nan")]))


def test_intensity_check_accepts_unit_range():
    check_intensity(np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8))


def test_model_door_refuses_a_0_255_batch():
    screener = Screener(create_model("xray-cnn", 1), Preprocessing(size=32))
    screener(torch.rand(2, 1, 32, 32))  # accepted
    with pytest.raises(IntensityRangeError, match="0-255"):
        screener(torch.rand(2, 1, 32, 32) * 255)


def test_door_repeats_grey_into_three_channels_for_rgb_networks():
    screener = Screener(create_model("seed-cnn", 1, size=32), Preprocessing(size=32, channels=3))
    assert screener(torch.rand(2, 1, 32, 32)).shape == (2, 1)


def test_preprocessing_round_trips_and_keys_the_cache_by_what_changes_the_array():
    preprocessing = Preprocessing(size=96, crop_border=0.05, equalise=True, intensity="per-image")
    assert Preprocessing.from_dict(preprocessing.to_dict()) == preprocessing
    assert Preprocessing(size=96).cache_key() != Preprocessing(size=128).cache_key()
    assert Preprocessing(size=96).cache_key() != Preprocessing(size=96, equalise=True).cache_key()
    assert Preprocessing(size=96).cache_key() == Preprocessing(size=96, channels=3).cache_key()
    with pytest.raises(PreprocessingError, match="crop border"):
        Preprocessing(crop_border=0.6)


def test_prepare_array_crops_equalises_and_resizes_into_unit_range():
    image = np.tile(np.linspace(0.0, 0.3, 100, dtype=np.float32)[:, None], (1, 80))  # a dim, smooth ramp
    prepared = prepare_array(image, Preprocessing(size=40, crop_border=0.1, equalise=True))
    assert prepared.shape == (40, 40) and prepared.dtype == np.float32
    assert prepared.min() >= 0 and prepared.max() <= 1 and prepared.max() > 0.9  # equalised to the full range


@pytest.mark.parametrize("preset", ["seed", "radiograph"])
def test_augmentations_keep_shape_and_range_and_change_the_image(preset):
    torch.manual_seed(0)
    image = torch.rand(1, 48, 48)
    augmented = augmentation(preset)(image)
    assert augmented.shape == image.shape
    assert 0 <= float(augmented.min()) and float(augmented.max()) <= 1
    assert not torch.equal(augmented, image)


def test_unknown_augmentation_lists_presets():
    with pytest.raises(CovidxrayError, match="radiograph"):
        augmentation("wild")
