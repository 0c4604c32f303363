"""Keras callbacks: ``Callback``, ``History``, ``EarlyStopping``, ``ModelCheckpoint``,
``LearningRateScheduler``, ``CSVLogger``, ``ReduceLROnPlateau``, ``LambdaCallback`` and the
progress bar (``ProgbarLogger``).

    >>> from graphc.callbacks import EarlyStopping
    >>> EarlyStopping(monitor="val_loss", patience=2).patience
    2
"""
from __future__ import annotations

import csv
import os
import sys
import time

import numpy as np


class Callback:
    """Base class: override the ``on_*`` hooks; ``self.model`` is the model being trained.

    ``rank_zero_only = True`` (a class or instance attribute) runs the callback only on rank 0
    of a data-parallel job (``graphc.distributed.DataParallel``): callbacks that write files.
    """

    rank_zero_only = False

    def __init__(self):
        self.model = None
        self.params = {}

    def set_model(self, model):
        self.model = model

    def set_params(self, params):
        self.params = params

    def on_train_begin(self, logs=None): pass
    def on_train_end(self, logs=None): pass
    def on_epoch_begin(self, epoch, logs=None): pass
    def on_epoch_end(self, epoch, logs=None): pass
    def on_train_batch_begin(self, batch, logs=None): pass
    def on_train_batch_end(self, batch, logs=None): pass
    def on_test_begin(self, logs=None): pass
    def on_test_end(self, logs=None): pass
    def on_test_batch_begin(self, batch, logs=None): pass
    def on_test_batch_end(self, batch, logs=None): pass
    def on_predict_begin(self, logs=None): pass
    def on_predict_end(self, logs=None): pass
    def on_predict_batch_begin(self, batch, logs=None): pass
    def on_predict_batch_end(self, batch, logs=None): pass

    # Keras 2 aliases
    def on_batch_begin(self, batch, logs=None): pass
    def on_batch_end(self, batch, logs=None): pass

    @property
    def _wants_batch_logs(self) -> bool:
        cls = type(self)
        return cls.on_train_batch_end is not Callback.on_train_batch_end or \
            cls.on_batch_end is not Callback.on_batch_end


class CallbackList:
    """Dispatches hooks to callbacks (the progress bar last, as in Keras)."""

    def __init__(self, callbacks, add_progbar=False, verbose=1, model=None, epochs=1, steps=None):
        self.callbacks = list(callbacks)
        if add_progbar:
            self.callbacks.append(ProgbarLogger(verbose=verbose))
        params = {"verbose": verbose, "epochs": epochs, "steps": steps}
        for c in self.callbacks:
            c.set_model(model)
            c.set_params(params)
        self.wants_batch_logs = any(c._wants_batch_logs for c in self.callbacks)

    def _call(self, hook, *args):
        for c in self.callbacks:
            getattr(c, hook)(*args)

    def on_train_batch_begin(self, batch, logs=None):
        for c in self.callbacks:
            c.on_train_batch_begin(batch, logs)
            c.on_batch_begin(batch, logs)

    def on_train_batch_end(self, batch, logs=None):
        for c in self.callbacks:
            c.on_train_batch_end(batch, logs)
            c.on_batch_end(batch, logs)


def _dispatcher(hook: str):
    if hook.startswith(("on_epoch", "on_test_batch", "on_predict_batch")):
        def method(self, index, logs=None):
            self._call(hook, index, logs)
    else:
        def method(self, logs=None):
            self._call(hook, logs)
    method.__name__ = hook
    method.__doc__ = f"Call ``{hook}`` on every callback, in order."
    return method


for _hook in ("on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end", "on_test_begin",
              "on_test_end", "on_test_batch_begin", "on_test_batch_end", "on_predict_begin",
              "on_predict_end", "on_predict_batch_begin", "on_predict_batch_end"):
    setattr(CallbackList, _hook, _dispatcher(_hook))


class History(Callback):
    """Records ``logs`` after every epoch: ``history.history["loss"]`` is a list per epoch."""

    def __init__(self):
        super().__init__()
        self.history: dict[str, list] = {}
        self.epoch: list[int] = []

    def on_train_begin(self, logs=None):
        self.epoch = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for k, v in (logs or {}).items():
            self.history.setdefault(k, []).append(v)


def _fmt_logs(logs) -> str:
    return " - ".join(f"{k}: {v:.4f}" if isinstance(v, float) and abs(v) >= 1e-3 or v == 0
                      else f"{k}: {v:.4e}" for k, v in logs.items())


