"""Random changes to a training radiograph that keep its diagnosis: pose, exposure, sharpness.

Applied to training images only, on (1, H, W) float tensors in [0, 1], drawing from torch's RNG.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from covidxray.errors import CovidxrayError


@dataclass(frozen=True)
class Augmentation:
    """Ranges of each random change; zero switches it off.

    rotate_deg: +- degrees; scale: +- fraction of zoom; translate: +- fraction of the side;
    shear: +- shear factor; hflip: probability of a left-right flip (off for radiographs by
    default: the heart's side is anatomy, and markers read backwards); brightness: +- offset;
    contrast: +- factor; gamma: +- log-gamma; blur: probability of a light Gaussian blur;
    noise: probability of Gaussian noise of std up to 0.03.

    Source-erasing changes (hospitals differ in these, the disease does not): aspect: +- fraction
    of anisotropic stretch (some collections were resized without keeping the aspect ratio);
    resolution: probability of a down- and up-sampling round trip; jpeg: probability of JPEG
    re-compression at quality 30-90; border: probability of blanking a strip along one edge
    (up to 12% of the side), where burned-in markers and collimation edges sit.
    """

    rotate_deg: float = 0.0
    scale: float = 0.0
    translate: float = 0.0
    shear: float = 0.0
    hflip: float = 0.0
    brightness: float = 0.0
    contrast: float = 0.0
    gamma: float = 0.0
    blur: float = 0.0
    noise: float = 0.0
    aspect: float = 0.0
    resolution: float = 0.0
    jpeg: float = 0.0
    border: float = 0.0

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        """(1, H, W) in [0, 1] -> (1, H, W) in [0, 1]."""
        image = self._geometry(image)
        image = self._exposure(image)
        image = self._pipeline(image.clamp(0.0, 1.0))
        return image.clamp(0.0, 1.0)

    def paired(self, image: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(1, H, W) image and (1, H, W) mask in [0, 1], moved by the same pose change; exposure, sharpness
        and pipeline changes touch the image only. The image gets what __call__ would have given it."""
        moved = self._geometry(torch.cat([image, mask.to(image.dtype)]))
        image = self._pipeline(self._exposure(moved[:1]).clamp(0.0, 1.0))
        return image.clamp(0.0, 1.0), moved[1:].clamp(0.0, 1.0)

    def _geometry(self, image: torch.Tensor) -> torch.Tensor:
        if not any((self.rotate_deg, self.scale, self.translate, self.shear, self.hflip, self.aspect)):
            return image
        angle = math.radians(_uniform(self.rotate_deg))
        zoom = 1.0 + _uniform(self.scale)
        stretch = math.exp(_uniform(self.aspect))
        shear = _uniform(self.shear)
        flip = -1.0 if self.hflip and float(torch.rand(())) < self.hflip else 1.0
        cos, sin = math.cos(angle) / zoom, math.sin(angle) / zoom
        theta = torch.tensor([
            [cos * flip * stretch, -sin + shear, 2 * _uniform(self.translate)],
            [sin * flip, cos / stretch, 2 * _uniform(self.translate)],
        ], dtype=image.dtype).unsqueeze(0)
        grid = F.affine_grid(theta, [1, *image.shape], align_corners=False)
        # border padding: a black wedge would be a new, artificial acquisition feature
        return F.grid_sample(image.unsqueeze(0), grid, mode="bilinear", padding_mode="border", align_corners=False)[0]

    def _exposure(self, image: torch.Tensor) -> torch.Tensor:
        if self.gamma:
            image = image.clamp(0.0, 1.0) ** math.exp(_uniform(self.gamma))
        if self.contrast or self.brightness:
            mean = image.mean()
            image = (image - mean) * (1.0 + _uniform(self.contrast)) + mean + _uniform(self.brightness)
        if self.blur and float(torch.rand(())) < self.blur:
            image = _gaussian_blur(image, sigma=0.5 + float(torch.rand(())) * 0.7)
        if self.noise and float(torch.rand(())) < self.noise:
            image = image + torch.randn_like(image) * float(torch.rand(())) * 0.03
        return image


    def _pipeline(self, image: torch.Tensor) -> torch.Tensor:
        if self.resolution and float(torch.rand(())) < self.resolution:
            side = image.shape[-2:]
            factor = 0.35 + float(torch.rand(())) * 0.45
            small = F.interpolate(image.unsqueeze(0), scale_factor=factor, mode="area")
            image = F.interpolate(small, size=side, mode="bilinear", align_corners=False)[0]
        if self.jpeg and float(torch.rand(())) < self.jpeg:
            image = _jpeg_round_trip(image, quality=int(30 + float(torch.rand(())) * 60))
        if self.border and float(torch.rand(())) < self.border:
            image = image.clone()
            edge, width = int(torch.randint(0, 4, ())), max(1, int(float(torch.rand(())) * 0.12 * image.shape[-1]))
            strip = {0: (slice(None), slice(0, width), slice(None)), 1: (slice(None), slice(-width, None), slice(None)),
                     2: (slice(None), slice(None), slice(0, width)), 3: (slice(None), slice(None), slice(-width, None))}[edge]
            image[strip] = image.mean()
        return image


def _jpeg_round_trip(image: torch.Tensor, quality: int) -> torch.Tensor:
    """(1, H, W) in [0, 1] through an 8-bit greyscale JPEG at quality and back."""
    import io

    import numpy as np
    from PIL import Image

    pixels = (image[0].clamp(0, 1).numpy() * 255).round().astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=quality)
    decoded = np.asarray(Image.open(io.BytesIO(buffer.getvalue())), dtype=np.float32) / 255.0
    return torch.from_numpy(decoded).to(image.dtype).unsqueeze(0)


