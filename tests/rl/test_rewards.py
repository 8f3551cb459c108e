import pytest
import torch
from PIL import Image
from toys import Brightness, Darkness

from editrl.errors import EditRLError
from editrl.reward.output import RewardFunction
from editrl.reward.specs import build_reward
from editrl.rl.rewards import WeightedReward, build_weighted_reward


def test_weighted_mix_sums_scores_and_keeps_components():
    edits = [Image.new("RGB", (8, 8), (v, v, v)) for v in (0, 51, 255)]
    mix = WeightedReward({"b": Brightness(), "d": Darkness()}, {"b": 2.0, "d": 0.5})
    assert isinstance(mix, RewardFunction)
    out = mix.score([None] * 3, ["x"] * 3, edits)
    b = torch.tensor([0.0, 0.2, 1.0])
    torch.testing.assert_close(out.score, 2.0 * b + 0.5 * (1 - b))
    assert out.dimensions == ("b", "d")
    torch.testing.assert_close(out.mu[:, 1], 1 - b)
    assert out.to_records()[1]["mu_b"] == pytest.approx(0.2)


def test_build_reward_specs():
    assert isinstance(build_reward("toys:Brightness"), Brightness)
    mix = build_weighted_reward({"toys:Brightness": 1.0, "toys:Darkness": 1.0})
    out = mix.score([None], ["x"], [Image.new("RGB", (4, 4), (90, 90, 90))])
    assert float(out.score) == pytest.approx(1.0)
    with pytest.raises(EditRLError, match="cannot import"):
        build_reward("toys:NoSuchReward")
    with pytest.raises(EditRLError, match="reward spec"):
        build_reward("")
    with pytest.raises(EditRLError, match="rewards"):
        build_weighted_reward({})
    with pytest.raises(EditRLError, match="no-such-reward-folder"):
        build_reward("no-such-reward-folder")  # neither a known name nor a URL: an EditReward folder that is missing


def test_remote_reward_spec_builds_the_http_client():
    from editrl.reward.client import RemoteReward

    assert isinstance(build_reward("http://127.0.0.1:1"), RemoteReward)
