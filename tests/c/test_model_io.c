/*
 * test_model_io.c -- pure-C test of the model file (csrc/model_io.c) and of
 * SHA-256 (csrc/sha256.c), without Python.
 *
 * Compiled against every C file of csrc/ (tests/test_c_model_io.py does it,
 * with CFLAGS from the environment, e.g. the sanitizers). POSIX (temporary
 * directories, permissions, readdir).
 *
 *   test_model_io DIR           every check below, files in DIR; prints
 *                               "N cases, F failures", exit 1 on a failure
 *                               (FNN_TEST_VERBOSE=1: every error message too)
 *   test_model_io sha256 FILE   "n <hex digest of the first n bytes>" for
 *                               n = 0..size (tests/ compares with hashlib)
 *   test_model_io save PATH     save the reference model to PATH
 *   test_model_io resave IN OUT load IN, save it to OUT
 *   test_model_io load PATH     load PATH; print "status S: message"
 *
 * Checks: the FIPS 180-4 examples and incremental hashing; a save/load
 * round trip (layout, parameters, metadata, seed bitwise; file length;
 * permission bits kept; no temporary file left); from memory as from a
 * file; damaged files -- truncation at every offset, one flipped bit in
 * every byte, trailing bytes, wrong magic, versions 1 and 3, and crafted
 * headers and node records with a valid checksum (absurd sizes, bad names,
 * unknown op, a layout that does not match) -- each FNN_ERR_FORMAT with a
 * message and *out == NULL; I/O errors (missing file, a directory, a missing
 * directory: FNN_ERR_IO, nothing created); a write failing midway (old file
 * kept, no temporary file); saves and loads from several threads at once.
 */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>
#include "fastnn.h"
#include "fnn_internal.h"   /* fnn__error, to clear the message between cases */
#include "fnn_sha256.h"

static int failures = 0, cases = 0;

#define CHECK(cond, ...) do {                                        \
        cases++;                                                     \
        if (!(cond)) {                                               \
            failures++;                                              \
            printf("FAIL line %d: ", __LINE__);                      \
            printf(__VA_ARGS__);                                     \
            printf(" [last error: %s]\n", fnn_last_error());         \
        }                                                            \
    } while (0)

