"""Benchmarks of keras_gans, not tests: ``python -m benchmarks.cyclegan`` and
``python -m benchmarks.input_pipeline``; see ``benchmarks/README.md``."""
