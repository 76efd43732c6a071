"""Split a latent vector into equal chunks: BigGAN's hierarchical z (Brock et al. 2019, Sec. 3).

BigGAN feeds the first chunk of z to the generator's input layer and one further chunk to each
residual block, where it joins the shared class embedding as the condition of the block's
conditional BatchNorm. A layer (rather than slicing in the graph) keeps the generator loadable from
legacy ``.h5`` files, which cannot store raw ``keras.ops`` calls.
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_gans")
class LatentSplit(keras.layers.Layer):
    """``(batch, dim)`` -> a list of ``num_chunks`` tensors ``(batch, dim // num_chunks)``.

    Args:
        num_chunks: how many equal chunks; ``dim`` must be divisible by it.
    """

    def __init__(self, num_chunks, **kwargs):
        super().__init__(**kwargs)
        if num_chunks < 1:
            raise ValueError(f"num_chunks must be >= 1, got {num_chunks}")
        self.num_chunks = int(num_chunks)

    def build(self, input_shape):
        dim = input_shape[-1]
        if dim is None or dim % self.num_chunks:
            raise ValueError(f"latent size {dim} is not divisible into {self.num_chunks} chunks")
        self.built = True

    def call(self, z):
        return ops.split(z, self.num_chunks, axis=-1)

    def compute_output_shape(self, input_shape):
        size = input_shape[-1] // self.num_chunks
        return [(*input_shape[:-1], size) for _ in range(self.num_chunks)]

    def get_config(self):
        config = super().get_config()
        config["num_chunks"] = self.num_chunks
        return config
