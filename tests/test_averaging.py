"""keras_gans.averaging: the moving average of a model's weights, against hand-computed values."""

import keras
import numpy as np
import pytest

from keras_gans.averaging import WeightAverage, warmup_decay


def dense(units=3, name="m"):
    x = keras.Input((2,))
    h = keras.layers.Dense(units, name=f"{name}_dense")(x)
    return keras.Model(x, keras.layers.BatchNormalization(name=f"{name}_bn")(h), name=name)


@pytest.mark.parametrize("eager", [True, False])
def test_one_step_is_decay_times_average_plus_the_rest_times_the_weights(eager):
    model, average = dense(name="m"), dense(name="avg")
    rng = np.random.default_rng(0)
    model.set_weights([rng.normal(size=w.shape).astype(np.float32) for w in model.weights])
    start = [w.numpy() for w in average.weights]
    WeightAverage([average], [model], run_eagerly=eager).update(0.75)
    for a, s, w in zip(average.weights, start, model.weights):
        # The batch-norm moving statistics are averaged too (non-trainable weights).
        np.testing.assert_allclose(a.numpy(), 0.75 * s + 0.25 * w.numpy(), rtol=1e-6, atol=1e-7)


def test_copy_makes_the_averages_equal_and_shapes_must_match():
    model, average = dense(name="m"), dense(name="avg")
    model.set_weights([w + 1.0 for w in model.get_weights()])
    WeightAverage([average], [model]).copy()
    for a, w in zip(average.weights, model.weights):
        np.testing.assert_array_equal(a.numpy(), w.numpy())
    with pytest.raises(ValueError, match="does not have the weights of m"):
        WeightAverage([dense(units=4, name="wide")], [model])
    with pytest.raises(ValueError, match="1 averaged models for 2 models"):
        WeightAverage([average], [model, model])


def test_warmup_decay_averages_recent_steps_then_caps():
    assert warmup_decay(0.999, 0) == pytest.approx(0.1)
    assert warmup_decay(0.999, 90) == pytest.approx(0.91)
    assert warmup_decay(0.999, 10**6) == 0.999
    assert warmup_decay(0.0, 5) == 0.0
