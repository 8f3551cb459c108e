"""Packed attention for the Qwen2.5-VL vision tower: equal-length segments in one dense call.

The vision tower attends within windows (most layers) or within whole images (a few layers), given
as segments of one packed sequence (``cu_seqlens``). Without flash-attention, transformers runs one
attention call per segment: for a batch of 448x448 images that is hundreds of tiny calls per layer,
the main cost of scoring on a GPU. Here the segments are grouped by length and each group runs as one
batched ``scaled_dot_product_attention`` call: the same arithmetic, a few large kernels.

It is plugged in through transformers' attention interface under a name containing "flash", which
makes the vision tower pass the segment boundaries instead of splitting the sequence itself.
"""

from __future__ import annotations

from collections import defaultdict
from contextlib import contextmanager

import torch
import torch.nn.functional as F

NAME = "editrl_packed_flash"


def packed_attention(module, query, key, value, attention_mask=None, scaling=None, dropout=0.0, cu_seq_lens_q=None, **kwargs):
    """query/key/value (1, heads, T, d) packed segments -> (1, T, heads, d), attention within each segment."""
    if cu_seq_lens_q is None:
        raise ValueError(f"{NAME} needs segment boundaries (cu_seq_lens_q); it is meant for the vision tower only")
    q, k, v = query[0], key[0], value[0]  # (heads, T, d)
    bounds = cu_seq_lens_q.tolist()
    groups: dict[int, list[int]] = defaultdict(list)
    for start, end in zip(bounds[:-1], bounds[1:]):
        if end > start:
            groups[end - start].append(start)
    out = torch.empty_like(q)
    for length, starts in groups.items():
        index = (torch.tensor(starts, device=q.device)[:, None] + torch.arange(length, device=q.device)).flatten()
        heads, dim = q.shape[0], q.shape[-1]

        def take(t: torch.Tensor) -> torch.Tensor:  # (heads, n * L, d) -> (n, heads, L, d)
            return t[:, index].view(heads, len(starts), length, dim).transpose(0, 1)

        attended = F.scaled_dot_product_attention(take(q), take(k), take(v), scale=scaling, dropout_p=dropout)
        out[:, index] = attended.transpose(0, 1).reshape(heads, len(starts) * length, dim)
    return out.transpose(0, 1).unsqueeze(0), None


def register() -> None:
    from transformers import AttentionInterface

    AttentionInterface.register(NAME, packed_attention)


@contextmanager
def packed_vision_attention(visual: torch.nn.Module):
    """Run ``visual`` (a Qwen2.5-VL vision tower) with packed attention, unless it already uses a
    flash-attention kernel (which handles the segments itself)."""
    config = visual.config
    previous = config._attn_implementation
    if previous and "flash" in previous:
        yield
        return
    register()
    config._attn_implementation = NAME
    try:
        yield
    finally:
        config._attn_implementation = previous
