"""Training the world's tiny FLUX.1-Kontext editor by rectified flow matching on world triples.

Two stages, both on (source, instruction, target) triples of the world's train split:

1. **VAE.** A random VAE is a poor autoencoder, and the editor can never be better than its decoder,
   so the tiny ``AutoencoderKL`` (scale factor 4: a 64 px image is 16x16 latents, 8x8 packed tokens)
   is first trained on world images as a plain autoencoder of the posterior mean (MSE + a tiny KL that
   keeps the latent scale bounded), on random crops (convs are
   translation-equivariant, crops are 4x cheaper). Its ``shift_factor``/``scaling_factor`` are then
   set to the latent mean and 1/std, as FLUX's are, so the flow sees unit-scale latents.
2. **Transformer.** With the VAE and the (random, frozen) text encoders fixed, the transformer learns
   the velocity of the straight path from the target latents x0 to noise: x_s = (1 - s) x0 + s noise,
   v = noise - x0, loss = MSE(editor.velocity(x_s, s, cond), v), with s logit-normal (or uniform) and
   the source as Kontext's in-context condition. The loop uses the same ``FluxKontextEditor`` adapter
   that best-of-N and RL sample from, so training and inference can never disagree.

The T5 tokenizer is word-level over the world's closed vocabulary by default: a byte-level one spreads
an instruction over ~100 tokens that a tiny transformer must learn to read letter by letter. With one
token per word (at most 21) the same small transformer reached an oracle score of 0.18 in 12 CPU
minutes, where byte-level training had reached 0.10 in 27, and each step is 3x faster.

Checkpoints (both stages, optimiser, schedule and RNG state) go to ``out/checkpoints/step-N/`` (N counts
the VAE steps, then the transformer's) every ``checkpoint_every`` steps through the shared trainer shell
(``editrl.runs``: written atomically, the newest kept), and a restarted run resumes from them. The learning
rates follow ``transformers.get_scheduler("cosine_with_min_lr")`` (linear warm-up from 0, cosine decay to 10%);
the shipped editor was trained with a hand-written ramp that started the warm-up at peak/warmup_steps instead
of 0 and kept its single checkpoint in ``out/checkpoint.pt``, which this version no longer reads. The result is a ``FluxKontextPipeline.save_pretrained``
folder (safetensors) that ``load_editor("world", model=...)`` loads.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ..config import Config, config_field
from ..errors import EditRLError
from ..runs import JsonlLog, load_checkpoint, save_checkpoint
from .examples import make_examples

logger = logging.getLogger(__name__)

KEEP_CHECKPOINTS = 1  # a checkpoint holds two models and two optimisers: keep only the newest

SETTINGS_FILE = "editrl_editor.json"  # read by editrl.sampler.editors.load_editor


@dataclass
class EditorTrainingConfig(Config):
    """Every key of ``editrl world train-editor --config``; the defaults are the shipped editor's."""

    seed: int = config_field(0, "Seed of the model initialisation, data, crops, noise and timesteps.")
    init: str | None = config_field(None, "An editor folder (e.g. editrl/world/models/editor) to continue: its VAE, "
                                          "transformer and tokenizers start the run, the VAE stage is skipped (set vae_steps: 0) "
                                          "and the architecture keys must match it. None = random weights.")
    resolution: int = config_field(64, "Image side in pixels (a multiple of 8 with the scale-factor-4 VAE).")
    # --- architecture
    num_layers: int = config_field(2, "Double-stream (text | image) transformer blocks.")
    num_single_layers: int = config_field(2, "Single-stream transformer blocks.")
    num_attention_heads: int = config_field(4, "Attention heads; hidden size = heads x head dim.")
    attention_head_dim: int = config_field(32, "Attention head dimension (a multiple of 4 for the 3-axis RoPE).")
    latent_channels: int = config_field(16, "VAE latent channels (transformer in_channels = 4 x this after 2x2 packing).")
    vae_channels: list[int] = config_field([16, 32, 32], "VAE block widths; len - 1 downsamplings (3 blocks: scale factor 4).")
    # --- stage 1: VAE
    vae_steps: int = config_field(5000, "VAE reconstruction steps (0 keeps the random VAE).")
    vae_batch_size: int = config_field(16, "Images per VAE step.")
    vae_crop: int = config_field(32, "Side of the random crops the VAE trains on (0 = whole images).")
    vae_learning_rate: float = config_field(6e-3, "Peak AdamW learning rate of the VAE (5% warm-up, cosine decay).")
    vae_foreground_weight: float = config_field(5.0, "Extra loss weight of object pixels (objects cover ~8% of an image; "
                                        "without it the VAE learns backgrounds first and object colours very late).")
    vae_l1_weight: float = config_field(1.0, "Weight of the L1 term added to the MSE (sharper flat colours).")
    vae_kl_weight: float = config_field(1e-6, "Weight of the KL term (keeps the latent scale bounded).")
    # --- stage 2: transformer
    train_examples: int = config_field(6000, "World train examples the transformer sees (encoded once, then sampled).")
    steps: int = config_field(9000, "Transformer optimisation steps.")
    batch_size: int = config_field(16, "Triples per transformer step.")
    learning_rate: float = config_field(1e-3, "Peak AdamW learning rate of the transformer.")
    weight_decay: float = config_field(0.0, "AdamW weight decay of the transformer.")
    warmup_steps: int = config_field(100, "Linear warm-up steps, then cosine decay to 10% of the peak.")
    max_grad_norm: float = config_field(1.0, "Gradient clipping norm (0 = off).")
    timesteps: str = config_field("logit-normal", "Flow-time sampling: logit-normal (SD3 / FLUX training) or uniform.")
    text_tokenizer: str = config_field("words", "T5 tokenizer: bytes (one token per byte, any text) or words (the world's closed "
                                       "vocabulary, one token per word: instructions are at most 21 tokens instead of ~100).")
    max_sequence_length: int = config_field(24, "T5 text length (padded) of most training steps; world instructions are at most "
                                             "21 words (under 100 bytes).")
    long_text_probability: float = config_field(0.0, "Share of steps padded to long_text_length instead, so the editor also works "
                                        "when loaded with Kontext's default length (FLUX has no text attention mask).")
    long_text_length: int = config_field(512, "The long text length (FluxKontextEditor's default).")
    long_text_examples: int = config_field(300, "How many of the train examples are also encoded at long_text_length.")
    guidance: float = config_field(2.5, "Guidance value fed to the guidance embedding in training and saved as the default.")
    sample_steps: int = config_field(8, "Default Euler steps of the saved editor.")
    # --- bookkeeping
    checkpoint_every: int = config_field(200, "Checkpoint every N steps of either stage (and at the end).")
    max_minutes: float = config_field(0.0, "Wall-clock budget for both stages; when spent, training stops early and saves (0 = none).")

    def validate(self) -> None:
        super().validate()
        if self.init is not None and self.vae_steps:
            raise EditRLError(f"config key vae_steps: expected 0 with init={self.init!r} (the init's VAE is kept), got {self.vae_steps}")
        if self.init is not None and not (Path(self.init) / "model_index.json").is_file():
            raise EditRLError(f"config key init: {self.init!r} is not an editor folder (no model_index.json)")
        self.require_positive("resolution", "num_layers", "num_attention_heads", "attention_head_dim", "latent_channels",
                              "train_examples", "steps", "batch_size", "vae_batch_size", "sample_steps", "checkpoint_every")
        if self.attention_head_dim % 4:
            raise EditRLError(f"config key attention_head_dim: expected a multiple of 4, got {self.attention_head_dim}")
        factor = 2 ** (len(self.vae_channels) - 1)
        if not self.vae_channels or self.resolution % (2 * factor) or (self.vae_crop and self.vae_crop % factor):
            raise EditRLError(
                f"config key vae_channels/resolution/vae_crop: resolution must be a multiple of {2 * factor} and vae_crop of {factor}"
            )
        if self.text_tokenizer not in ("bytes", "words"):
            raise EditRLError(f"config key text_tokenizer: expected bytes or words, got {self.text_tokenizer!r}")
        if self.timesteps not in ("logit-normal", "uniform"):
            raise EditRLError(f"config key timesteps: expected logit-normal or uniform, got {self.timesteps!r}")


