"""A small Transformer encoder classifying MNIST with the 28 image rows as tokens.

    python examples/transformer_classifier.py [--epochs 3] [--data /path/to/mnist]

Row projection (Dense 28 -> 64) plus a learned position embedding (a custom layer, as a user
would write one), then ``--blocks`` encoder blocks of MultiHeadAttention(4 heads, key_dim 16) with a
residual and LayerNormalization, a feed-forward Dense(128, relu) -> Dense(64) with a residual and
LayerNormalization; GlobalAveragePooling1D over the tokens and Dense(10, softmax). Functional API,
adam, batch 32; prints the held-out accuracy and the time per epoch.
"""
from _common import EpochTimer, load_mnist, parser, report, seed_all

from graphc.layers import (Add, Dense, GlobalAveragePooling1D, Input, Layer, LayerNormalization,
                           MultiHeadAttention)
from graphc.models import Model
from graphc.optimizers import Adam


class PositionEmbedding(Layer):
    """Adds a trainable ``(steps, features)`` table to ``(batch, steps, features)`` inputs."""

    def build(self, input_shape):
        self.positions = self.add_weight("positions", tuple(input_shape[1:]),
                                         initializer="random_normal")
        self.built = True

    def call(self, inputs, training=None):
        return inputs + self.positions

    def compute_output_shape(self, input_shape):
        return input_shape


def encoder_block(x, dim, heads, ff_dim):
    attn = MultiHeadAttention(num_heads=heads, key_dim=dim // heads)(x, x)
    x = LayerNormalization(epsilon=1e-6)(Add()([x, attn]))
    ff = Dense(dim)(Dense(ff_dim, activation="relu")(x))
    return LayerNormalization(epsilon=1e-6)(Add()([x, ff]))


def build_model(steps=28, features=28, dim=64, heads=4, ff_dim=128, blocks=1, classes=10,
                lr=1e-3):
    inputs = Input(shape=(steps, features))
    x = PositionEmbedding()(Dense(dim)(inputs))
    for _ in range(blocks):
        x = encoder_block(x, dim, heads, ff_dim)
    outputs = Dense(classes, activation="softmax")(GlobalAveragePooling1D()(x))
    model = Model(inputs=inputs, outputs=outputs)
    model.compile(optimizer=Adam(learning_rate=lr), loss="categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def main(argv=None):
    ap = parser(__doc__, epochs=3)
    ap.add_argument("--blocks", type=int, default=1)
    ap.add_argument("--lr", type=float, default=1e-3)
    args = ap.parse_args(argv)
    seed_all(args.seed)
    (x_train, y_train), (x_test, y_test) = load_mnist(args.data, shape=(28, 28))
    model = build_model(blocks=args.blocks, lr=args.lr)
    timer = EpochTimer()
    model.fit(x_train, y_train, epochs=args.epochs, batch_size=args.batch_size,
              verbose=args.verbose, callbacks=[timer])
    loss, acc = model.evaluate(x_test, y_test, verbose=0)
    report(acc, loss, len(x_test), timer.times)
    return acc, timer.times


if __name__ == "__main__":
    main()
