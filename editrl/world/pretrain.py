"""Pretraining the world's tiny vision-language model: the base the world EditReward is fine-tuned from.

EditReward fine-tunes a *pretrained* Qwen2.5-VL: the backbone already reads images and instructions, and
the reward heads learn to judge. A tiny Qwen2.5-VL built in code starts from random weights; trained on
preference pairs alone it learned the visible "fewer objects look cleaner" and not the instruction. This
module gives it what a real VLM brings: the ordinary language-modelling loss (on the answer tokens only)
on three world image-text tasks, with exact answers from the world itself:

- ``describe``: [image] "describe" -> the scene ("white background . red circle small top left . ...");
  the image may be degraded (noise, blur, JPEG) or a sample of the shipped editor, labelled with its
  nearest clean scene (``parse_scene``), so the model learns to read what an edit *contains*;
- ``compare``: [image, image] "compare" -> what changed from the first to the second, object by object
  ("red circle size large . blue square removed . ..." or "no change");
- ``apply``: [image] "apply: <instruction>" -> the description of the scene after the instruction.

Sequences use the reward's layout (the Qwen chat template, one user turn, images first, sequential
positions) so the fine-tune starts from the inputs it was pretrained on. ``exact_match`` measures the
pretraining: the share of held-out answers the model reproduces token for token (under teacher forcing
every token right is the same as greedy decoding reproducing the answer).
"""

from __future__ import annotations

import json
import logging
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from ..config import Config, config_field
from ..errors import EditRLError
from ..reward.inputs import expand_image_tokens
from ..reward.model import sequential_positions
from ..reward.output import check_positive
from ..runs import JsonlLog, load_checkpoint, save_checkpoint
from .datasets import _quality
from .examples import make_examples
from .instructions import random_edit
from .scenes import Scene, parse_scene, random_scene, render

logger = logging.getLogger(__name__)

TASKS = ("describe", "compare", "apply", "verify")
TASK_WORDS = ("describe", "compare", "apply", ":", "background", ".", "size", "shape", "moved", "removed",
              "added", "no", "change")


# -- the answers ----------------------------------------------------------------------------------------
def describe(scene: Scene) -> str:
    """A scene as text: background, then each object (colour shape size position) in grid order."""
    parts = [f"{scene.background} background", *(f"{o.color} {o.shape} {o.size} {o.position}" for o in scene.canonical().objects)]
    return " . ".join(parts)


def read_scene(text: str) -> Scene:
    """The scene a ``describe`` answer names (its inverse); an EditRLError naming the part that is not one."""
    from .scenes import BACKGROUNDS, COLORS, POSITIONS, SHAPES, SIZES, WorldObject

    background, *parts = [p.strip() for p in text.split(" . ")]
    words = background.split()
    if len(words) != 2 or words[1] != "background" or words[0] not in BACKGROUNDS:
        raise EditRLError(f"scene description {text!r}: expected '<colour> background' first, got {background!r}")
    objects = []
    for part in parts:
        fields = part.split()  # colour shape size position (a position may be two words)
        obj = WorldObject(fields[1], fields[0], fields[2], " ".join(fields[3:])) if len(fields) >= 4 else None
        if obj is None or obj.color not in COLORS or obj.shape not in SHAPES or obj.size not in SIZES or obj.position not in POSITIONS:
            raise EditRLError(f"scene description {text!r}: {part!r} is not '<colour> <shape> <size> <position>'")
        objects.append(obj)
    return Scene(words[0], tuple(objects)).validate()


def compare(before: Scene, after: Scene) -> str:
    """What changed from ``before`` to ``after``, object by object (objects are matched by colour)."""
    changes = [] if before.background == after.background else [f"background {after.background}"]
    old = {o.color: o for o in before.objects}
    new = {o.color: o for o in after.objects}
    for color in sorted(old.keys() | new.keys()):
        a, b = old.get(color), new.get(color)
        if b is None:
            changes.append(f"{a.color} {a.shape} removed")
        elif a is None:
            changes.append(f"{b.color} {b.shape} added {b.size} {b.position}")
        else:
            for attr, word in (("shape", "shape"), ("size", "size"), ("position", "moved")):
                if getattr(a, attr) != getattr(b, attr):
                    changes.append(f"{a.color} {a.shape} {word} {getattr(b, attr)}")
    return " . ".join(changes) or "no change"


