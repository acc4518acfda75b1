"""The one progress-bar helper every command uses (tqdm on stderr, quiet when asked)."""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterable

# tqdm.auto draws notebook bars in Jupyter, which need ipywidgets; without it, it warns and falls back to text bars.
if importlib.util.find_spec("ipywidgets") is not None:
    from tqdm.auto import tqdm
else:
    from tqdm import tqdm

_quiet = bool(os.environ.get("STYLEGAN_QUIET"))


def set_quiet(quiet: bool) -> None:
    global _quiet
    _quiet = quiet


def progress(iterable: Iterable | None = None, *, total: int | None = None, desc: str = "", unit: str = "it",
             leave: bool = True, disable: bool = False, **kwargs):
    """Wrap ``iterable`` (or count to ``total``) with a progress bar on stderr; silent if quiet.

    A numeric ``unit_scale`` together with ``initial`` is refused: tqdm then shows a negative time left
    (it scales the count but not its start); count in the units to display instead."""
    scale = kwargs.get("unit_scale")
    if kwargs.get("initial") and scale not in (None, False, True, 1):
        raise ValueError("progress(): a numeric unit_scale with an initial count misreports the time left; "
                         "count in display units instead")
    return tqdm(iterable, total=total, desc=desc, unit=unit, leave=leave, file=sys.stderr,
                disable=_quiet or disable, dynamic_ncols=True, **kwargs)
