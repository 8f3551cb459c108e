"""Edit operations, their template instructions, and the small grammar that parses them back exactly.

Six kinds of edit (recolor, remove, add, move, resize, background) and compositions of two joined by
" and " / ", then ". Every template is generated from the same vocabulary the parser accepts, so
``parse_instruction(text)`` recovers the operations of any generated instruction, and applying them to
the source scene gives the exact target scene. Objects are named by colour and shape ("the red
circle"), which is unique in a scene because objects have pairwise different colours.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, replace

from ..errors import EditRLError
from .scenes import BACKGROUNDS, COLORS, POSITIONS, SHAPES, SIZES, Scene, WorldObject, random_object

KINDS = ("recolor", "remove", "add", "move", "resize", "background")
# The world's attribute words as the word classes of ``editrl.reward.data.swap_word`` (the swapped_word hard negatives
# and the world report's swapped-instruction audit): object colours, background colours, shapes, sizes, and a side
# within its axis ("top left" -> "bottom left"), so that every swap is again an instruction of this grammar.
SWAP_WORDS = (tuple(COLORS), tuple(BACKGROUNDS), SHAPES, tuple(SIZES), ("left", "right"), ("top", "bottom"))


@dataclass(frozen=True)
class Edit:
    """One operation. ``color``/``shape`` name the object it acts on (for add: the new object's);
    ``value`` is the new colour (recolor), position (move, add), size (resize, add) or background."""

    kind: str
    color: str = ""
    shape: str = ""
    value: str = ""
    size: str = ""  # the new object's size (add only)

    def apply(self, scene: Scene) -> Scene:
        """The scene after this edit; an EditRLError when the edit does not fit the scene."""
        if self.kind == "background":
            if scene.background == self.value:
                raise EditRLError(f"instruction: the background is already {self.value}")
            return replace(scene, background=self.value)
        if self.kind == "add":
            if self.color not in scene.free_colors() or self.value not in scene.free_positions():
                raise EditRLError(f"instruction: cannot add a {self.color} {self.shape} at the {self.value} of this scene")
            return scene.add_object(WorldObject(self.shape, self.color, self.size, self.value)).canonical()
        obj = scene.find(self.color, self.shape)
        if obj is None:
            names = ", ".join(o.name for o in scene.objects) or "no objects"
            raise EditRLError(f"instruction: the source has no {self.color} {self.shape} (it has {names})")
        if self.kind == "remove":
            return scene.replace_object(obj, None)
        if self.kind == "recolor":
            if self.value not in scene.free_colors():
                raise EditRLError(f"instruction: cannot recolor the {obj.name} {self.value}: colour in use")
            new = replace(obj, color=self.value)
        elif self.kind == "move":
            if self.value not in scene.free_positions():
                raise EditRLError(f"instruction: cannot move the {obj.name} to the occupied {self.value}")
            new = replace(obj, position=self.value)
        elif self.kind == "resize":
            if self.value == obj.size:
                raise EditRLError(f"instruction: the {obj.name} is already {self.value}")
            new = replace(obj, size=self.value)
        else:
            raise EditRLError(f"edit kind: expected one of {KINDS}, got {self.kind!r}")
        return scene.replace_object(obj, new).canonical()

    def touched(self) -> set[str]:
        """Colours of the objects this edit creates or changes (empty for background edits)."""
        if self.kind == "background":
            return set()
        return {self.color, self.value} if self.kind == "recolor" else {self.color}


_TEMPLATES: dict[str, tuple[str, ...]] = {
    "recolor": (
        "make the {color} {shape} {value}",
        "change the color of the {color} {shape} to {value}",
        "paint the {color} {shape} {value}",
        "turn the {color} {shape} {value}",
    ),
    "remove": ("remove the {color} {shape}", "delete the {color} {shape}", "take away the {color} {shape}"),
    "add": (
        "add a {size} {color} {shape} at the {value}",
        "draw a {size} {color} {shape} at the {value}",
        "put a {size} {color} {shape} in the {value}",
    ),
    "move": ("move the {color} {shape} to the {value}", "put the {color} {shape} in the {value}"),
    "resize": (
        "make the {color} {shape} {value}",
        "resize the {color} {shape} to {value}",
        "change the size of the {color} {shape} to {value}",
    ),
    "background": (
        "change the background to {value}",
        "make the background {value}",
        "paint the background {value}",
    ),
}
_JOINERS = (" and ", ", then ")


_VALUES = {"recolor": COLORS, "move": POSITIONS, "add": POSITIONS, "resize": SIZES, "background": BACKGROUNDS}


def vocabulary() -> list[str]:
    """Every word and punctuation mark a world instruction can contain, lower-cased and sorted."""
    from ..tiny import split_words  # the word-level tokenizer's own rule (imported late: tiny loads transformers)

    texts = [*(t for templates in _TEMPLATES.values() for t in templates), *_JOINERS, ".",
             *COLORS, *SHAPES, *SIZES, *POSITIONS, *BACKGROUNDS]
    return sorted({w for text in texts for w in split_words(re.sub(r"\{\w+\}", " ", text))})


def _alt(words) -> str:
    """Regex alternation, longest first so "top left" wins over "top"."""
    return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))


def _pattern(kind: str, template: str) -> re.Pattern:
    vocab = {"color": COLORS, "shape": SHAPES, "size": SIZES, "value": _VALUES.get(kind, ())}
    parts = re.split(r"\{(\w+)\}", template)
    regex = "".join(re.escape(p) if i % 2 == 0 else f"(?P<{p}>{_alt(vocab[p])})" for i, p in enumerate(parts))
    return re.compile(regex + "$")


_PATTERNS = [(kind, _pattern(kind, t)) for kind, templates in _TEMPLATES.items() for t in templates]


def edit_text(edit: Edit, rng: random.Random) -> str:
    template = rng.choice(_TEMPLATES[edit.kind])
    return template.format(color=edit.color, shape=edit.shape, value=edit.value, size=edit.size)


def compose_text(edits: list[Edit], rng: random.Random) -> str:
    text = rng.choice(_JOINERS).join(edit_text(e, rng) for e in edits)
    return text[0].upper() + text[1:] + "."


def _parse_one(text: str) -> Edit:
    for kind, pattern in _PATTERNS:
        m = pattern.match(text)
        if m:
            return Edit(kind=kind, **m.groupdict())
    raise EditRLError(f"instruction: {text!r} is not a world instruction (e.g. 'make the red circle blue')")


def parse_instruction(instruction: str) -> list[Edit]:
    """The edits of a world instruction, in order (case and a final full stop are ignored)."""
    if not isinstance(instruction, str) or not instruction.strip():
        raise EditRLError(f"instruction: expected a non-empty world instruction, got {instruction!r}")
    text = instruction.strip().rstrip(".").lower()
    parts = re.split("|".join(re.escape(j) for j in _JOINERS), text)
    return [_parse_one(p.strip()) for p in parts]


def apply_edits(scene: Scene, edits: list[Edit]) -> list[Scene]:
    """Scenes after each edit: [scene, after edit 1, after edit 2, ...]."""
    scenes = [scene]
    for edit in edits:
        scenes.append(edit.apply(scenes[-1]))
    return scenes


def random_edit(rng: random.Random, scene: Scene, kind: str, avoid: set[str] = frozenset()) -> Edit | None:
    """A random edit of ``kind`` that fits ``scene`` and leaves objects coloured in ``avoid`` alone; None if none fits."""
    objects = [o for o in scene.objects if o.color not in avoid]
    if kind == "background":
        return Edit("background", value=rng.choice([b for b in BACKGROUNDS if b != scene.background]))
    if kind == "add":
        if len(scene.objects) >= 4:
            return None
        new = random_object(rng, scene)
        return Edit("add", color=new.color, shape=new.shape, value=new.position, size=new.size)
    if not objects:
        return None
    obj = rng.choice(objects)
    if kind == "remove":
        return Edit("remove", obj.color, obj.shape)
    if kind == "recolor":
        free = [c for c in scene.free_colors() if c not in avoid]
        return Edit("recolor", obj.color, obj.shape, rng.choice(free)) if free else None
    if kind == "move":
        return Edit("move", obj.color, obj.shape, rng.choice(scene.free_positions()))
    if kind == "resize":
        return Edit("resize", obj.color, obj.shape, rng.choice([s for s in SIZES if s != obj.size]))
    raise EditRLError(f"edit kind: expected one of {KINDS}, got {kind!r}")


def random_task(rng: random.Random, scene: Scene, compose_probability: float = 0.25) -> list[Edit]:
    """One edit, or (with ``compose_probability``) two edits of different kinds on different objects."""
    while True:
        first = random_edit(rng, scene, rng.choice(KINDS))
        if first is None:
            continue
        if rng.random() >= compose_probability:
            return [first]
        after = first.apply(scene)
        kinds = [k for k in KINDS if k != first.kind]
        second = random_edit(rng, after, rng.choice(kinds), avoid=first.touched())
        if second is not None and not (second.touched() & first.touched()):
            return [first, second]
