"""Decoding face images to uint8 RGB: the one rule the layout reader and the converters share.

Thermal and NIR sensors often save 16-bit grey images (PIL modes ``I;16*`` or ``I``).  Converting
them with ``Image.convert("RGB")`` clips every value above 255, which turns a face into black and
white without a word.  :func:`to_rgb8` instead scales 16-bit values to 8 bits by dividing by 257
(65535 -> 255, as Bob does), so the layout reader (:func:`hfr_tutorial.data.layout.load_image`)
and the ``data_scripts/`` converters (``read_image``) give the same pixels for the same file.

:func:`read_rgb8` is the one way both open a file: it applies the EXIF orientation a phone writes
(a photo tagged "rotate 90" is stored sideways: read without the tag, the face lies on its side and
the detector misses it), and it turns Pillow's decompression-bomb refusal (an image of more than
``2 * Image.MAX_IMAGE_PIXELS`` pixels, about 179 million) into :class:`ImageTooLarge`, which names
the file and its size.

Taught in ``notebooks/00_data_and_modality_gap.ipynb`` (section "Bring your own data").
"""
from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

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


class ImageTooLarge(ValueError):
    """An image with more pixels than Pillow agrees to decode (a decompression bomb, or a huge scan)."""


def exif_upright(im: Image.Image) -> Image.Image:
    """``im`` turned as its EXIF orientation tag says (phones store portrait photos sideways and tag them).

    An image without the tag (or with orientation 1) comes back unchanged; a damaged EXIF block is
    ignored rather than making the whole photo unreadable.
    """
    try:
        orientation = im.getexif().get(0x0112, 1)
    except (OSError, ValueError, SyntaxError, struct.error, KeyError, TypeError):
        return im
    if orientation in (None, 1):
        return im
    try:
        turned = ImageOps.exif_transpose(im)
    except (OSError, ValueError, SyntaxError, struct.error, KeyError, TypeError):
        return im
    return turned if turned is not None else im


def read_rgb8(path: str | os.PathLike) -> np.ndarray:
    """Decode the image file ``path`` as uint8 ``(H, W, 3)``, upright (EXIF orientation applied).

    Raises :class:`ImageTooLarge` (naming the file, its size and the limit) for an image over
    Pillow's decompression-bomb limit, and Pillow's own errors (``UnidentifiedImageError``,
    ``OSError`` ...) for a file that does not decode: the callers turn those into messages that
    name the file and the fix.
    """
    try:
        with Image.open(path) as im:
            im.load()
            return to_rgb8(exif_upright(im))
    except Image.DecompressionBombError as err:
        raise ImageTooLarge(too_large_message(Path(path), err)) from None


def too_large_message(path: Path, err: BaseException) -> str:
    """What to say about an image Pillow refused as a decompression bomb."""
    limit = 2 * (Image.MAX_IMAGE_PIXELS or 0)
    return (f"{path}: too large to decode safely ({err}); images of more than {limit:,} pixels are refused "
            "(a decompression bomb, or a scan far larger than a face needs). Resize it (a face needs a few "
            "hundred pixels), or leave it out.")
