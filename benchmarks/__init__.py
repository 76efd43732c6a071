"""Benchmarks of keras_gans (not tests): ``python -m benchmarks.cyclegan``, ``benchmarks.input_pipeline``."""
