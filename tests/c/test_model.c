/*
 * test_model.c -- the C model object without Python: create, initialise,
 * forward, train step, loss and optimizer binding, and the error paths.
 *
 * Built from csrc/ alone by tests/test_c_model.py. Prints one line per
 * failed check and "<n> checks, <k> failures" last; exit status 0 when every
 * check passes.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "fastnn.h"

static int checks = 0, failures = 0;

#define CHECK(cond, ...) do {                                                \
        checks++;                                                            \
        if (!(cond)) {                                                       \
            failures++;                                                      \
            printf("FAIL line %d: ", __LINE__);                              \
            printf(__VA_ARGS__);                                             \
            printf(" [%s]\n", fnn_last_error());                             \
        }                                                                    \
    } while (0)

static fnn_node node(const char *op, int32_t i) {
    fnn_node n;
    memset(&n, 0, sizeof n);
    strncpy(n.op, op, FNN_NAME_MAX - 1);
    n.in[0] = i;
    n.in[1] = -1;
    n.out = i + 1;
    return n;
}

static fnn_shape shape1(int64_t d) {
    fnn_shape s;
    memset(&s, 0, sizeof s);
    s.ndim = 1;
    s.dim[0] = d;
    return s;
}

/* linear(4 -> 5, bias) -> relu -> linear(5 -> 3, bias) */
static fnn_model *mlp(uint64_t seed) {
    fnn_node nodes[3] = {node("linear", 0), node("relu", 1), node("linear", 2)};
    nodes[0].attrs.units = 5;
    nodes[0].attrs.bias = 1;
    nodes[2].attrs.units = 3;
    nodes[2].attrs.bias = 1;
    fnn_model_desc d = {shape1(4), 3, 0, nodes};
    fnn_model *m = NULL;
    fnn_status st = fnn_model_create(&m, &d, seed);
    CHECK(st == FNN_OK && m, "create the MLP: %s", fnn_status_string(st));
    return m;
}

/* out (n, 3) in double: relu(x W1 + b1) W2 + b2 with the model's parameters */
static void reference_forward(double *out, const float *p, const float *x, int n) {
    const float *W1 = p, *b1 = p + 20, *W2 = p + 25, *b2 = p + 40;
    for (int i = 0; i < n; i++) {
        double h[5];
        for (int j = 0; j < 5; j++) {
            double s = b1[j];
            for (int k = 0; k < 4; k++) s += (double)x[i * 4 + k] * W1[k * 5 + j];
            h[j] = s > 0 ? s : 0;
        }
        for (int j = 0; j < 3; j++) {
            double s = b2[j];
            for (int k = 0; k < 5; k++) s += h[k] * W2[k * 3 + j];
            out[i * 3 + j] = s;
        }
    }
}

static void test_layout_and_init(void) {
    fnn_model *a = mlp(7), *b = mlp(7), *c = mlp(8);
    if (!a || !b || !c) goto done;
    CHECK(fnn_model_num_params(a) == 43, "P = %lld", (long long)fnn_model_num_params(a));
    CHECK(fnn_model_num_buffers(a) == 0, "B = 0");
    CHECK(fnn_model_num_nodes(a) == 3, "3 nodes");
    fnn_node_info info;
    CHECK(fnn_model_node_info(a, 2, &info) == FNN_OK && info.param_offset == 25 &&
          info.num_params == 18 && info.out_shape.ndim == 1 && info.out_shape.dim[0] == 3,
          "node 2 info");
    CHECK(fnn_model_node_info(a, 3, &info) == FNN_ERR_ARG, "no node 3");
    fnn_shape o = fnn_model_output_shape(a);
    CHECK(o.ndim == 1 && o.dim[0] == 3, "output shape");
    CHECK(memcmp(fnn_model_params(a), fnn_model_params(b), 43 * sizeof(float)) == 0,
          "same seed, same parameters");
    CHECK(memcmp(fnn_model_params(a), fnn_model_params(c), 20 * sizeof(float)) != 0,
          "another seed, other weights");
    const float *p = fnn_model_params(a);
    double bound = sqrt(6.0 / 4.0);   /* He: a relu follows */
    int in_range = 1, biases_zero = 1;
    for (int i = 0; i < 20; i++) in_range &= fabs(p[i]) <= bound && p[i] != 0.0f;
    for (int i = 20; i < 25; i++) biases_zero &= p[i] == 0.0f;
    for (int i = 25; i < 40; i++) in_range &= fabs(p[i]) <= sqrt(6.0 / 8.0);   /* Xavier */
    for (int i = 40; i < 43; i++) biases_zero &= p[i] == 0.0f;
    CHECK(in_range && biases_zero, "He/Xavier bounds and zero biases");
    fnn_model_params(a)[0] = 99.0f;
    CHECK(fnn_model_init(a, 7) == FNN_OK && p[0] == fnn_model_params(b)[0],
          "re-initialisation restores the seed's weights");
    CHECK(fnn_model_seed(c) == 8, "seed kept");
    CHECK(fnn_model_set_metadata(a, "{\"k\": 1}", 8) == FNN_OK, "set metadata");
    int64_t len = 0;
    CHECK(strcmp(fnn_model_metadata(a, &len), "{\"k\": 1}") == 0 && len == 8, "metadata");
done:
    fnn_model_free(a);
    fnn_model_free(b);
    fnn_model_free(c);
}

