"""An opt-in fused CycleGAN training step: the report's five updates in one ``tf.function`` call.

:meth:`keras_gans.cyclegan.CycleGAN.train_step` keeps the report's API: one traced call of both
generators, four discriminator ``train_on_batch`` calls and one ``combined.train_on_batch``, i.e.
six round trips between Python and TensorFlow per step, each waiting for the device. On a GPU at
128x128 a round trip costs about as much as the arithmetic, so :class:`FusedCycleGANStep` runs the
same step as one graph:

1. ``G(x)`` and ``F(y)`` once (paper Sec. 3), under the generators' gradient tape;
2. D_X on real ``x``, D_X on ``F(y)``, D_Y on real ``y``, D_Y on ``G(x)``: four separate updates in
   the report's order, each with its own tape and the discriminator's own optimizer (LSGAN, Eq. 1
   with least squares), exactly what the four ``train_on_batch`` calls do;
3. G and F through the *updated* D_X, D_Y with the adversarial, cycle (Eq. 2, weight lambda_cycle)
   and identity (Sec. 5.2, weight lambda_id) losses, with the ``combined`` model's optimizer.

The fakes of step 2 are the tensors of step 3 (the report computes them twice; the generators do
not change before step 3, so the values are the same). Weights, optimizers and optimizer states are
the trainer's own (``d_A.optimizer``, ``d_B.optimizer``, ``combined.optimizer``), so checkpoints,
resuming and the ``train_on_batch`` step mix freely with the fused step, and one fused step
equals one :meth:`~keras_gans.cyclegan.CycleGAN.train_step` within float rounding
(``tests/test_fused.py``).
It follows the trainer's strategy (the global batch is split over replicas), mixed precision (loss
scaling through the compiled optimizers) and ``jit`` (XLA).

Use::

    gan = CycleGAN(...)
    step = FusedCycleGANStep(gan)
    logs = step(imgs_A, imgs_B, valid, fake)  # the same keys as CycleGAN.train_step
"""

import numpy as np
import tensorflow as tf


def _mse(y_true, y_pred):
    y_pred = tf.cast(y_pred, tf.float32)
    return tf.reduce_mean(tf.square(tf.cast(y_true, tf.float32) - y_pred))


def _mae(y_true, y_pred):
    y_pred = tf.cast(y_pred, tf.float32)
    return tf.reduce_mean(tf.abs(tf.cast(y_true, tf.float32) - y_pred))


def _binary_accuracy(y_true, y_pred, threshold=0.5):
    """Keras' ``"accuracy"`` for a one-channel output (``BinaryAccuracy``), as the report logged."""
    y_true = tf.cast(y_true, tf.float32)
    hit = tf.equal(y_true, tf.cast(tf.cast(y_pred, tf.float32) > threshold, tf.float32))
    return tf.reduce_mean(tf.cast(hit, tf.float32))


def _trainable_variables(model):
    """``model``'s trainable variables, also while it is frozen for the ``combined`` model."""
    if model.trainable:
        return list(model.trainable_variables)
    model.trainable = True  # the setter recurses: freezing again restores every sub-layer
    variables = list(model.trainable_variables)
    model.trainable = False
    return variables


