"""What a training run records about itself, shared by reward training and RL.

- ``config.yaml`` in ``output_dir`` at the start: the resolved config and the editrl version, so a run
  folder always says how it was made;
- ``--resume`` compares the checkpoint's config with the current one and stops, naming the keys,
  unless only keys that cannot change the result (logging, the number of iterations) differ;
- ``report_to``: experiment tracking through accelerate's trackers (tensorboard, wandb);
- PNG images drawn with PIL only (no plotting dependency): a grid of samples and training curves.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any, Iterable, Sequence

import yaml
from PIL import Image, ImageDraw, ImageFont

from .errors import EditRLError
from .files import write_text_atomic

REPORT_TO = ("auto", "tensorboard", "wandb", "none")
CONFIG_FILE = "config.yaml"
CURVE_COLOURS = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189)]


def resolved_config(config: Any) -> dict[str, Any]:
    """The config as a plain dict, with the editrl version that ran it."""
    from . import __version__

    return {**dataclasses.asdict(config), "editrl_version": __version__}


def write_config(config: Any, output_dir: str | Path) -> Path:
    """``output_dir/config.yaml`` (written to a temporary file and renamed: never half written)."""
    path = Path(output_dir) / CONFIG_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_text_atomic(path, yaml.safe_dump(resolved_config(config), sort_keys=False))


def checkpoint_dir(output_dir: str | Path, step: int) -> Path:
    """``output_dir/checkpoints/step-NNNNNN``: where every trainer (reward, RL) keeps the state of ``step``."""
    return Path(output_dir) / "checkpoints" / f"step-{step:06d}"


def list_checkpoints(output_dir: str | Path, marker: str) -> list[Path]:
    """Complete checkpoints of ``output_dir`` (those holding ``marker``, the file a trainer writes last),
    oldest first."""
    root = Path(output_dir) / "checkpoints"
    found = [p for p in root.glob("step-*") if p.name[5:].isdigit() and (p / marker).is_file()] if root.is_dir() else []
    return sorted(found, key=lambda p: int(p.name[5:]))


def prune_checkpoints(output_dir: str | Path, marker: str, keep: int) -> None:
    """Delete all complete checkpoints but the newest ``keep`` (0 keeps them all)."""
    import shutil

    if keep:
        for old in list_checkpoints(output_dir, marker)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out = {}
    for key, value in data.items():
        if isinstance(value, dict) and value:  # a section, or a mapping key like rewards: {spec: weight}
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = value
    return out


def changed_keys(saved: dict[str, Any], current: dict[str, Any], may_change: Iterable[str] = ()) -> list[str]:
    """Dotted keys whose values differ between two config dicts, except ``may_change`` and the version."""
    a, b = _flatten(saved), _flatten(current)
    ignored = set(may_change) | {"editrl_version"}
    return sorted(k for k in set(a) | set(b) if k not in ignored and a.get(k) != b.get(k))


def check_resume_config(saved: dict[str, Any], config: Any, may_change: Iterable[str]) -> None:
    """One-line error naming the keys in which ``config`` differs from a checkpoint's ``saved`` config."""
    changed = changed_keys(saved, dataclasses.asdict(config), may_change)
    if changed:
        raise EditRLError(
            f"--resume: the config differs from the checkpoint's in {', '.join(changed)}; only "
            f"{', '.join(sorted(may_change))} may change on resume (start a new output_dir to change the others)"
        )


def trackers(report_to: str) -> list[str]:
    """accelerate ``log_with`` for a ``report_to`` value; ``auto`` = tensorboard when installed, else none."""
    from accelerate.utils import is_tensorboard_available, is_wandb_available

    if report_to not in REPORT_TO:
        raise EditRLError(f"config key report_to: expected one of {REPORT_TO}, got {report_to!r}")
    available = {"tensorboard": bool(is_tensorboard_available()), "wandb": bool(is_wandb_available())}
    if report_to == "auto":
        return ["tensorboard"] if available["tensorboard"] else []
    if report_to == "none":
        return []
    if not available[report_to]:
        raise EditRLError(f"config key report_to: {report_to} is not installed (pip install {report_to}) or use report_to=none")
    return [report_to]


def tracker_config(config: Any) -> dict[str, Any]:
    """The config flattened to the scalar values trackers accept (lists and dicts as strings)."""
    return {k: v if isinstance(v, (int, float, str, bool)) or v is None else str(v)
            for k, v in _flatten(resolved_config(config)).items()}


def finish_trackers(accelerator) -> None:
    """Close the trackers (flush their files) without ``end_training``, which also tears down the
    process group that the caller may still need."""
    for tracker in accelerator.trackers:
        tracker.finish()


def log_images(accelerator, name: str, image: Image.Image, step: int) -> None:
    """Send an image to every tracker that takes images (tensorboard, wandb)."""
    import numpy as np

    for tracker in accelerator.trackers:
        if hasattr(tracker, "log_images"):
            if tracker.name == "tensorboard":
                tracker.log_images({name: np.asarray(image)}, step=step, dataformats="HWC")
            else:
                tracker.log_images({name: [image]}, step=step)


def image_grid(images: Sequence[Image.Image], captions: Sequence[str] = (), columns: int | None = None, tile: int = 128) -> Image.Image:
    """The images as tiles of ``tile`` px, row-major, each with its caption (if any) under it."""
    columns = columns or max(1, math.ceil(math.sqrt(len(images))))
    rows = max(1, math.ceil(len(images) / columns))
    caption_h = 14 if captions else 0
    grid = Image.new("RGB", (columns * tile, rows * (tile + caption_h)), (255, 255, 255))
    draw, font = ImageDraw.Draw(grid), ImageFont.load_default()
    for i, image in enumerate(images):
        x, y = (i % columns) * tile, (i // columns) * (tile + caption_h)
        grid.paste(image.convert("RGB").resize((tile, tile), Image.Resampling.NEAREST), (x, y))
        if captions:
            draw.text((x + 2, y + tile + 1), str(captions[i])[: tile // 6], fill=(20, 20, 20), font=font)
    return grid


def curves_image(series: dict[str, list[tuple[float, float]]], title: str = "", size: tuple[int, int] = (640, 400)) -> Image.Image:
    """Line plot of named (x, y) series, each in its own colour with a legend and the y range printed;
    every series is scaled to its own range (rewards and shares have different units)."""
    width, height = size
    left, right, top, bottom = 50, 20, 30, 40
    image = Image.new("RGB", size, (255, 255, 255))
    draw, font = ImageDraw.Draw(image), ImageFont.load_default()
    draw.rectangle([left, top, width - right, height - bottom], outline=(0, 0, 0))
    draw.text((left, 8), title, fill=(0, 0, 0), font=font)
    xs = [x for points in series.values() for x, _ in points]
    if not xs:
        return image
    x_lo, x_hi = min(xs), max(xs)
    draw.text((left, height - bottom + 4), f"{x_lo:g}", fill=(0, 0, 0), font=font)
    draw.text((width - right - 30, height - bottom + 4), f"{x_hi:g}", fill=(0, 0, 0), font=font)
    for i, (name, points) in enumerate(series.items()):
        colour = CURVE_COLOURS[i % len(CURVE_COLOURS)]
        ys = [y for _, y in points]
        y_lo, y_hi = min(ys), max(ys)

        def to_px(x: float, y: float) -> tuple[float, float]:
            fx = (x - x_lo) / (x_hi - x_lo) if x_hi > x_lo else 0.5
            fy = (y - y_lo) / (y_hi - y_lo) if y_hi > y_lo else 0.5
            return left + fx * (width - left - right), height - bottom - fy * (height - top - bottom)

        pixels = [to_px(x, y) for x, y in points]
        if len(pixels) > 1:
            draw.line(pixels, fill=colour, width=2)
        for px, py in pixels:
            draw.ellipse([px - 2, py - 2, px + 2, py + 2], fill=colour)
        draw.text((left + 150 * i, height - 14), f"{name} [{y_lo:.3g}, {y_hi:.3g}]", fill=colour, font=font)
    return image
