/* LRA Image (docs/tasks.md): a class from a sequence of grayscale
 * pixel tokens. Official: CIFAR-10 binary batches (--data DIR holding
 * cifar-10-batches-bin/), grayscale 0.2989 R + 0.5870 G + 0.1140 B, 1024
 * tokens. Offline stand-in: Fashion-MNIST IDX files (28 x 28 = 784 tokens,
 * or 1024 with pad32=1), labelled stand-in:fashion-mnist. A CLS token leads
 * every sequence (CLS pooling, as the LRA configs). */
#include "lra.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define CIFAR_RECORD 3073
#define IDX_MAX_BYTES ((size_t)64 << 20)

typedef struct {
    unsigned char *pixels;   /* [count][rows*cols] grayscale */
    unsigned char *labels;   /* [count] */
    int64_t count, rows, cols;
} image_set;

static void image_set_free(image_set *s)
{
    free(s->pixels);
    free(s->labels);
    memset(s, 0, sizeof *s);
}

static uint32_t be32(const unsigned char *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }

/* An IDX file (big-endian; magic 00 00 08 dims): images (dims 3) or labels (dims 1). */
static int read_idx(const char *path, int dims, unsigned char **data, int64_t *count, int64_t *rows, int64_t *cols)
{
    unsigned char *b;
    size_t n;
    int rc = lra_read_file(path, IDX_MAX_BYTES, &b, &n);
    if (rc)
        return rc;
    size_t head = 4 + 4 * (size_t)dims;
    if (n < head) {
        free(b);
        return attn_fail(ATTN_EINVAL, "%s: truncated header (%zu bytes, expected %zu)", path, n, head);
    }
    if (b[0] || b[1] || b[2] != 0x08 || b[3] != dims) {
        rc = attn_fail(ATTN_EINVAL, "%s: byte 0: expected IDX magic 00 00 08 %02x (unsigned bytes, %d dims), found %02x %02x %02x %02x",
                       path, dims, dims, b[0], b[1], b[2], b[3]);
        free(b); /* after the message, which quotes the bytes */
        return rc;
    }
    *count = be32(b + 4);
    *rows = dims == 3 ? be32(b + 8) : 1;
    *cols = dims == 3 ? be32(b + 12) : 1;
    /* three 32-bit sizes: their product may not fit 64 bits */
    uint64_t cells, bytes;
    if (__builtin_mul_overflow((uint64_t)*rows, (uint64_t)*cols, &cells) ||
        __builtin_mul_overflow(cells, (uint64_t)*count, &bytes) || bytes > IDX_MAX_BYTES) {
        free(b);
        return attn_fail(ATTN_EINVAL, "%s: header: expected at most %zu bytes of items, found %lld items of %lldx%lld",
                         path, IDX_MAX_BYTES, (long long)*count, (long long)*rows, (long long)*cols);
    }
    size_t want = head + (size_t)bytes;
    if (n != want) {
        free(b);
        return attn_fail(ATTN_EINVAL, "%s: %s at byte %zu (expected %zu bytes for %lld items of %lldx%lld)", path,
                         n < want ? "truncated" : "trailing data", n < want ? n : want, want, (long long)*count,
                         (long long)*rows, (long long)*cols);
    }
    memmove(b, b + head, n - head);
    *data = b;
    return 0;
}

/* Fashion-MNIST images + labels, checked against each other. */
static int read_fashion(const char *dir, const char *prefix, image_set *s)
{
    char ip[1200], lp[1200];
    snprintf(ip, sizeof ip, "%s/%s-images-idx3-ubyte", dir, prefix);
    snprintf(lp, sizeof lp, "%s/%s-labels-idx1-ubyte", dir, prefix);
    int64_t nl, one;
    memset(s, 0, sizeof *s); /* freed on every error, also before read_idx set anything */
    int rc = read_idx(ip, 3, &s->pixels, &s->count, &s->rows, &s->cols);
    if (!rc)
        rc = read_idx(lp, 1, &s->labels, &nl, &one, &one);
    if (!rc && (s->rows != 28 || s->cols != 28))
        rc = attn_fail(ATTN_EINVAL, "%s: image size: expected 28x28, found %lldx%lld", ip, (long long)s->rows,
                       (long long)s->cols);
    if (!rc && nl != s->count)
        rc = attn_fail(ATTN_EINVAL, "%s: expected %lld labels (one per image of %s), found %lld", lp,
                       (long long)s->count, ip, (long long)nl);
    for (int64_t i = 0; !rc && i < nl; i++)
        if (s->labels[i] > 9)
            rc = attn_fail(ATTN_EINVAL, "%s: label %lld (byte %lld): expected 0..9, found %u", lp, (long long)i,
                           (long long)(8 + i), s->labels[i]);
    if (rc)
        image_set_free(s);
    return rc;
}

