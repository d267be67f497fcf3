"""Run under torchrun by the tests: train a tiny stage and save this rank's parameters."""

import os
import sys
from pathlib import Path

from safetensors.torch import save_file

from vsa_demo.model import VAEConfig
from vsa_train.train import TrainConfig, train

out, stage = Path(sys.argv[1]), sys.argv[2]
config = TrainConfig(
    stage=stage,
    steps=6,
    batch_size=8,
    warmup_steps=2,
    checkpoint_every=3,
    eval_every=6,
    eval_size=8,
    model=VAEConfig(latent_dim=32, channels=(4, 4, 8, 8), hidden_dim=32),
)
model = train(config, out, progress=False)
state = {key: value.contiguous() for key, value in model.state_dict().items()}
save_file(state, out / f"rank{os.environ['RANK']}.safetensors")
