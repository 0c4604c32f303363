"""One-file model saving: an ``.npz`` holding the JSON config, the compile settings and every
weight array, written atomically (a temporary file in the same folder, then ``os.replace``),
so a crash while saving leaves any previous file intact.

    >>> import os, tempfile
    >>> from graphc.models import Sequential, load_model
    >>> from graphc.layers import Dense
    >>> m = Sequential([Dense(2, input_dim=3)])
    >>> path = os.path.join(tempfile.mkdtemp(), "m.npz"); m.save(path)
    >>> [w.shape for w in load_model(path).get_weights()]
    [(3, 2), (2,)]
"""
from __future__ import annotations

import io
import json
import os
import tempfile

import numpy as np

from ..layers.base import WEIGHTS_TO_COME
from .serialization import deserialize_layer, serialize_layer

FORMAT = "graphc-model-1"


def _write_atomic(path: str, arrays: dict) -> None:
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            _savez(f, arrays)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())    # as open() would create it (mkstemp makes it 0600)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _umask() -> int:
    try:                                # Linux: read it without changing it
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o22)               # elsewhere: the classic read (set and restore)
    os.umask(mask)
    return mask


def _savez(f, arrays: dict) -> None:
    """Write the npz archive into the open file ``f`` (separate so tests can simulate a crash)."""
    np.savez(f, **arrays)


def _str_array(s: str) -> np.ndarray:
    return np.array(s)


def _compile_config(model):
    if not getattr(model, "compiled", False):
        return None
    from .. import losses, optimizers
    args = model._compile_args
    try:
        loss = args["loss"]
        loss = [losses.serialize(l) for l in loss] if isinstance(loss, (list, tuple)) else (
            {k: losses.serialize(v) for k, v in loss.items()} if isinstance(loss, dict)
            else losses.serialize(loss))
        metrics, weighted = args["metrics"], args.get("weighted_metrics")
        json.dumps([metrics, weighted])
        return {"optimizer": optimizers.serialize(model.optimizer), "loss": loss, "metrics": metrics,
                "loss_weights": args["loss_weights"], "weighted_metrics": weighted}
    except (ValueError, TypeError) as e:   # custom callables: the model is saved uncompiled
        import warnings
        warnings.warn(f"save_model: {model.name!r} is saved without its compile settings ({e}); "
                      "load_model will return it uncompiled: compile it again after loading, or "
                      "compile with graphc names or classes", stacklevel=3)
        return None


def _optimizer_variables(model):
    """The optimizer state of a compiled model that has trained: ``iterations``, then each slot
    as ``(index of its trainable weight, slot name)``; ``(None, [])`` before any training."""
    opt = getattr(model, "optimizer", None)
    state = getattr(model, "_state", None)
    if not getattr(model, "compiled", False) or opt is None or state is None:
        return None, []
    st = opt._states.get(state.graph)
    if st is None:
        return None, []
    slots = []
    for i, w in enumerate(model.trainable_weights):
        for name, var in st.slots.get(w.node, {}).items():
            slots.append(((i, name), var))
    return st.iterations, slots


def save_model(model, filepath, overwrite=True, include_optimizer=True) -> None:
    """Save ``model`` (architecture, weights, compile settings and, with ``include_optimizer``,
    the optimizer's iteration count and slots, so training resumes where it stopped) to one file."""
    filepath = os.fspath(filepath)
    if not overwrite and os.path.exists(filepath):
        raise FileExistsError(f"{filepath} exists and overwrite=False")
    config = {"format": FORMAT, **serialize_layer(model), "compile": _compile_config(model)}
    weights = model.get_weights()
    arrays = {"config": None}
    for i, w in enumerate(weights):
        arrays[f"weight_{i:05d}"] = w
    iterations, slots = _optimizer_variables(model) if include_optimizer else (None, [])
    if iterations is not None and config["compile"] is not None:
        values = model._state.get_values([iterations] + [v for _, v in slots])
        config["optimizer_state"] = {"slots": [list(key) for key, _ in slots]}
        for i, v in enumerate(values):
            arrays[f"optimizer_{i:05d}"] = v
    arrays["config"] = _str_array(json.dumps(config))
    _write_atomic(filepath, arrays)


def _read(filepath):
    filepath = os.fspath(filepath)
    with open(filepath, "rb") as f:
        data = f.read()
    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        try:
            config = json.loads(str(z["config"]))
        except RecursionError:
            raise ValueError(f"{filepath}: the model config is nested too deeply to be a graphc "
                             "model file") from None
        weights = [z[k] for k in sorted(k for k in z.files if k.startswith("weight_"))]
        opt_state = [z[k] for k in sorted(k for k in z.files if k.startswith("optimizer_"))]
    return config, weights, opt_state


