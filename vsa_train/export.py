"""``python -m vsa_train export``: turn a training run into a shipped weights folder.

Copies the final weights and config of a run and evaluates them on fresh samples. Draws the
metric curve from the validation logs of the run and its history, and writes the model card
(``README.md``) with the training commands, images seen, wall time, machine and evaluation JSON.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

from .atomic import default_mode
from .evaluate import evaluate, machine_description
from .train import COMMANDS_NAME, METRICS_NAME

logger = logging.getLogger(__name__)

STAGE_TITLES = {
    "stage1": "Stage 1: feature-slot VAE trained by crosswise swaps",
    "stage2": "Stage 2: scenes as sums of object latents",
    "stage3": "Stage 3: scenes as bundles of bound objects",
}
STAGE_SUMMARIES = {
    "stage1": (
        "An encoder of 4 convolutions and 2 linear layers gives the posterior of five 1024-dimensional "
        "feature vectors (shape, scale, orientation, posX, posY); their sum is decoded by 2 linear layers "
        "and 4 transposed convolutions. Training encodes image pairs that differ in some factors, exchanges "
        "those factors' feature vectors and reconstructs each image from the other's exchanged latent."
    ),
    "stage2": (
        "The stage-1 architecture, started from the stage-1 weights. Each object of a scene is encoded "
        "separately, all feature vectors of all objects are summed, and the decoder draws the whole scene."
    ),
    "stage3": (
        "Each feature vector is bound (elementwise product) to a fixed bipolar feature placeholder and the "
        "results bundled (summed) into an object vector. Each object vector is bound to an object placeholder "
        "and bundled into the scene vector, which the decoder draws. Training exchanges one feature of one "
        "object between two scene vectors and reconstructs crosswise, and a cleanup loss teaches a codebook "
        "of one vector per factor value to name every feature unbound from a scene vector. That loss rewards "
        "every class the evaluation counts as correct, so it does not ask for a square's quarter turns to be "
        "told apart. The placeholders and the codebooks are stored in model.safetensors."
    ),
}


def metric_curve(records: list[dict], path: Path) -> None:
    """Plot every scalar validation metric against images seen."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    seen = [r["images_seen"] for r in records]
    series = {}
    for record in records:
        for key, value in record.items():
            if key in ("step", "images_seen", "wall_seconds", "loss"):
                continue
            if isinstance(value, dict):
                for sub, number in value.items():
                    series.setdefault(f"{key}.{sub}", []).append(number)
            else:
                series.setdefault(key, []).append(value)
    figure, axis = plt.subplots(figsize=(7, 4))
    for name, values in series.items():
        if len(values) == len(seen):
            axis.plot(seen, values, label=name, linewidth=2 if name.endswith("mean") or "." not in name else 1)
    axis.set_xlabel("images seen")
    axis.set_ylabel("validation metric")
    axis.set_ylim(0, 1)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7, ncol=2, loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def read_history(runs: list[Path]) -> tuple[list[str], list[dict]]:
    """Collect the commands and validation records of consecutive runs, oldest first.

    Images seen and wall time continue across runs, so the records form one curve.
    """
    commands, records = [], []
    seen = wall = 0
    for run in runs:
        if (run / COMMANDS_NAME).is_file():
            commands += [line for line in (run / COMMANDS_NAME).read_text().splitlines() if line.strip()]
        if not (run / METRICS_NAME).is_file():
            continue
        phase = [json.loads(line) for line in (run / METRICS_NAME).read_text().splitlines() if line.strip()]
        for record in phase:
            records.append({**record, "images_seen": seen + record["images_seen"], "wall_seconds": wall + record.get("wall_seconds", 0)})
        if phase:
            seen += phase[-1]["images_seen"]
            wall += phase[-1].get("wall_seconds", 0)
    return commands, records


def _card(stage: str, commands: list[str], metrics: dict, records: list[dict], train_config: dict) -> str:
    commands = "\n".join(commands) or "(not recorded)"
    last = records[-1] if records else {}
    hours = last.get("wall_seconds", 0) / 3600
    lines = [
        "---",
        "library_name: dsprites-vsa",
        "tags: [dsprites, vector-symbolic-architecture, vae]",
        "---",
        "",
        f"# {STAGE_TITLES[stage]}",
        "",
        STAGE_SUMMARIES[stage],
        "",
        "## Training",
        "",
        "```bash",
        commands,
        "```",
        "",
        f"- Images seen over all runs above: {last.get('images_seen', 0):,} (batch {train_config.get('batch_size')} "
        "examples, two images per pair or paired scene)",
        f"- Wall time over all runs: {last.get('wall_seconds', 0):,.0f} s ({hours:.2f} h) of training, validation included",
        f"- Machine: {metrics['machine']}",
        f"- Settings: `train_config.json` beside this card",
        "",
        "## Evaluation",
        "",
        f"`python -m vsa_train evaluate {stage} --weights weights/{stage} --n {metrics['samples']} "
        f"--json eval.json --seed {metrics['seed']}` on fresh samples from the procedural renderer:",
        "",
        "```json",
        json.dumps({k: v for k, v in metrics.items() if k not in ("weights",)}, indent=2),
        "```",
        "",
    ]
    return "\n".join(lines)


def export(stage: str, run: str | Path, out: str | Path, n: int = 1000, seed: int = 12345, history=(), progress: bool = True) -> dict:
    """Copy a run's weights to ``out``, evaluate them, and write figures and the model card.

    Raises:
        ValueError: if the run folder lacks final weights or its validation log.
    """
    run, out = Path(run), Path(out)
    for name in ("model.safetensors", "config.json", METRICS_NAME, "train_config.json"):
        if not (run / name).is_file():
            raise ValueError(f"{run} has no {name}; finish the training run first (`python -m vsa_train train {stage} --out {run} --resume`)")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        os.chmod(staging, default_mode(directory=True))  # mkdtemp makes it private to its owner
        for name in ("model.safetensors", "config.json", "train_config.json", METRICS_NAME):
            shutil.copyfile(run / name, staging / name)
        metrics = evaluate(stage, str(staging), n, staging / "eval.json", figures=staging, seed=seed, progress=progress)
        metrics["weights"] = str(out)  # where the folder ends up, not the staging name
        (staging / "eval.json").write_text(json.dumps(metrics, indent=2) + "\n")
        commands, records = read_history([Path(p) for p in history] + [run])
        with (staging / METRICS_NAME).open("w") as file:
            file.writelines(json.dumps(record) + "\n" for record in records)
        metric_curve(records, staging / "training_curve.png")
        card = _card(stage, commands, metrics, records, json.loads((run / "train_config.json").read_text()))
        figure_lines = ["## Figures", ""]
        for png in sorted(staging.glob("*.png")):
            figure_lines += [f"![{png.stem.replace('_', ' ')}]({png.name})", ""]
        (staging / "README.md").write_text(card + "\n".join(figure_lines))
        if out.exists():
            shutil.rmtree(out)
        os.replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    logger.info("exported %s to %s on %s", run, out, machine_description())
    return metrics
