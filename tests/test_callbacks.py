"""Every callback end to end on a model whose training is known by hand (tiny_models): the
hooks' order and arguments, History, EarlyStopping's modes, baseline and start epoch,
ModelCheckpoint's file names and atomic writes, LearningRateScheduler, ReduceLROnPlateau's
cooldown and floor, CSVLogger, TerminateOnNaN and the progress bar."""
import io
import os

import numpy as np
import pytest

from graphc import callbacks as C
from graphc.models import load_model, saving
from tiny_models import per_sample_model


class Scripted(C.Callback):
    """Writes scripted values of ``key`` into the epoch logs (before the callbacks after it)."""

    def __init__(self, key, values):
        super().__init__()
        self.key, self.values = key, list(values)

    def on_epoch_end(self, epoch, logs=None):
        logs[self.key] = self.values[epoch]


def fit(callbacks, epochs=3, n=4, batch_size=2, **kw):
    m, x, y = per_sample_model(n)
    h = m.fit(x, y, batch_size=batch_size, epochs=epochs, verbose=0, shuffle=False,
              callbacks=callbacks, **kw)
    return m, h


def test_lambda_callback_hooks_in_order_with_arguments():
    calls = []

    def rec(name):
        return lambda *args: calls.append((name,) + tuple(
            sorted(a) if isinstance(a, dict) else a for a in args))
    cb = C.LambdaCallback(on_train_begin=rec("train_begin"), on_epoch_begin=rec("epoch_begin"),
                          on_train_batch_begin=rec("batch_begin"), on_train_batch_end=rec("batch_end"),
                          on_epoch_end=rec("epoch_end"), on_train_end=rec("train_end"),
                          on_test_begin=rec("test_begin"), on_test_end=rec("test_end"))
    m, x, y = per_sample_model(4)
    m.fit(x, y, batch_size=2, epochs=2, verbose=0, callbacks=[cb], validation_data=(x, y))
    epoch = [("batch_begin", 0, None), ("batch_end", 0, ["loss"]), ("batch_begin", 1, None),
             ("batch_end", 1, ["loss"]), ("test_begin", None), ("test_end", ["loss"])]  # validation
    assert calls == [("train_begin", None),
                     ("epoch_begin", 0, None), *epoch, ("epoch_end", 0, ["loss", "val_loss"]),
                     ("epoch_begin", 1, None), *epoch, ("epoch_end", 1, ["loss", "val_loss"]),
                     ("train_end", ["loss", "val_loss"])]
    calls.clear()
    m.evaluate(x, y, verbose=0, callbacks=[cb])
    assert calls == [("test_begin", None), ("test_end", ["loss"])]
    with pytest.raises(TypeError, match="'on_epoch_finish' is not a callback hook; hooks: on_batch_begin"):
        C.LambdaCallback(on_epoch_finish=print)


def test_batch_logs_are_running_means_and_keras2_aliases_are_called():
    seen = []

    class Alias(C.Callback):
        def on_batch_end(self, batch, logs=None):
            seen.append((batch, logs["loss"]))
    fit([Alias()], epochs=1, n=4, batch_size=2)
    # w = 0: first batch loss 1; the second batch also starts from w = 0 for its samples: 1
    assert seen == [(0, pytest.approx(1.0)), (1, pytest.approx(1.0))]


def test_history_records_every_epoch():
    m, h = fit([], epochs=3, n=2, batch_size=2)
    assert h.epoch == [0, 1, 2] and m.history is h
    # one full-batch step per epoch, w += 0.5 * (1 - w): the losses are (1 - w)^2 at w = 0, 0.5, 0.75
    np.testing.assert_allclose(h.history["loss"], [1.0, 0.25, 0.0625], rtol=1e-6)
    assert h.params == {"verbose": 0, "epochs": 3, "steps": 1}
    m2, h2 = fit([], epochs=3, n=2, batch_size=2, initial_epoch=1)
    assert h2.epoch == [1, 2]


def test_early_stopping_patience_min_delta_and_mode():
    es = C.EarlyStopping(monitor="val_loss", patience=1, min_delta=0.1)
    _, h = fit([Scripted("val_loss", [1.0, 0.95, 0.5, 0.45, 0.4, 0.3]), es], epochs=6)
    # 0.95 is not 0.1 better than 1.0 -> wait 1 -> stop at epoch 1
    assert len(h.history["loss"]) == 2 and es.stopped_epoch == 1
    es = C.EarlyStopping(monitor="val_accuracy", patience=2)          # "acc" in name: maximise
    _, h = fit([Scripted("val_accuracy", [0.5, 0.6, 0.55, 0.58, 0.9]), es], epochs=5)
    assert es.monitor_op is np.greater and es.best == 0.6 and es.stopped_epoch == 3
    es = C.EarlyStopping(monitor="val_loss", mode="max", patience=0)
    _, h = fit([Scripted("val_loss", [1.0, 2.0, 1.5]), es], epochs=3)
    assert es.stopped_epoch == 2 and es.best == 2.0
    with pytest.raises(ValueError, match="mode must be 'auto', 'min' or 'max', got 'up'"):
        C.EarlyStopping(mode="up")


