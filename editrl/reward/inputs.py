"""Turning (source, instruction, edit) triples into the token and pixel inputs of the reward model.

Everything here follows the official EditReward collator so that released checkpoints see exactly
the inputs they were trained on: one user turn [source image, edited image, text] rendered with the
base model's chat template (Qwen2.5-VL's adds its default system prompt, Qwen3-VL's none; generation
prompt appended), images resized with qwen-vl-utils' ``smart_resize`` rule (PIL bicubic; factor = patch x
merge: 28 for Qwen2.5-VL, 32 for Qwen3-VL; min = max = 200704 pixels for the released Qwen2.5-VL-family
checkpoints) and the base processor's normalisation, sequences padded on the right.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import torch
from PIL import Image

from ..errors import EditRLError
from ..images import check_shape
from .output import DIMENSIONS
from .prompts import render_prompt

IMAGE_FACTOR = 28  # Qwen2.5-VL: patch 14 x spatial merge 2, every side a multiple of 28 pixels (Qwen3-VL: 16 x 2)


def smart_resize(height: int, width: int, factor: int = IMAGE_FACTOR, min_pixels: int = 200704, max_pixels: int = 200704) -> tuple[int, int]:
    """(height, width) rounded to multiples of ``factor`` with the area brought inside [min, max] pixels.

    The rule of qwen-vl-utils: round each side to the nearest multiple of ``factor``; if the area is too
    large scale both sides down by the same ratio (flooring), if too small scale up (ceiling). With
    min = max = 200704 a square image becomes 448 x 448.
    """
    check_shape(width, height, "image")  # images reaching here were checked by name when they were opened
    h_bar = max(factor, round(height / factor) * factor)
    w_bar = max(factor, round(width / factor) * factor)
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt(height * width / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


@dataclass
class ImageBatch:
    """N images in the order given, each distinct image patchified once.

    ``pixel_values`` and ``unique_grid_thw`` hold the distinct images (best-of-N repeats one source
    for many edits); ``unique_index[i]`` is image i's row among them.
    """

    pixel_values: torch.Tensor  # (sum of patches of the distinct images, C * T * P * P)
    unique_grid_thw: torch.Tensor  # (distinct images, 3)
    unique_index: list[int]  # (N,)
    grid_thw: torch.Tensor  # (N, 3) patch grid of every image
    num_tokens: list[int]  # (N,) merged visual tokens of every image (what the language model sees)

    def pixel_values_in_order(self) -> torch.Tensor:
        """The patches of all N images in order, repeats included: what a stock forward takes with ``grid_thw``."""
        per_image = self.pixel_values.split(self.unique_grid_thw.prod(-1).tolist())
        return torch.cat([per_image[u] for u in self.unique_index])


class RewardInputBuilder:
    """Builds token ids and pixel values for each (dimension, item) the way the official collator does."""

    def __init__(self, processor, templates: Mapping[str, str], min_pixels: int, max_pixels: int, reward_token: str):
        self.processor = processor
        self.tokenizer = processor.tokenizer
        self.templates = dict(templates)
        self.min_pixels, self.max_pixels = min_pixels, max_pixels
        self.reward_token = reward_token
        self.reward_token_id = self.tokenizer.convert_tokens_to_ids(reward_token)
        if self.reward_token_id is None or self.reward_token_id == self.tokenizer.unk_token_id:
            raise EditRLError(f"the tokenizer has no {reward_token!r} token; build the model with EditReward.from_backbone, which adds it")
        self.image_token = getattr(processor, "image_token", "<|image_pad|>")
        self.image_token_id = self.tokenizer.convert_tokens_to_ids(self.image_token)
        self.merge = processor.image_processor.merge_size
        self.factor = processor.image_processor.patch_size * self.merge  # a merged visual token covers factor^2 pixels

    def resize(self, image: Image.Image) -> Image.Image:
        height, width = smart_resize(image.height, image.width, self.factor, self.min_pixels, self.max_pixels)
        if (width, height) == image.size:
            return image
        return image.resize((width, height), Image.Resampling.BICUBIC)

    def num_image_tokens(self, image: Image.Image) -> int:
        height, width = smart_resize(image.height, image.width, self.factor, self.min_pixels, self.max_pixels)
        return (height // self.factor) * (width // self.factor)

    def images(self, images: Sequence[Image.Image]) -> ImageBatch:
        """Resize, normalise and patchify each distinct image once. The image processor does not resize
        again (the images already have a size it leaves unchanged, as in the official pipeline)."""
        resized = [self.resize(image) for image in images]
        keys: dict[tuple, int] = {}
        unique_index = [keys.setdefault((im.size, hashlib.sha1(im.tobytes()).digest()), len(keys)) for im in resized]
        unique = [resized[unique_index.index(u)] for u in range(len(keys))]
        out = self.processor.image_processor(images=unique, do_resize=False, return_tensors="pt")
        unique_grid = out["image_grid_thw"]
        grid = unique_grid[torch.tensor(unique_index)]
        return ImageBatch(out["pixel_values"], unique_grid, unique_index, grid, (grid.prod(-1) // self.merge**2).tolist())

    def text(self, dimension: str, instruction: str) -> str:
        """The chat-template rendering of the user turn, with one image placeholder per image."""
        messages = [{
            "role": "user",
            "content": [
                {"type": "image"},
                {"type": "image"},
                {"type": "text", "text": render_prompt(self.templates, dimension, instruction)},
            ],
        }]
        return self.processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def token_ids(self, dimension: str, instruction: str, num_tokens: Sequence[int]) -> list[int]:
        """Token ids of one sequence: the rendered text with each image placeholder expanded to the
        number of merged visual tokens of its image (the processor's rule)."""
        text = expand_image_tokens(self.text(dimension, instruction), self.image_token, num_tokens)
        ids = self.tokenizer(text)["input_ids"]
        if ids.count(self.reward_token_id) != 1:
            raise EditRLError(f"instruction {instruction[:40]!r}: the prompt must hold the reward token {self.reward_token!r} exactly once")
        return ids

    def sequences(self, instructions: Sequence[str], images: ImageBatch, dimensions: Sequence[str] = DIMENSIONS) -> list[list[list[int]]]:
        """ids[d][i]: the sequence of item i for dimension d; images hold [src0, edit0, src1, edit1, ...]."""
        return [
            [self.token_ids(dim, instruction, images.num_tokens[2 * i: 2 * i + 2]) for i, instruction in enumerate(instructions)]
            for dim in dimensions
        ]


def expand_image_tokens(text: str, image_token: str, num_tokens: Sequence[int]) -> str:
    """``text`` with its i-th image placeholder repeated ``num_tokens[i]`` times (the processor's rule: one
    token per merged visual token of that image)."""
    pieces = text.split(image_token)
    if len(pieces) != len(num_tokens) + 1:
        raise EditRLError(f"the chat template produced {len(pieces) - 1} image placeholders, expected {len(num_tokens)}")
    return pieces[0] + "".join(image_token * n + piece for n, piece in zip(num_tokens, pieces[1:]))


def pad_right(sequences: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids, attention_mask), both (N, max length), padded on the right."""
    length = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), length), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), length), dtype=torch.long)
    for row, seq in enumerate(sequences):
        ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        mask[row, : len(seq)] = 1
    return ids, mask


def common_prefix_length(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n
