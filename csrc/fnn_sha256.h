/*
 * fnn_sha256.h -- SHA-256 for the model file checksum (internal, not public).
 *
 * FIPS 180-4 section 6.2, written from the standard; see csrc/sha256.c.
 * A context lives on the caller's stack: no global state, so any number of
 * threads may hash at once. The library is compiled with hidden visibility,
 * so these fnn__ names are not exported from libfastnn.
 */
#ifndef FNN_SHA256_H
#define FNN_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define FNN_SHA256_DIGEST 32     /* bytes of a digest */

typedef struct fnn__sha256_ctx {
    uint32_t h[8];               /* the hash value H(i) */
    uint64_t bytes;              /* message bytes hashed so far */
    unsigned char block[64];     /* a partial block ... */
    size_t used;                 /* ... of this many bytes (0..63) */
} fnn__sha256_ctx;

void fnn__sha256_init(fnn__sha256_ctx *c);
/* Hash n more bytes at data (data may be NULL when n == 0). */
void fnn__sha256_update(fnn__sha256_ctx *c, const void *data, size_t n);
/* Pad, finish and write the 32-byte digest; c must be re-initialised to reuse. */
void fnn__sha256_final(fnn__sha256_ctx *c, unsigned char out[FNN_SHA256_DIGEST]);
/* The digest of n bytes in one call. */
void fnn__sha256(const void *data, size_t n, unsigned char out[FNN_SHA256_DIGEST]);

#endif /* FNN_SHA256_H */
