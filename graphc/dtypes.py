"""The dtypes graphc supports and how Python values map onto them.

    >>> import graphc as gc
    >>> gc.as_dtype("float32") is gc.float32
    True
"""
from __future__ import annotations

import numpy as np

from .errors import DtypeError

float32 = np.dtype("float32")
float64 = np.dtype("float64")
int32 = np.dtype("int32")
int64 = np.dtype("int64")
bool_ = np.dtype("bool")

SUPPORTED = (float32, float64, int32, int64, bool_)
INTS = (int32, int64)
_BY_NAME = {d.name: d for d in SUPPORTED}
_BY_NAME.update({"float": float32, "int": int32, "bool_": bool_})


def as_dtype(dtype) -> np.dtype:
    """Return the canonical ``np.dtype`` for ``dtype`` (a name, numpy type or dtype)."""
    if isinstance(dtype, str):
        d = _BY_NAME.get(dtype)
        if d is None:
            raise DtypeError(f"unknown dtype {dtype!r}; graphc supports "
                             f"{', '.join(x.name for x in SUPPORTED)}")
        return d
    try:
        d = np.dtype(dtype)
    except TypeError as e:
        raise DtypeError(f"cannot interpret {dtype!r} as a dtype: {e}") from None
    if d not in SUPPORTED:
        raise DtypeError(f"dtype {d.name} is not supported; graphc supports "
                         f"{', '.join(x.name for x in SUPPORTED)}; cast the value first")
    return d


def array_for_value(value, dtype=None) -> np.ndarray:
    """Convert a Python/numpy value to an array the way TensorFlow does.

    Python floats become float32 and Python ints int32 (unless ``dtype`` says
    otherwise); numpy arrays keep their dtype (float16 is widened to float32).
    """
    if dtype is not None:
        dtype = as_dtype(dtype)
        arr = np.array(value)
        if arr.dtype != dtype:
            if arr.dtype.kind == "f" and dtype.kind in "iub" and not np.all(np.isfinite(arr)):
                raise DtypeError(f"cannot convert non-finite values to {dtype.name}")
            arr = arr.astype(dtype)
        return arr
    if isinstance(value, np.ndarray) or isinstance(value, np.generic):
        arr = np.array(value)  # a copy: later changes to the user's array do not reach the graph
        if arr.dtype == np.float16:
            return arr.astype(float32)
        if arr.dtype.kind == "u":
            return arr.astype(int64 if arr.dtype.itemsize >= 4 else int32)
        as_dtype(arr.dtype)  # raises for unsupported dtypes
        return arr
    arr = np.asarray(value)
    if arr.dtype.kind == "f":
        return arr.astype(float32)
    if arr.dtype.kind in "iu":
        if arr.size and (arr.max() > np.iinfo(np.int32).max or arr.min() < np.iinfo(np.int32).min):
            return arr.astype(int64)
        return arr.astype(int32)
    if arr.dtype.kind == "b":
        return arr
    raise DtypeError(f"cannot make a tensor from {type(value).__name__} "
                     f"(numpy dtype {arr.dtype}); pass numbers, bools or numpy arrays")