def _restore_optimizer(filepath, model, spec, arrays) -> None:
    """Recreate the optimizer's ``iterations`` and slots in the model's graph and give them the
    saved values (a compiled model; ``fit`` then reuses them instead of starting from zero)."""
    if not isinstance(spec, dict) or not isinstance(spec.get("slots"), list) \
            or len(arrays) != 1 + len(spec["slots"]):
        raise ValueError(f"{filepath}: the optimizer state lists {len(arrays)} arrays that do not fit "
                         "its description; the file is damaged")
    opt, state = model.optimizer, model._ensure_built()
    trainable = model.trainable_weights
    opt.build(trainable)
    st = opt._states[state.graph]
    variables = [st.iterations]
    for entry in spec["slots"]:
        try:
            i, name = entry
            variables.append(st.slots[trainable[int(i)].node][name])
        except (KeyError, IndexError, TypeError, ValueError):
            raise ValueError(f"{filepath}: the optimizer state has a slot {entry!r} that "
                             f"{type(opt).__name__} does not make for this model; the file is "
                             "damaged or from another optimizer") from None
    for v, a in zip(variables, arrays):
        if tuple(v.shape) != a.shape or np.dtype(v.dtype) != a.dtype:
            raise ValueError(f"{filepath}: optimizer variable {v.name!r} is {tuple(v.shape)} "
                             f"{np.dtype(v.dtype).name} but the file holds {a.shape} {a.dtype.name}")
    state.init_new_variables()
    state.set_values(variables, arrays)


def _check_weights(filepath, model, weights) -> None:
    """The stored arrays must be the model's weights exactly: count, shapes and dtypes (never cast)."""
    ws = model.weights
    if len(ws) != len(weights):
        raise ValueError(f"{filepath}: the model's config makes {len(ws)} weights but the file holds "
                         f"{len(weights)} arrays; the file is damaged or not from this model")
    for v, w in zip(ws, weights):
        if tuple(v.shape) != w.shape or np.dtype(v.dtype) != w.dtype:
            raise ValueError(f"{filepath}: weight {v.name!r} is {tuple(v.shape)} {np.dtype(v.dtype).name} "
                             f"in the model's config but {w.shape} {w.dtype.name} in the file; the file "
                             "is damaged or not from this model")


def load_model(filepath, custom_objects=None, compile=True):
    """Rebuild a model saved with ``model.save(path)``: same architecture, weights and (if it
    was compiled with serializable settings) the same compile settings and optimizer state
    (iteration count and slots, when the file holds them): ``fit`` continues where it stopped."""
    config, weights, opt_state = _read(filepath)
    if config.get("format") != FORMAT:
        raise ValueError(f"{filepath} is not a graphc model file (format {config.get('format')!r})")
    total = sum(int(w.size) for w in weights)
    token = WEIGHTS_TO_COME.set([total, total])    # no initial values drawn: the file's replace them
    try:
        model = deserialize_layer({"class_name": config["class_name"], "config": config["config"]},
                                  custom_objects)
        _check_weights(filepath, model, weights)       # (builds the model if it is built lazily)
    except RecursionError:
        raise ValueError(f"{filepath}: the model config is nested too deeply to be a graphc model "
                         "file") from None
    except ValueError as e:
        if str(e).startswith(str(filepath)):
            raise
        raise ValueError(f"{filepath}: {e}; the file is damaged or not from this model") from None
    finally:
        WEIGHTS_TO_COME.reset(token)
    model.set_weights(weights)
    cc = config.get("compile")
    if compile and cc:
        from .. import losses, optimizers
        loss = cc["loss"]

        def load_loss(spec):   # a name, a Loss's dict, or (several outputs) a dict of those
            if isinstance(spec, dict) and "class_name" not in spec:
                return {k: load_loss(v) for k, v in spec.items()}
            return losses.deserialize(spec, custom_objects) if isinstance(spec, dict) else spec
        loss = [load_loss(l) for l in loss] if isinstance(loss, list) else load_loss(loss)
        model.compile(optimizer=optimizers.deserialize(cc["optimizer"], custom_objects), loss=loss,
                      metrics=cc["metrics"], loss_weights=cc["loss_weights"],
                      weighted_metrics=cc.get("weighted_metrics"))
        if "optimizer_state" in config:
            _restore_optimizer(filepath, model, config["optimizer_state"], opt_state)
    return model


def save_weights(model, filepath) -> None:
    arrays = {"config": _str_array(json.dumps({"format": FORMAT + "-weights"}))}
    for i, w in enumerate(model.get_weights()):
        arrays[f"weight_{i:05d}"] = w
    _write_atomic(filepath, arrays)


def load_weights(model, filepath) -> None:
    _, weights, _ = _read(filepath)
    _check_weights(filepath, model, weights)
    model.set_weights(weights)