static void test_forward(void) {
    fnn_model *m = mlp(3);
    if (!m) return;
    float x[6 * 4], out[6 * 3], out2[6 * 3];
    double ref[6 * 3];
    for (int i = 0; i < 24; i++) x[i] = (float)sin(0.7 * i);
    CHECK(fnn_model_forward(m, out, x, 6, NULL, 0) == FNN_OK, "forward, own workspace");
    int64_t need = 0;
    CHECK(fnn_model_workspace_size(m, 6, 0, &need) == FNN_OK && need > 0, "workspace size");
    float *work = malloc((size_t)need * sizeof(float));
    CHECK(fnn_model_forward(m, out2, x, 6, work, need) == FNN_OK, "forward, given workspace");
    CHECK(memcmp(out, out2, sizeof out) == 0, "same bits with either workspace");
    reference_forward(ref, fnn_model_params(m), x, 6);
    double err = 0;
    for (int i = 0; i < 18; i++) err = fmax(err, fabs(out[i] - ref[i]));
    CHECK(err < 1e-5, "forward equals the double-precision reference (err %g)", err);
    CHECK(fnn_model_forward(m, out2, x, 6, work, need - 1) == FNN_ERR_SIZE &&
          strstr(fnn_last_error(), "workspace") != NULL, "short workspace named");
    CHECK(fnn_model_forward(m, out2, NULL, 6, work, need) == FNN_ERR_ARG, "x NULL");
    free(work);
    fnn_model_free(m);
}

/* mean squared error of the model on (x, t), through forward */
static double mse(const fnn_model *m, const float *x, const float *t, int n) {
    float out[16 * 3];
    fnn_model_forward(m, out, x, n, NULL, 0);
    double s = 0;
    for (int i = 0; i < n * 3; i++) s += (out[i] - t[i]) * (double)(out[i] - t[i]);
    return s / (n * 3);
}

