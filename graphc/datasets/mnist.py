"""MNIST from the IDX ``.gz`` files: ``(x_train, y_train), (x_test, y_test) = load_data()``.

Where the images come from:

* ``load_data(path)``: the files in the folder ``path``;
* else, when ``$GRAPHC_DATA`` is set: ``$GRAPHC_DATA/mnist``, then ``$GRAPHC_DATA``;
* else the copy installed with graphc (``graphc/datasets/data/``): the MNIST **test set only**
  (the 10,000 ``t10k`` images; the 60,000 training images are not shipped).

A folder with the four standard files gives the usual 60,000 train / 10,000 test split. With
only the ``t10k`` pair, which is always the case for the installed copy, the 10,000 test-set
images are split into the first 8,000 (returned as "train") and the last 2,000 (returned as
"test"), so a model trained on them is evaluated on images it has not seen, but every image comes
from MNIST's test set. Images are ``uint8`` ``(n, 28, 28)``, labels ``uint8`` ``(n,)``. Nothing
is downloaded.

    >>> from graphc.datasets import mnist
    >>> (x_train, y_train), (x_test, y_test) = mnist.load_data()   # the installed test set
    >>> x_train.shape, x_test.shape, y_train.dtype
    ((8000, 28, 28), (2000, 28, 28), dtype('uint8'))

MNIST is by Yann LeCun, Corinna Cortes and Christopher J.C. Burges, under CC BY-SA 3.0; see the
NOTICE file at the root of the repository (also in the wheel's ``.dist-info/licenses``).
"""
from __future__ import annotations

import gzip
import os

import numpy as np

from .. import config

TRAIN = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")
TEST = ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
N_SPLIT_TRAIN = 8000
#: The folder of the MNIST test set installed with graphc (the two ``t10k-*.gz`` files).
PACKAGE_DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")


def read_idx(filename) -> np.ndarray:
    """Read one IDX file (optionally gzipped) into a numpy array.

        >>> import os
        >>> from graphc.datasets import mnist
        >>> mnist.read_idx(os.path.join(mnist.PACKAGE_DATA, "t10k-labels-idx1-ubyte.gz"))[:5]
        array([7, 2, 1, 0, 4], dtype=uint8)
    """
    opener = gzip.open if str(filename).endswith(".gz") else open
    with opener(filename, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(f"{filename} is not an IDX file (bad magic number)")
    dtype = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}[data[2]]
    ndim = data[3]
    dims = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    arr = np.frombuffer(data, dtype=dtype, offset=4 + 4 * ndim)
    if arr.size != int(np.prod(dims)):
        raise ValueError(f"{filename}: expected {int(np.prod(dims))} values, found {arr.size}")
    return arr.reshape(dims).astype(np.dtype(dtype).newbyteorder("="))


def _candidates(path):
    """The folders to look in, and whether they were asked for (an explicit path or $GRAPHC_DATA)."""
    if path is not None:
        return [os.fspath(path)], True
    env = config.get().data_dir
    if env:
        return [os.path.join(env, "mnist"), env], True
    return [PACKAGE_DATA], False


def _find(folder, stem):
    for name in (stem + ".gz", stem):
        p = os.path.join(folder, name)
        if os.path.exists(p):
            return p
    return None


def load_data(path=None):
    """``(x_train, y_train), (x_test, y_test)`` as uint8 arrays (see the module docstring).

    ``path``: a folder with ``t10k-images-idx3-ubyte[.gz]`` and ``t10k-labels-idx1-ubyte[.gz]``
    and, for the full 60,000-image training set, the ``train-*`` pair. Without it,
    ``$GRAPHC_DATA`` is read, and without that the MNIST test set installed with graphc
    (8,000 / 2,000 of its 10,000 images).

        >>> (x, y), (xt, yt) = load_data()
        >>> len(x) + len(xt), int(x.max()), sorted(set(y.tolist())) == list(range(10))
        (10000, 255, True)
    """
    folders, asked = _candidates(path)
    for folder in folders:
        test = [_find(folder, s) for s in TEST]
        if not all(test):
            continue
        x_test, y_test = read_idx(test[0]), read_idx(test[1])
        train = [_find(folder, s) for s in TRAIN]
        if all(train):
            return (read_idx(train[0]), read_idx(train[1])), (x_test, y_test)
        n = N_SPLIT_TRAIN
        return (x_test[:n], y_test[:n]), (x_test[n:], y_test[n:])
    where = ", ".join(folders)
    if not asked:
        raise FileNotFoundError(
            f"MNIST files not found: the test set installed with graphc should be in {where} "
            "(t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz) but is not; reinstall "
            "graphc (pip install .), or pass load_data(path='folder/with/files') or set "
            "GRAPHC_DATA to a folder holding the MNIST IDX files.")
    source = f"path={path!r}" if path is not None else "$GRAPHC_DATA"
    raise FileNotFoundError(
        "MNIST files not found: looked for t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz "
        f"(and optionally the train-* pair) in {where} (from {source}). Pass "
        "load_data(path='folder/with/files') or set GRAPHC_DATA to a folder holding them (or a "
        "folder with an 'mnist' subfolder); without either, load_data() returns the MNIST test set "
        "installed with graphc.")
