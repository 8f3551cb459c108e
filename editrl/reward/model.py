"""EditReward: a Qwen2.5-VL or Qwen3-VL backbone with one Gaussian head per editing dimension.

The module's state dict has exactly the official layout (``model.*``, ``lm_head.*``,
``rm_heads.head_0.*``, ``rm_heads.head_1.*``) so the released ``model.safetensors`` loads strictly.

Two ways to compute the same scores:

* the official **two-pass** path (``forward``, and ``score(fast=False)``): per dimension, one full
  forward over [system, source, edit, dimension prompt] with the vision tower run again each time;
* the **fast** path (``score``'s default): the vision tower runs once per image, the prefix the two
  dimension prompts share (system prompt, both images, the common start of the prompt text) runs
  once, and both dimension suffixes run batched on a copy of its key/value cache. Causal attention
  makes the prefix states independent of what follows, so the scores are equal up to float rounding.

The official Qwen3-VL path (TIGER-AI-Lab/EditReward's ``qwen3_vl_trainer``) differs from its Qwen2.5-VL one: it
runs the backbone's own forward on ``input_ids`` and pixels, so the positions are Qwen3-VL's 3-D ones and the
deepstack visual features enter the first language layers; a Qwen3-VL EditReward does the same (``positions:
mrope``; two passes always, ``fast`` does not apply). Its images are resized by the base processor's own rule
(factor 32, min/max pixels of its ``size``), not the 200704 pixels the Qwen2.5-VL checkpoints were trained at.
One difference is deliberate: that code hands a batch's messages to ``apply_chat_template`` as one list, which
renders them as a single conversation of B user turns (each item sees the ones before it, and the read-out is
reshaped to one row); every item here is scored alone, its result at batch size 1. Resizing uses PIL bicubic;
a processor that resizes with torchvision (the "fast" one) can differ slightly for images whose size changes.
"""

from __future__ import annotations

import inspect
import logging
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn

from ..config import Config, config_field
from ..errors import EditRLError
from ..images import CONVERSIONS, ImageLike, check_instruction, load_images
from .inputs import ImageBatch, RewardInputBuilder, common_prefix_length, pad_right
from .output import DIMENSIONS, RewardOutput, check_batch_size
from .prompts import resolve_templates
from .vision_attention import packed_vision_attention


def _cache_kwarg(language_model: nn.Module) -> str:
    """The key/value-cache keyword of the language model's forward: recent transformers renamed
    ``past_key_values`` to ``cache`` (the old name still works there, with a FutureWarning)."""
    return "cache" if "cache" in inspect.signature(language_model.forward).parameters else "past_key_values"

logger = logging.getLogger(__name__)

FUSIONS = ("mean", "min", "sum")
HEAD_TYPES = ("multi", "shared")
POSITIONS = ("legacy", "mrope")
READ_AT = {"reward_token": 0, "before_reward_token": 1}  # read_at -> how many tokens before the reward token
STOCK_FORWARD = ("qwen3_vl",)  # backbones the official code runs through their own forward (see the module docstring)
VISION_ATTENTION = ("packed", "stock")


