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

import hashlib
import io
import json
import os
import re
import tempfile
import time
import zipfile
import zlib

try:
    import fcntl
except ImportError:                     # Windows: orphans are recognised by age alone
    fcntl = None

import numpy as np

from ..layers.base import WEIGHTS_TO_COME
from .serialization import UnknownLayerError, deserialize_layer, serialize_layer

FORMAT = "graphc-model-1"


EXTENSION = ".npz"

# Orphans: a save that is killed (SIGKILL, power loss) leaves its temporary file behind. The next
# save or load of the same path deletes graphc's own temporaries for it (``.<basename>.<random>.tmp``
# exactly as ``_write_atomic`` names them; nothing else) when both hold: no process holds the
# file's lock (a save holds an exclusive ``flock`` from just after creating it until after the
# rename; the kernel drops it when the process dies) and it was not modified in the last
# ORPHAN_AGE_S seconds (which covers the instant between creating and locking it). Without
# ``fcntl`` (Windows) the age alone decides, with ORPHAN_AGE_NOLOCK_S.
ORPHAN_AGE_S = 2.0
ORPHAN_AGE_NOLOCK_S = 3600.0


def _check_extension(filepath: str, what: str) -> None:
    """graphc writes one format, an npz archive: refuse names that promise another (``.keras``,
    ``.h5``...) or none, as Keras 3 refuses a ``save`` path without ``.keras``."""
    if not filepath.lower().endswith(EXTENSION):
        ext = os.path.splitext(filepath)[1]
        said = f"has the extension {ext!r}" if ext else "has no extension"
        raise ValueError(f"{what}: {filepath} {said}; graphc saves models in its own npz format, "
                         f"so the file name must end in {EXTENSION!r} (e.g. "
                         f"{os.path.splitext(filepath)[0] + EXTENSION!r}); it cannot write "
                         "Keras .keras or HDF5 .h5 files")


def _orphan_pattern(path: str):
    return re.compile(r"\." + re.escape(os.path.basename(path)) + r"\.[A-Za-z0-9_]{8}\.tmp\Z")


def _clean_orphans(path: str) -> None:
    """Delete temporaries of killed saves of ``path`` (the rule is above ``ORPHAN_AGE_S``)."""
    folder = os.path.dirname(os.path.abspath(path))
    pattern = _orphan_pattern(path)
    try:
        names = [n for n in os.listdir(folder) if pattern.match(n)]
    except OSError:
        return
    age = ORPHAN_AGE_S if fcntl is not None else ORPHAN_AGE_NOLOCK_S
    for name in names:
        tmp = os.path.join(folder, name)
        try:
            fd = os.open(tmp, os.O_RDONLY)
        except OSError:                 # gone already (renamed by its save, or cleaned)
            continue
        try:
            st = os.fstat(fd)
            if time.time() - st.st_mtime < age:
                continue
            if fcntl is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:         # a live save holds it
                    continue
            try:                        # still the same file (not replaced meanwhile)?
                same = os.stat(tmp)
            except OSError:
                continue
            if (same.st_dev, same.st_ino) == (st.st_dev, st.st_ino):
                os.unlink(tmp)
        except OSError:
            pass
        finally:
            os.close(fd)


def _write_atomic(path: str, arrays: dict) -> None:
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    _clean_orphans(path)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=folder)
    f = os.fdopen(fd, "wb")
    try:
        if fcntl is not None:           # held until the rename: _clean_orphans leaves it alone
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX)
            except OSError:             # a file system without flock (some NFS): save anyway;
                pass                    # _clean_orphans cannot lock there either, so deletes nothing
        _savez(f, arrays)
        f.flush()
        os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())    # as open() would create it (mkstemp makes it 0600)
        if fcntl is None:               # Windows cannot rename an open file
            f.close()
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    finally:
        f.close()


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


def _serialize_loss(loss):
    """A loss for the config: graphc's own by name or config; your function or class by its
    ``__name__`` (as Keras does), which ``load_model`` resolves through ``custom_objects``.
    A loss of yours named like one of graphc's is refused: loading would give graphc's."""
    from .. import losses
    try:
        spec = losses.serialize(loss)
    except ValueError:
        spec, obj = getattr(loss, "__name__", None), loss    # a function or a Loss class
    else:
        if not isinstance(spec, dict):
            return spec
        obj = type(loss)
    name = spec["class_name"] if isinstance(spec, dict) else spec
    if name in losses._REGISTRY:
        if losses._REGISTRY.lookup(name)[0] is obj:
            return spec
        raise ValueError(f"cannot serialize the loss {loss!r}: its name {name!r} is also a graphc "
                         "loss's, which load_model would use instead; rename it")
    if isinstance(spec, dict) or (callable(loss) and isinstance(name, str) and name.isidentifier()):
        return spec
    raise ValueError(f"cannot serialize the loss {loss!r}: it has no name to save it by (a "
                     "lambda or a partial?); use a named function")


