"""The benchmarks run end to end (32x32, 2 steps, tiny models) and write the fields they promise.

Nothing here is timed: speed is measured by ``python -m benchmarks.cyclegan`` (see its README).
"""

import json
import os

import numpy as np
import pytest
from PIL import Image

from benchmarks import common

TINY = ["--img-size", "32", "--gf", "4", "--df", "4", "--matmul-size", "128"]
VARIANT_FIELDS = (
    "steps_per_s",
    "images_per_s",
    "ms_per_step",
    "cpu_ms_per_step",
    "rss_peak_mb",
    "rss_growth_warmup_mb",
    "flops_per_step",
    "achieved_gflops",
    "achieved_fraction_of_matmul",
    "every_kernel_updated",
)


def test_forward_flops_counts_conv_and_dense():
    import keras

    x = keras.Input((8, 8, 3))
    h = keras.layers.Conv2D(4, 3, strides=2, padding="same", name="c")(x)  # 4x4x4 out
    h = keras.layers.LeakyReLU(name="act")(h)
    h = keras.layers.Flatten(name="flat")(h)
    y = keras.layers.Dense(5, name="d")(h)
    total, per_layer = common.forward_flops(keras.Model(x, y), by_layer=True)
    assert per_layer["c"] == 2 * 3 * 3 * 3 * 4 * 4 * 4
    assert per_layer["d"] == 2 * 64 * 5
    assert per_layer["act"] == 0
    assert total == per_layer["c"] + per_layer["d"]


def test_step_flops_convention():
    from benchmarks.cyclegan import step_flops

    # 6 trained generator calls (3x), 4 trained D calls (3x), 2 frozen D calls (2x), plus the
    # two inference generator calls the train_on_batch variants make for the D fakes.
    assert step_flops(1, 0, "fused") == 18
    assert step_flops(0, 1, "fused") == 16
    assert step_flops(1, 0, "literal") == step_flops(1, 0, "keras_gans") == 20


def test_write_results_writes_stamped_and_latest(tmp_path):
    paths = common.write_results("x", {"timestamp": "T", "a": np.float32(1.5)}, str(tmp_path))
    assert [os.path.basename(p) for p in paths] == ["x-T.json", "x-latest.json"]
    assert common.read_latest("x", str(tmp_path))["a"] == 1.5


@pytest.mark.slow
def test_cyclegan_benchmark_smoke(tmp_path):
    from benchmarks import cyclegan

    args = TINY + ["--steps", "2", "--repeats", "1", "--warmup", "0", "--profile", "1"]
    data = cyclegan.run(args + ["--results-dir", str(tmp_path)])
    with open(tmp_path / "cyclegan-latest.json") as f:
        written = json.load(f)
    assert written["timestamp"] == data["timestamp"]
    assert os.path.exists(tmp_path / f"cyclegan-{data['timestamp']}.json")
    assert written["matmul_gflops"] > 0 and written["rss_peak_timed_mb"] > 0
    assert [v["variant"] for v in written["variants"]] == list(cyclegan.VARIANTS)
    for res in written["variants"]:
        for field in VARIANT_FIELDS:
            assert field in res, (res["variant"], field)
        assert res["steps_per_s"] > 0 and res["flops_per_step"] > 0
        # D must really train in every variant, the literal baseline included.
        assert all(res["every_kernel_updated"].values()), res
    assert set(written["ratios"]) == {"keras_gans_vs_literal", "keras_gans_vs_fused"}
    assert set(written["targets"]) == set(cyclegan.TARGETS)
    assert "combined train_on_batch" in written["profile_keras_gans_ms"]
    assert "CycleGAN 32x32" in cyclegan.table(written)


def test_input_pipeline_benchmark_smoke(tmp_path):
    from benchmarks import input_pipeline

    root = tmp_path / "data"
    rng = np.random.default_rng(0)
    for split in ("trainA", "trainB"):
        os.makedirs(root / split)
        for i in range(4):
            pixels = rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / split / f"{i}.png")
    results = tmp_path / "results"
    # The step rate comes from the latest cyclegan results at the same image and batch size.
    common.write_results(
        "cyclegan",
        {
            "timestamp": "T",
            "options": {"img_size": 32, "batch_size": 1},
            "variants": [{"variant": "keras_gans", "steps_per_s": 2.0}],
        },
        str(results),
    )
    args = ["--data-dir", str(root), "--img-size", "32", "--epochs", "1", "--repeats", "1"]
    data = input_pipeline.run(args + ["--results-dir", str(results)])
    written = common.read_latest("input_pipeline", str(results))
    assert written["timestamp"] == data["timestamp"]
    assert written["pairs_per_epoch"] == 4
    assert written["source_size"] == [40, 40]
    assert written["images_per_s"] == pytest.approx(2 * written["pairs_per_s"])
    assert written["step"]["steps_per_s"] == 2.0
    assert written["ratio_to_step"] == pytest.approx(written["batches_per_s"] / 2.0)
    assert set(written["target"]) == {"target", "value", "met"}


@pytest.mark.slow
def test_gan_comparison_smoke(tmp_path):
    """ProGAN at 64 px on the lesion sample, its harness arm, KID / FID from the harness's CNN (one
    GAN: the DCGAN's branch is one constructor call, and the DCGAN trains in tests/test_dcgan.py)."""
    from benchmarks import gan_comparison
    from data_loaders.isic_sources import make_lesion_sample, sample_root

    args = ["--data-dir", make_lesion_sample(sample_root()), "--output", str(tmp_path / "out")]
    args += ["--gans", "progan64", "--harness", "progan64", "--test-per-class", "4"]
    args += ["--images-per-stage", "4", "--batch-size", "4", "--fmap-base", "16"]
    args += ["--fmap-max", "4", "--latent-dim", "4", "--dcgan-filters", "4", "--clf-size", "32"]
    args += ["--clf-epochs", "1", "--seeds", "0", "--n-fake", "6", "--eager-progan"]
    result = gan_comparison.main(args + ["--results-dir", str(tmp_path / "results")])
    assert common.read_latest("gan_comparison", str(tmp_path / "results"))["seconds"] > 0
    assert result["same_test_set"], "the harness must score the test set the GANs never saw"
    assert set(result["gans"]) == {"progan64"}
    for kind, record in result["gans"].items():
        assert set(record["files"]) == {"melanoma", "nevus"}
        for scores in record["scores"].values():
            assert np.isfinite([scores["kid"], scores["fid"]]).all(), kind
    assert set(result["harness"]["progan64"]["summary"]) == {"real", "real+synthetic"}