def vlm_vocabulary(templates="world") -> list[str]:
    """The words of the world VLM's tokenizer: the world reward's prompt vocabulary and the task words."""
    from .reward import prompt_vocabulary

    return sorted({*prompt_vocabulary(templates), *TASK_WORDS})


# -- the images -----------------------------------------------------------------------------------------
def degrade(image: Image.Image, rng: random.Random) -> Image.Image:
    """The image, or (half the time) with noise, blur or JPEG artifacts: descriptions must see through them."""
    kind = rng.choice(["clean", "clean", "noise", "blur", "jpeg"])
    return _quality(image, kind, rng, noise_std=(5, 25), blur_radius=(0.4, 1.2), jpeg_quality=(20, 60))


def random_change(scene: Scene, rng: random.Random, max_edits: int = 3) -> Scene:
    """``scene`` after 0-``max_edits`` random edits of any kind (the clean wrong outcomes an editor makes)."""
    for _ in range(rng.randint(0, max_edits)):
        edit = random_edit(rng, scene, rng.choice(["recolor", "remove", "add", "move", "resize", "background"]))
        if edit is not None:
            try:
                scene = edit.apply(scene)
            except EditRLError:
                continue
    return scene


@dataclass
class Sample:
    """One pretraining sequence: images, the user's text and the exact answer."""

    images: list[Image.Image]
    prompt: str
    answer: str
    task: str


def verify_prompt(instruction: str) -> str:
    """The verify task's question (and the world verifier's): what differs between ``instruction``'s target and the edit."""
    return f"apply: {instruction} compare"


def editor_verify_sample(example, edit: Image.Image) -> Sample:
    """A verify sample of an editor sample ``edit`` of ``example``, answered against the target with its parsed scene."""
    return Sample([example.source, edit], verify_prompt(example.instruction),
                  compare(example.target_scene, parse_scene(np.asarray(edit))), "verify")


def make_sample(task: str, rng: random.Random, size: int = 64, editor_pool: list | None = None,
                verify_editor_share: float = 0.0, editor_share: float = 1 / 3) -> Sample:
    """A random sample of ``task``; with an ``editor_pool`` of (example, edit) pairs ``editor_share`` of the
    describe/compare samples and ``verify_editor_share`` of the verify samples read a real editor sample, labelled
    with its parsed scene."""
    if task == "verify" and editor_pool and verify_editor_share and rng.random() < verify_editor_share:
        return editor_verify_sample(*rng.choice(editor_pool))
    if task in ("apply", "verify"):
        example = make_examples(1, seed=rng.getrandbits(31), split="train", size=size)[0]
        if task == "apply":
            return Sample([example.source], f"apply: {example.instruction}", describe(example.target_scene), task)
        return verify_sample(example, rng)
    if editor_pool and rng.random() < editor_share:
        example, edit = rng.choice(editor_pool)
        before, after = parse_scene(np.asarray(example.source)), parse_scene(np.asarray(edit))
        if task == "describe":
            return Sample([edit], "describe", describe(after), task)
        return Sample([example.source, edit], "compare", compare(before, after), task)
    scene = random_scene(rng)
    if task == "describe":
        return Sample([degrade(render(scene, size), rng)], "describe", describe(scene), task)
    if task == "compare":
        after = random_change(scene, rng)
        return Sample([render(scene, size), degrade(render(after, size), rng)], "compare", compare(scene, after), task)
    raise EditRLError(f"pretraining task: expected one of {TASKS}, got {task!r}")


def verify_sample(example, rng: random.Random) -> Sample:
    """(source, edit) and the instruction; the answer is what differs between the target the instruction asks
    for and the edit ("no change" when the edit is exactly right). The edit is the exact target a third of the
    time, otherwise one of the audit's clean wrong outcomes (``editrl.world.audit``), either maybe degraded:
    the task a reward must do, reading the instruction against the edit, with an exact answer."""
    from .audit import CATEGORIES

    edit, scene = example.target, example.target_scene
    if rng.random() > 1 / 3:  # a wrong outcome of the first category (in random order) that applies
        categories = [c for c in CATEGORIES if c != "half-pixels"]
        rng.shuffle(categories)
        for category in categories:
            found = verify_outcome(example, category, rng)
            if found is not None:
                edit, scene = found
                break
    return Sample([example.source, degrade(edit, rng)], verify_prompt(example.instruction),
                  compare(example.target_scene, scene), "verify")