def build_pipeline(config: EditorTrainingConfig):
    """A fresh FluxKontextPipeline: tiny random text encoders (frozen), the world-sized VAE and transformer
    (or, with ``init``, the pipeline of that editor folder, checked against the architecture keys)."""
    from diffusers import AutoencoderKL, FluxKontextPipeline, FluxTransformer2DModel

    from ..tiny import tiny_flux_kontext

    if config.init is not None:
        return _init_pipeline(config)

    base = tiny_flux_kontext(seed=config.seed)
    torch.manual_seed(config.seed)
    head = config.attention_head_dim
    transformer = FluxTransformer2DModel(
        patch_size=1, in_channels=4 * config.latent_channels, num_layers=config.num_layers,
        num_single_layers=config.num_single_layers, attention_head_dim=head, num_attention_heads=config.num_attention_heads,
        joint_attention_dim=base.text_encoder_2.config.d_model, pooled_projection_dim=base.text_encoder.config.projection_dim,
        axes_dims_rope=[head // 4, head // 4, head // 2], guidance_embeds=True,
    )
    blocks = len(config.vae_channels)
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=config.latent_channels, block_out_channels=tuple(config.vae_channels),
        down_block_types=("DownEncoderBlock2D",) * blocks, up_block_types=("UpDecoderBlock2D",) * blocks,
        layers_per_block=1, norm_num_groups=8, sample_size=config.resolution, use_quant_conv=False,
        use_post_quant_conv=False, shift_factor=0.0, scaling_factor=1.0,
    )
    components = {**base.components, "transformer": transformer.eval(), "vae": vae.eval()}
    if config.text_tokenizer == "words":
        from ..tiny import tiny_t5_tokenizer
        from .instructions import vocabulary

        components["tokenizer_2"] = tiny_t5_tokenizer(vocabulary(), config.max_sequence_length)
    return FluxKontextPipeline(**components)


