"""Layers by family and the Sequential model.

    module.py      Module, the base of every layer
    linear.py      Linear
    activation.py  ReLU, LeakyReLU, Sigmoid, Tanh, GELU, Softmax
    dropout.py     Dropout
    container.py   Sequential (a C fnn_model when its layers are built-ins)
    registry.py    C op name / activation name -> class
"""
from ..parameter import Parameter
from .activation import GELU, LeakyReLU, ReLU, Sigmoid, Softmax, Tanh
from .container import Sequential, param_layout
from .dropout import Dropout
from .linear import Linear
from .module import Module
from .registry import ACTIVATIONS, LAYERS

__all__ = ["Parameter", "Module", "Linear", "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "GELU",
           "Softmax", "Dropout", "Sequential", "param_layout", "LAYERS", "ACTIVATIONS"]
