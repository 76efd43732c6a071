"""Evaluation during a run: ``--eval-every`` values (FID / KID, mode coverage) logged with the losses.

:class:`RunEvaluation` is a mixin of :class:`keras_gans.training.GANTrainer`: a trainer's
``evaluate()`` returns its values, computed here with the run's feature extractor
(:mod:`keras_gans.metrics`) or coverage classifier (:mod:`keras_gans.mode_coverage`), both imported
only when a run asks for them.
"""


class RunEvaluation:
    """The evaluation half of a trainer; :meth:`GANTrainer.setup_runtime` sets its attributes."""

    def maybe_evaluate(self):
        """:meth:`evaluate` every ``eval_every`` steps on the chief; its values join losses.csv,
        ``fid`` keyed by its network (``fid_keras_inception_v3``: not a published-FID scale)."""
        if not (self.eval_every and self.is_chief and self.step % self.eval_every == 0):
            return {}
        values = {k: float(v) for k, v in self.evaluate().items() if v is not None}
        values = {self._fid_key() if k == "fid" else k: v for k, v in values.items()}
        self._eval_keys.update(values)
        return values

    def evaluations(self):
        """The first and last evaluated rows of losses.csv (``{}`` before any evaluation)."""
        keys, rows = self._eval_keys, self.loss_log.rows() if self._eval_keys else []
        rows = [r for r in rows if any(r.get(k) for k in keys)]
        pick = lambda r: {"step": int(float(r["step"]))} | {k: float(r[k]) for k in keys if r[k]}
        return {"first": pick(rows[0]), "last": pick(rows[-1])} if rows else {}

    def mode_coverage(self, fake_images, labels=None):
        """Modes covered and KL from uniform of ``fake_images`` (:mod:`keras_gans.mode_coverage`)
        when the run has a ``coverage_classifier``; ``labels``: a conditional G's classes."""
        if self.coverage_classifier is None:
            return {}
        from keras_gans.mode_coverage import mode_coverage

        return mode_coverage(fake_images, self.coverage_classifier, self.coverage_classes, labels)

    def _fid_key(self):
        from keras_gans.metrics import fid_key

        return fid_key(self.eval_extractor or "inception")

    def fid_kid(self, real_images, fake_images):
        """FID and KID of ``fake_images`` against ``real_images`` (features computed once)."""
        if not self.eval_extractor:
            return {}
        from keras_gans.metrics import GenerativeEvaluator

        if self._evaluator is None:
            self._evaluator = GenerativeEvaluator(real_images, extractor=self.eval_extractor)
        return self._evaluator(fake_images)
