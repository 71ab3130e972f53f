/*
 * model_io.c -- the model file, format version 2: fnn_model_save,
 * fnn_model_load, fnn_model_load_bytes.
 *
 * THE FORMAT (this comment is its specification; fastnn/fileformat.py reads
 * and writes the same bytes). All integers are little-endian, floats IEEE
 * 754 binary32 little-endian; u = unsigned, i = two's complement signed.
 *
 *   offset  size  content
 *   0       8     magic b"\x89FNN\r\n\x1a\n" (as version 1: a high byte, CR LF
 *                 and ^Z catch 7-bit, text-mode and truncated copies)
 *   8       4     u32 format version = 2
 *   12      4     u32 header size = 80
 *   16      4     u32 L, the number of nodes, 1..65536
 *   20      4     u32 input ndim, 1..3
 *   24      24    i64 input dim[3]: dim[0..ndim) >= 1, the rest 0
 *   48      8     u64 seed (fnn_model_seed)
 *   56      8     i64 P, the number of parameters, >= 0
 *   64      8     i64 B, the number of buffers, >= 0
 *   72      8     i64 M, the metadata length in bytes, 0..16 MiB
 *   80      160L  node records (struct fnn_node, serialised field by field):
 *                   +0    24  op name, NUL-padded: at least one NUL, nothing
 *                             but NULs after the first, not empty
 *                   +24   4   i32 in[0]
 *                   +28   4   i32 in[1] (-1 for a unary op)
 *                   +32   4   i32 out
 *                   +36   4   i32 reserved = 0
 *                   +40   120 attributes, in the field order of struct fnn_attrs:
 *                         +40 i64 units      +48 i64 kernel[2]   +64 i64 stride[2]
 *                         +80 i64 padding[2] +96 i64 dilation[2] +112 i64 groups
 *                         +120 i64 axis      +128 i32 bias       +132 i32 init
 *                         +136 i32 flags     +140 i32 reserved = 0
 *                         +144 f32 slope     +148 f32 p          +152 f32 eps
 *                         +156 f32 momentum
 *   80+160L M     metadata: opaque bytes to C (fnn_model_metadata); Python
 *                 writes UTF-8 JSON there (layer options, preprocessing)
 *   then    4P    parameters (fnn_model_params), f32
 *   then    4B    buffers (fnn_model_buffers), f32
 *   end-32  32    SHA-256 (FIPS 180-4) of every byte before it
 *
 * The file's length is exactly 80 + 160 L + M + 4 P + 4 B + 32. A reader
 * checks the prefix fields, computes that length with overflow checks and
 * compares it with the real length before it allocates anything, then the
 * checksum, then the node records; then the layout: the sizes the ops derive
 * from the nodes (fnn_op_describe) must be P and B, before fnn_model_create
 * allocates them. So a file of n bytes never makes the reader allocate much
 * more than n bytes, whatever its header claims. The optimizer state, the
 * loss and the step counters are not stored: a loaded model is one to
 * predict with or to start training again.
 *
 * Errors: FNN_ERR_IO when a file cannot be opened, read, written, synced or
 * renamed (the message names the path and the system's reason);
 * FNN_ERR_FORMAT for anything wrong with the bytes (too short, wrong magic,
 * another version, truncation, trailing data, checksum mismatch, a bad node
 * record, an architecture fnn_model_create rejects, a layout that does not
 * match P or B). fnn_last_error() says which, and where.
 *
 * Saving is atomic on POSIX: the bytes go to a temporary file beside the
 * target, ".<name>.fnn-tmp-<pid>-XXXXXX" (mkstemp; the names fastnn.save
 * uses, so its next save removes one a killed process left behind), which is
 * written, flushed, fsynced and closed, given the old file's permission bits
 * (or 0644), renamed over the target, and the directory is fsynced. A crash
 * at any moment leaves the old file or the new one; on any failure the
 * temporary file is removed and the old file is untouched. Elsewhere (no
 * POSIX) the same steps run with plain stdio, without the syncs, and the
 * replacement is not atomic. Nothing here holds mutable static state: any
 * number of threads may save and load at once (distinct target paths).
 */
#if !defined(FNN_IO_NO_POSIX) && (defined(__unix__) || defined(__unix) || \
                                  (defined(__APPLE__) && defined(__MACH__)))
#define FNN_IO_POSIX 1
#if !defined(_POSIX_C_SOURCE) || _POSIX_C_SOURCE < 200809L
#undef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L   /* mkstemp, fsync, fchmod, strerror_r under -std=c99 */
#endif
#endif

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "fnn_internal.h"
#include "fnn_sha256.h"

