"""benchmarks/rl_overfit.py: the prompts it trains on are those with some but few exact samples."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

SPEC = importlib.util.spec_from_file_location("rl_overfit", Path(__file__).resolve().parents[1] / "benchmarks" / "rl_overfit.py")
rl_overfit = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(rl_overfit)


class Editor:
    def sample(self, sources, instructions, seeds):
        return SimpleNamespace(images=[f"{sources[0]}-{s}" for s in seeds])


class Oracle:
    """Prompt i is exactly right on its first EXACT[i] seeds."""

    EXACT = {"a": 0, "b": 1, "c": 8, "d": 3, "e": 4, "f": 2}

    def measures(self, sources, instructions, edits):
        return {"exact_edit": torch.tensor([float(int(e.split("-")[1]) < self.EXACT[e.split("-")[0]]) for e in edits])}


def test_mixed_prompts_are_exact_on_one_to_three_of_eight_seeds():
    candidates = [(name, "instruction") for name in "abcdef"]
    assert rl_overfit.mixed_prompts(Editor(), Oracle(), candidates, 2) == [1, 3]  # b (1 of 8), d (3 of 8)
    assert rl_overfit.mixed_prompts(Editor(), Oracle(), candidates, 3) == [1, 3, 5]
    with pytest.raises(SystemExit, match="only 3 of 6"):
        rl_overfit.mixed_prompts(Editor(), Oracle(), candidates, 4)
