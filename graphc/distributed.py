"""Data-parallel training over MPI (mpi4py): ``init``, ``rank``, ``size``, ``allreduce``, ``DataParallel``.

Install the extra (``pip install graphc[mpi]``: mpi4py and the mpich wheel, which brings
``mpiexec``) and start one process per worker:

    mpiexec -n 2 python examples/mnist_mlp.py --distributed
    mpiexec -hosts a,b -n 2 python train.py          # one process on each of two machines

In the script, train inside a ``DataParallel`` block (like Keras' ``with strategy.scope():``):

    import graphc as gc
    with gc.distributed.DataParallel():
        model.fit(x, y, batch_size=32, epochs=3)     # 32 samples per process and step

Inside the block ``fit`` gives each process its own shard of every step's batch (the same
shuffled order on every process: rank 0's seed), averages the gradients with one ``MPI_Allreduce``
per step over one contiguous buffer (a node of the compiled training step), and applies the same
update everywhere; the weights and the optimizer state start as rank 0's; the epoch's loss and
metrics are averaged over the processes; only rank 0 prints progress and runs the callbacks that
write files (``ModelCheckpoint``, ``CSVLogger``: ``rank_zero_only``). A process that raises inside
``fit`` prints the error and aborts the whole job (``MPI_Abort``) instead of leaving the others
waiting in the reduction.

Without MPI (mpi4py absent, or one process) ``rank()`` is 0, ``size()`` is 1 and everything above
runs as single-process training.

    >>> import graphc as gc
    >>> gc.distributed.rank(), gc.distributed.size()
    (0, 1)
"""
from __future__ import annotations

import contextlib
import contextvars
import sys
import traceback

import numpy as np

from .ops.distributed import allreduce, comm as _comm, import_mpi

__all__ = ["init", "rank", "size", "allreduce", "allreduce_gradients", "DataParallel", "current",
           "broadcast_arrays", "allreduce_array", "abort_on_error"]


def init():
    """Initialize MPI (importing ``mpi4py.MPI`` does) and return ``MPI.COMM_WORLD``; an
    ImportError names the extra to install when mpi4py is absent.

        comm = gc.distributed.init()       # under mpiexec -n 2: comm.Get_size() == 2
    """
    return import_mpi().COMM_WORLD


def rank() -> int:
    """This process's rank in the MPI job (0 without MPI).

        >>> import graphc as gc
        >>> gc.distributed.rank()
        0
    """
    c = _comm()
    return 0 if c is None else c.Get_rank()


def size() -> int:
    """The number of processes in the MPI job (1 without MPI).

        >>> import graphc as gc
        >>> gc.distributed.size()
        1
    """
    c = _comm()
    return 1 if c is None else c.Get_size()


def allreduce_gradients(grads: list, op: str = "mean") -> list:
    """``grads`` reduced over the processes with one ``allreduce`` node per dtype (one for the
    usual all-float32 model): the gradients are flattened into one contiguous buffer, reduced,
    and sliced back into their shapes. ``None`` entries stay ``None``.

        >>> import graphc as gc
        >>> a, b = gc.constant([[1.0, 2.0]]), gc.constant([3.0])
        >>> ra, rb = gc.distributed.allreduce_gradients([a, b])
        >>> ra.shape, rb.shape
        ((1, 2), (1,))
    """
    from . import ops
    out = list(grads)
    by_dtype: dict = {}
    for i, g in enumerate(grads):
        if g is not None:
            by_dtype.setdefault(np.dtype(g.dtype), []).append(i)
    for idx in by_dtype.values():
        flat = [ops.reshape(grads[i], (-1,)) for i in idx]
        sizes = [int(np.prod(grads[i].shape, dtype=np.int64)) for i in idx]
        if any(d is None for i in idx for d in grads[i].shape):
            raise ValueError("allreduce_gradients: every gradient needs a static shape, got "
                             + ", ".join(str(grads[i].shape) for i in idx))
        buf = allreduce(ops.concat(flat, axis=0) if len(flat) > 1 else flat[0], op=op,
                        name="gradient_allreduce")
        lo = 0
        for i, n in zip(idx, sizes):
            part = buf[lo:lo + n] if len(idx) > 1 else buf
            out[i] = ops.reshape(part, tuple(grads[i].shape))
            lo += n
    return out