@dataclass
class EditRewardConfig(Config):
    """How an EditReward model reads its inputs and combines its heads (saved with the model)."""

    base_model: str = config_field("Qwen/Qwen2.5-VL-7B-Instruct", "Hugging Face id or folder of the backbone whose "
                                   "config and processor the model uses (the official checkpoints need it: their "
                                   "folder holds only model.safetensors).")
    head_type: str = config_field("multi", "multi: one head per dimension (rm_heads.head_0 instruction following, "
                                  "rm_heads.head_1 visual quality; official); shared: head_0 reads both dimension "
                                  "prompts (the paper's ablation).")
    fusion: str = config_field("mean", "How the per-dimension Gaussians become one score: mean (official configs), "
                               "min (elementwise) or sum (mu0 + mu1, sigma = sqrt(sigma0^2 + sigma1^2)).")
    positions: str = config_field("legacy", "legacy: plain sequential positions on all three M-RoPE axes, what the "
                                  "official Qwen2.5-VL-family checkpoints were trained with; mrope: Qwen's 3-D image positions "
                                  "(the stock forward; required for Qwen3-VL, whose official code uses its stock forward).")
    templates: str | dict = config_field("editreward", "editreward (the official prompts), world (a few words per "
                                         "dimension, for tiny models), world-verify (world, asking instruction following with the "
                                         "world VLM's verify prompt) or {dimension: template with {text_prompt}, suffix: ...}.")
    min_pixels: int = config_field(200704, "Smallest image area of smart_resize (official Qwen2.5-VL: 256 * 28 * 28; Qwen3-VL: "
                                   "the base processor's size.shortest_edge, 65536 for Qwen3-VL-8B).")
    max_pixels: int = config_field(200704, "Largest image area of smart_resize (official Qwen2.5-VL: 256 * 28 * 28; Qwen3-VL: "
                                   "the base processor's size.longest_edge, 16777216 for Qwen3-VL-8B).")
    reward_token: str = config_field("<|Reward|>", "The special token the prompt ends with; the heads read its final "
                                     "hidden state (or the one before it: read_at).")
    read_at: str = config_field("reward_token", "Which final hidden state the heads read: reward_token (official) or "
                                "before_reward_token, the prompt's last token, where a pretrained VLM already predicts "
                                "its answer (a linear probe on the world VLM separates instruction-swapped pairs there at "
                                "~90%, at the untrained reward token at ~66%). A deliberate option for bases whose reward "
                                "token carries nothing yet; the released checkpoints read the reward token.")
    head_hidden_sizes: tuple[int, int] = config_field((1024, 16), "Widths of the two hidden layers of each head (official: 1024, 16).")
    head_dropout: float = config_field(0.05, "Dropout after the first head layer (official: 0.05; inactive in eval mode).")
    vision_attention: str = config_field("packed", "The fast path's vision-tower attention: packed (equal-length windows "
                                         "and images batched into one dense call each, see vision_attention.py) or stock "
                                         "(transformers' own; the two-pass path always uses it, as the official code).")
    image_conversion: str = config_field("official", "How images of other modes become RGB (editrl.images.CONVERSIONS): "
                                         "official = PIL's convert('RGB') as is, no EXIF rotation (released checkpoints "
                                         "score every input exactly as the official release); editrl = EXIF orientation "
                                         "applied, alpha composited on white, 16-bit rescaled (a deliberate option).")

    def __post_init__(self) -> None:
        self.head_hidden_sizes = tuple(int(s) for s in self.head_hidden_sizes)
        super().__post_init__()

    def validate(self) -> None:
        super().validate()
        for name, allowed in (("head_type", HEAD_TYPES), ("fusion", FUSIONS), ("positions", POSITIONS),
                              ("vision_attention", VISION_ATTENTION), ("image_conversion", CONVERSIONS),
                              ("read_at", READ_AT)):
            if getattr(self, name) not in allowed:
                raise EditRLError(f"EditRewardConfig.{name}={getattr(self, name)!r}: expected one of {list(allowed)}")
        if not 0 < self.min_pixels <= self.max_pixels:
            raise EditRLError(f"EditRewardConfig: need 0 < min_pixels <= max_pixels, got {self.min_pixels}, {self.max_pixels}")


def reward_head(hidden_size: int, sizes: tuple[int, int] = (1024, 16), dropout: float = 0.05) -> nn.Sequential:
    """Linear-ReLU-Dropout-Linear-ReLU-Linear to [mu, log_sigma]; state-dict indices .0, .3, .5 as official."""
    return nn.Sequential(
        nn.Linear(hidden_size, sizes[0]), nn.ReLU(), nn.Dropout(dropout),
        nn.Linear(sizes[0], sizes[1]), nn.ReLU(), nn.Linear(sizes[1], 2),
    )


def sequential_positions(mask: torch.Tensor) -> torch.Tensor:
    """(3, N, L) rotary positions 0, 1, 2, ... along each right-padded row, the same on all three rope axes:
    the official code's ("legacy") positions, images included."""
    return (mask.long().cumsum(-1) - 1).clamp(min=0).unsqueeze(0).expand(3, -1, -1)


