import os
import subprocess
import sys

import numpy as np
import pytest
from gradio_client import Client
from PIL import Image

from .conftest import ROOT

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def client(app_server):
    return Client(app_server, verbose=False)


def read(path):
    return np.asarray(Image.open(path).convert("L"))


def test_api_lists_public_endpoints(client):
    endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert {"/render", "/encode", "/swap", "/scene"} <= set(endpoints)


def test_render_endpoint(client):
    image = read(client.predict("heart", 1.0, 0.0, 0.5, 0.5, api_name="/render"))
    assert image.shape == (256, 256)
    assert 0 < (image > 127).mean() < 0.2


def test_encode_endpoint(client):
    reconstruction, heatmap, readout = client.predict("square", 0.8, 45.0, 0.25, 0.75, api_name="/encode")
    assert read(reconstruction).shape == (256, 256)
    assert Image.open(heatmap).size[0] > Image.open(heatmap).size[1]
    rows = readout["data"]
    assert [row[0] for row in rows] == ["shape", "scale", "orientation", "posX", "posY"]
    assert rows[0][3] == "square"


def test_swap_endpoint_by_keyword(client):
    a, b, result, truth, summary = client.predict(
        features=["posX"],
        a_shape="square", a_scale=1.0, a_orientation=0.0, a_x=0.2, a_y=0.5,
        b_shape="ellipse", b_scale=0.5, b_orientation=0.0, b_x=0.8, b_y=0.5,
        api_name="/swap",
    )
    assert "posX" in summary
    assert "IoU" in summary
    decoded, expected = read(result) > 127, read(truth) > 127
    assert (decoded & expected).sum() / (decoded | expected).sum() > 0.5
    columns = np.nonzero(expected)[1]
    assert columns.mean() > 150, "the truth should sit on the right, at B's posX"


def test_swap_endpoint_positional(client):
    outputs = client.predict(["shape", "scale"], "square", 1.0, 0.0, 0.5, 0.5, "heart", 0.5, 0.0, 0.5, 0.5, api_name="/swap")
    assert len(outputs) == 5
    assert "shape, scale" in outputs[4]


def test_scene_endpoint(client):
    truth, stage2, stage3, swapped, swapped_truth, readout, summary = client.predict(
        3, "posX", "1", "3",
        "square", 0.6, 0.0, 0.1, 0.15,
        "ellipse", 0.7, 46.15, 0.9, 0.2,
        "heart", 0.8, 0.0, 0.5, 0.85,
        api_name="/scene",
    )
    for path in (truth, stage2, stage3, swapped, swapped_truth):
        assert read(path).shape == (256, 256)
    assert [row[0] for row in readout["data"]] == ["object 1", "object 2", "object 3"]
    assert all(cell.endswith("✓") for row in readout["data"] for cell in row[1:]), readout["data"]
    assert "stage 3" in summary
    assert "Exchanging **posX** of objects 1 and 3" in summary


def test_scene_endpoint_five_objects_without_exchange(client):
    outputs = client.predict(5, "none", "1", "2", api_name="/scene")
    assert len(outputs[5]["data"]) == 5
    assert outputs[3] is None
    assert outputs[4] is None


def test_scene_fractional_count_rejected(client):
    with pytest.raises(Exception, match="invalid object count 2.5"):
        client.predict(2.5, "none", "1", "2", api_name="/scene")


def test_bad_input_reported(client):
    with pytest.raises(Exception, match="unknown shape|not in the list of choices|Value"):
        client.predict("circle", 1.0, 0.0, 0.5, 0.5, api_name="/render")


def test_missing_weights_clear_message(tmp_path):
    env = dict(os.environ, VSA_WEIGHTS=str(tmp_path / "nowhere"), GRADIO_ANALYTICS_ENABLED="False")
    result = subprocess.run([sys.executable, "app.py"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "nowhere" in result.stderr
    assert "train" in result.stderr
    assert "Traceback" not in result.stderr


def test_broken_weights_clear_message(tmp_path):
    (tmp_path / "stage1").mkdir()
    (tmp_path / "stage1" / "config.json").write_text("{}")
    (tmp_path / "stage1" / "model.safetensors").write_bytes(b"garbage")
    env = dict(os.environ, VSA_WEIGHTS=str(tmp_path), GRADIO_ANALYTICS_ENABLED="False")
    result = subprocess.run([sys.executable, "app.py"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "model.safetensors" in result.stderr
    assert "Traceback" not in result.stderr