def verify_outcome(example, category: str, rng: random.Random) -> tuple[Image.Image, Scene] | None:
    """(image, parsed scene) of ``category``'s clean wrong outcome of ``example``, or None when the category does
    not apply or the answer would read "no change": ``compare`` matches objects by colour, so a colour shown twice
    ("duplicated") can look unchanged to it."""
    from .audit import wrong_outcome

    wrong = wrong_outcome(example, category, rng)
    if wrong is None:
        return None
    parsed = parse_scene(np.asarray(wrong))
    return (wrong, parsed) if compare(example.target_scene, parsed) != "no change" else None


# -- the model ------------------------------------------------------------------------------------------
@dataclass
class PretrainConfig(Config):
    """How the world VLM is built and pretrained (``editrl world pretrain-vlm --config``)."""

    tiny: dict = config_field({"hidden_size": 128, "num_hidden_layers": 4, "intermediate_size": 256,
                               "vision_hidden_size": 128, "vision_depth": 2},
                              "keyword arguments of editrl.tiny.tiny_qwen25vl_config (the backbone's size)")
    image_size: int = config_field(168, "side in pixels each 64 px world image is resized to (a multiple of 28; 168 = "
                                        "2x2 merged visual tokens per grid cell; at 84 px, one per cell, shapes were never learned)")
    task_weights: dict = config_field({"describe": 0.4, "compare": 0.4, "apply": 0.2}, "share of each task in a batch")
    init: str | None = config_field(None, "a pretrained world VLM folder to continue from (its size and tokenizer; "
                                          "`tiny` and `seed`'s initial weights are then unused); None = random weights")
    editor_samples: int = config_field(0, "samples of the shipped editor (each kept with its world example) mixed into "
                                          "describe/compare (and verify, with verify_editor_share) (0 = none)")
    editor_share: float = config_field(1 / 3, "share of describe/compare samples that read an editor sample of the pool "
                                              "(with editor_samples > 0; the judges read editor samples, so a continuation "
                                              "may raise it)")
    verify_editor_share: float = config_field(0.0, "share of verify samples that read an editor sample of the pool against its "
                                                   "instruction's target (what a reward ranks); 0 keeps the earlier data stream")
    seed: int = config_field(0, "seed of the initial weights and of the data stream")
    steps: int = config_field(3000, "optimizer steps (may change when a run resumes: the cosine schedule follows the new "
                                    "length; equal to the step reached, the run ends there and writes model/)")
    batch_size: int = config_field(32, "sequences per step")
    learning_rate: float = config_field(1e-3, "peak AdamW learning rate (cosine schedule with warm-up)")
    warmup_steps: int = config_field(100, "linear warm-up steps")
    weight_decay: float = config_field(0.01, "AdamW weight decay")
    checkpoint_every: int = config_field(200, "steps between checkpoints (checkpoints/step-N, the newest kept; a rerun resumes from it)")
    eval_every: int = config_field(500, "steps between held-out exact-match evaluations")
    eval_samples: int = config_field(200, "held-out samples per task for the exact-match evaluation")
    max_minutes: float = config_field(0.0, "stop (with a checkpoint) after this many minutes; 0 = no limit")

    def validate(self) -> None:
        super().validate()
        if self.image_size % 28 or not 28 <= self.image_size <= 448:
            raise EditRLError(f"image_size={self.image_size}: expected a multiple of 28 between 28 and 448")
        if set(self.task_weights) - set(TASKS) or not any(v > 0 for v in self.task_weights.values()):
            raise EditRLError(f"task_weights={self.task_weights}: expected positive weights of {TASKS}")
        self.require_positive("steps", "batch_size", "checkpoint_every", "eval_every", "eval_samples")
        if self.learning_rate <= 0 or self.editor_samples < 0 or self.warmup_steps < 0:
            raise EditRLError("learning_rate must be positive, editor_samples and warmup_steps non-negative")
        if not 0 <= self.editor_share <= 1:
            raise EditRLError(f"editor_share={self.editor_share}: expected a share in [0, 1]")
        if not 0 <= self.verify_editor_share <= 1 or (self.verify_editor_share and not self.editor_samples):
            raise EditRLError(f"verify_editor_share={self.verify_editor_share}: expected a share in [0, 1], "
                              "and editor_samples > 0 for a positive one")


