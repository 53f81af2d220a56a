"""Reading image files into ``(height, width, channels)`` uint8 arrays, with NumPy and zlib.

PNG (8-bit gray, gray+alpha, RGB, RGBA and palette images, not interlaced), BMP (24- and
32-bit uncompressed) and the netpbm formats PGM/PPM (binary) are read here; any other
format (JPEG, GIF, ...) is read with Pillow when it is installed, else the error says so.
:func:`fit_image` scales an image into a box keeping its aspect ratio (Rindow's
``fit``), with area averaging when shrinking and bilinear interpolation when enlarging.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

from ...errors import OpValueError

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


class ImageFormatError(OpValueError):
    """An image file that cannot be read (unknown format, damaged or unsupported variant)."""


def read_image(path: str | Path) -> np.ndarray:
    """The pixels of an image file, ``(height, width, channels)`` uint8 (channels 1-4)."""
    path = Path(path)
    data = path.read_bytes()
    try:
        if data.startswith(_PNG_SIGNATURE):
            return _read_png(data)
        if data[:2] == b"BM":
            return _read_bmp(data)
        if data[:2] in (b"P5", b"P6"):
            return _read_netpbm(data)
    except (ValueError, IndexError, struct.error, zlib.error) as exc:
        raise ImageFormatError(f"{path}: cannot read the image ({exc})") from None
    try:
        from PIL import Image
    except ImportError:
        raise ImageFormatError(f"{path}: not a PNG, BMP or PGM/PPM file; other formats (JPEG, GIF, ...) need "
                               "Pillow (pip install pillow)") from None
    with Image.open(path) as image:
        array = np.asarray(image.convert("RGBA" if "A" in image.getbands() else "RGB"))
    return array.reshape(array.shape[0], array.shape[1], -1).astype(np.uint8, copy=False)


def _read_png(data: bytes) -> np.ndarray:
    pos = 8
    header = None
    palette = None
    idat = []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"PLTE":
            palette = np.frombuffer(body, np.uint8).reshape(-1, 3)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    if header is None:
        raise ValueError("no IHDR chunk")
    width, height, depth, color, _, _, interlace = header
    if depth != 8 or interlace or color not in _PNG_CHANNELS:
        raise ValueError(f"only 8-bit, non-interlaced PNG images are read (bit depth {depth}, color type {color}, "
                         f"interlace {interlace})")
    channels = _PNG_CHANNELS[color]
    raw = np.frombuffer(zlib.decompress(b"".join(idat)), np.uint8)
    stride = width * channels
    rows = raw.reshape(height, stride + 1)
    out = np.zeros((height, stride), np.uint8)
    prior = np.zeros(stride, np.int32)
    for y in range(height):
        kind, line = rows[y, 0], rows[y, 1:].astype(np.int32)
        if kind == 0:
            cur = line
        elif kind == 1:  # Sub: a running sum along the row, per channel
            cur = (np.cumsum(line.reshape(width, channels), axis=0) & 0xFF).reshape(stride)
        elif kind == 2:
            cur = (line + prior) & 0xFF
        else:  # Average and Paeth depend on the pixel to the left: one pass per pixel
            cur = np.zeros(stride, np.int32)
            for i in range(stride):
                left = cur[i - channels] if i >= channels else 0
                up = prior[i]
                if kind == 3:
                    pred = (left + up) >> 1
                elif kind == 4:
                    up_left = prior[i - channels] if i >= channels else 0
                    p = left + up - up_left
                    pa, pb, pc = abs(p - left), abs(p - up), abs(p - up_left)
                    pred = left if pa <= pb and pa <= pc else up if pb <= pc else up_left
                else:
                    raise ValueError(f"unknown PNG filter type {kind} in row {y}")
                cur[i] = (line[i] + pred) & 0xFF
        out[y] = cur
        prior = cur
    image = out.reshape(height, width, channels)
    if color == 3:
        if palette is None:
            raise ValueError("a palette image without a PLTE chunk")
        image = palette[image[..., 0]]
    return image


def _read_bmp(data: bytes) -> np.ndarray:
    offset = struct.unpack("<I", data[10:14])[0]
    width, height = struct.unpack("<ii", data[18:26])
    bits, compression = struct.unpack("<HI", data[28:34])
    if bits not in (24, 32) or compression not in (0, 3):
        raise ValueError(f"only uncompressed 24- and 32-bit BMP images are read (bits {bits}, compression "
                         f"{compression})")
    step = bits // 8
    stride = (width * step + 3) & ~3
    rows = np.frombuffer(data, np.uint8, count=stride * abs(height), offset=offset).reshape(abs(height), stride)
    pixels = rows[:, :width * step].reshape(abs(height), width, step)[..., [2, 1, 0]]  # BGR(A) -> RGB
    return np.ascontiguousarray(pixels[::-1] if height > 0 else pixels)  # positive height: bottom-up rows


def _read_netpbm(data: bytes) -> np.ndarray:
    fields: list[bytes] = []
    pos = 2
    while len(fields) < 3:
        while data[pos:pos + 1].isspace():
            pos += 1
        if data[pos:pos + 1] == b"#":
            pos = data.index(b"\n", pos) + 1
            continue
        start = pos
        while not data[pos:pos + 1].isspace():
            pos += 1
        fields.append(data[start:pos])
    width, height, maxval = (int(f) for f in fields)
    if maxval > 255:
        raise ValueError(f"only 8-bit PGM/PPM images are read (maxval {maxval})")
    channels = 3 if data[:2] == b"P6" else 1
    return np.frombuffer(data, np.uint8, count=width * height * channels, offset=pos + 1).reshape(
        height, width, channels).copy()


def to_channels(image: np.ndarray, channels: int) -> np.ndarray:
    """``image`` with 1 (luma), 3 (RGB) or 4 (RGBA) channels."""
    have = image.shape[2]
    if have == channels:
        return image
    rgb = image[..., :3] if have >= 3 else np.repeat(image[..., :1], 3, axis=2)
    if channels == 3:
        return rgb
    if channels == 1:
        luma = rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
        return np.clip(np.rint(luma), 0, 255).astype(np.uint8)[..., None]
    alpha = image[..., -1:] if have in (2, 4) else np.full(image.shape[:2] + (1,), 255, np.uint8)
    return np.concatenate([rgb, alpha], axis=2)


def resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """``image`` resampled to ``(height, width)``: each axis by area averaging when it
    shrinks and by linear interpolation when it grows."""
    out = image.astype(np.float32)
    out = _resample(out, height, axis=0)
    out = _resample(out, width, axis=1)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _resample(a: np.ndarray, size: int, axis: int) -> np.ndarray:
    n = a.shape[axis]
    if n == size:
        return a
    if size < n:  # area: each output cell averages the input cells it covers, by overlap
        edges = np.linspace(0.0, n, size + 1)
        weights = np.zeros((size, n), np.float32)
        for i in range(size):
            lo, hi = edges[i], edges[i + 1]
            for j in range(int(lo), min(int(np.ceil(hi)), n)):
                weights[i, j] = min(hi, j + 1) - max(lo, j)
            weights[i] /= weights[i].sum()
    else:  # linear, pixel centres aligned
        pos = np.clip((np.arange(size) + 0.5) * n / size - 0.5, 0, n - 1)
        lo = np.floor(pos).astype(int)
        hi = np.minimum(lo + 1, n - 1)
        frac = (pos - lo).astype(np.float32)
        weights = np.zeros((size, n), np.float32)
        weights[np.arange(size), lo] += 1 - frac
        weights[np.arange(size), hi] += frac
    return np.moveaxis(np.tensordot(weights, np.moveaxis(a, axis, 0), axes=1), 0, axis)


def fit_image(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """``image`` scaled to fit in ``(height, width)`` keeping its aspect ratio, centred on
    black (Rindow's ``fit``)."""
    ih, iw = image.shape[:2]
    if (ih, iw) == (height, width):
        return image
    scale = min(height / ih, width / iw)
    nh, nw = max(1, round(ih * scale)), max(1, round(iw * scale))
    scaled = resize(image, nh, nw)
    out = np.zeros((height, width, image.shape[2]), np.uint8)
    top, left = (height - nh) // 2, (width - nw) // 2
    out[top:top + nh, left:left + nw] = scaled
    return out


def center(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """The ``(height, width)`` middle of ``image``, cropped or padded with black (Rindow
    without ``fit``)."""
    ih, iw = image.shape[:2]
    out = np.zeros((height, width, image.shape[2]), np.uint8)
    oy, ox = (ih - height) // 2, (iw - width) // 2
    sy, sx = max(oy, 0), max(ox, 0)
    dy, dx = max(-oy, 0), max(-ox, 0)
    h, w = min(height - dy, ih - sy), min(width - dx, iw - sx)
    out[dy:dy + h, dx:dx + w] = image[sy:sy + h, sx:sx + w]
    return out