def broadcast_arrays(arrays: list, root: int = 0) -> list:
    """Rank ``root``'s ``arrays`` on every process (one ``MPI_Bcast`` each); as given without MPI."""
    c = _comm()
    if c is None or c.Get_size() == 1:
        return [np.asarray(a) for a in arrays]
    out = []
    for a in arrays:
        buf = np.array(a, order="C")
        c.Bcast(buf, root=root)
        out.append(buf)
    return out


def allreduce_array(x, op: str = "sum") -> np.ndarray:
    """The sum or mean of the numpy array ``x`` over the processes (a Python-level reduction,
    outside any graph); ``x`` itself without MPI."""
    out = np.array(x, order="C")
    c = _comm()
    if c is None or c.Get_size() == 1:
        return out
    mpi = sys.modules["mpi4py.MPI"]
    c.Allreduce(mpi.IN_PLACE, out, op=mpi.SUM)
    return out / c.Get_size() if op == "mean" else out


@contextlib.contextmanager
def abort_on_error(what: str = "graphc"):
    """Inside the block, an exception on one process of a multi-process job prints the error
    (naming the rank) and calls ``MPI_Abort``, which ends every process of the job: the others
    would otherwise wait forever in their next collective call. Without MPI it changes nothing.
    """
    try:
        yield
    except BaseException as e:
        c = _comm()
        if c is None or c.Get_size() == 1:
            raise
        r = c.Get_rank()
        sys.stdout.flush()
        print(f"graphc.distributed: rank {r} of {c.Get_size()} failed in {what}: "
              f"{type(e).__name__}: {e}\n{traceback.format_exc()}"
              f"graphc.distributed: rank {r} aborts the MPI job (MPI_Abort)", file=sys.stderr,
              flush=True)
        c.Abort(1)
        raise       # not reached: Abort ends the process


_CURRENT: contextvars.ContextVar = contextvars.ContextVar("graphc_data_parallel", default=None)


class DataParallel:
    """The data-parallel strategy: inside ``with DataParallel():``, ``Model.fit`` trains on all
    the processes of the MPI job (see the module docstring). ``batch_size`` is per process: a step
    trains on ``batch_size * size()`` samples, each process reading its own ``batch_size``; the
    last incomplete global batch of each pass over the data is dropped, so every process runs the
    same number of steps. With one process ``fit`` is exactly the plain one.

        >>> import numpy as np, graphc as gc
        >>> from graphc.models import Sequential
        >>> from graphc.layers import Dense
        >>> m = Sequential([Dense(1, input_dim=2)]); m.compile("sgd", "mse")
        >>> with gc.distributed.DataParallel() as dp:
        ...     h = m.fit(np.ones((8, 2)), np.ones(8), batch_size=4, verbose=0)
        >>> dp.rank, dp.size, h.params["steps"]
        (0, 1, 2)
    """

    def __init__(self):
        self._token = None

    @property
    def rank(self) -> int:
        return rank()

    @property
    def size(self) -> int:
        return size()

    def scope(self):
        """Keras' spelling: ``with strategy.scope():`` is ``with strategy:``."""
        return self

    def __enter__(self):
        _comm()                 # initializes MPI when mpiexec started this process
        self._token = _CURRENT.set(self)
        return self

    def __exit__(self, *exc):
        _CURRENT.reset(self._token)
        self._token = None
        return False


def current() -> DataParallel | None:
    """The ``DataParallel`` strategy in force (the innermost ``with`` block), or None."""
    return _CURRENT.get()
