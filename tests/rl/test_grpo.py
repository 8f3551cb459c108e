import json

import pytest
import torch
from toys import Brightness, small_config

from editrl.errors import EditRLError
from editrl.rl import GRPOConfig, GRPOTrainer
from editrl.rl.grpo import grpo_loss
from editrl.rl.lora import lora_state
from editrl.rl.sde import SDESampler


def _trainer(tiny_editor, prompts, tmp_path, **overrides):
    cfg = small_config(GRPOConfig, tmp_path, **overrides)
    return GRPOTrainer(cfg, editor=tiny_editor, reward=Brightness(), train_prompts=prompts, eval_prompts=prompts)


def _log(trainer):
    return [json.loads(line) for line in trainer.log_path.read_text().splitlines()]


def test_grpo_loss_by_hand():
    logp = torch.tensor([0.0, 0.1, -0.1, 0.0])
    old = torch.zeros(4)
    adv = torch.tensor([1.0, 1.0, -1.0, 2.0])
    loss, st = grpo_loss(logp, old, adv, clip_range=0.05, kl=torch.tensor([0.0, 0.0, 0.0, 1.0]), kl_beta=0.5,
                         mask=torch.tensor([True, True, True, False]))
    r = torch.exp(logp)
    # sample 1: ratio e^0.1 > 1.05, A>0 -> pessimistic term is the clipped one: -1.05; sample 2: A<0, ratio e^-0.1 < 0.95
    # -> max(-(-1)*0.905, -(-1)*0.95) = 0.95; sample 3 masked out
    expected = (-1.0 + -1.05 + 0.95) / 3
    assert float(loss) == pytest.approx(expected, abs=1e-6)
    torch.testing.assert_close(st["ratio"], r)
    assert st["clipped"].tolist() == [0.0, 1.0, 1.0, 0.0]


def test_on_policy_update_sees_ratio_exactly_one(tiny_editor, prompts, tmp_path):
    trainer = _trainer(tiny_editor, prompts, tmp_path, num_iterations=2, kl_beta=0.04)
    trainer.train()
    for record in _log(trainer):
        assert record["ratio_min"] == 1.0 and record["ratio_max"] == 1.0 and record["clip_frac"] == 0.0
    # the first iteration starts at the base model (LoRA B = 0): the KL to the LoRA-disabled reference is exactly 0
    log = _log(trainer)
    assert log[0]["kl"] == 0.0 and log[1]["kl"] > 0.0


def test_rescoring_rollout_transitions_reproduces_rollout_log_probs(tiny_editor, prompts, tmp_path):
    trainer = _trainer(tiny_editor, prompts, tmp_path)
    cond = trainer.encode(prompts).repeat_interleave(2)
    sigmas = tiny_editor.sigmas(4)
    noisy = trainer.sde_steps(0)
    assert noisy == [0, 1, 2]  # every step but the last
    traj = trainer.rollout(cond, [1, 2, 3, 4], sigmas, noisy)
    for s, i in enumerate(noisy):
        x = traj["x"][:, s]
        with torch.enable_grad():
            v = tiny_editor.velocity(x, sigmas[i].expand(4), cond)
        sde = SDESampler(trainer.config.noise_level, trainer.config.sde_type)
        out = sde.transition(x, v, sigmas, i, prev_sample=traj["x_next"][:, s])
        assert torch.equal(out.log_prob, traj["log_prob"][:, s])
        # and it is the Gaussian density of the transition, computed independently
        normal = torch.distributions.Normal(out.mean.detach(), out.std.reshape(-1, 1, 1))
        torch.testing.assert_close(traj["log_prob"][:, s], normal.log_prob(traj["x_next"][:, s]).mean(dim=(1, 2)))


def test_off_policy_minibatches_move_the_ratio(tiny_editor, prompts, tmp_path):
    trainer = _trainer(tiny_editor, prompts, tmp_path, num_iterations=1, batch_size=4, num_minibatches=2)
    trainer.train()
    record = _log(trainer)[0]
    # the second minibatch is scored after one optimizer step: its ratios differ from 1 and get clipped
    assert record["ratio_max"] > 1.0 or record["ratio_min"] < 1.0
    assert record["clip_frac"] > 0.0


