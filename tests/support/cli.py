"""Running the CLI in-process from tests, as a user would from a shell."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from stylegan.cli.main import main


def run(capsys, *args):
    """Run ``stylegan ARGS`` in this process; returns (exit code, stderr)."""
    with pytest.raises(SystemExit) as exit_info:
        main([str(a) for a in args])
    return exit_info.value.code, capsys.readouterr().err


def png(path) -> np.ndarray:
    return np.asarray(Image.open(path))
