"""The ML core of sersite: audio, noise mix-up, spectrograms, networks, training, metrics.

Nothing in this package imports Django: it runs and tests on its own, and the
Celery tasks, management commands and benchmarks all call into it.
"""
