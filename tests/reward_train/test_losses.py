"""The uncertainty ranking loss: Monte-Carlo (official) vs Gauss-Hermite (exact), BT, regression."""

import math

import numpy as np
import pytest
import torch

from editrl.errors import EditRLError
from editrl.reward.losses import LossConfig, gaussian_logsigmoid_nll, reward_loss


def mean_fuse(per_dim):
    return per_dim.mean(1)


def reference_expectation(mean: float, std: float) -> float:
    """E[-logsigmoid(z)] by a fine trapezoid rule on +-12 std (independent of both estimators)."""
    z = np.linspace(mean - 12 * std, mean + 12 * std, 200001)
    density = np.exp(-0.5 * ((z - mean) / std) ** 2) / (std * math.sqrt(2 * math.pi))
    return float(np.trapezoid(np.logaddexp(0.0, -z) * density, z))


@pytest.mark.parametrize("mean,std", [(0.0, 1.0), (1.5, 0.3), (-2.0, 2.0), (0.7, 4.0)])
def test_gauss_hermite_matches_reference_and_mc(mean, std):
    m, s = torch.tensor([mean], dtype=torch.float64), torch.tensor([std], dtype=torch.float64)
    exact = reference_expectation(mean, std)
    gh = gaussian_logsigmoid_nll(m, s, "gauss_hermite").item()
    assert gh == pytest.approx(exact, abs=2e-6)
    generator = torch.Generator().manual_seed(0)
    mc = gaussian_logsigmoid_nll(m, s, "mc", num_samples=200_000, generator=generator).item()
    assert mc == pytest.approx(exact, abs=0.02 * max(1.0, std))


def test_std_zero_reduces_to_bradley_terry():
    delta = torch.linspace(-3, 3, 7, dtype=torch.float64)
    gh = gaussian_logsigmoid_nll(delta, torch.zeros_like(delta))
    assert torch.allclose(gh, -torch.nn.functional.logsigmoid(delta), atol=1e-12)


def _grad(mu_c, estimator, seed):
    mu = torch.tensor(mu_c, dtype=torch.float64, requires_grad=True)
    per_c = torch.stack([mu, torch.tensor(0.2, dtype=torch.float64)]).expand(1, 2).clone()
    per_c = torch.stack([per_c, torch.full_like(per_c, -0.3)], -1)  # (1, D=2, 2)
    per_r = torch.tensor([[[0.1, 0.5], [-0.4, 0.0]]], dtype=torch.float64)
    cfg = LossConfig(type="uncertainty", estimator=estimator, num_samples=1000)
    loss = reward_loss(per_c, per_r, torch.ones(1, dtype=torch.float64), None, None, mean_fuse, cfg,
                       generator=torch.Generator().manual_seed(seed))
    loss.sum().backward()
    return loss.item(), mu.grad.item()


def test_gauss_hermite_gradient_has_no_variance_mc_does():
    mc = [_grad(0.4, "mc", seed) for seed in range(30)]
    gh = [_grad(0.4, "gauss_hermite", seed) for seed in range(30)]
    mc_losses, mc_grads = np.array([m[0] for m in mc]), np.array([m[1] for m in mc])
    gh_losses, gh_grads = np.array([g[0] for g in gh]), np.array([g[1] for g in gh])
    assert len(set(gh_grads)) == 1 and len(set(gh_losses)) == 1  # bit-identical: zero variance
    assert np.var(mc_grads) > 1e-7
    # both estimate the same expectation and the same gradient
    assert mc_losses.mean() == pytest.approx(gh_losses[0], abs=4 * mc_losses.std() / math.sqrt(30) + 1e-4)
    assert mc_grads.mean() == pytest.approx(gh_grads[0], abs=4 * mc_grads.std() / math.sqrt(30) + 1e-4)
    assert gh_grads[0] < 0  # raising the chosen edit's mu lowers the loss


def test_labels_and_tie_symmetry():
    per_c = torch.tensor([[[1.0, 0.0], [1.0, 0.0]]])
    per_r = torch.tensor([[[0.0, 0.0], [0.0, 0.0]]])
    for kind in ("uncertainty", "bt"):
        cfg = LossConfig(type=kind)
        right = reward_loss(per_c, per_r, torch.ones(1), None, None, mean_fuse, cfg)
        wrong = reward_loss(per_c, per_r, torch.zeros(1), None, None, mean_fuse, cfg)
        tie = reward_loss(per_c, per_r, torch.full((1,), 0.5), None, None, mean_fuse, cfg)
        assert right < wrong
        assert tie.item() == pytest.approx(0.5 * (right + wrong).item(), rel=1e-6)
    bt = reward_loss(per_c, per_r, torch.ones(1), None, None, mean_fuse, LossConfig(type="bt"))
    assert bt.item() == pytest.approx(math.log1p(math.exp(-1.0)), rel=1e-6)