def build_vlm(config: PretrainConfig):
    """(model, processor): the tiny Qwen2.5-VL with the world tokenizer (reward token included) at ``image_size``."""
    from ..reward.model import EditRewardConfig
    from ..tiny import tiny_qwen25vl, tiny_qwen25vl_processor

    if config.init is not None:
        from transformers import Qwen2_5_VLForConditionalGeneration

        from ..loading import quiet_loading
        from ..reward.checkpoint import load_processor, resolve_folder

        folder = resolve_folder(config.init, "init")
        with quiet_loading():  # no transformers progress bar when a judge or a continuation loads the VLM
            model = Qwen2_5_VLForConditionalGeneration.from_pretrained(str(folder), dtype=torch.float32, local_files_only=True)
        processor = load_processor(folder)
    else:
        model, processor = tiny_qwen25vl(config.seed, extra_special_tokens=[EditRewardConfig().reward_token],
                                         words=vlm_vocabulary(), **config.tiny)
    pixels = config.image_size**2
    processor = tiny_qwen25vl_processor(processor.tokenizer, min_pixels=pixels, max_pixels=pixels)
    return model, processor


class SequenceBuilder:
    """Token ids, answer labels and pixels of pretraining samples in the reward's layout."""

    def __init__(self, processor, image_size: int):
        from ..reward.inputs import RewardInputBuilder

        # the reward's own image handling (smart_resize, patchify once); the templates are not used here
        self.images = RewardInputBuilder(processor, {}, image_size**2, image_size**2, "<|Reward|>").images
        self.processor, self.tokenizer = processor, processor.tokenizer
        self.image_token = getattr(processor, "image_token", "<|image_pad|>")
        self.image_token_id = self.tokenizer.convert_tokens_to_ids(self.image_token)

    def encode(self, samples: list[Sample]) -> dict:
        batch = self.images([im for s in samples for im in s.images])
        sequences, labels, offset = [], [], 0
        for s in samples:
            content = [*({"type": "image"} for _ in s.images), {"type": "text", "text": s.prompt}]
            text = self.processor.apply_chat_template([{"role": "user", "content": content}], tokenize=False,
                                                      add_generation_prompt=True)
            prompt = expand_image_tokens(text, self.image_token, batch.num_tokens[offset: offset + len(s.images)])
            offset += len(s.images)
            prompt_ids = self.tokenizer(prompt)["input_ids"]
            answer_ids = self.tokenizer(s.answer)["input_ids"] + [self.tokenizer.eos_token_id]
            if self.tokenizer.unk_token_id in answer_ids[:-1]:
                raise EditRLError(f"pretraining answer {s.answer!r} has words outside the VLM vocabulary")
            sequences.append(prompt_ids + answer_ids)
            labels.append([-100] * len(prompt_ids) + answer_ids)
        length = max(len(s) for s in sequences)
        ids = torch.full((len(samples), length), self.tokenizer.pad_token_id)
        target = torch.full((len(samples), length), -100)
        mask = torch.zeros((len(samples), length), dtype=torch.long)
        for row, (seq, lab) in enumerate(zip(sequences, labels)):
            ids[row, : len(seq)], target[row, : len(lab)], mask[row, : len(seq)] = torch.tensor(seq), torch.tensor(lab), 1
        return {"ids": ids, "labels": target, "mask": mask, "images": batch}


def answer_logits(model, encoded: dict) -> torch.Tensor:
    """Next-token logits (B, L, V) with the images scattered into their slots and sequential positions
    (the reward's ``legacy`` positions)."""
    images, ids, mask = encoded["images"], encoded["ids"], encoded["mask"]
    features = model.model.get_image_features(images.pixel_values.to(ids.device), images.unique_grid_thw.to(ids.device),
                                              return_dict=True).pooler_output
    image_embeds = torch.cat([features[u] for u in images.unique_index], dim=0)
    embeds = model.model.get_input_embeddings()(ids)
    slots = (ids == model.config.image_token_id).unsqueeze(-1).expand_as(embeds)
    embeds = embeds.masked_scatter(slots, image_embeds.to(embeds.dtype))
    hidden = model.model.language_model(inputs_embeds=embeds, attention_mask=mask, position_ids=sequential_positions(mask),
                                        use_cache=False).last_hidden_state
    return model.lm_head(hidden)


