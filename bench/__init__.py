"""Benchmarks: each ``bench_*.py`` module has ``run() -> dict``; ``python -m bench`` saves the results."""
