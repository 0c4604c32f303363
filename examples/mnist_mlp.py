"""The MLP seed program on MNIST (8,000 train / 2,000 held out), Keras API with graphc imports.

    python examples/mnist_mlp.py [--epochs 3] [--data /path/to/mnist]

Reads the IDX files from --data, $GRAPHC_DATA, or ../shared/data/mnist next to the
repository; prints the held-out accuracy and the time per epoch.
"""
import argparse
import os
import time

import numpy as np

from graphc.callbacks import Callback
from graphc.datasets import mnist
from graphc.layers import Dense
from graphc.models import Sequential
from graphc.utils import to_categorical


class EpochTimer(Callback):
    def on_train_begin(self, logs=None):
        self.times = []

    def on_epoch_begin(self, epoch, logs=None):
        self.t0 = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self.t0)


def default_data_dir():
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.join(here, "..", "..", "shared", "data", "mnist")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--data", default=None)
    ap.add_argument("--verbose", type=int, default=2)
    args = ap.parse_args()
    path = args.data or (None if os.environ.get("GRAPHC_DATA") else default_data_dir())
    (x_train, y_train), (x_test, y_test) = mnist.load_data(path)
    x_train = x_train.reshape(len(x_train), 784).astype("float32") / 255.0
    x_test = x_test.reshape(len(x_test), 784).astype("float32") / 255.0
    y_train, y_test = to_categorical(y_train, 10), to_categorical(y_test, 10)

    model = Sequential()
    model.add(Dense(units=64, activation="relu", input_dim=784))
    model.add(Dense(units=10, activation="softmax"))
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    timer = EpochTimer()
    model.fit(x_train, y_train, epochs=args.epochs, batch_size=args.batch_size,
              verbose=args.verbose, callbacks=[timer])
    loss, acc = model.evaluate(x_test, y_test, verbose=0)
    print(f"held-out accuracy: {acc:.4f} (loss {loss:.4f}) on {len(x_test)} images")
    print("time per epoch: " + ", ".join(f"{t:.3f}s" for t in timer.times) +
          f" (mean after the first: {np.mean(timer.times[1:] or timer.times):.3f}s)")


if __name__ == "__main__":
    main()
