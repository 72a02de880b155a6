"""Blend a heat map over the radiograph it explains, as an RGB picture people can read, and caption
it (file, probability, decision, colour key, notice) for the files `covidxray predict --heatmaps` writes."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from covidxray.explain.colours import coloured
from covidxray.explain.smoothing import above_half
from covidxray.lungs.morphology import dilate, fill_holes

__all__ = ["caption_font", "captioned", "colour_bar", "heatmap_key", "outline_pixels", "overlay", "result_lines",
           "smooth_lung_mask", "wrap_text"]

OUTLINE_RGB = (0.0, 0.9, 1.0)  # cyan: distinct from every colour of the heat map
#: Blur (as a fraction of the picture's longer side) of the lung mask before its outline is traced:
#: the segmenter's mask is coarse and steps when enlarged; this rounds the steps off, not the lungs.
OUTLINE_SMOOTHING = 0.008
#: Narrowest captioned picture, in pixels: a smaller radiograph is centred on a canvas this wide
#: (never enlarged), so the caption stays legible.
CAPTION_MIN_WIDTH = 480
CAPTION_BACKGROUND = (20, 22, 28)
CAPTION_INK = (235, 237, 242)
CAPTION_MUTED = (170, 176, 188)
CAPTION_NOTICE = (255, 178, 168)


def smooth_lung_mask(lung_mask: np.ndarray, width: int, height: int) -> np.ndarray:
    """lung_mask (bool, any size) at width x height with its stair-steps rounded off (bool).

    The mask is enlarged bilinearly, blurred by OUTLINE_SMOOTHING of the longer side, cut at one
    half and its holes filled; the segmenter itself is not touched.
    """
    mask = Image.fromarray(np.asarray(lung_mask, np.uint8) * 255).resize((width, height), Image.Resampling.BILINEAR)
    soft = np.asarray(mask, np.float32) / 255.0
    sigma = max(1.0, OUTLINE_SMOOTHING * max(width, height))
    return fill_holes(above_half(soft, sigma))


def outline_pixels(lung_mask: np.ndarray, width: int, height: int) -> np.ndarray:
    """Pixels of the smoothed lung outline at width x height, about 2 px wide per 512 px of picture."""
    from covidxray.lungs.segmenter import lung_outline

    edge = lung_outline(smooth_lung_mask(lung_mask, width, height))
    thickness = max(1, round(max(width, height) / 512))
    return dilate(edge, thickness) if thickness > 1 else edge | np.roll(edge, 1, axis=0) | np.roll(edge, 1, axis=1)


def overlay(image: np.ndarray, heat: np.ndarray, opacity: float = 0.45, colormap: str = "inferno",
            lung_mask: np.ndarray | None = None) -> Image.Image:
    """The greyscale image (2-D, [0, 1]) with heat (any size, [0, 1]) resized onto it and coloured;
    with lung_mask (bool, any size), the lungs' smoothed outline is drawn on top in cyan."""
    height, width = image.shape
    heat_image = Image.fromarray((np.clip(heat, 0, 1) * 255).astype(np.uint8)).resize((width, height), Image.Resampling.BILINEAR)
    colours = coloured(np.asarray(heat_image, np.float32) / 255.0, colormap)
    grey = np.repeat(np.clip(image, 0, 1)[..., None], 3, axis=2)
    weight = opacity * (np.asarray(heat_image, np.float32)[..., None] / 255.0)
    blended = grey * (1 - weight) + colours * weight
    if lung_mask is not None:
        blended[outline_pixels(lung_mask, width, height)] = OUTLINE_RGB
    return Image.fromarray((blended * 255).round().astype(np.uint8), mode="RGB")


def caption_font(size: int) -> ImageFont.ImageFont:
    """Pillow's bundled font at size pixels (its fixed bitmap font where FreeType is missing)."""
    try:
        return ImageFont.load_default(size=size)  # Pillow's bundled scalable font (needs FreeType)
    except (TypeError, ValueError, OSError, ImportError):
        return ImageFont.load_default()


def wrap_text(draw: ImageDraw.ImageDraw, text: str, font, width: int) -> list[str]:
    """text broken at spaces into lines no wider than width pixels (a longer word stands alone)."""
    lines, line = [], ""
    for word in text.split():
        trial = f"{line} {word}".strip()
        if line and draw.textlength(trial, font=font) > width:
            lines.append(line)
            line = word
        else:
            line = trial
    return lines + ([line] if line else [])