def _init_pipeline(config: EditorTrainingConfig):
    """The editor pipeline in ``config.init`` (loaded as ``load_editor`` loads it: its saved settings and errors); an
    architecture key that differs from it is an error naming the key."""
    from ..sampler.editors import load_editor

    editor = load_editor("world", model=str(config.init), device="cpu", dtype=torch.float32)
    pipe = editor.pipe
    found = {"resolution": editor.resolution, "num_layers": pipe.transformer.config.num_layers,
             "num_single_layers": pipe.transformer.config.num_single_layers,
             "num_attention_heads": pipe.transformer.config.num_attention_heads,
             "attention_head_dim": pipe.transformer.config.attention_head_dim,
             "latent_channels": pipe.vae.config.latent_channels, "vae_channels": list(pipe.vae.config.block_out_channels)}
    differ = [f"{key}={getattr(config, key)} (init has {value})" for key, value in found.items() if getattr(config, key) != value]
    if differ:
        raise EditRLError(f"init={config.init}: config keys differ from the editor there: {', '.join(differ)}")
    pipe.transformer.eval()
    pipe.vae.eval()
    return pipe


def _images(examples, resolution: int) -> torch.Tensor:
    """(2N, 3, H, W) in [-1, 1]: every source and target."""
    arrays = [np.asarray(img, dtype=np.float32) for e in examples for img in (e.source, e.target)]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2) / 127.5 - 1.0


def _scheduler(optimizer, total: int, warmup: int):
    """Linear warm-up, then cosine decay to 10% of the peak at ``total``."""
    from transformers import get_scheduler

    return get_scheduler("cosine_with_min_lr", optimizer, num_warmup_steps=warmup, num_training_steps=total,
                         scheduler_specific_kwargs={"min_lr_rate": 0.1})