#ifdef FNN_IO_POSIX
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>
#endif

#define V2_VERSION 2u
#define V2_HEADER 80
#define V2_NODE 160
#define V2_DIGEST FNN_SHA256_DIGEST
#define V2_MAX_NODES 65536
#define V2_MAX_META ((int64_t)16 << 20)

static const unsigned char MAGIC[8] = {0x89, 'F', 'N', 'N', '\r', '\n', 0x1a, '\n'};

/* ------------------------------------------------------- byte order */

static void put_u32(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static void put_u64(unsigned char *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static void put_i32(unsigned char *p, int32_t v) { put_u32(p, (uint32_t)v); }
static void put_i64(unsigned char *p, int64_t v) { put_u64(p, (uint64_t)v); }
static void put_f32(unsigned char *p, float v) {
    uint32_t u;
    memcpy(&u, &v, 4);
    put_u32(p, u);
}
static uint32_t get_u32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t get_u64(const unsigned char *p) {
    return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}
/* two's complement without implementation-defined conversions */
static int32_t get_i32(const unsigned char *p) {
    uint32_t u = get_u32(p);
    return u <= (uint32_t)INT32_MAX ? (int32_t)u : (int32_t)(u - 0x80000000u) + INT32_MIN;
}
static int64_t get_i64(const unsigned char *p) {
    uint64_t u = get_u64(p);
    return u <= (uint64_t)INT64_MAX ? (int64_t)u
                                    : (int64_t)(u - 0x8000000000000000u) + INT64_MIN;
}
static float get_f32(const unsigned char *p) {
    uint32_t u = get_u32(p);
    float v;
    memcpy(&v, &u, 4);
    return v;
}

#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__) && \
    __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define HOST_LE 1
#elif defined(_M_X64) || defined(_M_IX86) || defined(_M_ARM64)
#define HOST_LE 1
#else
#define HOST_LE 0
#endif

/* n floats from little-endian bytes */
static void get_floats(float *dst, const unsigned char *src, int64_t n) {
    if (n <= 0) return;
    if (HOST_LE) {
        memcpy(dst, src, (size_t)n * 4);
    } else {
        for (int64_t i = 0; i < n; i++) dst[i] = get_f32(src + 4 * i);
    }
}

/* ------------------------------------------------------ node records */

/* The NUL-padded name rule: a NUL within FNN_NAME_MAX bytes, not first,
   and only NULs after it. 0 if name breaks it. */
static int name_ok(const char *name) {
    const char *nul = memchr(name, '\0', FNN_NAME_MAX);
    if (!nul || nul == name) return 0;
    for (const char *p = nul; p < name + FNN_NAME_MAX; p++)
        if (*p) return 0;
    return 1;
}

static void encode_node(unsigned char r[V2_NODE], const fnn_node *n) {
    const fnn_attrs *a = &n->attrs;
    memset(r, 0, V2_NODE);
    memcpy(r, n->op, strlen(n->op));         /* name_ok(n->op) was checked */
    put_i32(r + 24, n->in[0]);
    put_i32(r + 28, n->in[1]);
    put_i32(r + 32, n->out);
    put_i32(r + 36, 0);
    put_i64(r + 40, a->units);
    for (int k = 0; k < 2; k++) {
        put_i64(r + 48 + 8 * k, a->kernel[k]);
        put_i64(r + 64 + 8 * k, a->stride[k]);
        put_i64(r + 80 + 8 * k, a->padding[k]);
        put_i64(r + 96 + 8 * k, a->dilation[k]);
    }
    put_i64(r + 112, a->groups);
    put_i64(r + 120, a->axis);
    put_i32(r + 128, a->bias);
    put_i32(r + 132, a->init);
    put_i32(r + 136, a->flags);
    put_i32(r + 140, 0);
    put_f32(r + 144, a->slope);
    put_f32(r + 148, a->p);
    put_f32(r + 152, a->eps);
    put_f32(r + 156, a->momentum);
}

/* One record into *n; FNN_ERR_FORMAT naming node i on a malformed record. */
static fnn_status decode_node(fnn_node *n, const unsigned char r[V2_NODE], int32_t i,
                              const char *src) {
    fnn_attrs *a = &n->attrs;
    memset(n, 0, sizeof *n);
    memcpy(n->op, r, FNN_NAME_MAX);
    if (!name_ok(n->op))
        return fnn__error(FNN_ERR_FORMAT, "%s: node %d: the op name is %s", src, (int)i,
                          !memchr(r, 0, FNN_NAME_MAX) ? "not NUL-terminated within its 24 bytes"
                          : !r[0] ? "empty" : "not NUL-padded (bytes after its NUL)");
    n->in[0] = get_i32(r + 24);
    n->in[1] = get_i32(r + 28);
    n->out = get_i32(r + 32);
    if (get_i32(r + 36) != 0 || get_i32(r + 140) != 0)
        return fnn__error(FNN_ERR_FORMAT, "%s: node %d (%s): a reserved field is not 0",
                          src, (int)i, n->op);
    a->units = get_i64(r + 40);
    for (int k = 0; k < 2; k++) {
        a->kernel[k] = get_i64(r + 48 + 8 * k);
        a->stride[k] = get_i64(r + 64 + 8 * k);
        a->padding[k] = get_i64(r + 80 + 8 * k);
        a->dilation[k] = get_i64(r + 96 + 8 * k);
    }
    a->groups = get_i64(r + 112);
    a->axis = get_i64(r + 120);
    a->bias = get_i32(r + 128);
    a->init = get_i32(r + 132);
    a->flags = get_i32(r + 136);
    a->slope = get_f32(r + 144);
    a->p = get_f32(r + 148);
    a->eps = get_f32(r + 152);
    a->momentum = get_f32(r + 156);
    return FNN_OK;
}

/* ------------------------------------------------------------ header */

typedef struct v2_header {
    int32_t L;
    fnn_shape input;
    uint64_t seed;
    int64_t P, B, M;
    int64_t size;           /* the file length the header implies */
} v2_header;

/* Check the first min(avail, 80) bytes at d of a file of file_len bytes
   (src names it in messages) and fill h; the real length must be the one
   the header implies. */
static fnn_status parse_prefix(v2_header *h, const unsigned char *d, int64_t avail,
                               int64_t file_len, const char *src) {
    if (file_len < (int64_t)sizeof MAGIC)
        return fnn__error(FNN_ERR_FORMAT, "%s: file too short (%lld bytes) to be a fastnn "
                          "model", src, (long long)file_len);
    if (memcmp(d, MAGIC, sizeof MAGIC) != 0)
        return fnn__error(FNN_ERR_FORMAT, "%s: not a fastnn model file (wrong magic bytes)",
                          src);
    if (file_len < 12)
        return fnn__error(FNN_ERR_FORMAT, "%s: file truncated (%lld bytes)", src,
                          (long long)file_len);
    uint32_t version = get_u32(d + 8);
    if (version != V2_VERSION)
        return fnn__error(FNN_ERR_FORMAT, "%s: unsupported format version %lu (this reader "
                          "reads version %u%s)", src, (unsigned long)version, V2_VERSION,
                          version == 1 ? "; fastnn.load in Python reads version 1" : "");
    if (file_len < V2_HEADER + V2_DIGEST || avail < V2_HEADER)
        return fnn__error(FNN_ERR_FORMAT, "%s: file truncated (%lld bytes; a version 2 "
                          "header and checksum alone take %d)", src, (long long)file_len,
                          V2_HEADER + V2_DIGEST);
    uint32_t hsize = get_u32(d + 12), L = get_u32(d + 16), ndim = get_u32(d + 20);
    if (hsize != V2_HEADER)
        return fnn__error(FNN_ERR_FORMAT, "%s: header size %lu, version 2 has %d", src,
                          (unsigned long)hsize, V2_HEADER);
    if (L < 1 || L > V2_MAX_NODES)
        return fnn__error(FNN_ERR_FORMAT, "%s: %lu nodes (a model has 1 to %d)", src,
                          (unsigned long)L, V2_MAX_NODES);
    if (ndim < 1 || ndim > FNN_MAX_DIMS)
        return fnn__error(FNN_ERR_FORMAT, "%s: input ndim %lu out of range 1..%d", src,
                          (unsigned long)ndim, FNN_MAX_DIMS);
    memset(h, 0, sizeof *h);
    h->L = (int32_t)L;
    h->input.ndim = (int32_t)ndim;
    for (int k = 0; k < FNN_MAX_DIMS; k++) {
        int64_t v = get_i64(d + 24 + 8 * k);
        if (k < (int)ndim ? v < 1 : v != 0)
            return fnn__error(FNN_ERR_FORMAT, "%s: input dim[%d] = %lld (dims below ndim %lu "
                              "are >= 1, the rest 0)", src, k, (long long)v,
                              (unsigned long)ndim);
        h->input.dim[k] = v;
    }
    h->seed = get_u64(d + 48);
    h->P = get_i64(d + 56);
    h->B = get_i64(d + 64);
    h->M = get_i64(d + 72);
    if (h->P < 0 || h->B < 0)
        return fnn__error(FNN_ERR_FORMAT, "%s: negative size (%lld parameters, %lld buffers)",
                          src, (long long)h->P, (long long)h->B);
    if (h->M < 0 || h->M > V2_MAX_META)
        return fnn__error(FNN_ERR_FORMAT, "%s: metadata length %lld out of range 0..%lld",
                          src, (long long)h->M, (long long)V2_MAX_META);
    /* 80 + 160 L + M + 32 < 2^25; then + 4P, + 4B without overflow */
    int64_t size = V2_HEADER + (int64_t)V2_NODE * h->L + h->M + V2_DIGEST;
    if (h->P > (INT64_MAX - size) / 4 || h->B > (INT64_MAX - size - 4 * h->P) / 4)
        return fnn__error(FNN_ERR_FORMAT, "%s: %lld parameters and %lld buffers: too large "
                          "for any file", src, (long long)h->P, (long long)h->B);
    h->size = size + 4 * h->P + 4 * h->B;
    if (file_len != h->size)
        return fnn__error(FNN_ERR_FORMAT, "%s: %s: the file has %lld bytes, its header "
                          "(%d nodes, %lld metadata bytes, %lld parameters, %lld buffers) "
                          "says %lld", src, file_len < h->size ? "file truncated"
                                                               : "trailing bytes",
                          (long long)file_len, (int)h->L, (long long)h->M, (long long)h->P,
                          (long long)h->B, (long long)h->size);
    return FNN_OK;
}

/* ---------------------------------------------------------- loading */

/* Slots are numbered 0..L (0 the input); each is written once, before it is
   read (the format's rule); then the sizes the ops derive from the nodes
   (fnn_model_desc_sizes, which allocates no parameters) must be the file's
   P and B, before fnn_model_create allocates them. */
static fnn_status check_layout(const fnn_model_desc *desc, int64_t P, int64_t B,
                               const char *src) {
    const int32_t L = desc->num_nodes;
    unsigned char *set = calloc((size_t)L + 1, 1);
    if (!set) return fnn__error(FNN_ERR_NOMEM, "%s: out of memory for %d nodes", src, (int)L);
    set[0] = 1;
    for (int32_t i = 0; i < L; i++) {
        const fnn_node *n = &desc->nodes[i];
        int32_t a = n->in[0], b = n->in[1], o = n->out;
        if (a < 0 || a > L || !set[a] || b < -1 || b > L || (b >= 0 && !set[b]) ||
            o < 1 || o > L || set[o]) {
            free(set);
            return fnn__error(FNN_ERR_FORMAT, "%s: node %d (%s) reads slots (%d, %d) and writes "
                              "slot %d: a slot is out of range 0..%d, read before it is "
                              "written or written twice", src, (int)i, n->op, (int)a, (int)b,
                              (int)o, (int)L);
        }
        set[o] = 1;
    }
    free(set);
    int64_t np = 0, nb = 0;
    fnn_status s = fnn_model_desc_sizes(desc, &np, &nb);
    if (s == FNN_ERR_NOMEM) return s;
    if (s != FNN_OK) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", fnn_last_error());
        return fnn__error(FNN_ERR_FORMAT, "%s: invalid architecture: %s", src, msg);
    }
    if (np != P || nb != B)
        return fnn__error(FNN_ERR_FORMAT, "%s: layout does not match: the nodes have %lld "
                          "parameters and %lld buffers, the file holds %lld and %lld", src,
                          (long long)np, (long long)nb, (long long)P, (long long)B);
    return FNN_OK;
}

/* Everything after the size check: the checksum, the nodes, the model. */
static fnn_status load_checked(fnn_model **out, const unsigned char *d, int64_t len,
                               const v2_header *h, const char *src) {
    unsigned char digest[V2_DIGEST];
    fnn__sha256(d, (size_t)(len - V2_DIGEST), digest);
    if (memcmp(digest, d + len - V2_DIGEST, V2_DIGEST) != 0)
        return fnn__error(FNN_ERR_FORMAT, "%s: checksum mismatch: the file is truncated or "
                          "corrupted", src);
    fnn_node *nodes = malloc((size_t)h->L * sizeof *nodes);
    if (!nodes) return fnn__error(FNN_ERR_NOMEM, "%s: out of memory for %d nodes", src,
                                  (int)h->L);
    fnn_status st = FNN_OK;
    for (int32_t i = 0; i < h->L && st == FNN_OK; i++)
        st = decode_node(&nodes[i], d + V2_HEADER + (size_t)V2_NODE * (size_t)i, i, src);
    fnn_model_desc desc;
    memset(&desc, 0, sizeof desc);
    desc.input = h->input;
    desc.num_nodes = h->L;
    desc.nodes = nodes;
    if (st == FNN_OK) st = check_layout(&desc, h->P, h->B, src);
    fnn_model *m = NULL;
    if (st == FNN_OK) {
        fnn_status s = fnn_model_create(&m, &desc, h->seed);
        if (s != FNN_OK) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s", fnn_last_error());
            st = fnn__error(s == FNN_ERR_NOMEM ? s : FNN_ERR_FORMAT,
                            "%s: invalid architecture: %s", src,
                            msg[0] ? msg : fnn_status_string(s));
            m = NULL;
        }
    }
    free(nodes);
    if (st == FNN_OK && (fnn_model_num_params(m) != h->P || fnn_model_num_buffers(m) != h->B))
        st = fnn__error(FNN_ERR_FORMAT, "%s: layout does not match: the model has %lld "
                        "parameters and %lld buffers, the file holds %lld and %lld", src,
                        (long long)fnn_model_num_params(m), (long long)fnn_model_num_buffers(m),
                        (long long)h->P, (long long)h->B);
    if (st == FNN_OK) {
        const unsigned char *p = d + V2_HEADER + (size_t)V2_NODE * (size_t)h->L;
        float *params = fnn_model_params(m), *buffers = fnn_model_buffers(m);
        if ((h->P > 0 && !params) || (h->B > 0 && !buffers)) {
            st = fnn__error(FNN_ERR_STATE, "%s: the model has no parameter storage", src);
        } else {
            const unsigned char *meta = p;
            p += h->M;
            get_floats(params, p, h->P);
            get_floats(buffers, p + 4 * h->P, h->B);
            if (h->M > 0) {
                st = fnn_model_set_metadata(m, (const char *)meta, h->M);
                if (st != FNN_OK) {
                    char msg[512];
                    snprintf(msg, sizeof msg, "%s", fnn_last_error());
                    fnn__error(st, "%s: metadata: %s", src, msg);
                }
            }
        }
    }
    if (st != FNN_OK) {
        fnn_model_free(m);
        return st;
    }
    *out = m;
    return FNN_OK;
}

