"""The one random number generator behind weight init and dropout.

`manual_seed(n)` replaces it with a freshly seeded one, so two runs that call
it with the same n draw the same numbers in the same order, bit for bit.
"""
import numpy as np

_generator = np.random.default_rng()


def seed(n):
    global _generator
    _generator = np.random.default_rng(n)


def generator():
    return _generator