class EditorTrainer:
    """Runs both stages into ``out``: ``checkpoints/``, ``log.jsonl``, and the final ``model/`` folder."""

    def __init__(self, config: EditorTrainingConfig, out: str | Path):
        config.validate()
        self.config, self.out = config, Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.pipe = build_pipeline(config)
        self.state = {"stage": "vae", "step": 0, "elapsed": 0.0}
        self.vae_opt = torch.optim.AdamW(self.pipe.vae.parameters(), lr=config.vae_learning_rate)
        self.opt = torch.optim.AdamW(self.pipe.transformer.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
        self.vae_scheduler = _scheduler(self.vae_opt, config.vae_steps, max(config.vae_steps // 20, 1))
        self.scheduler = _scheduler(self.opt, config.steps, config.warmup_steps)
        self.rng = torch.Generator().manual_seed(config.seed)
        self.log = JsonlLog(self.out / "log.jsonl").write
        self._resume()
        self._start = time.monotonic() - self.state["elapsed"]

    # -- checkpoints -------------------------------------------------------------------------------
    def _done(self, record: dict) -> int:
        """Steps of both stages done at ``record`` (a state or a log record): the checkpoint's and the log's order."""
        return record["step"] + (self.config.vae_steps if record["stage"] != "vae" else 0)

    def _save(self) -> None:
        self.state["elapsed"] = time.monotonic() - self._start
        save_checkpoint(self.out, self._done(self.state), {
            "state": self.state, "vae": self.pipe.vae.state_dict(),
            "vae_config": {k: self.pipe.vae.config[k] for k in ("shift_factor", "scaling_factor")},
            "transformer": self.pipe.transformer.state_dict(), "vae_opt": self.vae_opt.state_dict(),
            "opt": self.opt.state_dict(), "vae_scheduler": self.vae_scheduler.state_dict(),
            "scheduler": self.scheduler.state_dict(), "rng": self.rng.get_state(),
        }, self.config, KEEP_CHECKPOINTS)

    def _resume(self) -> None:
        found = load_checkpoint(self.out, self.config, ("max_minutes",))
        if found is None:
            return
        saved, folder = found
        self.pipe.vae.load_state_dict(saved["vae"])
        self.pipe.vae.register_to_config(**saved["vae_config"])
        self.pipe.transformer.load_state_dict(saved["transformer"])
        for name in ("vae_opt", "opt", "vae_scheduler", "scheduler"):
            getattr(self, name).load_state_dict(saved[name])
        self.rng.set_state(saved["rng"])
        self.state = saved["state"]
        JsonlLog(self.out / "log.jsonl").truncate(self._done(self.state), self._done)  # later steps are recomputed
        logger.info("resumed from %s at stage %s step %d", folder, self.state["stage"], self.state["step"])

    def _step_done(self, bar, metric: str, value: float) -> None:
        """Count the step, show and log its metric every 20 steps, checkpoint every ``checkpoint_every``."""
        self.state["step"] += 1
        bar.update()
        bar.set_postfix({metric: f"{value:.4f}"})
        if self.state["step"] % 20 == 0:
            self.log({"stage": self.state["stage"], "step": self.state["step"], metric: value})
        if self.state["step"] % self.config.checkpoint_every == 0:
            self._save()

    def _out_of_time(self) -> bool:
        budget = self.config.max_minutes * 60
        return bool(budget) and time.monotonic() - self._start > budget

    # -- stage 1 ----------------------------------------------------------------------------------
    def train_vae(self) -> None:
        cfg, vae = self.config, self.pipe.vae
        images = _images(make_examples(max(cfg.train_examples // 4, 64), cfg.seed, "train", cfg.resolution), cfg.resolution)
        # object pixels differ from the top-left pixel, which is always background in the world
        weights = 1.0 + cfg.vae_foreground_weight * (images != images[:, :, :1, :1]).any(1, keepdim=True).float()
        vae.train()
        bar = tqdm(total=cfg.vae_steps, initial=self.state["step"], desc="vae")
        while self.state["step"] < cfg.vae_steps and not self._out_of_time():
            idx = torch.randint(len(images), (cfg.vae_batch_size,), generator=self.rng)
            batch, weight = images[idx], weights[idx]
            if cfg.vae_crop and cfg.vae_crop < cfg.resolution:
                y, x = torch.randint(cfg.resolution - cfg.vae_crop + 1, (2,), generator=self.rng).tolist()
                batch = batch[:, :, y : y + cfg.vae_crop, x : x + cfg.vae_crop]
                weight = weight[:, :, y : y + cfg.vae_crop, x : x + cfg.vae_crop]
            posterior = vae.encode(batch).latent_dist
            # decode the mean: the editor only ever uses the posterior mode, and sampling slows learning a lot
            recon = vae.decode(posterior.mean).sample
            error = recon - batch
            mse = error.pow(2).mean()
            loss = (weight * (error.pow(2) + cfg.vae_l1_weight * error.abs())).mean() + cfg.vae_kl_weight * posterior.kl().mean()
            self.vae_opt.zero_grad()
            loss.backward()
            self.vae_opt.step()
            self.vae_scheduler.step()
            self._step_done(bar, "mse", mse.item())
        bar.close()
        vae.eval()
        with torch.no_grad():  # FLUX-style normalisation: unit-scale latents for the flow
            latents = torch.cat([vae.encode(images[i : i + 64]).latent_dist.mode() for i in range(0, min(len(images), 512), 64)])
        vae.register_to_config(shift_factor=float(latents.mean()), scaling_factor=float(1.0 / latents.std()))
        self.state.update(stage="transformer", step=0)
        self._save()

    # -- stage 2 ----------------------------------------------------------------------------------
    def editor(self, max_sequence_length: int | None = None):
        from ..sampler.editors import FluxKontextEditor

        cfg = self.config
        return FluxKontextEditor(
            self.pipe, resolution=cfg.resolution, default_steps=cfg.sample_steps, default_guidance=cfg.guidance,
            max_sequence_length=max_sequence_length or cfg.max_sequence_length,
        )

    @staticmethod
    def _encode(editor, examples, targets: bool):
        """Conditions of (source, instruction) pairs, and optionally the packed target latents x0, computed once."""
        parts, x0 = [], []
        for lo in tqdm(range(0, len(examples), 64), desc="encode", leave=False):
            chunk = examples[lo : lo + 64]
            texts = [e.instruction for e in chunk]
            parts.append(editor.encode([e.source for e in chunk], texts))
            if targets:
                x0.append(editor.encode([e.target for e in chunk], texts).batched["image_latents"].float())
        cond = parts[0]
        cond.batched = {k: torch.cat([p.batched[k] for p in parts]) for k in cond.batched}
        cond.instructions = [e.instruction for e in examples]
        cond.sources = [e.source for e in examples]
        return cond, (torch.cat(x0) if targets else None)

    def _flow_times(self, n: int) -> torch.Tensor:
        if self.config.timesteps == "uniform":
            return torch.rand(n, generator=self.rng)
        return torch.sigmoid(torch.randn(n, generator=self.rng))

    def train_transformer(self) -> None:
        cfg = self.config
        examples = make_examples(cfg.train_examples, cfg.seed, "train", cfg.resolution)
        editor, long_editor = self.editor(), self.editor(cfg.long_text_length)
        cond, x0_all = self._encode(editor, examples, targets=True)
        n_long = min(cfg.long_text_examples, len(examples)) if cfg.long_text_probability > 0 else 0
        long_cond = self._encode(long_editor, examples[:n_long], targets=False)[0] if n_long else None
        transformer = self.pipe.transformer
        transformer.train()
        bar = tqdm(total=cfg.steps, initial=self.state["step"], desc="editor")
        while self.state["step"] < cfg.steps and not self._out_of_time():
            long = n_long > 0 and torch.rand((), generator=self.rng).item() < cfg.long_text_probability
            source = long_cond if long else cond
            idx = torch.randint(n_long if long else len(x0_all), (cfg.batch_size,), generator=self.rng)
            x0 = x0_all[idx]
            noise = torch.randn(x0.shape, generator=self.rng)
            s = self._flow_times(cfg.batch_size)
            xs = (1 - s[:, None, None]) * x0 + s[:, None, None] * noise
            loss = torch.nn.functional.mse_loss(editor.velocity(xs, s, source.select(idx)), noise - x0)
            if not torch.isfinite(loss):
                raise EditRLError(f"editor training: loss became {loss.item()} at step {self.state['step']}; lower learning_rate")
            self.opt.zero_grad()
            loss.backward()
            if cfg.max_grad_norm:
                torch.nn.utils.clip_grad_norm_(transformer.parameters(), cfg.max_grad_norm)
            self.opt.step()
            self.scheduler.step()
            self._step_done(bar, "loss", loss.item())
        bar.close()
        transformer.eval()
        if self.state["step"] >= cfg.steps:
            self.state["stage"] = "done"
        self._save()

    # -- all --------------------------------------------------------------------------------------
    def train(self) -> Path:
        """Both stages (resuming where a checkpoint left off); returns the saved pipeline folder."""
        torch.manual_seed(self.config.seed)
        random.seed(self.config.seed)
        if self.state["stage"] == "vae":
            if self.config.vae_steps:  # (0 with init: the init's VAE, latent normalisation included, is kept)
                self.train_vae()
            else:
                self.state.update(stage="transformer", step=0)
        if self.state["stage"] == "transformer":
            self.train_transformer()
        return self.save(self.out / "model")

    def save(self, folder: Path) -> Path:
        cfg = self.config
        self.pipe.save_pretrained(folder, safe_serialization=True)
        settings = {
            "resolution": cfg.resolution, "default_steps": cfg.sample_steps, "default_guidance": cfg.guidance,
            "max_sequence_length": cfg.max_sequence_length,
        }
        (folder / SETTINGS_FILE).write_text(json.dumps(settings, indent=2) + "\n")
        record = {
            "config": asdict(cfg), "stage_reached": self.state["stage"],
            "transformer_steps": self.state["step"] if self.state["stage"] != "vae" else 0,
            "wall_minutes": round((time.monotonic() - self._start) / 60, 2),
            "machine": f"{platform.machine()} {platform.processor() or ''} {os.cpu_count()} cores, torch {torch.__version__}".strip(),
        }
        (self.out / "training.json").write_text(json.dumps(record, indent=2) + "\n")
        logger.info("saved the world editor to %s", folder)
        return folder


def training_card(run: str | Path, figures: dict | None = None) -> str:
    """TRAINING.md text for a finished run folder: config, seed, steps reached, wall time, machine, figures."""
    import yaml

    record = json.loads((Path(run) / "training.json").read_text())
    start = (f"continued from the editor in `{record['config']['init']}` (`init:`); " if record["config"].get("init")
             else "")
    lines = [
        "# How the world editor was trained", "",
        f"Reproduce with `editrl world train-editor --config <this config> --out <run>` (with `OMP_NUM_THREADS=1`), "
        f"{start}then copy `<run>/model/` here.", "",
        f"- stage reached: {record['stage_reached']} (seed {record['config']['seed']}, "
        f"{record['config']['vae_steps']} VAE steps, {record.get('transformer_steps', record['config']['steps'])} transformer steps)",
        f"- wall time: {record['wall_minutes']} min on {record['machine']}", "",
        "## Config", "", "```yaml", yaml.safe_dump(record["config"], sort_keys=False).strip(), "```",
    ]
    if figures:
        lines += ["", "## Oracle figures (held-out world test split)", "", "```json", json.dumps(figures, indent=2), "```"]
    return "\n".join(lines) + "\n"


def evaluate_editor(editor, n: int = 50, k: int = 8, seed: int = 0, num_steps: int | None = None) -> dict:
    """Oracle figures of ``editor`` on ``n`` held-out world examples with ``k`` samples each.

    Returns the mean oracle score (mean of the two dimensions) of one sample, of the oracle's best
    of ``k`` (an upper bound for best-of-N with a perfect reward) and of the worst, with the mean
    instruction following / visual quality of the single sample and the share of examples where at
    least one of the ``k`` samples follows the instruction (oracle IF >= 0.85); beside them, measures that
    depend on no scoring rule: the share of single samples that are exactly right (parsed scene = target
    scene) or lost an object that should be there, and the share of examples with an exactly right sample
    among the ``k``.
    """
    from .oracle import Oracle

    oracle = Oracle()
    examples = make_examples(n, seed, "test", editor.resolution)
    scores, ifs, vqs, exact, lost = [], [], [], [], []
    for i, e in enumerate(tqdm(examples, desc="evaluate", leave=False)):
        result = editor.sample([e.source], [e.instruction], seeds=[seed * 1000 + i * k + j for j in range(k)], num_steps=num_steps)
        out = oracle.score([e.source] * k, [e.instruction] * k, result.images)
        scores.append(out.score.numpy())
        ifs.append(out.mu[:, 0].numpy())
        vqs.append(out.mu[:, 1].numpy())
        measures = oracle.measures([e.source] * k, [e.instruction] * k, result.images)
        exact.append(measures["exact_edit"].numpy())
        lost.append(measures["lost_object"].numpy())
    scores, ifs, vqs, exact, lost = np.stack(scores), np.stack(ifs), np.stack(vqs), np.stack(exact), np.stack(lost)
    return {
        "examples": n, "k": k, "steps": num_steps or editor.default_steps,
        "oracle_1_sample": round(float(scores[:, 0].mean()), 4),
        f"oracle_best_of_{k}": round(float(scores.max(1).mean()), 4),
        f"oracle_worst_of_{k}": round(float(scores.min(1).mean()), 4),
        "if_1_sample": round(float(ifs[:, 0].mean()), 4),
        "vq_1_sample": round(float(vqs[:, 0].mean()), 4),
        "share_if_ge_0.85_1_sample": round(float((ifs[:, 0] >= 0.85).mean()), 4),
        f"share_if_ge_0.85_any_of_{k}": round(float((ifs >= 0.85).any(1).mean()), 4),
        "exact_edit_1_sample": round(float(exact[:, 0].mean()), 4),
        "lost_object_1_sample": round(float(lost[:, 0].mean()), 4),
        f"exact_edit_any_of_{k}": round(float(exact.any(1).mean()), 4),
    }
