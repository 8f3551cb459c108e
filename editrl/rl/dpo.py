"""Diffusion-DPO in flow form for editors, the whole algorithm in ``DPOTrainer.iteration``.

Per iteration: sample k edits per (source, instruction) with the reference policy and flow_grpo's
SDE sampler, score them, pair the best with the worst of each group, then noise winner and loser
with the *same* noise and flow time t (logit-normal over the editor's training schedule) and minimise

    d(model) = ||v_w - model(x_t^w)||^2 - ||v_l - model(x_t^l)||^2      (v = noise - x0)
    loss     = -log sigmoid(-beta / 2 * (d(theta) - d(ref)))

on the conditional predictions (no CFG mixing), with a constant beta (a timestep-dependent beta
over-optimises high noise). The reference (which also draws the pairs) is the
initial policy (LoRA disabled) offline, or a copy of the LoRA refreshed every ``ref_update_every``
iterations online.
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F

from .config import DPOConfig
from .lora import adapter_disabled, lora_state, swapped_lora
from .trainer import RLTrainer

logger = logging.getLogger(__name__)


def logit_normal_timesteps(table: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
    """n flow times: ``u = sigmoid(N(0, 1))`` mapped to ``table[floor(u * len(table))]`` (flow_grpo's DPO,
    as diffusers' SD3/FLUX training scripts draw them); ``table`` is the (shifted) training schedule."""
    u = torch.sigmoid(torch.randn(n, generator=generator))
    return table[(u * len(table)).long().clamp(max=len(table) - 1)]


def flow_dpo_loss(
    v_w: torch.Tensor, v_l: torch.Tensor, ref_w: torch.Tensor, ref_l: torch.Tensor,
    target_w: torch.Tensor, target_l: torch.Tensor, beta: float,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Flow Diffusion-DPO loss over a batch of pairs (velocities (P, ...)); squared errors are means over dims.

    Returns the mean loss and per-pair statistics: ``d_theta``, ``d_ref`` and ``accuracy`` (the
    policy fits the winner better than the reference does, relative to the loser).
    """
    def err(v, target):
        return ((v.float() - target.float()) ** 2).mean(dim=tuple(range(1, v.ndim)))

    d_theta = err(v_w, target_w) - err(v_l, target_l)
    d_ref = err(ref_w, target_w) - err(ref_l, target_l)
    margin = -beta / 2 * (d_theta - d_ref)
    loss = -F.logsigmoid(margin).mean()
    return loss, {"d_theta": d_theta.detach(), "d_ref": d_ref.detach(), "accuracy": (margin.detach() > 0).float()}


class DPOTrainer(RLTrainer):
    """Offline/online flow Diffusion-DPO with LoRA on any editor adapter; see ``DPOConfig``."""

    config: DPOConfig

    def __init__(self, config: DPOConfig, **kwargs):
        super().__init__(config, **kwargs)
        self.ref_state = lora_state(self.transformer) if config.ref_update_every else None

    def reference(self):
        """Context in which the denoiser is the reference policy."""
        if self.ref_state is None:
            return adapter_disabled(self.transformer)
        return swapped_lora(self.transformer, self.ref_state)

    def extra_state(self) -> dict:
        return {"ref_state": self.ref_state}

    def load_extra_state(self, state: dict) -> None:
        self.ref_state = state.get("ref_state")

    def iteration(self, step: int) -> dict[str, float]:
        cfg = self.config
        k = cfg.group_size
        # 1. k samples per (source, instruction) from the reference: the frozen initial policy (offline)
        # or the refreshed copy (online), with the SDE sampler as flow_grpo draws them (ODE: noise_level 0)
        cond = self.step_groups(step)
        n = len(cond)
        self.transformer.eval()
        scoring = self.scoring(cond)  # each batch is scored while the next is sampled (overlap_reward)
        with self.reference():
            x0, _ = self.sample(cond, self.sample_seeds(step, n), self.editor.sigmas(cfg.num_steps), cfg.noise_level,
                                on_batch=scoring.submit)

        # 2. best-vs-worst pair of each group by the reward
        rewards, components = self.score(scoring)
        grouped = rewards.view(-1, k)
        best = grouped.argmax(1) + torch.arange(len(grouped)) * k
        worst = grouped.argmin(1) + torch.arange(len(grouped)) * k
        valid = (grouped.max(1).values - grouped.min(1).values) >= cfg.min_reward_gap
        stand_in = best[:1], worst[:1]  # the pair a process with no pairs left trains at zero weight (FSDP)
        best, worst = best[valid], worst[valid]

        # 3. shared noise and t for winner and loser; conditional predictions (no CFG mixing) against
        # the reference, accumulated; t logit-normal over the editor's training schedule
        rng = torch.Generator().manual_seed(self.sample_seeds(step, 1)[0] + 104729)
        table = self.timestep_table()
        stats: dict[str, list[torch.Tensor]] = {"loss": [], "accuracy": [], "d_theta": [], "d_ref": []}
        n_pairs = len(best)
        all_pairs = self.global_count(n_pairs)
        pair_batch = max(1, cfg.batch_size // 2)
        for lo in range(0, self.forward_rounds(n_pairs), pair_batch):
            w, l = best[lo : lo + pair_batch], worst[lo : lo + pair_batch]
            weight = len(w)
            if not weight:  # under FSDP: another process has more pairs, and every forward is a collective
                w, l = stand_in
            c = self.conditional(cond.select(torch.cat([w, l])))
            x0_pair = torch.cat([x0[w], x0[l]])
            for _ in range(cfg.timesteps_per_pair):
                t = logit_normal_timesteps(table, len(w), rng)
                noise = torch.randn(x0[w].shape, generator=rng).to(x0.device)
                t2, noise2 = t.repeat(2).to(x0.device), noise.repeat(2, 1, 1)
                x_t = (1 - t2[:, None, None]) * x0_pair + t2[:, None, None] * noise2
                target = noise2 - x0_pair
                with torch.no_grad(), self.reference():
                    v_ref = self.editor.velocity(x_t, t2, c)
                v = self.editor.velocity(x_t, t2, c)
                m = len(w)
                loss, st = flow_dpo_loss(v[:m], v[m:], v_ref[:m], v_ref[m:], target[:m], target[m:], cfg.beta)
                (loss * self.loss_weight(weight, all_pairs) / cfg.timesteps_per_pair).backward()
                if weight:
                    stats["loss"].append(loss.detach().expand(m).cpu())
                    for key in ("accuracy", "d_theta", "d_ref"):
                        stats[key].append(st[key].cpu())
        grad_norm = self.optimizer_step()
        if cfg.ref_update_every and (step + 1) % cfg.ref_update_every == 0:
            self.ref_state = lora_state(self.transformer)

        all_rewards = self.gather(rewards)
        cat = {key: torch.cat(v) if v else torch.zeros(1) for key, v in stats.items()}
        return {
            "reward_mean": float(all_rewards.mean()),
            "reward_std": float(all_rewards.std(unbiased=False)),
            "group_reward_std": float(all_rewards.view(-1, k).std(1, unbiased=False).mean()),  # what the pairs can tell apart
            "pairs": all_pairs,
            "reward_margin": float((rewards[best] - rewards[worst]).mean()) if n_pairs else 0.0,
            "dpo_loss": float(cat["loss"].mean()),
            "dpo_accuracy": float(cat["accuracy"].mean()),
            "d_theta_minus_ref": float((cat["d_theta"] - cat["d_ref"]).mean()),
            "grad_norm": grad_norm,
            "images": n * self.world_size * (step + 1),
            **components,
        }
