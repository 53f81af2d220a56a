"""Differentiable linear algebra with numpy.linalg's names and semantics: stacks of matrices
(the last two axes), results as in NumPy, every function differentiable to any order, with
forward-mode and batching rules (see tapegrad/ops/linalg_inverse.py and
tapegrad/ops/linalg_decompositions.py for the derivative formulas and their conventions).

``eigh``, ``svd``, ``qr`` and ``slogdet`` return plain tuples (NumPy's named tuples unpack the
same way).
"""

from .ops.linalg import matmul
from .ops.linalg_decompositions import cholesky, eigh, eigvalsh, qr, svd, svdvals
from .ops.linalg_inverse import det, inv, pinv, slogdet, solve
from .ops.manipulation import diagonal, trace
from .ops.norms import norm
from .ops.products import cross, outer, tensordot

__all__ = ["cholesky", "cross", "det", "diagonal", "eigh", "eigvalsh", "inv", "matmul", "norm", "outer", "pinv",
           "qr", "slogdet", "solve", "svd", "svdvals", "tensordot", "trace"]