def test_early_stopping_baseline_and_start_from_epoch(capsys):
    # Keras: the wait restarts only on an epoch better than both the best and the baseline
    values = [0.9, 0.95, 0.97, 0.99]
    es = C.EarlyStopping(monitor="val_loss", patience=2, baseline=0.5, verbose=1)
    _, h = fit([Scripted("val_loss", values), es], epochs=4)
    assert es.stopped_epoch == 1 and len(h.history["loss"]) == 2
    assert "Epoch 2: early stopping" in capsys.readouterr().out
    es = C.EarlyStopping(monitor="val_loss", patience=2)
    fit([Scripted("val_loss", values), es], epochs=4)
    assert es.stopped_epoch == 2
    es = C.EarlyStopping(monitor="val_loss", patience=0, start_from_epoch=2)
    _, h = fit([Scripted("val_loss", [1.0, 2.0, 3.0, 4.0, 5.0]), es], epochs=5)
    assert es.best == 3.0 and es.stopped_epoch == 3


def test_early_stopping_warns_about_a_missing_metric():
    es = C.EarlyStopping(monitor="val_los")
    with pytest.warns(UserWarning, match="EarlyStopping: metric 'val_los' is not available; available: loss"):
        _, h = fit([es], epochs=2)
    assert len(h.history["loss"]) == 2


def test_model_checkpoint_file_names_best_only_and_weights(tmp_path):
    pattern = str(tmp_path / "m-{epoch:02d}-{val_loss:.1f}.npz")
    ck = C.ModelCheckpoint(pattern, monitor="val_loss")
    fit([Scripted("val_loss", [0.5, 0.25, 0.75]), ck], epochs=3)
    assert sorted(os.listdir(tmp_path)) == ["m-01-0.5.npz", "m-02-0.2.npz", "m-03-0.8.npz"]
    best = tmp_path / "best.npz"
    ck = C.ModelCheckpoint(str(best), monitor="val_acc", save_best_only=True, save_weights_only=True, verbose=1)
    saved = []

    class Snap(C.Callback):
        def on_epoch_end(self, epoch, logs=None):
            saved.append(self.model.get_weights()[0].copy())
    m, _ = fit([Scripted("val_acc", [0.5, 0.9, 0.7]), Snap(), ck], epochs=3)
    m.load_weights(str(best))
    np.testing.assert_array_equal(m.get_weights()[0], saved[1])        # epoch 2 was the best
    assert ck.best == 0.9
    with pytest.raises(ValueError, match="only save_freq='epoch' is supported"):
        C.ModelCheckpoint("x.npz", save_freq=10)
    ck = C.ModelCheckpoint(str(tmp_path / "never.npz"), monitor="nope", save_best_only=True)
    with pytest.warns(UserWarning, match="can save best model only with nope available"):
        fit([ck], epochs=1)
    assert not (tmp_path / "never.npz").exists()


def test_model_checkpoint_writes_atomically(tmp_path, monkeypatch):
    path = tmp_path / "ck.npz"
    ck = C.ModelCheckpoint(str(path), monitor="loss")
    m, _ = fit([ck], epochs=1)
    good = path.read_bytes()
    w = m.get_weights()
    real = saving._savez

    def crash(f, arrays):   # half a file, then a crash: the old checkpoint must survive
        f.write(b"partial")
        raise OSError("disk full")
    monkeypatch.setattr(saving, "_savez", crash)
    with pytest.raises(OSError, match="disk full"):
        m.fit(np.eye(4, dtype=np.float32), np.ones((4, 1), np.float32), epochs=1, verbose=0, callbacks=[ck])
    assert path.read_bytes() == good and os.listdir(tmp_path) == ["ck.npz"]
    monkeypatch.setattr(saving, "_savez", real)
    np.testing.assert_array_equal(load_model(str(path)).get_weights()[0], w[0])


def test_learning_rate_scheduler_sets_the_rate_each_epoch(capsys):
    rates = [0.5, 0.0, 0.25]
    sched = C.LearningRateScheduler(lambda epoch: rates[epoch], verbose=1)     # one-argument form
    m, h = fit([sched], epochs=3, n=2, batch_size=2)
    # w += lr * (1 - w) per epoch (one full batch of two one-hot samples)
    w = 0.0
    for lr in rates:
        w += lr * (1 - w)
    np.testing.assert_allclose(m.get_weights()[0][:, 0], [w, w], rtol=1e-6)
    assert h.history["learning_rate"] == rates
    assert "Epoch 2: LearningRateScheduler setting learning rate to 0.0." in capsys.readouterr().out
    seen = []
    m, h = fit([C.LearningRateScheduler(lambda epoch, lr: seen.append(lr) or lr * 0.5)], epochs=3)
    assert seen == [0.5, 0.25, 0.125]


def test_learning_rate_callbacks_refuse_a_schedule_optimizer():
    from graphc import schedules
    from graphc.optimizers import SGD
    m, x, y = per_sample_model(2)
    m.compile(optimizer=SGD(schedules.ExponentialDecay(0.1, 10, 0.5)), loss="mse")
    with pytest.raises(ValueError, match="learning rate is a schedule or a tensor"):
        m.fit(x, y, verbose=0, callbacks=[C.LearningRateScheduler(lambda e: 0.1)])


