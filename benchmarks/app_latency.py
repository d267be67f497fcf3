"""Latency and load of the app: model, handler, HTTP API, gradio_client, concurrent clients.

Starts `python app.py` on a free loopback port with the weights in VSA_WEIGHTS (default:
weights), then measures, in one run:

* the bare model: encode two sprites, exchange slots, decode (torch only);
* the swap handler, as the app calls it;
* a swap through the HTTP API: POST /gradio_api/call/swap, then reading the event stream of
  GET /gradio_api/call/swap/EVENT_ID to completion (the queue path the browser uses);
* the same swap through gradio_client's predict;
* the five-object scene (`/scene`) through its handler and the HTTP API, when the weights
  include stages 2 and 3;
* CLIENTS concurrent clients making CALLS swaps each through the HTTP API (errors, median, p95);
* start-up time (process start to the first response of /gradio_api/info) and resident memory.

Usage: python benchmarks/app_latency.py [--calls N] [--clients C] [--calls-per-client K] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a clone without installing

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from vsa_demo import handlers  # noqa: E402
from vsa_train.evaluate import machine_description  # noqa: E402

# Five objects, exchanging posX between objects 1 and 5, each object's source set to its factors.
SCENE_ARGS = [5, "posX", "1", "5",
              "square", 0.6, 0.0, 0.1, 0.15, "ellipse", 0.7, 46.15, 0.9, 0.2, "heart", 0.8, 0.0, 0.5, 0.85,
              "square", 0.5, 27.69, 0.1, 0.9, "ellipse", 0.5, 0.0, 0.9, 0.9] + ["factors"] * 5
SWAP_ARGS = [["shape", "posX"], "square", 0.8, 0.0, 0.25, 0.5, "heart", 1.0, 92.3, 0.75, 0.4, "factors", "factors"]


def summarise(seconds: list[float]) -> dict:
    ms = np.array(seconds) * 1000.0
    return {"calls": len(ms), "median_ms": round(float(np.median(ms)), 2), "p95_ms": round(float(np.percentile(ms, 95)), 2)}


def timed(function, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return times


def http_call(url: str, name: str, data: list) -> dict:
    """POST to the queue and read the event stream until it completes; returns the output event."""
    body = json.dumps({"data": data}).encode()
    request = urllib.request.Request(f"{url}gradio_api/call/{name}", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        event_id = json.loads(response.read())["event_id"]
    event = None
    with urllib.request.urlopen(f"{url}gradio_api/call/{name}/{event_id}", timeout=60) as stream:
        for raw in stream:
            line = raw.decode().strip()
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and event in ("complete", "error"):
                if event == "error":
                    raise RuntimeError(f"{name} failed: {line}")
                return json.loads(line[5:])
    raise RuntimeError(f"{name}: the event stream ended without a result")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(weights: str):
    port = free_port()
    env = dict(os.environ, GRADIO_SERVER_PORT=str(port), GRADIO_SERVER_NAME="127.0.0.1", VSA_WEIGHTS=weights)
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    while True:
        if process.poll() is not None:
            raise SystemExit(f"app.py exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url + "gradio_api/info", timeout=2):
                return process, url, time.perf_counter() - start
        except OSError:
            time.sleep(0.1)


def resident_megabytes(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def load_test(url: str, clients: int, calls: int, name: str, data: list) -> dict:
    times, errors, lock = [], [], threading.Lock()

    def client():
        for _ in range(calls):
            start = time.perf_counter()
            try:
                http_call(url, name, data)
                with lock:
                    times.append(time.perf_counter() - start)
            except Exception as error:  # every failure counts as an error of the load test
                with lock:
                    errors.append(repr(error))

    threads = [threading.Thread(target=client) for _ in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    result = summarise(times) if times else {"calls": 0}
    result.update({"clients": clients, "errors": len(errors), "calls_per_second": round(len(times) / wall, 1)})
    if errors:
        result["first_error"] = errors[0][:300]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=100, help="sequential calls per measurement (default: 100)")
    parser.add_argument("--clients", type=int, default=20, help="concurrent clients in the load test (default: 20)")
    parser.add_argument("--calls-per-client", type=int, default=25, help="swaps per client (default: 25)")
    parser.add_argument("--weights", default=os.environ.get("VSA_WEIGHTS", "weights"), help="weights folder or Hub repo id")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    # In-process measurements.
    models = handlers.load_models(args.weights)
    a = handlers.SpriteChoice(classes=handlers.snap_classes(*SWAP_ARGS[1:6]))
    b = handlers.SpriteChoice(classes=handlers.snap_classes(*SWAP_ARGS[6:11]))
    pair = np.stack([a.image, b.image])
    mask = torch.tensor([True, False, False, True, False])

    def bare():
        with torch.no_grad():
            slots = models.stage1.encode(torch.from_numpy(pair)).mean
            mixed = torch.where(mask[:, None], slots[1], slots[0])
            torch.sigmoid(models.stage1.decode_slots(mixed[None]))

    bare()
    results = {"machine": machine_description(), "torch_threads": torch.get_num_threads()}
    results["model_encode_swap_decode"] = summarise(timed(bare, args.calls))
    results["swap_handler"] = summarise(timed(lambda: handlers.swap_handler(models, a, b, ["shape", "posX"]), args.calls))
    if models.has_scenes:
        objects = [handlers.SpriteChoice(classes=handlers.snap_classes(*SCENE_ARGS[4 + 5 * i:9 + 5 * i])) for i in range(5)]
        results["scene_handler_5_objects"] = summarise(
            timed(lambda: handlers.scene_handler(models, objects, "posX", (0, 4)), args.calls)
        )

    # Through the running server.
    process, url, startup = start_server(args.weights)
    try:
        results["startup_seconds"] = round(startup, 2)
        http_call(url, "swap", SWAP_ARGS)
        results["http_api_swap"] = summarise(timed(lambda: http_call(url, "swap", SWAP_ARGS), args.calls))
        if models.has_scenes:
            http_call(url, "scene", SCENE_ARGS)
            results["http_api_scene_5_objects"] = summarise(timed(lambda: http_call(url, "scene", SCENE_ARGS), args.calls))

        from gradio_client import Client

        client = Client(url, verbose=False)
        client.predict(*SWAP_ARGS, api_name="/swap")
        results["gradio_client_swap"] = summarise(timed(lambda: client.predict(*SWAP_ARGS, api_name="/swap"), max(10, args.calls // 2)))
        results["load_http_swap"] = load_test(url, args.clients, args.calls_per_client, "swap", SWAP_ARGS)
        results["resident_megabytes"] = round(resident_megabytes(process.pid), 1)
    finally:
        process.terminate()
        process.wait(timeout=30)

    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