def _fmt_time(s: float) -> str:
    if s >= 3600:
        return f"{int(s // 3600)}:{int(s % 3600 // 60):02d}:{int(s % 60):02d}"
    if s >= 60:
        return f"{int(s // 60)}:{int(s % 60):02d}"
    return f"{s:.0f}s"


class ProgbarLogger(Callback):
    """Keras-style progress: ``verbose=1`` a bar per epoch (with ETA), ``verbose=2`` one line.

    Like Keras 3, the bar is redrawn in place (``\\r``) only when the stream is a terminal
    (``stream.isatty()``; default stream: ``sys.stdout``). Otherwise (a log file, a pipe, CI)
    ``verbose=1`` writes just each epoch's final line, so logs hold no carriage-return noise.

        >>> import io
        >>> bar = ProgbarLogger(verbose=1, stream=io.StringIO())   # not a terminal
        >>> bar.set_params({"epochs": 1, "steps": 2})
        >>> bar.on_epoch_begin(0); bar.on_train_batch_end(0, {"loss": 1.0})
        >>> bar.on_epoch_end(0, {"loss": 0.5}); print(bar.stream.getvalue().split(" - ")[0])
        Epoch 1/1
        2/2 [==============================]
    """

    def __init__(self, verbose=1, stream=None, width=30, interval=0.1):
        super().__init__()
        self.verbose = verbose
        self.stream = stream
        self.width = width
        self.interval = interval
        self._shown = 0          # length of the line last drawn in place (to blank its tail)

    @property
    def _wants_batch_logs(self) -> bool:
        return self.verbose == 1 and self._dynamic()

    def _out(self):
        return self.stream or sys.stdout

    def _dynamic(self) -> bool:
        """Whether the bar may be redrawn in place: the output stream is a terminal."""
        isatty = getattr(self._out(), "isatty", None)
        try:
            return bool(isatty()) if callable(isatty) else False
        except (ValueError, OSError):      # a closed or detached stream
            return False

    def _redraw(self, out, line: str, end: str = "") -> None:
        """Draw ``line`` over the previous one (padding with spaces to blank a longer one)."""
        out.write("\r" + line + " " * max(self._shown - len(line), 0) + end)
        self._shown = 0 if end else len(line)

    def on_epoch_begin(self, epoch, logs=None):
        self.t0 = time.time()
        self.last = 0.0
        self.seen_steps = 0
        self._shown = 0
        out = self._out()
        out.write(f"Epoch {epoch + 1}/{self.params.get('epochs', '?')}\n")
        out.flush()

    def _bar(self, current, total):
        if total:
            done = int(self.width * current / total)
            bar = "=" * max(done - 1, 0) + (">" if current < total else "=") if done else ""
            bar = bar + "." * (self.width - len(bar))
            n = len(str(total))
            return f"{current:>{n}}/{total} [{bar}]"
        return f"{current}"

    def on_train_batch_end(self, batch, logs=None):
        if self.verbose != 1:
            return
        self.seen_steps = batch + 1
        now = time.time()
        total = self.params.get("steps")
        if now - self.last < self.interval or batch + 1 == total or not self._dynamic():
            return
        self.last = now
        elapsed = now - self.t0
        if total and batch + 1 < total:
            eta = elapsed / (batch + 1) * (total - batch - 1)
            tail = f" - ETA: {_fmt_time(eta)}"
        else:
            tail = f" - {_fmt_time(elapsed)}"
        out = self._out()
        self._redraw(out, self._bar(batch + 1, total) + tail + " - " + _fmt_logs(logs or {}))
        out.flush()

    def on_epoch_end(self, epoch, logs=None):
        elapsed = time.time() - self.t0
        steps = self.params.get("steps") or max(self.seen_steps, 1)
        per = elapsed / max(steps, 1)
        per_s = f"{per * 1000:.0f}ms/step" if per >= 1e-3 else f"{per * 1e6:.0f}us/step"
        out = self._out()
        if self.verbose == 1:
            line = self._bar(steps, steps) + f" - {_fmt_time(elapsed)} {per_s} - " + _fmt_logs(logs or {})
            if self._dynamic():
                self._redraw(out, line, end="\n")
            else:
                out.write(line + "\n")
        else:
            out.write(f"{steps}/{steps} - {_fmt_time(elapsed)} - {per_s} - " + _fmt_logs(logs or {}) + "\n")
        out.flush()


def _monitor_op(mode, monitor):
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
    if mode == "max" or (mode == "auto" and ("acc" in monitor or monitor.startswith("fmeasure")
                                             or "auc" in monitor)):
        return np.greater
    return np.less


