"""Layers. Each builds its weights from the shape of its first input."""

from .base import Layer, reset_names, unique_name

__all__ = ["Layer", "reset_names", "unique_name"]
