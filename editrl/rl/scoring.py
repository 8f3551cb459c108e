"""Scoring rewards off the sampling thread, so a slow reward never stalls RL (the ``overlap_reward`` key).

Two kinds of concurrency, both exact (the same reward calls on the same images, only their timing changes):

- ``RolloutScoring``: the rollouts of an iteration are sampled in ``batch_size`` chunks; each finished chunk is
  handed to one background thread for scoring while the next chunk is sampled, and the trainer joins before it
  computes advantages. A remote reward's HTTP wait, or a reward model's torch ops, release the GIL, so sampling
  goes on meanwhile. One worker scores the chunks in order, so a reward model is never called from two threads.
- ``concurrently``: the rewards of a mix (``rewards: {spec: weight}``) are scored at the same time, one thread each.

Nothing here draws random numbers: the sampler's noise comes from generators seeded per chunk, so the reward
threads cannot shift its stream. The worker inherits the caller's autograd mode (it is thread-local in torch).
"""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, Sequence, TypeVar

import torch

from ..reward.output import RewardFunction, RewardOutput, sources_for

T = TypeVar("T")


def with_grad_mode(fn: Callable[..., T]) -> Callable[..., T]:
    """``fn`` run under the calling thread's autograd mode, wherever it is called (a worker starts grad-enabled)."""
    enabled = torch.is_grad_enabled()

    def run(*args, **kwargs) -> T:
        with torch.set_grad_enabled(enabled):
            return fn(*args, **kwargs)

    return run


def concurrently(calls: Sequence[Callable[[], T]]) -> list[T]:
    """The results of ``calls`` run one thread each (inline when there is only one); the first error is raised
    as it was raised in its thread, after every call has finished (no thread is left running)."""
    if len(calls) < 2:
        return [call() for call in calls]
    with ThreadPoolExecutor(len(calls), thread_name_prefix="editrl-reward") as pool:
        futures = [pool.submit(with_grad_mode(call)) for call in calls]
    return [f.result() for f in futures]


class RolloutScoring:
    """The scores of one iteration's rollouts, chunk by chunk as the sampler finishes them (``submit`` is the
    sampler's ``on_batch`` hook); ``result`` joins and returns them in rollout order.

    With an ``executor`` (one worker) each chunk is scored in the background while the next is sampled; without,
    inline (the sequential path). Both make the same ``reward.score`` calls on the same chunks, so the scores are
    bit-identical. Timings for ``benchmarks/rl_throughput.py``: ``sampling_seconds`` (outside ``submit``, from
    creation to the last chunk), ``reward_seconds`` (inside the reward) and ``blocked_seconds`` (what the trainer
    waited for the reward: all of it inline; with the executor only what sampling did not hide).
    """

    def __init__(self, reward: RewardFunction, cond, batch_size: int, executor: ThreadPoolExecutor | None):
        self.reward, self.cond, self.batch_size, self.executor = reward, cond, batch_size, executor
        self.parts: list[Future | RewardOutput] = []
        self.resumed = time.perf_counter()  # when sampling last went on
        self.sampling_seconds = 0.0
        self.reward_seconds = 0.0  # summed by the one worker (or inline): no race
        self.wait_seconds = 0.0

    @property
    def blocked_seconds(self) -> float:
        return self.wait_seconds if self.executor is not None else self.reward_seconds

    def _score(self, rows: list[int], images: list) -> RewardOutput:
        start = time.perf_counter()
        try:
            sources = self.cond.prompt_sources()  # lists only: no row selection of the condition's tensors
            return self.reward.score(sources_for(self.reward, [sources[r] for r in rows]),
                                     [self.cond.instructions[r] for r in rows], images, batch_size=self.batch_size)
        finally:
            self.reward_seconds += time.perf_counter() - start

    def submit(self, rows: list[int], images: list) -> None:
        """Score the rollouts ``rows`` (their ``images``); a chunk whose scoring already failed raises here, so a
        broken reward stops sampling at the next chunk rather than after the last."""
        self.sampling_seconds += time.perf_counter() - self.resumed
        for part in self.parts:
            if isinstance(part, Future) and part.done():
                part.result()
        if self.executor is None:
            self.parts.append(self._score(rows, images))
        else:
            self.parts.append(self.executor.submit(with_grad_mode(self._score), rows, images))
        self.resumed = time.perf_counter()

    def result(self) -> RewardOutput:
        start = time.perf_counter()
        try:
            return RewardOutput.cat([p.result() if isinstance(p, Future) else p for p in self.parts])
        finally:
            self.wait_seconds = time.perf_counter() - start
