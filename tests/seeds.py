"""The seed documents' examples, defined once.

tests/test_compat.py runs each example through the compat function it documents; other tests
reuse the data where they run it another way (another layout, ``output_shape``).
"""
import numpy as np

# TensorFlow's ``tf.nn.depthwise_conv2d``: x, kernel, and the results of padding "VALID" and of
# TF_EXPLICIT_PADDING, strides [1, 1, 1, 1]
TF_X = np.array([[1., 2.], [3., 4.], [5., 6.]], dtype=np.float32).reshape((1, 3, 2, 1))
TF_KERNEL = np.array([[1., 2.], [3., 4]], dtype=np.float32).reshape((2, 1, 1, 2))
TF_VALID_Y = np.array([[[[10., 14.], [14., 20.]],
                        [[18., 26.], [22., 32.]]]], dtype=np.float32)
TF_EXPLICIT_PADDING = [[0, 0], [1, 0], [1, 0], [0, 0]]
TF_EXPLICIT_Y = np.array([[[[0., 0.], [3., 4.], [6., 8.]],
                           [[0., 0.], [10., 14.], [14., 20.]],
                           [[0., 0.], [18., 26.], [22., 32.]]]], dtype=np.float32)

# ivy's documented array examples: (x shape, k, strides, padding, y shape, whether `out=` is given)
IVY_SEED_EXAMPLES = [
    ((1, 28, 28, 3), 3, (1, 1), "VALID", (1, 26, 26, 3), False),
    ((1, 32, 32, 3), 5, [2, 2], "SAME", (1, 16, 16, 3), True),
    ((1, 64, 64, 32), 4, [1, 1], "VALID", (1, 61, 61, 32), True),
    ((1, 7, 7, 64), 3, [1, 1], "SAME", (1, 7, 7, 64), False),
    ((1, 128, 128, 3), 3, 2, "SAME", (1, 64, 64, 3), False),
]

# ivy's container example: x = eye(6) as (1, 6, 6, 1), filters a (Laplacian) and b (mean),
# strides 1, "VALID", dilations 2, and the results it prints
IVY_X = np.eye(6, 6).reshape((1, 6, 6, 1))
IVY_A = np.expand_dims(np.array([[1., 1., 1.], [1., -8., 1.], [1., 1., 1.]]), axis=-1)
IVY_B = np.expand_dims(np.array([[1., 1., 1.], [1., 1., 1.], [1., 1., 1.]]), axis=-1) / 9.0
IVY_LAPLACE = np.array([[[[-6.], [0.]], [[0.], [-6.]]]])
IVY_MEAN = np.array([[[[0.33333334], [0.]], [[0.], [0.33333334]]]])
