"""The CNN seed program on MNIST (8,000 train / 2,000 held out), Keras API with graphc imports.

    python examples/mnist_cnn.py [--epochs 1] [--data /path/to/mnist]
    mpiexec -n 2 python examples/mnist_cnn.py --distributed   # data-parallel, 2 processes

Conv2D(32, 3x3, relu) -> MaxPooling2D -> Conv2D(64, 3x3, relu) -> MaxPooling2D -> Flatten ->
Dense(128, relu) -> Dense(10, softmax), adam, batch 32; prints the held-out accuracy and the
time per epoch.
"""
from _common import EpochTimer, load_mnist, parser, report, seed_all, training_scope

from graphc.layers import Conv2D, Dense, Flatten, MaxPooling2D
from graphc.models import Sequential


def build_model():
    model = Sequential()
    model.add(Conv2D(32, (3, 3), activation="relu", input_shape=(28, 28, 1)))
    model.add(MaxPooling2D(pool_size=(2, 2)))
    model.add(Conv2D(64, (3, 3), activation="relu"))
    model.add(MaxPooling2D(pool_size=(2, 2)))
    model.add(Flatten())
    model.add(Dense(128, activation="relu"))
    model.add(Dense(10, activation="softmax"))
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    return model


def main(argv=None):
    args = parser(__doc__, epochs=1).parse_args(argv)
    seed_all(args.seed)
    (x_train, y_train), (x_test, y_test) = load_mnist(args.data, shape=(28, 28, 1))
    model = build_model()
    timer = EpochTimer()
    with training_scope(args):      # --distributed: gc.distributed.DataParallel()
        model.fit(x_train, y_train, epochs=args.epochs, batch_size=args.batch_size,
                  verbose=args.verbose, callbacks=[timer])
    loss, acc = model.evaluate(x_test, y_test, verbose=0)
    report(acc, loss, len(x_test), timer.times)
    return acc, timer.times


if __name__ == "__main__":
    main()
