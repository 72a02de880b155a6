"""Heat maps that point where the model looked: Grad-CAM not flipped, the ONNX graph's class activation
maps equal to it, a lung-crop model's map placed on the lung box it saw, and no torch on the way."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from covidxray.explain.cam import class_map, on_image, upsample_bilinear
from covidxray.explain.gradcam import gradcam_maps
from covidxray.imaging.preprocess import prepare_array
from covidxray.imaging.read import read_image
from covidxray.inference.classifier import load_checkpoint
from covidxray.inference.predictor import DEFAULT_MODEL, SAMPLES, Predictor

COVID = SAMPLES / "covid-cc-by-12941_2020_358_Fig1.jpg"


@pytest.fixture(scope="module")
def torch_classifier():
    return load_checkpoint(DEFAULT_MODEL)


def test_grad_cam_is_brightest_where_the_evidence_is(torch_classifier):
    """The covid map follows the head's weights applied to the last feature maps (MONAI's default
    post-processing flipped it: brightest where the evidence was least)."""
    image = read_image(COVID)
    heat = gradcam_maps(torch_classifier, [image], "covid")[0]
    network = torch_classifier.screener.eval().network
    batch = torch.from_numpy(prepare_array(image, torch_classifier.preprocessing))[None, None]
    with torch.no_grad():
        maps = network.features(torch_classifier.screener.door.convert(batch))[0].numpy()
    evidence = np.maximum(np.einsum("c,chw->hw", network.head[-1].weight[0].detach().numpy(), maps), 0)
    expected = upsample_bilinear(evidence, heat.shape)
    assert np.corrcoef(expected.ravel(), heat.ravel())[0, 1] > 0.999
    assert torch_classifier.screener.training is False  # Grad-CAM leaves the model as it found it


def test_the_onnx_class_maps_give_grad_cams_maps_for_every_class(torch_classifier):
    onnx = Predictor(backend="onnx")
    assert onnx.model.backend.has_class_maps  # the bundled export carries them
    images = [read_image(path) for path in sorted(SAMPLES.iterdir()) if path.suffix in (".png", ".jpg")]
    maps = onnx.model.class_maps(images)
    for class_name in torch_classifier.labels:
        expected = gradcam_maps(torch_classifier, images, class_name)
        for image_maps, torch_map in zip(maps, expected):
            got = class_map(image_maps, "binary", torch_classifier.labels, class_name, torch_classifier.preprocessing.size)
            assert np.abs(got - torch_map).max() < 1e-3, class_name


def test_a_lung_crop_models_map_covers_the_lung_box_only():
    predictor = Predictor()
    image = read_image(COVID)
    result, = predictor.screen([image], heatmaps=True)
    heat = result.heatmap
    assert heat.shape == image.shape and 0 <= heat.min() and heat.max() <= 1 and heat.max() > 0.5
    from covidxray.lungs.segmenter import lung_box

    rows, columns = lung_box(predictor.lung_mask(image))
    outside = np.ones(image.shape, bool)
    outside[rows, columns] = False
    assert outside.any() and heat[outside].max() == 0  # the model never saw the rest of the film
    plain = on_image(np.ones((4, 4), np.float32), (10, 20), predictor.info.preprocessing, None)
    assert plain.shape == (10, 20) and plain.min() == 1  # no mask: the whole image


def test_predict_draws_heat_maps_without_importing_torch_matplotlib_or_scipy(tmp_path):
    """torch and monai never; matplotlib (colours) and scipy (outline) not for the picture either. A covid
    result's severity score still reads scipy, so scipy is checked after the normal DICOM alone."""
    dicom = str(SAMPLES / "normal-nih-00001280_004.dcm")
    code = ("import json, sys; from covidxray.cli import main; "
            "loaded = lambda: [m for m in ('torch', 'monai', 'matplotlib', 'scipy') if m in sys.modules]; "
            f"first = main(['predict', {dicom!r}, '--heatmaps', {str(tmp_path / 'one')!r}]); after_dicom = loaded(); "
            f"second = main(['predict', {dicom!r}, {str(COVID)!r}, '--heatmaps', {str(tmp_path / 'maps')!r}]); "
            "print('LOADED', json.dumps([first, second, after_dicom, loaded()]))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "LOADED" in done.stdout, done.stdout + done.stderr
    first, second, after_dicom, after_both = json.loads(done.stdout.split("LOADED")[-1])
    assert (first, second, after_dicom) == (0, 0, []), done.stdout
    assert not {"torch", "monai", "matplotlib"} & set(after_both), after_both
    assert len(list((tmp_path / "one").glob("*.png"))) == 1 and len(list((tmp_path / "maps").glob("*.png"))) == 2