def test_reduce_lr_on_plateau_cooldown_and_min_lr(capsys):
    r = C.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=1, cooldown=2, min_lr=0.1, verbose=1)
    _, h = fit([Scripted("val_loss", [1.0] * 6), r], epochs=6)
    # a stall from epoch 1 with patience 1: reduce at 1, 3 and 5 (Keras counts the cooldown down
    # before checking it, so cooldown=2 skips one epoch); logged before reducing; floor 0.1
    assert h.history["learning_rate"] == [0.5, 0.5, 0.25, 0.25, 0.125, 0.125]
    assert r.model.optimizer.learning_rate == pytest.approx(0.1)
    assert "ReduceLROnPlateau reducing learning rate to 0.25" in capsys.readouterr().out
    r = C.ReduceLROnPlateau(monitor="val_acc", factor=0.5, patience=1)
    _, h = fit([Scripted("val_acc", [0.1, 0.2, 0.3]), r], epochs=3)      # improving: no change
    assert h.history["learning_rate"] == [0.5, 0.5, 0.5]
    assert C.ReduceLROnPlateau(epsilon=0.5).min_delta == 0.5
    with pytest.raises(ValueError, match="does not support a factor >= 1.0"):
        C.ReduceLROnPlateau(factor=1.5)
    with pytest.raises(TypeError, match="unexpected argument\\(s\\) 'pateince'"):
        C.ReduceLROnPlateau(pateince=3)


def test_csv_logger_rows_append_and_separator(tmp_path):
    path = tmp_path / "log.csv"
    _, h = fit([Scripted("val_loss", [3.0, 2.0]), C.CSVLogger(str(path))], epochs=2)
    rows = [r.split(",") for r in path.read_text().strip().splitlines()]
    assert rows[0] == ["epoch", "loss", "val_loss"]
    assert [int(r[0]) for r in rows[1:]] == [0, 1]
    np.testing.assert_allclose([float(r[1]) for r in rows[1:]], h.history["loss"])
    assert [float(r[2]) for r in rows[1:]] == [3.0, 2.0]
    fit([Scripted("val_loss", [1.0]), C.CSVLogger(str(path), append=True)], epochs=1)
    lines = path.read_text().strip().splitlines()
    assert len(lines) == 4 and lines[3].startswith("0,") and lines[3].endswith(",1.0")
    semi = tmp_path / "semi.csv"
    fit([C.CSVLogger(str(semi), separator=";")], epochs=1)
    assert semi.read_text().splitlines()[0] == "epoch;loss"


def test_terminate_on_nan_stops_at_the_bad_batch(capsys):
    m, x, y = per_sample_model(6)
    y[3] = np.nan
    batches = []
    h = m.fit(x, y, batch_size=2, epochs=3, verbose=0, shuffle=False,
              callbacks=[C.TerminateOnNaN(), C.LambdaCallback(on_train_batch_begin=lambda b, l: batches.append(b))])
    assert batches == [0, 1] and len(h.history["loss"]) == 1 and np.isnan(h.history["loss"][0])
    assert "Batch 1: invalid loss, terminating training" in capsys.readouterr().out
    m, x, y = per_sample_model(6)
    h = m.fit(x, y, batch_size=2, epochs=2, verbose=0, callbacks=[C.TerminateOnNaN()])
    assert len(h.history["loss"]) == 2                                 # finite: trains on


@pytest.mark.parametrize("verbose", [1, 2])
def test_progress_bar_output(verbose):
    out = io.StringIO()
    out.isatty = lambda: True          # a terminal: the bar is redrawn (tests/test_progbar.py: files)
    bar = C.ProgbarLogger(verbose=verbose, stream=out, interval=0.0)
    m, x, y = per_sample_model(4)
    m.fit(x, y, batch_size=2, epochs=2, verbose=0, callbacks=[bar])
    text = out.getvalue()
    assert text.count("Epoch 1/2\n") == 1 and text.count("Epoch 2/2\n") == 1
    final = [line.split("\r")[-1] for line in text.split("\n") if "loss:" in line]
    assert len(final) == 2 and all(line.startswith("2/2") and "loss: " in line for line in final)
    if verbose == 1:
        assert "[==============================]" in text and "1/2 [" in text
    else:
        assert "[" not in text


def test_fit_evaluate_predict_verbose_print_progress(capsys):
    m, x, y = per_sample_model(4)
    m.fit(x, y, batch_size=2, epochs=1, verbose=2)
    out = capsys.readouterr().out
    assert out.startswith("Epoch 1/1\n2/2 - ") and "loss: 1.0000" in out
    m.evaluate(x, y, batch_size=3, verbose=1)
    out = capsys.readouterr().out
    assert out.startswith("2/2 - ") and "ms/step - loss: " in out
    m.predict(x, batch_size=3, verbose=1)
    out = capsys.readouterr().out
    assert out.startswith("2/2 - ") and out.rstrip().endswith("ms/step")
    m.predict(x)
    assert capsys.readouterr().out == ""