def test_fusion_changes_the_loss():
    per_c = torch.tensor([[[2.0, 0.0], [-1.0, 0.0]]])
    per_r = torch.zeros(1, 2, 2)
    cfg = LossConfig(type="bt")
    mean = reward_loss(per_c, per_r, torch.ones(1), None, None, lambda p: p.mean(1), cfg)
    minimum = reward_loss(per_c, per_r, torch.ones(1), None, None, lambda p: p.min(1).values, cfg)
    assert mean.item() == pytest.approx(math.log1p(math.exp(-0.5)), rel=1e-6)
    assert minimum.item() == pytest.approx(math.log1p(math.exp(1.0)), rel=1e-6)


def test_regression_fits_the_summed_means_to_the_shifted_summed_scores():
    # paper Eq. 5: ((mu_1 + mu_2) - (z_1 + z_2 - centre))^2, per edit, averaged over the pair's two edits
    cfg = LossConfig(type="regression", regression_centre=4.5)
    per_c = torch.tensor([[[3.0, 0.0], [-0.5, 9.0]]])  # mu sum 2.5 = (4 + 3) - 4.5 exactly: no loss
    per_r = torch.tensor([[[1.0, 0.0], [2.0, 0.0]]])  # mu sum 3, target (1 + 3) - 4.5 = -0.5
    loss = reward_loss(per_c, per_r, torch.ones(1), torch.tensor([[4.0, 3.0]]), torch.tensor([[1.0, 3.0]]),
                       mean_fuse, cfg)
    assert loss.item() == pytest.approx(0.5 * (0.0 + 3.5**2))
    # only the sum is fitted: moving mass between the two heads changes nothing (the per-dimension fit would)
    shifted = per_c + torch.tensor([[[1.0, 0.0], [-1.0, 0.0]]])
    again = reward_loss(shifted, per_r, torch.ones(1), torch.tensor([[4.0, 3.0]]), torch.tensor([[1.0, 3.0]]),
                        mean_fuse, cfg)
    assert again.item() == pytest.approx(loss.item())
    with pytest.raises(EditRLError, match="regression"):
        reward_loss(per_c, per_r, torch.ones(1), None, None, mean_fuse, cfg)


def test_bad_config_names_the_key():
    with pytest.raises(EditRLError, match="loss.type"):
        LossConfig(type="hinge")
    with pytest.raises(EditRLError, match="loss.estimator"):
        LossConfig(estimator="exact")


def test_per_dimension_term_ranks_each_head_by_its_own_label():
    """loss.per_dimension adds, per decided dimension, the pairwise loss of that head alone; NaN labels add nothing."""
    from editrl.reward.losses import pairwise_loss

    per_c = torch.tensor([[[1.0, -1.0], [-2.0, -0.5]]])  # head 0 prefers chosen, head 1 prefers rejected
    per_r = torch.tensor([[[0.0, -1.0], [0.0, -0.5]]])
    base = LossConfig()
    fused_only = reward_loss(per_c, per_r, torch.ones(1), None, None, mean_fuse, base)
    weighted = LossConfig(per_dimension=3.0)
    labels = torch.tensor([[1.0, float("nan")]])
    with_if = reward_loss(per_c, per_r, torch.ones(1), None, None, mean_fuse, weighted, dimension_labels=labels)
    expected = fused_only + 3.0 * pairwise_loss(per_c[:, 0], per_r[:, 0], torch.ones(1), base)
    assert torch.allclose(with_if, expected, atol=1e-6)
    # the visual-quality head is ranked the other way when its label says so: a larger loss here (head 1 is wrong)
    both = reward_loss(per_c, per_r, torch.ones(1), None, None, mean_fuse, weighted, dimension_labels=torch.ones(1, 2))
    assert both > with_if + 1.0
    # off by default (the paper's loss), and refused with the pointwise loss
    assert torch.equal(reward_loss(per_c, per_r, torch.ones(1), None, None, mean_fuse, base, dimension_labels=labels),
                       fused_only)
    with pytest.raises(EditRLError, match="per_dimension"):
        LossConfig(type="regression", per_dimension=1.0)


def test_dimension_labels_of_pairs():
    from editrl.reward.data import PreferencePair
    from editrl.reward.train import dimension_labels

    def pair(chosen, rejected, kind="strict"):
        return PreferencePair("p", "s", "i", "c", "r", chosen, rejected, 1.0, kind)

    assert dimension_labels(pair((4.0, 2.0), (3.0, 2.0)), 2)[0] == 1.0
    assert math.isnan(dimension_labels(pair((4.0, 2.0), (3.0, 2.0)), 2)[1])
    assert dimension_labels(pair((2.0, 4.0), (3.0, 1.0), "disentangled"), 2) == [0.0, 1.0]
    negative = dimension_labels(pair(None, None, "negative"), 2)
    assert negative[0] == 1.0 and math.isnan(negative[1])
    assert all(math.isnan(x) for x in dimension_labels(pair(None, None), 2))
