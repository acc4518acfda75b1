"""Real photos for tests, from registry packages (no downloads)."""

from __future__ import annotations

import numpy as np
from PIL import Image


def two_face_photo() -> np.ndarray:
    """scikit-image's astronaut photo (public domain, NASA) with a second, smaller copy of her face on the
    right: a "group photo" whose face 1 is known. [512, 900, 3] uint8."""
    import skimage.data
    photo = skimage.data.astronaut()
    canvas = np.full([512, 900, 3], 255, np.uint8)
    canvas[:, :512] = photo
    canvas[300:407, 700:793] = np.asarray(Image.fromarray(photo[40:200, 150:290]).resize((93, 107), Image.LANCZOS))
    return canvas
