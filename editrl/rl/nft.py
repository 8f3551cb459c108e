"""DiffusionNFT (forward-process RL, likelihood-free) for editors, the whole algorithm in ``NFTTrainer.iteration``.

Per iteration: k deterministic samples per (source, instruction) from the *old* policy (a slowly
updated copy of the LoRA; any sampler works, only the clean latents are used), scored by the
reward; group-normalised advantages A become optimality probabilities ``r = clip(A / c / 2 + 0.5, 0, 1)``.
Each clean latent x0 is re-noised at timesteps of the sampling schedule, ``x_t = (1 - t) x0 + t eps``,
and the current velocity v_theta and the old one v_old define two implicit policies

    v_pos = beta v_theta + (1 - beta) v_old          v_neg = (1 + beta) v_old - beta v_theta

whose x0 predictions ``x_t - t v`` are pulled to x0 with weights r and 1 - r:

    loss = c * mean( r ||x0(v_pos) - x0||^2 / (beta w_pos) + (1 - r) ||x0(v_neg) - x0||^2 / (beta w_neg) )
           + kl_beta * mean ||v_theta - v_ref||^2

(w = the detached mean absolute x0 error of each sample, c = the advantage clip, v_ref = LoRA off).
Predictions are conditional (no CFG mixing): NFT trains CFG-free. After each iteration the old
policy moves towards the current one: ``old = d old + (1 - d) theta`` with
``d = min(old_decay_rate * max(0, updates - old_decay_delay), old_decay_max)``.
Facts from NVlabs/DiffusionNFT (scripts/train_nft_sd3.py, config/nft.py) and the paper.
"""

from __future__ import annotations

import torch

from .config import NFTConfig
from .lora import adapter_disabled, lora_state, swapped_lora
from .trainer import RLTrainer


def optimality(advantages: torch.Tensor, clip: float) -> torch.Tensor:
    """DiffusionNFT's optimality probability ``r = clip(clip(A, -c, c) / c / 2 + 0.5, 0, 1)``."""
    return (advantages.clamp(-clip, clip) / clip / 2 + 0.5).clamp(0, 1)


