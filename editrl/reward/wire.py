"""The JSON wire format of ``editrl reward serve``, shared by the server and the client (which needs no fastapi)."""

from __future__ import annotations

from .output import RewardOutput

IMAGE_FORMATS = ("PNG", "JPEG", "WEBP")
"""Image file formats the server decodes (and the client sends as they are)."""


def output_to_response(output: RewardOutput) -> dict:
    """The JSON body for ``output``; float32 values survive the float64 JSON round trip exactly."""
    return {
        "dimensions": list(output.dimensions),
        "results": [
            {
                "score": float(output.score[i]),
                "score_sigma": float(output.score_sigma[i]),
                "mu": [float(v) for v in output.mu[i]],
                "sigma": [float(v) for v in output.sigma[i]],
            }
            for i in range(len(output))
        ],
    }


def response_to_output(body: dict) -> RewardOutput:
    """Inverse of :func:`output_to_response` (used by the client)."""
    import torch

    results = body["results"]
    dims = len(body["dimensions"])
    return RewardOutput(
        mu=torch.tensor([r["mu"] for r in results], dtype=torch.float32).reshape(len(results), dims),
        sigma=torch.tensor([r["sigma"] for r in results], dtype=torch.float32).reshape(len(results), dims),
        score=torch.tensor([r["score"] for r in results], dtype=torch.float32),
        score_sigma=torch.tensor([r["score_sigma"] for r in results], dtype=torch.float32),
        dimensions=tuple(body["dimensions"]),
    )