static void test_train_step(void) {
    fnn_model *m = mlp(5);
    if (!m) return;
    float x[16 * 4], t[16 * 3];
    for (int i = 0; i < 64; i++) x[i] = (float)cos(0.3 * i);
    for (int i = 0; i < 48; i++) t[i] = (float)sin(0.2 * i);
    fnn_train_args a = {x, t, NULL, 16, NULL, 0};
    fnn_train_result r;
    CHECK(fnn_model_train_step(m, &a, &r) == FNN_ERR_STATE &&
          strstr(fnn_last_error(), "no loss") != NULL, "a step needs a loss");
    fnn_loss_desc loss = {"mse", 0.0f, NULL, 0, -100};
    CHECK(fnn_model_set_loss(m, &loss) == FNN_OK, "set mse");
    CHECK(fnn_model_train_step(m, &a, &r) == FNN_ERR_STATE &&
          strstr(fnn_last_error(), "no optimizer") != NULL, "a step needs an optimizer");
    fnn_optim_desc opt;
    memset(&opt, 0, sizeof opt);
    opt.name = "adam";
    opt.lr = 0.01f;
    opt.beta1 = 0.9f;
    opt.beta2 = 0.999f;
    opt.eps = 1e-8f;
    CHECK(fnn_optim_num_state(&opt) == 2, "adam has 2 state buffers");
    CHECK(fnn_model_set_optimizer(m, &opt) == FNN_OK, "set adam (the model's own state)");
    double before = mse(m, x, t, 16), first = 0;
    for (int s = 0; s < 200; s++) {
        fnn_status st = fnn_model_train_step(m, &a, &r);
        if (st != FNN_OK) {
            CHECK(0, "step %d: %s", s, fnn_status_string(st));
            break;
        }
        if (s == 0) first = r.loss;
    }
    double after = mse(m, x, t, 16);
    CHECK(fabs(first - before) < 1e-6 * (1 + before), "the step's loss is the loss before "
          "the update (%g vs %g)", first, before);
    CHECK(after < 0.5 * before, "200 Adam steps halve the loss (%g -> %g)", before, after);
    CHECK(fnn_model_step(m) == 200 && fnn_model_counter(m) == 200, "counters");

    /* a label out of range changes nothing */
    fnn_loss_desc ce = {"cross_entropy", 0.0f, NULL, 0, -100};
    CHECK(fnn_model_set_loss(m, &ce) == FNN_OK, "set cross-entropy");
    int64_t labels[16];
    for (int i = 0; i < 16; i++) labels[i] = i % 3;
    labels[9] = 3;
    float saved[43];
    memcpy(saved, fnn_model_params(m), sizeof saved);
    fnn_train_args b = {x, NULL, labels, 16, NULL, 0};
    CHECK(fnn_model_train_step(m, &b, &r) == FNN_ERR_LABEL && r.bad_index == 9,
          "bad label reported at row 9");
    CHECK(memcmp(saved, fnn_model_params(m), sizeof saved) == 0, "parameters unchanged");
    CHECK(fnn_model_step(m) == 200, "no step counted");
    labels[9] = 0;
    CHECK(fnn_model_train_step(m, &b, &r) == FNN_OK && r.loss > 0, "labels fixed: trains");
    fnn_train_args c = {x, t, NULL, 16, NULL, 0};
    CHECK(fnn_model_train_step(m, &c, &r) == FNN_ERR_ARG, "cross-entropy needs labels");
    labels[9] = 3;
    CHECK(fnn_model_train_step(m, &b, &r) == FNN_ERR_LABEL, "a label error again");
    fnn_loss_desc h0 = {"huber", 0.0f, NULL, 0, -100};   /* delta 0: the kernel refuses */
    fnn_model_set_loss(m, &h0);
    CHECK(fnn_model_train_step(m, &c, &r) != FNN_OK &&
          strstr(fnn_last_error(), "label") == NULL,
          "a later failure is not reported with the earlier call's message");
    float weight[4] = {1, 2, 3, 4};
    fnn_loss_desc bad = {"cross_entropy", 0.0f, weight, 4, -100};
    CHECK(fnn_model_set_loss(m, &bad) == FNN_ERR_SIZE, "class weights of the wrong length");
    fnn_loss_desc unknown = {"hinge", 0.0f, NULL, 0, -100};
    CHECK(fnn_model_set_loss(m, &unknown) == FNN_ERR_ARG, "unknown loss");
    opt.name = "lbfgs";
    CHECK(fnn_model_set_optimizer(m, &opt) == FNN_ERR_ARG, "unknown optimizer");
    opt.name = "sgd";
    opt.lr = NAN;
    CHECK(fnn_model_set_optimizer(m, &opt) == FNN_ERR_ARG, "NaN learning rate");
    fnn_model_free(m);
}

/* The model's own optimizer state starts at zero for each optimizer bound:
   Adam's moments must not become RMSprop's square average. */
static void test_own_state_is_fresh_per_optimizer(void) {
    fnn_model *a = mlp(2), *b = mlp(2);
    if (!a || !b) goto done;
    float x[8 * 4], t[8 * 3];
    for (int i = 0; i < 32; i++) x[i] = (float)sin(0.5 * i);
    for (int i = 0; i < 24; i++) t[i] = (float)cos(0.4 * i);
    fnn_loss_desc loss = {"mse", 0.0f, NULL, 0, -100};
    fnn_model_set_loss(a, &loss);
    fnn_model_set_loss(b, &loss);
    fnn_optim_desc adam, rms;
    memset(&adam, 0, sizeof adam);
    adam.name = "adam"; adam.lr = 0.01f; adam.beta1 = 0.9f; adam.beta2 = 0.999f; adam.eps = 1e-8f;
    memset(&rms, 0, sizeof rms);
    rms.name = "rmsprop"; rms.lr = 0.01f; rms.alpha = 0.99f; rms.eps = 1e-8f;
    fnn_train_args args = {x, t, NULL, 8, NULL, 0};
    fnn_train_result r;
    fnn_model_set_optimizer(a, &adam);
    for (int s = 0; s < 5; s++) fnn_model_train_step(a, &args, &r);
    memcpy(fnn_model_params(b), fnn_model_params(a), 43 * sizeof(float));
    fnn_model_set_counters(b, fnn_model_step(a), fnn_model_counter(a));
    CHECK(fnn_model_set_optimizer(a, &rms) == FNN_OK && fnn_model_set_optimizer(b, &rms) == FNN_OK,
          "bind rmsprop");
    fnn_model_train_step(a, &args, &r);
    fnn_model_train_step(b, &args, &r);
    CHECK(memcmp(fnn_model_params(a), fnn_model_params(b), 43 * sizeof(float)) == 0,
          "rmsprop after adam starts from zero state");
    rms.lr = 0.005f;   /* rebinding the same optimizer keeps its state */
    fnn_model_set_optimizer(a, &rms);
    fnn_model_set_optimizer(b, &rms);
    fnn_model_train_step(a, &args, &r);
    fnn_model_train_step(b, &args, &r);
    CHECK(memcmp(fnn_model_params(a), fnn_model_params(b), 43 * sizeof(float)) == 0,
          "a new learning rate keeps the state");
done:
    fnn_model_free(a);
    fnn_model_free(b);
}

