"""keras_gans.evaluation against values computed by hand."""

import math

import numpy as np
import pytest

from keras_gans import evaluation


def test_mean_ci_is_the_student_t_interval():
    # values 1, 2, 3, 6: mean 3, sample std sqrt(14/3); t(0.975, 3) = 3.182446305284263
    got = evaluation.mean_ci([1, 2, 3, 6])
    half = 3.182446305284263 * math.sqrt(14 / 3) / 2
    assert got["mean"] == 3.0 and got["std"] == pytest.approx(math.sqrt(14 / 3))
    assert got["half_width"] == pytest.approx(half) and got["low"] == pytest.approx(3 - half)
    one = evaluation.mean_ci([0.7])
    assert one["mean"] == 0.7 and one["half_width"] is None and one["low"] is None


def test_paired_difference_uses_per_seed_differences():
    a, b = [0.60, 0.70, 0.65], [0.70, 0.75, 0.72]  # differences 0.10, 0.05, 0.07
    got = evaluation.paired_difference(a, b)
    d = np.array([0.10, 0.05, 0.07])
    half = 4.302652729911275 * d.std(ddof=1) / math.sqrt(3)  # t(0.975, 2)
    assert got["mean"] == pytest.approx(d.mean()) and got["half_width"] == pytest.approx(half)
    t = d.mean() / (d.std(ddof=1) / math.sqrt(3))
    assert got["p_value"] == pytest.approx(0.0367, abs=5e-4) and t == pytest.approx(5.04, abs=0.01)
    assert (got["better"], got["worse"]) == (3, 0)
    # Identical differences: no t statistic (the interval has zero width, the p-value is undefined).
    same = evaluation.paired_difference([0.5, 0.5], [0.6, 0.6])
    assert same["p_value"] is None and same["half_width"] == pytest.approx(0.0)
    with pytest.raises(ValueError, match="equal lengths"):
        evaluation.paired_difference([1, 2], [1])


def test_compare_pairs_every_arm_with_the_reference_by_seed():
    runs = {"real": [{"auc": 0.6}, {"auc": 0.7}], "real+gan": [{"auc": 0.65}, {"auc": 0.69}]}
    diff = evaluation.compare(runs, "real")["real+gan - real"]["auc"]
    assert diff["values"] == pytest.approx([0.05, -0.01]) and (diff["better"], diff["worse"]) == (
        1,
        1,
    )


def test_classification_metrics_on_a_known_confusion_matrix():
    y = np.array([0, 0, 0, 1, 1, 1])
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.4, 0.6], [0.3, 0.7], [0.6, 0.4], [0.2, 0.8]])
    got = evaluation.classification_metrics(y, probs, positive=0)
    assert got["confusion_matrix"] == [[2, 1], [1, 2]]
    assert got["sensitivity"] == pytest.approx(2 / 3) and got["specificity"] == pytest.approx(2 / 3)
    assert got["roc_auc"] == pytest.approx(8 / 9)  # 8 of 9 (positive, negative) pairs ranked right


def test_prediction_check_flags_a_constant_classifier_only():
    y = np.array([0] * 50 + [1] * 50)  # a balanced test set
    constant = evaluation.prediction_check(y, np.zeros(100), 2)
    assert constant["degenerate"] and constant["class"] == 0 and constant["share"] == 1.0
    nearly = np.array([0] * 50 + [0] * 41 + [1] * 9)  # 91% answered "0"
    assert evaluation.prediction_check(y, nearly, 2)["degenerate"]
    working = np.array([0] * 45 + [1] * 5 + [1] * 40 + [0] * 10)  # 55% "0": a real classifier
    check = evaluation.prediction_check(y, working, 2)
    assert not check["degenerate"] and check["shares"] == pytest.approx([0.55, 0.45])
    # On an imbalanced test set each true class weighs the same: a perfect classifier is fine
    # even though 95% of its answers are "0", and a constant one is still flagged.
    skewed = np.array([0] * 95 + [1] * 5)
    assert not evaluation.prediction_check(skewed, skewed, 2)["degenerate"]
    assert evaluation.prediction_check(skewed, np.zeros(100), 2)["degenerate"]
    # classification_metrics carries the same check for its arg-max predictions.
    probs = np.tile([[0.6, 0.4]], (100, 1))
    assert evaluation.classification_metrics(y, probs)["prediction_check"]["degenerate"]


def test_youden_threshold_and_metrics_at_a_threshold():
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1])  # 0 is positive
    p0 = np.array([0.9, 0.35, 0.3, 0.32, 0.28, 0.1, 0.2, 0.05])  # every positive above 0.29
    t = evaluation.youden_threshold(y, p0, positive=0)
    assert 0.28 < t <= 0.30  # halfway between the lowest positive (0.30) and the next score
    probs = np.stack([p0, 1 - p0], 1)
    at_half = evaluation.classification_metrics(y, probs, 0)
    at_t = evaluation.classification_metrics(y, probs, 0, threshold=t)
    assert at_half["sensitivity"] == 0.25 and at_half["specificity"] == 1.0
    assert at_t["sensitivity"] == 1.0 and at_t["specificity"] == 1.0
    assert at_t["roc_auc"] == at_half["roc_auc"] == 1.0  # the ranking does not move
    assert evaluation.youden_threshold(np.zeros(4), p0[:4]) is None  # one side only: undefined
