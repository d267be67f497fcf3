import json
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from vsa_demo.loading import load_stage_model
from vsa_demo.model import FeatureVAE, VAEConfig, exchange_slots
from vsa_demo.weights import WeightsError

SMALL = VAEConfig(latent_dim=32, channels=(4, 4, 8, 8), hidden_dim=32)


def test_output_shapes():
    model = FeatureVAE(VAEConfig())
    posterior = model.encode(torch.zeros(3, 64, 64))
    assert posterior.mean.shape == (3, 5, 1024)
    assert posterior.logvar.shape == (3, 5, 1024)
    assert posterior.sample().shape == (3, 5, 1024)
    assert posterior.kl().shape == (3,)
    assert model.decode(torch.zeros(3, 1024)).shape == (3, 64, 64)
    assert model(torch.zeros(3, 64, 64)).shape == (3, 64, 64)


def test_exchange_with_itself_is_identity():
    latents = torch.randn(4, 5, 16)
    a, b = exchange_slots(latents, latents, torch.tensor([True, False, True, False, False]))
    assert torch.equal(a, latents)
    assert torch.equal(b, latents)


def test_exchange_moves_only_masked_slots():
    a, b = torch.randn(2, 5, 8), torch.randn(2, 5, 8)
    mask = torch.tensor([[False, True, False, False, True], [True, False, False, False, False]])
    a_with_b, b_with_a = exchange_slots(a, b, mask)
    for row in range(2):
        for slot in range(5):
            source = b if mask[row, slot] else a
            assert torch.equal(a_with_b[row, slot], source[row, slot])
    assert torch.equal(exchange_slots(a_with_b, b_with_a, mask)[0], a)


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="channels"):
        VAEConfig(channels=(4, 4, 8))
    with pytest.raises(ValueError, match="image_size"):
        VAEConfig(image_size=60)


@pytest.fixture
def saved(tmp_path):
    torch.manual_seed(0)
    model = FeatureVAE(SMALL)
    folder = tmp_path / "stage1"
    model.save_pretrained(folder)
    return model, folder


def test_save_and_load_round_trip(saved):
    model, folder = saved
    assert json.loads((folder / "config.json").read_text())["channels"] == [4, 4, 8, 8]
    loaded = FeatureVAE.from_pretrained(folder)
    assert loaded.config == SMALL
    images = (torch.rand(2, 64, 64) > 0.5).float()
    assert torch.equal(loaded(images), model.eval()(images))
    assert load_stage_model("stage1", folder.parent).config == SMALL


def hub_cache(cache, repo_id, files, inside=""):
    """Lay out a Hub cache by hand: refs/main names a snapshot containing the repository's files."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    shutil.copytree(files, repo / "snapshots" / commit / inside)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)


def test_loads_from_hub_cache_offline(saved, tmp_path, monkeypatch):
    model, folder = saved
    cache = tmp_path / "hub"
    hub_cache(cache, "someone/dsprites-vsa", folder, "stage1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    loaded = load_stage_model("stage1", "someone/dsprites-vsa", cache_dir=str(cache))
    images = (torch.rand(2, 64, 64) > 0.5).float()
    assert torch.equal(loaded(images), model.eval()(images))
    with pytest.raises(WeightsError, match="someone/absent"):
        load_stage_model("stage1", "someone/absent", cache_dir=str(cache))


def test_from_pretrained_repo_id_offline(saved, tmp_path, monkeypatch):
    # A repository made by push_to_hub from one stage folder: config and weights at its root.
    model, folder = saved
    cache = tmp_path / "hub"
    hub_cache(cache, "someone/stage1-only", folder)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    loaded = FeatureVAE.from_pretrained("someone/stage1-only", cache_dir=str(cache))
    images = (torch.rand(2, 64, 64) > 0.5).float()
    assert torch.equal(loaded(images), model.eval()(images))


def test_missing_weights_file_named(saved):
    _, folder = saved
    (folder / "model.safetensors").unlink()
    with pytest.raises(WeightsError, match="missing model.safetensors"):
        load_stage_model("stage1", folder)


def test_missing_folder_named(tmp_path):
    with pytest.raises(WeightsError, match="does not exist"):
        load_stage_model("stage1", tmp_path / "nowhere")


def test_wrong_shape_names_file_and_key(saved):
    _, folder = saved
    path = folder / "model.safetensors"
    state = load_file(path)
    state["decoder.fc.0.weight"] = torch.zeros(3, 3)
    save_file(state, path)
    with pytest.raises(WeightsError, match=r"decoder\.fc\.0\.weight.*shape \(3, 3\)") as error:
        load_stage_model("stage1", folder)
    assert str(path) in str(error.value)


def test_non_finite_value_names_file_and_key(saved):
    _, folder = saved
    path = folder / "model.safetensors"
    state = load_file(path)
    state["encoder.conv.0.bias"][1] = float("nan")
    save_file(state, path)
    with pytest.raises(WeightsError, match=r"encoder\.conv\.0\.bias.*NaN") as error:
        load_stage_model("stage1", folder)
    assert str(path) in str(error.value)


def test_missing_key_named(saved):
    _, folder = saved
    path = folder / "model.safetensors"
    state = load_file(path)
    del state["encoder.fc.3.bias"]
    save_file(state, path)
    with pytest.raises(WeightsError, match=r"missing tensor 'encoder\.fc\.3\.bias'"):
        load_stage_model("stage1", folder)


def test_corrupt_file_named(saved):
    _, folder = saved
    path = folder / "model.safetensors"
    path.write_bytes(b"\x00" * 100)
    with pytest.raises(WeightsError, match="not a valid safetensors file"):
        load_stage_model("stage1", folder)


def test_slot_projection_is_idempotent_and_saved(tmp_path):
    from vsa_train.projection import fit_slot_projection

    torch.manual_seed(0)
    projected = fit_slot_projection(FeatureVAE(SMALL).eval(), samples=400)
    assert projected.config.projection_rank == 32  # 39 directions do not fit in 32 dimensions
    slots = torch.randn(3, 5, 32)
    once = projected.project(slots)
    assert torch.allclose(projected.project(once), once, atol=1e-5)
    # Shape has 3 classes, so its slot keeps at most 2 directions around its centre.
    assert torch.linalg.matrix_rank(once[:, 0] - projected.slot_centre[0]) <= 2
    projected.save_pretrained(tmp_path / "stage1")
    loaded = load_stage_model("stage1", tmp_path)
    assert torch.equal(loaded.slot_basis, projected.slot_basis)
    images = (torch.rand(2, 64, 64) > 0.5).float()
    assert torch.equal(loaded.encode(images).mean, projected.encode(images).mean)