static void test_bad_descriptions(void) {
    fnn_model *m = (fnn_model *)&checks;   /* must be reset to NULL on error */
    fnn_node n[2] = {node("linear", 0), node("conv", 1)};
    n[0].attrs.units = 3;
    fnn_model_desc d = {shape1(4), 2, 0, n};
    CHECK(fnn_model_create(&m, &d, 0) == FNN_ERR_ARG && m == NULL &&
          strstr(fnn_last_error(), "node 1: unknown op 'conv'") != NULL, "unknown op");
    n[1] = node("relu", 0);   /* reads slot 0 again: not a chain */
    CHECK(fnn_model_create(&m, &d, 0) == FNN_ERR_ARG && strstr(fnn_last_error(), "chain"),
          "non-chain rejected");
    fnn_shape s2 = {2, 0, {3, 4, 0}};
    fnn_model_desc d2 = {s2, 1, 0, n};
    CHECK(fnn_model_create(&m, &d2, 0) == FNN_ERR_ARG && strstr(fnn_last_error(), "1-D"),
          "linear needs 1-D samples");
    fnn_node u = node("linear", 0);
    u.attrs.units = 0;
    fnn_model_desc d3 = {shape1(4), 1, 0, &u};
    CHECK(fnn_model_create(&m, &d3, 0) == FNN_ERR_ARG, "units 0");
    fnn_node dp = node("dropout", 0);
    dp.attrs.p = 1.0f;
    fnn_model_desc d4 = {shape1(4), 1, 0, &dp};
    CHECK(fnn_model_create(&m, &d4, 0) == FNN_ERR_ARG && strstr(fnn_last_error(), "dropout"),
          "dropout p = 1");
    fnn_model_desc d5 = {shape1(0), 1, 0, &dp};
    CHECK(fnn_model_create(&m, &d5, 0) == FNN_ERR_SIZE, "empty input shape");
    fnn_model_desc d6 = {shape1(4), 0, 0, n};
    CHECK(fnn_model_create(&m, &d6, 0) == FNN_ERR_ARG, "no nodes");
    CHECK(fnn_model_create(NULL, &d6, 0) == FNN_ERR_ARG, "out NULL");
    int64_t P = -1, B = -1;
    fnn_node ok[2] = {node("linear", 0), node("tanh", 1)};
    ok[0].attrs.units = 3;
    ok[0].attrs.bias = 1;
    fnn_model_desc d7 = {shape1(4), 2, 0, ok};
    CHECK(fnn_model_desc_sizes(&d7, &P, &B) == FNN_OK && P == 15 && B == 0,
          "desc sizes without allocating (P %lld)", (long long)P);
    CHECK(fnn_model_desc_sizes(&d, &P, &B) == FNN_ERR_ARG, "desc sizes validates too");
    fnn_node huge = node("linear", 0);
    huge.attrs.units = (int64_t)1 << 40;
    fnn_model_desc d8 = {shape1(1 << 20), 1, 0, &huge};
    CHECK(fnn_model_desc_sizes(&d8, &P, &B) == FNN_OK && P == (int64_t)1 << 60,
          "a 2^60-parameter description is sized, not allocated");
    CHECK(fnn_op_count() >= 14 && strcmp(fnn_op_name(0), "linear") == 0 &&
          strcmp(fnn_op_name(13), "layer_norm") == 0 &&
          fnn_op_name(fnn_op_count()) == NULL, "the op table");
    CHECK(fnn_loss_count() == 5 && strcmp(fnn_loss_name(4), "cross_entropy") == 0 &&
          fnn_optim_count() == 5 && strcmp(fnn_optim_name(2), "adamw") == 0 &&
          fnn_optim_name(5) == NULL, "the loss and optimizer tables");
}

