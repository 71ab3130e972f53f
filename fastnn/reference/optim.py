"""Optimizer references: one in-place update of flat buffers (params, grads, state).

Mirrors ``csrc/optim.c`` and PyTorch's torch.optim update rules
(https://pytorch.org/docs/stable/optim.html). ``step`` is 1-based. lr == 0
updates the state but leaves params bitwise unchanged. Scalar factors are
Python floats (double); array math stays in the arrays' dtype.
"""
import math

import numpy as np


def _check(step, **buffers):
    if step < 1:
        raise ValueError(f"step must be >= 1, got {step}")
    for name, buf in buffers.items():
        if buf is None:
            raise ValueError(f"missing state buffer {name}")


def sgd_update(params, buf, grads, step, lr, momentum, dampening, weight_decay, nesterov):
    """SGD (PyTorch): g = grad + wd p;
    if momentum: buf = g (step 1) else momentum buf + (1 - dampening) g;
                 g = g + momentum buf (nesterov) else buf;
    p -= lr g."""
    _check(step, **({"buf": buf} if momentum != 0 else {}))
    g = grads + weight_decay * params if weight_decay != 0 else grads
    if momentum != 0:
        buf[...] = g if step == 1 else momentum * buf + (1 - dampening) * g
        g = g + momentum * buf if nesterov else buf
    if lr != 0:
        params -= lr * g


def adam_update(params, m, v, grads, step, lr, beta1, beta2, eps, weight_decay, decoupled):
    """Adam (Kingma & Ba 2015), AdamW if decoupled (Loshchilov & Hutter 2019):
    AdamW: p *= 1 - lr wd;   Adam: g = grad + wd p;
    m = b1 m + (1 - b1) g;   v = b2 v + (1 - b2) g^2;
    p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)."""
    _check(step, m=m, v=v)
    g = grads
    if weight_decay != 0 and not decoupled:
        g = grads + weight_decay * params
    m[...] = beta1 * m + (1 - beta1) * g
    v[...] = beta2 * v + (1 - beta2) * g * g
    if lr == 0:
        return
    if weight_decay != 0 and decoupled:
        params *= 1 - lr * weight_decay
    step_size = lr / (1 - beta1 ** step)
    bc2_sqrt = math.sqrt(1 - beta2 ** step)
    params -= step_size * m / (v ** 0.5 / bc2_sqrt + eps)


def rmsprop_update(params, sq, buf, grads, step, lr, alpha, eps, weight_decay, momentum):
    """RMSprop (PyTorch, not centered): g = grad + wd p;
    sq = alpha sq + (1 - alpha) g^2;  a = sqrt(sq) + eps;
    momentum > 0: buf = momentum buf + g / a, p -= lr buf;  else p -= lr g / a."""
    _check(step, sq=sq, **({"buf": buf} if momentum > 0 else {}))
    g = grads + weight_decay * params if weight_decay != 0 else grads
    sq[...] = alpha * sq + (1 - alpha) * g * g
    avg = sq ** 0.5 + eps
    if momentum > 0:
        buf[...] = momentum * buf + g / avg
        update = lr * buf
    else:
        update = lr * g / avg
    if lr != 0:
        params -= update


def adagrad_update(params, sum, grads, step, lr, lr_decay, eps, weight_decay):
    """AdaGrad (PyTorch): g = grad + wd p;  clr = lr / (1 + (t - 1) lr_decay);
    sum += g^2;  p -= clr g / (sqrt(sum) + eps)."""
    _check(step, sum=sum)
    g = grads + weight_decay * params if weight_decay != 0 else grads
    sum += g * g
    if lr != 0:
        params -= lr / (1 + (step - 1) * lr_decay) * g / (sum ** 0.5 + eps)


def clip_grad_norm(grads, max_norm):
    """Scale grads in place so that ||grads||_2 <= max_norm; return the norm before.

    PyTorch's clip_grad_norm_: coef = max_norm / (norm + 1e-6); the gradients are
    multiplied by coef when it is below 1. The norm is taken in float64.
    """
    if not max_norm > 0:
        raise ValueError(f"max_norm must be > 0, got {max_norm}")
    norm = math.sqrt(float(np.sum(np.square(grads, dtype=np.float64))))
    coef = max_norm / (norm + 1e-6)
    if not coef >= 1.0:
        grads *= grads.dtype.type(coef)
    return norm
