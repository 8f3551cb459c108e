"""Prompts with several source images through the library: what each reward is given, best-of-N, and prompt tables."""

from __future__ import annotations

import io
import json
import logging

import pyarrow as pa
import pyarrow.parquet as pq
import torch

from editrl.reward.output import RewardOutput, sources_for
from editrl.rl.rewards import WeightedReward
from editrl.rl.trainer import load_prompts
from editrl.sampler.best_of_n import best_of_n
from editrl.sampler.editors.flux2 import Flux2KleinEditor
from editrl.tiny import tiny_flux2_klein


class Recorder:
    """A reward that keeps what it was given as sources and scores the edit's mean pixel."""

    def __init__(self, several: bool = False):
        self.takes_several_sources = several
        self.seen = []

    def score(self, sources, instructions, edits, batch_size=None):
        self.seen.extend(sources)
        s = torch.tensor([float(torch.tensor(list(e.getdata()), dtype=torch.float32).mean()) for e in edits])
        return RewardOutput(mu=s[:, None].repeat(1, 2), sigma=torch.zeros(len(s), 2), score=s, score_sigma=torch.zeros(len(s)))


def test_a_reward_of_one_source_gets_the_first_and_it_is_said_once(make_image, caplog):
    a, b, c = make_image(1), make_image(2), make_image(3)
    one, several = Recorder(), Recorder(several=True)
    with caplog.at_level(logging.WARNING):
        assert sources_for(one, [[a, b], c]) == [a, c]
        assert sources_for(one, [[b, a]]) == [b]
        assert sources_for(Recorder(), [a, c]) == [a, c]  # nothing to say: one source each
    assert [r.message for r in caplog.records] == [
        "reward Recorder reads one source image: prompts with several are scored against their first"]
    assert sources_for(several, [[a, b], c]) == [[a, b], c]
    mix = WeightedReward({"one": one, "several": several}, {"one": 1.0, "several": 2.0})
    mix.score([[a, b]], ["x"], [c])
    assert one.seen == [a] and several.seen == [[a, b]]


def test_any_reward_object_may_be_told_once_even_unhashable(make_image, caplog):
    """A user's reward written as a @dataclass (unhashable) or with __slots__ (no weak reference) gets the first
    source like any other, told once."""
    import dataclasses

    @dataclasses.dataclass
    class Unhashable:
        weight: float = 1.0

    class Slotted:
        __slots__ = ()

    a, b = make_image(1), make_image(2)
    for reward in (Unhashable(), Slotted()):
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="editrl.reward.output"):
            assert sources_for(reward, [[a, b], [b, a]]) == [a, b] and sources_for(reward, [[b, a]]) == [b]
        assert len([r for r in caplog.records if "scored against their first" in r.getMessage()]) == 1


def test_a_new_reward_at_a_collected_rewards_id_is_still_told(make_image, caplog):
    """The once-only mark sits on the reward itself, so a reward created where a collected one lived is told too
    (CPython reuses addresses); a reward that takes no attribute is kept alive, so its id() cannot be reused."""
    from editrl.reward import output

    class Plain:
        pass

    class Slotted:
        __slots__ = ()

    a, b = make_image(1), make_image(2)
    told = []
    for _ in range(3):  # each new Plain() usually takes the address of the one collected before it
        with caplog.at_level(logging.WARNING, logger="editrl.reward.output"):
            caplog.clear()
            sources_for(Plain(), [[a, b]])
            told.append(len([r for r in caplog.records if "scored against their first" in r.getMessage()]))
    assert told == [1, 1, 1]
    slotted = Slotted()
    sources_for(slotted, [[a, b]])
    assert output._TOLD_FIRST_SOURCE[id(slotted)] is slotted


def test_best_of_n_with_several_sources(make_image):
    editor = Flux2KleinEditor(tiny_flux2_klein(), resolution=64, default_steps=2)
    source, reference = make_image(1), make_image(2)
    judge = Recorder(several=True)
    result = best_of_n(editor, judge, [source, reference], "put the hat of picture 2 on picture 1", n=3, seeds=[4, 5, 6])
    assert len(judge.seen) == 3 and all(len(s) == 2 for s in judge.seen)
    assert list(judge.seen[0][1].getdata()) == list(reference.getdata()) and result.source.size == (64, 64)
    expected = editor.sample([[source, reference]], "put the hat of picture 2 on picture 1", [4, 5, 6])
    by_seed = {c.seed: c for c in result.candidates}
    for seed, latents in zip([4, 5, 6], expected.latents):
        torch.testing.assert_close(by_seed[seed].latents, latents)
    assert result.nfe == expected.nfe == 3 * 2 * 2


def test_prompt_tables_take_a_list_of_sources(tmp_path, make_image):
    for i in range(3):
        make_image(i).save(tmp_path / f"s{i}.png")
    (tmp_path / "p.jsonl").write_text(json.dumps({"source": ["s0.png", "s1.png"], "instruction": "merge them"}) + "\n"
                                      + json.dumps({"source": "s2.png", "instruction": "one"}) + "\n")
    prompts = load_prompts(str(tmp_path / "p.jsonl"), 10, "train", 0, 64)
    assert [len(p[0]) if isinstance(p[0], list) else 1 for p in prompts] == [2, 1]
    assert list(prompts[0][0][1].getdata()) == list(make_image(1).getdata())
    png = []
    for i in (2, 0):
        buffer = io.BytesIO()
        make_image(i).save(buffer, format="PNG")
        png.append(buffer.getvalue())
    pq.write_table(pa.table({"source": [png], "instruction": ["merge"]}), tmp_path / "p.parquet")
    (source,), = [p[:1] for p in load_prompts(str(tmp_path / "p.parquet"), 10, "train", 0, 64)]
    assert [list(im.getdata()) for im in source] == [list(make_image(i).getdata()) for i in (2, 0)]
