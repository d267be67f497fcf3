"""dSprites VSA: encode sprites into feature vectors, swap them, sketch your own.

Run `python app.py` to serve on http://127.0.0.1:7860; GRADIO_SERVER_NAME and
GRADIO_SERVER_PORT change the address and port. VSA_WEIGHTS names the weights folder or Hub repo id
(default: weights).
"""

import logging
import os
import sys

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no version check against an outside host

from vsa_demo.handlers import load_models  # noqa: E402
from vsa_demo.sprite_io import MAX_UPLOAD_BYTES  # noqa: E402
from vsa_demo.ui import build_demo  # noqa: E402
from vsa_demo.weights import WeightsError  # noqa: E402


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    weights = os.environ.get("VSA_WEIGHTS", "weights")
    try:
        models = load_models(weights)
    except WeightsError as error:
        sys.exit(f"error: cannot load the models from {weights!r}: {error}")
    demo = build_demo(models)
    demo.queue(default_concurrency_limit=4)
    demo.launch(max_file_size=MAX_UPLOAD_BYTES)


if __name__ == "__main__":
    main()
