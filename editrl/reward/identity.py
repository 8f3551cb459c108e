"""What identifies a set of scores: the reward that gave them and the row each one belongs to.

Resumable scoring (``editrl reward score``, ``editrl filter``) stores both with the scored parts and
refuses to continue a run whose reward or data changed, so no output ever mixes two runs. The
reward's identity is its class, its config (fusion, templates, image conversion, ...) and a digest of
its weights; the served reward reports the same identity on ``/health``, so scoring through
``editrl reward serve`` counts as the same run as scoring in process. A row's identity is its id,
instruction and the bytes of its two images. The batch size is not part of it: padding is masked,
so it changes no score.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from typing import Any, Mapping

import numpy as np

SAMPLES_PER_TENSOR = 4096  # weights digest: this many evenly spaced values of every tensor, plus all shapes


def weights_digest(module) -> str:
    """A digest of a torch module's weights: every tensor's name, dtype and shape and an evenly spaced
    sample of its values (any fine-tune or retrain changes them; reading 7B parameters would be slow)."""
    digest = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        flat = tensor.detach().reshape(-1)
        step = max(1, flat.numel() // SAMPLES_PER_TENSOR)
        sample = flat[::step][:SAMPLES_PER_TENSOR].float().cpu().numpy()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(sample.tobytes())
    return digest.hexdigest()[:32]


def reward_identity(reward) -> dict:
    """JSON-ready identity of ``reward``: its own ``identity()`` if it has one (the HTTP client asks the
    server), else its class, config and weights digest."""
    if callable(getattr(reward, "identity", None)):
        return dict(reward.identity())
    import torch

    identity: dict[str, Any] = {"class": f"{type(reward).__module__}.{type(reward).__qualname__}"}
    config = getattr(reward, "config", None)
    if dataclasses.is_dataclass(config):
        identity["config"] = json.loads(json.dumps(dataclasses.asdict(config), sort_keys=True, default=str))
    if isinstance(reward, torch.nn.Module):
        identity["weights"] = weights_digest(reward)
    return identity


def describe_change(old: Mapping, new: Mapping) -> str:
    """What differs between two reward identities, in words (for the one-line error)."""
    if old.get("class") != new.get("class"):
        return f"the reward class changed ({old.get('class')} -> {new.get('class')})"
    if old.get("config") != new.get("config"):
        a, b = old.get("config") or {}, new.get("config") or {}
        keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
        return "the reward config changed (" + ", ".join(f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in keys[:3]) + ")"
    if old.get("weights") != new.get("weights"):
        return "the reward's weights changed (another --model or a retrained checkpoint)"
    return "the reward changed"


def cell_digest(value, base: str = ".") -> str:
    """Digest of one image cell as the row gives it: a path (its text as written, so a moved dataset
    still matches, and the bytes of the file it names under ``base``), bytes, a Hugging Face
    ``{"bytes", "path"}`` dict, or an in-memory image/array."""
    digest = hashlib.sha256()
    if isinstance(value, Mapping):
        value = value.get("bytes") or value.get("path")
    if isinstance(value, (bytes, bytearray)):
        digest.update(b"bytes|" + bytes(value))
    elif isinstance(value, (str, os.PathLike)):
        digest.update(f"path|{value}|".encode())
        try:
            with open(os.path.join(base, value), "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
        except (OSError, ValueError):
            digest.update(b"unreadable")
    elif hasattr(value, "tobytes") and hasattr(value, "mode"):  # PIL image
        digest.update(f"pil|{value.mode}|{value.size}|".encode() + value.tobytes())
    else:
        array = np.asarray(value.detach().cpu() if hasattr(value, "detach") else value)
        digest.update(f"array|{array.dtype}|{array.shape}|".encode() + array.tobytes())
    return digest.hexdigest()


def row_digest(row_id, instruction, source, edit, base: str = ".") -> str:
    """Identity of one row: id, instruction and both images (see ``cell_digest``)."""
    parts = (repr(row_id), repr(instruction), cell_digest(source, base), cell_digest(edit, base))
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]