def _uniform(half_width: float) -> float:
    return (float(torch.rand(())) * 2.0 - 1.0) * half_width if half_width else 0.0


def _gaussian_blur(image: torch.Tensor, sigma: float) -> torch.Tensor:
    radius = max(1, int(round(2 * sigma)))
    offsets = torch.arange(-radius, radius + 1, dtype=image.dtype)
    kernel = torch.exp(-(offsets ** 2) / (2 * sigma ** 2))
    kernel = kernel / kernel.sum()
    padded = F.pad(image.unsqueeze(0), (radius, radius, radius, radius), mode="replicate")
    blurred = F.conv2d(padded, kernel.view(1, 1, 1, -1))
    blurred = F.conv2d(blurred, kernel.view(1, 1, -1, 1))
    return blurred[0]


#: Named presets; a Recipe names one.
PRESETS: dict[str, Augmentation] = {
    "none": Augmentation(),
    # Keras ImageDataGenerator(shear_range=0.2, zoom_range=0.2, horizontal_flip=True)
    "seed": Augmentation(scale=0.2, shear=0.2, hflip=0.5),
    "radiograph": Augmentation(rotate_deg=7, scale=0.1, translate=0.06, brightness=0.08, contrast=0.15,
                               gamma=0.25, blur=0.2, noise=0.2),
    # twice the exposure, sharpness and noise changes: hospitals differ most in these
    "radiograph-strong": Augmentation(rotate_deg=10, scale=0.15, translate=0.08, brightness=0.15, contrast=0.3,
                                      gamma=0.5, blur=0.5, noise=0.5),
    # the strong preset plus the changes that erase an image pipeline's signature (issue #13)
    "source-erasing": Augmentation(rotate_deg=10, scale=0.15, translate=0.08, brightness=0.15, contrast=0.3,
                                   gamma=0.5, blur=0.5, noise=0.5, aspect=0.15, resolution=0.3, jpeg=0.3, border=0.3),
}


def augmentation(name: str) -> Augmentation:
    """The preset called name; a clear error listing presets otherwise."""
    if name not in PRESETS:
        raise CovidxrayError(f"unknown augmentation '{name}'; choose one of: {', '.join(PRESETS)}")
    return PRESETS[name]