static fnn_status load_mem(fnn_model **out, const unsigned char *d, int64_t len,
                           const char *src) {
    v2_header h;
    fnn_status st = parse_prefix(&h, d, len < V2_HEADER ? len : V2_HEADER, len, src);
    return st != FNN_OK ? st : load_checked(out, d, len, &h, src);
}

fnn_status fnn_model_load_bytes(fnn_model **out, const unsigned char *data, int64_t len) {
    fnn__clear_error();
    if (!out) return fnn__error(FNN_ERR_ARG, "fnn_model_load_bytes: out is NULL");
    *out = NULL;
    if (len < 0 || (len > 0 && !data))
        return fnn__error(FNN_ERR_ARG, "fnn_model_load_bytes: %lld bytes at %s",
                          (long long)len, data ? "data" : "NULL");
    return load_mem(out, data, len, "model data");
}

/* strerror(e) without shared static buffers where the system has strerror_r */
static const char *errstr(int e, char *buf, size_t size) {
#if defined(FNN_IO_POSIX) && !defined(_GNU_SOURCE)
    if (strerror_r(e, buf, size) == 0) return buf;
    snprintf(buf, size, "error %d", e);
    return buf;
#else
    (void)buf; (void)size;
    return strerror(e);
#endif
}

/* The length of an open file, or -1 with errno set. */
static int64_t file_length(FILE *f) {
#ifdef FNN_IO_POSIX
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0) return -1;
    if (S_ISDIR(sb.st_mode)) {
        errno = EISDIR;
        return -1;
    }
    return (int64_t)sb.st_size;
