/*
 * fnn_conv.h -- the convolution kernels of csrc/conv.c (internal), called by
 * the conv2d and conv1d entries of csrc/ops.c.
 */
#ifndef FNN_CONV_H
#define FNN_CONV_H

#include "fnn_internal.h"

/* One convolution's sizes (per sample): input (C, H, W), weight
   (O, C/G, KH, KW), output (O, OH, OW); stride sh, sw; dilation dh, dw;
   zero padding pt (top), pb (bottom), pl (left), pr (right). */
typedef struct fnn_conv_geom {
    int64_t C, H, W, O, OH, OW, KH, KW, sh, sw, dh, dw, pt, pb, pl, pr, G;
} fnn_conv_geom;

/* Floats of scratch per sample the kernels need (0: none). */
int64_t fnn__conv_scratch(const fnn_conv_geom *g);
/* y (N, O, OH, OW) from x (N, C, H, W), w, b (NULL: no bias); scratch
   (N * fnn__conv_scratch) is overwritten. keep 1: the patches
   fnn__conv_backward reads are left in each sample's slot (a batch whose
   patches the weight gradient recomputes, or keep 0 when no backward
   follows: each thread reuses one slot, which then stays in cache). y is
   the same either way. */
fnn_status fnn__conv_forward(float *y, const float *x, const float *w, const float *b,
                             float *scratch, int64_t N, const fnn_conv_geom *g, int keep);
/* dx OVERWRITTEN (NULL: skipped), dw and db ACCUMULATED (NULL: skipped);
   scratch must hold what fnn__conv_forward (keep 1) left there for the same
   x and N (the patches it keeps, when a batch's patches are small; larger
   ones the weight gradient recomputes in scratch; dx overwrites it). */
fnn_status fnn__conv_backward(float *dx, float *dw, float *db, const float *dy, const float *x,
                              const float *w, float *scratch, int64_t N,
                              const fnn_conv_geom *g);

#endif /* FNN_CONV_H */
