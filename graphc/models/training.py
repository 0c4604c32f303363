"""``compile`` / ``fit`` / ``evaluate`` / ``predict`` for models (mixed into ``Model``).

Each program is one graph built once per model and input signature (the shapes
and dtypes of the fed arrays): the training step holds the forward pass, the
loss, the gradients, the optimizer update, the BatchNorm statistics updates and
the metrics, and runs as one call per batch of the ``Session.make_callable``
function made for it (fetch structure, program and feed checks resolved once).
Python only slices batches and averages the fetched numbers.
"""
from __future__ import annotations

import contextlib
import time

import numpy as np

from .. import losses as _losses
from ..errors import GraphcError
from .. import metrics as _metrics


def _masked_mean(values, mask):
    """The mean of ``values`` over the positions ``mask`` keeps (all of them without a mask, or
    when the mask's rank differs from the values')."""
    from .. import ops
    if mask is None or mask.ndim != values.ndim:
        return ops.reduce_mean(values)
    m = ops.cast(mask, values.dtype)
    return ops.reduce_sum(values * m) / ops.maximum(ops.reduce_sum(m), ops.ones_like(ops.reduce_sum(m)))


class _Like:
    """What a program is built for in place of an array: a shape whose open sizes are ``None``
    (the batch dimension first) and a dtype."""
    __slots__ = ("shape", "dtype")

    def __init__(self, shape, dtype):
        self.shape, self.dtype = tuple(shape), np.dtype(dtype)


def _open(shape, declared) -> tuple:
    """``shape`` with ``None`` wherever the model's declared shape has ``None`` (matched from the
    front: sparse targets have one axis less than the output)."""
    declared = tuple(declared)
    return (None,) + tuple(None if i < len(declared) and declared[i] is None else d
                           for i, d in enumerate(shape) if i > 0)


class _Program:
    """Placeholders to feed and tensors to fetch for one (kind, signature)."""

    def __init__(self, feeds, fetches, names, step=None, ratios=()):
        self.feeds = feeds          # placeholders, in the order of the arrays fed
        self.fetches = fetches      # [step?] + scalars / outputs
        self.names = names          # names of the fetched scalars (loss, metrics)
        self.step = step
        self.ratios = list(ratios)  # (i, j): scalar i is a weighted mean, j (after names) its weight
        self._fn = None             # (session, Session.make_callable(fetches, feeds))

    def means(self, sums, seen) -> list:
        """The reported values from the batch-size-weighted sums of the fetched scalars: means,
        except weighted metrics: sum(weight * value) / sum(weight) over all the batches."""
        out = sums[:len(self.names)] / max(seen, 1)
        for i, j in self.ratios:
            out[i] = sums[i] / sums[j] if sums[j] else 0.0
        return out.tolist()

    def callable(self, session):
        """The low-overhead ``Session.make_callable`` function for this program (made once)."""
        if self._fn is None or self._fn[0] is not session:
            self._fn = (session, session.make_callable(self.fetches, self.feeds))
        return self._fn[1]


def _as_list(x):
    if x is None:
        return []
    return list(x) if isinstance(x, (list, tuple)) else [x]


def _check_kwargs(method, kwargs: dict) -> None:
    """A ``TypeError`` naming an argument ``method`` does not take, and the ones it does."""
    if not kwargs:
        return
    import inspect
    accepted = [p for p in inspect.signature(method).parameters
                if p not in ("self", "kwargs") and not p.startswith("_")]
    bad = ", ".join(repr(k) for k in kwargs)
    raise TypeError(f"{method.__name__}() got unexpected keyword argument(s) {bad}; it accepts: "
                    f"{', '.join(accepted)}")


def _per_output(metrics, names) -> list:
    """``metrics`` as one list per output (a list for all, a list of lists, or a dict by
    output name), each name checked: a misspelled metric fails in compile, not in fit."""
    if isinstance(metrics, dict):
        per_out = [_as_list(metrics.get(n)) for n in names]
    elif metrics and len(names) > 1 and all(isinstance(m, (list, tuple)) for m in metrics):
        per_out = [list(m) for m in metrics]
    else:
        per_out = [_as_list(metrics)] * len(names)
    for specs in per_out:
        for m in specs:
            _metrics.get(m)
    return per_out


