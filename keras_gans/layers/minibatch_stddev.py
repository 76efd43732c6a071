"""ProGAN's minibatch standard deviation (Karras et al., ICLR 2018, Sec. 3).

The standard deviation of every feature at every position over a group of images, averaged into one
value per group and appended to each image of the group as a constant feature map: D sees how varied
a batch is, which pushes G toward variation. Groups of 4 as the official code
(``minibatch_stddev_layer``, ``mbstd_group_size=4``); a batch must be smaller than the group or a
multiple of it.
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_gans")
class MinibatchStdDev(keras.layers.Layer):
    """``(n, h, w, c)`` -> ``(n, h, w, c + 1)``: one feature map of each group's mean std.

    Args:
        group_size: images per group (the whole batch when it is smaller).
        epsilon: added to the variance before the square root.
    """

    def __init__(self, group_size=4, epsilon=1e-8, **kwargs):
        super().__init__(**kwargs)
        if group_size < 1:
            raise ValueError(f"group_size must be >= 1, got {group_size}")
        self.group_size, self.epsilon = int(group_size), float(epsilon)

    def call(self, inputs):
        n, h, w, c = (ops.shape(inputs)[i] for i in range(4))
        group = ops.minimum(self.group_size, n)
        x = ops.cast(ops.reshape(inputs, (group, -1, h, w, c)), "float32")  # [G, M, H, W, C]
        x = x - ops.mean(x, axis=0, keepdims=True)
        std = ops.sqrt(ops.mean(ops.square(x), axis=0) + self.epsilon)  # [M, H, W, C]
        std = ops.mean(std, axis=(1, 2, 3))  # [M]: one value per group
        # Image i is in group i % M (the reshape above), as in the official code's tile.
        std = ops.tile(std, (group,))
        feature = ops.ones_like(inputs[..., :1]) * ops.cast(
            ops.reshape(std, (-1, 1, 1, 1)), inputs.dtype
        )
        return ops.concatenate([inputs, feature], axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], input_shape[-1] + 1)

    def get_config(self):
        config = super().get_config()
        config.update(group_size=self.group_size, epsilon=self.epsilon)
        return config
