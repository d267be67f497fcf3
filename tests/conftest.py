import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from vsa_demo.factors import OFFICIAL_FACTOR_SIZES, classes_to_values  # noqa: E402
from vsa_demo.render import render  # noqa: E402

# A sub-grid of dSprites small enough to write in a test: every shape and orientation class 0 and
# 10, two scales and four positions along each axis.
SUBGRID = ([0], [0, 1, 2], [0, 5], [0, 10], [0, 10, 20, 31], [0, 10, 20, 31])


def official_arrays(subgrid=SUBGRID):
    """Arrays in the official layout for a sub-grid, in official order (posY fastest)."""
    mesh = np.meshgrid(*[np.array(v) for v in subgrid], indexing="ij")
    classes = np.stack([m.reshape(-1) for m in mesh], axis=1).astype(np.int64)  # (N, 6)
    values = np.concatenate([np.ones((len(classes), 1)), classes_to_values(classes[:, 1:])], axis=1)
    images = render(classes[:, 1:])
    metadata = np.array({"description": "test sub-grid"}, dtype=object)
    return {"imgs": images, "latents_values": values, "latents_classes": classes, "metadata": metadata}


@pytest.fixture
def official_npz(tmp_path):
    path = tmp_path / "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz"
    arrays = official_arrays()
    np.savez_compressed(path, **arrays)
    assert len(OFFICIAL_FACTOR_SIZES) == arrays["latents_classes"].shape[1]
    return path


ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def app_server(tmp_path_factory):
    """The real app, started with `python app.py` on a free loopback port; yields its URL."""
    port = free_port()
    log = tmp_path_factory.mktemp("app") / "app.log"
    env = dict(os.environ, GRADIO_SERVER_PORT=str(port), GRADIO_SERVER_NAME="127.0.0.1", GRADIO_ANALYTICS_ENABLED="False")
    with log.open("w") as output:
        process = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 120
    while time.time() < deadline:
        if process.poll() is not None:
            pytest.fail(f"app.py exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url + "gradio_api/info", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            time.sleep(0.5)
    else:
        process.kill()
        pytest.fail(f"app.py did not serve within 120 s:\n{log.read_text()[-3000:]}")
    yield url
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
