"""The training loop shared by the three stages, with checkpoints, resume and DDP.

A run writes into its output folder:

* ``checkpoint.pt``: model, optimiser, scheduler, random states and step, replaced atomically
  every ``checkpoint_every`` steps; ``--resume`` continues from it.
* ``metrics.jsonl``: one JSON line per validation, with the images seen so far.
* ``model.safetensors`` and ``config.json``: the final weights, loadable with ``from_pretrained``.

Examples are a pure function of (seed, index) and each step reads fixed indices, so a resumed
run reads exactly the examples an uninterrupted one would. Under ``torchrun`` each process takes
its own share of every global batch and DistributedDataParallel averages the gradients.
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Sampler
from tqdm.auto import tqdm

from vsa_demo.model import VAEConfig

from .atomic import atomic_path, default_mode
from .commands import command_line
from .datasets import SpritesDataset, collate
from .stages import STAGES

logger = logging.getLogger(__name__)

CHECKPOINT_NAME = "checkpoint.pt"
METRICS_NAME = "metrics.jsonl"
COMMANDS_NAME = "commands.txt"


@dataclass(frozen=True)
class TrainConfig:
    """Settings of one training run; the command line maps its flags onto these fields.

    Attributes:
        stage: ``stage1``, ``stage2`` or ``stage3``.
        steps: optimiser steps in the whole run.
        batch_size: examples per step summed over all processes (pairs, scenes or paired scenes).
        lr: peak learning rate of Adam, reached after ``warmup_steps`` and decayed by cosine to
            ``lr * final_lr_fraction``.
        kl_weight: weight of the KL term against the reconstruction, both in nats per image.
        invariance_weight: stage 1: weight of the invariance ratio, which keeps each slot free of
            the other factors (see ``objectives.CrosswiseSwap``).
        readout_weight: stage 3: weight of the cleanup loss on features unbound from scene
            vectors (see ``objectives.BoundSceneSwap``).
        seed: seed of the model initialisation, the examples and the posterior noise.
        data: HDF5 file from ``make-data``; None draws fresh examples on the fly.
        source: official dSprites file for on-the-fly images instead of the renderer.
        min_objects, max_objects: object counts of on-the-fly scenes.
        max_changed: stage-1 pairs drawn on the fly differ in 1 to this many factors, so the model
            also learns to combine slots from sprites that share few factors. None means 5 on the
            fly and 1 with a file, whose pairs differ in one factor.
        init_from: weights folder or Hub repo id to start the model from (stages 2 and 3).
        checkpoint_every, eval_every: intervals in steps.
        eval_size: validation examples, drawn with a seed the training never uses.
        num_workers: DataLoader worker processes; 0 loads in the training process.
        device: ``auto`` (a GPU when there is one), ``cpu`` or ``cuda``.
        model: settings of the network.
    """

    stage: str = "stage1"
    steps: int = 20_000
    batch_size: int = 64
    lr: float = 1e-3
    warmup_steps: int = 500
    final_lr_fraction: float = 0.05
    kl_weight: float = 0.01
    invariance_weight: float = 0.0
    readout_weight: float = 50.0
    seed: int = 0
    data: str | None = None
    source: str | None = None
    min_objects: int | None = None
    max_objects: int | None = None
    max_changed: int | None = None
    init_from: str | None = None
    checkpoint_every: int = 500
    eval_every: int = 1000
    eval_size: int = 512
    num_workers: int = 0
    device: str = "auto"
    model: VAEConfig = field(default_factory=VAEConfig)

    def __post_init__(self):
        if self.stage not in STAGES:
            raise ValueError(f"unknown stage {self.stage!r}; expected one of {', '.join(STAGES)}")
        for name in ("steps", "batch_size", "checkpoint_every", "eval_every", "eval_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1; got {getattr(self, name)}")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive; got {self.lr}")
        if self.invariance_weight < 0:
            raise ValueError(f"invariance_weight must be zero or positive; got {self.invariance_weight}")
        if self.kl_weight < 0:
            raise ValueError(f"kl_weight must be zero or positive; got {self.kl_weight}")
        if self.num_workers < 0:
            raise ValueError(f"num_workers must be zero or positive; got {self.num_workers}")
        if self.max_changed is not None and not 1 <= self.max_changed <= 5:
            raise ValueError(f"max_changed must be 1 to 5; got {self.max_changed}")
        if self.max_changed not in (None, 1) and (self.data is not None or self.stage != "stage1"):
            raise ValueError("max_changed above 1 needs stage1 with pairs drawn on the fly; drop --data or --max-changed")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"unknown device {self.device!r}; expected auto, cpu or cuda")

    @property
    def resolved_max_changed(self) -> int:
        if self.max_changed is not None:
            return self.max_changed
        return 5 if self.stage == "stage1" and self.data is None else 1

    def to_dict(self) -> dict:
        data = asdict(self)
        data["model"]["channels"] = list(self.model.channels)
        return data


class StepSampler(Sampler):
    """Yields, for steps ``start`` to ``steps``, this process's indices of each global batch.

    On the fly, step s covers examples ``s * batch_size`` onwards, so no example repeats. With a
    file, examples follow a seeded permutation per epoch.
    """

    def __init__(self, length: int, batch_size: int, start: int, steps: int, rank: int, world: int, seed: int, on_the_fly: bool):
        self.length, self.batch_size, self.start, self.steps = length, batch_size, start, steps
        self.rank, self.world, self.seed, self.on_the_fly = rank, world, seed, on_the_fly
        self._permutations: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return self.steps - self.start

    def _global_batch(self, step: int) -> np.ndarray:
        positions = np.arange(step * self.batch_size, (step + 1) * self.batch_size)
        if self.on_the_fly:
            return positions
        epochs, offsets = np.divmod(positions, self.length)
        out = np.empty_like(positions)
        for epoch in np.unique(epochs):
            if epoch not in self._permutations:
                self._permutations = {epoch: np.random.default_rng([self.seed, int(epoch)]).permutation(self.length)}
            out[epochs == epoch] = self._permutations[epoch][offsets[epochs == epoch]]
        return out

    def __iter__(self):
        for step in range(self.start, self.steps):
            yield self._global_batch(step)[self.rank::self.world].tolist()


def _atomic_torch_save(obj, path: Path) -> None:
    with atomic_path(path) as temporary:
        torch.save(obj, temporary)


def save_weights(model, out: Path) -> None:
    """Write ``model.safetensors`` and ``config.json`` into ``out``, each file atomically."""
    with tempfile.TemporaryDirectory(dir=out, prefix=".weights.") as staging:
        model.save_pretrained(staging)
        for name in ("model.safetensors", "config.json"):
            # safetensors 0.8 save_file creates its file with mode 0600, readable by the owner only.
            os.chmod(Path(staging) / name, default_mode())
            os.replace(Path(staging) / name, out / name)


def _pick_device(name: str) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was requested, but PyTorch finds no GPU; use --device cpu")
    return torch.device(name)


def _lr_factor(config: TrainConfig):
    def factor(step: int) -> float:
        if step < config.warmup_steps:
            return (step + 1) / config.warmup_steps
        progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
        cosine = 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
        return config.final_lr_fraction + (1.0 - config.final_lr_fraction) * cosine

    return factor


def _init_distributed(device: torch.device) -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return dist.get_rank(), world


def train(config: TrainConfig, out: str | Path, resume: bool = False, progress: bool = True):
    """Train the model of ``config.stage`` and write checkpoints, metrics and weights to ``out``.

    Returns:
        The trained model (unwrapped from DDP), in evaluation mode.

    Raises:
        ValueError: for an output folder that cannot be created, ``resume`` without a checkpoint,
            or a checkpoint from a different configuration.
    """
    out = Path(out)
    stage = STAGES[config.stage]
    device = _pick_device(config.device)
    if device.type == "cuda" and "LOCAL_RANK" in os.environ:
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
        device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    rank, world = _init_distributed(device)
    if config.batch_size % world:
        raise ValueError(f"batch_size {config.batch_size} must be divisible by the {world} processes")
    if rank == 0:
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ValueError(f"cannot create output folder {out}: {error}") from error

    initial_state = None
    if config.init_from:
        config, initial_state = _initial_weights(config)
    torch.manual_seed(config.seed)  # the same initial parameters on every process
    model = stage.build_model(config).to(device)
    if initial_state is not None and not resume:
        _load_initial(model, initial_state, config.init_from)
    objective = stage.objective(model, config).to(device)
    own_objective = objective
    optimizer = torch.optim.Adam(objective.parameters(), lr=config.lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_factor(config))
    start = 0
    wall_before = 0.0  # seconds spent in earlier runs that this one resumes

    checkpoint_path = out / CHECKPOINT_NAME
    if resume:
        if not checkpoint_path.is_file():
            raise ValueError(f"--resume: no checkpoint at {checkpoint_path}; start without --resume")
        checkpoint = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
        saved = checkpoint["config"]
        current = config.to_dict()
        for key in ("stage", "batch_size", "seed", "data", "model", "min_objects", "max_objects", "max_changed"):
            if saved.get(key) != current.get(key):
                raise ValueError(
                    f"--resume: the checkpoint in {out} was made with {key}={saved.get(key)!r}, "
                    f"but this run has {key}={current.get(key)!r}; use the same settings or a new --out"
                )
        model.load_state_dict(checkpoint["model"])
        # Parameters the objective has beside the model, such as a learned readout scale.
        objective.load_state_dict({**objective.state_dict(), **checkpoint.get("objective_extra", {})})
        optimizer.load_state_dict(checkpoint["optimizer"])
        scheduler.load_state_dict(checkpoint["scheduler"])
        start = int(checkpoint["step"])
        wall_before = float(checkpoint.get("wall_seconds", 0.0))
        torch.set_rng_state(checkpoint["rng"][rank % len(checkpoint["rng"])])
        logger.info("resumed from %s at step %d", checkpoint_path, start)
    else:
        torch.manual_seed(config.seed + 1 + rank)  # posterior noise differs between processes

    if world > 1:
        objective = DistributedDataParallel(objective, device_ids=[device.index] if device.type == "cuda" else None)

    dataset = SpritesDataset(
        stage.dataset,
        path=config.data,
        seed=config.seed,
        source=config.source,
        min_objects=config.min_objects,
        max_objects=config.max_objects if config.max_objects or config.data else stage.default_max_objects,
        max_changed=config.resolved_max_changed,
    )
    sampler = StepSampler(len(dataset), config.batch_size, start, config.steps, rank, world, config.seed, config.data is None)
    loader = DataLoader(
        dataset,
        batch_sampler=sampler,
        collate_fn=collate,
        num_workers=config.num_workers,
        persistent_workers=False,
        prefetch_factor=4 if config.num_workers else None,
        # Its own generator keeps the loader from drawing on the global one, which the posterior
        # noise uses, so a resumed run draws the same noise as an uninterrupted one.
        generator=torch.Generator().manual_seed(config.seed),
    )
    validation = stage.validation_set(config) if rank == 0 else None
    metrics_path = out / METRICS_NAME
    if rank == 0:
        _truncate_metrics(metrics_path, start)
        (out / "train_config.json").write_text(json.dumps(config.to_dict(), indent=2) + "\n")
        with (out / COMMANDS_NAME).open("a") as file:  # every invocation, for the model card
            file.write(f"{command_line()}  # from step {start}, {world} process(es)\n")

    images_per_step = config.batch_size * stage.images_per_example
    bar = tqdm(total=config.steps, initial=start, desc=config.stage, unit="step", disable=not progress or rank != 0)
    tick, tick_step = time.perf_counter(), start
    run_start = time.perf_counter()
    objective.train()
    step = start
    for step, batch in enumerate(loader, start=start):
        # Forward and backward; DDP averages the gradients across processes.
        batch = {key: value.to(device, non_blocking=True) for key, value in batch.items()}
        parts = objective(**stage.inputs(batch))
        optimizer.zero_grad(set_to_none=True)
        parts["loss"].backward()
        optimizer.step()
        scheduler.step()
        done = step + 1

        if rank == 0 and (done % 20 == 0 or done == config.steps):
            elapsed = time.perf_counter() - tick
            rate = (done - tick_step) * images_per_step / max(elapsed, 1e-9)
            bar.set_postfix(loss=f"{parts['loss'].item():.1f}", img_s=f"{rate:.0f}")
            tick, tick_step = time.perf_counter(), done
        bar.update(1)

        wall = wall_before + time.perf_counter() - run_start
        if done % config.checkpoint_every == 0 or done == config.steps:
            _save_checkpoint(checkpoint_path, own_objective, optimizer, scheduler, done, config, rank, world, wall)
        if rank == 0 and (done % config.eval_every == 0 or done == config.steps):
            model.eval()
            record = {
                "step": done,
                "images_seen": done * images_per_step,
                "wall_seconds": round(wall, 1),
                "loss": parts["loss"].item(),
            }
            record.update(stage.validate(model, validation))
            model.train()
            with metrics_path.open("a") as file:
                file.write(json.dumps(record) + "\n")
            logger.info("step %d: %s", done, json.dumps(record))
    bar.close()

    if rank == 0:
        save_weights(model, out)
        logger.info("wrote weights to %s", out)
    if world > 1:
        dist.barrier()
    return model.eval()


def _initial_weights(config: TrainConfig):
    """Read the weights to start from and adopt their architecture settings."""
    from vsa_demo.loading import resolve_weights
    from vsa_demo.weights import WeightsError

    folder = resolve_weights(config.init_from)
    config_path, weights_path = folder / "config.json", folder / "model.safetensors"
    if not weights_path.is_file() or not config_path.is_file():
        raise WeightsError(
            f"--init-from {config.init_from}: expected config.json and model.safetensors in {folder}; "
            "point it at a stage folder such as weights/stage1"
        )
    source = VAEConfig.from_json(config_path)
    if source != config.model:
        logger.info("--init-from: using the architecture of %s: %s", config_path, source)
    from safetensors.torch import load_file

    return replace(config, model=source), load_file(str(weights_path))


def _load_initial(model, state: dict, origin: str) -> None:
    """Copy every encoder and decoder tensor from ``state``, and any other tensor both share.

    Tensors the model has and ``state`` lacks, such as a new item memory, keep their values.
    """
    own = model.state_dict()
    required = [key for key in own if key.startswith(("encoder.", "decoder."))]
    missing = [key for key in required if key not in state]
    if missing:
        raise ValueError(f"--init-from {origin} lacks tensor {missing[0]!r}; it is not a model of this architecture")
    shared = [key for key in own if key in state]
    for key in shared:
        if state[key].shape != own[key].shape:
            raise ValueError(f"--init-from {origin}: tensor {key!r} has shape {tuple(state[key].shape)}, expected {tuple(own[key].shape)}")
    model.load_state_dict({key: state[key] for key in shared}, strict=False)
    logger.info("initialised %d tensors from %s", len(shared), origin)


def _save_checkpoint(path, objective, optimizer, scheduler, step, config, rank, world, wall_seconds) -> None:
    # Every process contributes its random state, so a resumed DDP run draws the same noise.
    rng = torch.get_rng_state()
    states = [rng]
    if world > 1:
        states = [torch.empty_like(rng) for _ in range(world)]
        dist.all_gather(states, rng)
    if rank != 0:
        return
    _atomic_torch_save(
        {
            "model": objective.model.state_dict(),
            "objective_extra": {k: v for k, v in objective.state_dict().items() if not k.startswith("model.")},
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "step": step,
            "wall_seconds": wall_seconds,
            "world_size": world,
            "rng": states,
            "config": config.to_dict(),
        },
        path,
    )


def _truncate_metrics(path: Path, step: int) -> None:
    # A resumed run repeats the steps after its checkpoint, so drop their old records.
    if not path.is_file():
        return
    lines = [line for line in path.read_text().splitlines() if line.strip() and json.loads(line)["step"] <= step]
    path.write_text("".join(line + "\n" for line in lines))