class EarlyStopping(Callback):
    """Stop training when ``monitor`` has stopped improving for ``patience`` epochs."""

    def __init__(self, monitor="val_loss", min_delta=0, patience=0, verbose=0, mode="auto",
                 baseline=None, restore_best_weights=False, start_from_epoch=0):
        super().__init__()
        self.monitor, self.patience, self.verbose = monitor, patience, verbose
        self.baseline, self.restore_best_weights = baseline, restore_best_weights
        self.start_from_epoch = start_from_epoch
        self.monitor_op = _monitor_op(mode, monitor)
        self.min_delta = abs(min_delta) if self.monitor_op is np.greater else -abs(min_delta)
        self.stopped_epoch = 0

    def on_train_begin(self, logs=None):
        self.wait = 0
        self.stopped_epoch = 0
        self.best = np.inf if self.monitor_op is np.less else -np.inf
        self.best_weights = None
        self.best_epoch = 0

    def _improved(self, current, reference):
        return self.monitor_op(current - self.min_delta, reference)

    def on_epoch_end(self, epoch, logs=None):
        current = (logs or {}).get(self.monitor)
        if current is None:
            import warnings
            warnings.warn(f"EarlyStopping: metric {self.monitor!r} is not available; available: "
                          f"{', '.join(logs or {})}", stacklevel=2)
            return
        if epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights = self.model.get_weights()
        self.wait += 1
        if self._improved(current, self.best):
            self.best = current
            self.best_epoch = epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            if self.baseline is None or self._improved(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0 and self.verbose:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose:
                print(f"Restoring model weights from the end of the best epoch: {self.best_epoch + 1}.")
            self.model.set_weights(self.best_weights)


class ModelCheckpoint(Callback):
    """Save the model (or its weights) after every epoch, or only when ``monitor`` improves.

    ``filepath`` may hold ``{epoch:02d}`` and log names (``{val_loss:.2f}``). The file holds
    the optimizer state too, so ``load_model`` resumes training where it stopped. In a
    data-parallel job only rank 0 saves.
    """

    rank_zero_only = True

    def __init__(self, filepath, monitor="val_loss", verbose=0, save_best_only=False,
                 save_weights_only=False, mode="auto", save_freq="epoch", initial_value_threshold=None):
        super().__init__()
        if save_freq != "epoch":
            raise ValueError("ModelCheckpoint: only save_freq='epoch' is supported")
        self.filepath, self.monitor, self.verbose = os.fspath(filepath), monitor, verbose
        self.save_best_only, self.save_weights_only = save_best_only, save_weights_only
        self.monitor_op = _monitor_op(mode, monitor)
        self.best = initial_value_threshold if initial_value_threshold is not None else (
            np.inf if self.monitor_op is np.less else -np.inf)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        path = self.filepath.format(epoch=epoch + 1, **logs)
        if self.save_best_only:
            current = logs.get(self.monitor)
            if current is None:
                import warnings
                warnings.warn(f"ModelCheckpoint: can save best model only with {self.monitor} "
                              "available, skipping", stacklevel=2)
                return
            if not self.monitor_op(current, self.best):
                return
            if self.verbose:
                print(f"\nEpoch {epoch + 1}: {self.monitor} improved from {self.best:.5f} to "
                      f"{current:.5f}, saving model to {path}")
            self.best = current
        elif self.verbose:
            print(f"\nEpoch {epoch + 1}: saving model to {path}")
        if self.save_weights_only:
            self.model.save_weights(path)
        else:
            self.model.save(path)


class LearningRateScheduler(Callback):
    """Set the learning rate to ``schedule(epoch, lr)`` at the start of every epoch."""

    def __init__(self, schedule, verbose=0):
        super().__init__()
        self.schedule, self.verbose = schedule, verbose

    def on_epoch_begin(self, epoch, logs=None):
        lr = self.model._get_lr()
        try:
            new = self.schedule(epoch, lr)
        except TypeError:
            new = self.schedule(epoch)
        new = float(new)
        self.model._set_lr(new)
        if self.verbose:
            print(f"\nEpoch {epoch + 1}: LearningRateScheduler setting learning rate to {new}.")

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = self.model._get_lr()


class ReduceLROnPlateau(Callback):
    """Multiply the learning rate by ``factor`` when ``monitor`` stalls for ``patience`` epochs."""

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, verbose=0, mode="auto",
                 min_delta=1e-4, cooldown=0, min_lr=0.0, **kwargs):
        super().__init__()
        if "epsilon" in kwargs:   # Keras 2's name for min_delta
            min_delta = kwargs.pop("epsilon")
        if kwargs:
            raise TypeError(f"ReduceLROnPlateau: unexpected argument(s) {', '.join(map(repr, kwargs))}; "
                            "it takes monitor, factor, patience, verbose, mode, min_delta, "
                            "cooldown, min_lr")
        if factor >= 1.0:
            raise ValueError("ReduceLROnPlateau does not support a factor >= 1.0")
        self.monitor, self.factor, self.patience, self.verbose = monitor, factor, patience, verbose
        self.min_delta, self.cooldown, self.min_lr = min_delta, cooldown, min_lr
        self.monitor_op = _monitor_op(mode, monitor)

    def on_train_begin(self, logs=None):
        self.wait = 0
        self.cooldown_counter = 0
        self.best = np.inf if self.monitor_op is np.less else -np.inf

    def _better(self, a, b):
        if self.monitor_op is np.less:
            return a < b - self.min_delta
        return a > b + self.min_delta

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        logs["learning_rate"] = self.model._get_lr()
        current = logs.get(self.monitor)
        if current is None:
            return
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self._better(current, self.best):
            self.best = current
            self.wait = 0
        elif self.cooldown_counter <= 0:
            self.wait += 1
            if self.wait >= self.patience:
                old = self.model._get_lr()
                if old > self.min_lr:
                    new = max(old * self.factor, self.min_lr)
                    self.model._set_lr(new)
                    if self.verbose:
                        print(f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to {new}.")
                    self.cooldown_counter = self.cooldown
                    self.wait = 0


class CSVLogger(Callback):
    """Append one CSV row per epoch (``epoch`` then the sorted log keys) to ``filename`` (in a
    data-parallel job, on rank 0 only)."""

    rank_zero_only = True

    def __init__(self, filename, separator=",", append=False):
        super().__init__()
        self.filename, self.sep, self.append = os.fspath(filename), separator, append
        self.keys = None
        self._file = None

    def on_train_begin(self, logs=None):
        exists = self.append and os.path.exists(self.filename) and os.path.getsize(self.filename) > 0
        self._file = open(self.filename, "a" if self.append else "w", newline="")
        self._write_header = not exists
        self.keys = None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.keys is None:
            self.keys = sorted(logs)
            self.writer = csv.DictWriter(self._file, fieldnames=["epoch"] + self.keys,
                                         delimiter=self.sep)
            if self._write_header:
                self.writer.writeheader()
        row = {"epoch": epoch}
        row.update({k: logs.get(k, "NA") for k in self.keys})
        self.writer.writerow(row)
        self._file.flush()

    def on_train_end(self, logs=None):
        if self._file is not None:
            self._file.close()
            self._file = None


class LambdaCallback(Callback):
    """A callback from plain functions; as in Keras, any hook may be given by name
    (``on_test_end=...``, ``on_batch_end=...``), with the hook's arguments.

        >>> cb = LambdaCallback(on_epoch_end=lambda epoch, logs: print(epoch, logs))
        >>> cb.on_epoch_end(0, {"loss": 0.5})
        0 {'loss': 0.5}
    """

    def __init__(self, on_epoch_begin=None, on_epoch_end=None, on_train_begin=None,
                 on_train_end=None, on_train_batch_begin=None, on_train_batch_end=None, **kwargs):
        super().__init__()
        hooks = {"on_epoch_begin": on_epoch_begin, "on_epoch_end": on_epoch_end,
                 "on_train_begin": on_train_begin, "on_train_end": on_train_end,
                 "on_train_batch_begin": on_train_batch_begin,
                 "on_train_batch_end": on_train_batch_end, **kwargs}
        for name, fn in hooks.items():
            if not (name.startswith("on_") and callable(getattr(Callback, name, None))):
                known = sorted(n for n in vars(Callback) if n.startswith("on_"))
                raise TypeError(f"LambdaCallback: {name!r} is not a callback hook; hooks: "
                                f"{', '.join(known)}")
            if fn is not None:
                if not callable(fn):
                    raise TypeError(f"LambdaCallback: {name} must be a function, got {fn!r}")
                setattr(self, name, fn)

    @property
    def _wants_batch_logs(self) -> bool:
        return "on_train_batch_end" in self.__dict__ or "on_batch_end" in self.__dict__


class TerminateOnNaN(Callback):
    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not np.isfinite(loss):
            print(f"Batch {batch}: invalid loss, terminating training")
            self.model.stop_training = True