def _compile_config(model):
    if not getattr(model, "compiled", False):
        return None
    from .. import optimizers
    args = model._compile_args
    try:
        loss = args["loss"]
        loss = [_serialize_loss(l) for l in loss] if isinstance(loss, (list, tuple)) else (
            {k: _serialize_loss(v) for k, v in loss.items()} if isinstance(loss, dict)
            else _serialize_loss(loss))
        metrics, weighted = args["metrics"], args.get("weighted_metrics")
        json.dumps([metrics, weighted])
        return {"optimizer": optimizers.serialize(model.optimizer), "loss": loss, "metrics": metrics,
                "loss_weights": args["loss_weights"], "weighted_metrics": weighted}
    except (ValueError, TypeError) as e:   # lambdas, custom metric callables: saved uncompiled
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


def _sha256(a: np.ndarray) -> str:
    """The SHA-256 of an array's dtype, shape and bytes (hashed in place, no copy when contiguous)."""
    h = hashlib.sha256(f"{a.dtype.str}{a.shape}".encode())
    h.update(np.ascontiguousarray(a).data)
    return h.hexdigest()


def _with_checksums(config: dict, arrays: dict) -> dict:
    config["sha256"] = {k: _sha256(v) for k, v in arrays.items() if k != "config"}
    arrays["config"] = _str_array(json.dumps(config))
    return arrays


def save_model(model, filepath, overwrite=True, include_optimizer=True) -> None:
    """Save ``model`` (architecture, weights, compile settings and, with ``include_optimizer``,
    the optimizer's iteration count and slots, so training resumes where it stopped) to one
    ``.npz`` file, with the SHA-256 of every array in its config (``load_model`` checks them).

    A loss of your own (a function or ``Loss`` subclass) is saved by name, as Keras does:
    ``load_model`` needs it in ``custom_objects``."""
    filepath = os.fspath(filepath)
    _check_extension(filepath, "save_model")
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
    _write_atomic(filepath, _with_checksums(config, arrays))


def _not_a_model(filepath, why: str) -> ValueError:
    return ValueError(f"{filepath} is not a graphc model file: {why}")


def _read(filepath, kind: str = "model"):
    """``(config, {name: array})`` of a graphc file (``_verify`` then checks the arrays against the
    config's SHA-256, after the clearer shape checks); anything that is not such a file is a
    ``ValueError`` naming it and saying what is wrong."""
    filepath = os.fspath(filepath)
    _clean_orphans(filepath)
    with open(filepath, "rb") as f:
        data = f.read()
    if not data:
        raise _not_a_model(filepath, "the file is empty")
    if data.startswith(b"\x93NUMPY"):
        raise _not_a_model(filepath, "it is a single .npy array, not an npz archive")
    if not data.startswith(b"PK"):
        raise _not_a_model(filepath, f"it is not an npz (zip) archive (it starts with {data[:8]!r})")
    try:
        z = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
        raise _not_a_model(filepath, "it is not a readable npz archive, truncated or damaged? "
                           f"({str(e) or type(e).__name__})") from None
    with z:
        if "config" not in z.files:
            listed = ", ".join(z.files[:5]) + (", ..." if len(z.files) > 5 else "")
            raise _not_a_model(filepath, "the npz archive has no 'config' entry (it holds "
                               f"{listed or 'nothing'})")
        try:
            text = z["config"]
            if text.dtype.kind != "U" or text.shape != ():
                raise ValueError(f"its 'config' entry is a {text.dtype.name} array, not a string")
            try:
                config = json.loads(str(text))
            except json.JSONDecodeError as e:
                raise ValueError(f"its 'config' entry is not JSON ({e})") from None
            if not isinstance(config, dict):
                raise ValueError(f"its config is a JSON {type(config).__name__}, not an object")
            fmt = config.get("format")
            if fmt not in (FORMAT, FORMAT + "-weights"):
                raise ValueError(f"its config has the format {fmt!r}, not {FORMAT!r}")
            if kind == "model" and fmt != FORMAT:
                raise ValueError("it holds weights only (save_weights); load them into a model "
                                 "with model.load_weights")
            if kind == "model" and not isinstance(config.get("class_name"), str):
                raise ValueError("its config names no model class ('class_name')")
            if kind == "model" and not isinstance(config.get("config"), (dict, list)):
                raise ValueError("its config has no model configuration ('config')")
        except RecursionError:
            raise ValueError(f"{filepath}: the model config is nested too deeply to be a graphc "
                             "model file") from None
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
            raise _not_a_model(filepath, str(e) or type(e).__name__) from None
        arrays = {}
        for k in sorted(k for k in z.files if k.startswith(("weight_", "optimizer_"))):
            try:
                arrays[k] = z[k]
            except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as e:
                raise ValueError(f"{filepath} is damaged: its array {k!r} cannot be read "
                                 f"({str(e) or type(e).__name__})") from None
    return config, arrays