#else
    long n;
    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0)
        return -1;
    return (int64_t)n;
#endif
}

fnn_status fnn_model_load(fnn_model **out, const char *path) {
    fnn__clear_error();
    char eb[128];
    if (!out) return fnn__error(FNN_ERR_ARG, "fnn_model_load: out is NULL");
    *out = NULL;
    if (!path) return fnn__error(FNN_ERR_ARG, "fnn_model_load: path is NULL");
    FILE *f = fopen(path, "rb");
    if (!f) return fnn__error(FNN_ERR_IO, "cannot open %s: %s", path, errstr(errno, eb, sizeof eb));
    fnn_status st = FNN_OK;
    unsigned char head[V2_HEADER], *buf = NULL;
    v2_header h;
    int64_t len = file_length(f);
    size_t got = 0;
    if (len < 0) {
        st = fnn__error(FNN_ERR_IO, "cannot read %s: %s", path, errstr(errno, eb, sizeof eb));
        goto done;
    }
    /* the prefix first: nothing is allocated before the length is checked */
    got = fread(head, 1, len < V2_HEADER ? (size_t)len : V2_HEADER, f);
    if (ferror(f)) {
        st = fnn__error(FNN_ERR_IO, "cannot read %s: %s", path, errstr(errno, eb, sizeof eb));
        goto done;
    }
    if (got != (len < V2_HEADER ? (size_t)len : V2_HEADER)) {
        st = fnn__error(FNN_ERR_FORMAT, "%s: file truncated (it changed while being read)",
                        path);
        goto done;
    }
    if ((st = parse_prefix(&h, head, (int64_t)got, len, path)) != FNN_OK) goto done;
    if ((uint64_t)len > (uint64_t)SIZE_MAX) {
        st = fnn__error(FNN_ERR_NOMEM, "%s: %lld bytes do not fit in memory", path,
                        (long long)len);
        goto done;
    }
    if (!(buf = malloc((size_t)len))) {
        st = fnn__error(FNN_ERR_NOMEM, "%s: out of memory for %lld bytes", path,
                        (long long)len);
        goto done;
    }
    memcpy(buf, head, V2_HEADER);
    got = fread(buf + V2_HEADER, 1, (size_t)len - V2_HEADER, f);
    if (ferror(f)) {
        st = fnn__error(FNN_ERR_IO, "cannot read %s: %s", path, errstr(errno, eb, sizeof eb));
    } else if (got != (size_t)len - V2_HEADER || fgetc(f) != EOF) {
        /* the file changed size while we read it */
        st = fnn__error(FNN_ERR_FORMAT, "%s: file truncated (it changed while being read)",
                        path);
    } else {
        st = load_checked(out, buf, len, &h, path);
    }
done:
    free(buf);
    fclose(f);
    return st;
}

