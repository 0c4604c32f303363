"""Shared helpers for the MNIST examples: data location, loading, epoch timing, reporting.

Data is read from ``--data DIR``, else ``$GRAPHC_DATA``, else the MNIST test set installed with
graphc (``graphc.datasets.mnist``): 8,000 train / 2,000 held out whenever only the t10k files are
there, which is always the case for the installed copy.

The examples import the installed graphc (``pip install -e .`` or ``pip install .``), never the
checkout's ``graphc/`` folder directly: ``graphc.passes`` and ``graphc.runtime`` live in the
top-level ``passes/`` and ``runtime/`` folders, which only the installation maps into the package.
"""
from __future__ import annotations

import argparse
import contextlib
import time

import numpy as np

try:
    from graphc.callbacks import Callback
except ImportError as e:  # pragma: no cover - depends on the environment
    raise SystemExit(f"graphc is not installed ({e}): run `pip install -e .` in the repository root "
                     "first (see README.md, Quick start).") from e


class EpochTimer(Callback):
    """Records the wall time of each epoch of ``fit`` (``times``)."""

    def on_train_begin(self, logs=None):
        self.times = []

    def on_epoch_begin(self, epoch, logs=None):
        self.t0 = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self.t0)


def data_path(arg):
    """The folder to read MNIST from: ``--data``, else None (``mnist.load_data`` then reads
    ``$GRAPHC_DATA``, else the test set installed with graphc)."""
    return arg or None


def parser(doc, epochs, batch_size=32):
    ap = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    ap.add_argument("--epochs", type=int, default=epochs)
    ap.add_argument("--batch-size", type=int, default=batch_size)
    ap.add_argument("--data", default=None,
                    help="folder with the MNIST IDX .gz files (default: $GRAPHC_DATA, else the "
                         "MNIST test set installed with graphc, split 8,000 train / 2,000 held out)")
    ap.add_argument("--verbose", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--distributed", action="store_true",
                    help="data-parallel training over the processes of an MPI job: run as "
                         "`mpiexec -n 2 python examples/mnist_mlp.py --distributed` (batch size "
                         "per process; needs pip install graphc[mpi])")
    return ap


def training_scope(args):
    """``graphc.distributed.DataParallel()`` with ``--distributed``, else a block that changes nothing."""
    if not args.distributed:
        return contextlib.nullcontext()
    import graphc.distributed
    return graphc.distributed.DataParallel()


def is_chief() -> bool:
    """Rank 0 of an MPI job, or the only process: the one that prints the report."""
    import graphc.distributed
    return graphc.distributed.rank() == 0


def load_mnist(data=None, shape=(784,), one_hot=True):
    """MNIST scaled to [0, 1] float32 and reshaped to ``(n,) + shape``; labels one-hot or ints."""
    from graphc.datasets import mnist
    from graphc.utils import to_categorical
    (x_train, y_train), (x_test, y_test) = mnist.load_data(data_path(data))
    x_train = x_train.reshape((len(x_train),) + tuple(shape)).astype("float32") / 255.0
    x_test = x_test.reshape((len(x_test),) + tuple(shape)).astype("float32") / 255.0
    if one_hot:
        y_train, y_test = to_categorical(y_train, 10), to_categorical(y_test, 10)
    return (x_train, y_train), (x_test, y_test)


def mean_after_first(times) -> float:
    return float(np.mean(times[1:] or times))


def report(acc, loss, n, times, what="held-out accuracy"):
    if not is_chief():
        return
    print(f"{what}: {acc:.4f} (loss {loss:.4f}) on {n} samples")
    print("time per epoch: " + ", ".join(f"{t:.3f}s" for t in times) +
          f" (mean after the first: {mean_after_first(times):.3f}s)")


def seed_all(seed):
    from graphc.utils import set_random_seed
    set_random_seed(seed)
