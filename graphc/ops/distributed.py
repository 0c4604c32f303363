"""The collective op: ``allreduce``, the MPI Allreduce of a tensor over the processes of an MPI job.

Every process of a data-parallel job runs the same graph; an ``allreduce`` node hands its input to
``MPI_Allreduce`` and returns the sum (or the mean) of that tensor over all the processes. The op has
no compiled kernel: the runtime runs ops without one through their numpy reference, and the reference
is the mpi4py call on the numpy buffer, so the interpreter and the compiled plans make the same call.
With one process, or when no MPI job is running, the sum and the mean over the single process are
the input itself, and the op is the identity (a copy).

MPI is imported lazily: graphc imports and runs without mpi4py. ``comm()`` is the communicator of
the job, or None: MPI is initialized by ``graphc.distributed.init()``, or on first use here when the
process was started by an MPI launcher (``mpiexec`` sets ``PMI_SIZE``/``OMPI_COMM_WORLD_SIZE``),
so a graph run under ``mpiexec -n 2`` never silently skips its reductions.

The record is ``stateful`` (it talks to other processes): passes never fold, merge or move it,
and bind-time folding leaves it alone, even when its input is a constant.

    >>> import graphc as gc
    >>> x = gc.constant([1.0, 2.0])
    >>> gc.distributed.allreduce(x, op="sum").shape
    (2,)
"""
from __future__ import annotations

import os
import sys

import numpy as np

from ..errors import DtypeError
from ..ir import TensorSpec
from .registry import OpDef, apply, convert_to_tensor, register

__all__: list = []          # public as graphc.distributed.allreduce

ALLREDUCE_MODES = ("sum", "mean")    # the reduction over the processes (attr "op")
_LAUNCHER_SIZE_VARS = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MPI_LOCALNRANKS")


def launched_by_mpi() -> bool:
    """True when an MPI launcher started this process as one of several (``mpiexec -n 2``)."""
    for var in _LAUNCHER_SIZE_VARS:
        try:
            if int(os.environ.get(var, "1")) > 1:
                return True
        except ValueError:
            pass
    return False


def import_mpi():
    """``mpi4py.MPI`` (importing it initializes MPI), or an ImportError saying how to install it."""
    try:
        from mpi4py import MPI
    except ImportError as e:
        raise ImportError(f"graphc.distributed needs mpi4py and an MPI library ({e}); install them "
                          "with `pip install graphc[mpi]` (mpi4py and the mpich wheel, which "
                          "provides mpiexec)") from None
    return MPI


def comm():
    """The job's ``MPI.COMM_WORLD``, or None when MPI is not in use (not initialized, and this
    process was not started by an MPI launcher)."""
    mod = sys.modules.get("mpi4py.MPI")
    if mod is not None and mod.Is_initialized() and not mod.Is_finalized():
        return mod.COMM_WORLD
    if launched_by_mpi():
        return import_mpi().COMM_WORLD
    return None


def _infer(specs, attrs):
    (x,) = specs
    if attrs["op"] == "mean" and x.dtype.kind != "f":
        raise DtypeError(f"allreduce(op='mean') needs a float tensor, got {x.dtype.name}; use "
                         "op='sum' or cast it")
    if x.dtype.kind not in "fiu":
        raise DtypeError(f"allreduce needs a numeric tensor, got {x.dtype.name}")
    return TensorSpec(x.shape, x.dtype)


def _reference(values, attrs):
    out = np.array(values[0], order="C")      # a C-contiguous copy (0-d stays 0-d), reduced in place
    c = comm()
    if c is None or c.Get_size() == 1:
        return out
    mpi = sys.modules["mpi4py.MPI"]
    c.Allreduce(mpi.IN_PLACE, out, op=mpi.SUM)
    if attrs["op"] == "mean":
        out /= out.dtype.type(c.Get_size())
    return out


def _grad(inputs, output, dy, attrs):
    # every process's loss reads the reduced value: d(sum of the losses)/dx is the same reduction of dy
    return [allreduce(dy, op=attrs["op"])]


register(OpDef(
    "allreduce", fusion="opaque", stateful=True, infer=_infer, reference=_reference, grad=_grad,
    doc="The sum or mean of the input over the processes of the MPI job (MPI_Allreduce)."))


def allreduce(tensor, op: str = "mean", name=None):
    """The sum (``op="sum"``) or mean (``op="mean"``) of ``tensor`` over the processes of the MPI
    job, as a graph op: one ``MPI_Allreduce`` each time the node runs. Its gradient is the same
    reduction of the incoming gradient. Without MPI (one process) it is the identity.

        >>> import graphc as gc
        >>> with gc.Session() as s:
        ...     s.run(gc.distributed.allreduce(gc.constant([1.0, 2.0]), op="mean")).tolist()
        [1.0, 2.0]
    """
    if op not in ALLREDUCE_MODES:
        raise ValueError(f"allreduce: op must be one of {', '.join(map(repr, ALLREDUCE_MODES))}, got {op!r}")
    x = convert_to_tensor(tensor)
    return apply("allreduce", [x], {"op": op}, name=name or "Allreduce")