/* ----------------------------------------------------------- saving */

/* Bytes stream through a buffer into the file and the running checksum. */
#define EMIT_BUF 65536
typedef struct emitter {
    FILE *f;
    fnn__sha256_ctx sha;
    size_t used;
    int err;                /* errno of the first failed write, -1 without one; 0: fine */
    unsigned char buf[EMIT_BUF];
} emitter;

static void emit_flush(emitter *e) {
    if (e->used == 0) return;
    fnn__sha256_update(&e->sha, e->buf, e->used);
    if (!e->err) {
        errno = 0;
        if (fwrite(e->buf, 1, e->used, e->f) != e->used) e->err = errno ? errno : -1;
    }
    e->used = 0;
}

/* room for n <= EMIT_BUF bytes */
static unsigned char *emit_space(emitter *e, size_t n) {
    if (e->used + n > EMIT_BUF) emit_flush(e);
    unsigned char *p = e->buf + e->used;
    e->used += n;
    return p;
}

static void emit_bytes(emitter *e, const unsigned char *p, int64_t n) {
    while (n > 0) {
        size_t k = n < EMIT_BUF ? (size_t)n : EMIT_BUF;
        memcpy(emit_space(e, k), p, k);
        p += k;
        n -= (int64_t)k;
    }
}

static void emit_floats(emitter *e, const float *x, int64_t n) {
    while (n > 0) {
        size_t k = n < EMIT_BUF / 4 ? (size_t)n : EMIT_BUF / 4;
        unsigned char *p = emit_space(e, 4 * k);
        if (HOST_LE) {
            memcpy(p, x, 4 * k);
        } else {
            for (size_t i = 0; i < k; i++) put_f32(p + 4 * i, x[i]);
        }
        x += k;
        n -= (int64_t)k;
    }
}

