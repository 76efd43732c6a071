"""The adversarial losses of the reports, as Keras loss functions (registered for saving).

* least squares (Mao et al. 2017, "Least Squares Generative Adversarial Networks", Eq. 2): the
  CycleGAN's ``mse`` against targets 1 (real) and 0 (fake);
* hinge (Lim & Ye 2017; Tran et al. 2017; BigGAN-PyTorch ``losses.py``), BigGAN's;
* AnoGAN's residual and discrimination losses (Schlegl et al. 2017, Sec. 2.2);
* the semi-supervised GAN's real / fake loss on K class logits and feature matching (Salimans et al.
  2016, "Improved Techniques for Training GANs", arXiv:1606.03498, Sec. 5 and 3.1).

Every function takes ``(y_true, y_pred)`` and returns per-sample values; Keras averages them
(feature matching, a statistic of the whole batch, returns one value).
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_gans")
def least_squares(y_true, y_pred):
    """LSGAN: ``(D(x) - t)^2`` averaged over the patch, t = 1 for real and 0 for fake (Eq. 2)."""
    diff = ops.cast(y_pred, "float32") - ops.cast(y_true, "float32")
    return ops.mean(ops.reshape(ops.square(diff), (ops.shape(diff)[0], -1)), axis=-1)


@keras.saving.register_keras_serializable(package="keras_gans")
def d_hinge_loss(y_true, y_pred):
    """L_D = E[max(0, 1 - D(x, y))] + E[max(0, 1 + D(G(z), y))] on a ``[real; fake]`` batch.

    ``y_true`` is +1 for real and -1 for fake; the batch mean of ``2 max(0, 1 - t D)`` over equal
    halves is the sum of the two expectations.
    """
    return 2.0 * ops.relu(1.0 - ops.cast(y_true, y_pred.dtype) * y_pred)


@keras.saving.register_keras_serializable(package="keras_gans")
def d_hinge_real(y_true, y_pred):
    """The real term E[max(0, 1 - D(x, y))] of :func:`d_hinge_loss` (a metric)."""
    real = ops.cast(y_true > 0, y_pred.dtype)
    return 2.0 * real * ops.relu(1.0 - y_pred)


@keras.saving.register_keras_serializable(package="keras_gans")
def d_hinge_fake(y_true, y_pred):
    """The fake term E[max(0, 1 + D(G(z), y))] of :func:`d_hinge_loss` (a metric)."""
    fake = ops.cast(y_true < 0, y_pred.dtype)
    return 2.0 * fake * ops.relu(1.0 + y_pred)


@keras.saving.register_keras_serializable(package="keras_gans")
def g_hinge_loss(y_true, y_pred):
    """L_G = -E[D(G(z), y)]; ``y_true`` is ignored."""
    return -y_pred


def anogan_residual(x, gz):
    """AnoGAN's residual loss L_R(z) = sum |x - G(z)| per image (Schlegl et al., Eq. 3)."""
    return ops.sum(ops.abs(ops.cast(x, "float32") - ops.cast(gz, "float32")), axis=(1, 2, 3))


def anogan_discrimination(fx, fgz):
    """AnoGAN's feature-matching discrimination loss L_D(z) = sum |f(x) - f(G(z))| (Eq. 4)."""
    diff = ops.cast(fx, "float32") - ops.cast(fgz, "float32")
    return ops.sum(ops.abs(ops.reshape(diff, (ops.shape(diff)[0], -1))), axis=1)


def anogan_loss(residual, discrimination, lambda_):
    """AnoGAN's total L(z) = (1 - lambda) L_R + lambda L_D, also its anomaly score A(x) (Eq. 5)."""
    return (1.0 - lambda_) * residual + lambda_ * discrimination


def real_probability(logits):
    """SGAN: D(x) = Z / (Z + 1), Z = sum_k exp(l_k), the K+1-class softmax with the fake logit
    fixed at 0 (Salimans et al. Sec. 5), i.e. sigmoid(logsumexp(l))."""
    return ops.sigmoid(ops.logsumexp(logits, axis=-1))


@keras.saving.register_keras_serializable(package="keras_gans")
def real_fake_loss(y_true, logits):
    """SGAN: -log D(x) (y = 1) or -log(1 - D(x)) (y = 0) from the K logits: binary cross-entropy
    with the logit lse(l), written stably as softplus(lse) - y * lse."""
    lse = ops.logsumexp(logits, axis=-1)
    y = ops.reshape(ops.cast(y_true, lse.dtype), ops.shape(lse))
    return ops.softplus(lse) - y * lse


@keras.saving.register_keras_serializable(package="keras_gans")
def feature_matching_loss(real_features, fake_features):
    """||mean f(x) - mean f(G(z))||^2 over the batch, averaged over the features (Salimans Sec. 3.1;
    ``train_mnist_feature_matching.py``)."""
    real = ops.mean(ops.cast(real_features, "float32"), axis=0)
    return ops.mean(ops.square(ops.mean(ops.cast(fake_features, "float32"), axis=0) - real))
