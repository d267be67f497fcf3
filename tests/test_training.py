import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from vsa_demo.model import FeatureVAE, VAEConfig
from vsa_demo.official import RendererSource
from vsa_train.objectives import CrosswiseSwap
from vsa_train.sampling import sample_pairs

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--latent-dim", "32", "--channels", "4,4,8,8", "--hidden-dim", "32"]


def test_crosswise_loss_falls_when_overfitting():
    torch.manual_seed(0)
    pairs = sample_pairs(0, np.arange(32), RendererSource())
    images = torch.from_numpy(pairs["images"])
    changed = torch.from_numpy(pairs["changed"])
    objective = CrosswiseSwap(FeatureVAE(VAEConfig(latent_dim=64, channels=(8, 8, 16, 16), hidden_dim=64)), kl_weight=0.01)
    changed = torch.nn.functional.one_hot(changed, 5).bool()
    optimizer = torch.optim.Adam(objective.parameters(), lr=2e-3)
    losses = []
    for _ in range(300):
        parts = objective(images, changed)
        optimizer.zero_grad()
        parts["loss"].backward()
        optimizer.step()
        losses.append(parts["reconstruction"].item())
    assert np.mean(losses[-10:]) < 0.2 * losses[0], (losses[0], losses[-10:])


def test_scene_losses_fall_when_overfitting():
    from vsa_demo.model import BoundSceneVAE, BoundVAEConfig
    from vsa_train.objectives import BoundSceneSwap, SceneSum
    from vsa_train.sampling import sample_paired_scenes, sample_scenes

    source = RendererSource()
    scenes = {k: torch.from_numpy(v) for k, v in sample_scenes(0, np.arange(24), source, 2, 5).items()}
    pairs = {k: torch.from_numpy(v) for k, v in sample_paired_scenes(0, np.arange(24), source, 2, 5).items()}
    small = {"latent_dim": 64, "channels": (8, 8, 16, 16), "hidden_dim": 64}
    cases = [
        (SceneSum(FeatureVAE(VAEConfig(**small)), 0.01), {"objects": scenes["objects"], "n_objects": scenes["n_objects"], "scene": scenes["scene"]}),
        (
            BoundSceneSwap(BoundSceneVAE(BoundVAEConfig(**small)), 0.01),
            {key: pairs[key] for key in ("objects", "n_objects", "changed_object", "changed_factor", "scenes")},
        ),
    ]
    for objective, inputs in cases:
        torch.manual_seed(0)
        optimizer = torch.optim.Adam(objective.parameters(), lr=2e-3)
        losses = []
        for _ in range(250):
            parts = objective(**inputs)
            optimizer.zero_grad()
            parts["loss"].backward()
            optimizer.step()
            losses.append(parts["reconstruction"].item())
        assert np.mean(losses[-10:]) < 0.35 * losses[0], (type(objective).__name__, losses[0], losses[-10:])


def test_readout_accepts_evaluated_classes():
    from vsa_train.objectives import accepted_classes

    accepted = accepted_classes()
    square, heart = 0, 2
    quarter_turn = 10  # of 40 orientation classes spanning a full turn, both ends included
    assert accepted[2, square, 5, 5 + quarter_turn]
    assert not accepted[2, heart, 5, 5 + quarter_turn]
    assert accepted[2, heart, 0, 39]  # 0 and 2 pi are the same angle
    assert accepted[3, square, 7].nonzero().flatten().tolist() == [6, 7, 8]
    assert accepted[1, heart, 4].nonzero().flatten().tolist() == [4]
    assert not accepted[0, :, :, 3:].any()  # beyond the three shapes


def test_readout_loss_falls_when_overfitting():
    from vsa_demo.model import BoundSceneVAE, BoundVAEConfig
    from vsa_train.objectives import BoundSceneSwap

    torch.manual_seed(0)
    latents = torch.randn(16, 5, 5, 64)
    present = torch.arange(5) < torch.randint(2, 6, (16, 1))
    factors = torch.stack([torch.randint(0, size, (16, 5)) for size in (3, 6, 40, 32, 32)], dim=-1)
    objective = BoundSceneSwap(BoundSceneVAE(BoundVAEConfig(latent_dim=64, channels=(4, 4, 8, 8), hidden_dim=32)), 0.01, 1.0)
    latents.requires_grad_()
    optimizer = torch.optim.Adam([latents, *objective.parameters()], lr=1e-2)
    losses = []
    for _ in range(100):
        loss = objective.readout_loss(latents, present, factors)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.2 * losses[0], (losses[0], losses[-1])