static unsigned long long rng_state = 88172645463325252ULL;
static unsigned long long rnd(void) {   /* xorshift64 */
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void hex(char out[65], const unsigned char d[32]) {
    for (int i = 0; i < 32; i++) sprintf(out + 2 * i, "%02x", d[i]);
}

/* ------------------------------------------------------------- sha256 */

static void test_sha256(void) {
    static const struct { const char *msg; const char *digest; } v[] = {
        {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
    };
    unsigned char d[32];
    char h[65];
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        fnn__sha256(v[i].msg, strlen(v[i].msg), d);
        hex(h, d);
        CHECK(strcmp(h, v[i].digest) == 0, "sha256(\"%s\") = %s", v[i].msg, h);
    }
    /* one million 'a' (FIPS 180-2 appendix B.3), in uneven pieces */
    char *a = malloc(1000000);
    memset(a, 'a', 1000000);
    fnn__sha256(a, 1000000, d);
    hex(h, d);
    CHECK(strcmp(h, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0") == 0,
          "sha256(a * 10^6) = %s", h);
    fnn__sha256_ctx c;
    fnn__sha256_init(&c);
    for (size_t off = 0, k = 1; off < 1000000; off += k, k = k * 3 % 1000 + 1)
        fnn__sha256_update(&c, a + off, off + k <= 1000000 ? k : 1000000 - off);
    unsigned char d2[32];
    fnn__sha256_final(&c, d2);
    CHECK(memcmp(d, d2, 32) == 0, "incremental sha256 of a * 10^6 differs");
    /* every length 0..300, split at a random point, against the one-shot */
    unsigned char buf[301];
    for (int i = 0; i < 301; i++) buf[i] = (unsigned char)rnd();
    int bad = 0;
    for (size_t n = 0; n <= 300; n++) {
        size_t cut = n ? (size_t)(rnd() % (n + 1)) : 0;
        fnn__sha256(buf, n, d);
        fnn__sha256_init(&c);
        fnn__sha256_update(&c, buf, cut);
        fnn__sha256_update(&c, NULL, 0);
        fnn__sha256_update(&c, buf + cut, n - cut);
        fnn__sha256_final(&c, d2);
        bad += memcmp(d, d2, 32) != 0;
    }
    CHECK(bad == 0, "%d split sha256 digests differ", bad);
    free(a);
}

/* ------------------------------------------------------- the model */

static const char META[] = "{\"note\": \"metadata\"}\0binary\xff";   /* NUL inside */
#define META_LEN ((int64_t)sizeof META)
#define SEED 0x0123456789abcdefull

/* linear(4 -> 5, bias) -> leaky_relu(0.1) -> dropout(0.25) -> linear(5 -> 3) */
static int reference_nodes(fnn_node nodes[4]) {
    memset(nodes, 0, 4 * sizeof *nodes);
    const char *ops[4] = {"linear", "leaky_relu", "dropout", "linear"};
    for (int i = 0; i < 4; i++) {
        strcpy(nodes[i].op, ops[i]);
        nodes[i].in[0] = i;
        nodes[i].in[1] = -1;
        nodes[i].out = i + 1;
    }
    nodes[0].attrs.units = 5;
    nodes[0].attrs.bias = 1;
    nodes[0].attrs.init = FNN_INIT_HE;
    nodes[1].attrs.slope = 0.1f;
    nodes[2].attrs.p = 0.25f;
    nodes[3].attrs.units = 3;
    nodes[3].attrs.init = FNN_INIT_XAVIER;
    return 4;
}

static fnn_model *reference_model(void) {
    fnn_node nodes[4];
    fnn_model_desc desc;
    memset(&desc, 0, sizeof desc);
    desc.input.ndim = 1;
    desc.input.dim[0] = 4;
    desc.num_nodes = reference_nodes(nodes);
    desc.nodes = nodes;
    fnn_model *m = NULL;
    if (fnn_model_create(&m, &desc, SEED) != FNN_OK) {
        printf("FAIL: fnn_model_create: %s\n", fnn_last_error());
        exit(2);
    }
    /* parameters with awkward bits: -0, a subnormal, +-inf, a NaN payload */
    float *p = fnn_model_params(m);
    uint32_t special[5] = {0x80000000u, 0x00000001u, 0x7f800000u, 0xff800000u, 0x7fc12345u};
    for (int k = 0; k < 5; k++) memcpy(&p[3 * k], &special[k], 4);
    if (fnn_model_set_metadata(m, META, META_LEN) != FNN_OK) exit(2);
    return m;
}

static unsigned char *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *d = malloc((size_t)n + 1);
    *len = fread(d, 1, (size_t)n, f);
    fclose(f);
    return d;
}

static void write_all(const char *path, const unsigned char *d, size_t len) {
    FILE *f = fopen(path, "wb");
    fwrite(d, 1, len, f);
    fclose(f);
}

/* 1 if a and b hold the same layout, parameters, buffers, seed and metadata */
static int same_model(fnn_model *a, fnn_model *b) {
    int32_t L = fnn_model_num_nodes(a);
    if (L != fnn_model_num_nodes(b)) return 0;
    for (int32_t i = 0; i < L; i++)
        if (memcmp(fnn_model_node(a, i), fnn_model_node(b, i), sizeof(fnn_node)) != 0) return 0;
    fnn_shape sa = fnn_model_input_shape(a), sb = fnn_model_input_shape(b);
    if (memcmp(&sa, &sb, sizeof sa) != 0 || fnn_model_seed(a) != fnn_model_seed(b)) return 0;
    int64_t P = fnn_model_num_params(a), B = fnn_model_num_buffers(a), ma, mb;
    if (P != fnn_model_num_params(b) || B != fnn_model_num_buffers(b)) return 0;
    if (P && memcmp(fnn_model_params(a), fnn_model_params(b), 4 * (size_t)P) != 0) return 0;
    if (B && memcmp(fnn_model_buffers(a), fnn_model_buffers(b), 4 * (size_t)B) != 0) return 0;
    const char *pa = fnn_model_metadata(a, &ma), *pb = fnn_model_metadata(b, &mb);
    return ma == mb && memcmp(pa, pb, (size_t)ma) == 0;
}

/* Files in dir whose name contains ".fnn-tmp-". */
static int count_temps(const char *dir) {
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    if (!d) return -1;
    while ((e = readdir(d)) != NULL) n += strstr(e->d_name, ".fnn-tmp-") != NULL;
    closedir(d);
    return n;
}

/* ----------------------------------------------------- damaged files */

static void put32(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static void put64(unsigned char *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static void rehash(unsigned char *d, size_t len) { fnn__sha256(d, len - 32, d + len - 32); }

/* Loading d must fail with `want`, a message (containing `needle` unless
   NULL) and *out == NULL. */
static int expect_fail(const unsigned char *d, size_t len, fnn_status want, const char *needle,
                       const char *what) {
    fnn_model *m = (fnn_model *)(void *)&m;      /* not NULL: the call must clear it */
    fnn__error(FNN_OK, "%s", "");
    fnn_status s = fnn_model_load_bytes(&m, d, (int64_t)len);
    const char *e = fnn_last_error();
    int ok = s == want && e[0] != '\0' && m == NULL && (!needle || strstr(e, needle));
    if (ok && getenv("FNN_TEST_VERBOSE")) printf("ok %s: %s\n", what, e);
    if (!ok) {
        printf("FAIL %s: status %d (want %d), out %s, message \"%s\" (want \"%s\")\n", what,
               (int)s, (int)want, m ? "not NULL" : "NULL", e, needle ? needle : "");
        if (s == FNN_OK && m) fnn_model_free(m);
    }
    return ok;
}

#define EXPECT(d, len, want, needle, what) do {                          \
        cases++;                                                         \
        if (!expect_fail(d, len, want, needle, what)) failures++;        \
    } while (0)

static void test_damaged(const unsigned char *good, size_t len) {
    unsigned char *d = malloc(len + 64);
    const size_t node0 = 80, node3 = 80 + 3 * 160;
    int bad = 0;
    char what[96];

    /* truncated at every offset, one flipped bit in every byte */
    for (size_t cut = 0; cut < len; cut++) {
        memcpy(d, good, cut);
        snprintf(what, sizeof what, "truncated at %zu of %zu", cut, len);
        bad += !expect_fail(d, cut, FNN_ERR_FORMAT, NULL, what);
    }
    CHECK(bad == 0, "%d truncated files loaded or failed wrongly", bad);
    bad = 0;
    for (size_t pos = 0; pos < len; pos++) {
        memcpy(d, good, len);
        d[pos] ^= (unsigned char)(1u << (rnd() % 8));
        snprintf(what, sizeof what, "bit flipped in byte %zu", pos);
        bad += !expect_fail(d, len, FNN_ERR_FORMAT, NULL, what);
    }
    CHECK(bad == 0, "%d files with a flipped bit loaded or failed wrongly", bad);
    memcpy(d, good, len);
    d[len - 40] ^= 0x10;                                    /* a parameter byte */
    EXPECT(d, len, FNN_ERR_FORMAT, "checksum", "flipped parameter bit");
    memcpy(d, good, len);
    d[len] = 0;
    EXPECT(d, len + 1, FNN_ERR_FORMAT, "trailing", "one trailing byte");
    EXPECT(d, 0, FNN_ERR_FORMAT, "too short", "empty");
    EXPECT((const unsigned char *)"\x89" "FNN\r\n", 6, FNN_ERR_FORMAT, "too short", "6 bytes");

#define CRAFT(edit, needle, what) do {                                   \
        memcpy(d, good, len);                                            \
        edit;                                                            \
        rehash(d, len);                                                  \
        EXPECT(d, len, FNN_ERR_FORMAT, needle, what);                    \
    } while (0)
    CRAFT(d[1] = 'X', "magic", "wrong magic");
    CRAFT(memcpy(d, "\x89PNG\r\n\x1a\n", 8), "magic", "a PNG");
    CRAFT(put32(d + 8, 1), "version 1", "version 1");
    CRAFT(put32(d + 8, 3), "version 3", "version 3");
    CRAFT(put32(d + 12, 81), "header size 81", "header size");
    CRAFT(put32(d + 16, 0), "0 nodes", "no node");
    CRAFT(put32(d + 16, 65537), "65537 nodes", "65537 nodes");
    CRAFT(put32(d + 16, 0xffffffffu), "nodes", "2^32 - 1 nodes");
    CRAFT(put32(d + 16, 65536), "truncated", "65536 nodes in a small file");
    CRAFT(put32(d + 20, 0), "ndim", "ndim 0");
    CRAFT(put32(d + 20, 4), "ndim", "ndim 4");
    CRAFT(put64(d + 24, 0), "dim[0]", "dim 0");
    CRAFT(put64(d + 24, (uint64_t)-5), "dim[0]", "dim -5");
    CRAFT(put64(d + 32, 1), "dim[1]", "dim past ndim");
    CRAFT(put64(d + 56, (uint64_t)1 << 62), "too large", "2^62 parameters");
    CRAFT(put64(d + 56, ((uint64_t)1 << 61) - 1), "too large", "2^61 - 1 parameters");
    CRAFT(put64(d + 56, (uint64_t)1 << 60), "truncated", "2^60 parameters");
    CRAFT(put64(d + 56, (uint64_t)-1), "negative", "-1 parameters");
    CRAFT(put64(d + 56, (uint64_t)1 << 28), "truncated", "2^28 parameters");
    CRAFT(put64(d + 64, (uint64_t)1 << 62), "too large", "2^62 buffers");
    CRAFT(put64(d + 64, 1), "truncated", "1 buffer");
    CRAFT((put64(d + 56, (uint64_t)1 << 61), put64(d + 64, (uint64_t)1 << 61)), "too large",
          "2^61 parameters and buffers");
    CRAFT(put64(d + 72, (uint64_t)1 << 40), "metadata length", "2^40 metadata bytes");
    CRAFT(put64(d + 72, ((uint64_t)16 << 20) + 1), "metadata length", "16 MiB + 1 metadata");
    CRAFT(put64(d + 72, (uint64_t)-1), "metadata length", "-1 metadata bytes");
    CRAFT(put64(d + 72, 3), "trailing", "metadata length too small");
    /* node records */
    CRAFT(memset(d + node0, 'x', 24), "NUL", "op name without NUL");
    CRAFT(d[node0] = 0, "empty", "empty op name");
    CRAFT(d[node0 + 10] = 'z', "NUL-padded", "bytes after the NUL");
    CRAFT(memcpy(d + node0, "conv9d\0", 7), "unknown op", "unknown op");
    CRAFT(memcpy(d + node0, "linears", 7), "unknown op", "unknown op 2");
    CRAFT(put32(d + node0 + 36, 1), "reserved", "node reserved field");
    CRAFT(put32(d + node0 + 140, 7), "reserved", "attrs reserved field");
    CRAFT(put32(d + node0 + 24, 7), "slot", "reads slot 7");
    CRAFT(put32(d + node0 + 24, (uint32_t)-1), "slot", "reads slot -1");
    CRAFT(put32(d + node3 + 24, 4), "slot", "reads a slot not written yet");
    CRAFT(put32(d + node0 + 32, 2), "slot", "writes slot 2 twice");
    CRAFT(put32(d + node0 + 28, 0), "invalid architecture", "binary op in a chain");
    CRAFT(put64(d + node0 + 40, 6), "layout does not match", "units 6");
    CRAFT(put64(d + node0 + 40, (uint64_t)1 << 40), "layout does not match", "units 2^40");
    CRAFT(put64(d + node0 + 40, (uint64_t)1 << 62), "invalid architecture", "units 2^62");
    CRAFT(put64(d + node0 + 40, 0), "invalid architecture", "units 0");
    CRAFT(put32(d + node0 + 128, 0), "layout does not match", "no bias");
    CRAFT(put32(d + node0 + 128, 2), "invalid architecture", "bias 2");
    CRAFT(put32(d + node0 + 160 + 144, 0x7fc00000u), "invalid architecture", "slope NaN");
    CRAFT(put32(d + node0 + 320 + 148, 0x40000000u), "invalid architecture", "dropout p 2");
    free(d);
}

/* -------------------------------------------------------------- I/O */

static void test_io_errors(const char *dir, fnn_model *m) {
    char path[4096], sub[2048];
    fnn_model *out = (fnn_model *)(void *)&out;
    snprintf(path, sizeof path, "%s/does-not-exist.fnn", dir);
    fnn_status s = fnn_model_load(&out, path);
    CHECK(s == FNN_ERR_IO && out == NULL && strstr(fnn_last_error(), path) &&
          strstr(fnn_last_error(), "No such file"), "load of a missing file: %d", (int)s);
    out = (fnn_model *)(void *)&out;
    s = fnn_model_load(&out, dir);
    CHECK(s == FNN_ERR_IO && out == NULL && fnn_last_error()[0], "load of a directory: %d",
          (int)s);
    snprintf(sub, sizeof sub, "%s/missing-dir", dir);
    snprintf(path, sizeof path, "%s/m.fnn", sub);
    s = fnn_model_save(m, path);
    struct stat sb;
    CHECK(s == FNN_ERR_IO && strstr(fnn_last_error(), sub) && stat(sub, &sb) != 0 &&
          stat(path, &sb) != 0, "save into a missing directory: %d", (int)s);
    s = fnn_model_save(m, dir);
    CHECK(s == FNN_ERR_IO && strstr(fnn_last_error(), "directory"),
          "save onto a directory: %d", (int)s);
    snprintf(path, sizeof path, "%s/", dir);
    s = fnn_model_save(m, path);
    CHECK(s == FNN_ERR_IO, "save to a path ending in /: %d", (int)s);
    CHECK(count_temps(dir) == 0, "temporary files left after failed saves");
    /* arguments */
    CHECK(fnn_model_save(NULL, path) == FNN_ERR_ARG, "save(NULL)");
    CHECK(fnn_model_save(m, NULL) == FNN_ERR_ARG, "save(path NULL)");
    CHECK(fnn_model_load(NULL, path) == FNN_ERR_ARG, "load(out NULL)");
    out = (fnn_model *)(void *)&out;
    CHECK(fnn_model_load(&out, NULL) == FNN_ERR_ARG && out == NULL, "load(path NULL)");
    out = (fnn_model *)(void *)&out;
    CHECK(fnn_model_load_bytes(&out, NULL, 10) == FNN_ERR_ARG && out == NULL,
          "load_bytes(NULL, 10)");
    CHECK(fnn_model_load_bytes(&out, (const unsigned char *)"", -1) == FNN_ERR_ARG,
          "load_bytes(len -1)");
    /* a damaged file on disk: FNN_ERR_FORMAT naming the path */
    snprintf(path, sizeof path, "%s/garbage.fnn", dir);
    write_all(path, (const unsigned char *)"not a model file at all", 23);
    out = (fnn_model *)(void *)&out;
    s = fnn_model_load(&out, path);
    CHECK(s == FNN_ERR_FORMAT && out == NULL && strstr(fnn_last_error(), path) &&
          strstr(fnn_last_error(), "magic"), "load of a foreign file: %d", (int)s);
    write_all(path, (const unsigned char *)"", 0);
    s = fnn_model_load(&out, path);
    CHECK(s == FNN_ERR_FORMAT && out == NULL && strstr(fnn_last_error(), "too short"),
          "load of an empty file: %d", (int)s);
    unlink(path);
}

static void test_round_trip(const char *dir) {
    char path[4096];
    fnn_model *m = reference_model(), *back = NULL;
    snprintf(path, sizeof path, "%s/m.fnn", dir);
    unlink(path);
    fnn_status s = fnn_model_save(m, path);
    CHECK(s == FNN_OK, "save: %d", (int)s);
    size_t len = 0;
    unsigned char *data = read_all(path, &len);
    size_t want = 80 + 160 * 4 + (size_t)META_LEN + 4 * (size_t)fnn_model_num_params(m) +
                  4 * (size_t)fnn_model_num_buffers(m) + 32;
    CHECK(data && len == want, "file has %zu bytes, want %zu", len, want);
    if (!data || len < 80) exit(2);
    CHECK(memcmp(data, "\x89" "FNN\r\n\x1a\n\x02\0\0\0\x50\0\0\0\x04\0\0\0\x01\0\0\0", 24) == 0,
          "file prefix");
    struct stat sb;
    CHECK(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0644, "new file mode %o",
          (unsigned)(sb.st_mode & 0777));
    CHECK(count_temps(dir) == 0, "temporary file left behind");

    s = fnn_model_load(&back, path);
    CHECK(s == FNN_OK && back && same_model(m, back), "load from file: %d", (int)s);
    fnn_model_free(back);
    back = NULL;
    s = fnn_model_load_bytes(&back, data, (int64_t)len);
    CHECK(s == FNN_OK && back && same_model(m, back), "load from memory: %d", (int)s);
    /* the loaded model saves the same bytes */
    char path2[4096];
    snprintf(path2, sizeof path2, "%s/m2.fnn", dir);
    if (back) {
        CHECK(fnn_model_save(back, path2) == FNN_OK, "save of the loaded model");
        size_t len2 = 0;
        unsigned char *data2 = read_all(path2, &len2);
        CHECK(data2 && len2 == len && memcmp(data, data2, len) == 0,
              "a loaded model does not save the same bytes");
        free(data2);
        unlink(path2);
        fnn_model_free(back);
    }
    /* overwrite: permission bits kept, old content replaced */
    chmod(path, 0600);
    float *p = fnn_model_params(m);
    p[1] += 1.0f;
    CHECK(fnn_model_save(m, path) == FNN_OK, "second save");
    CHECK(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0600, "overwritten file mode %o",
          (unsigned)(sb.st_mode & 0777));
    back = NULL;
    CHECK(fnn_model_load(&back, path) == FNN_OK && back && same_model(m, back),
          "load after overwrite");
    fnn_model_free(back);
    /* no metadata: an empty metadata section */
    fnn_model_set_metadata(m, NULL, 0);
    CHECK(fnn_model_save(m, path) == FNN_OK, "save without metadata");
    back = NULL;
    int64_t ml = -1;
    CHECK(fnn_model_load(&back, path) == FNN_OK && back && same_model(m, back) &&
          (fnn_model_metadata(back, &ml), ml == 0), "load without metadata");
    fnn_model_free(back);
    CHECK(count_temps(dir) == 0, "temporary file left behind");

    test_damaged(data, len);
    test_io_errors(dir, m);
    unlink(path);
    free(data);
    fnn_model_free(m);
}

/* A write that fails midway (RLIMIT_FSIZE: EFBIG past 300 bytes) leaves the
   old file as it was and no temporary file. */
static void test_failed_write(const char *dir) {
    char path[4096];
    fnn_model *m = reference_model();
    snprintf(path, sizeof path, "%s/old.fnn", dir);
    write_all(path, (const unsigned char *)"the old file", 12);
    struct rlimit old, small;
    if (getrlimit(RLIMIT_FSIZE, &old) != 0) return;
    small = old;
    small.rlim_cur = 300;
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    if (setrlimit(RLIMIT_FSIZE, &small) == 0) {
        fnn_status s = fnn_model_save(m, path);
        char msg[512];
        snprintf(msg, sizeof msg, "%s", fnn_last_error());
        setrlimit(RLIMIT_FSIZE, &old);
        if (getenv("FNN_TEST_VERBOSE")) printf("failed write: %s\n", msg);
        size_t len = 0;
        unsigned char *d = read_all(path, &len);
        CHECK(s == FNN_ERR_IO && strstr(msg, path) && d && len == 12 &&
              memcmp(d, "the old file", 12) == 0 && count_temps(dir) == 0,
              "failed write: status %d, message \"%s\", old file %s", (int)s, msg,
              d && len == 12 ? "kept" : "changed");
        free(d);
    }
    signal(SIGXFSZ, prev);
    unlink(path);
    fnn_model_free(m);
}

/* Saves and loads of distinct files from several threads at once. */
static void test_threads(const char *dir) {
    fnn_model *m = reference_model();
    int bad = 0;
#ifdef _OPENMP
#pragma omp parallel for num_threads(4) reduction(+:bad)
#endif
    for (int t = 0; t < 16; t++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/t%d.fnn", dir, t);
        fnn_model *back = NULL;
        if (fnn_model_save(m, path) != FNN_OK) bad++;
        if (fnn_model_load(&back, path) != FNN_OK || !same_model(m, back)) bad++;
        fnn_model_free(back);
        unsigned char junk[100] = {0};
        back = NULL;
        if (fnn_model_load_bytes(&back, junk, 100) != FNN_ERR_FORMAT || back ||
            !strstr(fnn_last_error(), "magic"))
            bad++;
        unlink(path);
    }
    CHECK(bad == 0, "%d failures in concurrent saves and loads", bad);
    fnn_model_free(m);
}

/* ---------------------------------------------------- command modes */

static int mode_sha256(const char *path) {
    size_t len = 0;
    unsigned char *d = read_all(path, &len), out[32];
    char h[65];
    if (!d) return 2;
    for (size_t n = 0; n <= len; n++) {
        fnn__sha256(d, n, out);
        hex(h, out);
        printf("%zu %s\n", n, h);
    }
    free(d);
    return 0;
}

static int report(fnn_status s) {
    printf("status %d: %s\n", (int)s, s == FNN_OK ? "ok" : fnn_last_error());
    return s == FNN_OK ? 0 : 1;
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "sha256") == 0) return mode_sha256(argv[2]);
    if (argc == 3 && strcmp(argv[1], "save") == 0) {
        fnn_model *m = reference_model();
        fnn_status s = fnn_model_save(m, argv[2]);
        fnn_model_free(m);
        return report(s);
    }
    if (argc == 3 && strcmp(argv[1], "load") == 0) {
        fnn_model *m = NULL;
        fnn_status s = fnn_model_load(&m, argv[2]);
        fnn_model_free(m);
        return report(s);
    }
    if (argc == 4 && strcmp(argv[1], "resave") == 0) {
        fnn_model *m = NULL;
        fnn_status s = fnn_model_load(&m, argv[2]);
        if (s == FNN_OK) s = fnn_model_save(m, argv[3]);
        fnn_model_free(m);
        return report(s);
    }
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR | sha256 FILE | save PATH | load PATH | resave IN OUT\n",
                argv[0]);
        return 2;
    }
    test_sha256();
    test_round_trip(argv[1]);
    test_failed_write(argv[1]);
    test_threads(argv[1]);
    printf("%d cases, %d failures\n", cases, failures);
    return failures ? 1 : 0;
}
