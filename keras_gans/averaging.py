"""Moving averages of a model's weights: BigGAN's and ProGAN's ``g_ema``, SGAN's averaged D.

``average = decay * average + (1 - decay) * weight`` for every weight of the averaged models, batch
statistics included, in one traced function. Polyak and Juditsky (1992) averaging as GAN code uses
it: Salimans et al.'s ``train_mnist_feature_matching.py`` tests the average of D's parameters,
Karras et al.'s ProGAN and Brock et al.'s BigGAN sample from an average of G.
"""

import tensorflow as tf


def warmup_decay(decay, step):
    """``min(decay, (1 + step) / (10 + step))``: an average of the recent steps early on, so a short
    run is not dominated by the initial weights (TensorFlow's ``ExponentialMovingAverage``
    ``num_updates`` rule)."""
    return min(float(decay), (1.0 + step) / (10.0 + step))


class WeightAverage:
    """Keeps ``averages`` (models not trained themselves) a moving average of ``models``.

    Args:
        averages, models: two equal-length lists of models with the same weights in the same order.
        run_eagerly: update without ``tf.function`` (debugging, tiny test runs).
    """

    def __init__(self, averages, models, run_eagerly=False):
        if len(averages) != len(models):
            raise ValueError(f"{len(averages)} averaged models for {len(models)} models")
        self.pairs = []
        for average, model in zip(averages, models):
            if [tuple(w.shape) for w in average.weights] != [tuple(w.shape) for w in model.weights]:
                raise ValueError(f"{average.name} does not have the weights of {model.name}")
            self.pairs += list(zip(average.weights, model.weights))
        self._update = self._assign if run_eagerly else tf.function(self._assign)

    def _assign(self, decay):
        for average, weight in self.pairs:
            average.assign(decay * average + (1.0 - decay) * weight)

    def update(self, decay):
        """One averaging step with ``decay`` (0: copy the weights)."""
        self._update(tf.constant(decay, tf.float32))

    def copy(self):
        """The averages become exact copies of the models."""
        self.update(0.0)
