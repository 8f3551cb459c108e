"""Turning whatever a user passes as an image into an RGB ``PIL.Image``.

Every entry point (reward scoring, editors, the server, filtering, the demo) accepts paths, PIL
images, numpy arrays and torch tensors, in any common mode. Converting in one place keeps the
scores of the same picture identical whichever way it arrived.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path
from typing import Any, Union

import numpy as np
from PIL import Image, ImageOps

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


CONVERSIONS = ("editrl", "official")
"""How an image in any mode becomes RGB: ``"editrl"`` applies the EXIF orientation, composites alpha
on white and rescales 16-bit to 8-bit (what a user of a phone photo or a transparent PNG expects);
``"official"`` is PIL's ``image.convert("RGB")`` as is, what the official EditReward code (qwen-vl-utils'
``fetch_image``) does, so released checkpoints score every input exactly as the official release."""

MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS
"""Largest image (width x height) decoded from a file or bytes: PIL's own decompression-bomb limit."""

MAX_ASPECT_RATIO = 200
"""Most elongated image taken (long side / short side): Qwen2.5-VL's own limit (its resize rule refuses
beyond it) and far past any photo. Checked where an image arrives, so a 100000x1 strip is refused by its
name (file and row, or request field) instead of deep inside a resize."""

_EXIF_ORIENTATION = 0x0112


class ImageTooLarge(EditRLError):
    """An image whose declared size is over the pixel limit (refused before it is decoded)."""


def to_rgb(image: Image.Image, conversion: str = "editrl") -> Image.Image:
    """RGB pixels of ``image`` under ``conversion`` (see ``CONVERSIONS``)."""
    if conversion not in CONVERSIONS:
        raise EditRLError(f"image conversion {conversion!r}: expected one of {list(CONVERSIONS)}")
    if conversion == "official":
        return image.convert("RGB") if image.mode != "RGB" else image
    if image.getexif().get(_EXIF_ORIENTATION, 1) not in (0, 1):
        image = ImageOps.exif_transpose(image)
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        a = np.asarray(image, dtype=np.float64)
        scale = 257.0 if a.max() > 255 else 1.0
        image = Image.fromarray((a / scale).round().clip(0, 255).astype(np.uint8), mode="L")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return image.convert("RGB") if image.mode != "RGB" else image


def check_shape(width: int, height: int, name: str, what: str = "") -> None:
    """One line naming the image if it has no pixels or is more elongated than ``MAX_ASPECT_RATIO``;
    ``what`` introduces it in the message (e.g. ``"'a.png' is "``)."""
    if min(width, height) < 1:
        raise EditRLError(f"{name}: {what}a {width}x{height} image, which has no pixels")
    if max(width, height) > MAX_ASPECT_RATIO * min(width, height):
        raise EditRLError(f"{name}: {what}a {width}x{height} image; its long side may be at most {MAX_ASPECT_RATIO} times its short side")


def _decode(source, what: str, name: str, max_pixels: int | None, formats: tuple[str, ...] | None) -> Image.Image:
    """Open ``source`` (a path or a file object), check its declared size, then decode it (mode kept)."""
    limit = max_pixels or MAX_IMAGE_PIXELS
    plural = what == "the bytes"  # grammar of the messages below
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit is checked below
            opened = Image.open(source, formats=formats)
    except Image.DecompressionBombError:
        raise ImageTooLarge(f"{name}: {what} declare{'' if plural else 's'} over {2 * Image.MAX_IMAGE_PIXELS} pixels (a decompression bomb?); "
                            f"the limit is {limit} pixels") from None
    except Exception as err:  # noqa: BLE001 - PIL raises many types for damaged files; all mean "unreadable"
        raise EditRLError(f"{name}: {what} {'are' if plural else 'is'} not a readable image ({type(err).__name__}: {err})") from None
    try:
        width, height = opened.size  # read from the header: nothing is decoded yet
        if width * height > limit:
            raise ImageTooLarge(f"{name}: {what} {'are' if plural else 'is'} a {width}x{height} image ({width * height} pixels), over the limit of {limit} pixels")
        check_shape(width, height, name, f"{what} {'are' if plural else 'is'} ")
        opened.load()
    except EditRLError:
        opened.close()
        raise
    except Exception as err:  # noqa: BLE001 - truncated or damaged pixel data
        opened.close()
        raise EditRLError(f"{name}: {what} {'are' if plural else 'is'} not a readable image ({type(err).__name__}: {err})") from None
    if getattr(opened, "n_frames", 1) > 1:  # multi-frame files keep their handle open: keep the first frame
        first = opened.copy()
        opened.close()
        return first
    return opened