class TrainingMixin:
    """Keras' training API; needs the ``Model`` attributes (``inputs``, ``outputs``, ``_replay``)."""

    # -- compile ---------------------------------------------------------------------------------------
    def compile(self, optimizer="rmsprop", loss=None, metrics=None, loss_weights=None,
                weighted_metrics=None, run_eagerly=None, steps_per_execution=None, jit_compile=None,
                **kwargs):
        """Configure training: ``optimizer``, ``loss`` and ``metrics`` by name or object.

        ``weighted_metrics`` (same forms as ``metrics``) are averaged with the sample weights
        given to ``fit``/``evaluate`` (sum(weight * value) / sum(weight)); one whose name is
        also an unweighted metric's is reported as ``weighted_<name>``. Names are checked here:
        an unknown loss or metric raises ``ValueError`` listing the known ones. ``run_eagerly``, ``steps_per_execution`` and ``jit_compile`` are accepted
        for Keras compatibility and change nothing (graphc always compiles the whole step).

            >>> from graphc.models import Sequential
            >>> from graphc.layers import Dense
            >>> m = Sequential([Dense(2, activation="softmax", input_dim=3)])
            >>> m.compile(loss="categorical_crossentropy", metrics=["acuracy"])  # doctest: +ELLIPSIS
            Traceback (most recent call last):
            ...
            ValueError: unknown metric 'acuracy' (did you mean 'accuracy'?); known metrics: ...
        """
        from .. import optimizers
        _check_kwargs(type(self).compile, kwargs)
        self.optimizer = optimizers.get(optimizer)
        self._compile_args = {"optimizer": optimizer, "loss": loss, "metrics": metrics,
                              "loss_weights": loss_weights, "weighted_metrics": weighted_metrics}
        try:
            self._ensure_network()
            n_out, names = len(self.outputs), self.output_names
        except ValueError:   # a Sequential model without an input shape yet: one output
            n_out, names = 1, [None]
        if isinstance(loss, dict):
            loss = [loss.get(n) for n in names]
        losses = _as_list(loss) if isinstance(loss, (list, tuple)) else [loss] * n_out
        if len(losses) != n_out:
            raise ValueError(f"compile: {len(losses)} losses for {n_out} outputs")
        self._loss_fns = [_losses.get(l) if l is not None else None for l in losses]
        self._loss_names = [_losses.name_of(l) if l is not None else None for l in losses]
        if isinstance(loss_weights, dict):
            loss_weights = [loss_weights.get(n, 1.0) for n in names]
        self._loss_weights = list(loss_weights) if loss_weights is not None else [1.0] * n_out
        self._metric_specs = _per_output(metrics, names)
        self._weighted_specs = _per_output(weighted_metrics, names)
        self._programs = {k: v for k, v in self._programs.items() if k[0] == "predict"}
        self._lr_var = None
        self.compiled = True
        self.stop_training = False

    def _require_compiled(self, what):
        if not getattr(self, "compiled", False):
            raise RuntimeError(f"you must compile the model before calling {what}(); "
                               "call model.compile(optimizer=..., loss=...)")

    # -- data ------------------------------------------------------------------------------------------
    def _x_list(self, x) -> list:
        if isinstance(x, dict):
            x = [x[n] for n in self.input_names]
        xs = _as_list(x) if isinstance(x, (list, tuple)) and len(self.inputs) > 1 else [x]
        if len(xs) != len(self.inputs):
            raise ValueError(f"model {self.name!r} has {len(self.inputs)} inputs, got {len(xs)} arrays")
        out = []
        for arr, t in zip(xs, self.inputs):
            arr = np.asarray(arr)
            if arr.dtype != t.dtype:
                arr = arr.astype(t.dtype)
            if arr.ndim != len(t.shape):
                raise ValueError(f"input {t.name!r} expects arrays of rank {len(t.shape)} (shape "
                                 f"{t.shape}), got shape {arr.shape}")
            for d, s in zip(t.shape[1:], arr.shape[1:]):
                if d is not None and d != s:
                    raise ValueError(f"input {t.name!r} expects shape {t.shape}, got an array of "
                                     f"shape {arr.shape}")
            out.append(arr)
        return out

    def _y_list(self, y) -> list:
        if isinstance(y, dict):
            y = [y[n] for n in self.output_names]
        ys = _as_list(y) if isinstance(y, (list, tuple)) and len(self.outputs) > 1 else [y]
        if len(ys) != len(self.outputs):
            raise ValueError(f"model {self.name!r} has {len(self.outputs)} outputs, got {len(ys)} "
                             "target arrays")
        out = []
        for arr, t, fn in zip(ys, self.outputs, self._loss_fns):
            arr = np.asarray(arr)
            if _losses.is_sparse(fn):
                if arr.ndim == len(t.shape) and arr.shape[-1] == 1:
                    arr = arr[..., 0]
                if arr.dtype.kind == "f" and arr.size and not np.array_equal(arr, np.floor(arr)):
                    bad = arr[arr != np.floor(arr)].flat[0]
                    raise ValueError(f"model {self.name!r}: sparse labels must be whole class indices, "
                                     f"got {float(bad)!r} (loss {getattr(fn, '__name__', fn)!r}); pass "
                                     "integer labels, or one-hot targets with a categorical loss")
                arr = arr.astype(np.int32) if arr.dtype != np.int64 else arr
            else:
                arr = arr.astype(np.float32) if arr.dtype != np.float64 or t.dtype != np.float64 \
                    else arr
                if arr.ndim == len(t.shape) - 1:
                    arr = arr[..., None]
            out.append(arr)
        return out

    def _signature(self, arrays) -> tuple:
        return tuple((tuple(a.shape[1:]), a.dtype.str) for a in arrays)

    def _input_placeholders(self, xs):
        from ..ops.state import placeholder
        phs = []
        for i, (t, a) in enumerate(zip(self.inputs, xs)):
            shape = (None,) + tuple(a.shape[1:])
            phs.append(placeholder(t.dtype, shape, name=f"{t.node.layer.name}"))
        return phs

    # -- programs --------------------------------------------------------------------------------------
    def _get_program(self, kind, xs, ys=None):
        """The program for arrays like ``xs``/``ys``. A size the model leaves open (``None`` in its
        ``Input``, e.g. a sequence length) stays open in the program, so one program (and one
        compiled plan per shape) serves every such size; a model whose layers need that size
        (``unroll=True``, ``TimeDistributed``...) gets one program per size instead."""
        ys = ys or []
        if not getattr(self, "_per_size", False):
            gx = [_Like(_open(a.shape, t.shape), a.dtype) for a, t in zip(xs, self.inputs)]
            gy = [_Like(_open(a.shape, t.shape), a.dtype) if t is not None else a
                  for a, t in zip(ys, list(self.outputs) + [None] * len(ys))]
            if any(tuple(g.shape[1:]) != tuple(a.shape[1:]) for g, a in zip(gx + gy, xs + ys)):
                try:
                    return self._program_for(kind, gx, gy)
                except (ValueError, GraphcError):
                    self._per_size = True       # the layers need those sizes: specialize
        return self._program_for(kind, xs, ys)

    def _program_for(self, kind, xs, ys):
        key = (kind, self._signature(xs), self._signature(ys))
        prog = self._programs.get(key)
        if prog is None:
            state = self._ensure_built()
            g = state.graph
            # under the session's prepare lock: another thread may be copying the graph to
            # optimize one of its programs while this one adds nodes
            with state.session._prepare_lock:
                prog = self._programs.get(key)
                if prog is None:
                    with g.as_default(), g.name_scope(kind):
                        prog = getattr(self, f"_build_{kind}")(xs, ys)
                    state.init_new_variables()
                    self._programs[key] = prog
        return prog

    def _build_predict(self, xs, ys):
        phs = self._input_placeholders(xs)
        outs = self._replay(phs, training=False)
        return _Program(phs, outs, [])

    def _loss_and_metrics(self, outs, ys, masks=()):
        """Placeholders for ``ys`` (the targets, then the sample weights if ``ys`` has one more
        array than the model has outputs), the total loss, and the named metric scalars. An output
        with a Keras mask (``masks[i]``, e.g. the padded steps of a tagger) averages its loss and
        metrics over the unmasked positions only, as Keras does."""
        from ..ops.state import placeholder
        from .. import ops
        yphs = [placeholder(a.dtype, (None,) + tuple(a.shape[1:]), name=f"{n}_target")
                for a, n in zip(ys, self.output_names)]
        sw = placeholder("float32", (None,), name="sample_weight") \
            if len(ys) > len(self.outputs) else None
        total, names, scalars = None, [], []
        per_loss = []
        for i, (o, yt, fn, w) in enumerate(zip(outs, yphs, self._loss_fns, self._loss_weights)):
            if fn is None:
                continue
            per = fn(yt, o)
            if sw is not None:   # Keras: mean of weight * loss over the batch (not over the weights)
                per = per * ops.reshape(sw, (-1,) + (1,) * (per.ndim - 1))
            li = _masked_mean(per, masks[i] if i < len(masks) else None)
            per_loss.append((i, li))
            term = li * float(w) if w != 1.0 else li
            total = term if total is None else total + term
        if total is None:
            raise ValueError("compile() was given no loss; pass loss='categorical_crossentropy' etc.")
        multi = len(self.outputs) > 1
        if multi:
            for i, li in per_loss:
                names.append(f"{self.output_names[i]}_loss")
                scalars.append(li)
        for i, (o, yt, specs) in enumerate(zip(outs, yphs, self._metric_specs)):
            for m in specs:
                fn, mname = _metrics.resolve(m, self._loss_fns[i], o)
                names.append(f"{self.output_names[i]}_{mname}" if multi else mname)
                scalars.append(_masked_mean(ops.cast(fn(yt, o), "float32"), masks[i] if i < len(masks) else None))
        weights, ratios = [], []
        for i, (o, yt, specs) in enumerate(zip(outs, yphs, getattr(self, "_weighted_specs", []))):
            for m in specs:
                fn, mname = _metrics.resolve(m, self._loss_fns[i], o)
                name = f"{self.output_names[i]}_{mname}" if multi else mname
                names.append(f"weighted_{name}" if name in names else name)
                value = ops.cast(fn(yt, o), "float32")
                if sw is None:      # no sample weights: the plain mean
                    scalars.append(ops.reduce_mean(value))
                    continue
                w = ops.reshape(sw, (-1,) + (1,) * (value.ndim - 1)) * ops.ones_like(value)
                ratios.append((len(names), len(weights)))   # names[-1] is value len(names): loss first
                scalars.append(ops.reduce_mean(value * w))
                weights.append(ops.reduce_mean(w))
        # the weights are fetched after the loss and all the scalars
        self._ratios = [(i, 1 + len(scalars) + k) for i, k in ratios]
        return yphs + ([sw] if sw is not None else []), total, names, scalars + weights

    def _build_train_dp(self, xs, ys):
        """The data-parallel training step: gradients averaged over the MPI job's processes."""
        return self._build_train(xs, ys, average_gradients=True)

    def _build_train(self, xs, ys, average_gradients=False):
        from .. import ops
        from ..layers.base import _UpdateCollector
        phs = self._input_placeholders(xs)
        updates: list = []
        _UpdateCollector.stack.append(updates)
        masks: list = []
        try:
            outs = self._replay(phs, training=True, masks=masks)
        finally:
            _UpdateCollector.stack.pop()
        yphs, total, names, scalars = self._loss_and_metrics(outs, ys, masks)
        reg = self.losses
        if reg:
            total = total + _sum(reg)
        var_list = self.trainable_weights
        opt = self.optimizer
        if var_list:
            lr = opt.learning_rate
            if isinstance(lr, float):
                if self._lr_var is None:
                    self._lr_var = ops.Variable(np.float32(lr), trainable=False, name="learning_rate")
                    self._lr_value = lr
                opt.learning_rate = self._lr_var
                try:
                    step = _minimize(opt, total, var_list, average_gradients)
                finally:
                    opt.learning_rate = lr
            else:
                step = _minimize(opt, total, var_list, average_gradients)
            step = ops.group(step, *updates) if updates else step
        else:
            step = ops.group(*updates) if updates else ops.no_op()
        return _Program(phs + yphs, [step, total] + scalars, ["loss"] + names, step=step,
                        ratios=self._ratios)

    def _build_test(self, xs, ys):
        phs = self._input_placeholders(xs)
        masks: list = []
        outs = self._replay(phs, training=False, masks=masks)
        yphs, total, names, scalars = self._loss_and_metrics(outs, ys, masks)
        return _Program(phs + yphs, [total] + scalars, ["loss"] + names, ratios=self._ratios)

    # -- data-parallel training (graphc.distributed) -------------------------------------------------
    def _sync_from_rank0(self):
        """Rank 0's weights and optimizer state (slots, iterations) on every process."""
        from .. import distributed
        if distributed.size() == 1:
            return
        state = self._ensure_built()
        seen, variables = set(), []
        for v in list(self.weights) + list(self.optimizer.variables):
            if v.graph is state.graph and v.node not in seen:
                seen.add(v.node)
                variables.append(v)
        state.set_values(variables, distributed.broadcast_arrays(state.get_values(variables)))

    def _average_non_trainable(self):
        """Average the non-trainable weights that training updates locally (BatchNorm's moving
        statistics) over the processes, so every process keeps the same model."""
        from .. import distributed
        if distributed.size() == 1:
            return
        trainable = {v.node for v in self.trainable_weights}
        state = self._ensure_built()
        others = [v for v in self.weights if v.node not in trainable and np.dtype(v.dtype).kind == "f"]
        if others:
            state.set_values(others, [distributed.allreduce_array(a, op="mean").astype(a.dtype)
                                      for a in state.get_values(others)])

    # -- learning rate (for callbacks) --------------------------------------------------------------
    def _sync_lr(self):
        """Push ``optimizer.learning_rate`` (if changed by the user) into the graph variable."""
        if getattr(self, "_lr_var", None) is not None and isinstance(self.optimizer.learning_rate, float) \
                and self.optimizer.learning_rate != self._lr_value:
            self._set_lr(self.optimizer.learning_rate)

    def _get_lr(self) -> float:
        lr = self.optimizer.learning_rate
        if isinstance(lr, float):
            return lr
        raise ValueError("the optimizer's learning rate is a schedule or a tensor, not a number")

    def _set_lr(self, value) -> None:
        value = float(value)
        if not isinstance(self.optimizer.learning_rate, (float, int)):
            raise ValueError("cannot set the learning rate: the optimizer uses a schedule or a tensor")
        self.optimizer.learning_rate = value
        if getattr(self, "_lr_var", None) is not None:
            self._ensure_built().set_values([self._lr_var], [np.float32(value)])
            self._lr_value = value

    # -- running -----------------------------------------------------------------------------------------
    def _run(self, prog, arrays):
        return prog.callable(self._state.session)(*arrays)

    def train_on_batch(self, x, y=None, sample_weight=None, class_weight=None, reset_metrics=True,
                       return_dict=False):
        """One training step on ``(x, y)``; returns the loss and metrics of this batch or, after
        calls with ``reset_metrics=False``, their running means since the last reset (Keras)."""
        self._require_compiled("train_on_batch")
        self._ensure_network_for(x)
        return self._on_batch("train", x, y, sample_weight, class_weight, reset_metrics, return_dict)

    def test_on_batch(self, x, y=None, sample_weight=None, reset_metrics=True, return_dict=False):
        """Loss and metrics on one batch, accumulated like ``train_on_batch``'s."""
        self._require_compiled("test_on_batch")
        return self._on_batch("test", x, y, sample_weight, None, reset_metrics, return_dict)

    def _on_batch(self, kind, x, y, sample_weight, class_weight, reset_metrics, return_dict):
        xs, ys = self._x_list(x), self._y_list(y)
        sw = _sample_weights(f"{kind}_on_batch", len(xs[0]), ys, sample_weight, class_weight,
                             len(self.outputs))
        ys = ys + [sw] if sw is not None else ys
        prog = self._get_program(kind, xs, ys)
        if kind == "train":
            self._sync_lr()
            vals = self._run(prog, xs + ys)[1:]
        else:
            vals = self._run(prog, xs + ys)
        acc = getattr(self, "_batch_sums", {})
        if reset_metrics and not acc and not prog.ratios:       # the common case: this batch's values
            return _result(prog.names, [float(v) for v in vals[:len(prog.names)]], return_dict)
        sums, seen = acc.get(kind, (0.0, 0))
        k = len(xs[0])
        sums, seen = sums + np.asarray(vals, dtype=np.float64) * k, seen + k
        self._batch_sums = {**acc, kind: (sums, seen)} if not reset_metrics else \
            {key: v for key, v in acc.items() if key != kind}
        return _result(prog.names, prog.means(sums, seen), return_dict)

    def predict_on_batch(self, x):
        self._ensure_network_for(x)
        xs = self._x_list(x)
        outs = self._run(self._get_program("predict", xs), xs)
        return outs[0] if len(outs) == 1 else list(outs)

    def _ensure_network_for(self, x):
        """Hook for Sequential models without an input shape (built from the first data)."""

    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose=1, callbacks=None,
            validation_split=0.0, validation_data=None, shuffle=True, class_weight=None,
            sample_weight=None, initial_epoch=0, steps_per_epoch=None, validation_steps=None,
            validation_batch_size=None, validation_freq=1, **kwargs):
        """Train for ``epochs`` epochs; returns a ``History`` (``history.history[name]`` per epoch).

        An epoch is one pass over the (shuffled) data, or, with ``steps_per_epoch``, that many
        batches: the batches continue where the previous epoch stopped and a new shuffled pass
        starts whenever the data is used up. ``validation_steps`` limits validation to that many
        batches of the validation data.

        ``sample_weight`` (one weight per sample) scales each sample's loss: a batch's loss is
        the mean of weight * loss, as in Keras. ``class_weight`` (``{class: weight}``, one-output
        models) multiplies that by the weight of each sample's class: its integer label, the
        argmax of one-hot targets, or a single binary target rounded. Validation data is
        weighted by its own sample weights only (``validation_data=(x, y, sample_weight)``, or
        the split-off part of ``sample_weight``). Metrics are not weighted.

        Inside ``with graphc.distributed.DataParallel():`` (an ``mpiexec -n N`` job) ``fit``
        trains data-parallel: ``batch_size`` samples per process and step, gradients averaged in
        one allreduce per step, rank 0's weights, optimizer state and shuffle seed everywhere,
        the epoch's loss and metrics averaged over all processes, progress and file-writing
        callbacks on rank 0 only; a stop asked for during an epoch (``stop_training``) takes
        effect on every process at the epoch's end; an error on one process aborts the job (see
        ``graphc.distributed``).

            >>> import numpy as np
            >>> from graphc.models import Sequential
            >>> from graphc.layers import Dense
            >>> m = Sequential([Dense(1, input_dim=2)]); m.compile("sgd", "mse")
            >>> h = m.fit(np.ones((10, 2)), np.ones(10), batch_size=4, epochs=2, steps_per_epoch=5,
            ...           verbose=0)
            >>> h.params["steps"], len(h.history["loss"])
            (5, 2)
        """
        from .. import callbacks as cbks
        _check_kwargs(type(self).fit, kwargs)
        self._require_compiled("fit")
        self._ensure_network_for(x)
        batch_size = _positive_int("fit", "batch_size", batch_size, 32)
        steps_per_epoch = _positive_int("fit", "steps_per_epoch", steps_per_epoch, None)
        validation_steps = _positive_int("fit", "validation_steps", validation_steps, None)
        validation_freq = _positive_int("fit", "validation_freq", validation_freq, 1)
        if not 0.0 <= validation_split < 1.0:
            raise ValueError(f"fit(): validation_split must be a fraction in [0, 1), got "
                             f"{validation_split!r}")
        xs, ys = self._x_list(x), self._y_list(y)
        n = len(xs[0])
        if any(len(a) != n for a in xs + ys):
            raise ValueError(f"fit: all inputs and targets need the same number of samples, got "
                             f"{[len(a) for a in xs + ys]}")
        # training weighs samples by sample_weight * class_weight; validation by sample_weight only
        sw = _sample_weights("fit", n, ys, sample_weight, class_weight, len(self.outputs))
        val_sw = _sample_weights("fit", n, ys, sample_weight, None, len(self.outputs))
        if validation_data is None and validation_split:
            split = int(n * (1.0 - validation_split))
            val_xs, val_ys = [a[split:] for a in xs], [a[split:] for a in ys]
            xs, ys = [a[:split] for a in xs], [a[:split] for a in ys]
            sw, val_sw = (None if sw is None else sw[:split]), (None if val_sw is None else val_sw[split:])
            n = split
        elif validation_data is not None:
            vd = tuple(validation_data)
            if len(vd) not in (2, 3):
                raise ValueError(f"fit: validation_data must be (x_val, y_val) or (x_val, y_val, "
                                 f"sample_weight_val), got a tuple of {len(vd)} items")
            val_xs, val_ys = self._x_list(vd[0]), self._y_list(vd[1])
            val_sw = _sample_weights("fit", len(val_xs[0]), val_ys, vd[2] if len(vd) == 3 else None,
                                     None, len(self.outputs))
        else:
            val_xs = val_ys = None
        if n == 0:
            raise ValueError("fit: no training samples")
        ys = ys + [sw] if sw is not None else ys
        if val_xs is not None and val_sw is not None:
            val_ys = val_ys + [val_sw]
        guard = _abort_on_error() if _distributed_job() else contextlib.nullcontext()
        with guard:
            from .. import distributed as _dist
            dp = _dist.current() if _distributed_job() else None    # one process: plain fit
            rank, size = (_dist.rank(), _dist.size()) if dp is not None else (0, 1)
            prog = self._get_program("train" if dp is None else "train_dp", xs, ys)
            steps = steps_per_epoch or (n + batch_size - 1) // batch_size
            cb_list = list(callbacks or [])
            if dp is not None:      # batch_size per process; only rank 0 prints and writes files
                if n < batch_size * size:
                    raise ValueError(f"fit: {n} samples make no global batch of {batch_size} samples "
                                     f"per process x {size} processes; lower batch_size")
                steps = steps_per_epoch or n // (batch_size * size)
                verbose = verbose if rank == 0 else 0
                cb_list = [c for c in cb_list if rank == 0 or not getattr(c, "rank_zero_only", False)]
            history = cbks.History()
            all_cbs = cbks.CallbackList(cb_list + [history], add_progbar=verbose != 0, verbose=verbose,
                                        model=self, epochs=epochs, steps=steps)
            self.history = history
            self.stop_training = False
            all_cbs.on_train_begin()
            from .. import initializers as _init   # one seeded stream: set_random_seed fixes shuffling
            seed = np.array(_init._GLOBAL[0].integers(2 ** 63), np.int64)
            if dp is not None:      # rank 0's shuffled order and starting point on every process
                seed = _dist.broadcast_arrays([seed])[0]
                self._sync_from_rank0()
            rng = np.random.default_rng(int(seed))
            batches = _batch_stream(xs + ys, batch_size, rng if shuffle else None, rank, size)
            step_fn = prog.callable(self._state.session)
            n_values = len(prog.fetches) - 1     # the loss, the metrics and the metric weights
            logs: dict = {}
            for epoch in range(initial_epoch, epochs):
                self._sync_lr()
                all_cbs.on_epoch_begin(epoch)
                sums = np.zeros(n_values)
                seen = 0
                for b in range(steps):
                    arrays = next(batches)
                    all_cbs.on_train_batch_begin(b)
                    vals = step_fn(*arrays)
                    k = len(arrays[0])
                    sums += np.asarray(vals[1:], dtype=np.float64) * k
                    seen += k
                    if all_cbs.wants_batch_logs:
                        all_cbs.on_train_batch_end(b, dict(zip(prog.names, prog.means(sums, seen))))
                    if self.stop_training and dp is None:   # data-parallel: at the epoch's end
                        break
                if dp is not None:  # the epoch's loss and metrics over all the processes' samples,
                    # and a stop asked for on any process (all then stop together)
                    total = _dist.allreduce_array(np.append(sums, [seen, self.stop_training]), op="sum")
                    sums, seen, self.stop_training = total[:-2], total[-2], bool(total[-1])
                    self._average_non_trainable()
                logs = dict(zip(prog.names, prog.means(sums, seen)))
                if val_xs is not None and (epoch + 1) % validation_freq == 0:
                    vlogs = self.evaluate(val_xs if len(val_xs) > 1 else val_xs[0], None,
                                          batch_size=validation_batch_size or batch_size, verbose=0,
                                          steps=validation_steps, return_dict=True, callbacks=all_cbs,
                                          _prepared=(val_xs, val_ys))
                    logs.update({"val_" + k: v for k, v in vlogs.items()})
                all_cbs.on_epoch_end(epoch, logs)
                if self.stop_training:
                    break
            all_cbs.on_train_end(logs)
            return history

    def evaluate(self, x=None, y=None, batch_size=None, verbose=1, sample_weight=None, steps=None,
                 callbacks=None, return_dict=False, _prepared=None, **kwargs):
        """Loss and metrics on ``(x, y)``, batched; a scalar loss, a list, or a dict.

        ``sample_weight`` weighs each sample's loss as in ``fit`` (metrics are not weighted).
        ``steps`` evaluates only the first ``steps`` batches (at most all of them); the
        callbacks' ``on_test_begin`` / ``on_test_batch_begin`` / ``on_test_batch_end`` /
        ``on_test_end`` hooks are called.
        """
        _check_kwargs(type(self).evaluate, kwargs)
        self._require_compiled("evaluate")
        self._ensure_network_for(x)
        if _prepared is not None:   # from fit: arrays checked, sample weights appended to ys
            xs, ys = _prepared
        else:
            xs, ys = self._x_list(x), self._y_list(y)
            sw = _sample_weights("evaluate", len(xs[0]), ys, sample_weight, None, len(self.outputs))
            ys = ys + [sw] if sw is not None else ys
        batch_size = _positive_int("evaluate", "batch_size", batch_size, 32)
        steps = _positive_int("evaluate", "steps", steps, None)
        prog = self._get_program("test", xs, ys)
        n = len(xs[0])
        if n == 0:
            raise ValueError(f"evaluate: model {self.name!r} got 0 samples; there is nothing to average")
        n_batches = (n + batch_size - 1) // batch_size
        n_batches = min(n_batches, steps) if steps else n_batches
        cb = _callback_list(callbacks, self, n_batches, verbose)
        cb.on_test_begin()
        sums = np.zeros(len(prog.fetches))
        seen = 0
        t0 = time.time()
        for b in range(n_batches):
            lo, hi = b * batch_size, min(n, (b + 1) * batch_size)
            cb.on_test_batch_begin(b)
            vals = self._run(prog, [a[lo:hi] for a in xs + ys])
            sums += np.asarray(vals, dtype=np.float64) * (hi - lo)
            seen += hi - lo
            cb.on_test_batch_end(b, dict(zip(prog.names, prog.means(sums, seen))))
        vals = prog.means(sums, seen)
        cb.on_test_end(dict(zip(prog.names, vals)))
        if verbose:
            _print_done(n_batches, t0, dict(zip(prog.names, vals)))
        return _result(prog.names, vals, return_dict)

    def predict(self, x, batch_size=None, verbose=0, steps=None, callbacks=None, **kwargs):
        """Outputs for ``x`` computed in batches with the inference graph (dropout off, BN frozen).

        ``steps`` predicts only the first ``steps`` batches; the callbacks' ``on_predict_*``
        hooks are called (``on_predict_batch_end`` gets ``{"outputs": [...]}``).
        """
        _check_kwargs(type(self).predict, kwargs)
        self._ensure_network_for(x)
        xs = self._x_list(x)
        batch_size = _positive_int("predict", "batch_size", batch_size, 32)
        steps = _positive_int("predict", "steps", steps, None)
        prog = self._get_program("predict", xs)
        n = len(xs[0])
        n_batches = (n + batch_size - 1) // batch_size
        n_batches = min(n_batches, steps) if steps else n_batches
        cb = _callback_list(callbacks, self, n_batches, verbose)
        cb.on_predict_begin()
        t0 = time.time()
        chunks: list[list] = [[] for _ in prog.fetches]
        for b in range(n_batches):
            lo = b * batch_size
            cb.on_predict_batch_begin(b)
            outs = self._run(prog, [a[lo:lo + batch_size] for a in xs])
            for c, o in zip(chunks, outs):
                c.append(o)
            cb.on_predict_batch_end(b, {"outputs": list(outs)})
        cb.on_predict_end()
        if verbose:
            _print_done(n_batches, t0, {})
        res = [np.concatenate(c, axis=0) if c else np.zeros((0,) + tuple(
            d or 0 for d in f.shape[1:]), np.float32) for c, f in zip(chunks, prog.fetches)]
        return res[0] if len(res) == 1 else res