def run_train(out, *extra, wait=True, stage="stage1"):
    command = [sys.executable, "-m", "vsa_train", "train", stage, "--out", str(out), "--quiet", *TINY, *extra]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if wait:
        _, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, stderr
    return process


RESUME_STEPS = {"stage1": 300, "stage2": 120, "stage3": 80}


@pytest.mark.parametrize("stage", ["stage1", "stage2", "stage3"])
def test_killed_run_resumes_to_same_parameters(tmp_path, stage):
    steps = RESUME_STEPS[stage]
    settings = ["--steps", str(steps), "--batch-size", "8", "--checkpoint-every", "10", "--eval-every", "100", "--eval-size", "8", "--warmup-steps", "10"]
    if stage != "stage1":
        settings += ["--init-from", "none"]
    run_train(tmp_path / "whole", *settings, stage=stage)

    interrupted = tmp_path / "interrupted"
    process = run_train(interrupted, *settings, wait=False, stage=stage)
    deadline = time.time() + 120
    while not (interrupted / "checkpoint.pt").exists() and time.time() < deadline and process.poll() is None:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.communicate()
    assert (interrupted / "checkpoint.pt").exists()
    assert not (interrupted / "model.safetensors").exists(), "the run finished before it was killed"
    step = torch.load(interrupted / "checkpoint.pt", weights_only=True)["step"]
    assert 0 < step < steps

    run_train(interrupted, *settings, "--resume", stage=stage)
    whole = load_file(tmp_path / "whole" / "model.safetensors")
    resumed = load_file(interrupted / "model.safetensors")
    assert whole.keys() == resumed.keys()
    for key in whole:
        assert torch.equal(whole[key], resumed[key]), key


def test_resume_without_checkpoint_fails_cleanly(tmp_path):
    process = run_train(tmp_path / "new", "--steps", "5", "--resume", wait=False)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode != 0
    assert "no checkpoint" in stderr
    assert "Traceback" not in stderr


def test_resume_with_other_settings_fails_cleanly(tmp_path):
    settings = ["--steps", "4", "--batch-size", "4", "--checkpoint-every", "2", "--eval-size", "4"]
    run_train(tmp_path / "run", *settings)
    process = run_train(tmp_path / "run", "--steps", "8", "--batch-size", "8", "--resume", "--checkpoint-every", "2", wait=False)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode != 0
    assert "batch_size" in stderr
    assert "Traceback" not in stderr


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("stage", ["stage1", "stage2", "stage3"])
def test_two_process_ddp_ranks_agree(tmp_path, stage):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1",
        f"--master_port={free_port()}", str(ROOT / "tests" / "ddp_worker.py"), str(tmp_path), stage,
    ]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        _, stderr = process.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # torchrun and both workers
        process.communicate()
        pytest.fail("the two-process run did not finish within 300 s")
    assert process.returncode == 0, stderr[-3000:]
    rank0 = load_file(tmp_path / "rank0.safetensors")
    rank1 = load_file(tmp_path / "rank1.safetensors")
    torch.manual_seed(0)
    initial = FeatureVAE(VAEConfig(latent_dim=32, channels=(4, 4, 8, 8), hidden_dim=32)).state_dict()
    for key in rank0:
        assert torch.equal(rank0[key], rank1[key]), key
    assert any(not torch.equal(rank0[key], initial[key]) for key in initial), "training changed nothing"
    assert (tmp_path / "model.safetensors").exists()


def test_sizes_beside_init_from_rejected(tmp_path, capsys):
    from vsa_train.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["train", "stage3", "--out", str(tmp_path / "run"), "--latent-dim", "64"])
    assert exit_info.value.code == 2
    assert "pass --init-from none" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_export_writes_readable_stage_folder(tmp_path):
    settings = ["--steps", "4", "--batch-size", "4", "--eval-every", "4", "--eval-size", "4", "--warmup-steps", "1", "--init-from", "none"]
    run_train(tmp_path / "run", *settings, stage="stage2")
    out = tmp_path / "weights" / "stage2"
    command = [sys.executable, "-m", "vsa_train", "export", "stage2", "--run", str(tmp_path / "run"), "--out", str(out), "--n", "8", "--quiet"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr

    assert "scene_iou" in (out / "README.md").read_text()
    mask = os.umask(0)
    os.umask(mask)
    assert out.stat().st_mode & 0o777 == 0o777 & ~mask
    for name in ("model.safetensors", "config.json", "eval.json", "scenes.png"):
        assert (out / name).stat().st_mode & 0o777 == 0o666 & ~mask, name