/* CIFAR-10 binary batches: label byte, then 1024 R, 1024 G, 1024 B. */
static int read_cifar(const char *dir, const char *const *files, int nfiles, image_set *s)
{
    memset(s, 0, sizeof *s);
    s->rows = s->cols = 32;
    for (int f = 0; f < nfiles; f++) {
        char path[1200];
        snprintf(path, sizeof path, "%s/%s", dir, files[f]);
        unsigned char *b;
        size_t n;
        int rc = lra_read_file(path, (size_t)64 << 20, &b, &n);
        if (!rc && (n == 0 || n % CIFAR_RECORD))
            rc = attn_fail(ATTN_EINVAL, "%s: truncated record at byte %zu (expected records of %d bytes)", path,
                           n / CIFAR_RECORD * CIFAR_RECORD, CIFAR_RECORD);
        int64_t m = rc ? 0 : (int64_t)(n / CIFAR_RECORD);
        unsigned char *px = rc ? NULL : realloc(s->pixels, (size_t)((s->count + m) * 1024));
        unsigned char *lb = px ? realloc(s->labels, (size_t)(s->count + m)) : NULL;
        if (px)
            s->pixels = px;
        if (lb)
            s->labels = lb;
        if (!rc && (!px || !lb))
            rc = attn_fail(ATTN_ENOMEM, "%s: out of memory", path);
        for (int64_t i = 0; !rc && i < m; i++) {
            const unsigned char *r = b + i * CIFAR_RECORD;
            if (r[0] > 9) {
                rc = attn_fail(ATTN_EINVAL, "%s: record %lld (byte %lld): label: expected 0..9, found %u", path,
                               (long long)i, (long long)(i * CIFAR_RECORD), r[0]);
                break;
            }
            s->labels[s->count + i] = r[0];
            for (int p = 0; p < 1024; p++) /* TF rgb_to_grayscale weights, rounded to nearest */
                s->pixels[(s->count + i) * 1024 + p] =
                    (unsigned char)lrint(0.2989 * r[1 + p] + 0.5870 * r[1025 + p] + 0.1140 * r[2049 + p]);
        }
        free(b);
        if (rc) {
            image_set_free(s);
            return rc;
        }
        s->count += m;
    }
    return 0;
}

static int is_file(const char *dir, const char *name)
{
    char p[1200];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* Locates the CIFAR batches under dir (dir itself or cifar-10-batches-bin/). */
static int cifar_dir(const char *dir, char *out, size_t n)
{
    snprintf(out, n, "%s/cifar-10-batches-bin", dir);
    if (is_file(out, "test_batch.bin"))
        return 1;
    snprintf(out, n, "%s", dir);
    return is_file(out, "test_batch.bin");
}

static const opt_def image_params[] = {
    {.name = "pad32", .type = OPT_INT, .def = 0, .lo = 0, .hi = 1,
     .help = "1: pad 28x28 stand-in images to 32x32 = 1024 tokens"},
    {0},
};

static int image_make(const param_bag *params, task_split split, uint64_t seed, int64_t n, const char *data_dir,
                      task_data *out)
{
    int rc = task_params_check(image_params, params, "image");
    int pad32 = (int)task_param_int(image_params, params, "pad32", &rc);
    if (rc)
        return rc;
    char dir[1100];
    image_set s;
    int64_t first = 0, count;
    const char *source;
    if (data_dir && cifar_dir(data_dir, dir, sizeof dir)) {
        /* LRA splits: train[:90%], train[90%:], test */
        static const char *const train[] = {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                                            "data_batch_4.bin", "data_batch_5.bin"};
        static const char *const test[] = {"test_batch.bin"};
        rc = split == TASK_TEST ? read_cifar(dir, test, 1, &s) : read_cifar(dir, train, 5, &s);
        source = "official";
    } else {
        snprintf(dir, sizeof dir, "%s/fashion-mnist", data_dir ? data_dir : lra_data_root());
        if (data_dir && !is_file(dir, "t10k-images-idx3-ubyte"))
            return attn_fail(ATTN_EINVAL, "%s: expected CIFAR-10 binary batches (cifar-10-batches-bin/test_batch.bin) "
                             "or fashion-mnist/*-ubyte, found neither", data_dir);
        rc = read_fashion(dir, split == TASK_TEST ? "t10k" : "train", &s);
        source = "stand-in:fashion-mnist";
    }
    if (rc)
        return rc;
    count = s.count;
    if (split != TASK_TEST) { /* 90 % train, the last 10 % validation */
        int64_t cut = s.count * 9 / 10;
        first = split == TASK_TRAIN ? 0 : cut;
        count = split == TASK_TRAIN ? cut : s.count - cut;
    }
    if (n > count) {
        image_set_free(&s);
        return attn_fail(ATTN_EINVAL, "task image: the %s split has %lld examples, %lld asked for",
                         split == TASK_TRAIN ? "train" : split == TASK_VALID ? "valid" : "test", (long long)count,
                         (long long)n);
    }
    int64_t side = pad32 && s.rows < 32 ? 32 : s.rows, off = (side - s.rows) / 2, *idx = NULL;
    if ((rc = lra_pick(seed, 100 + (uint64_t)split, count, n, &idx)) != 0 ||
        (rc = task_data_alloc(out, "image", TASK_CLASSIFY, n, 1 + side * side)) != 0) {
        free(idx);
        image_set_free(&s);
        return rc;
    }
    out->vocab = LRA_IMAGE_VOCAB, out->n_classes = 10;
    snprintf(out->data_source, sizeof out->data_source, "%s", source);
    snprintf(out->meta, sizeof out->meta, "max_len=%lld;side=%lld", (long long)out->len, (long long)side);
    for (int64_t i = 0; i < n; i++) {
        int64_t e = first + idx[i];
        int32_t *t = task_tokens(out, i);
        t[0] = LRA_IMAGE_CLS; /* zero padding around a smaller image (pad32) stays 0 = black */
        for (int64_t y = 0; y < s.rows; y++)
            for (int64_t x = 0; x < s.cols; x++)
                t[1 + (y + off) * side + x + off] = s.pixels[e * s.rows * s.cols + y * s.cols + x];
        out->labels[i] = s.labels[e];
    }
    free(idx);
    image_set_free(&s);
    return 0;
}

const task_def task_lra_image = {
    .name = "image",
    .suite = "lra",
    .description = "LRA Image: 10 classes from grayscale pixel tokens (official CIFAR-10 via --data; "
                   "stand-in Fashion-MNIST)",
    .params = image_params,
    .make = image_make,
};
