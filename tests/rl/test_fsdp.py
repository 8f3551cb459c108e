"""RL with the frozen denoiser sharded by accelerate's FSDP (configs/accelerate/fsdp_rl.yaml), on two CPU processes:
each holds half of the frozen weights, and training is the same as with the whole denoiser on each."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from PIL import Image
from safetensors.torch import load_file

HERE = Path(__file__).parent
ROOT = HERE.parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _config(tmp_path, tiny_pipeline_dir, **overrides) -> Path:
    data = tmp_path / "prompts.jsonl"
    with open(data, "w") as f:
        for i, colour in enumerate([(200, 30, 30), (30, 200, 30), (30, 30, 200), (200, 200, 30)]):
            Image.new("RGB", (64, 64), colour).save(tmp_path / f"src{i}.png")
            f.write(json.dumps({"source": f"src{i}.png", "instruction": f"edit number {i}"}) + "\n")
    values = dict(editor=str(tiny_pipeline_dir), resolution=64, num_steps=3, eval_steps=2, group_size=2, groups_per_step=2,
                  batch_size=4, num_iterations=2, learning_rate=0.03, lora_rank=4, lora_alpha=4, ema_decay=0.0,
                  rewards={"toys:FlatOffMain": 1.0}, judge="toys:Darkness", eval_every=2, eval_prompts=2, save_every=1,
                  report_to="none", train_data=str(data), eval_data=str(data), **overrides)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(values))
    return path


def _launch(tmp_path, config: Path, *algorithms: str) -> str:
    env = dict(os.environ, OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(HERE), str(ROOT), os.environ.get("PYTHONPATH", "")]))
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(ROOT / "configs/accelerate/fsdp_rl.yaml"),
           "--num_processes", "2", "--main_process_port", str(_free_port()),
           str(HERE / "fsdp_worker.py"), str(config), str(tmp_path), *algorithms]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)  # a hang: processes disagree
    assert done.returncode == 0, done.stderr[-4000:]
    return done.stderr


def test_rl_sharded_over_two_processes_trains_as_the_whole_denoiser(tmp_path, tiny_pipeline_dir):
    """GRPO, DPO and NFT, each run with the whole denoiser on both processes and then sharded. The reward is flat on the
    second process (``toys:FlatOffMain``): it keeps no rollout and has no DPO pair, so under FSDP it must still run the
    first process's training forwards and backwards (at zero weight), or the collectives would hang."""
    stderr = _launch(tmp_path, _config(tmp_path, tiny_pipeline_dir), "grpo", "dpo", "nft")
    # the unsharded runs: accelerate left these CPU processes unsharded despite the FSDP config, and the trainer says so
    assert ("launched with an FSDP config, but accelerate did not select FSDP (distributed type MULTI_CPU; it does on GPUs "
            "only): each process holds the whole denoiser") in stderr
    for algorithm in ("grpo", "dpo", "nft"):
        out = tmp_path / algorithm
        runs = {(mode, rank): torch.load(out / f"{mode}-rank{rank}.pt") for mode in ("whole", "sharded") for rank in (0, 1)}
        whole = runs["whole", 0]["frozen_numel"]
        assert runs["whole", 1]["frozen_numel"] == whole and runs["whole", 0]["type"] != "FullyShardedDataParallel"
        # sharded: each process holds half of the frozen denoiser (FSDP splits every block's flat weights in two)
        shards = [runs["sharded", rank]["frozen_numel"] for rank in (0, 1)]
        assert sum(shards) == whole and max(shards) <= 0.51 * whole
        assert runs["sharded", 0]["type"] == "FullyShardedDataParallel"
        final = runs["sharded", 0]["final"]
        for key, value in final.items():
            assert torch.equal(runs["sharded", 1]["final"][key], value)  # both processes hold the same LoRA
            torch.testing.assert_close(value, runs["whole", 0]["final"][key], rtol=0, atol=1e-6)  # as without sharding
        assert any(not torch.equal(value, runs["sharded", 0]["initial"][key]) for key, value in final.items())
        logs = {mode: [json.loads(line) for line in (out / mode / "log.jsonl").read_text().splitlines()]
                for mode in ("whole", "sharded")}
        assert [r["step"] for r in logs["sharded"]] == [0, 1, 2]  # written once, by the main process
        for a, b in zip(logs["sharded"], logs["whole"], strict=True):
            assert a.keys() == b.keys() and all(a[k] == pytest.approx(b[k], abs=1e-6) for k in a)
        # groups (DPO: pairs) trained of the 2 + 2: some of the first process's, none of the second's
        trained = [r["pairs"] if algorithm == "dpo" else r["groups_kept"] * 4 for r in logs["sharded"][1:]]
        assert all(0 < t <= 2 for t in trained)
        for mode in ("whole", "sharded"):
            # the adapter users load: written once, the final LoRA (no EMA) in diffusers' names
            assert sorted(p.name for p in (out / mode).iterdir()) == ["checkpoints", "config.yaml", "curves.png",
                                                                      "log.jsonl", "lora", "samples"]
            saved = load_file(out / mode / "lora" / "pytorch_lora_weights.safetensors")
            assert len(saved) == len(final)
            for key, value in final.items():
                torch.testing.assert_close(saved["transformer." + key.replace(".default", "")], value, rtol=0, atol=1e-6)