def test_sde_window_is_random_consecutive_and_never_the_last_step(tiny_editor, prompts, tmp_path):
    trainer = _trainer(tiny_editor, prompts, tmp_path, num_steps=8, sde_window_size=2, sde_window_range=[1, 5])
    windows = [trainer.sde_steps(s) for s in range(20)]
    for w in windows:
        assert len(w) == 2 and w[1] == w[0] + 1 and 1 <= w[0] < 5 and 7 not in w
    assert len({tuple(w) for w in windows}) > 1
    assert trainer.sde_steps(3) == windows[3]  # deterministic per step (resume)
    with pytest.raises(EditRLError, match="sde_window_size"):
        small_config(GRPOConfig, tmp_path, num_steps=4, sde_window_size=4).validate()


def test_flat_groups_are_dropped(tiny_editor, prompts, tmp_path):
    class Constant(Brightness):
        def score(self, sources, instructions, edits, batch_size=None):
            out = super().score(sources, instructions, edits)
            out.score = torch.full_like(out.score, 0.5)
            return out

    cfg = small_config(GRPOConfig, tmp_path, num_iterations=1)
    trainer = GRPOTrainer(cfg, editor=tiny_editor, reward=Constant(), train_prompts=prompts, eval_prompts=prompts)
    before = lora_state(trainer.transformer)
    trainer.train()
    record = _log(trainer)[0]
    assert record["groups_kept"] == 0.0 and record["grad_norm"] == 0.0
    after = lora_state(trainer.transformer)
    assert all(torch.equal(before[k], after[k]) for k in before)  # nothing to learn: no optimizer step


@pytest.mark.parametrize("bound, kept", [(-1.0, 0.0), (2.0, 1.0)])
def test_solved_groups_are_dropped_with_max_group_mean(tiny_editor, prompts, tmp_path, bound, kept):
    # Brightness lies in [0, 1]: a bound below every group's mean drops them all (no step), one above none
    trainer = _trainer(tiny_editor, prompts, tmp_path, num_iterations=1, max_group_mean=bound)
    before = lora_state(trainer.transformer)
    trainer.train()
    assert _log(trainer)[0]["groups_kept"] == kept
    moved = any(not torch.equal(before[k], v) for k, v in lora_state(trainer.transformer).items())
    assert moved == bool(kept)


def test_grpo_raises_a_toy_reward_and_the_monitor_flags_a_disagreeing_judge(tiny_editor, prompts, tmp_path):
    trainer = _trainer(
        tiny_editor, prompts, tmp_path, num_iterations=8, learning_rate=5e-2, noise_level=0.7, kl_beta=0.0,
        eval_every=2, judge="toys:Darkness", lora_target_modules=["proj_out", "to_q", "to_k", "to_v", "to_out.0"],
    )
    before = lora_state(trainer.transformer)
    trainer.train()
    after = lora_state(trainer.transformer)
    assert any(not torch.equal(before[k], after[k]) for k in before if "lora_B" in k)
    log = _log(trainer)
    evals = [r for r in log if "eval_reward" in r]  # fixed prompts and seeds, ODE, at steps 0, 2, 4, 6, 8
    assert [r["step"] for r in evals] == [0, 2, 4, 6, 8]
    assert evals[-1]["eval_reward"] > evals[0]["eval_reward"] + 0.01
    train = [r["reward_mean"] for r in log if "reward_mean" in r]
    assert sum(train[-3:]) / 3 > sum(train[:3]) / 3
    # the judge (1 - brightness) falls exactly as the reward rises: the monitor must say so, in the log
    assert all(r["judge_score"] == pytest.approx(1 - r["eval_reward"], abs=1e-6) for r in evals)
    warnings = [r["hacking_warning"] for r in log if "hacking_warning" in r]
    assert warnings and warnings[-1]["step"] == 8 and warnings[-1]["judge_slope"] < 0 < warnings[-1]["train_reward_slope"]


def test_saved_lora_loads_into_a_fresh_editor_and_reproduces_samples(tiny_editor, prompts, tmp_path):
    from editrl.sampler.editors import FluxKontextEditor
    from editrl.tiny import tiny_flux_kontext

    trainer = _trainer(tiny_editor, prompts, tmp_path, num_iterations=2)
    trainer.train()
    lora_dir = tmp_path / "run" / "lora"
    assert (lora_dir / "pytorch_lora_weights.safetensors").is_file()
    assert (tmp_path / "run" / "checkpoints" / "step-000002" / "pytorch_lora_weights.safetensors").is_file()
    fresh = FluxKontextEditor(tiny_flux_kontext(), resolution=64, default_steps=4)
    plain = fresh.sample([prompts[0][0]], prompts[0][1], seeds=[5]).latents
    fresh.load_lora(str(lora_dir))
    loaded = fresh.sample([prompts[0][0]], prompts[0][1], seeds=[5]).latents
    trained = tiny_editor.sample([prompts[0][0]], prompts[0][1], seeds=[5]).latents
    torch.testing.assert_close(loaded, trained, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(plain, trained)


def test_resume_after_a_kill_matches_an_uninterrupted_run(prompts, tmp_path):
    from editrl.sampler.editors import FluxKontextEditor
    from editrl.tiny import tiny_flux_kontext

    def make(out, iterations):
        editor = FluxKontextEditor(tiny_flux_kontext(), resolution=64, default_steps=4)
        cfg = small_config(GRPOConfig, tmp_path, num_iterations=iterations, save_every=2, ema_decay=0.5,
                           ema_update_every=3, output_dir=str(tmp_path / out))  # the EMA moves at step 3, after the resume
        return GRPOTrainer(cfg, editor=editor, reward=Brightness(), train_prompts=prompts, eval_prompts=prompts)

    full = make("full", 4)
    full.train()
    interrupted = make("cut", 2)
    interrupted.train()
    with open(interrupted.log_path, "a") as f:  # killed during step 3, after logging it but before its checkpoint
        f.write(json.dumps({"step": 3, "reward_mean": -1.0}) + "\n")
    resumed = make("cut", 4)
    with pytest.raises(EditRLError, match="--resume"):
        resumed.train()
    resumed.train(resume=True)
    a, b = lora_state(full.transformer), lora_state(resumed.transformer)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert all(torch.equal(full.ema.shadow[k], resumed.ema.shadow[k]) for k in a)
    assert [r["step"] for r in _log(resumed)] == [1, 2, 3, 4]
    assert [r["reward_mean"] for r in _log(resumed)] == [r["reward_mean"] for r in _log(full)]


@pytest.mark.parametrize("adapter", ["qwen-image-edit", "instruct-pix2pix"])
def test_other_adapters_train_on_policy_and_save_loadable_lora(adapter, prompts, tmp_path):
    from editrl.sampler.editors.instruct_pix2pix import InstructPix2PixEditor
    from editrl.sampler.editors.qwen_image_edit import QwenImageEditEditor
    from editrl.tiny import tiny_instruct_pix2pix, tiny_qwen_image_edit

    def make():
        if adapter == "qwen-image-edit":  # concatenated condition tokens + true CFG
            return QwenImageEditEditor(tiny_qwen_image_edit(), resolution=64, default_steps=4)
        return InstructPix2PixEditor(tiny_instruct_pix2pix(), resolution=64, default_steps=4)  # UNet, 3-way CFG

    editor = make()
    trainer = _trainer(editor, prompts[:1], tmp_path, groups_per_step=1, num_iterations=2, kl_beta=0.01)
    trainer.train()
    for record in _log(trainer):
        assert record["ratio_min"] == 1.0 and record["ratio_max"] == 1.0
    fresh = make()
    fresh.load_lora(str(tmp_path / "run" / "lora"))
    a = fresh.sample([prompts[0][0]], prompts[0][1], seeds=[3]).latents
    b = editor.sample([prompts[0][0]], prompts[0][1], seeds=[3]).latents
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_weighted_rewards_are_logged_per_component(tiny_editor, prompts, tmp_path):
    cfg = small_config(GRPOConfig, tmp_path, num_iterations=1, rewards={"toys:Brightness": 1.0, "toys:Darkness": 0.5})
    trainer = GRPOTrainer(cfg, editor=tiny_editor, train_prompts=prompts, eval_prompts=prompts)  # rewards built from specs
    trainer.train()
    record = _log(trainer)[0]
    b, d = record["reward_toys:Brightness"], record["reward_toys:Darkness"]
    assert b + d == pytest.approx(1.0, abs=1e-5)
    assert record["reward_mean"] == pytest.approx(b + 0.5 * d, abs=1e-5)


def test_cps_with_an_sde_window_fewer_trained_steps_and_gradient_checkpointing(tiny_editor, prompts, tmp_path):
    trainer = _trainer(tiny_editor, prompts, tmp_path, num_steps=6, sde_type="cps", sde_window_size=3,
                       timestep_fraction=0.5, num_iterations=2, kl_beta=0.01, gradient_checkpointing=True)
    assert trainer.transformer.is_gradient_checkpointing
    trainer.train()
    for record in _log(trainer):
        assert record["ratio_min"] == 1.0 and record["ratio_max"] == 1.0 and record["grad_norm"] > 0
