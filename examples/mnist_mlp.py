"""The MLP seed program on MNIST (8,000 train / 2,000 held out), Keras API with graphc imports.

    python examples/mnist_mlp.py [--epochs 3] [--data /path/to/mnist]
    mpiexec -n 2 python examples/mnist_mlp.py --distributed   # data-parallel, 2 processes

Reads the IDX files from --data or $GRAPHC_DATA if given, else the MNIST test set installed with
graphc (its 10,000 images split 8,000 train / 2,000 held out); prints the held-out accuracy and the
time per epoch.
"""
from _common import EpochTimer, load_mnist, parser, report, seed_all, training_scope

from graphc.layers import Dense
from graphc.models import Sequential


def main(argv=None):
    args = parser(__doc__, epochs=3).parse_args(argv)
    seed_all(args.seed)
    (x_train, y_train), (x_test, y_test) = load_mnist(args.data, shape=(784,))

    model = Sequential()
    model.add(Dense(units=64, activation="relu", input_dim=784))
    model.add(Dense(units=10, activation="softmax"))
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    timer = EpochTimer()
    with training_scope(args):      # --distributed: gc.distributed.DataParallel()
        model.fit(x_train, y_train, epochs=args.epochs, batch_size=args.batch_size,
                  verbose=args.verbose, callbacks=[timer])
    loss, acc = model.evaluate(x_test, y_test, verbose=0)
    report(acc, loss, len(x_test), timer.times)
    return acc, timer.times


if __name__ == "__main__":
    main()
