"""The one denoising loop (``editrl.sampler.editors.base.denoise``): order of calls, pruning, the Euler path."""

from __future__ import annotations

import torch
from PIL import Image

from editrl.sampler.editors import EditCondition
from editrl.sampler.editors.base import denoise, euler_step

SIGMAS = torch.tensor([1.0, 0.75, 0.4, 0.1, 0.0])


def _cond(n: int) -> EditCondition:
    return EditCondition(batched={"row": torch.arange(n)}, sources=[Image.new("RGB", (8, 8))] * n,
                         instructions=[f"edit {i}" for i in range(n)])


def test_velocity_on_step_and_step_see_every_index_once_in_order():
    calls = []

    def velocity(x, sigma, cond):
        calls.append(("velocity", sigma.tolist(), cond.batched["row"].tolist()))
        return 2 * x + sigma[:, None, None]

    def on_step(i, sigma, x, v):
        calls.append(("on_step", i, sigma.tolist()))
        torch.testing.assert_close(v, 2 * x + sigma[:, None, None])  # the velocity of this x, before the step

    def step(x, v, sigmas, i):
        calls.append(("step", i))
        assert sigmas is SIGMAS
        return x * 0.5 + i

    x = torch.ones(2, 3, 4)
    out = denoise(velocity, x, _cond(2), SIGMAS, step=step, on_step=on_step)
    expected = []
    for i, s in enumerate(SIGMAS[:-1].tolist()):
        expected += [("velocity", [s, s], [0, 1]), ("on_step", i, [s, s]), ("step", i)]
    assert calls == expected
    assert torch.equal(out, (((x * 0.5 + 0) * 0.5 + 1) * 0.5 + 2) * 0.5 + 3)


def test_on_step_returning_rows_continues_with_those_rows_and_their_condition():
    seen = []

    def velocity(x, sigma, cond):
        seen.append(cond.instructions)
        return x * 0 + cond.batched["row"].float()[:, None, None]

    x = 10 * torch.arange(4.0)[:, None, None].expand(4, 2, 2)
    out = denoise(velocity, x, _cond(4), SIGMAS, on_step=lambda i, sigma, x, v: torch.tensor([3, 1]) if i == 1 else None)
    assert seen == [["edit 0", "edit 1", "edit 2", "edit 3"]] * 2 + [["edit 3", "edit 1"]] * 2
    # rows 3 and 1 only, each moved by its own velocity (its row number) at every step: 10 row + row (0 - 1)
    torch.testing.assert_close(out, torch.tensor([27.0, 9.0])[:, None, None].expand(2, 2, 2))


def test_euler_path_is_the_plain_euler_loop_bit_for_bit(flux_editor, source):
    cond = flux_editor.encode([source], ["add a hat"]).repeat_interleave(2)
    sigmas = flux_editor.sigmas(3)
    x = flux_editor.initial_noise([0, 1])
    with torch.no_grad():
        expected = x
        for i in range(len(sigmas) - 1):
            v = flux_editor.velocity(expected, sigmas[i].expand(2), cond)
            expected = expected + (sigmas[i + 1] - sigmas[i]) * v
        assert torch.equal(denoise(flux_editor.velocity, x, cond, sigmas), expected)
        assert torch.equal(denoise(flux_editor.velocity, x, cond, sigmas, step=euler_step), expected)
    assert torch.equal(flux_editor.sample([source], "add a hat", [0, 1]).latents, expected)
