"""Toy rewards and a small config for the RL tests (rewards importable as ``toys:Class`` specs in subprocesses)."""

from __future__ import annotations

import json
import os
import time

import numpy as np
import torch

from editrl.errors import EditRLError
from editrl.images import load_image
from editrl.reward.output import RewardOutput


def _output(scores: list[float]) -> RewardOutput:
    s = torch.tensor(scores, dtype=torch.float32)
    return RewardOutput(mu=s[:, None].repeat(1, 2), sigma=torch.zeros(len(s), 2), score=s, score_sigma=torch.zeros(len(s)))


class Brightness:
    """Mean pixel value in [0, 1]: a reward the tiny random editor can move."""

    def score(self, sources, instructions, edits, batch_size=None) -> RewardOutput:
        return _output([float(np.asarray(load_image(e, "edit"), dtype=np.float32).mean() / 255) for e in edits])


class Darkness(Brightness):
    """1 - brightness: a judge that disagrees with Brightness."""

    def score(self, sources, instructions, edits, batch_size=None) -> RewardOutput:
        out = super().score(sources, instructions, edits)
        return _output((1 - out.score).tolist())


class RecordingBrightness(Brightness):
    """Brightness that appends what it scored to $EDITRL_TEST_RECORD.<pid>.jsonl (multi-process tests)."""

    def score(self, sources, instructions, edits, batch_size=None) -> RewardOutput:
        out = super().score(sources, instructions, edits)
        path = f"{os.environ['EDITRL_TEST_RECORD']}.{os.getpid()}.jsonl"
        with open(path, "a") as f:
            f.write(json.dumps({"n": len(edits), "scores": out.score.tolist(), "instructions": list(instructions)}) + "\n")
        return out


class FlatOffMain(Brightness):
    """Brightness on the main process, 0.5 on every other (torchrun's RANK): their groups are flat, so GRPO and NFT keep
    none of their rollouts and DPO finds no pair there, yet under FSDP they must run the main process's forwards."""

    def score(self, sources, instructions, edits, batch_size=None) -> RewardOutput:
        if os.environ.get("RANK", "0") == "0":
            return super().score(sources, instructions, edits)
        return _output([0.5] * len(edits))


def small_config(cls, tmp_path, **overrides):
    """A CPU-sized config for the tiny editor and a toy reward."""
    values = dict(
        num_steps=4, group_size=4, groups_per_step=2, batch_size=8, num_iterations=2, learning_rate=3e-2,
        eval_every=0, judge=None, output_dir=str(tmp_path / "run"), rewards={"toys:Brightness": 1.0},
        lora_rank=4, lora_alpha=4, ema_decay=0.0, eval_prompts=2, eval_steps=4,
    )
    values.update(overrides)
    return cls(**values)


class Timed(Brightness):
    """Brightness that sleeps ``delay`` seconds per call, records each call's (start, end) and its thread's autograd
    mode in ``calls``, and draws from torch's global generator (which the sampler must not depend on)."""

    def __init__(self, delay: float = 0.0, calls: list | None = None, fail: str | None = None):
        self.delay, self.calls, self.fail = delay, calls if calls is not None else [], fail

    def score(self, sources, instructions, edits, batch_size=None) -> RewardOutput:
        start = time.perf_counter()
        torch.rand(64)
        time.sleep(self.delay)
        if self.fail:
            raise EditRLError(self.fail)
        out = super().score(sources, instructions, edits)
        self.calls.append({"start": start, "end": time.perf_counter(), "n": len(edits), "grad": torch.is_grad_enabled()})
        return out
