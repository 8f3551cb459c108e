"""The search's two accounting claims checked against what the denoiser really does: NFE counts every guidance
branch (the best-of-N tests use FLUX.1-Kontext, one branch per step), and the pruned search ranks candidates by
their x0 previews ``x - sigma v``, not by the raw noisy latents."""

from __future__ import annotations

import pytest
import torch

from editrl.sampler.editors.base import denoise
from editrl.sampler.search import HalvingConfig, run_search
from editrl.sampler.selection import selection_values

STEPS = 4


def _editor(adapter: str):
    from editrl.sampler.editors import FluxKontextEditor
    from editrl.sampler.editors.instruct_pix2pix import InstructPix2PixEditor
    from editrl.sampler.editors.qwen_image_edit import QwenImageEditEditor
    from editrl.tiny import tiny_flux_kontext, tiny_instruct_pix2pix, tiny_qwen_image_edit

    return {"flux-kontext": lambda: FluxKontextEditor(tiny_flux_kontext(), resolution=64, default_steps=STEPS),
            "qwen-image-edit": lambda: QwenImageEditEditor(tiny_qwen_image_edit(), resolution=64, default_steps=STEPS),
            "instruct-pix2pix": lambda: InstructPix2PixEditor(tiny_instruct_pix2pix(), resolution=64,
                                                              default_steps=STEPS)}[adapter]()


def _count_rows(editor) -> list[int]:
    """Rows of every denoiser forward: each row is one function evaluation."""
    rows: list[int] = []
    editor.transformer.register_forward_hook(lambda module, args, kwargs, out: rows.append(
        (args[0] if args else kwargs.get("hidden_states", kwargs.get("sample"))).shape[0]), with_kwargs=True)
    return rows


@pytest.mark.parametrize("adapter,guidance,branches", [("qwen-image-edit", 4.0, 2), ("instruct-pix2pix", 7.5, 3)])
def test_nfe_of_full_and_pruned_search_counts_every_guidance_branch(adapter, guidance, branches, toy_reward, source):
    """NFE = steps x branches x candidates for best-of-N, and sum over steps of live candidates x branches for the
    pruned search, equal to the rows the denoiser actually ran. Catches an NFE counted per candidate and step
    without the guidance branches (``nfe += len(live)``), or a candidate's own NFE without them."""
    editor = _editor(adapter)
    n = 4
    cond = editor.encode([source], ["make it brighter"], guidance).repeat_interleave(n)
    assert editor.step_nfe(cond) == branches
    rows = _count_rows(editor)
    full = run_search(editor, toy_reward, cond, list(range(n)), num_steps=STEPS, search="full")
    assert full.nfe == STEPS * branches * n == sum(rows)
    assert [c.nfe for c in full.candidates] == [STEPS * branches] * n

    rows.clear()
    config = HalvingConfig(prune_steps=[1, 2], survivors=[2, 1])  # 4 live at steps 0-1, 2 at step 2, 1 at step 3
    pruned = run_search(editor, toy_reward, cond, list(range(n)), num_steps=STEPS, search="halving", halving=config)
    assert pruned.nfe == (4 + 4 + 2 + 1) * branches == sum(rows)
    assert sorted(c.nfe for c in pruned.candidates) == [2 * branches] * 2 + [3 * branches, 4 * branches]
    assert sum(c.nfe for c in pruned.candidates) == pruned.nfe


def test_pruned_search_ranks_by_x0_previews_computed_by_hand(flux_editor, toy_reward, source):
    """At the pruning step the search scores ``decode(x - sigma v)`` of every live candidate; recomputed here from
    the same trajectory, the values and the survivors match, and ranking the raw latents ``decode(x)`` would keep
    other candidates. Catches previews taken as the raw latents (``previews = x``) or with the wrong sign
    (``x + sigma v``)."""
    n, step = 8, 1
    seeds = list(range(20, 20 + n))
    cond = flux_editor.encode([source], ["make it brighter"]).repeat_interleave(n)
    config = HalvingConfig(prune_steps=[step], survivors=[3])
    pruned = run_search(flux_editor, toy_reward, cond, seeds, num_steps=STEPS, search="halving", halving=config)

    # by hand: the same Euler trajectory up to the pruning step, then x0 = x - sigma v
    sigmas = flux_editor.sigmas(STEPS, cond.size)
    seen = {}

    def grab(i, sigma, x, v):
        if i == step:
            seen.update(x=x.clone(), v=v.clone(), sigma=sigma)

    with torch.no_grad():
        denoise(flux_editor.velocity, flux_editor.initial_noise(seeds, cond.size), cond, sigmas, on_step=grab)
    sigma = seen["sigma"].reshape(-1, 1, 1).to(seen["x"])

    def values(latents):
        out = toy_reward.score([source] * n, ["make it brighter"] * n, flux_editor.decode(latents, cond.size))
        return selection_values(out, "fused")

    by_hand = values(seen["x"] - sigma * seen["v"])
    raw = values(seen["x"])
    searched = torch.tensor([c.preview_values[0] for c in pruned.candidates])
    torch.testing.assert_close(searched, by_hand, atol=2e-3, rtol=0)
    survivors = {c.index for c in pruned.candidates if c.pruned_at is None}
    top = set(torch.argsort(by_hand, descending=True)[:3].tolist())
    assert survivors == top
    assert set(torch.argsort(raw, descending=True)[:3].tolist()) != top  # the x0 conversion changes who survives