def colour_bar(width: int, height: int, colormap: str = "inferno") -> Image.Image:
    """A horizontal colour key of colormap, low (left) to high (right), width x height RGB."""
    ramp = coloured(np.linspace(0.0, 1.0, max(width, 2)), colormap)
    return Image.fromarray((np.repeat(ramp[None], max(height, 1), axis=0) * 255).round().astype(np.uint8), mode="RGB")


def captioned(picture: Image.Image, title: str, details: list[str], key_label: str, notice: str,
              colormap: str = "inferno") -> Image.Image:
    """picture with a caption strip below it: title (the file), details (one line each: probability,
    decision, warnings), a colour bar from low to high with key_label beside it, and the notice.

    The picture keeps its own pixels and size; a narrow one is centred on a CAPTION_MIN_WIDTH canvas.
    """
    picture = picture.convert("RGB")
    width = max(picture.width, CAPTION_MIN_WIDTH)
    size = max(13, min(28, round(width / 48)))
    margin, gap = size, max(3, size // 3)
    big, small = caption_font(size + 2), caption_font(max(11, size - 2))
    scratch = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    text_width = width - 2 * margin
    bar_width, bar_height = min(text_width // 2, 18 * size), max(8, size * 2 // 3)

    rows: list[tuple[str, object, tuple]] = []  # (text or "bar", font, colour)
    rows += [(line, big, CAPTION_INK) for line in wrap_text(scratch, title, big, text_width)]
    for detail in details:
        rows += [(line, small, CAPTION_INK) for line in wrap_text(scratch, detail, small, text_width)]
    rows.append(("bar", small, CAPTION_INK))
    rows += [(line, small, CAPTION_MUTED) for line in wrap_text(scratch, key_label, small, text_width)]
    rows += [(line, small, CAPTION_NOTICE) for line in wrap_text(scratch, notice, small, text_width)]

    def row_height(row) -> int:
        text, font, _ = row
        return bar_height + size + gap if text == "bar" else round(font.size * 1.25) if hasattr(font, "size") else 14

    strip = 2 * margin + sum(row_height(row) for row in rows) + gap * len(rows)
    canvas = Image.new("RGB", (width, picture.height + strip), CAPTION_BACKGROUND)
    canvas.paste(picture, ((width - picture.width) // 2, 0))
    draw = ImageDraw.Draw(canvas)
    y = picture.height + margin
    for row in rows:
        text, font, colour = row
        if text == "bar":
            low, high = "low", "high"
            draw.text((margin, y), low, font=font, fill=colour)
            left = margin + round(draw.textlength(low, font=font)) + gap * 2
            canvas.paste(colour_bar(bar_width, bar_height, colormap), (left, y + 2))
            draw.rectangle((left - 1, y + 1, left + bar_width, y + 2 + bar_height), outline=CAPTION_MUTED)
            draw.text((left + bar_width + gap * 2, y), high, font=font, fill=colour)
        else:
            draw.text((margin, y), text, font=font, fill=colour)
        y += row_height(row) + gap
    return canvas


def heatmap_key(target: str, outline: bool) -> str:
    """What the colours (and the cyan line) of a heat map mean, in one sentence or two."""
    text = (f"Colour: Grad-CAM, how much each region drove the model's score for '{target}' (low to high). "
            "It explains the score; it does not show where disease is.")
    return text + (" Cyan line: the lungs as the segmenter found them." if outline else "")


def result_lines(result, labels: tuple[str, ...]) -> list[str]:
    """The probability, decision and gate warning of a ScreeningResult, as caption lines."""
    def number(value) -> str:
        return "n/a" if value is None else f"{value:.3f}"

    if "pneumonia" in labels:
        chances = (f"p(covid) {number(result.p_covid)}, p(pneumonia) {number(result.p_pneumonia)}, "
                   f"p(normal) {number(result.p_normal)}")
        rule = "the most probable class"
    else:
        chances = f"p(covid) {number(result.p_covid)}"
        rule = f"covid when p(covid) reaches the threshold {number(result.threshold)}"
    lines = [f"{chances}; decision: {result.prediction} ({rule})"]
    if result.status == "warned" and result.input_note:
        lines.append(f"Input gate warning: {result.input_note}")
    return lines