def lm_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of each answer token given everything before it."""
    return torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1), labels[:, 1:].flatten(), ignore_index=-100)


@torch.no_grad()
def exact_match(model, builder: SequenceBuilder, samples: list[Sample], batch_size: int = 50) -> float:
    """Share of ``samples`` whose whole answer (and end token) the model predicts token for token."""
    model.eval()
    hits = 0
    for start in range(0, len(samples), batch_size):
        encoded = builder.encode(samples[start: start + batch_size])
        predicted = answer_logits(model, encoded)[:, :-1].argmax(-1)
        labels = encoded["labels"][:, 1:]
        wrong = (predicted != labels) & (labels != -100)
        hits += int((~wrong.any(1)).sum())
    return hits / len(samples)


@torch.no_grad()
def next_token_logprobs(model, builder: SequenceBuilder, samples: list[Sample], answers: list[list[int]]) -> torch.Tensor:
    """(B, V) log-probabilities of each sample's next answer token after ``answers`` (its answer so far, token ids; its
    ``answer`` is ignored), over the tokens an answer can hold: the special tokens but the end token are excluded. The
    whole sequence is re-read in the layout ``answer_logits`` trains on (the sequences are short, the model tiny), so
    decoding and teacher forcing see the same inputs."""
    tokenizer = builder.tokenizer
    partial = [Sample(s.images, s.prompt, " ".join(tokenizer.convert_ids_to_tokens(a)), s.task) for s, a in zip(samples, answers)]
    encoded = builder.encode(partial)
    logits = answer_logits(model, encoded)
    # `encode` ends every answer with the end token: the logits one position before it predict the next token
    end = torch.stack([(row != -100).nonzero().max() for row in encoded["labels"]])
    next_logits = logits[torch.arange(len(samples)), end - 1].float()
    next_logits[:, [t for t in tokenizer.all_special_ids if t != tokenizer.eos_token_id]] = -torch.inf  # no pad/image/reward
    return torch.log_softmax(next_logits, -1)


@torch.no_grad()
def greedy_answers(model, builder: SequenceBuilder, samples: list[Sample], max_tokens: int = 48) -> list[str | None]:
    """Each sample's answer decoded greedily (its ``answer`` is ignored): words joined by spaces, the form of the
    training answers; None for an answer that does not end within ``max_tokens``."""
    check_positive(max_tokens, "max_tokens")
    tokenizer = builder.tokenizer
    answers: list[list[int]] = [[] for _ in samples]
    open_rows = list(range(len(samples)))
    for _ in range(max_tokens + 1):  # the last step can only end an answer
        if not open_rows:
            break
        picked = next_token_logprobs(model, builder, [samples[r] for r in open_rows], [answers[r] for r in open_rows]).argmax(-1).tolist()
        for r, token in zip(list(open_rows), picked):
            if token == tokenizer.eos_token_id:
                open_rows.remove(r)
            elif len(answers[r]) < max_tokens:
                answers[r].append(token)
    return [None if r in open_rows else " ".join(tokenizer.convert_ids_to_tokens(a)) for r, a in enumerate(answers)]


def held_out(config: PretrainConfig, editor_pool: list | None = None) -> dict[str, list[Sample]]:
    """Fixed evaluation samples per task (a seed stream the training stream never uses; ``apply`` from the test split)."""
    rng = random.Random(f"vlm-eval-{config.seed}")
    out = {task: [make_sample(task, rng, editor_pool=None) for _ in range(config.eval_samples)] for task in ("describe", "compare")}
    test = make_examples(config.eval_samples, seed=config.seed + 1, split="test")
    out["apply"] = [Sample([e.source], f"apply: {e.instruction}", describe(e.target_scene), "apply") for e in test]
    out["verify"] = [verify_sample(e, rng) for e in test]
    if editor_pool:
        pool = editor_pool[: config.eval_samples]
        out["describe-editor"] = [Sample([edit], "describe", describe(parse_scene(np.asarray(edit))), "describe") for _, edit in pool]
        if config.verify_editor_share:
            out["verify-editor"] = [editor_verify_sample(e, edit) for e, edit in pool]
    return out


def editor_sample_pool(n: int, seed: int, split: str = "train") -> list[tuple]:
    """``n`` (world example, edit image) pairs of the shipped world editor's samples on ``split`` prompts."""
    from ..sampler.editors import load_editor

    editor = load_editor("world")
    examples = make_examples(n, seed=seed, split=split)
    pool = []
    for start in tqdm(range(0, n, 32), desc="editor samples", leave=False):
        chunk = examples[start: start + 32]
        out = editor.sample([e.source for e in chunk], [e.instruction for e in chunk], [seed * 100_003 + start + i for i in range(len(chunk))])
        pool.extend(zip(chunk, out.images))
    return pool