/* A deep chain (more nodes than any fixed-size array would hold) with
   dropout trains, allocates nothing after its first step, and forward is
   deterministic while training steps differ by their dropout masks. */
static void test_deep_chain(void) {
    enum { L = 101 };
    fnn_node n[L];
    n[0] = node("linear", 0);
    n[0].attrs.units = 8;
    n[0].attrs.bias = 1;
    for (int i = 1; i < L - 1; i++) n[i] = node(i % 2 ? "tanh" : "dropout", i);
    for (int i = 2; i < L - 1; i += 2) n[i].attrs.p = 0.1f;
    n[L - 1] = node("linear", L - 1);
    n[L - 1].attrs.units = 2;
    fnn_model_desc d = {shape1(3), L, 0, n};
    fnn_model *m = NULL;
    CHECK(fnn_model_create(&m, &d, 11) == FNN_OK, "deep chain");
    if (!m) return;
    fnn_loss_desc loss = {"cross_entropy", 0.0f, NULL, 0, -100};
    fnn_optim_desc opt;
    memset(&opt, 0, sizeof opt);
    opt.name = "sgd";
    opt.lr = 0.05f;
    opt.momentum = 0.9f;
    fnn_model_set_loss(m, &loss);
    CHECK(fnn_model_set_optimizer(m, &opt) == FNN_OK, "sgd with momentum (own state)");
    float x[8 * 3];
    int64_t y[8];
    for (int i = 0; i < 24; i++) x[i] = (float)sin(1.3 * i);
    for (int i = 0; i < 8; i++) y[i] = i % 2;
    fnn_train_args a = {x, NULL, y, 8, NULL, 0};
    fnn_train_result r;
    CHECK(fnn_model_train_step(m, &a, &r) == FNN_OK, "first deep step");
    int64_t allocs = fnn_alloc_count();
    for (int s = 0; s < 20; s++) fnn_model_train_step(m, &a, &r);
    CHECK(fnn_alloc_count() == allocs, "no allocation once the workspace exists");
    float o1[16], o2[16];
    fnn_model_forward(m, o1, x, 8, NULL, 0);
    fnn_model_forward(m, o2, x, 8, NULL, 0);
    CHECK(memcmp(o1, o2, sizeof o1) == 0, "evaluation forward is deterministic");
    fnn_model_free(m);
}

/* fnn_permutation: a permutation of 0..n-1, the same for the same key,
   another for another key; bad sizes and a NULL order are errors. (Its
   equality with the Python reference is tests/test_permutation.py.) */
static void test_permutation(void) {
    enum { N = 1000 };
    static int64_t a[N], b[N];
    static unsigned char seen[N];
    CHECK(fnn_permutation(a, N, 42) == FNN_OK, "permutation");
    int ok = 1;
    for (int64_t i = 0; i < N; i++) {
        if (a[i] < 0 || a[i] >= N || seen[a[i]]) ok = 0;
        else seen[a[i]] = 1;
    }
    CHECK(ok, "permutation: every index once");
    CHECK(fnn_permutation(b, N, 42) == FNN_OK && memcmp(a, b, sizeof a) == 0,
          "permutation: same key, same order");
    CHECK(fnn_permutation(b, N, 43) == FNN_OK && memcmp(a, b, sizeof a) != 0,
          "permutation: another key, another order");
    int64_t moved = 0;
    for (int64_t i = 0; i < N; i++) moved += a[i] != i;
    CHECK(moved > N / 2, "permutation: shuffled (%lld of %d moved)", (long long)moved, N);
    CHECK(fnn_permutation(b, 0, 1) == FNN_OK && fnn_permutation(NULL, 0, 1) == FNN_OK,
          "permutation: n = 0");
    b[0] = 5;
    CHECK(fnn_permutation(b, 1, 1) == FNN_OK && b[0] == 0, "permutation: n = 1");
    CHECK(fnn_permutation(b, -1, 1) == FNN_ERR_SIZE && strstr(fnn_last_error(), "permutation"),
          "permutation: n < 0");
    CHECK(fnn_permutation(NULL, 3, 1) == FNN_ERR_ARG, "permutation: NULL order");
}

int main(void) {
    fnn_set_num_threads(1);
    test_layout_and_init();
    test_forward();
    test_train_step();
    test_own_state_is_fresh_per_optimizer();
    test_bad_descriptions();
    test_deep_chain();
    test_permutation();
    printf("%d checks, %d failures\n", checks, failures);
    return failures != 0;
}