def fuse(per_dim: torch.Tensor, fusion: str = "mean") -> torch.Tensor:
    """(B, D, 2) [mu, log_sigma] per dimension -> (B, 2) fused [mu, log_sigma] (official formulas)."""
    mu, log_sigma = per_dim[..., 0], per_dim[..., 1]
    if fusion == "mean":
        return torch.stack([mu.mean(-1), log_sigma.mean(-1)], -1)
    if fusion == "min":
        return torch.stack([mu.min(-1).values, log_sigma.min(-1).values], -1)
    if fusion == "sum":
        return torch.stack([mu.sum(-1), 0.5 * torch.logsumexp(2 * log_sigma, -1)], -1)  # log sqrt(sum sigma^2)
    raise EditRLError(f"fusion={fusion!r}: expected one of {list(FUSIONS)}")


class EditReward(nn.Module):
    """A reward model over (source image, instruction, edited image) with a Gaussian per dimension.

    Build it with :meth:`from_backbone` (an in-memory Qwen2_5_VLForConditionalGeneration or
    Qwen3VLForConditionalGeneration) or :meth:`from_pretrained` (our folders or the official release).
    """

    dimensions = DIMENSIONS

    def __init__(self, backbone, processor, config: EditRewardConfig):
        super().__init__()
        self.config = config
        self.processor = processor
        # the backbone's modules are registered under its own attribute names so the state dict is
        # the official one; the wrapper object is kept unregistered for its config and helpers
        self.model = backbone.model
        self.lm_head = backbone.lm_head
        self.__dict__["backbone"] = backbone
        self.stock_forward = backbone.config.model_type in STOCK_FORWARD
        if self.stock_forward and config.positions != "mrope":
            raise EditRLError(f"a {backbone.config.model_type} EditReward reads Qwen's 3-D positions, as the official code: "
                              f"set positions: mrope (got {config.positions!r})")
        hidden = backbone.config.text_config.hidden_size
        n_heads = 1 if config.head_type == "shared" else len(DIMENSIONS)
        self.rm_heads = nn.ModuleDict({
            f"head_{i}": reward_head(hidden, config.head_hidden_sizes, config.head_dropout) for i in range(n_heads)
        }).float()
        self.templates = resolve_templates(config.templates, config.reward_token)
        self.inputs = RewardInputBuilder(processor, self.templates, config.min_pixels, config.max_pixels, config.reward_token)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_backbone(cls, backbone, processor, config: EditRewardConfig | None = None) -> "EditReward":
        """Wrap a Qwen2.5-VL or Qwen3-VL model: add the reward token to the tokenizer (if missing) and resize the
        embeddings to ``len(tokenizer)``, as the official code does before loading its weights."""
        config = config or EditRewardConfig()
        tokenizer = processor.tokenizer
        if config.reward_token not in tokenizer.get_vocab():
            tokenizer.add_special_tokens({"additional_special_tokens": [config.reward_token]}, replace_extra_special_tokens=False)
        if backbone.get_input_embeddings().weight.shape[0] != len(tokenizer):
            backbone.resize_token_embeddings(len(tokenizer))
        tokenizer.padding_side = "right"
        return cls(backbone, processor, config)

    @classmethod
    def from_pretrained(cls, path_or_id: str, **kwargs) -> "EditReward":
        """Load our ``save_pretrained`` folder or the official release; see ``checkpoint.load_editreward``."""
        from .checkpoint import load_editreward

        return load_editreward(path_or_id, **kwargs)

    def save_pretrained(self, directory: str) -> None:
        """safetensors weights + backbone config + editreward_config.json + processor files."""
        from .checkpoint import save_editreward

        save_editreward(self, directory)

    # ------------------------------------------------------------------ helpers
    @property
    def device(self) -> torch.device:
        return self.lm_head.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.lm_head.weight.dtype

    def head(self, dim_index: int) -> nn.Module:
        return self.rm_heads["head_0" if self.config.head_type == "shared" else f"head_{dim_index}"]

    def fuse(self, per_dim: torch.Tensor) -> torch.Tensor:
        """(B, D, 2) -> (B, 2) fused [mu, log_sigma] with the configured fusion."""
        return fuse(per_dim, self.config.fusion)

    def _prepare(self, sources, instructions, edits) -> tuple[list, list[str]]:
        """Validated inputs: images interleaved [src0, edit0, src1, edit1, ...] and instructions."""
        if not (len(sources) == len(instructions) == len(edits)):
            raise EditRLError(f"sources, instructions and edits must have the same length, got {len(sources)}, {len(instructions)}, {len(edits)}")
        if len(sources) == 0:
            raise EditRLError("nothing to score: sources, instructions and edits are empty")
        source_images = load_images(list(sources), "sources", self.config.image_conversion)
        edit_images = load_images(list(edits), "edits", self.config.image_conversion)
        instructions = [check_instruction(s, f"instructions[{i}]") for i, s in enumerate(instructions)]
        images = [image for pair in zip(source_images, edit_images) for image in pair]
        return images, instructions

    def _image_embeds(self, images: ImageBatch, packed: bool = False) -> torch.Tensor:
        """Merged visual tokens of all images, concatenated in order: (sum of tokens, H). The vision
        tower runs once per distinct image; ``packed`` batches its attention segments by length."""
        pixel_values = images.pixel_values.to(self.device)
        with packed_vision_attention(self.model.visual) if packed else nullcontext():
            features = self.model.get_image_features(pixel_values, images.unique_grid_thw.to(self.device), return_dict=True)
        per_image = features.pooler_output
        return torch.cat([per_image[u] for u in images.unique_index], dim=0)

    def _embed(self, ids: torch.Tensor, image_embeds: torch.Tensor | None) -> torch.Tensor:
        """Text embeddings with the image embeddings scattered into the image-token slots (in order)."""
        embeds = self.model.get_input_embeddings()(ids)
        if image_embeds is not None:
            mask = (ids == self.inputs.image_token_id).unsqueeze(-1).expand_as(embeds)
            embeds = embeds.masked_scatter(mask, image_embeds.to(embeds.dtype))
        return embeds

    def _positions(self, ids: torch.Tensor, mask: torch.Tensor, grid_thw: torch.Tensor) -> torch.Tensor:
        """(3, N, L) rotary positions: sequential (legacy) or Qwen's 3-D image positions (mrope)."""
        if self.config.positions == "legacy":
            return sequential_positions(mask)
        token_type = (ids == self.inputs.image_token_id).int()
        positions, _ = self.model.get_rope_index(ids, mm_token_type_ids=token_type, image_grid_thw=grid_thw, attention_mask=mask)
        return positions

    @property
    def read_offset(self) -> int:
        """How many tokens before the reward token the heads read (``read_at``)."""
        return READ_AT[self.config.read_at]

    def _read_heads(self, hidden: torch.Tensor, ids: torch.Tensor, dim_indices: Sequence[int]) -> torch.Tensor:
        """[mu, log_sigma] (N, 2) in fp32 at each row's reward token (or ``read_offset`` tokens before it), row r
        read by the head of dim_indices[r]."""
        rows, cols = (ids == self.inputs.reward_token_id).nonzero(as_tuple=True)
        if rows.numel() != ids.shape[0] or not torch.equal(rows.cpu(), torch.arange(ids.shape[0])):
            raise EditRLError(f"every sequence must hold the reward token {self.config.reward_token!r} exactly once")
        if bool((cols < self.read_offset).any()):
            raise EditRLError(f"read_at={self.config.read_at!r}: a sequence starts with the reward token")
        states = hidden[rows, cols - self.read_offset].float()
        out = torch.empty(ids.shape[0], 2, device=hidden.device, dtype=torch.float32)
        # fp32 heads even under autocast (bf16 training), as the official code runs them
        with torch.autocast(device_type=hidden.device.type, enabled=False):
            for d in sorted(set(dim_indices)):
                sel = torch.tensor([r for r, dd in enumerate(dim_indices) if dd == d], device=hidden.device)
                out[sel] = self.head(d)(states[sel])
        return out

    # ------------------------------------------------------------------ two-pass (official) path
    def _dimension_pass(self, dim_index: int, instructions: list[str], images: ImageBatch) -> torch.Tensor:
        """One full forward for one dimension prompt: (B, 2) [mu, log_sigma]."""
        dim = DIMENSIONS[dim_index]
        sequences = [self.inputs.token_ids(dim, instr, images.num_tokens[2 * i: 2 * i + 2]) for i, instr in enumerate(instructions)]
        ids, mask = pad_right(sequences, self.inputs.tokenizer.pad_token_id)
        ids, mask = ids.to(self.device), mask.to(self.device)
        if self.stock_forward:  # the backbone's own forward: its positions, its deepstack features
            hidden = self.model(input_ids=ids, attention_mask=mask, pixel_values=images.pixel_values_in_order().to(self.device),
                                image_grid_thw=images.grid_thw.to(self.device), use_cache=False,
                                mm_token_type_ids=(ids == self.inputs.image_token_id).int()).last_hidden_state
            return self._read_heads(hidden, ids, [dim_index] * len(sequences))
        embeds = self._embed(ids, self._image_embeds(images))
        positions = self._positions(ids, mask, images.grid_thw.to(self.device))
        hidden = self.model.language_model(inputs_embeds=embeds, attention_mask=mask, position_ids=positions, use_cache=False).last_hidden_state
        return self._read_heads(hidden, ids, [dim_index] * len(sequences))

    def forward(self, sources: Sequence[ImageLike], instructions: Sequence[str], edits: Sequence[ImageLike]) -> torch.Tensor:
        """Differentiable training forward, as the official code: (B, D, 2) fp32 [mu, log_sigma]."""
        images, instructions = self._prepare(sources, instructions, edits)
        batch = self.inputs.images(images)
        return torch.stack([self._dimension_pass(d, instructions, batch) for d in range(len(DIMENSIONS))], dim=1)

    # ------------------------------------------------------------------ fast path
    def _forward_shared_prefix(self, instructions: list[str], images: ImageBatch) -> torch.Tensor:
        """(B, D, 2): vision once, the shared prefix once, both dimension suffixes on its KV cache."""
        from transformers import DynamicCache

        n, n_dim = len(instructions), len(DIMENSIONS)
        sequences = self.inputs.sequences(instructions, images)  # [d][i]
        # positions of the full sequences, so the split computation continues them exactly
        full = [sequences[d][i] for i in range(n) for d in range(n_dim)]  # row = i * D + d
        full_ids, full_mask = pad_right(full, self.inputs.tokenizer.pad_token_id)
        positions = self._full_positions(full_ids, full_mask, images.grid_thw, n, n_dim)
        # the prefix: common to all dimensions, cut before the read token so every suffix holds it
        prefix_lens = []
        for i in range(n):
            length = min(len(sequences[d][i]) for d in range(n_dim))
            for d in range(1, n_dim):
                length = min(length, common_prefix_length(sequences[0][i], sequences[d][i]))
            length = min([length] + [sequences[d][i].index(self.inputs.reward_token_id) - self.read_offset
                                     for d in range(n_dim)])
            prefix_lens.append(length)
        prefix_ids, prefix_mask = pad_right([sequences[0][i][: prefix_lens[i]] for i in range(n)], self.inputs.tokenizer.pad_token_id)
        if int((prefix_ids == self.inputs.image_token_id).sum()) != sum(images.num_tokens):
            raise EditRLError("the dimension prompts diverge before the images end; use score(fast=False) with these templates")
        P = prefix_ids.shape[1]
        prefix_pos = torch.zeros(3, n, P, dtype=torch.long)
        for i in range(n):
            prefix_pos[:, i, : prefix_lens[i]] = positions[:, i * n_dim, : prefix_lens[i]]
        device = self.device
        prefix_ids, prefix_mask = prefix_ids.to(device), prefix_mask.to(device)
        embeds = self._embed(prefix_ids, self._image_embeds(images, packed=self.config.vision_attention == "packed"))
        cache = DynamicCache(config=self.model.language_model.config)
        self.model.language_model(inputs_embeds=embeds, attention_mask=prefix_mask, position_ids=prefix_pos.to(device), **{_cache_kwarg(self.model.language_model): cache}, use_cache=True)
        cache.batch_repeat_interleave(n_dim)
        # the suffixes: row i * D + d continues item i's prefix with dimension d's text
        suffixes = [full[r][prefix_lens[r // n_dim]:] for r in range(n * n_dim)]
        suffix_ids, suffix_mask = pad_right(suffixes, self.inputs.tokenizer.pad_token_id)
        S = suffix_ids.shape[1]
        suffix_pos = torch.zeros(3, n * n_dim, S, dtype=torch.long)
        for r, suffix in enumerate(suffixes):
            start = prefix_lens[r // n_dim]
            suffix_pos[:, r, : len(suffix)] = positions[:, r, start: start + len(suffix)]
        suffix_ids, suffix_mask = suffix_ids.to(device), suffix_mask.to(device)
        mask = torch.cat([prefix_mask.repeat_interleave(n_dim, dim=0), suffix_mask], dim=1)
        hidden = self.model.language_model(
            inputs_embeds=self._embed(suffix_ids, None), attention_mask=mask, position_ids=suffix_pos.to(device),
            **{_cache_kwarg(self.model.language_model): cache}, use_cache=True,
        ).last_hidden_state
        out = self._read_heads(hidden, suffix_ids, [r % n_dim for r in range(n * n_dim)])
        return out.view(n, n_dim, 2)

    def _full_positions(self, ids: torch.Tensor, mask: torch.Tensor, grid_thw: torch.Tensor, n: int, n_dim: int) -> torch.Tensor:
        """Positions of rows i * D + d; each row holds item i's two images (grids 2i, 2i + 1)."""
        if self.config.positions == "legacy":
            return self._positions(ids, mask, grid_thw)
        grids = grid_thw.view(n, 2, 3).repeat_interleave(n_dim, dim=0).reshape(-1, 3)
        return self._positions(ids, mask, grids)

    # ------------------------------------------------------------------ scoring
    def sequence_length(self, image_a, image_b, instruction: str) -> int:
        """A cheap estimate of an item's sequence length, for sorting into length buckets."""
        return self.inputs.num_image_tokens(image_a) + self.inputs.num_image_tokens(image_b) + len(instruction)

    @torch.inference_mode()
    def score(
        self,
        sources: Sequence[ImageLike],
        instructions: Sequence[str],
        edits: Sequence[ImageLike],
        batch_size: int | None = 8,
        fast: bool = True,
    ) -> RewardOutput:
        """Score edits: per-dimension mu/sigma and the fused score (B,), in the input order.

        Items are sorted by sequence length and cut into batches of ``batch_size`` so padding stays
        small. ``fast=False`` runs the official two-pass computation instead of the shared prefix (a Qwen3-VL
        backbone always runs it: its deepstack features do not fit the split computation).
        """
        images, instructions = self._prepare(sources, instructions, edits)
        batch_size = check_batch_size(batch_size or None, default=8)  # 0 has always meant the default here
        n = len(instructions)
        order = sorted(range(n), key=lambda i: -self.sequence_length(images[2 * i], images[2 * i + 1], instructions[i]))
        per_dim = torch.empty(n, len(DIMENSIONS), 2)
        was_training = self.training
        self.eval()
        try:
            for start in range(0, n, batch_size):
                idx = order[start: start + batch_size]
                batch = self.inputs.images([image for i in idx for image in images[2 * i: 2 * i + 2]])
                chunk_instructions = [instructions[i] for i in idx]
                if fast and not self.stock_forward:
                    out = self._forward_shared_prefix(chunk_instructions, batch)
                else:
                    out = torch.stack([self._dimension_pass(d, chunk_instructions, batch) for d in range(len(DIMENSIONS))], dim=1)
                per_dim[idx] = out.float().cpu()
        finally:
            self.train(was_training)
        return self.to_output(per_dim)

    def to_output(self, per_dim: torch.Tensor) -> RewardOutput:
        fused = self.fuse(per_dim)
        return RewardOutput(
            mu=per_dim[..., 0].contiguous(), sigma=per_dim[..., 1].exp(), score=fused[:, 0].contiguous(),
            score_sigma=fused[:, 1].exp(), dimensions=DIMENSIONS,
        )