def _callback_list(callbacks, model, steps, verbose):
    """``fit``'s own CallbackList as it is (validation runs the fit callbacks' test hooks, as in
    Keras), or a new one for evaluate/predict."""
    from .. import callbacks as cbks
    if isinstance(callbacks, cbks.CallbackList):
        return callbacks
    return cbks.CallbackList(callbacks or [], model=model, steps=steps, verbose=verbose)


def _print_done(n_batches, t0, logs):
    dt = time.time() - t0
    print(f"{n_batches}/{n_batches} - {dt:.0f}s - {1000 * dt / max(n_batches, 1):.0f}ms/step"
          + "".join(f" - {k}: {v:.4f}" for k, v in logs.items()))


def _sample_weights(method, n, ys, sample_weight, class_weight, n_outputs):
    """One float32 weight per sample from ``sample_weight`` times ``class_weight[label]``, or
    None; clear errors for shapes and classes that do not fit."""
    if sample_weight is None and class_weight is None:
        return None
    sw = np.ones(n, np.float32)
    if sample_weight is not None:
        given = np.asarray(sample_weight, dtype=np.float32)
        if given.ndim == 2 and given.shape[1] == 1:
            given = given[:, 0]
        if given.shape != (n,):
            raise ValueError(f"{method}(): sample_weight needs one weight per sample, shape ({n},), "
                             f"got shape {given.shape}")
        sw = sw * given
    if class_weight is not None:
        if not isinstance(class_weight, dict):
            raise TypeError(f"{method}(): class_weight must be a dict {{class index: weight}}, got "
                            f"{type(class_weight).__name__}")
        if n_outputs != 1:
            raise ValueError(f"{method}(): class_weight is only supported for models with one "
                             f"output; this one has {n_outputs} (use sample_weight)")
        y = ys[0]
        if y.dtype.kind in "iu":
            labels = y
        elif y.ndim >= 2 and y.shape[-1] > 1:
            labels = y.argmax(-1)
        else:
            labels = np.rint(y.reshape(len(y), -1)[:, 0] if y.ndim > 1 else y).astype(np.int64)
        labels = labels.reshape(n, -1)
        if labels.shape[1] != 1:
            raise ValueError(f"{method}(): class_weight needs one class per sample, but the targets "
                             f"have shape {y.shape}; use sample_weight")
        missing = sorted(set(np.unique(labels).tolist()) - set(class_weight))
        if missing:
            raise ValueError(f"{method}(): class_weight has no weight for class(es) {missing} found "
                             f"in the targets; it has {sorted(class_weight)}")
        table = {int(k): float(v) for k, v in class_weight.items()}
        sw = sw * np.array([table[int(c)] for c in labels[:, 0]], np.float32)
    return sw


