"""Turning whatever a user passes as an image into an RGB ``PIL.Image``.

Every entry point (reward scoring, editors, the server, filtering, the demo) accepts paths, PIL
images, numpy arrays and torch tensors, in any common mode. Converting in one place keeps the
scores of the same picture identical whichever way it arrived.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any, Union

import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import EditRLError

ImageLike = Union[str, os.PathLike, bytes, Image.Image, np.ndarray, Any]


def _array_to_pil(array: np.ndarray, name: str) -> Image.Image:
    a = np.asarray(array)
    if a.ndim == 3 and a.shape[0] in (1, 3, 4) and a.shape[-1] not in (1, 3, 4):
        a = np.moveaxis(a, 0, -1)  # CHW -> HWC
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[-1] not in (3, 4)):
        raise EditRLError(f"{name}: expected an image array of shape HxW, HxWx3 or HxWx4, got {a.shape}")
    if a.dtype.kind == "f":
        if not np.isfinite(a).all():
            raise EditRLError(f"{name}: the image array contains NaN or inf values")
        # floats are taken as [0, 1] (the diffusers convention); [-1, 1] would be a silent bug, so refuse it
        if a.min() < -1e-3 or a.max() > 1 + 1e-3:
            raise EditRLError(f"{name}: float image values must lie in [0, 1], got [{a.min():.3f}, {a.max():.3f}]")
        a = (a.clip(0, 1) * 255).round().astype(np.uint8)
    elif a.dtype == np.uint16 or (a.dtype.kind in "iu" and a.max() > 255):
        a = (a.astype(np.float64) / 257.0).round().clip(0, 255).astype(np.uint8)
    elif a.dtype != np.uint8:
        a = a.astype(np.uint8)
    return Image.fromarray(a)


def to_rgb(image: Image.Image) -> Image.Image:
    """RGB with alpha composited on white; 16-bit and CMYK converted properly (PIL's ``convert`` clips I;16)."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        a = np.asarray(image, dtype=np.float64)
        scale = 257.0 if a.max() > 255 else 1.0
        image = Image.fromarray((a / scale).round().clip(0, 255).astype(np.uint8), mode="L")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return image.convert("RGB") if image.mode != "RGB" else image


def load_image(image: ImageLike, name: str = "image") -> Image.Image:
    """Load ``image`` as RGB; ``name`` is what the error message calls it (e.g. ``"edits[3]"``)."""
    if isinstance(image, Image.Image):
        return to_rgb(image)
    if isinstance(image, (str, os.PathLike)):
        path = Path(image)
        if not path.is_file():
            raise EditRLError(f"{name}: no image file at {str(path)!r}")
        try:
            with Image.open(path) as opened:
                opened.load()
                return to_rgb(opened)
        except (UnidentifiedImageError, OSError) as err:
            raise EditRLError(f"{name}: {str(path)!r} is not a readable image ({err})") from None
    if isinstance(image, (bytes, bytearray)):
        try:
            with Image.open(io.BytesIO(image)) as opened:
                opened.load()
                return to_rgb(opened)
        except (UnidentifiedImageError, OSError) as err:
            raise EditRLError(f"{name}: the bytes are not a readable image ({err})") from None
    if hasattr(image, "detach") and hasattr(image, "cpu"):  # torch tensor, CHW or HWC
        image = image.detach().float().cpu().numpy()
    if isinstance(image, np.ndarray):
        return to_rgb(_array_to_pil(image, name))
    raise EditRLError(f"{name}: expected a path, bytes, PIL image, numpy array or tensor, got {type(image).__name__}")


def load_images(images: list[ImageLike] | tuple, name: str) -> list[Image.Image]:
    return [load_image(image, f"{name}[{i}]") for i, image in enumerate(images)]


def check_instruction(instruction: Any, name: str = "instruction") -> str:
    if not isinstance(instruction, str) or not instruction.strip():
        raise EditRLError(f"{name}: expected a non-empty instruction string, got {instruction!r}")
    return instruction
