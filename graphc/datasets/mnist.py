"""MNIST from the IDX ``.gz`` files: ``(x_train, y_train), (x_test, y_test) = load_data()``.

The files are looked up in ``path`` (a folder), else ``$GRAPHC_DATA/mnist`` and
``$GRAPHC_DATA``. With the four standard files the usual 60,000/10,000 split is
returned; with only the ``t10k`` pair (10,000 images) they are split 8,000 train
/ 2,000 held out. Images are ``uint8`` ``(n, 28, 28)``, labels ``uint8`` ``(n,)``.
Nothing is downloaded.
"""
from __future__ import annotations

import gzip
import os

import numpy as np

from .. import config

TRAIN = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")
TEST = ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
N_SPLIT_TRAIN = 8000


def read_idx(filename) -> np.ndarray:
    """Read one IDX file (optionally gzipped) into a numpy array."""
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
    if path is not None:
        return [os.fspath(path)]
    env = config.get().data_dir
    return [os.path.join(env, "mnist"), env] if env else []


def _find(folder, stem):
    for name in (stem + ".gz", stem):
        p = os.path.join(folder, name)
        if os.path.exists(p):
            return p
    return None


def load_data(path=None):
    """``(x_train, y_train), (x_test, y_test)`` as uint8 arrays (see the module docstring)."""
    folders = _candidates(path)
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
    where = ", ".join(folders) if folders else "(no path given and $GRAPHC_DATA is not set)"
    raise FileNotFoundError(
        "MNIST files not found: looked for t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz "
        f"(and optionally the train-* pair) in {where}. Pass load_data(path='folder/with/files') "
        "or set GRAPHC_DATA to a folder holding them (or a folder with an 'mnist' subfolder).")