class FusedCycleGANStep:
    """One CycleGAN training step as one traced call; see the module docstring.

    Args:
        gan: a :class:`keras_gans.cyclegan.CycleGAN` (its models, compiled optimizers, strategy).
        jit_compile: XLA for the fused function; ``None`` follows the trainer's ``jit`` setting.
    """

    def __init__(self, gan, jit_compile=None):
        if getattr(gan, "accumulate", 1) != 1:
            raise ValueError(
                "the fused step makes one update per call; with accumulate > 1 use "
                "CycleGAN.train_step"
            )
        self.gan = gan
        self.strategy = gan.strategy
        self.lambda_cycle = float(gan.lambda_cycle)
        self.lambda_id = float(gan.lambda_id)
        self.d_A_vars = _trainable_variables(gan.d_A)
        self.d_B_vars = _trainable_variables(gan.d_B)
        self.g_vars = _trainable_variables(gan.g_AB) + _trainable_variables(gan.g_BA)
        self.opt_d_A = gan.d_A.optimizer
        self.opt_d_B = gan.d_B.optimizer
        self.opt_g = gan.combined.optimizer
        with self.strategy.scope():
            for opt, variables in (
                (self.opt_d_A, self.d_A_vars),
                (self.opt_d_B, self.d_B_vars),
                (self.opt_g, self.g_vars),
            ):
                if not opt.built:
                    opt.build(variables)
        if jit_compile is None:
            jit_compile = gan.jit_compile
        jit_compile = None if jit_compile == "auto" else bool(jit_compile)
        n = self.strategy.num_replicas_in_sync
        if n == 1:
            self._fn = tf.function(
                self._replica_step,
                jit_compile=jit_compile,
                reduce_retracing=True,
                autograph=False,  # plain Python control flow only; tracing stays quick
            )
        else:
            strategy = self.strategy

            @tf.function(reduce_retracing=True, autograph=False)
            def distributed(data):
                out = strategy.run(self._replica_step, args=data)
                return {k: strategy.reduce("MEAN", v, axis=None) for k, v in out.items()}

            self._fn = distributed

    # --- the step -------------------------------------------------------------------------------
    def _d_update(self, d, optimizer, variables, imgs, target, scale):
        """One discriminator update (what ``d.train_on_batch(imgs, target)`` does)."""
        with tf.GradientTape() as tape:
            pred = d(imgs, training=True)
            loss = _mse(target, pred)  # LSGAN: (D(x) - 1)^2 on real, D(G(z))^2 on fake
            scaled = optimizer.scale_loss(loss * scale)
        grads = tape.gradient(scaled, variables)
        optimizer.apply_gradients(zip(grads, variables))
        return loss, _binary_accuracy(target, pred)

    def _replica_step(self, imgs_A, imgs_B, valid, fake):
        gan = self.gan
        # Keras divides each replica's loss by the replica count; the summed gradient is the mean.
        scale = 1.0 / tf.distribute.get_strategy().num_replicas_in_sync
        with tf.GradientTape() as g_tape:
            fake_B = gan.g_AB(imgs_A, training=True)  # G(x)
            fake_A = gan.g_BA(imgs_B, training=True)  # F(y)
            with g_tape.stop_recording():
                # The report's order: D_X real, D_X fake, D_Y real, D_Y fake, each its own update.
                dA_real, accA_real = self._d_update(
                    gan.d_A, self.opt_d_A, self.d_A_vars, imgs_A, valid, scale
                )
                dA_fake, accA_fake = self._d_update(
                    gan.d_A, self.opt_d_A, self.d_A_vars, tf.stop_gradient(fake_A), fake, scale
                )
                dB_real, accB_real = self._d_update(
                    gan.d_B, self.opt_d_B, self.d_B_vars, imgs_B, valid, scale
                )
                dB_fake, accB_fake = self._d_update(
                    gan.d_B, self.opt_d_B, self.d_B_vars, tf.stop_gradient(fake_B), fake, scale
                )
            reconstr_A = gan.g_BA(fake_B, training=True)  # forward cycle F(G(x)) ~ x, Eq. 2
            reconstr_B = gan.g_AB(fake_A, training=True)  # backward cycle G(F(y)) ~ y, Eq. 2
            img_A_id = gan.g_BA(imgs_A, training=True)  # identity F(x) ~ x, Sec. 5.2
            img_B_id = gan.g_AB(imgs_B, training=True)  # identity G(y) ~ y, Sec. 5.2
            # LSGAN generator terms (D(G(x)) - 1)^2 through the updated, frozen discriminators.
            adv_A = _mse(valid, gan.d_A(fake_A, training=True))
            adv_B = _mse(valid, gan.d_B(fake_B, training=True))
            rec_A, rec_B = _mae(imgs_A, reconstr_A), _mae(imgs_B, reconstr_B)
            id_A, id_B = _mae(imgs_A, img_A_id), _mae(imgs_B, img_B_id)
            g_loss = (
                adv_A + adv_B + self.lambda_cycle * (rec_A + rec_B) + self.lambda_id * (id_A + id_B)
            )
            scaled = self.opt_g.scale_loss(g_loss * scale)
        grads = g_tape.gradient(scaled, self.g_vars)
        self.opt_g.apply_gradients(zip(grads, self.g_vars))
        return {
            "D_loss": 0.25 * (dA_real + dA_fake + dB_real + dB_fake),
            "D_acc": 0.25 * (accA_real + accA_fake + accB_real + accB_fake),
            "G_loss": g_loss,
            "adv": 0.5 * (adv_A + adv_B),
            "recon": 0.5 * (rec_A + rec_B),
            "id": 0.5 * (id_A + id_B),
        }

    def __call__(self, imgs_A, imgs_B, valid, fake):
        """One step on a global batch; returns ``{name: float}`` like ``CycleGAN.train_step``."""
        args = [np.asarray(v, np.float32) for v in (imgs_A, imgs_B, valid, fake)]
        n = self.strategy.num_replicas_in_sync
        if n == 1:
            logs = self._fn(*args)
        else:
            if args[0].shape[0] % n:
                raise ValueError(
                    f"the global batch ({args[0].shape[0]}) must be divisible by the number of "
                    f"replicas ({n}); choose --batch-size as a multiple of {n}"
                )
            per = args[0].shape[0] // n
            data = self.strategy.experimental_distribute_values_from_function(
                lambda ctx: tuple(
                    a[ctx.replica_id_in_sync_group * per : (ctx.replica_id_in_sync_group + 1) * per]
                    for a in args
                )
            )
            logs = self._fn(data)
        return {k: float(v) for k, v in logs.items()}
