"""Standard datasets as NumPy arrays: ``(x_train, y_train), (x_test, y_test) = mnist()``.

* :func:`mnist`, :func:`fashion_mnist`: the standard IDX files (``*-idx3-ubyte.gz``);
* :func:`cifar10`: the binary version (``cifar-10-binary.tar.gz``);
* :func:`digits`: scikit-learn's bundled 8x8 digits (optional dependency), offline.

Files are kept in ``$TAPEGRAD_DATASETS/<name>/`` when that environment variable is set,
else in ``~/.tapegrad/datasets/<name>/`` (``<name>`` is ``mnist``, ``fashion_mnist`` or
``cifar10``); a ``cache_dir`` argument names the directory directly. Missing files are
downloaded where the network allows (``download=False`` forbids it); otherwise the error
lists the exact files and the directory to put them in. Each function is also reachable
as ``<name>.load_data()``, as in ``keras.datasets.mnist.load_data()``, and what it returns
has a ``load_data()`` method too, as Rindow writes ``$nn->datasets()->mnist()->loadData()``
(``cifar10()``'s gives Rindow's per-file chunks, for ``SequentialDataset``).
"""

from ._cifar10 import cifar10
from ._digits import digits
from ._files import ENV_VAR, CorruptDatasetError, DatasetNotFoundError, MissingDependencyError, dataset_dir
from ._mnist import fashion_mnist, mnist

for _loader in (mnist, fashion_mnist, cifar10, digits):
    _loader.load_data = _loader  # type: ignore[attr-defined]
del _loader

__all__ = [
    "ENV_VAR", "CorruptDatasetError", "DatasetNotFoundError", "MissingDependencyError", "cifar10", "dataset_dir",
    "digits", "fashion_mnist", "mnist",
]
