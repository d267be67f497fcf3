import h5py
import numpy as np
import pytest

from vsa_demo.official import OfficialDSprites, OfficialFileError
from vsa_demo.render import render

from .conftest import official_arrays


def test_reads_official_npz(official_npz):
    data = OfficialDSprites(official_npz)
    assert len(data) == 3 * 2 * 2 * 4 * 4
    assert [a.tolist() for a in data.available] == [[0, 1, 2], [0, 5], [0, 10], [0, 10, 20, 31], [0, 10, 20, 31]]
    classes = np.array([[1, 5, 10, 20, 31], [2, 0, 0, 0, 10]])
    assert np.array_equal(data.images(classes), render(classes))


def test_reads_hdf5_twin(tmp_path):
    path = tmp_path / "dsprites.h5"
    arrays = official_arrays()
    with h5py.File(path, "w") as file:
        for key in ("imgs", "latents_values", "latents_classes"):
            file[key] = arrays[key]
    data = OfficialDSprites(path)
    assert np.array_equal(data.images(np.array([[0, 0, 0, 0, 0]])), render(np.array([[0, 0, 0, 0, 0]])))


def test_missing_combination_named(official_npz):
    with pytest.raises(ValueError, match=r"\[0, 1, 0, 0, 0\] are not in"):
        OfficialDSprites(official_npz).images(np.array([[0, 1, 0, 0, 0]]))


def write(tmp_path, **changes):
    arrays = official_arrays()
    arrays.update(changes)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    path = tmp_path / "broken.npz"
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"imgs": None}, "missing key 'imgs'"),
        ({"latents_classes": None}, "missing key 'latents_classes'"),
        ({"imgs": np.zeros((192, 32, 32), dtype=np.uint8)}, r"imgs has shape \(192, 32, 32\)"),
        ({"imgs": np.zeros((192, 64, 64), dtype=np.float32)}, "imgs has dtype float32"),
        ({"imgs": np.full((192, 64, 64), 255, dtype=np.uint8)}, "values above 1"),
        ({"latents_classes": np.zeros((192, 5), dtype=np.int64)}, r"latents_classes has shape \(192, 5\)"),
        ({"latents_classes": np.zeros((192, 6), dtype=np.int64)}, "full grid"),
    ],
)
def test_bad_layout_names_file_and_problem(tmp_path, changes, message):
    path = write(tmp_path, **changes)
    with pytest.raises(OfficialFileError, match=message) as error:
        OfficialDSprites(path)
    assert str(path) in str(error.value)


def test_truncated_file_rejected(tmp_path, official_npz):
    path = tmp_path / "truncated.npz"
    path.write_bytes(official_npz.read_bytes()[:5000])
    with pytest.raises(OfficialFileError, match="truncated"):
        OfficialDSprites(path)


def test_not_an_archive_rejected(tmp_path):
    path = tmp_path / "noise.npz"
    path.write_bytes(b"this is not a zip archive" * 100)
    with pytest.raises(OfficialFileError, match="noise.npz"):
        OfficialDSprites(path)


def test_missing_file_rejected(tmp_path):
    with pytest.raises(OfficialFileError, match="not found"):
        OfficialDSprites(tmp_path / "absent.npz")
