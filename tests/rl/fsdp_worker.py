"""One process of tests/rl/test_fsdp.py, started by `accelerate launch --config_file configs/accelerate/fsdp_rl.yaml`:
for each algorithm, trains the same config twice in the same processes, first with the whole denoiser on each
(accelerate's plain CPU processes), then sharded with FSDP, and saves what each rank holds.

accelerate 1.16 never selects FSDP for CPU processes (``AcceleratorState`` turns FSDP on only for GPU-like
distributed types; on CPUs it stays MULTI_CPU, ignoring the launcher's ACCELERATE_USE_FSDP) and gives them the device
``cpu:0``, which torch's FSDP refuses beside its own ``cpu`` ("Inconsistent compute device and `device_id`"). So the
sharded run sets the state accelerate sets on GPUs: distributed type FSDP, the plugin the launcher described (read
from its FSDP_* variables, i.e. the yaml) and the device ``cpu``. Everything after that is the trainer's own code.

    python fsdp_worker.py CONFIG.yaml OUT_DIR ALGORITHM...
"""

import sys
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import DistributedType, FullyShardedDataParallelPlugin

# NFT keeps flat groups by default; dropped, they leave a process with nothing to train, the case FSDP must handle
OVERRIDES = {"nft": ["min_group_std=0.0001"]}


def set_state(accelerator: Accelerator, sharded: bool, plain: tuple) -> None:
    state = accelerator.state
    if sharded:
        state.distributed_type, state.fsdp_plugin, state.device = (DistributedType.FSDP, FullyShardedDataParallelPlugin(),
                                                                   torch.device("cpu"))
    else:
        state.distributed_type, state.device = plain


def main(config_path: str, out: str, *algorithms: str) -> None:
    from editrl import rl
    from editrl.commands.rl import CONFIGS
    from editrl.rl.lora import lora_state

    accelerator = Accelerator(cpu=True)
    plain = accelerator.state.distributed_type, accelerator.state.device
    for algorithm in algorithms:
        config_cls, trainer_cls = CONFIGS[algorithm], getattr(rl, f"{algorithm.upper()}Trainer")
        for mode in ("whole", "sharded"):
            set_state(accelerator, mode == "sharded", plain)
            folder = Path(out) / algorithm / mode
            config = rl.load_config(config_cls, config_path, [f"output_dir={folder}", *OVERRIDES.get(algorithm, [])])
            trainer = trainer_cls(config, accelerator=accelerator)
            initial = lora_state(trainer.transformer)
            frozen = sum(p.numel() for p in trainer.transformer.parameters() if not p.requires_grad)
            trainer.train()
            torch.save({"frozen_numel": frozen, "initial": initial, "final": lora_state(trainer.transformer),
                        "type": type(trainer.transformer).__name__}, folder.parent / f"{mode}-rank{accelerator.process_index}.pt")


if __name__ == "__main__":
    main(*sys.argv[1:])
