"""GEMM reference: ``C = alpha * op(A) @ op(B) + beta * C`` in place.

Mirrors ``csrc/gemm.c``. Computes in the dtype of its inputs, so the same code
serves float32 comparisons and float64 gradient checks.
"""
import numpy as np


def sgemm(transA, transB, alpha, A, B, beta, C):
    """C = alpha * op(A) @ op(B) + beta * C, with op(X) = X.T if transX else X.

    A is (M, K) or (K, M) if transA; B is (K, N) or (N, K) if transB; C is (M, N).
    beta == 0: C is overwritten and never read (NaN in C is ignored).
    alpha == 0 or K == 0: C = beta * C, and A, B are not read.
    """
    opA = A.T if transA else A
    opB = B.T if transB else B
    M, K = opA.shape
    if opB.shape[0] != K or (M, opB.shape[1]) != C.shape:
        raise ValueError(f"sgemm shapes do not match: op(A) is {opA.shape}, "
                         f"op(B) is {opB.shape}, C is {C.shape}")
    if beta == 0:
        C[...] = 0
    elif beta != 1:
        C *= beta
    if alpha != 0 and K > 0:
        C += alpha * (opA @ opB)
