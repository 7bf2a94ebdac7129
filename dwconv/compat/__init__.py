"""Drop-in replacements for the depthwise convolutions of other frameworks, on NumPy arrays.

Each module keeps the original's names, signatures, defaults, weight layouts and numbers; switching
is a change of import::

    from dwconv.compat import tensorflow as tf      # tf.nn.depthwise_conv2d(...)
    from dwconv.compat import keras                 # keras.layers.DepthwiseConv2D(...)
    from dwconv.compat import ivy                   # ivy.depthwise_conv2d(...)
    from dwconv.compat import chainer as F          # F.depthwise_convolution_2d(...)
    from dwconv.compat import megengine as M        # M.Conv2d(...)

They translate arguments and weights and call dwconv's public functions, which check everything.
"""
