import subprocess
import sys

import h5py
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from vsa_demo.render import render
from vsa_train import datasets
from vsa_train.datasets import SpritesDataset, collate, write_dataset


def read(path):
    with h5py.File(path, "r") as file:
        return {key: file[key][()] for key in file}, dict(file.attrs)


def test_paired_rows_differ_in_changed_factor(tmp_path):
    arrays, attrs = read(write_dataset("paired", 300, tmp_path / "p.h5", seed=3, progress=False))
    assert arrays["images"].shape == (300, 2, 64, 64)
    assert arrays["factors"].dtype == np.int16
    differs = arrays["factors"][:, 0] != arrays["factors"][:, 1]  # (N, 5)
    assert (differs.sum(axis=1) == 1).all()
    assert np.array_equal(differs.argmax(axis=1), arrays["changed"])
    flat = arrays["factors"].reshape(-1, 5).astype(np.int64)
    assert np.array_equal(arrays["images"].reshape(-1, 64, 64), render(flat))
    assert attrs["factor_names"].tolist() == ["shape", "scale", "orientation", "posX", "posY"]
    assert attrs["factor_sizes"].tolist() == [3, 6, 40, 32, 32]
    assert attrs["seed"] == 3
    assert attrs["format_version"] == 1
    assert attrs["source"] == "procedural"
    assert "make-data" in attrs["command"] or "pytest" in attrs["command"]


def test_every_factor_gets_changed(tmp_path):
    arrays, _ = read(write_dataset("paired", 500, tmp_path / "p.h5", seed=0, progress=False))
    assert set(np.unique(arrays["changed"])) == {0, 1, 2, 3, 4}


def test_scenes_are_union_of_disjoint_objects(tmp_path):
    arrays, _ = read(write_dataset("scene", 200, tmp_path / "s.h5", seed=1, progress=False))
    objects = arrays["objects"].astype(np.int64)  # (N, 5, 64, 64)
    assert objects.sum(axis=1).max() <= 1, "two objects share a pixel"
    assert np.array_equal(objects.max(axis=1), arrays["scene"])
    n = arrays["n_objects"]
    assert n.min() >= 2
    assert n.max() <= 5
    assert len(np.unique(n)) == 4
    for i in range(len(n)):
        assert (arrays["factors"][i, n[i]:] == -1).all()
        assert (arrays["factors"][i, :n[i]] >= 0).all()
        assert not arrays["objects"][i, n[i]:].any()
        assert np.array_equal(arrays["objects"][i, :n[i]], render(arrays["factors"][i, :n[i]].astype(np.int64)))


def test_scene_object_range_respected(tmp_path):
    arrays, attrs = read(write_dataset("scene", 50, tmp_path / "s.h5", seed=1, min_objects=4, max_objects=4, progress=False))
    assert (arrays["n_objects"] == 4).all()
    assert (attrs["min_objects"], attrs["max_objects"]) == (4, 4)


def test_paired_scene_changes_one_factor_of_one_object(tmp_path):
    arrays, _ = read(write_dataset("paired-scene", 200, tmp_path / "ps.h5", seed=2, progress=False))
    factors = arrays["factors"]  # (N, 2, K, 5)
    assert factors.shape == (200, 2, 2, 5)
    assert arrays["objects"].shape == (200, 2, 2, 64, 64)
    differs = factors[:, 0] != factors[:, 1]  # (N, K, 5)
    assert (differs.sum(axis=(1, 2)) == 1).all()
    rows = np.arange(200)
    assert differs[rows, arrays["changed_object"], arrays["changed_factor"]].all()
    for scene in range(2):
        objects = arrays["objects"][:, scene].astype(np.int64)
        assert objects.sum(axis=1).max() <= 1, "objects overlap"
        assert np.array_equal(objects.max(axis=1), arrays["scenes"][:, scene])


def test_paired_scene_with_more_objects(tmp_path):
    arrays, _ = read(write_dataset("paired-scene", 60, tmp_path / "ps.h5", seed=2, max_objects=5, progress=False))
    assert arrays["factors"].shape == (60, 2, 5, 5)
    assert arrays["n_objects"].max() > 2
    assert (arrays["changed_object"] < arrays["n_objects"]).all()
    for scene in range(2):
        assert arrays["objects"][:, scene].astype(np.int64).sum(axis=1).max() <= 1