def nft_loss(
    v: torch.Tensor, v_old: torch.Tensor, x_t: torch.Tensor, x0: torch.Tensor, t: torch.Tensor, r: torch.Tensor,
    beta: float, clip: float, v_ref: torch.Tensor | None = None, kl_beta: float = 0.0,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The DiffusionNFT loss of a batch (B, ...) at flow times ``t`` (B,) with optimality ``r`` (B,).

    Returns the mean loss and detached per-sample terms (``positive``, ``negative``, ``kl``).
    """
    dims = tuple(range(1, x0.ndim))
    t = t.float().reshape(-1, *([1] * (x0.ndim - 1)))
    v, v_old, x_t, x0 = v.float(), v_old.float().detach(), x_t.float(), x0.float()

    def weighted_error(velocity: torch.Tensor) -> torch.Tensor:
        pred = x_t - t * velocity
        with torch.no_grad():  # adaptive weight: the sample's mean absolute x0 error, not differentiated
            weight = (pred.double() - x0.double()).abs().mean(dim=dims, keepdim=True).clamp(min=1e-5).float()
        return ((pred - x0) ** 2 / weight).mean(dim=dims)

    positive = weighted_error(beta * v + (1 - beta) * v_old)
    negative = weighted_error((1 + beta) * v_old - beta * v)
    per_sample = clip * (r * positive / beta + (1 - r) * negative / beta)
    kl = ((v - v_ref.float()) ** 2).mean(dim=dims) if v_ref is not None else torch.zeros_like(per_sample)
    loss = per_sample.mean() + kl_beta * kl.mean()
    return loss, {"positive": positive.detach(), "negative": negative.detach(), "kl": kl.detach()}


class NFTTrainer(RLTrainer):
    """DiffusionNFT with LoRA on any editor adapter; see the module docstring and ``NFTConfig``."""

    config: NFTConfig

    def __init__(self, config: NFTConfig, **kwargs):
        super().__init__(config, **kwargs)
        self.old_state = lora_state(self.transformer)
        self.updates = 0

    def extra_state(self) -> dict:
        return {"old_state": self.old_state, "updates": self.updates}

    def load_extra_state(self, state: dict) -> None:
        self.old_state, self.updates = state["old_state"], int(state["updates"])

    def old_decay(self) -> float:
        cfg = self.config
        return min(cfg.old_decay_rate * max(0, self.updates - cfg.old_decay_delay), cfg.old_decay_max)

    def iteration(self, step: int) -> dict[str, float]:
        cfg = self.config
        # 1. deterministic rollouts of the old policy: only the clean latents are kept
        cond = self.step_groups(step)
        n = len(cond)
        sigmas = self.editor.sigmas(cfg.num_steps)
        self.transformer.eval()
        scoring = self.scoring(cond)  # each batch is scored while the next is sampled (overlap_reward)
        with swapped_lora(self.transformer, self.old_state):
            x0, _ = self.sample(cond, self.sample_seeds(step, n), sigmas, cfg.rollout_noise_level, on_batch=scoring.submit)

        # 2. rewards -> advantages (global statistics) -> optimality probabilities
        rewards, components = self.score(scoring)
        all_rewards, adv, mine = self.group_advantages(rewards)
        r, keep = optimality(adv.values[mine], cfg.advantage_clip), adv.keep[mine]

        # 3. each sample at a random subset of the schedule's timesteps, fresh noise, CFG-free predictions
        times = sigmas[:-1]
        n_train = max(1, int(cfg.timestep_fraction * len(times)))
        rng = self.step_rng(step, "timesteps")
        order = torch.as_tensor(rng.permuted(torch.arange(len(times)).repeat(n, 1).numpy(), axis=1))[:, :n_train]
        generator = torch.Generator().manual_seed(self.sample_seeds(step, 1)[0] + 15485863)
        stats: dict[str, list[torch.Tensor]] = {"positive": [], "negative": [], "kl": []}
        grad_norms = []
        for minibatch in self.minibatches(n) if adv.keep.any() else []:
            kept = self.global_count(sum(int(keep[rows].sum()) for rows in minibatch))
            for rows in minibatch:
                if not self.runs_forward(adv.keep, rows):
                    continue
                kept_rows = [i for i in rows if keep[i]]
                # a process with none of them kept (under FSDP only) runs the forwards the others run, at zero weight
                rows, weight = (kept_rows, len(kept_rows)) if kept_rows else (rows, 0)
                c = self.conditional(cond.select(rows))
                for j in range(n_train):
                    t = times[order[rows, j]].to(x0.device)
                    noise = torch.randn(x0[rows].shape, generator=generator).to(x0.device)
                    x_t = (1 - t[:, None, None]) * x0[rows] + t[:, None, None] * noise
                    with torch.no_grad(), swapped_lora(self.transformer, self.old_state):
                        v_old = self.editor.velocity(x_t, t, c)
                    v_ref = None
                    if cfg.kl_beta > 0:
                        with torch.no_grad(), adapter_disabled(self.transformer):
                            v_ref = self.editor.velocity(x_t, t, c)
                    v = self.editor.velocity(x_t, t, c)
                    loss, st = nft_loss(v, v_old, x_t, x0[rows], t, r[rows].to(x0.device), cfg.beta, cfg.advantage_clip,
                                        v_ref, cfg.kl_beta)
                    (loss * self.loss_weight(weight, kept) / n_train).backward()
                    for key, value in st.items() if weight else ():
                        stats[key].append(value.cpu())
            grad_norms.append(self.optimizer_step())
            self.updates += 1

        # 4. the old policy follows the current one
        decay = self.old_decay()
        current = lora_state(self.transformer)
        self.old_state = {k: decay * v + (1 - decay) * current[k] for k, v in self.old_state.items()}

        cat = {key: torch.cat(v) if v else torch.zeros(1) for key, v in stats.items()}
        return {
            "reward_mean": float(all_rewards.mean()),
            "reward_std": float(all_rewards.std(unbiased=False)),
            "groups_kept": float(adv.keep.float().mean()),
            "group_reward_std": float(adv.group_std.mean()),  # within-group spread: the signal NFT has
            "positive_loss": float(cat["positive"].mean()),
            "negative_loss": float(cat["negative"].mean()),
            "kl": float(cat["kl"].mean()),
            "old_decay": decay,
            "grad_norm": max(grad_norms, default=0.0),
            "images": n * self.world_size * (step + 1),
            **components,
        }
