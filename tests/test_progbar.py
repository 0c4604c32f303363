"""The progress bar redraws in place only on a terminal; into files it writes one line per epoch."""
from __future__ import annotations

import io

import numpy as np
import pytest

import graphc as gc
import graphc.callbacks as C


class FakeStream(io.StringIO):
    def __init__(self, tty: bool):
        super().__init__()
        self.tty = tty

    def isatty(self):
        return self.tty


def _fit(stream, verbose=1, epochs=2, steps=4):
    bar = C.ProgbarLogger(verbose=verbose, stream=stream, interval=0.0)
    bar.set_params({"epochs": epochs, "steps": steps})
    for epoch in range(epochs):
        bar.on_epoch_begin(epoch)
        for b in range(steps):
            bar.on_train_batch_end(b, {"loss": 100.0 / (b + 1)} if bar._wants_batch_logs else None)
        bar.on_epoch_end(epoch, {"loss": 0.5})
    return stream.getvalue()


def test_terminal_redraws_every_step_in_place():
    text = _fit(FakeStream(tty=True))
    assert text.count("\r") == 2 * 4                   # 3 updates + the final line, per epoch
    assert "\r1/4 [======>." in text and "\r3/4 [" in text and "ETA:" in text
    lines = text.split("\n")
    assert lines[0] == "Epoch 1/2" and lines[2] == "Epoch 2/2"
    final = lines[1].split("\r")[-1]
    assert final.startswith("4/4 [==============================] - ") and final.endswith("loss: 0.5000")


def test_terminal_blanks_the_tail_of_a_longer_previous_line():
    text = _fit(FakeStream(tty=True), epochs=1)
    redraws = text.split("\n")[1].split("\r")[1:]
    for prev, cur in zip(redraws, redraws[1:]):
        assert len(cur) >= len(prev.rstrip(" "))          # nothing of the previous line shows


def test_not_a_terminal_writes_only_each_epochs_final_line():
    text = _fit(FakeStream(tty=False))
    assert "\r" not in text and "ETA" not in text
    lines = text.splitlines()
    assert len(lines) == 4
    assert lines[0] == "Epoch 1/2" and lines[2] == "Epoch 2/2"
    for line in (lines[1], lines[3]):
        assert line.startswith("4/4 [==============================] - ") and line.endswith("loss: 0.5000")


def test_not_a_terminal_needs_no_batch_logs():
    assert not C.ProgbarLogger(verbose=1, stream=FakeStream(tty=False))._wants_batch_logs
    assert C.ProgbarLogger(verbose=1, stream=FakeStream(tty=True))._wants_batch_logs


@pytest.mark.parametrize("tty", [True, False])
def test_verbose_2_is_one_line_per_epoch_either_way(tty):
    text = _fit(FakeStream(tty=tty), verbose=2)
    assert "\r" not in text and "[" not in text
    assert [line.split(" - ")[0] for line in text.splitlines()] == ["Epoch 1/2", "4/4", "Epoch 2/2", "4/4"]


def test_streams_without_isatty_or_closed_count_as_files():
    class Bare:
        def __init__(self):
            self.parts = []

        def write(self, s):
            self.parts.append(s)

        def flush(self):
            pass
    bare = Bare()
    bar = C.ProgbarLogger(stream=bare)
    assert not bar._dynamic()
    closed = FakeStream(tty=True)
    closed.isatty = lambda: (_ for _ in ()).throw(ValueError("I/O operation on closed file"))
    assert not C.ProgbarLogger(stream=closed)._dynamic()


def test_fit_into_a_log_file_writes_clean_lines(tmp_path):
    x = np.ones((8, 2), np.float32)
    y = np.ones((8, 1), np.float32)
    m = gc.models.Sequential([gc.layers.Dense(1, input_shape=(2,))])
    m.compile(optimizer="sgd", loss="mse")
    with open(tmp_path / "train.log", "w") as log:
        m.fit(x, y, batch_size=2, epochs=3, verbose=0, callbacks=[C.ProgbarLogger(stream=log)])
    lines = (tmp_path / "train.log").read_text().splitlines()
    assert "\r" not in "".join(lines) and len(lines) == 6
    assert all(line.startswith("4/4 [") for line in lines[1::2])
