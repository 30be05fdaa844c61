"""Decoding face images to uint8 RGB: the one rule the layout reader and the converters share.

Thermal and NIR sensors often save 16-bit grey images (PIL modes ``I;16*`` or ``I``).  Converting
them with ``Image.convert("RGB")`` clips every value above 255, which turns a face into black and
white without a word.  :func:`to_rgb8` instead scales 16-bit values to 8 bits by dividing by 257
(65535 -> 255, as Bob does), so the layout reader (:func:`hfr_tutorial.data.layout.load_image`)
and the ``data_scripts/`` converters (``read_image``) give the same pixels for the same file.
"""
from __future__ import annotations

import numpy as np
from PIL import Image

SIXTEEN_BIT_MODES: tuple[str, ...] = ("I;16", "I;16B", "I;16L", "I;16N", "I")
"""PIL modes of integer images wider than 8 bits (``I`` is 32-bit; 16-bit PNGs open as ``I`` in old Pillows)."""


def to_rgb8(im: Image.Image) -> np.ndarray:
    """A decoded PIL image as a contiguous uint8 ``(H, W, 3)`` array.

    * 16-bit integer images are divided by 257 and rounded (an ``I`` image whose values all fit in
      0..255 is kept as it is: it is 8-bit data in a wide mode);
    * float images (``F``) are rounded and clipped to 0..255;
    * grey images are replicated to three channels; every other mode goes through ``convert("RGB")``.
    """
    mode = im.mode
    if mode in SIXTEEN_BIT_MODES:
        arr = np.asarray(im).astype(np.float64)
        if not (mode == "I" and arr.max(initial=0) <= 255):
            arr = arr / 257.0
        arr = np.clip(np.round(arr), 0, 255).astype(np.uint8)
    elif mode == "F":
        arr = np.clip(np.round(np.asarray(im)), 0, 255).astype(np.uint8)
    elif mode == "L":
        arr = np.asarray(im, dtype=np.uint8)
    else:
        arr = np.asarray(im.convert("RGB") if mode != "RGB" else im, dtype=np.uint8)
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    return np.ascontiguousarray(arr)