def _split(arrays):
    """The weights and the optimizer state arrays, each in saved order."""
    return ([a for k, a in arrays.items() if k.startswith("weight_")],
            [a for k, a in arrays.items() if k.startswith("optimizer_")])


def _verify(filepath, config, arrays) -> None:
    """Every array as saved: same names, same SHA-256 (files from before checksums: unchecked)."""
    sums = config.get("sha256")
    if sums is None:                    # written before checksums: nothing to check against
        return
    if not isinstance(sums, dict):
        raise ValueError(f"{filepath}: its checksums are damaged (not a JSON object)")
    if set(sums) != set(arrays):
        missing = sorted(set(sums) - set(arrays))
        extra = sorted(set(arrays) - set(sums))
        raise ValueError(f"{filepath} is damaged: arrays missing {missing}, unexpected {extra} "
                         "compared with the checksums it was saved with")
    for k, a in arrays.items():
        if _sha256(a) != sums[k]:
            raise ValueError(f"{filepath} is damaged: array {k!r} ({a.shape} {a.dtype.name}) does "
                             "not match the SHA-256 it was saved with")


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
    config, arrays = _read(filepath)
    weights, opt_state = _split(arrays)
    total = sum(int(w.size) for w in weights)
    token = WEIGHTS_TO_COME.set([total, total])    # no initial values drawn: the file's replace them
    try:
        model = deserialize_layer({"class_name": config["class_name"], "config": config["config"]},
                                  custom_objects)
        _check_weights(filepath, model, weights)       # (builds the model if it is built lazily)
    except RecursionError:
        raise ValueError(f"{filepath}: the model config is nested too deeply to be a graphc model "
                         "file") from None
    except UnknownLayerError as e:
        raise ValueError(f"{filepath}: {e}") from None
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
            name = spec.get("class_name") if isinstance(spec, dict) else spec
            if name is None:
                return spec
            if not isinstance(name, str):
                raise ValueError(f"{filepath}: its loss {spec!r} is neither a name nor a config")
            if custom_objects and name in custom_objects:
                return losses.deserialize(spec, custom_objects) if isinstance(spec, dict) \
                    else custom_objects[name]
            if name not in losses._REGISTRY:
                raise ValueError(f"{filepath}: the model was compiled with the loss {name!r}, which "
                                 "is not one of graphc's: pass it to load_model as "
                                 f"custom_objects={{{name!r}: <your function or Loss class>}} (or "
                                 "load with compile=False)")
            return losses.deserialize(spec, custom_objects) if isinstance(spec, dict) else spec
        loss = [load_loss(l) for l in loss] if isinstance(loss, list) else load_loss(loss)
        model.compile(optimizer=optimizers.deserialize(cc["optimizer"], custom_objects), loss=loss,
                      metrics=cc["metrics"], loss_weights=cc["loss_weights"],
                      weighted_metrics=cc.get("weighted_metrics"))
        if "optimizer_state" in config:
            _restore_optimizer(filepath, model, config["optimizer_state"], opt_state)
    _verify(filepath, config, arrays)  # last: the shape checks above say more about what is wrong
    return model


def save_weights(model, filepath) -> None:
    filepath = os.fspath(filepath)
    _check_extension(filepath, "save_weights")
    arrays = {"config": None}
    for i, w in enumerate(model.get_weights()):
        arrays[f"weight_{i:05d}"] = w
    _write_atomic(filepath, _with_checksums({"format": FORMAT + "-weights"}, arrays))


def load_weights(model, filepath) -> None:
    """The weights of a ``save_weights`` or ``save`` file (checked against their checksums)."""
    config, arrays = _read(filepath, kind="weights")
    weights, _ = _split(arrays)
    _check_weights(filepath, model, weights)
    _verify(filepath, config, arrays)
    model.set_weights(weights)
