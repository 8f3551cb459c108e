"""The world's swap classes: every one-word swap of a world instruction is again an instruction of the grammar."""

from __future__ import annotations

import re

from editrl.reward.data import check_swap_words, swap_classes
from editrl.world import make_examples
from editrl.world.instructions import SWAP_WORDS, parse_instruction


def test_every_swap_of_a_world_instruction_parses():
    check_swap_words(SWAP_WORDS)
    others = swap_classes(SWAP_WORDS)
    swaps = 0
    for example in make_examples(300, seed=11, split="train"):
        text = example.instruction
        for match in re.finditer(r"[A-Za-z]+", text):
            for new in others.get(match.group().lower(), []):
                new = new.capitalize() if match.group()[0].isupper() else new
                swapped = text[:match.start()] + new + text[match.end():]
                assert parse_instruction(swapped) != parse_instruction(text), swapped
                swaps += 1
    assert swaps > 1000