/* Write the whole file to f (header, nodes, metadata, floats, digest);
   0 or the errno of the failed write. */
static int write_file(FILE *f, const fnn_model *m, const v2_header *h, const char *meta,
                      const float *params, const float *buffers) {
    emitter *e = malloc(sizeof *e);
    if (!e) return ENOMEM;
    e->f = f;
    e->used = 0;
    e->err = 0;
    fnn__sha256_init(&e->sha);
    unsigned char *p = emit_space(e, V2_HEADER);
    memcpy(p, MAGIC, sizeof MAGIC);
    put_u32(p + 8, V2_VERSION);
    put_u32(p + 12, V2_HEADER);
    put_u32(p + 16, (uint32_t)h->L);
    put_u32(p + 20, (uint32_t)h->input.ndim);
    for (int k = 0; k < FNN_MAX_DIMS; k++)
        put_i64(p + 24 + 8 * k, k < h->input.ndim ? h->input.dim[k] : 0);
    put_u64(p + 48, h->seed);
    put_i64(p + 56, h->P);
    put_i64(p + 64, h->B);
    put_i64(p + 72, h->M);
    for (int32_t i = 0; i < h->L; i++) encode_node(emit_space(e, V2_NODE), fnn_model_node(m, i));
    emit_bytes(e, (const unsigned char *)meta, h->M);
    emit_floats(e, params, h->P);
    emit_floats(e, buffers, h->B);
    emit_flush(e);
    unsigned char digest[V2_DIGEST];
    fnn__sha256_final(&e->sha, digest);
    errno = 0;
    if (!e->err && fwrite(digest, 1, V2_DIGEST, f) != V2_DIGEST) e->err = errno ? errno : -1;
    if (!e->err && fflush(f) != 0) e->err = errno ? errno : -1;
    int err = e->err;
    free(e);
    return err;
}

