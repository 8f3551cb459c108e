"""The world VLM as a judge of instruction following: how sure it is that an edit did exactly what was asked.

The world VLM (``editrl/world/models/vlm``) was pretrained on ``verify``: given (source, edit) and
"apply: <instruction> compare", say what differs between the scene the instruction asks for and the edit,
"no change" when the edit is exactly right. Its first answer token already tells a deleted object, an added
one or an emptied scene from the exact target almost perfectly (``benchmarks/world_vlm_probe.py``), while
EditReward heads fine-tuned from the same base on preference pairs lost much of that. So the verifier
reads the answer where the VLM gives it, the way a generative judge is read (a VQAScore-like answer
likelihood, not a trained head):

    instruction_following = log P("no change" <end> | source, edit, "apply: <instruction> compare")

It judges instruction following only (degradations it was taught to see through), so its output has the one
dimension ``instruction_following``. The score is a log-probability: <= 0 (0 = certain the edit is exactly
right), unbounded below, about -0.5 to -3 on world edits; a weight that mixes it with a reward on another scale
(``rewards: {spec: weight}``, a plain weighted sum) must account for that. Registered as ``--reward world-verifier``.
It reads only the world's words: an instruction with other words is refused, naming them.

``DescriptionJudge`` (``--reward world-describe``) reads the same VLM another way, splitting the judgement where
the VLM is strong from where it is weak. Held out, the VLM describes a scene exactly 95-98% of the time but
describes the scene an instruction asks for only 43-55% of the time: it perceives well and reasons poorly. So the
judge lets the VLM perceive and the world's instruction grammar reason:

    source_scene = read_scene(greedy "describe" answer on the source)      # the VLM reads the source
    target_scene = the instruction applied to source_scene                  # the grammar, not the VLM
    instruction_following = log P(describe(target_scene) <end> | edit, "describe")

It never sees the target image, the exact target scene or the oracle: only the source, the instruction and the
edit, as any reward. Where the VLM misreads a source so that no target can be formed, it asks the verify question
instead (``score`` says why). Its score is on the verifier's scale (a log-probability, 0 = certain), summed over the
tokens of the target's description, so it compares candidates of one (source, instruction), as best-of-N, GRPO
groups and DPO pairs do; descriptions of busier scenes are longer, so levels differ across prompts.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import OrderedDict
from dataclasses import replace
from pathlib import Path
from typing import Sequence

import torch
from PIL import Image

from ..errors import EditRLError
from ..images import ImageLike, check_instruction, load_images
from ..reward.output import RewardOutput, check_batch_size, check_positive, check_same_length

logger = logging.getLogger(__name__)
WORLD_VLM_DIR = Path(__file__).parent / "models" / "vlm"
EXACT_ANSWER = "no change"
READING_TOKENS = 48  # the longest source reading (a 4-object description is 23 tokens)


class WorldVLMJudge:
    """What both judges share: the world VLM loaded from its folder, its identity, its vocabulary check, and the
    summed log-likelihood of given answers."""

    dimensions = ("instruction_following",)
    reads: dict = {}  # how the judge reads the VLM: part of its identity
    label = "world judge"  # how its errors name it

    def __init__(self, vlm: str | Path | None = None, device: str | torch.device | None = None):
        from .pretrain import PretrainConfig, SequenceBuilder, build_vlm

        folder = Path(vlm) if vlm is not None else WORLD_VLM_DIR
        saved = folder / "pretraining.json"  # written beside the weights by `pretrain`: the image size it read
        if not (folder / "config.json").is_file() or not saved.is_file():
            raise EditRLError(f"{self.label}: {folder} is not a world VLM folder (config.json and pretraining.json); "
                              "pretrain one as editrl/world/models/vlm/TRAINING.md describes")
        try:
            image_size = int(json.loads(saved.read_text())["config"]["image_size"])
        except (ValueError, KeyError, TypeError) as err:
            raise EditRLError(f"{self.label}: {saved} names no config.image_size ({err!r})") from None
        config = PretrainConfig(init=str(folder), image_size=image_size)
        model, processor = build_vlm(config)
        self.model = model.to(device or "cpu").eval()
        self.builder = SequenceBuilder(processor, config.image_size)
        self.image_size = image_size
        self.vocabulary = set(processor.tokenizer.get_vocab())

    @property
    def device(self) -> torch.device:
        """Where the VLM runs (recorded in best-of-N's scores.json, as an EditReward's is)."""
        return self.model.device

    @property
    def dtype(self) -> torch.dtype:
        return self.model.dtype

    def identity(self) -> dict:
        """What identifies its scores (``editrl.reward.identity``): class, image size, how it reads and a weights digest,
        so resumed scoring refuses a retrained VLM."""
        from ..reward.identity import weights_digest

        return {"class": f"{type(self).__module__}.{type(self).__qualname__}",
                "config": {"image_size": self.image_size, **self.reads}, "weights": weights_digest(self.model)}

    def _check_words(self, instruction: str, name: str) -> str:
        """The instruction, or one error naming the words the world VLM does not know (they would read as padding)."""
        from ..tiny import split_words

        unknown = sorted({w for w in split_words(instruction) if w not in self.vocabulary})
        if unknown:
            raise EditRLError(f"{name}: the {self.label} knows only world instruction words, not {unknown[:5]}")
        return instruction

    def _checked(self, sources, instructions, edits, batch_size) -> tuple[list, list, list, int]:
        """Validated (source images, instructions, edit images, batch size); one error line for bad input."""
        check_same_length(sources, instructions, edits)
        batch_size = check_batch_size(batch_size, default=32)
        checked = [self._check_words(check_instruction(t, f"instructions[{i}]"), f"instructions[{i}]") for i, t in enumerate(instructions)]
        return load_images(list(sources), "sources"), checked, load_images(list(edits), "edits"), batch_size

    @torch.inference_mode()
    def _answer_logprobs(self, samples: list, batch_size: int) -> torch.Tensor:
        """(B,) log P(each sample's answer and the end token | its images and prompt): the sum over answer tokens."""
        from .pretrain import answer_logits

        out = []
        for start in range(0, len(samples), batch_size):
            encoded = {k: v.to(self.model.device) if torch.is_tensor(v) else v
                       for k, v in self.builder.encode(samples[start: start + batch_size]).items()}
            logprobs = torch.log_softmax(answer_logits(self.model, encoded)[:, :-1].float(), -1)
            labels = encoded["labels"][:, 1:]  # the token each position predicts (-100: not an answer token)
            picked = logprobs.gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
            out.append((picked * (labels != -100)).sum(1).cpu())
        return torch.cat(out)

    def _output(self, logprob: torch.Tensor) -> RewardOutput:
        zeros = torch.zeros_like(logprob)
        return RewardOutput(mu=logprob[:, None], sigma=zeros[:, None], score=logprob, score_sigma=zeros,
                            dimensions=self.dimensions)


def verify_sample(source: Image.Image, instruction: str, edit: Image.Image, answer: str = EXACT_ANSWER):
    """The VLM's verify question on one (source, instruction, edit), answered ``answer``: what the verifier scores
    and what the description judge falls back to."""
    from .pretrain import Sample, verify_prompt

    return Sample([source, edit], verify_prompt(instruction), answer, "verify")


class VerifierReward(WorldVLMJudge):
    """A ``RewardFunction``: the world VLM's log-likelihood that an edit needs no change to match the instruction."""

    reads = {"answer": EXACT_ANSWER}
    label = "world verifier"

    def answer_logprob(self, sources: Sequence[ImageLike], instructions: Sequence[str], edits: Sequence[ImageLike],
                       answer: str = EXACT_ANSWER, batch_size: int | None = None) -> torch.Tensor:
        """(B,) log P(``answer`` and the end token | source, edit, verify prompt): the sum over the answer's tokens."""
        source_images, checked, edit_images, batch_size = self._checked(sources, instructions, edits, batch_size)
        samples = [verify_sample(s, t, e, answer) for s, t, e in zip(source_images, checked, edit_images)]
        return self._answer_logprobs(samples, batch_size)

    def score(self, sources: Sequence[ImageLike], instructions: Sequence[str], edits: Sequence[ImageLike],
              batch_size: int | None = None) -> RewardOutput:
        return self._output(self.answer_logprob(sources, instructions, edits, batch_size=batch_size))


class DescriptionJudge(WorldVLMJudge):
    """A ``RewardFunction``: the world VLM's log-likelihood that the edit shows the scene the instruction asks of
    the source as the VLM reads it (the module docstring says why it splits the work this way)."""

    reads = {"question": "describe", "reading_tokens": READING_TOKENS, "fallback_answer": EXACT_ANSWER}
    label = "world description judge"

    def __init__(self, vlm: str | Path | None = None, device: str | torch.device | None = None, cache_size: int = 4096):
        check_positive(cache_size, "cache_size")
        super().__init__(vlm, device)
        # best-of-N scores the candidates of one source in several calls and GRPO a group at a time: each
        # source is read once (greedy decoding is the judge's slow part), keyed by its pixels
        self.read_cache: OrderedDict[bytes, str | None] = OrderedDict()
        self.cache_size = cache_size
        self.warned: set[tuple] = set()  # (reading, instruction) pairs already warned about

    def read_sources(self, sources: list[Image.Image], batch_size: int) -> list[str | None]:
        """The VLM's greedy description of each source image (cached by pixels); None where it never ends."""
        from .pretrain import Sample, greedy_answers

        keys = [hashlib.sha1(f"{im.size}{im.mode}".encode() + im.tobytes()).digest() for im in sources]
        missing = list({k: im for k, im in zip(keys, sources) if k not in self.read_cache}.items())
        for start in range(0, len(missing), batch_size):
            part = missing[start: start + batch_size]
            texts = greedy_answers(self.model, self.builder, [Sample([im], "describe", "", "describe") for _, im in part],
                                   max_tokens=READING_TOKENS)
            self.read_cache.update(zip([k for k, _ in part], texts))
        for k in keys:  # least recently used first out: a source scored again keeps its reading
            self.read_cache.move_to_end(k)
        read = [self.read_cache[k] for k in keys]
        while len(self.read_cache) > self.cache_size:
            self.read_cache.popitem(last=False)
        return read

    @staticmethod
    def target_description(source_text: str | None, edits: list) -> str | None:
        """The description of the scene ``edits`` (a parsed instruction) ask of the source the VLM read, or None
        when the reading is no scene or the edits do not fit it. Objects are named by colour and shape and colours
        are unique in a scene, so where the VLM read the named colour with another shape, the instruction's shape
        is believed."""
        from .pretrain import describe, read_scene

        if source_text is None:
            return None
        try:
            scene = read_scene(source_text)
            for edit in edits:
                named = scene.find(edit.color)  # None for a background edit (no colour); an add of a colour in use fails below
                if named is not None and named.shape != edit.shape:
                    scene = scene.replace_object(named, replace(named, shape=edit.shape))
                scene = edit.apply(scene)
        except EditRLError:
            return None
        return describe(scene)

    def score(self, sources: Sequence[ImageLike], instructions: Sequence[str], edits: Sequence[ImageLike],
              batch_size: int | None = None) -> RewardOutput:
        """Where the VLM misreads a source so that no target can be formed (1 in 300 held-out sources for the
        shipped VLM), those items are scored by the verify question instead, with a
        warning: a one-in-a-few-hundred misread must not stop a best-of-N or RL run, and every candidate of that
        (source, instruction) falls back alike, so their ranking stays on one scale."""
        from .instructions import parse_instruction
        from .pretrain import Sample

        source_images, checked, edit_images, batch_size = self._checked(sources, instructions, edits, batch_size)
        parsed = []
        for i, text in enumerate(checked):
            try:
                parsed.append(parse_instruction(text))
            except EditRLError as err:
                raise EditRLError(f"instructions[{i}]: {err}") from None
        read = self.read_sources(source_images, batch_size)
        samples = []
        for source, text, edit, steps, reading in zip(source_images, checked, edit_images, parsed, read):
            target = self.target_description(reading, steps)
            if target is None:
                if (reading, text) not in self.warned:
                    self.warned.add((reading, text))
                    logger.warning("world-describe: the VLM read a source as %r, which %r does not fit; its candidates "
                                   "are scored by the verify question", reading, text)
                samples.append(verify_sample(source, text, edit))
            else:
                samples.append(Sample([edit], "describe", target, "describe"))
        return self._output(self._answer_logprobs(samples, batch_size))
