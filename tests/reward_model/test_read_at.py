"""read_at: the heads read the reward token (official) or the prompt's last token before it."""

from __future__ import annotations

import pytest
import torch

from editrl.errors import EditRLError
from editrl.reward import EditRewardConfig

from .conftest import tiny_reward


def _set_reward_embedding(reward, value: float) -> None:
    with torch.no_grad():
        reward.model.get_input_embeddings().weight[reward.inputs.reward_token_id] = value


def test_before_reward_token_reads_the_previous_position(batch):
    """The scores do not depend on the reward token's embedding (causal attention: nothing before it sees it),
    while the official read-out does; so the heads really read one token earlier, on both computation paths."""
    before, official = tiny_reward(read_at="before_reward_token"), tiny_reward()
    for reward, depends in ((before, False), (official, True)):
        scores = []
        for value in (0.0, 3.0):
            _set_reward_embedding(reward, value)
            scores.append((reward.score(*batch, fast=False).mu, reward.score(*batch, batch_size=3).mu))
        for (two_pass, fast) in scores:  # the shared-prefix path equals the two-pass path for both read-outs
            assert torch.allclose(two_pass, fast, atol=1e-4, rtol=0)
        assert torch.allclose(scores[0][0], scores[1][0], atol=1e-5) is not depends


def test_before_reward_token_equals_the_head_on_the_previous_hidden_state(batch):
    reward = tiny_reward(read_at="before_reward_token")
    sources, instructions, edits = batch
    images, texts = reward._prepare(sources[:1], instructions[:1], edits[:1])
    image_batch = reward.inputs.images(images)
    ids = torch.tensor([reward.inputs.token_ids("instruction_following", texts[0], image_batch.num_tokens[:2])])
    mask = torch.ones_like(ids)
    with torch.no_grad():
        embeds = reward._embed(ids, reward._image_embeds(image_batch))
        hidden = reward.model.language_model(inputs_embeds=embeds, attention_mask=mask,
                                             position_ids=reward._positions(ids, mask, image_batch.grid_thw),
                                             use_cache=False).last_hidden_state
        at = int((ids[0] == reward.inputs.reward_token_id).nonzero()) - 1
        expected = reward.head(0)(hidden[0, at].float())
    assert torch.allclose(reward.score(sources[:1], instructions[:1], edits[:1], fast=False).mu[0, 0], expected[0], atol=1e-5)


def test_read_at_is_validated_and_saved(tmp_path):
    with pytest.raises(EditRLError, match="read_at"):
        EditRewardConfig(read_at="last")
    reward = tiny_reward(read_at="before_reward_token")
    reward.save_pretrained(str(tmp_path / "m"))
    from editrl.reward import EditReward

    assert EditReward.from_pretrained(str(tmp_path / "m")).config.read_at == "before_reward_token"
