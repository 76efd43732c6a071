"""Small statistics for comparing training arms over seeds: means, t-intervals, paired differences.

Experiments in keras_gans repeat each arm (e.g. "real only" against "real + GAN images") over several
seeds and report every metric as a mean with a Student-t confidence interval over the seeds. Arms run
with the same seed share their data draw and their classifier's initial weights, so arms are compared
by the per-seed *paired* difference, whose interval is much tighter than the two separate intervals.

Undefined values (an interval from one seed, a test on identical differences) are ``None``, so the
dictionaries serialise to strict JSON.
"""

import math

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
DEGENERATE_SHARE = 0.9  # a run predicting one class more often than this is flagged


def _clean(value):
    value = float(value)
    return value if math.isfinite(value) else None


def mean_ci(values, confidence=CONFIDENCE):
    """Mean of ``values`` with a two-sided Student-t interval over them.

    Returns ``{"n", "mean", "std", "half_width", "low", "high", "values"}``; ``std`` is the sample
    standard deviation (ddof=1). With fewer than two values the interval fields are ``None``.
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0:
        raise ValueError("mean_ci needs at least one value")
    mean = float(v.mean())
    out = {
        "n": int(v.size),
        "mean": mean,
        "std": None,
        "half_width": None,
        "low": None,
        "high": None,
    }
    if v.size >= 2:
        std = float(v.std(ddof=1))
        half = float(stats.t.ppf(0.5 + confidence / 2, v.size - 1) * std / math.sqrt(v.size))
        out.update(std=std, half_width=half, low=mean - half, high=mean + half)
    out["values"] = [float(x) for x in v]
    return out


def paired_difference(a, b, confidence=CONFIDENCE):
    """``b - a`` per seed: mean, t-interval, a paired t-test p-value and the win / loss counts.

    ``a`` and ``b`` are equally long and aligned by seed. ``p_value`` is ``None`` with fewer than two
    pairs or when every difference is the same (the t statistic is then undefined).
    """
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"paired values need equal lengths, got {a.size} and {b.size}")
    diff = b - a
    out = mean_ci(diff, confidence)
    p = None
    if diff.size >= 2 and np.ptp(diff) > 0:
        p = _clean(stats.ttest_rel(b, a).pvalue)
    out.update(p_value=p, better=int((diff > 0).sum()), worse=int((diff < 0).sum()))
    return out


def summarize(runs, confidence=CONFIDENCE):
    """``{arm: {metric: mean_ci}}`` from ``runs = {arm: [{metric: value}, ...one per seed]}``."""
    summary = {}
    for arm, records in runs.items():
        metrics = {k for r in records for k in r}
        summary[arm] = {
            m: mean_ci([r[m] for r in records], confidence)
            for m in sorted(metrics)
            if all(m in r and r[m] is not None for r in records)
        }
    return summary


def compare(runs, reference, confidence=CONFIDENCE):
    """``{f"{arm} - {reference}": {metric: paired_difference}}`` for every other arm."""
    base = runs[reference]
    out = {}
    for arm, records in runs.items():
        if arm == reference:
            continue
        if len(records) != len(base):
            raise ValueError(f"arm {arm!r} has {len(records)} runs, {reference!r} has {len(base)}")
        metrics = set(base[0]) & set(records[0])
        out[f"{arm} - {reference}"] = {
            m: paired_difference([r[m] for r in base], [r[m] for r in records], confidence)
            for m in sorted(metrics)
        }
    return out


def classification_metrics(y_true, y_prob, positive=0, n_classes=None, threshold=None):
    """Test-set metrics of a classifier from its class probabilities, all from scikit-learn.

    Args:
        y_true: ``(n,)`` integer class indices.
        y_prob: ``(n, k)`` class probabilities (softmax outputs); the prediction is their argmax.
        positive: the index of the class whose recall is the *sensitivity* (melanoma in the
            skin-lesion report); every other class counts as negative for sensitivity, specificity
            and the ROC AUC.
        n_classes: the number of classes, so the confusion matrix keeps its shape when a class is
            absent from ``y_true`` (default: ``y_prob.shape[1]``).
        threshold: ``None`` (the argmax: 0.5 for two classes), or an image is called ``positive``
            when its probability is >= ``threshold`` (e.g. :func:`youden_threshold` on a
            validation split), otherwise the likeliest other class.

    Returns ``{"accuracy", "balanced_accuracy", "sensitivity", "specificity", "roc_auc",
    "confusion_matrix", "prediction_check"}`` (the last from :func:`prediction_check`); the ROC AUC (positive vs rest, from ``y_prob[:, positive]``, so not from
    hard labels as the report's notebook did) is ``None`` when ``y_true`` holds only one of the two sides, and
    the confusion matrix is a nested list, rows = true class, columns = predicted.
    """
    from sklearn import metrics as skm

    y_true = np.asarray(y_true).astype(np.int64).ravel()
    y_prob = np.asarray(y_prob, dtype=np.float64)
    if y_prob.ndim != 2 or len(y_prob) != len(y_true):
        raise ValueError(f"y_prob must be (n, k) with n = {len(y_true)}, got {y_prob.shape}")
    k = n_classes or y_prob.shape[1]
    y_pred = y_prob.argmax(axis=1)
    if threshold is not None:
        others = np.where(np.arange(y_prob.shape[1]) == positive, -np.inf, y_prob)
        y_pred = np.where(y_prob[:, positive] >= threshold, positive, others.argmax(axis=1))
    is_pos, pred_pos = y_true == positive, y_pred == positive
    both_sides = 0 < is_pos.sum() < len(is_pos)
    return {
        "accuracy": float(skm.accuracy_score(y_true, y_pred)),
        "balanced_accuracy": float(skm.balanced_accuracy_score(y_true, y_pred)),
        "sensitivity": float(skm.recall_score(is_pos, pred_pos, zero_division=0.0)),
        "specificity": float(
            skm.recall_score(is_pos, pred_pos, pos_label=False, zero_division=0.0)
        ),
        "roc_auc": float(skm.roc_auc_score(is_pos, y_prob[:, positive])) if both_sides else None,
        "confusion_matrix": skm.confusion_matrix(y_true, y_pred, labels=list(range(k))).tolist(),
        "prediction_check": prediction_check(y_true, y_pred, k),
    }


def prediction_check(y_true, y_pred, n_classes=None, max_share=DEGENERATE_SHARE):
    """Does a classifier (nearly) answer one class whatever the image?

    A class's *share* is the fraction of test images predicted as that class, each true class
    weighted equally, so on a balanced test set it is the plain fraction and on an imbalanced one
    it is what the fraction would be on a balanced one (a constant classifier scores 1.0 either
    way, a perfect one 1 / k). The run is ``degenerate`` when one class's share exceeds
    ``max_share``: its accuracy then measures the test set's class mix, not the classifier, and
    must not be read as a result.

    Returns ``{"degenerate", "class", "share", "shares", "max_share"}`` (JSON-ready).
    """
    y_true = np.asarray(y_true).astype(np.int64).ravel()
    y_pred = np.asarray(y_pred).astype(np.int64).ravel()
    if y_true.shape != y_pred.shape or y_true.size == 0:
        raise ValueError(f"need equally long, non-empty labels, got {y_true.size}, {y_pred.size}")
    k = n_classes or int(max(y_true.max(), y_pred.max())) + 1
    present = np.unique(y_true)
    per_class = [
        np.bincount(y_pred[y_true == c], minlength=k) / np.sum(y_true == c) for c in present
    ]
    shares = np.mean(per_class, axis=0)
    top = int(np.argmax(shares))
    return {
        "degenerate": bool(shares[top] > max_share),
        "class": top,
        "share": float(shares[top]),
        "shares": [float(s) for s in shares],
        "max_share": float(max_share),
    }


def youden_threshold(y_true, score, positive=0):
    """The score threshold with the highest Youden's J = TPR - FPR on a labelled (validation) set.

    ``score`` is P(``positive``); an image is called positive when its score is >= the threshold.
    The threshold sits halfway between the chosen score and the next lower one, so it classifies
    the validation images as the chosen ROC point does. ``None`` when one side is absent.
    """
    from sklearn.metrics import roc_curve

    is_pos = np.asarray(y_true).ravel() == positive
    score = np.asarray(score, dtype=np.float64).ravel()
    if is_pos.all() or not is_pos.any():
        return None
    fpr, tpr, thresholds = roc_curve(is_pos, score)
    best = int(np.argmax(tpr - fpr))
    if best == 0:  # roc_curve's first threshold is +inf: nothing is called positive
        return float(np.nextafter(score.max(), np.inf))
    below = score[score < thresholds[best]]
    lower = below.max() if below.size else thresholds[best]
    return float((thresholds[best] + lower) / 2)
