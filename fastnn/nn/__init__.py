"""Layers by family and the Sequential model.

    module.py      Module, the base of every layer
    linear.py      Linear
    activation.py  ReLU, LeakyReLU, Sigmoid, Tanh, GELU, Softmax
    dropout.py     Dropout
    conv.py        Conv2d, Conv1d
    pool.py        MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, Flatten
    norm.py        BatchNorm1d, BatchNorm2d, LayerNorm
    container.py   Sequential (a C fnn_model when its layers are built-ins)
    registry.py    C op name / activation name -> class
"""
from ..parameter import Parameter
from .activation import GELU, LeakyReLU, ReLU, Sigmoid, Softmax, Tanh
from .container import Sequential, param_layout
from .conv import Conv1d, Conv2d
from .dropout import Dropout
from .linear import Linear
from .module import Module
from .norm import BatchNorm1d, BatchNorm2d, LayerNorm
from .pool import AdaptiveAvgPool2d, AvgPool2d, Flatten, MaxPool2d
from .registry import ACTIVATIONS, LAYERS

__all__ = ["Parameter", "Module", "Linear", "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "GELU",
           "Softmax", "Dropout", "Conv1d", "Conv2d",
           "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "Flatten", "BatchNorm1d",
           "BatchNorm2d", "LayerNorm", "Sequential", "param_layout", "LAYERS", "ACTIVATIONS"]
