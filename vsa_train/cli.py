"""Command line: ``python -m vsa_train {make-data,train,evaluate} ...``.

Errors in the arguments or the input files end the program with a one-line message and exit
status 2; nothing prints a traceback for them.
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import fields
from pathlib import Path

from vsa_demo.model import VAEConfig
from vsa_demo.official import OfficialFileError
from vsa_demo.weights import WeightsError

from .datasets import DATASET_NAMES

logger = logging.getLogger("vsa_train")

STAGE_NAMES = ("stage1", "stage2", "stage3")
# Stage 3 starts from stage 1: stage 2's plain sum lets slots mix factors again.
INIT_DEFAULTS = {"stage2": "weights/stage1", "stage3": "weights/stage1"}
MODEL_SIZE_FLAGS = ("latent_dim", "channels", "hidden_dim")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _channels(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 4 comma-separated widths such as 16,32,64,64, got {text!r}") from None
    if len(values) != 4 or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected 4 positive comma-separated widths, got {text!r}")
    return values


def build_parser() -> argparse.ArgumentParser:
    from .train import TrainConfig

    defaults = TrainConfig()
    parser = argparse.ArgumentParser(prog="python -m vsa_train", description="Datasets, training and evaluation for dsprites-vsa.")
    commands = parser.add_subparsers(dest="command", required=True)

    make = commands.add_parser("make-data", help="write a paired, scene or paired-scene dataset to HDF5")
    make.add_argument("dataset", choices=DATASET_NAMES, help="which dataset to write")
    make.add_argument("--n", type=_positive_int, required=True, help="number of examples")
    make.add_argument("--out", type=Path, required=True, help="output HDF5 file; its folder must exist")
    make.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    make.add_argument("--source", type=Path, help="official dSprites .npz or .h5 to take images from (default: the renderer)")
    make.add_argument("--min-objects", type=int, help="minimum objects per scene (default: 2)")
    make.add_argument("--max-objects", type=int, help="maximum objects per scene (default: 5 for scene; for paired-scene 2, or --min-objects when larger)")
    make.add_argument("--quiet", action="store_true", help="hide the progress bar")

    train = commands.add_parser("train", help="train one stage; also runs under torchrun")
    train.add_argument("stage", choices=STAGE_NAMES)
    train.add_argument("--out", type=Path, required=True, help="folder for checkpoints, metrics and weights")
    train.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    train.add_argument("--data", type=Path, help="HDF5 file from make-data (default: fresh examples on the fly)")
    train.add_argument("--source", type=Path, help="official dSprites file for on-the-fly images (default: the renderer)")
    train.add_argument("--steps", type=_positive_int, default=defaults.steps, help=f"optimiser steps (default: {defaults.steps})")
    train.add_argument("--batch-size", type=_positive_int, default=defaults.batch_size, help=f"examples per step over all processes (default: {defaults.batch_size})")
    train.add_argument("--lr", type=float, default=defaults.lr, help=f"peak learning rate (default: {defaults.lr})")
    train.add_argument("--warmup-steps", type=int, default=defaults.warmup_steps, help=f"linear warm-up steps (default: {defaults.warmup_steps})")
    train.add_argument("--kl-weight", type=float, default=defaults.kl_weight, help=f"weight of the KL term (default: {defaults.kl_weight})")
    train.add_argument("--invariance-weight", type=float, default=defaults.invariance_weight, help=f"stages 1 and 3: weight of the slot invariance term (default: {defaults.invariance_weight})")
    train.add_argument("--readout-weight", type=float, default=defaults.readout_weight, help=f"stage3: weight of the cleanup loss after unbinding (default: {defaults.readout_weight})")
    train.add_argument("--seed", type=int, default=defaults.seed, help=f"random seed (default: {defaults.seed})")
    train.add_argument("--min-objects", type=int, help="minimum objects per on-the-fly scene")
    train.add_argument("--max-objects", type=int, help="maximum objects per on-the-fly scene (default: 5)")
    train.add_argument("--max-changed", type=int, help="stage1 on the fly: pairs differ in 1 to this many factors (default: 5; 1 with --data)")
    train.add_argument(
        "--init-from",
        help="stage folder or Hub repo id whose encoder and decoder to start from, or 'none' "
        "(default: weights/stage1 for stages 2 and 3, none for stage1)",
    )
    train.add_argument("--checkpoint-every", type=_positive_int, default=defaults.checkpoint_every, help=f"steps between checkpoints (default: {defaults.checkpoint_every})")
    train.add_argument("--eval-every", type=_positive_int, default=defaults.eval_every, help=f"steps between validations (default: {defaults.eval_every})")
    train.add_argument("--eval-size", type=_positive_int, default=defaults.eval_size, help=f"validation examples (default: {defaults.eval_size})")
    train.add_argument("--num-workers", type=int, default=defaults.num_workers, help=f"DataLoader worker processes (default: {defaults.num_workers})")
    train.add_argument("--device", choices=("auto", "cpu", "cuda"), default=defaults.device, help="where to train (default: auto, a GPU when there is one)")
    model = train.add_argument_group("model")
    # No argparse defaults here, so that sizes given together with --init-from can be detected and rejected.
    model.add_argument("--latent-dim", type=_positive_int, help=f"dimension D of each feature vector of a new model (default: {defaults.model.latent_dim})")
    model.add_argument("--channels", type=_channels, help=f"encoder convolution widths of a new model (default: {','.join(map(str, defaults.model.channels))})")
    model.add_argument("--hidden-dim", type=_positive_int, help=f"hidden linear width of a new model (default: {defaults.model.hidden_dim})")
    train.add_argument("--quiet", action="store_true", help="hide the progress bar")

    evaluate = commands.add_parser("evaluate", help="measure a stage's weights on fresh samples")
    evaluate.add_argument("stage", choices=STAGE_NAMES)
    evaluate.add_argument("--weights", required=True, help="weights folder or Hub repo id")
    evaluate.add_argument("--n", type=_positive_int, default=1000, help="fresh samples (default: 1000)")
    evaluate.add_argument("--json", type=Path, required=True, help="where to write the metrics")
    evaluate.add_argument("--figures", type=Path, help="folder for the figures (default: beside --json)")
    evaluate.add_argument("--seed", type=int, default=12345, help="seed of the samples (default: 12345)")
    evaluate.add_argument("--quiet", action="store_true", help="hide the progress bar")
    project = commands.add_parser("project-slots", help="fit each stage-1 slot's projection onto its own factor's class means")
    project.add_argument("--weights", required=True, help="stage-1 weights folder or Hub repo id")
    project.add_argument("--out", type=Path, required=True, help="folder for the projected model")
    project.add_argument("--samples", type=_positive_int, default=20_000, help="sprites whose class means are used (default: 20000)")
    project.add_argument("--seed", type=int, default=0, help="seed of the sprites (default: 0)")

    export = commands.add_parser("export", help="copy a run's weights to a folder, evaluate them and write the model card")
    export.add_argument("stage", choices=STAGE_NAMES)
    export.add_argument("--run", type=Path, required=True, help="training output folder")
    export.add_argument("--out", type=Path, required=True, help="weights folder to write, e.g. weights/stage1")
    export.add_argument("--history", type=Path, nargs="*", default=[], help="earlier run folders the run started from, oldest first")
    export.add_argument("--n", type=_positive_int, default=1000, help="fresh evaluation samples (default: 1000)")
    export.add_argument("--seed", type=int, default=12345, help="seed of the samples (default: 12345)")
    export.add_argument("--quiet", action="store_true", help="hide the progress bar")
    return parser


def _train(args) -> None:
    from .train import TrainConfig, train

    sizes = {name: getattr(args, name) for name in MODEL_SIZE_FLAGS if getattr(args, name) is not None}
    names = {f.name for f in fields(TrainConfig)}
    values = {name: getattr(args, name) for name in names if hasattr(args, name) and name != "model"}
    values["stage"] = args.stage
    if values.get("init_from") is None:
        values["init_from"] = INIT_DEFAULTS.get(args.stage)
    elif values["init_from"].lower() == "none":
        values["init_from"] = None
    if sizes and values["init_from"]:
        flags = " ".join("--" + name.replace("_", "-") for name in sizes)
        raise ValueError(
            f"{flags} set the size of a new model, but {args.stage} starts from the trained model in "
            f"--init-from {values['init_from']} and keeps its size; drop {flags}, or pass --init-from none "
            "to train a new model of that size"
        )
    model_config = VAEConfig(**sizes)
    for key in ("data", "source"):
        values[key] = None if values.get(key) is None else str(values[key])
    config = TrainConfig(model=model_config, **values)
    train(config, args.out, resume=args.resume, progress=not args.quiet)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "make-data":
            from .datasets import write_dataset

            write_dataset(args.dataset, args.n, args.out, args.seed, args.source, args.min_objects, args.max_objects, progress=not args.quiet)
        elif args.command == "train":
            _train(args)
        elif args.command == "project-slots":
            from vsa_demo.loading import load_stage_model

            from .projection import fit_slot_projection

            model = fit_slot_projection(load_stage_model("stage1", args.weights), args.samples, args.seed)
            args.out.mkdir(parents=True, exist_ok=True)
            from .train import save_weights

            save_weights(model, args.out)
            from .commands import command_line

            with (args.out / "commands.txt").open("a") as file:
                file.write(command_line() + "\n")
            print(f"wrote {args.out}")
        elif args.command == "export":
            from .export import export

            export(args.stage, args.run, args.out, args.n, args.seed, history=args.history, progress=not args.quiet)
            print(f"wrote {args.out}")
        elif args.command == "evaluate":
            from .evaluate import evaluate

            evaluate(args.stage, args.weights, args.n, args.json, figures=args.figures, seed=args.seed, progress=not args.quiet)
    except (ValueError, OfficialFileError, WeightsError, RuntimeError) as error:
        parser.exit(2, f"error: {error}\n")
    except KeyboardInterrupt:
        parser.exit(130, "interrupted\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