def _positive_int(method, name, value, default):
    """``value`` as an int >= 1 (``default`` for None), or a ``ValueError`` naming the argument."""
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{method}(): {name} must be a positive integer or None, got {value!r}")
    return int(value)


def _batch_stream(arrays, batch_size, rng, rank=0, size=1):
    """Endless batches ``[a[lo:hi] for a in arrays]``: pass after pass over the data, each pass
    in a new random order when ``rng`` is given (the last batch of a pass may be smaller). For
    process ``rank`` of a data-parallel job of ``size`` (the same ``rng`` seed on all), each pass
    is cut into global batches of ``batch_size * size`` samples, this process gets slice ``rank``
    of each, and an incomplete last global batch is dropped (every process runs the same steps).

    A shuffled pass gathers each batch's rows on their own (``a[perm[lo:hi]]``): no shuffled copy
    of the data is made. A whole shuffled copy per pass kept two alive at once and faulted in
    fresh (huge) pages every pass: the second pass's 25 MB gather of the MNIST MLP's 8,000
    images took 9-74 ms; the 250 batch gathers of a pass take 2-4 ms."""
    n, gbs = len(arrays[0]), batch_size * size
    stop = (n if size == 1 else n - gbs + 1) + rank * batch_size
    while True:
        if rng is None:
            for lo in range(rank * batch_size, stop, gbs):
                yield [a[lo:lo + batch_size] for a in arrays]
            continue
        perm = rng.permutation(n)
        for lo in range(rank * batch_size, stop, gbs):
            rows = perm[lo:lo + batch_size]
            yield [a[rows] for a in arrays]


def _distributed_job() -> bool:
    from .. import distributed
    return distributed.current() is not None and distributed.size() > 1


def _abort_on_error():
    from .. import distributed
    return distributed.abort_on_error("Model.fit")


def _minimize(opt, loss, var_list, average_gradients):
    """``opt.minimize``, or with ``average_gradients`` the same step with the gradients averaged
    over the MPI job's processes in one bucketed allreduce before the update."""
    if not average_gradients:
        return opt.minimize(loss, var_list=var_list)
    from .. import distributed
    pairs = opt.compute_gradients(loss, var_list)
    grads = distributed.allreduce_gradients([g for g, _ in pairs], op="mean")
    return opt.apply_gradients(zip(grads, [v for _, v in pairs]))


def _sum(ts):
    out = ts[0]
    for t in ts[1:]:
        out = out + t
    return out


def _result(names, vals, return_dict):
    if return_dict:
        return dict(zip(names, vals))
    return vals[0] if len(vals) == 1 else vals
