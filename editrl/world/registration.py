"""The names the world gives the layers below it (see ``editrl.registry``): nothing below the world names it.

``--editor world``, ``--reward world`` / ``oracle``, RL ``data: world``, a tiny reward backbone's
``tokenizer: world``, ``reward serve --chat world-vlm`` and a judge's ``prompt=world-verify`` all resolve through these entries; the values are imported only when used.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from ..registry import CHAT_MODELS, EDITORS, JUDGE_PROMPTS, PROMPT_SETS, REWARDS, TOKENIZER_WORDS


def world_reward(device=None):
    """The shipped world EditReward on ``device``."""
    from .reward import load_world_reward

    return load_world_reward(device=device)


def oracle(device=None, fusion: str = "mean"):
    """The exact oracle (pure Python: ``device`` does not apply) fusing its two dimensions by ``fusion``
    (``OracleConfig.fusion``): ``oracle-if`` scores instruction following alone, ``oracle-exact`` 1 for an exactly
    right edit, ``oracle-exact-kept`` also -1 for a lost object."""
    from .oracle import Oracle, OracleConfig

    return Oracle(OracleConfig(fusion=fusion))


def world_verifier(device=None):
    """The world VLM's answer likelihood that an edit is exactly right (``editrl.world.verifier``)."""
    from .verifier import VerifierReward

    return VerifierReward(device=device)


def world_describe(device=None):
    """The world VLM reads the source, the world grammar applies the instruction, the VLM judges the edit
    against that description (``editrl.world.verifier.DescriptionJudge``)."""
    from .verifier import DescriptionJudge

    return DescriptionJudge(device=device)


def world_vlm_chat(device=None):
    """The world VLM answering chat questions (``editrl reward serve --chat world-vlm``; ``editrl.world.chat``)."""
    from .chat import WorldVLMChat

    return WorldVLMChat(device=device)


def world_prompts(n: int, split: str, seed: int, size: int) -> list:
    """(source, instruction) pairs of ``n`` world examples of ``split``."""
    from .examples import make_examples

    return [(e.source, e.instruction) for e in make_examples(n, seed=seed, split=split, size=size)]


EDITORS.register("world", "editrl.world.editor:WORLD_EDITOR")
REWARDS.register("world", world_reward)
REWARDS.register("oracle", oracle)
REWARDS.register("world-verifier", world_verifier)
REWARDS.register("world-describe", world_describe)
REWARDS.register("oracle-if", partial(oracle, fusion="instruction_following"))
REWARDS.register("oracle-exact", partial(oracle, fusion="exact"))
REWARDS.register("oracle-exact-kept", partial(oracle, fusion="exact_minus_lost"))
PROMPT_SETS.register("world", world_prompts)
CHAT_MODELS.register("world-vlm", world_vlm_chat)
JUDGE_PROMPTS.register("world-verify", Path(__file__).parent / "judge_prompts" / "verify")
TOKENIZER_WORDS.register("world", "editrl.world.reward:prompt_vocabulary")
