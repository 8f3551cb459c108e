"""GRPO advantages: rewards normalised per group of k samples (or over the whole batch).

A group is the k samples of one (source image, instruction). Groups whose rewards barely differ
carry no learning signal (and their normalised advantages would be noise blown up by a tiny std),
so they are dropped; optionally so are groups the policy already solves (a mean above a threshold, as
Edit-R1). In a multi-process run the trainer gathers rewards and group ids from every process first, so
the statistics are global.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import EditRLError
from .config import ADVANTAGE_MODES


@dataclass
class Advantages:
    """``values`` (N,) clipped advantages (0 for dropped samples); ``keep`` (N,) bool, False for
    samples of dropped groups; ``group_std`` (N,) the reward std of each sample's group."""

    values: torch.Tensor
    keep: torch.Tensor
    group_std: torch.Tensor


def compute_advantages(
    rewards: torch.Tensor,
    group_ids: torch.Tensor,
    mode: str = "global_std",
    clip: float = 5.0,
    eps: float = 1e-4,
    min_group_std: float = 1e-6,
    max_group_mean: float | None = None,
) -> Advantages:
    """``(r - mean) / (std + eps)`` clipped to ``[-clip, clip]``.

    ``mode="global_std"`` (flow_grpo's published configs: per-prompt stat tracking with global std):
    the mean of the sample's group, the std of all rewards; ``mode="group"``: mean and std of each
    sample's group; ``mode="batch"``: mean and std of all rewards (flow_grpo without per-prompt
    tracking; a prompt's difficulty then leaks into its advantages). Either way, groups whose own std is
    below ``min_group_std`` are dropped (``keep`` False, advantage 0), and with ``max_group_mean`` so are groups whose
    mean reward is above it (Edit-R1: prompts the policy already solves). Stds are population stds
    (unbiased=False), so a group of two rewards r, r' gives advantages of exactly +-1 (up to eps).
    """
    if mode not in ADVANTAGE_MODES:
        raise EditRLError(f"advantage mode {mode!r} is not supported; expected one of {ADVANTAGE_MODES}")
    rewards = rewards.float().flatten()
    group_ids = group_ids.flatten()
    if rewards.shape != group_ids.shape:
        raise EditRLError(f"rewards {tuple(rewards.shape)} and group_ids {tuple(group_ids.shape)} must have the same length")
    _, inverse = torch.unique(group_ids, return_inverse=True)
    n_groups = int(inverse.max()) + 1 if len(inverse) else 0
    counts = torch.zeros(n_groups).index_add_(0, inverse, torch.ones_like(rewards))
    group_mean = torch.zeros(n_groups).index_add_(0, inverse, rewards) / counts
    group_var = torch.zeros(n_groups).index_add_(0, inverse, (rewards - group_mean[inverse]) ** 2) / counts
    group_std = group_var.sqrt()[inverse]
    if mode == "group":
        values = (rewards - group_mean[inverse]) / (group_std + eps)
    elif mode == "global_std":
        values = (rewards - group_mean[inverse]) / (rewards.std(unbiased=False) + eps)
    else:
        values = (rewards - rewards.mean()) / (rewards.std(unbiased=False) + eps)
    keep = group_std >= min_group_std
    if max_group_mean is not None:
        keep &= group_mean[inverse] <= max_group_mean
    values = torch.where(keep, values.clamp(-clip, clip), torch.zeros_like(values))
    return Advantages(values=values, keep=keep, group_std=group_std)
