"""The one progress-bar helper every command uses (tqdm on stderr, quiet when asked)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable

from tqdm.auto import tqdm

_quiet = bool(os.environ.get("STYLEGAN_QUIET"))


def set_quiet(quiet: bool) -> None:
    global _quiet
    _quiet = quiet


def progress(iterable: Iterable | None = None, *, total: int | None = None, desc: str = "", unit: str = "it",
             leave: bool = True, disable: bool = False, **kwargs):
    """Wrap ``iterable`` (or count to ``total``) with a progress bar on stderr; silent if quiet."""
    return tqdm(iterable, total=total, desc=desc, unit=unit, leave=leave, file=sys.stderr,
                disable=_quiet or disable, dynamic_ncols=True, **kwargs)
