"""Clean wrong outcomes of a world edit: the answers a human would reject, built beside the exact target.

A ruler must be checked before a gain is believed. Each category below renders one kind of wrong edit
of a world example, cleanly (no noise or blur), so that only *what* was edited is wrong:

- ``deleted``: the object the instruction edits is deleted instead (recolor, move, resize);
- ``other-object``: the edit is applied to another object;
- ``wrong-value``: the right object gets the wrong new colour, position, size or background;
- ``unchanged``: nothing is done (the source);
- ``half``: one of the two edits of a composition is done;
- ``half-pixels``: only the left part of the changed pixels is changed;
- ``extra-change``: the exact target plus one change nobody asked for (recolor, move or resize of
  another object);
- ``other-deleted``: the exact target with another object deleted;
- ``added``: the exact target with an object added;
- ``background``: the exact target with another background (when none was asked for);
- ``wrong-shape``: the edited object also takes another shape;
- ``duplicated``: for a move, the object appears at the new place and stays at the old one;
- ``emptied``: every object deleted.

``wrong_outcome(example, category, rng)`` returns the image, or None when the category does not apply.
``benchmarks/world_oracle_audit.py`` scores them with the oracle; the world reward is trained on pairs
of the exact target against them and measured on held-out ones (``benchmarks/world_report.py``).
"""

from __future__ import annotations

import random
from dataclasses import replace

import numpy as np
from PIL import Image

from ..errors import EditRLError
from .examples import WorldExample
from .instructions import Edit, random_edit
from .scenes import BACKGROUNDS, SHAPES, Scene, object_mask, render, render_array

CATEGORIES = ("deleted", "other-object", "wrong-value", "unchanged", "half", "half-pixels", "extra-change",
              "other-deleted", "added", "background", "wrong-shape", "duplicated", "emptied")


def _apply(scene: Scene, edits: list[Edit]) -> Scene | None:
    try:
        for edit in edits:
            scene = edit.apply(scene)
    except EditRLError:
        return None
    return scene


def _edited_object(example: WorldExample):
    """The object of the target that the first edit creates or changes (None for background and remove)."""
    first = example.edits[0]
    if first.kind in ("background", "remove"):
        return None
    color = first.value if first.kind == "recolor" else first.color
    return example.target_scene.find(color)


def _untouched(example: WorldExample) -> list:
    touched = set().union(*(e.touched() for e in example.edits))
    return [o for o in example.target_scene.objects if o.color not in touched]


def _wrong_scene(example: WorldExample, category: str, rng: random.Random) -> Scene | None:
    target, first, rest = example.target_scene, example.edits[0], example.edits[1:]
    if category == "deleted":
        edited = _edited_object(example)
        return target.replace_object(edited, None) if edited is not None and first.kind != "add" else None
    if category in ("other-object", "wrong-value"):
        for _ in range(10):
            if category == "other-object":
                others = [o for o in example.scene.objects if o.color != first.color]
                if first.kind in ("background", "add") or not others:
                    return None
                obj = rng.choice(others)
                wrong = Edit(first.kind, obj.color, obj.shape, first.value, first.size)
            else:
                candidate = random_edit(rng, example.scene, first.kind)
                if candidate is None:
                    return None
                wrong = candidate if first.kind in ("add", "background") else Edit(first.kind, first.color, first.shape, candidate.value)
                if first.kind == "add":  # the right new object at the wrong place
                    wrong = Edit("add", first.color, first.shape, candidate.value, first.size)
            if wrong != first:
                scene = _apply(example.scene, [wrong, *rest])
                if scene is not None and scene != target:
                    return scene
        return None
    if category == "unchanged":
        return example.scene
    if category == "half":
        if len(example.edits) < 2:
            return None
        keep = rng.randrange(2)
        return _apply(example.scene, [example.edits[keep]])
    if category in ("extra-change", "other-deleted", "added", "background"):
        if category == "background":
            if any(e.kind == "background" for e in example.edits):
                return None
            return replace(target, background=rng.choice([b for b in BACKGROUNDS if b != target.background]))
        if category == "added":
            edit = random_edit(rng, target, "add")
            return edit.apply(target) if edit is not None else None
        others = _untouched(example)
        if not others:
            return None
        obj = rng.choice(others)
        if category == "other-deleted":
            return target.replace_object(obj, None)
        kind = rng.choice(["recolor", "move", "resize"])
        edit = random_edit(rng, Scene(target.background, (obj,)), kind) if kind != "recolor" else None
        if kind == "recolor":
            free = [c for c in target.free_colors() if c not in set().union(*(e.touched() for e in example.edits))]
            return target.replace_object(obj, replace(obj, color=rng.choice(free))).canonical() if free else None
        if kind == "move":
            free = target.free_positions()
            return target.replace_object(obj, replace(obj, position=rng.choice(free))).canonical() if free else None
        return _apply(target, [edit])
    if category == "wrong-shape":
        edited = _edited_object(example)
        if edited is None:
            return None
        return target.replace_object(edited, replace(edited, shape=rng.choice([s for s in SHAPES if s != edited.shape])))
    if category == "emptied":
        return replace(target, objects=()) if target.objects else None
    raise EditRLError(f"audit category: expected one of {CATEGORIES}, got {category!r}")


def wrong_outcome(example: WorldExample, category: str, rng: random.Random) -> Image.Image | None:
    """A clean image of one wrong outcome of ``example`` (see the module docstring), or None if it does not apply."""
    if category == "half-pixels":
        src, tgt = np.asarray(example.source), np.asarray(example.target)
        cols = np.nonzero((src != tgt).any(-1).any(0))[0]
        if len(cols) < 2:
            return None
        out = tgt.copy()
        cut = int(np.median(cols))
        out[:, cut:] = src[:, cut:]
        return Image.fromarray(out)
    if category == "duplicated":
        first = example.edits[0]
        if first.kind != "move":
            return None
        old = example.scene.find(first.color, first.shape)
        image = render_array(example.target_scene, example.size)
        image[object_mask(old.shape, old.size, old.position, example.size)] = render_array(
            Scene(example.scene.background, (old,)), example.size)[object_mask(old.shape, old.size, old.position, example.size)]
        return Image.fromarray(image)
    scene = _wrong_scene(example, category, rng)
    if scene is None or scene.canonical() == example.target_scene.canonical():
        return None
    return render(scene.canonical(), example.size)
