/*
 * predict.c -- run a fastnn model saved from Python on rows of a CSV file,
 * using only the embeddable C library (no Python at run time).
 *
 * Build (from the repository root, with fastnn installed in the active
 * Python environment):
 *
 *     cc examples/predict.c $(python -m fastnn.config --cflags --libs) -o predict
 *     cc examples/predict.c $(python -m fastnn.config --cflags --static-libs) -o predict
 *
 * (the second line links libfastnn.a, so the program does not need the
 * Python environment afterwards).
 *
 * Run:
 *
 *     ./predict MODEL.fnn INPUT.csv      (INPUT.csv may be "-" for stdin)
 *
 * MODEL.fnn is a file written by model.save(path) in Python (or by
 * fnn_model_save). INPUT.csv holds one sample per line: as many
 * comma-separated floats as the model's input has elements, no header.
 * Blank lines are skipped. All rows go through one fnn_model_forward call,
 * and each row's outputs are printed on one line, "%.9g", comma-separated
 * (9 significant digits round-trip a float32 exactly).
 *
 * On any error a message goes to stderr and the exit status is 1.
 */
#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fastnn.h"

static const char *prog = "predict";

/* Elements of one sample of shape s, or -1 if the shape is malformed. */
static int64_t shape_numel(fnn_shape s) {
    int64_t n = 1;
    int32_t i;
    if (s.ndim < 1 || s.ndim > FNN_MAX_DIMS) return -1;
    for (i = 0; i < s.ndim; i++) {
        if (s.dim[i] < 1 || n > INT64_MAX / s.dim[i]) return -1;
        n *= s.dim[i];
    }
    return n;
}

/* Read one line (without its '\n') into *buf, growing it as needed.
   Returns 1 for a line, 0 at end of file, -1 on a read or memory error. */
static int read_line(FILE *f, char **buf, size_t *cap) {
    size_t len = 0;
    int c, got = 0;
    while ((c = getc(f)) != EOF) {
        got = 1;
        if (c == '\n') break;
        if (len + 1 >= *cap) {
            size_t ncap = *cap ? *cap * 2 : 256;
            char *nb;
            if (ncap < *cap) return -1;
            nb = (char *)realloc(*buf, ncap);
            if (!nb) return -1;
            *buf = nb;
            *cap = ncap;
        }
        (*buf)[len++] = (char)c;
    }
    if (ferror(f)) return -1;
    if (!got) return 0;
    if (!*buf) {                       /* an empty first line: no buffer yet */
        *buf = (char *)malloc(1);
        if (!*buf) return -1;
        *cap = 1;
    }
    (*buf)[len] = '\0';
    return 1;
}