/* What is saved, checked against the format's limits (FNN_ERR_ARG if the
   model does not fit it). */
static fnn_status gather(const fnn_model *m, v2_header *h, const char **meta,
                         const float **params, const float **buffers, const char *path) {
    memset(h, 0, sizeof *h);
    int32_t L = fnn_model_num_nodes(m);
    if (L < 1 || L > V2_MAX_NODES)
        return fnn__error(FNN_ERR_ARG, "cannot save to %s: a model file holds 1 to %d nodes, "
                          "the model has %d", path, V2_MAX_NODES, (int)L);
    h->L = L;
    h->input = fnn_model_input_shape(m);
    if (h->input.ndim < 1 || h->input.ndim > FNN_MAX_DIMS)
        return fnn__error(FNN_ERR_ARG, "cannot save to %s: input ndim %d", path,
                          (int)h->input.ndim);
    for (int k = 0; k < h->input.ndim; k++)
        if (h->input.dim[k] < 1)
            return fnn__error(FNN_ERR_ARG, "cannot save to %s: input dim[%d] = %lld", path, k,
                              (long long)h->input.dim[k]);
    for (int32_t i = 0; i < L; i++) {
        const fnn_node *n = fnn_model_node(m, i);
        if (!n || !name_ok(n->op))
            return fnn__error(FNN_ERR_ARG, "cannot save to %s: node %d has no valid op name",
                              path, (int)i);
    }
    h->seed = fnn_model_seed(m);
    h->P = fnn_model_num_params(m);
    h->B = fnn_model_num_buffers(m);
    /* the accessors take a mutable model; nothing is written through them */
    *params = fnn_model_params((fnn_model *)m);
    *buffers = fnn_model_buffers((fnn_model *)m);
    *meta = fnn_model_metadata(m, &h->M);
    if (h->P < 0 || h->B < 0 || (h->P > 0 && !*params) || (h->B > 0 && !*buffers))
        return fnn__error(FNN_ERR_ARG, "cannot save to %s: the model has no parameter storage",
                          path);
    if (h->M < 0 || h->M > V2_MAX_META || (h->M > 0 && !*meta))
        return fnn__error(FNN_ERR_ARG, "cannot save to %s: metadata of %lld bytes (the format "
                          "holds at most %lld)", path, (long long)h->M,
                          (long long)V2_MAX_META);
    int64_t fixed = V2_HEADER + (int64_t)V2_NODE * L + h->M + V2_DIGEST;
    if (h->P > (INT64_MAX - fixed) / 4 || h->B > (INT64_MAX - fixed - 4 * h->P) / 4)
        return fnn__error(FNN_ERR_ARG, "cannot save to %s: %lld parameters and %lld buffers "
                          "are too many for a file", path, (long long)h->P, (long long)h->B);
    return FNN_OK;
}

#ifdef FNN_IO_POSIX

