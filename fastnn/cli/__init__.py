"""The ``fastnn`` command line: :func:`main` runs it.

Modules: ``main`` (argument parsing, demo / train / predict, dispatch),
``csvio`` (reading data files, writing predictions, feature scaling),
``progress`` (per-epoch output), ``network`` (the activation-name table and
the MLP builder) and ``bench`` (the ``fastnn bench`` comparison).
"""
from .main import main

__all__ = ["main"]
