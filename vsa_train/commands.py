"""The command line that started this process, as a user would type it."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path


def command_line() -> str:
    """Return the command that started this process, for model cards and file attributes."""
    arguments = list(sys.argv)
    if arguments and Path(arguments[0]).name == "__main__.py" and Path(arguments[0]).parent.name == "vsa_train":
        arguments[0:1] = ["-m", "vsa_train"]  # started as `python -m vsa_train`
    return " ".join(shlex.quote(a) for a in ["python", *arguments])