static int is_space(char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* Parse one CSV line of exactly `want` floats into out.
   Returns 0, or 1 after printing what is wrong (naming file and line). */
static int parse_row(const char *line, float *out, int64_t want,
                     const char *path, int64_t lineno) {
    const char *p = line;
    int64_t k = 0;
    for (;;) {
        char *end;
        float v;
        while (is_space(*p)) p++;
        if (*p == ',' || *p == '\0') {
            fprintf(stderr, "%s: %s:%" PRId64 ": value %" PRId64 " is empty\n",
                    prog, path, lineno, k + 1);
            return 1;
        }
        errno = 0;
        v = strtof(p, &end);
        if (end == p) {
            size_t n = strcspn(p, ",");
            fprintf(stderr, "%s: %s:%" PRId64 ": value %" PRId64 " is not a number: '%.*s'\n",
                    prog, path, lineno, k + 1, (int)(n > 40 ? 40 : n), p);
            return 1;
        }
        if (errno == ERANGE && (v > FLT_MAX || v < -FLT_MAX)) {
            fprintf(stderr, "%s: %s:%" PRId64 ": value %" PRId64 " is out of float range: '%.*s'\n",
                    prog, path, lineno, k + 1, (int)(end - p > 40 ? 40 : end - p), p);
            return 1;
        }
        while (is_space(*end)) end++;
        if (*end != ',' && *end != '\0') {
            size_t n = strcspn(p, ",");
            fprintf(stderr, "%s: %s:%" PRId64 ": value %" PRId64 " is not a number: '%.*s'\n",
                    prog, path, lineno, k + 1, (int)(n > 40 ? 40 : n), p);
            return 1;
        }
        if (k < want) out[k] = v;
        k++;
        if (*end == '\0') break;
        p = end + 1;
    }
    if (k != want) {
        fprintf(stderr, "%s: %s:%" PRId64 ": expected %" PRId64 " values, got %" PRId64 "\n",
                prog, path, lineno, want, k);
        return 1;
    }
    return 0;
}

static int line_is_blank(const char *s) {
    while (is_space(*s)) s++;
    return *s == '\0';
}

int main(int argc, char **argv) {
    fnn_model *model = NULL;
    FILE *in = NULL;
    char *line = NULL;
    size_t line_cap = 0;
    float *x = NULL, *y = NULL;
    int64_t n_in, n_out, rows = 0, rows_cap = 0, lineno = 0, i, j;
    const char *csv, *csv_name;
    fnn_status s;
    int rc = 1, r;

    if (argc != 3) {
        fprintf(stderr, "usage: %s MODEL.fnn INPUT.csv\n"
                        "  Prints the model's outputs for each CSV row (one sample per line,\n"
                        "  comma-separated floats, no header; INPUT.csv may be - for stdin).\n",
                argc > 0 && argv[0] ? argv[0] : prog);
        return 1;
    }
    csv = argv[2];
    csv_name = strcmp(csv, "-") == 0 ? "<stdin>" : csv;

    s = fnn_model_load(&model, argv[1]);
    if (s != FNN_OK) {
        fprintf(stderr, "%s: cannot load model %s: %s: %s\n",
                prog, argv[1], fnn_status_string(s), fnn_last_error());
        return 1;
    }
    n_in = shape_numel(fnn_model_input_shape(model));
    n_out = shape_numel(fnn_model_output_shape(model));
    if (n_in < 1 || n_out < 1) {
        fprintf(stderr, "%s: model %s has a malformed input or output shape\n", prog, argv[1]);
        goto done;
    }

    in = strcmp(csv, "-") == 0 ? stdin : fopen(csv, "r");
    if (!in) {
        fprintf(stderr, "%s: cannot open %s: %s\n", prog, csv, strerror(errno));
        goto done;
    }
    while ((r = read_line(in, &line, &line_cap)) == 1) {
        lineno++;
        if (line_is_blank(line)) continue;
        if (rows == rows_cap) {
            int64_t ncap = rows_cap ? rows_cap * 2 : 64;
            float *nx;
            if (ncap > (int64_t)(SIZE_MAX / sizeof(float)) / n_in) {
                fprintf(stderr, "%s: %s: too many rows\n", prog, csv_name);
                goto done;
            }
            nx = (float *)realloc(x, (size_t)(ncap * n_in) * sizeof(float));
            if (!nx) {
                fprintf(stderr, "%s: out of memory reading %s\n", prog, csv_name);
                goto done;
            }
            x = nx;
            rows_cap = ncap;
        }
        if (parse_row(line, x + rows * n_in, n_in, csv_name, lineno)) goto done;
        rows++;
    }
    if (r < 0) {
        fprintf(stderr, "%s: error reading %s (or out of memory)\n", prog, csv_name);
        goto done;
    }

    if (rows > 0) {
        if (rows > (int64_t)(SIZE_MAX / sizeof(float)) / n_out) {
            fprintf(stderr, "%s: %s: too many rows\n", prog, csv_name);
            goto done;
        }
        y = (float *)malloc((size_t)(rows * n_out) * sizeof(float));
        if (!y) {
            fprintf(stderr, "%s: out of memory for %" PRId64 " rows\n", prog, rows);
            goto done;
        }
        s = fnn_model_forward(model, y, x, rows, NULL, 0);
        if (s != FNN_OK) {
            fprintf(stderr, "%s: forward pass failed: %s: %s\n",
                    prog, fnn_status_string(s), fnn_last_error());
            goto done;
        }
        for (i = 0; i < rows; i++) {
            for (j = 0; j < n_out; j++)
                printf(j ? ",%.9g" : "%.9g", (double)y[i * n_out + j]);
            putchar('\n');
        }
    }
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "%s: error writing the output\n", prog);
        goto done;
    }
    rc = 0;

done:
    if (in && in != stdin) fclose(in);
    free(line);
    free(x);
    free(y);
    fnn_model_free(model);
    return rc;
}
