"""Datasets: iterables of ``(inputs, trues)`` batches for training loops and ``fit``.

* :class:`NDArrayDataset` batches in-memory arrays (Rindow's ``$nn->data->NDArrayDataset``);
* :class:`SequentialDataset` batches the samples of any iterable or generator function;
* :class:`CSVDataset` streams a CSV file in batches without loading it whole.
"""

from .base import Dataset, DatasetFilter
from .csv_dataset import CSVDataset, CSVFormatError
from .ndarray import NDArrayDataset
from .sequential import SequentialDataset

__all__ = ["CSVDataset", "CSVFormatError", "Dataset", "DatasetFilter", "NDArrayDataset", "SequentialDataset"]
