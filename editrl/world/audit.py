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

The world reward is trained on the exact target against exactly these categories
(``editrl.world.reward``, ``datasets``, ``pretrain``), so beating them shows it learned them, not that it
follows instructions. ``HELD_OUT_CATEGORIES`` are kinds of wrong edit that no training generator makes
(never add them to ``CATEGORIES``: training data is drawn from it with seeded generators):

- ``wrong-kind``: the object the instruction edits gets another kind of edit (moved or resized instead
  of recoloured, recoloured instead of removed, ...);
- ``also-changed``: the asked edit is done, and the same object also changes colour, size or place (for
  an add: the new object has another colour or size than asked);
- ``also-other``: the asked recolour also paints another object that colour; an added object is drawn twice;
- ``copied``: for a recolour or resize, the object stays as it was and an edited copy appears in a free cell;
- ``swapped``: the exact target with two objects exchanging places;
- ``mirrored``: the exact target flipped left to right (at least two objects move);
- ``shifted``: the exact target with every object one cell up, down, left or right (at least two objects).

None renders the target or the source (the layout categories move two objects or more, so none is one change
of a training category either). ``AUDIT_CATEGORIES`` is both tuples.
``wrong_outcome(example, category, rng)`` returns the image, or None when the category does not apply.
``benchmarks/world_oracle_audit.py`` scores them with the oracle; the world reward is trained on pairs
of the exact target against ``CATEGORIES`` and measured on held-out examples of all of them
(``benchmarks/world_report.py``).
"""

from __future__ import annotations

import random
from dataclasses import replace

import numpy as np
from PIL import Image

from ..errors import EditRLError
from .examples import WorldExample
from .instructions import Edit, random_edit
from .scenes import BACKGROUNDS, POSITIONS, SHAPES, SIZES, Scene, object_mask, render, render_array

CATEGORIES = ("deleted", "other-object", "wrong-value", "unchanged", "half", "half-pixels", "extra-change",
              "other-deleted", "added", "background", "wrong-shape", "duplicated", "emptied")
HELD_OUT_CATEGORIES = ("wrong-kind", "also-changed", "also-other", "copied", "swapped", "mirrored", "shifted")
AUDIT_CATEGORIES = CATEGORIES + HELD_OUT_CATEGORIES


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
    raise EditRLError(f"audit category: expected one of {AUDIT_CATEGORIES}, got {category!r}")


# the attribute each edit kind sets (an add sets all of them; its place is the one ``wrong-value`` gets wrong)
_SETS = {"recolor": "color", "move": "position", "resize": "size", "add": "position", "remove": None}
# the edit kinds each held-out category of a wrong edit applies to
_HELD_OUT_KINDS = {"wrong-kind": ("recolor", "remove", "move", "resize"), "also-changed": ("recolor", "move", "resize", "add"),
                   "also-other": ("recolor", "add"), "copied": ("recolor", "resize")}


def _new_value(attribute: str, obj, scene: Scene, avoid: set[str], rng: random.Random) -> str | None:
    """Another colour (none in ``avoid``), size or free cell for ``obj`` in ``scene``; None if there is none."""
    if attribute == "color":
        choices = [c for c in scene.free_colors() if c not in avoid]
    elif attribute == "size":
        choices = [s for s in SIZES if s != obj.size]
    else:
        choices = scene.free_positions()
    return rng.choice(choices) if choices else None


def _changed(scene: Scene, obj, kind: str, avoid: set[str], rng: random.Random) -> Scene | None:
    """``scene`` with ``obj`` changed in one attribute that an edit of ``kind`` does not set."""
    attribute = rng.choice([a for a in ("color", "size", "position") if a != _SETS[kind]])
    value = _new_value(attribute, obj, scene, avoid, rng)
    return None if value is None else scene.replace_object(obj, replace(obj, **{attribute: value}))


def _with_copy(scene: Scene, obj, rng: random.Random) -> Scene | None:
    """``scene`` with ``obj`` drawn (again) in one of its free cells."""
    free = scene.free_positions()
    return scene.add_object(replace(obj, position=rng.choice(free))) if free else None


def _wrong_edit(category: str, before: Scene, edit: Edit, avoid: set[str], rng: random.Random) -> Scene | None:
    """``before`` with ``edit`` done wrong in the way of a held-out ``category`` (colours in ``avoid`` never created)."""
    if category == "wrong-kind":
        return _changed(before, before.find(edit.color, edit.shape), edit.kind, avoid, rng)
    after = edit.apply(before)
    obj = after.find(edit.value if edit.kind == "recolor" else edit.color, edit.shape)
    if category == "also-changed":
        return _changed(after, obj, edit.kind, avoid, rng)
    if category == "copied":  # the object as it was, and the edited one in a cell free before the edit
        return _with_copy(before, obj, rng)
    if edit.kind == "add":  # also-other: the new object drawn twice
        return _with_copy(after, obj, rng)
    others = [o for o in after.objects if o.color not in avoid]  # also-other: another object takes the asked colour
    other = rng.choice(others) if others else None
    return after.replace_object(other, replace(other, color=edit.value)) if other is not None else None


def _relaid(target: Scene, move) -> Scene | None:
    """``target`` with every object's (row, column) cell mapped by ``move``; None if one leaves the grid or
    fewer than two objects move (one object moved is what the training categories already render)."""
    cells = [divmod(POSITIONS.index(o.position), 3) for o in target.objects]
    moved = [move(row, col) for row, col in cells]
    if not all(0 <= r < 3 and 0 <= c < 3 for r, c in moved) or sum(m != c for m, c in zip(moved, cells)) < 2:
        return None
    return replace(target, objects=tuple(replace(o, position=POSITIONS[3 * r + c]) for o, (r, c) in zip(target.objects, moved)))


_SHIFTS = ((-1, 0), (1, 0), (0, -1), (0, 1))


def _held_out_scene(example: WorldExample, category: str, rng: random.Random) -> Scene | None:
    target = example.target_scene
    if category == "swapped":
        if len(target.objects) < 2:
            return None
        a, b = rng.sample(target.objects, 2)
        return target.replace_object(a, replace(a, position=b.position)).replace_object(b, replace(b, position=a.position))
    if category == "mirrored":
        return _relaid(target, lambda row, col: (row, 2 - col))
    if category == "shifted":
        shifted = [s for dr, dc in _SHIFTS if (s := _relaid(target, lambda row, col: (row + dr, col + dc))) is not None]
        return rng.choice(shifted) if shifted else None
    eligible = [i for i, e in enumerate(example.edits) if e.kind in _HELD_OUT_KINDS[category]]
    if not eligible:
        return None
    index = rng.choice(eligible)
    before = _apply(example.scene, example.edits[:index])
    touched = set().union(*(e.touched() for e in example.edits))
    for _ in range(10):  # the later edit may need a cell or colour the wrong edit took: draw again
        wrong = _wrong_edit(category, before, example.edits[index], touched, rng)
        scene = _apply(wrong, example.edits[index + 1:]) if wrong is not None else None
        if scene is not None:
            return scene
    return None


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
    scene = (_held_out_scene if category in HELD_OUT_CATEGORIES else _wrong_scene)(example, category, rng)
    if scene is None or scene.canonical() == example.target_scene.canonical():
        return None
    return render(scene.canonical(), example.size)
