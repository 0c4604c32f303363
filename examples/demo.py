"""A short tour of graphc's TensorFlow-1 style API (runs in a second or two).

    python examples/demo.py
"""
import numpy as np

import graphc as tf

a = tf.constant([[1.0, 2.0], [3.0, 4.0]])
b = tf.constant([[5.0, 6.0], [7.0, 8.0]])
with tf.Session() as sess:
    print("a + b =\n", sess.run(tf.add(a, b)))
    print("a @ b =\n", sess.run(tf.matmul(a, b)))

# placeholders, variables and a few steps of gradient descent on y = 3x + 2
x = tf.placeholder("float32", shape=(None, 1), name="x")
y = tf.placeholder("float32", shape=(None, 1), name="y")
w = tf.Variable(np.zeros((1, 1), np.float32), name="w")
bias = tf.Variable(np.zeros(1, np.float32), name="b")
pred = tf.matmul(x, w) + bias
loss = tf.reduce_mean(tf.square(pred - y))
gw, gb = tf.gradients(loss, [w, bias])
step = tf.group(w.assign_sub(0.1 * gw), bias.assign_sub(0.1 * gb))

rng = np.random.default_rng(0)
xs = rng.uniform(-1, 1, (256, 1)).astype(np.float32)
ys = 3 * xs + 2
sess = tf.Session()
sess.run(tf.global_variables_initializer())
for i in range(200):
    sess.run(step, feed_dict={x: xs, y: ys})
print("learned w=%.3f b=%.3f (true 3, 2); loss %.2e" % (
    sess.run(w)[0, 0], sess.run(bias)[0], sess.run(loss, {x: xs, y: ys})))
