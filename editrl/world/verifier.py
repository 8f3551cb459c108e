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
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import torch

from ..errors import EditRLError
from ..images import ImageLike, check_instruction, load_images
from ..reward.output import RewardOutput, check_batch_size

WORLD_VLM_DIR = Path(__file__).parent / "models" / "vlm"
EXACT_ANSWER = "no change"


class VerifierReward:
    """A ``RewardFunction``: the world VLM's log-likelihood that an edit needs no change to match the instruction."""

    dimensions = ("instruction_following",)

    def __init__(self, vlm: str | Path | None = None, device: str | torch.device | None = None):
        from .pretrain import PretrainConfig, SequenceBuilder, build_vlm

        folder = Path(vlm) if vlm is not None else WORLD_VLM_DIR
        saved = folder / "pretraining.json"  # written beside the weights by `pretrain`: the image size it read
        if not (folder / "config.json").is_file() or not saved.is_file():
            raise EditRLError(f"world verifier: {folder} is not a world VLM folder (config.json and pretraining.json); "
                              "pretrain one as editrl/world/models/vlm/TRAINING.md describes")
        try:
            image_size = int(json.loads(saved.read_text())["config"]["image_size"])
        except (ValueError, KeyError, TypeError) as err:
            raise EditRLError(f"world verifier: {saved} names no config.image_size ({err!r})") from None
        config = PretrainConfig(init=str(folder), image_size=image_size)
        model, processor = build_vlm(config)
        self.model = model.to(device or "cpu").eval()
        self.builder = SequenceBuilder(processor, config.image_size)
        self.image_size = image_size
        self.vocabulary = set(processor.tokenizer.get_vocab())

    def identity(self) -> dict:
        """What identifies its scores (``editrl.reward.identity``): class, image size, answer and a weights digest,
        so resumed scoring refuses a retrained VLM."""
        from ..reward.identity import weights_digest

        return {"class": f"{type(self).__module__}.{type(self).__qualname__}",
                "config": {"image_size": self.image_size, "answer": EXACT_ANSWER}, "weights": weights_digest(self.model)}

    def _check_words(self, instruction: str, name: str) -> str:
        """The instruction, or one error naming the words the world VLM does not know (they would read as padding)."""
        from ..tiny import split_words

        unknown = sorted({w for w in split_words(instruction) if w not in self.vocabulary})
        if unknown:
            raise EditRLError(f"{name}: the world verifier knows only world instruction words, not {unknown[:5]}")
        return instruction

    @torch.inference_mode()
    def answer_logprob(self, sources: Sequence[ImageLike], instructions: Sequence[str], edits: Sequence[ImageLike],
                       answer: str = EXACT_ANSWER, batch_size: int | None = None) -> torch.Tensor:
        """(B,) log P(``answer`` and the end token | source, edit, verify prompt): the sum over the answer's tokens."""
        from .pretrain import Sample, answer_logits, verify_prompt

        if not (len(sources) == len(instructions) == len(edits)) or not sources:
            raise EditRLError(f"sources, instructions and edits must be non-empty and of one length, got "
                              f"{len(sources)}, {len(instructions)}, {len(edits)}")
        batch_size = check_batch_size(batch_size, default=32)
        checked = [self._check_words(check_instruction(t, f"instructions[{i}]"), f"instructions[{i}]") for i, t in enumerate(instructions)]
        source_images, edit_images = load_images(list(sources), "sources"), load_images(list(edits), "edits")
        samples = [Sample([s, e], verify_prompt(t), answer, "verify") for s, t, e in zip(source_images, checked, edit_images)]
        out = []
        for start in range(0, len(samples), batch_size):
            encoded = {k: v.to(self.model.device) if torch.is_tensor(v) else v
                       for k, v in self.builder.encode(samples[start: start + batch_size]).items()}
            logprobs = torch.log_softmax(answer_logits(self.model, encoded)[:, :-1].float(), -1)
            labels = encoded["labels"][:, 1:]  # the token each position predicts (-100: not an answer token)
            picked = logprobs.gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
            out.append((picked * (labels != -100)).sum(1).cpu())
        return torch.cat(out)

    def score(self, sources: Sequence[ImageLike], instructions: Sequence[str], edits: Sequence[ImageLike],
              batch_size: int | None = None) -> RewardOutput:
        logprob = self.answer_logprob(sources, instructions, edits, batch_size=batch_size)
        zeros = torch.zeros_like(logprob)
        return RewardOutput(mu=logprob[:, None], sigma=zeros[:, None], score=logprob, score_sigma=zeros,
                            dimensions=self.dimensions)