def open_image(image: ImageLike, name: str = "image", max_pixels: int | None = None,
               formats: tuple[str, ...] | None = None) -> Image.Image:
    """Decode a path or bytes into a PIL image in its own mode (no conversion, no rotation); PIL images
    pass through and arrays/tensors become PIL images. Sizes are checked before decoding: over
    ``max_pixels`` (default ``MAX_IMAGE_PIXELS``) raises ``ImageTooLarge``; every image's shape is checked
    (``check_shape``)."""
    if isinstance(image, Image.Image):
        check_shape(*image.size, name)
        return image
    if isinstance(image, (str, os.PathLike)):
        path = Path(image)
        if "\x00" in str(path):
            raise EditRLError(f"{name}: the path {str(path)!r} contains a NUL byte")
        if not path.is_file():
            raise EditRLError(f"{name}: no image file at {str(path)!r}")
        return _decode(path, repr(str(path)), name, max_pixels, formats)
    if isinstance(image, (bytes, bytearray)):
        image = io.BytesIO(image)
    if hasattr(image, "read") and hasattr(image, "seek"):  # an open binary file
        return _decode(image, "the bytes", name, max_pixels, formats)
    if hasattr(image, "detach") and hasattr(image, "cpu"):  # torch tensor, CHW or HWC
        image = image.detach().float().cpu().numpy()
    if isinstance(image, np.ndarray):
        converted = _array_to_pil(image, name)
        check_shape(*converted.size, name)
        return converted
    raise EditRLError(f"{name}: expected a path, bytes, PIL image, numpy array or tensor, got {type(image).__name__}")


def load_image(image: ImageLike, name: str = "image", conversion: str = "editrl", max_pixels: int | None = None) -> Image.Image:
    """Load ``image`` as RGB; ``name`` is what the error message calls it (e.g. ``"row 3 edit"``)."""
    return to_rgb(open_image(image, name, max_pixels), conversion)


def load_images(images: list[ImageLike] | tuple, name: str, conversion: str = "editrl") -> list[Image.Image]:
    return [load_image(image, f"{name}[{i}]", conversion) for i, image in enumerate(images)]


def load_source(source: ImageLike | list | tuple, name: str = "source") -> Image.Image | list[Image.Image]:
    """One prompt's source loaded as RGB: an image, or for a list (a prompt with several sources) each of them."""
    if isinstance(source, (list, tuple)):
        if not source:
            raise EditRLError(f"{name}: an empty list; expected one or more source images")
        return load_images(source, name)
    return load_image(source, name)


def instruction_problem(instruction: Any) -> str | None:
    """What is wrong with ``instruction`` (None if it is non-empty text every tokenizer can encode).

    JSON's ``"\\ud800"`` escapes and Python strings may hold lone surrogates, which are not Unicode
    text: a tokenizer (or the UTF-8 encoder of a Parquet writer) would crash on them mid-run. Every
    entry point (tables, the CLI, the Python API through ``check_instruction``, the server's request
    schema) asks this before a tokenizer sees the text."""
    if not isinstance(instruction, str) or not instruction.strip():
        return f"expected a non-empty instruction string, got {instruction!r}"
    try:
        instruction.encode("utf-8")
    except UnicodeEncodeError as err:
        return f"not valid Unicode text (a lone surrogate {instruction[err.start]!r} at character {err.start + 1}); fix the text's encoding"
    return None


def check_instruction(instruction: Any, name: str = "instruction") -> str:
    """``instruction``, or one line naming ``name`` and ``instruction_problem``."""
    problem = instruction_problem(instruction)
    if problem:
        raise EditRLError(f"{name}: {problem}")
    return instruction
