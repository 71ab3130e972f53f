/*
 * step_driver.c -- run whole epochs of a dense net in C (fnn_model_train_epoch),
 * for profilers: `valgrind --tool=callgrind` counts instructions per step
 * (load-independent), `perf` samples it. No Python involved.
 *
 *   gcc -O2 -std=c99 -fopenmp -Icsrc bench/c/step_driver.c csrc/ALL.c -lm -o /tmp/step_driver
 *   (ALL.c: every .c file of csrc/)
 *   /tmp/step_driver tiny|mid|mnist BATCH EPOCHS [STEPS_PER_EPOCH]
 *
 * tiny: 2-16-16-1 tanh, MSE, SGD(lr 1e-2); mid: 64-64-64-1 tanh, MSE, SGD;
 * mnist: 784-256-128-10 ReLU, cross-entropy, Adam(1e-3) -- the networks of
 * bench/compare.py. Prints microseconds per step (wall, best epoch).
 */
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "fastnn.h"

static fnn_node node(const char *op, int32_t i, int64_t units) {
    fnn_node n;
    memset(&n, 0, sizeof n);
    strncpy(n.op, op, FNN_NAME_MAX - 1);
    n.in[0] = i;
    n.in[1] = -1;
    n.out = i + 1;
    n.attrs.units = units;
    n.attrs.bias = 1;
    return n;
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(int argc, char **argv) {
    const char *net = argc > 1 ? argv[1] : "tiny";
    int64_t bs = argc > 2 ? atoll(argv[2]) : 32;
    int epochs = argc > 3 ? atoi(argv[3]) : 10;
    int64_t steps = argc > 4 ? atoll(argv[4]) : 1000;
    int64_t sizes[4];
    const char *act;
    int ce = 0;
    if (!strcmp(net, "tiny")) { int64_t s[4] = {2, 16, 16, 1}; memcpy(sizes, s, sizeof s); act = "tanh"; }
    else if (!strcmp(net, "mid")) { int64_t s[4] = {64, 64, 64, 1}; memcpy(sizes, s, sizeof s); act = "tanh"; }
    else { int64_t s[4] = {784, 256, 128, 10}; memcpy(sizes, s, sizeof s); act = "relu"; ce = 1; }
    fnn_node nodes[5] = {node("linear", 0, sizes[1]), node(act, 1, 0), node("linear", 2, sizes[2]),
                         node(act, 3, 0), node("linear", 4, sizes[3])};
    fnn_model_desc d;
    memset(&d, 0, sizeof d);
    d.input.ndim = 1;
    d.input.dim[0] = sizes[0];
    d.num_nodes = 5;
    d.nodes = nodes;
    fnn_model *m;
    if (fnn_model_create(&m, &d, 0) != FNN_OK) { printf("create: %s\n", fnn_last_error()); return 1; }
    fnn_loss_desc l;
    memset(&l, 0, sizeof l);
    l.name = ce ? "cross_entropy" : "mse";
    l.ignore_index = -100;
    fnn_optim_desc o;
    memset(&o, 0, sizeof o);
    o.name = ce ? "adam" : "sgd";
    o.lr = ce ? 1e-3f : 1e-2f;
    o.beta1 = 0.9f; o.beta2 = 0.999f; o.eps = 1e-8f;
    if (fnn_model_set_loss(m, &l) != FNN_OK || fnn_model_set_optimizer(m, &o) != FNN_OK) {
        printf("bind: %s\n", fnn_last_error());
        return 1;
    }
    int64_t rows = bs * steps;
    float *x = malloc((size_t)(rows * sizes[0]) * sizeof(float));
    float *t = malloc((size_t)(rows * sizes[3]) * sizeof(float));
    int64_t *lab = malloc((size_t)rows * sizeof(int64_t));
    int64_t *order = malloc((size_t)rows * sizeof(int64_t));
    uint64_t s = 12345;
    for (int64_t i = 0; i < rows * sizes[0]; i++) { s = s * 6364136223846793005ull + 1; x[i] = (float)((s >> 40) / 16777216.0 * 2 - 1); }
    for (int64_t i = 0; i < rows * sizes[3]; i++) { s = s * 6364136223846793005ull + 1; t[i] = (float)((s >> 40) / 16777216.0 * 2 - 1); }
    for (int64_t i = 0; i < rows; i++) { s = s * 6364136223846793005ull + 1; lab[i] = (int64_t)((s >> 33) % (uint64_t)sizes[3]); order[i] = i; }
    for (int64_t i = rows - 1; i > 0; i--) { s = s * 6364136223846793005ull + 1; int64_t j = (int64_t)((s >> 33) % (uint64_t)(i + 1)); int64_t k = order[i]; order[i] = order[j]; order[j] = k; }
    double best = 1e30, loss = 0;
    for (int e = 0; e < epochs; e++) {
        fnn_epoch_args a;
        memset(&a, 0, sizeof a);
        a.x = x; a.target = ce ? NULL : t; a.labels = ce ? lab : NULL;
        a.rows = rows; a.order = order; a.batch_size = bs;
        fnn_epoch_result r;
        memset(&r, 0, sizeof r);
        double t0 = now();
        if (fnn_model_train_epoch(m, &a, &r) != FNN_OK) { printf("epoch: %s\n", fnn_last_error()); return 1; }
        double dt = (now() - t0) / (double)steps;
        if (dt < best) best = dt;
        loss = r.loss_sum / (double)r.rows;
    }
    printf("%s b%lld: %.3f us/step (best of %d epochs of %lld steps), last loss %.6f\n", net,
           (long long)bs, best * 1e6, epochs, (long long)steps, loss);
    fnn_model_free(m);
    free(x); free(t); free(lab); free(order);
    return 0;
}
