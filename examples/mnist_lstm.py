"""An LSTM over the rows of MNIST images (8,000 train / 2,000 held out), Keras API with graphc.

    python examples/mnist_lstm.py [--epochs 2] [--data /path/to/mnist]

Each 28x28 image is a sequence of 28 rows of 28 pixels: LSTM(units=64, input_shape=(28, 28)) ->
Dense(10, softmax), adam, batch 32; prints the held-out accuracy and the time per epoch.
"""
from _common import EpochTimer, load_mnist, parser, report, seed_all

from graphc.layers import LSTM, Dense
from graphc.models import Sequential


def build_model(units=64, timesteps=28, features=28, classes=10):
    model = Sequential()
    model.add(LSTM(units=units, input_shape=(timesteps, features)))
    model.add(Dense(classes, activation="softmax"))
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    return model


def main(argv=None):
    args = parser(__doc__, epochs=2).parse_args(argv)
    seed_all(args.seed)
    (x_train, y_train), (x_test, y_test) = load_mnist(args.data, shape=(28, 28))
    model = build_model()
    timer = EpochTimer()
    model.fit(x_train, y_train, epochs=args.epochs, batch_size=args.batch_size,
              verbose=args.verbose, callbacks=[timer])
    loss, acc = model.evaluate(x_test, y_test, verbose=0)
    report(acc, loss, len(x_test), timer.times)
    return acc, timer.times


if __name__ == "__main__":
    main()
