"""Flow-GRPO for instruction-based editors, the whole algorithm in ``GRPOTrainer.iteration``.

Per iteration: draw groups of k samples per (source, instruction) with the SDE sampler (noise on
the steps of the SDE window, plain ODE elsewhere, the last step always ODE), score the edits with
the reward, normalise rewards into advantages (per group or over the gathered batch, clipped, flat
groups dropped), then for a random subset of the SDE steps re-score each stored transition under
the current policy and minimise the PPO-clipped objective plus a KL to the reference (the same
denoiser with LoRA disabled) on the step mean. Gradients accumulate over timesteps and batches;
``num_minibatches`` optimizer steps per iteration (1 = fully on-policy, every ratio exactly 1).
"""

from __future__ import annotations

import logging

import torch

from ..errors import EditRLError
from .config import GRPOConfig
from .lora import adapter_disabled
from .sde import SDESampler, kl_to_reference
from .trainer import RLTrainer

logger = logging.getLogger(__name__)


def grpo_loss(
    log_prob: torch.Tensor,
    old_log_prob: torch.Tensor,
    advantages: torch.Tensor,
    clip_range: float,
    kl: torch.Tensor | None = None,
    kl_beta: float = 0.0,
    mask: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """PPO-clipped policy loss ``mean(max(-A r, -A clip(r, 1-c, 1+c)))`` + ``kl_beta * KL`` over ``mask``.

    All inputs are (B,); returns the scalar loss and detached per-sample statistics (ratio, KL,
    policy loss, whether the ratio was outside the clip range).
    """
    ratio = torch.exp(log_prob - old_log_prob)
    policy = torch.maximum(-advantages * ratio, -advantages * ratio.clamp(1 - clip_range, 1 + clip_range))
    per_sample = policy + (kl_beta * kl if kl is not None else 0.0)
    mask = torch.ones_like(ratio) if mask is None else mask.float()
    loss = (per_sample * mask).sum() / mask.sum().clamp(min=1)
    stats = {
        "ratio": ratio.detach(),
        "policy_loss": policy.detach(),
        "kl": kl.detach() if kl is not None else torch.zeros_like(ratio),
        "clipped": ((ratio.detach() - 1).abs() > clip_range).float(),
    }
    return loss, stats


class GRPOTrainer(RLTrainer):
    """Flow-GRPO with LoRA on any editor adapter; see the module docstring and ``GRPOConfig``."""

    config: GRPOConfig

    def sde_steps(self, step: int) -> list[int]:
        """Indices of the steps that get noise this iteration (never the last step)."""
        cfg = self.config
        last = cfg.num_steps - 1  # the final step (to sigma = 0) is ODE and never trained
        if cfg.sde_window_size == 0:
            return list(range(last))
        lo, hi = cfg.sde_window_range or (0, last)
        hi = min(hi, last)
        if not 0 <= lo <= hi - cfg.sde_window_size:
            raise EditRLError(f"config key sde_window_range: {cfg.sde_window_range} leaves no room for a window of {cfg.sde_window_size}")
        # flow_grpo: start = randint(lo, hi - size) inclusive, so the whole window lies in [lo, hi)
        start = int(self.step_rng(step, "window").integers(lo, hi - cfg.sde_window_size + 1))
        return list(range(start, start + cfg.sde_window_size))

    def rollout(self, cond, seeds: list[int], sigmas: torch.Tensor, noisy: list[int], on_batch=None) -> dict:
        """Sample in batches of ``batch_size`` (``on_batch`` as ``sample``'s); keep each SDE transition
        (x_j, x_j+1) and its log-prob.

        Returns ``x``/``x_next`` (N, S, L, C) for the S noisy steps, ``log_prob`` (N, S), ``images``.
        """
        sde = SDESampler(self.config.noise_level, self.config.sde_type, noisy)
        _, images = self.sample(cond, seeds, sigmas, sde=sde, on_batch=on_batch)
        batches = [sde.transitions[j : j + len(noisy)] for j in range(0, len(sde.transitions), len(noisy))]
        return {**{key: torch.cat([torch.stack([t[key] for t in batch], 1) for batch in batches])
                   for key in ("x", "x_next", "log_prob")}, "images": images}

    def iteration(self, step: int) -> dict[str, float]:
        cfg = self.config
        # 1. rollouts: k samples per (source, instruction), SDE on the window, ODE elsewhere
        cond = self.step_groups(step)
        n = len(cond)
        sigmas = self.editor.sigmas(cfg.num_steps)
        noisy = self.sde_steps(step)
        self.transformer.eval()
        scoring = self.scoring(cond)  # each batch is scored while the next is sampled (overlap_reward)
        traj = self.rollout(cond, self.sample_seeds(step, n), sigmas, noisy, on_batch=scoring.submit)

        # 2. rewards -> advantages, with statistics over the groups of every process
        rewards, components = self.score(scoring)
        all_rewards, adv, mine = self.group_advantages(rewards)
        advantages, keep = adv.values[mine], adv.keep[mine]

        # 3. policy update on a random subset of the SDE steps, accumulated over steps and batches
        rng = self.step_rng(step, "trained_steps")
        n_train = max(1, round(cfg.timestep_fraction * len(noisy)))
        sde = SDESampler(cfg.noise_level, cfg.sde_type)  # re-scores the stored transitions
        trained = sorted(rng.choice(len(noisy), size=n_train, replace=False).tolist())
        # every group flat everywhere: nothing to learn (and all processes agree, adv is global)
        minibatches = self.minibatches(n) if adv.keep.any() else []
        stats: dict[str, list[torch.Tensor]] = {"ratio": [], "policy_loss": [], "kl": [], "clipped": []}
        grad_norms = []
        for minibatch in minibatches:
            kept = self.global_count(sum(int(keep[rows].sum()) for rows in minibatch))
            for rows in minibatch:
                if not self.runs_forward(adv.keep, rows):
                    continue
                c = cond.select(rows)
                for s in trained:
                    x, x_next = traj["x"][rows, s], traj["x_next"][rows, s]
                    sigma = sigmas[noisy[s]].expand(len(rows)).to(x.device)
                    out = sde.transition(x, self.editor.velocity(x, sigma, c), sigmas, noisy[s], prev_sample=x_next)
                    kl = None
                    if cfg.kl_beta > 0:  # KL to the reference = the same denoiser with LoRA off
                        with torch.no_grad(), adapter_disabled(self.transformer):
                            v_ref = self.editor.velocity(x, sigma, c)
                        ref = sde.transition(x, v_ref, sigmas, noisy[s], prev_sample=x_next)
                        kl = kl_to_reference(out, ref)
                    device = out.log_prob.device
                    loss, st = grpo_loss(out.log_prob, traj["log_prob"][rows, s].to(device), advantages[rows].to(device),
                                         cfg.clip_range, kl, cfg.kl_beta, keep[rows].to(device))
                    # weight so the accumulated gradient is the mean over kept samples and trained steps
                    (loss * self.loss_weight(int(keep[rows].sum()), kept) / n_train).backward()
                    for key, value in st.items() if keep[rows].any() else ():  # (none kept here: FSDP's forwards)
                        stats[key].append(value[keep[rows]].cpu())
            grad_norms.append(self.optimizer_step())

        # 4. what the log shows: global reward statistics, ratio/clip/KL diagnostics
        ratio = torch.cat(stats["ratio"]) if stats["ratio"] else torch.ones(1)
        record = {
            "reward_mean": float(all_rewards.mean()),
            "reward_std": float(all_rewards.std(unbiased=False)),
            "groups_kept": float(adv.keep.float().mean()),
            "group_reward_std": float(adv.group_std.mean()),  # within-group spread: the signal GRPO has
            "policy_loss": float(torch.cat(stats["policy_loss"]).mean()) if stats["policy_loss"] else 0.0,
            "kl": float(torch.cat(stats["kl"]).mean()) if stats["kl"] else 0.0,
            "clip_frac": float(torch.cat(stats["clipped"]).mean()) if stats["clipped"] else 0.0,
            "ratio_mean": float(ratio.mean()),
            "ratio_min": float(ratio.min()),
            "ratio_max": float(ratio.max()),
            "grad_norm": max(grad_norms, default=0.0),
            "images": n * self.world_size * (step + 1),
            **components,
        }
        return record
