"""Images: :class:`ImageFilter` (random shifts, flips and rotations of each batch),
:func:`ImageDataGenerator` (a dataset with that filter) and :class:`ImageClassifiedDataset`
(image files sorted into class folders), as Rindow's.

Shifts and flips follow Rindow's ``imagecopy``: an image shifted by ``dy`` rows shows at
row ``y`` the (flipped) source row ``y - dy``, and rows beyond the border repeat the edge.
Rotations (Keras's ``rotation_range``, in degrees) turn each image about its centre by a
random angle, with the nearest source pixel and the same edge rule.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ... import _dtypes
from ...autodiff.variable import Variable
from ...errors import OpValueError
from .base import DatasetFilter, library_generator, make_generator
from .directory import ClassifiedDirectoryDataset
from .image_files import center, fit_image, read_image, to_channels
from .ndarray import NDArrayDataset


def _shift_amount(value: Any, owner: str, arg: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or value < 0:
        raise OpValueError(f"{owner}: {arg} must be a number >= 0 (pixels, or a fraction of the size below 1), "
                           f"got {value!r}")
    return float(value)


class ImageFilter(DatasetFilter):
    """Random augmentation of a batch of images ``(n, height, width, channels)`` (or
    channels first): each image is shifted by a random whole number of pixels in
    ``[-height_shift, height_shift]`` and ``[-width_shift, width_shift]`` (a value below 1
    is a fraction of the size), flipped vertically and horizontally with probability 1/2
    when asked, and turned by a random angle in ``[-rotation_range, rotation_range]``
    degrees. The targets pass unchanged. ``seed``: an int or Generator (default: the
    library's generator, ``tapegrad.set_seed``)."""

    def __init__(
        self,
        data_format: str | None = "channels_last",
        height_shift: float = 0,
        width_shift: float = 0,
        vertical_flip: bool = False,
        horizontal_flip: bool = False,
        rotation_range: float = 0,
        seed: int | np.random.Generator | None = None,
    ) -> None:
        owner = "ImageFilter"
        data_format = data_format or "channels_last"
        if data_format not in ("channels_last", "channels_first"):
            raise OpValueError(f"{owner}: data_format must be 'channels_last' or 'channels_first', got "
                               f"{data_format!r}")
        self.channels_first = data_format == "channels_first"
        self.height_shift = _shift_amount(height_shift, owner, "height_shift")
        self.width_shift = _shift_amount(width_shift, owner, "width_shift")
        self.vertical_flip = bool(vertical_flip)
        self.horizontal_flip = bool(horizontal_flip)
        self.rotation_range = _shift_amount(rotation_range, owner, "rotation_range")
        self._generator = make_generator(seed, owner)

    @staticmethod
    def _pixels(shift: float, size: int) -> int:
        return int(math.floor(size * shift)) if 0 < shift < 1 else int(math.floor(shift))

    def translate(self, inputs: Any, tests: Any = None, options: Any = None) -> tuple[np.ndarray, Any]:
        images = inputs.value() if isinstance(inputs, Variable) else np.asarray(inputs)
        if images.ndim != 4:
            raise OpValueError(f"ImageFilter: inputs must be a batch of images (n, height, width, channels), got "
                               f"shape {images.shape}")
        if self.channels_first:
            images = images.transpose(0, 2, 3, 1)
        n, h, w, _ = images.shape
        rng = self._generator if self._generator is not None else library_generator()
        dy_max, dx_max = self._pixels(self.height_shift, h), self._pixels(self.width_shift, w)
        dy = rng.integers(-dy_max, dy_max + 1, n) if dy_max else np.zeros(n, int)
        dx = rng.integers(-dx_max, dx_max + 1, n) if dx_max else np.zeros(n, int)
        flip_y = rng.integers(0, 2, n).astype(bool) if self.vertical_flip else np.zeros(n, bool)
        flip_x = rng.integers(0, 2, n).astype(bool) if self.horizontal_flip else np.zeros(n, bool)
        angle = np.deg2rad(rng.uniform(-self.rotation_range, self.rotation_range, n)) if self.rotation_range \
            else np.zeros(n)
        # For each output pixel, the source pixel: undo the shift, then the rotation, then the flip.
        y = np.arange(h, dtype=np.float64)[None, :, None] - dy[:, None, None]
        x = np.arange(w, dtype=np.float64)[None, None, :] - dx[:, None, None]
        if self.rotation_range:
            cy, cx = (h - 1) / 2, (w - 1) / 2
            cos, sin = np.cos(angle)[:, None, None], np.sin(angle)[:, None, None]
            y, x = cy + (y - cy) * cos - (x - cx) * sin, cx + (y - cy) * sin + (x - cx) * cos
        y = np.where(flip_y[:, None, None], h - 1 - y, y)
        x = np.where(flip_x[:, None, None], w - 1 - x, x)
        sy = np.clip(np.rint(y), 0, h - 1).astype(np.intp)
        sx = np.clip(np.rint(x), 0, w - 1).astype(np.intp)
        sy, sx = np.broadcast_arrays(sy, sx)
        out = images[np.arange(n)[:, None, None], sy, sx]
        if self.channels_first:
            out = out.transpose(0, 3, 1, 2)
        return np.ascontiguousarray(out), tests


def ImageDataGenerator(  # noqa: N802 - Rindow's builder method, which makes a dataset
    inputs: Any,
    tests: Any = None,
    batch_size: int = 32,
    shuffle: bool = True,
    data_format: str | None = "channels_last",
    height_shift: float = 0,
    width_shift: float = 0,
    vertical_flip: bool = False,
    horizontal_flip: bool = False,
    rotation_range: float = 0,
    seed: int | np.random.Generator | None = None,
) -> Any:
    """A dataset whose batches pass through an :class:`ImageFilter`: an
    :class:`NDArrayDataset` of ``inputs`` and ``tests``, or, when ``inputs`` is a dataset,
    that dataset with its filter set (Rindow's ``$nn->data->ImageDataGenerator``)."""
    image_filter = ImageFilter(data_format=data_format, height_shift=height_shift, width_shift=width_shift,
                               vertical_flip=vertical_flip, horizontal_flip=horizontal_flip,
                               rotation_range=rotation_range, seed=seed)
    if hasattr(inputs, "set_filter") and not isinstance(inputs, (np.ndarray, Variable)):
        if tests is not None:
            raise OpValueError("ImageDataGenerator: tests must be None when inputs is a dataset")
        inputs.set_filter(image_filter)
        return inputs
    return NDArrayDataset(inputs, tests=tests, batch_size=batch_size, shuffle=shuffle, filter=image_filter, seed=seed)


class ImageClassifiedDataset(ClassifiedDirectoryDataset):
    """Image files (PNG, BMP, PGM/PPM; others with Pillow) sorted into class folders, as
    ``(images, class ids)`` batches: images ``(n, height, width, channels)`` of ``dtype``,
    scaled into the size keeping their aspect ratio (``fit=True``) or cropped / padded
    around their centre. Class ids follow ``classnames``, then the order met.
    ``load_data()`` reads every file at once; ``classnames()`` lists the names by id."""

    _owner = "ImageClassifiedDataset"

    def __init__(
        self,
        path: str | os.PathLike[str],
        height: int = 32,
        width: int = 32,
        channels: int = 3,
        fit: bool = True,
        dtype: Any = "uint8",
        dtype_class_id: Any = "int32",
        classnames: Sequence[str] | None = None,
        verbose: int = 0,
        pattern: str | None = None,
        batch_size: int = 32,
        filter: Any = None,
        unclassified: bool = False,
        shuffle: bool = False,
        limit: int | None = None,
        restricted_by_class: Sequence[str] | None = None,
        seed: int | np.random.Generator | None = None,
    ) -> None:
        super().__init__(path, pattern=pattern, batch_size=batch_size, filter=filter, unclassified=unclassified,
                         shuffle=shuffle, limit=limit, restricted_by_class=restricted_by_class, seed=seed)
        for arg, value in (("height", height), ("width", width)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise OpValueError(f"{self._owner}: {arg} must be a positive int, got {value!r}")
        if channels not in (1, 3, 4):
            raise OpValueError(f"{self._owner}: channels must be 1, 3 or 4, got {channels!r}")
        self.height, self.width, self.channels, self.fit = int(height), int(width), int(channels), bool(fit)
        self.dtype = _dtypes.as_dtype(dtype, self._owner)
        self.dtype_class_id = _dtypes.as_dtype(dtype_class_id, self._owner)
        self._classes: dict[str, int] = {str(name): i for i, name in enumerate(classnames or [])}
        self.verbose = int(verbose)

    def read_contents(self, path: Path) -> np.ndarray:
        image = to_channels(read_image(path), self.channels)
        image = fit_image(image, self.height, self.width) if self.fit else center(image, self.height, self.width)
        return image.astype(self.dtype, copy=False)

    def make_batch_inputs(self, contents: list[Any]) -> np.ndarray:
        return np.stack(contents) if contents else np.zeros((0, self.height, self.width, self.channels), self.dtype)

    def make_batch_tests(self, labels: list[str]) -> np.ndarray:
        return np.array([self._class_id(label) for label in labels], dtype=self.dtype_class_id)

    def _class_id(self, name: str) -> int:
        label = self._classes.get(name)
        if label is None:
            label = self._classes[name] = len(self._classes)
        return label

    def classnames(self) -> list[str]:
        return [name for name, _ in sorted(self._classes.items(), key=lambda item: item[1])]

    def load_data(self) -> tuple[np.ndarray, np.ndarray]:
        """``(images, class ids)`` of every file."""
        files = self.files()
        if self.verbose:
            print(f"{self._owner}: reading {len(files)} images under {self.path}", file=sys.stderr, flush=True)
        images = self.make_batch_inputs([self.read_contents(p) for p, _ in files])
        return images, self.make_batch_tests([label for _, label in files])

