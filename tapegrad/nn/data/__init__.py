"""Datasets: iterables of ``(inputs, trues)`` batches for training loops and ``fit``.

* :class:`NDArrayDataset` batches in-memory arrays (Rindow's ``$nn->data->NDArrayDataset``);
* :class:`SequentialDataset` batches the samples (or chunks) of any iterable or generator function;
* :class:`CSVDataset` streams a CSV file in batches without loading it whole;
* :class:`ClassifiedDirectoryDataset`, :class:`TextClassifiedDataset` and
  :class:`ImageClassifiedDataset` read files sorted into one folder per class;
* :class:`ImageFilter` / :func:`ImageDataGenerator` augment image batches;
* :class:`Tokenizer`, :class:`Preprocessor` (``pad_sequences``) and :class:`TextFilter` turn
  texts into integer sequences.
"""

from .base import Dataset, DatasetFilter
from .csv_dataset import CSVDataset, CSVFormatError
from .directory import ClassifiedDirectoryDataset, TextClassifiedDataset
from .image import ImageClassifiedDataset, ImageDataGenerator, ImageFilter
from .image_files import ImageFormatError
from .ndarray import NDArrayDataset
from .sequential import SequentialDataset
from .text import Preprocessor, TextFilter, Tokenizer, pad_sequences

__all__ = [
    "CSVDataset", "CSVFormatError", "ClassifiedDirectoryDataset", "Dataset", "DatasetFilter", "ImageClassifiedDataset",
    "ImageDataGenerator", "ImageFilter", "ImageFormatError", "NDArrayDataset", "Preprocessor", "SequentialDataset",
    "TextClassifiedDataset", "TextFilter", "Tokenizer", "pad_sequences",
]