@pytest.mark.parametrize("name", ["paired", "scene", "paired-scene"])
def test_equal_seeds_equal_files(tmp_path, name):
    first, _ = read(write_dataset(name, 64, tmp_path / "a.h5", seed=7, progress=False))
    second, _ = read(write_dataset(name, 64, tmp_path / "b.h5", seed=7, progress=False))
    other, _ = read(write_dataset(name, 64, tmp_path / "c.h5", seed=8, progress=False))
    for key in first:
        assert np.array_equal(first[key], second[key]), key
    assert not np.array_equal(first["factors"], other["factors"])


def test_interrupted_write_leaves_no_file(tmp_path, monkeypatch):
    calls = []
    original = datasets.sample

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) > 2:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(datasets, "sample", failing)
    with pytest.raises(KeyboardInterrupt):
        write_dataset("paired", 10_000, tmp_path / "p.h5", seed=0, chunk=1000, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_official_source(tmp_path, official_npz):
    arrays, attrs = read(write_dataset("paired", 100, tmp_path / "p.h5", seed=0, source_path=official_npz, progress=False))
    assert attrs["source"] == official_npz.name
    assert set(np.unique(arrays["factors"][..., 1])) <= {0, 5}
    assert np.array_equal(arrays["images"].reshape(-1, 64, 64), render(arrays["factors"].reshape(-1, 5).astype(np.int64)))


def test_dataset_reads_file_lazily_with_workers(tmp_path):
    path = write_dataset("paired", 100, tmp_path / "p.h5", seed=5, progress=False)
    dataset = SpritesDataset("paired", path)
    assert len(dataset) == 100
    loader = DataLoader(dataset, batch_size=16, collate_fn=collate, num_workers=2, shuffle=False)
    batches = list(loader)
    images = torch.cat([b["images"] for b in batches])
    arrays, _ = read(path)
    assert np.array_equal(images.numpy(), arrays["images"])
    item = dataset[7]
    assert item["images"].shape == (2, 64, 64)
    assert int(item["changed"]) == int(arrays["changed"][7])


def test_dataset_on_the_fly_matches_file(tmp_path):
    path = write_dataset("scene", 40, tmp_path / "s.h5", seed=9, progress=False)
    from_file = SpritesDataset("scene", path).__getitems__([3, 1, 1, 39])
    fresh = SpritesDataset("scene", seed=9).__getitems__([3, 1, 1, 39])
    for key in from_file:
        assert torch.equal(from_file[key], fresh[key]), key


def test_dataset_rejects_wrong_kind(tmp_path):
    path = write_dataset("paired", 10, tmp_path / "p.h5", seed=0, progress=False)
    with pytest.raises(ValueError, match="contains the .paired. dataset"):
        SpritesDataset("scene", path)
    with pytest.raises(ValueError, match="not found"):
        SpritesDataset("scene", tmp_path / "absent.h5")


def make_data(*args):
    return subprocess.run(
        [sys.executable, "-m", "vsa_train", "make-data", *map(str, args), "--quiet"], capture_output=True, text=True, timeout=120
    )


def test_cli_writes_schema(tmp_path):
    result = make_data("paired", "--n", 50, "--out", tmp_path / "p.h5", "--seed", 0)
    assert result.returncode == 0, result.stderr
    arrays, _ = read(tmp_path / "p.h5")
    assert set(arrays) == {"images", "factors", "changed"}


@pytest.mark.parametrize(
    "args, message",
    [
        (["paired", "--n", "0", "--out", "{tmp}/p.h5"], "must be at least 1, got 0"),
        (["paired", "--n", "-5", "--out", "{tmp}/p.h5"], "must be at least 1, got -5"),
        (["pairs", "--n", "5", "--out", "{tmp}/p.h5"], "invalid choice: 'pairs'"),
        (["paired", "--n", "5", "--out", "{tmp}/absent/p.h5"], "does not exist"),
        (["paired", "--n", "5", "--out", "/proc/self/p.h5"], "not writable"),
        (["scene", "--n", "5", "--out", "{tmp}/s.h5", "--max-objects", "7"], "invalid object counts"),
        (["paired", "--n", "5", "--out", "{tmp}/p.h5", "--source", "{tmp}/corrupt.npz"], "corrupt.npz"),
    ],
)
def test_cli_bad_arguments_one_line_error(tmp_path, args, message):
    (tmp_path / "corrupt.npz").write_bytes(b"PK\x03\x04 broken")
    result = make_data(*[a.format(tmp=tmp_path) for a in args])
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "p.h5").exists()


def test_written_file_has_default_permissions(tmp_path):
    import os

    path = write_dataset("paired", 4, tmp_path / "p.h5", seed=0, progress=False)
    mask = os.umask(0)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask
