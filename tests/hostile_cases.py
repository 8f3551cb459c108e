"""Hostile inputs built in code, shared by tests/test_hostile_inputs.py and benchmarks/hostile_inputs.py:
damaged, odd-mode and decompression-bomb images, wrong encodings and row shapes, and the data tables
that hold them."""

from __future__ import annotations

import io
import json
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

BOMB_SIDE = 14000  # a 196 Mpx image declared in a file of a few hundred bytes


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def bomb_png(side: int = BOMB_SIDE) -> bytes:
    """A PNG whose header declares side x side grey pixels; its pixel data is one short row (never read)."""
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(b"\0" * (side + 1)))
            + _chunk(b"IEND", b""))


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def world_table(folder: Path, rows: int = 4, seed: int = 5) -> Path:
    """``folder/data.jsonl``: ``rows`` world examples (source and a corrupted edit as PNG files), ids r0.."""
    from editrl.world import make_examples
    from editrl.world.datasets import corrupted_candidates

    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for i, example in enumerate(make_examples(rows, seed=seed, split="train")):
        _, edit = corrupted_candidates(example, 1, seed=i)[0]
        example.source.save(folder / f"s{i}.png")
        edit.save(folder / f"e{i}.png")
        lines.append({"id": f"r{i}", "source": f"s{i}.png", "instruction": example.instruction, "edit": f"e{i}.png"})
    path = folder / "data.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def rewrite(path: Path, edit) -> None:
    """Apply ``edit(rows)`` to a JSONL table in place."""
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    edit(rows)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with its bytes (to prove nothing written was lost or changed)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def exif_rotated_jpeg(path: Path) -> Image.Image:
    """A 40x20 JPEG, left half red, stored with EXIF orientation 6 (shown rotated 90 degrees clockwise)."""
    image = Image.new("RGB", (40, 20), (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, 20, 20))
    exif = Image.Exif()
    exif[0x0112] = 6
    image.save(path, format="JPEG", exif=exif, quality=95)
    return image


def odd_mode_images(folder: Path) -> dict[str, Path]:
    """RGBA with partial transparency and a 16-bit greyscale PNG (where editrl's and PIL's conversions differ)."""
    rng = np.random.default_rng(0)
    rgba = rng.integers(0, 256, (48, 48, 4), dtype=np.uint8)
    rgba[..., 3] = np.linspace(0, 255, 48, dtype=np.uint8)[None, :]
    paths = {"rgba": folder / "rgba.png", "i16": folder / "i16.png"}
    Image.fromarray(rgba, mode="RGBA").save(paths["rgba"])
    Image.fromarray(rng.integers(0, 65536, (48, 48), dtype=np.uint16)).save(paths["i16"])
    return paths
