"""Heat-map pictures a person opens: a smooth lung outline, and a caption with the file, p(covid),
decision, colour key and the research notice (covidxray.explain.overlay, `predict --heatmaps`)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from covidxray import RESEARCH_NOTICE
from covidxray.explain.colours import INFERNO, coloured
from covidxray.explain.overlay import (CAPTION_BACKGROUND, CAPTION_MIN_WIDTH, OUTLINE_RGB, OUTLINE_SMOOTHING, captioned,
                                       colour_bar, heatmap_key, overlay, result_lines, smooth_lung_mask)
from covidxray.explain.smoothing import above_half
from covidxray.imaging.read import read_image
from covidxray.inference.predictor import SAMPLES, ScreeningResult

CYAN = (np.array(OUTLINE_RGB) * 255).round().astype(np.uint8)


def staircase_mask(side: int = 16) -> np.ndarray:
    """A coarse lung-like blob: a disc at low resolution, all stair-steps when enlarged."""
    rows, columns = np.mgrid[:side, :side]
    return (rows - side / 2 + 0.5) ** 2 + (columns - side / 2 + 0.5) ** 2 < (side * 0.38) ** 2


def test_the_drawn_outline_is_smooth_and_follows_the_mask():
    mask, size = staircase_mask(), 256
    picture = np.asarray(overlay(np.full((size, size), 0.5, np.float32), np.zeros((8, 8)), lung_mask=mask))
    cyan = np.all(picture == CYAN, axis=-1)
    blocky = np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).resize((size, size), Image.Resampling.NEAREST)) > 127
    from scipy import ndimage

    from covidxray.lungs.segmenter import lung_outline

    ragged = lung_outline(blocky)
    smooth = lung_outline(smooth_lung_mask(mask, size, size))
    assert smooth.sum() < ragged.sum() * 0.85  # a staircase is longer than the curve it steps around
    drawn_ragged = ragged | np.roll(ragged, 1, axis=0) | np.roll(ragged, 1, axis=1)  # as the outline was drawn before
    assert 0 < cyan.sum() < drawn_ragged.sum() * 0.9 and (cyan & ragged).sum() < ragged.sum() * 0.7  # the curve is drawn
    assert not (cyan & ~ndimage.binary_dilation(ragged, iterations=size // 16)).any()  # and it stays on the lungs' edge
    assert smooth_lung_mask(mask, size, size).sum() == pytest.approx(blocky.sum(), rel=0.05)  # same area: nothing cut off


def test_a_lobe_joined_by_a_thin_neck_is_kept():
    mask = np.zeros((32, 32), bool)
    mask[4:20, 6:14] = True
    mask[20:30, 6:8] = True  # a narrow lower part, two cells wide
    mask[26:30, 6:14] = True
    smooth = smooth_lung_mask(mask, 256, 256)
    assert smooth[230, 70]  # inside the lower part: still drawn


def enlarged(mask: np.ndarray, width: int, height: int) -> np.ndarray:
    """mask enlarged bilinearly to width x height as overlay() enlarges it, float32 in [0, 1]."""
    picture = Image.fromarray(mask.astype(np.uint8) * 255).resize((width, height), Image.Resampling.BILINEAR)
    return np.asarray(picture, np.float32) / 255.0


def drawn_by_matplotlib_and_scipy(image: np.ndarray, heat: np.ndarray, lung_mask: np.ndarray, opacity: float = 0.45):
    """overlay() as it was drawn with matplotlib's colour map and scipy.ndimage's blur, fill, erosion and dilation."""
    from matplotlib import colormaps
    from scipy import ndimage

    height, width = image.shape
    heat_image = Image.fromarray((np.clip(heat, 0, 1) * 255).astype(np.uint8)).resize((width, height), Image.Resampling.BILINEAR)
    colours = colormaps["inferno"](np.asarray(heat_image, np.float32) / 255.0)[..., :3]
    weight = opacity * (np.asarray(heat_image, np.float32)[..., None] / 255.0)
    blended = np.repeat(np.clip(image, 0, 1)[..., None], 3, axis=2) * (1 - weight) + colours * weight
    sigma = max(1.0, OUTLINE_SMOOTHING * max(width, height))
    smooth = ndimage.binary_fill_holes(ndimage.gaussian_filter(enlarged(lung_mask, width, height), sigma) > 0.5)
    edge = smooth & ~ndimage.binary_erosion(smooth, structure=ndimage.generate_binary_structure(2, 1), border_value=0)
    thickness = max(1, round(max(width, height) / 512))
    line = ndimage.binary_dilation(edge, iterations=thickness) if thickness > 1 else edge | np.roll(edge, 1, 0) | np.roll(edge, 1, 1)
    blended[line] = OUTLINE_RGB
    return (blended * 255).round().astype(np.uint8)


def test_the_picture_is_the_one_matplotlib_and_scipy_drew():
    pytest.importorskip("matplotlib")
    pytest.importorskip("scipy")
    image = read_image(SAMPLES / "normal-nih-00001280_004.dcm")
    heat = np.random.default_rng(0).random((10, 10))
    large = np.asarray(Image.fromarray(image).resize((1100, 900), Image.Resampling.BILINEAR))  # a 2 px wide outline
    for picture in (image, large):
        for mask in (staircase_mask(), np.pad(staircase_mask(24), ((0, 8), (4, 0)))):
            assert np.array_equal(np.asarray(overlay(picture, heat, lung_mask=mask)),
                                  drawn_by_matplotlib_and_scipy(picture, heat, mask)), picture.shape


def test_the_shipped_colour_map_is_matplotlibs_inferno():
    pytest.importorskip("matplotlib")
    from matplotlib import colormaps

    inferno = colormaps["inferno"]
    assert np.array_equal(INFERNO, inferno(np.arange(256))[:, :3])
    heat = np.arange(256, dtype=np.float32) / 255.0  # the values overlay() colours, in float32 as it does
    for values in (heat, np.linspace(0.0, 1.0, 1001), np.array([-0.5, 0.0, 0.5, 1.0, 1.5, np.nan])):
        assert np.array_equal(coloured(values), inferno(values)[..., :3])
    assert np.array_equal(coloured(heat, "viridis"), colormaps["viridis"](heat)[..., :3])  # another map: matplotlib's


def test_the_outline_blur_decides_every_pixel_as_scipy_does():
    ndimage = pytest.importorskip("scipy.ndimage")
    rng = np.random.default_rng(0)
    for _ in range(25):
        mask = rng.random(tuple(rng.integers(4, 30, size=2))) < 0.5
        width, height = (int(side) for side in rng.integers(8, 260, size=2))
        soft = enlarged(mask, width, height)
        sigma = max(1.0, OUTLINE_SMOOTHING * max(width, height)) * rng.uniform(0.5, 4.0)
        assert np.array_equal(above_half(soft, sigma), ndimage.gaussian_filter(soft, sigma) > 0.5), (width, height, sigma)
    rows, columns = np.mgrid[:40, :33]
    for pattern in ((rows + columns) % 2, columns % 2, columns < 16, np.full(rows.shape, 0.5)):  # sums of exactly 0.5
        soft = np.asarray(pattern, np.float32)
        for sigma in (1.0, 2.5, 12.0):
            assert np.array_equal(above_half(soft, sigma), ndimage.gaussian_filter(soft, sigma) > 0.5), sigma


def three_class_result(**changes) -> ScreeningResult:
    fields = dict(path="x.png", p_covid=0.71234, p_pneumonia=0.2, p_normal=0.08766, prediction="covid", threshold=0.4,
                  status="screened")
    return ScreeningResult(**{**fields, **changes})


def test_caption_lines_say_probability_decision_and_warning():
    binary = result_lines(three_class_result(status="warned", input_note="unusually dark"), ("not_covid", "covid"))
    assert binary[0].startswith("p(covid) 0.712; decision: covid") and "threshold 0.400" in binary[0]
    assert binary[1] == "Input gate warning: unusually dark"
    three = result_lines(three_class_result(), ("covid", "pneumonia", "normal"))
    assert three == ["p(covid) 0.712, p(pneumonia) 0.200, p(normal) 0.088; decision: covid (the most probable class)"]
    assert "does not show where disease is" in heatmap_key("covid", outline=True)


def test_captioned_picture_keeps_the_map_and_adds_text_colour_bar_and_notice():
    rng = np.random.default_rng(0)
    picture = Image.fromarray(rng.integers(0, 255, (300, 200, 3), dtype=np.uint8), mode="RGB")
    result = captioned(picture, "chest.png", ["p(covid) 0.712; decision: covid"], heatmap_key("covid", True), RESEARCH_NOTICE)
    pixels = np.asarray(result)
    left = (result.width - picture.width) // 2
    assert result.width == CAPTION_MIN_WIDTH and result.height > picture.height + 100
    assert np.array_equal(pixels[:300, left:left + 200], np.asarray(picture))  # the map itself is untouched, not enlarged
    strip = pixels[300:]
    assert (np.abs(strip.astype(int) - CAPTION_BACKGROUND).sum(axis=-1) > 200).mean() > 0.01  # there is text on it
    ramp = np.asarray(colour_bar(64, 1))[0]
    bar_rows = [row for row in strip if sum(np.any(np.all(row == colour, axis=-1)) for colour in ramp[::8]) >= 6]
    assert bar_rows, "no colour bar in the caption"
    wide = captioned(Image.new("RGB", (1200, 900)), "a", [], "key", RESEARCH_NOTICE)
    assert wide.width == 1200  # a large picture sets the width


def test_predict_heatmaps_writes_captioned_pictures(tmp_path):
    from covidxray.cli import main

    sample = SAMPLES / "covid-cc-by-12941_2020_358_Fig1.jpg"
    assert main(["predict", str(sample), "--heatmaps", str(tmp_path / "maps")]) == 0
    written = sorted((tmp_path / "maps").glob("*.png"))
    assert [p.name for p in written] == ["0000-covid-cc-by-12941_2020_358_Fig1.png"]
    picture, source = Image.open(written[0]), Image.open(sample)
    assert picture.height > source.height + 100 and picture.width >= max(source.width, CAPTION_MIN_WIDTH)
    strip = np.asarray(picture.convert("RGB"))[source.height:]
    assert (strip == CAPTION_BACKGROUND).all(axis=-1).mean() > 0.5 and strip.std() > 10
