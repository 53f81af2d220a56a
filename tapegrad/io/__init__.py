"""File I/O: the model file container (JSON metadata + raw arrays + SHA-256, no pickle)
and atomic writes. The model-level format (what the metadata holds) lives in
:mod:`tapegrad.nn.models.saving`."""

from .atomic import atomic_write, fsync_directory
from .container import DTYPES, MAGIC, VERSION, ModelFileError, read_container, write_container

__all__ = [
    "DTYPES", "MAGIC", "VERSION", "ModelFileError", "atomic_write", "fsync_directory",
    "read_container", "write_container",
]
