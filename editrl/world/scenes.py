"""Procedural scenes: a background colour and 1-4 flat shapes on a 3x3 grid, rendered without anti-aliasing.

The design is what makes an exact oracle possible from pixels alone: every object sits in its own
grid cell (no overlap), objects in a scene have pairwise different palette colours, and every pixel
of a clean render is exactly one palette colour. ``parse_scene`` inverts ``render`` exactly on clean
renders, and on a corrupted image it returns the nearest clean scene (used for visual quality).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from functools import lru_cache

import numpy as np
from PIL import Image

from ..errors import EditRLError

# Object colours: far apart in RGB (pairwise distance >= ~120) so noise or blur never swaps them.
COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 170, 50),
    "blue": (30, 70, 230),
    "yellow": (245, 220, 20),
    "purple": (140, 40, 190),
    "orange": (250, 130, 0),
    "cyan": (20, 210, 220),
    "pink": (250, 120, 200),
}
# Background colours: neutral, and distinct from every object colour.
BACKGROUNDS: dict[str, tuple[int, int, int]] = {
    "white": (245, 245, 245),
    "gray": (128, 128, 128),
    "black": (20, 20, 20),
    "beige": (215, 195, 160),
}
SHAPES = ("square", "circle", "triangle", "ring", "cross")
# Half-extent of a shape, in pixels of a 64 px image (scaled with the image size).
SIZES: dict[str, float] = {"small": 5.0, "medium": 7.5, "large": 10.0}
POSITIONS = (
    "top left", "top", "top right",
    "left", "center", "right",
    "bottom left", "bottom", "bottom right",
)
MAX_OBJECTS = 4


@dataclass(frozen=True)
class WorldObject:
    """One flat shape: ``shape`` in SHAPES, ``color`` in COLORS, ``size`` in SIZES, ``position`` in POSITIONS."""

    shape: str
    color: str
    size: str
    position: str

    @property
    def name(self) -> str:
        """How instructions refer to the object ("the red circle"); unique in a scene because colours are."""
        return f"{self.color} {self.shape}"


@dataclass(frozen=True)
class Scene:
    """A background and up to 4 objects, each in its own grid cell, with pairwise different colours."""

    background: str
    objects: tuple[WorldObject, ...] = field(default_factory=tuple)

    def find(self, color: str, shape: str | None = None) -> WorldObject | None:
        for obj in self.objects:
            if obj.color == color and (shape is None or obj.shape == shape):
                return obj
        return None

    def free_positions(self) -> list[str]:
        used = {o.position for o in self.objects}
        return [p for p in POSITIONS if p not in used]

    def free_colors(self) -> list[str]:
        used = {o.color for o in self.objects}
        return [c for c in COLORS if c not in used]

    def replace_object(self, old: WorldObject, new: WorldObject | None) -> "Scene":
        objects = tuple(new if o == old else o for o in self.objects if new is not None or o != old)
        return replace(self, objects=objects)

    def add_object(self, obj: WorldObject) -> "Scene":
        return replace(self, objects=self.objects + (obj,))

    def canonical(self) -> "Scene":
        """Objects in grid order, so two scenes that render the same compare equal."""
        return replace(self, objects=tuple(sorted(self.objects, key=lambda o: POSITIONS.index(o.position))))

    def validate(self) -> "Scene":
        if self.background not in BACKGROUNDS:
            raise EditRLError(f"scene background: expected one of {sorted(BACKGROUNDS)}, got {self.background!r}")
        for o in self.objects:
            if o.shape not in SHAPES or o.color not in COLORS or o.size not in SIZES or o.position not in POSITIONS:
                raise EditRLError(f"scene object {o}: shape/color/size/position outside the world's vocabulary")
        if len({o.position for o in self.objects}) != len(self.objects):
            raise EditRLError("scene: two objects share a grid cell")
        if len({o.color for o in self.objects}) != len(self.objects):
            raise EditRLError("scene: two objects share a colour")
        return self


def cell_center(position: str, size: int) -> tuple[float, float]:
    """(x, y) pixel-space centre of a grid cell."""
    index = POSITIONS.index(position)
    row, col = divmod(index, 3)
    return (col + 0.5) * size / 3.0, (row + 0.5) * size / 3.0


@lru_cache(maxsize=4096)
def object_mask(shape: str, size_name: str, position: str, size: int) -> np.ndarray:
    """Boolean (size, size) mask of one object; cached since every parse tries all shapes and sizes."""
    cx, cy = cell_center(position, size)
    r = SIZES[size_name] * size / 64.0
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64) + 0.5
    dx, dy = xs - cx, ys - cy
    if shape == "square":
        mask = (np.abs(dx) <= r * 0.85) & (np.abs(dy) <= r * 0.85)
    elif shape == "circle":
        mask = dx**2 + dy**2 <= r**2
    elif shape == "triangle":  # apex up, base at the bottom
        mask = (dy <= r) & (dy >= -r) & (np.abs(dx) <= (dy + r) * 0.55)
    elif shape == "ring":
        d2 = dx**2 + dy**2
        mask = (d2 <= r**2) & (d2 >= (r * 0.5) ** 2)
    elif shape == "cross":
        arm = max(r * 0.35, 1.0)
        mask = ((np.abs(dx) <= arm) & (np.abs(dy) <= r)) | ((np.abs(dy) <= arm) & (np.abs(dx) <= r))
    else:
        raise EditRLError(f"shape: expected one of {SHAPES}, got {shape!r}")
    mask.setflags(write=False)
    return mask


def render_array(scene: Scene, size: int = 64) -> np.ndarray:
    """(size, size, 3) uint8 render: flat palette colours, no anti-aliasing."""
    if not 16 <= size <= 512:
        raise EditRLError(f"size: expected an image size between 16 and 512 pixels, got {size}")
    image = np.empty((size, size, 3), dtype=np.uint8)
    image[:] = BACKGROUNDS[scene.background]
    for obj in scene.objects:
        image[object_mask(obj.shape, obj.size, obj.position, size)] = COLORS[obj.color]
    return image


def render(scene: Scene, size: int = 64) -> Image.Image:
    return Image.fromarray(render_array(scene, size))


def random_object(rng: random.Random, scene: Scene) -> WorldObject:
    """A new object that fits into ``scene`` (free cell, unused colour)."""
    return WorldObject(
        shape=rng.choice(SHAPES),
        color=rng.choice(scene.free_colors()),
        size=rng.choice(list(SIZES)),
        position=rng.choice(scene.free_positions()),
    )


def random_scene(rng: random.Random, min_objects: int = 1, max_objects: int = MAX_OBJECTS) -> Scene:
    scene = Scene(background=rng.choice(list(BACKGROUNDS)))
    for _ in range(rng.randint(min_objects, max_objects)):
        scene = scene.add_object(random_object(rng, scene))
    return scene.canonical()


_PALETTE_NAMES = [("background", n) for n in BACKGROUNDS] + [("object", n) for n in COLORS]
_PALETTE = np.array([*BACKGROUNDS.values(), *COLORS.values()], dtype=np.float32)


def median3(image: np.ndarray) -> np.ndarray:
    """3x3 per-channel median filter (edge-replicated); removes pixel noise but keeps flat regions and edges."""
    padded = np.pad(image, ((1, 1), (1, 1), (0, 0)), mode="edge")
    h, w = image.shape[:2]
    stack = np.stack([padded[i : i + h, j : j + w] for i in range(3) for j in range(3)])
    return np.median(stack, axis=0).astype(image.dtype)


def palette_labels(image: np.ndarray) -> np.ndarray:
    """Index into the palette (backgrounds first, then object colours) of the nearest colour per pixel."""
    d = ((image[:, :, None, :].astype(np.float32) - _PALETTE[None, None]) ** 2).sum(-1)
    return d.argmin(-1)


def cell_slices(size: int) -> list[tuple[slice, slice]]:
    """(rows, cols) pixel slices of the 9 grid cells, in POSITIONS order."""
    edges = [round(i * size / 3) for i in range(4)]
    return [(slice(edges[r], edges[r + 1]), slice(edges[c], edges[c + 1])) for r in range(3) for c in range(3)]


def parse_scene(image: np.ndarray, min_fraction: float = 0.3) -> Scene:
    """The clean scene nearest to an RGB uint8 ``image``; exact (``parse_scene(render(s)) == s``) on clean renders.

    Pixels are denoised (3x3 median) and snapped to the palette; the most common background colour is
    the background (object colours only if no background colour is present). Every grid cell is read
    on its own (a world object never leaves its cell): the object colour covering most of the cell, if
    it covers at least ``min_fraction`` of a small object's area, becomes the cell's object, with the
    shape and size whose mask overlaps its pixels best (IoU). Reading cells on their own keeps what an
    edit got wrong visible: an object left behind by a move, or drawn twice, parses as two objects of
    one colour (a scene no instruction asks for), never as one.
    """
    size = image.shape[0]
    if image.ndim != 3 or image.shape[1] != size or image.shape[2] != 3:
        raise EditRLError(f"image: expected a square RGB array, got shape {image.shape}")
    labels = palette_labels(median3(image))
    counts = np.bincount(labels.ravel(), minlength=len(_PALETTE_NAMES))
    n_bg = len(BACKGROUNDS)
    background = _PALETTE_NAMES[int(counts[:n_bg].argmax())][1]
    min_area = min_fraction * object_mask("triangle", "small", "center", size).sum()
    objects: list[WorldObject] = []
    for position, (rows, cols) in zip(POSITIONS, cell_slices(size)):
        cell_counts = np.bincount(labels[rows, cols].ravel(), minlength=len(_PALETTE_NAMES))[n_bg:]
        index = int(cell_counts.argmax())
        if cell_counts[index] < min_area:
            continue
        mask = np.zeros_like(labels, dtype=bool)
        mask[rows, cols] = labels[rows, cols] == index + n_bg
        best, best_iou = None, -1.0
        for shape in SHAPES:
            for size_name in SIZES:
                m = object_mask(shape, size_name, position, size)
                iou = (m & mask).sum() / max((m | mask).sum(), 1)
                if iou > best_iou:
                    best, best_iou = (shape, size_name), iou
        objects.append(WorldObject(shape=best[0], color=_PALETTE_NAMES[index + n_bg][1], size=best[1], position=position))
    return Scene(background=background, objects=tuple(objects)).canonical()