def pretrain(config: PretrainConfig, out: str | Path) -> Path:
    """Pretrain into ``out`` (``checkpoints/``, ``log.jsonl``, ``model/``); a rerun resumes from the checkpoint
    (through ``editrl.runs``; a ``checkpoint.pt`` of earlier versions is not read) with the same config up to
    ``max_minutes`` and ``steps``."""
    config.validate()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model, processor = build_vlm(config)
    builder = SequenceBuilder(processor, config.image_size)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    from transformers import get_scheduler

    scheduler = get_scheduler("cosine", optimizer, num_warmup_steps=config.warmup_steps, num_training_steps=config.steps)
    state = {"step": 0, "elapsed": 0.0}
    rng = random.Random(f"vlm-train-{config.seed}")
    # `steps` may change on resume: a run stopped by max_minutes is ended early (steps = the step reached writes
    # model/ from the checkpoint) or lengthened; the cosine schedule is rebuilt for the new length and continues
    # from the checkpoint's step
    found = load_checkpoint(out, config, ("max_minutes", "steps"))
    if found is not None:
        saved, folder = found
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        rng.setstate(saved["rng"])
        state = saved["state"]
        if config.steps < state["step"]:
            raise EditRLError(f"steps={config.steps}: {folder} is at step {state['step']} already; "
                              f"to end the run there, set steps={state['step']}")
        JsonlLog(out / "log.jsonl").truncate(state["step"])  # steps after the checkpoint are recomputed
        logger.info("resumed from %s at step %d", folder, state["step"])
    pool = editor_sample_pool(config.editor_samples, seed=config.seed + 11) if config.editor_samples else None
    evaluation = held_out(config, editor_sample_pool(config.eval_samples, seed=config.seed + 12, split="test") if pool else None)
    # what always answering "no change" would score on verify: its exact match means something only above this
    baselines = {f"no_change_{task}": float(np.mean([s.answer == "no change" for s in evaluation[task]]))
                 for task in ("verify", "verify-editor") if task in evaluation}
    tasks, weights = list(config.task_weights), list(config.task_weights.values())
    start = time.monotonic() - state["elapsed"]

    def save() -> None:
        state["elapsed"] = time.monotonic() - start
        save_checkpoint(out, state["step"], {"state": state, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                             "scheduler": scheduler.state_dict(), "rng": rng.getstate()}, config, keep=1)

    log = JsonlLog(out / "log.jsonl").write
    bar = tqdm(total=config.steps, initial=state["step"], desc="pretraining the world VLM")
    while state["step"] < config.steps:
        model.train()
        samples = [make_sample(rng.choices(tasks, weights)[0], rng, editor_pool=pool, verify_editor_share=config.verify_editor_share,
                               editor_share=config.editor_share)
                   for _ in range(config.batch_size)]
        encoded = builder.encode(samples)
        loss = lm_loss(answer_logits(model, encoded), encoded["labels"])
        if not torch.isfinite(loss):
            raise EditRLError(f"pretraining loss is {loss.item()} at step {state['step']}; last checkpoint: {out / 'checkpoints'}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        state["step"] += 1
        bar.update()
        bar.set_postfix(loss=f"{loss.item():.3f}")
        if state["step"] % 20 == 0:
            log({"step": state["step"], "loss": loss.item(), "lr": scheduler.get_last_lr()[0], "seconds": time.monotonic() - start})
        if state["step"] % config.eval_every == 0 or state["step"] == config.steps:
            log({"step": state["step"], **{f"exact_{k}": exact_match(model, builder, v) for k, v in evaluation.items()},
                 **baselines})
        if state["step"] % config.checkpoint_every == 0 or state["step"] == config.steps:
            save()
        if config.max_minutes and time.monotonic() - start > config.max_minutes * 60:
            save()
            logger.info("stopped after %.1f minutes at step %d (max_minutes); rerun to resume", config.max_minutes, state["step"])
            return out
    bar.close()
    folder = out / "model"
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    (folder / "pretraining.json").write_text(json.dumps({"config": asdict(config), "seconds": time.monotonic() - start}, indent=1))
    return folder
