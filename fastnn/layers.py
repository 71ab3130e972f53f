"""Deprecated location of the layers: they live in :mod:`fastnn.nn` now.

``from fastnn.layers import Linear`` keeps working; new code imports from
``fastnn`` or ``fastnn.nn``.
"""
import warnings

from .nn import (GELU, Dropout, LeakyReLU, Linear, Module, Parameter, ReLU, Sequential,
                 Sigmoid, Softmax, Tanh, param_layout)

__all__ = ["Parameter", "Module", "Linear", "ReLU", "LeakyReLU", "Sigmoid", "Tanh",
           "GELU", "Softmax", "Dropout", "Sequential", "param_layout"]

warnings.warn("fastnn.layers is deprecated: import the layers from fastnn or fastnn.nn",
              DeprecationWarning, stacklevel=2)