fnn_status fnn_model_save(const fnn_model *m, const char *path) {
    fnn__clear_error();
    char eb[128];
    if (!m || !path || !path[0])
        return fnn__error(FNN_ERR_ARG, "fnn_model_save: %s is NULL or empty",
                          m ? "path" : "model");
    v2_header h;
    const char *meta = NULL;
    const float *params = NULL, *buffers = NULL;
    fnn_status st = gather(m, &h, &meta, &params, &buffers, path);
    if (st != FNN_OK) return st;

    /* directory and base name: "a/b/m.fnn" -> "a/b", "m.fnn" */
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    size_t dlen = slash ? (size_t)(slash - path) : 0;
    struct stat sb;
    if (!base[0] || (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)))
        return fnn__error(FNN_ERR_IO, "cannot save to %s: it is a directory", path);
    size_t need = strlen(path) + 64;
    char *dir = malloc(dlen + 2), *tmp = malloc(need);
    if (!dir || !tmp) {
        free(dir);
        free(tmp);
        return fnn__error(FNN_ERR_NOMEM, "cannot save to %s: out of memory", path);
    }
    if (!slash) strcpy(dir, ".");
    else if (dlen == 0) strcpy(dir, "/");
    else { memcpy(dir, path, dlen); dir[dlen] = '\0'; }
    mode_t mode = (stat(path, &sb) == 0) ? (sb.st_mode & 0777) : 0644;
    snprintf(tmp, need, "%.*s.%s.fnn-tmp-%ld-XXXXXX", (int)(slash ? dlen + 1 : 0), path, base,
             (long)getpid());

    int fd = -1, dfd;
    FILE *f = NULL;
    int err;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        st = fnn__error(FNN_ERR_IO, "cannot save to %s: directory %s does not exist", path,
                        dir);
        goto out;
    }
    if ((fd = mkstemp(tmp)) < 0) {
        st = fnn__error(FNN_ERR_IO, "cannot save to %s: cannot create a temporary file in "
                        "%s: %s", path, dir, errstr(errno, eb, sizeof eb));
        goto out;
    }
    if (!(f = fdopen(fd, "wb"))) {
        err = errno;
        close(fd);
        goto fail;
    }
    if ((err = write_file(f, m, &h, meta, params, buffers)) != 0) goto fail;
    if (fsync(fileno(f)) != 0 || fchmod(fileno(f), mode) != 0) { err = errno; goto fail; }
    err = fclose(f) != 0 ? errno : 0;
    f = NULL;
    if (err) goto fail;
    if (rename(tmp, path) != 0) {
        err = errno;
        unlink(tmp);
        st = fnn__error(FNN_ERR_IO, "cannot save to %s: renaming %s over it failed: %s", path,
                        tmp, errstr(err, eb, sizeof eb));
        goto out;
    }
    /* the rename itself must reach the disk; EINVAL: the file system cannot
       sync a directory (the data itself is synced) */
    if ((dfd = open(dir, O_RDONLY)) >= 0) {
        err = fsync(dfd) != 0 && errno != EINVAL ? errno : 0;
        close(dfd);
    } else {
        err = errno;
    }
    if (err)
        st = fnn__error(FNN_ERR_IO, "saved %s, but syncing its directory %s failed: %s", path,
                        dir, errstr(err, eb, sizeof eb));
    goto out;
fail:
    if (f) fclose(f);
    unlink(tmp);
    st = fnn__error(FNN_ERR_IO, "cannot save to %s: writing %s failed: %s", path, tmp,
                    err > 0 ? errstr(err, eb, sizeof eb) : "write error");
out:
    free(dir);
    free(tmp);
    return st;
}

#else /* no POSIX: plain stdio, not atomic */

fnn_status fnn_model_save(const fnn_model *m, const char *path) {
    fnn__clear_error();
    if (!m || !path || !path[0])
        return fnn__error(FNN_ERR_ARG, "fnn_model_save: %s is NULL or empty",
                          m ? "path" : "model");
    v2_header h;
    const char *meta = NULL;
    const float *params = NULL, *buffers = NULL;
    fnn_status st = gather(m, &h, &meta, &params, &buffers, path);
    if (st != FNN_OK) return st;
    const char *base = path;
    for (const char *p = path; *p; p++)
        if (*p == '/' || *p == '\\') base = p + 1;
    if (!base[0]) return fnn__error(FNN_ERR_IO, "cannot save to %s: it is a directory", path);
    size_t need = strlen(path) + 32;
    char *tmp = malloc(need);
    if (!tmp) return fnn__error(FNN_ERR_NOMEM, "cannot save to %s: out of memory", path);
    snprintf(tmp, need, "%.*s.%s.fnn-tmp-0-stdio", (int)(base - path), path, base);
    FILE *f = fopen(tmp, "wb");
    int err;
    if (!f) {
        st = fnn__error(FNN_ERR_IO, "cannot save to %s: cannot create %s: %s", path, tmp,
                        strerror(errno));
    } else {
        err = write_file(f, m, &h, meta, params, buffers);
        if (fclose(f) != 0 && !err) err = errno ? errno : -1;
        if (!err && rename(tmp, path) != 0) {
            remove(path);                         /* rename does not replace everywhere */
            if (rename(tmp, path) != 0) err = errno ? errno : -1;
        }
        if (err) {
            remove(tmp);
            st = fnn__error(FNN_ERR_IO, "cannot save to %s: writing %s failed: %s", path, tmp,
                            err > 0 ? strerror(err) : "write error");
        }
    }
    free(tmp);
    return st;
}

#endif
