/* Checkpoint writer and validating reader (format in checkpoint.h). */
#include "checkpoint.h"

#include "common/atomic_file.h"
#include "common/attn_error.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Fields are written as the host lays them out in memory: the format is
 * little-endian, IEEE binary32, so the host must be too. */
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "checkpoint format assumes a little-endian host");
_Static_assert(sizeof(float) == 4, "checkpoint format stores IEEE binary32 floats");

#define CKPT_PREFIX 40                 /* magic .. config length */
#define CKPT_MAX_HEADER (1ull << 30)   /* a sane bound before allocating the header */
#define CKPT_MAX_PARAMS (1ull << 56)   /* keeps every size computation inside u64 */
#define CKPT_CHUNK (1u << 20)

/* ---- CRC32 (IEEE 802.3, reflected polynomial 0xEDB88320), table per use
 * so concurrent saves share nothing. */
typedef struct {
    uint32_t table[256];
    uint32_t crc;
} crc32_ctx;

static void crc32_init(crc32_ctx *c)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t x = i;
        for (int k = 0; k < 8; k++)
            x = (x >> 1) ^ (0xEDB88320u & (0u - (x & 1u)));
        c->table[i] = x;
    }
    c->crc = 0xFFFFFFFFu;
}

static void crc32_update(crc32_ctx *c, const void *data, size_t n)
{
    const unsigned char *p = data;
    uint32_t x = c->crc;
    for (size_t i = 0; i < n; i++)
        x = c->table[(x ^ p[i]) & 0xFFu] ^ (x >> 8);
    c->crc = x;
}

static uint32_t crc32_final(const crc32_ctx *c) { return c->crc ^ 0xFFFFFFFFu; }

/* ---- the model's tensor table */

/* The element count of dims[0..rank) (each >= 0), or -1 when it does not
 * fit in int64: an empty dim makes the tensor empty whatever the others say. */
static int64_t numel(int rank, const int64_t *dims)
{
    for (int d = 0; d < rank; d++)
        if (dims[d] == 0)
            return 0;
    int64_t n = 1;
    for (int d = 0; d < rank; d++) {
        if (n > INT64_MAX / dims[d])
            return -1;
        n *= dims[d];
    }
    return n;
}

static void fmt_shape(char *buf, size_t cap, int rank, const int64_t *dims)
{
    size_t len = (size_t)snprintf(buf, cap, "[");
    for (int d = 0; d < rank && len < cap; d++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%" PRId64, d ? "," : "", dims[d]);
    if (len < cap)
        snprintf(buf + len, cap - len, "]");
}

/* Checks one tensor entry (the model's or the file's): `who` names it. */
static int check_tensor(const char *path, const char *who, const char *name, size_t name_len, int rank,
                        const int64_t *dims, uint64_t offset, uint64_t nparams)
{
    if (name_len == 0 || name_len > CKPT_MAX_NAME)
        return attn_fail(ATTN_EINVAL, "%s: %s: expected a name of 1..%d bytes, found %zu", path, who,
                         CKPT_MAX_NAME, name_len);
    if (rank < 0 || rank > CKPT_MAX_RANK)
        return attn_fail(ATTN_EINVAL, "%s: %s '%.*s': expected rank 0..%d, found %d", path, who,
                         (int)name_len, name, CKPT_MAX_RANK, rank);
    for (int d = 0; d < rank; d++)
        if (dims[d] < 0)
            return attn_fail(ATTN_EINVAL, "%s: %s '%.*s': expected dims >= 0, found %" PRId64 " in dim %d",
                             path, who, (int)name_len, name, dims[d], d);
    int64_t n = numel(rank, dims);
    if (n < 0) {
        char shape[160];
        fmt_shape(shape, sizeof shape, rank, dims);
        return attn_fail(ATTN_EINVAL, "%s: %s '%.*s': shape %s has more than 2^63 elements", path, who,
                         (int)name_len, name, shape);
    }
    if (offset > nparams || (uint64_t)n > nparams - offset)
        return attn_fail(ATTN_EINVAL, "%s: %s '%.*s': expected offset + size <= %" PRIu64 " parameters, "
                         "found offset %" PRIu64 " size %" PRId64, path, who, (int)name_len, name, nparams,
                         offset, n);
    return 0;
}

static int check_state(const char *path, const ckpt_state *s)
{
    if (!s->params || s->nparams == 0 || s->nparams > CKPT_MAX_PARAMS)
        return attn_fail(ATTN_EINVAL, "%s: expected a parameter blob of 1..2^56 floats, found %zu at %p",
                         path, s->nparams, (void *)s->params);
    if (s->ntensors < 0 || (s->ntensors > 0 && !s->tensors))
        return attn_fail(ATTN_EINVAL, "%s: expected a tensor table of %d entries, found none", path,
                         s->ntensors);
    for (int i = 0; i < s->ntensors; i++) {
        const ckpt_tensor *t = &s->tensors[i];
        int rc = check_tensor(path, "model tensor", t->name ? t->name : "", t->name ? strlen(t->name) : 0,
                              t->rank, t->dims, t->offset, s->nparams);
        if (rc)
            return rc;
    }
    if (s->opt && s->opt->n != s->nparams)
        return attn_fail(ATTN_EINVAL, "%s: expected an optimizer over %zu parameters, found %zu", path,
                         s->nparams, s->opt->n);
    return 0;
}

static int check_json(const char *path, const char *json, size_t len)
{
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (!root) {
        /* the error pointer is into json, which need not be NUL-terminated */
        const char *at = cJSON_GetErrorPtr();
        long pos = at && at >= json && at <= json + len ? (long)(at - json) : -1;
        return attn_fail(ATTN_EINVAL, "%s: expected the config to be JSON text, found a parse error at "
                         "byte %ld of it", path, pos);
    }
    cJSON_Delete(root);
    return 0;
}

/* ---- writer */

typedef struct {
    FILE *f;
    crc32_ctx crc;
    uint64_t pos;
    int err; /* errno of the first failed write */
} ckpt_writer;

static void put(ckpt_writer *w, const void *p, size_t n)
{
    if (w->err || n == 0)
        return;
    crc32_update(&w->crc, p, n);
    errno = 0;
    if (fwrite(p, 1, n, w->f) != n)
        w->err = errno ? errno : EIO;
    w->pos += n;
}

static void put_u32(ckpt_writer *w, uint32_t x) { put(w, &x, sizeof x); }
static void put_u64(ckpt_writer *w, uint64_t x) { put(w, &x, sizeof x); }

static uint64_t header_length(const char *config_json, const ckpt_state *s)
{
    uint64_t h = CKPT_PREFIX + strlen(config_json) + 4;
    for (int i = 0; i < s->ntensors; i++)
        h += 4 + strlen(s->tensors[i].name) + 4 + 4 + 8 * (uint64_t)s->tensors[i].rank + 8;
    return h;
}

static void write_all(ckpt_writer *w, const char *config_json, const ckpt_state *s)
{
    unsigned flags = (s->opt ? CKPT_HAS_OPTIM : 0) | (s->train ? CKPT_HAS_TRAIN : 0) | (s->best ? CKPT_HAS_BEST : 0);
    put(w, CKPT_MAGIC, 8);
    put_u32(w, CKPT_VERSION);
    put_u32(w, flags);
    put_u64(w, header_length(config_json, s));
    put_u64(w, s->nparams);
    put_u64(w, strlen(config_json));
    put(w, config_json, strlen(config_json));
    put_u32(w, (uint32_t)s->ntensors);
    for (int i = 0; i < s->ntensors; i++) {
        const ckpt_tensor *t = &s->tensors[i];
        put_u32(w, (uint32_t)strlen(t->name));
        put(w, t->name, strlen(t->name));
        put_u32(w, CKPT_DTYPE_F32);
        put_u32(w, (uint32_t)t->rank);
        put(w, t->dims, 8 * (size_t)t->rank);
        put_u64(w, t->offset);
    }
    put(w, s->params, s->nparams * sizeof(float));
    if (s->opt) {
        put_u64(w, (uint64_t)s->opt->step);
        put(w, s->opt->m, s->nparams * sizeof(float));
        put(w, s->opt->v, s->nparams * sizeof(float));
    }
    if (s->train) {
        put_u64(w, (uint64_t)s->train->step);
        put(w, s->train->rng.s, sizeof s->train->rng.s);
    }
    if (s->best)
        put(w, s->best, s->nparams * sizeof(float));
    uint32_t crc = crc32_final(&w->crc);
    put(w, &crc, sizeof crc); /* after the CRC it covers */
}

int ckpt_check_writable(const char *path)
{
    char tmp[PATH_MAX];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", path) >= sizeof tmp)
        return attn_fail(ATTN_EINVAL, "%s: expected a path shorter than %d bytes", path, PATH_MAX - 4);
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return attn_fail(ATTN_EINVAL, "%s: expected a checkpoint file, found a directory", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return attn_fail(ATTN_EIO, "%s: cannot create: %s", tmp, strerror(errno));
    close(fd);
    unlink(tmp);
    return 0;
}

int ckpt_save(const char *path, const char *config_json, const ckpt_state *s)
{
    int rc = check_state(path, s);
    if (rc)
        return rc;
    if (!config_json)
        return attn_fail(ATTN_EINVAL, "%s: expected a config JSON string, found NULL", path);
    if ((rc = check_json(path, config_json, strlen(config_json))))
        return rc;
    /* a temporary file renamed over the path: a crash never leaves a torn checkpoint */
    atomic_file out;
    if ((rc = atomic_file_open(&out, path, "wb")))
        return rc;
    ckpt_writer w = {.f = out.f};
    crc32_init(&w.crc);
    write_all(&w, config_json, s);
    return atomic_file_commit(&out, w.err);
}

/* ---- reader */

typedef struct {
    const char *name; /* into the header buffer, not NUL-terminated */
    uint32_t name_len, dtype;
    int rank;
    int64_t dims[CKPT_MAX_RANK];
    uint64_t offset;
} file_tensor;

typedef struct {
    const char *path;
    FILE *f;
    uint32_t version, flags, ntensors;
    uint64_t size, header_len, nparams, config_len, total;
    unsigned char *hdr; /* [header_len] */
    const char *config; /* into hdr, config_len bytes */
    file_tensor *tensors;
} ckpt_reader;

static uint32_t get_u32(const unsigned char *p)
{
    uint32_t x;
    memcpy(&x, p, sizeof x);
    return x;
}

static uint64_t get_u64(const unsigned char *p)
{
    uint64_t x;
    memcpy(&x, p, sizeof x);
    return x;
}

static int truncated(const ckpt_reader *r, uint64_t expected)
{
    return attn_fail(ATTN_EINVAL, "%s: truncated at byte %" PRIu64 " (expected %" PRIu64 ")", r->path, r->size,
                     expected);
}

static int read_error(const ckpt_reader *r, const char *what)
{
    return attn_fail(ATTN_EIO, "%s: cannot read %s: %s", r->path, what,
                     ferror(r->f) ? strerror(errno) : "unexpected end of file");
}

/* Magic, version, flags and the sizes they imply, checked against the file
 * size before anything else is read. */
static int read_prefix(ckpt_reader *r)
{
    unsigned char p[CKPT_PREFIX] = {0};
    size_t got = fread(p, 1, sizeof p, r->f);
    if (got < sizeof p && ferror(r->f))
        return read_error(r, "the header");
    if (memcmp(p, CKPT_MAGIC, got < 8 ? got : 8) != 0)
        return attn_fail(ATTN_EINVAL, "%s: bad magic (expected \"%s\" at byte 0: not an attnbench checkpoint)",
                         r->path, CKPT_MAGIC);
    if (got >= 12 && (r->version = get_u32(p + 8)) != CKPT_VERSION)
        return attn_fail(ATTN_EUNSUPPORTED, "%s: version %" PRIu32 " not supported (expected %u)", r->path,
                         r->version, CKPT_VERSION);
    if (got < sizeof p)
        return truncated(r, CKPT_PREFIX);
    r->flags = get_u32(p + 12);
    r->header_len = get_u64(p + 16);
    r->nparams = get_u64(p + 24);
    r->config_len = get_u64(p + 32);
    if (r->flags & ~(CKPT_HAS_OPTIM | CKPT_HAS_TRAIN | CKPT_HAS_BEST))
        return attn_fail(ATTN_EINVAL, "%s: expected flags within 0x%x, found 0x%" PRIx32, r->path,
                         CKPT_HAS_OPTIM | CKPT_HAS_TRAIN | CKPT_HAS_BEST, r->flags);
    if (r->header_len > CKPT_MAX_HEADER || r->config_len > r->header_len ||
        r->header_len < CKPT_PREFIX + r->config_len + 4)
        return attn_fail(ATTN_EINVAL, "%s: expected a header of %d..2^30 bytes holding the %" PRIu64
                         "-byte config, found header length %" PRIu64, r->path, CKPT_PREFIX + 4,
                         r->config_len, r->header_len);
    if (r->nparams == 0 || r->nparams > CKPT_MAX_PARAMS)
        return attn_fail(ATTN_EINVAL, "%s: expected 1..2^56 parameters, found %" PRIu64, r->path, r->nparams);
    r->total = r->header_len + 4 * r->nparams + 4;
    if (r->flags & CKPT_HAS_OPTIM)
        r->total += 8 + 8 * r->nparams;
    if (r->flags & CKPT_HAS_TRAIN)
        r->total += 8 + sizeof(((attn_rng *)0)->s);
    if (r->flags & CKPT_HAS_BEST)
        r->total += 4 * r->nparams;
    if (r->size < r->total)
        return truncated(r, r->total);
    if (r->size > r->total)
        return attn_fail(ATTN_EINVAL, "%s: expected %" PRIu64 " bytes, found %" PRIu64 " (trailing data)",
                         r->path, r->total, r->size);
    return 0;
}

/* Reads the header into memory and streams the rest of the file through
 * the CRC, so nothing is trusted (or written into the model) before the
 * checksum matches. */
static int verify_checksum(ckpt_reader *r)
{
    crc32_ctx crc;
    crc32_init(&crc);
    r->hdr = malloc(r->header_len);
    unsigned char *chunk = malloc(CKPT_CHUNK);
    int rc = 0;
    if (!r->hdr || !chunk)
        rc = attn_fail(ATTN_ENOMEM, "%s: cannot allocate %" PRIu64 " bytes to read the header", r->path,
                       r->header_len + CKPT_CHUNK);
    else if (fseek(r->f, 0, SEEK_SET) != 0 || fread(r->hdr, 1, r->header_len, r->f) != r->header_len)
        rc = read_error(r, "the header");
    if (!rc)
        crc32_update(&crc, r->hdr, r->header_len);
    for (uint64_t left = r->total - 4 - r->header_len; !rc && left > 0;) {
        size_t n = left < CKPT_CHUNK ? (size_t)left : CKPT_CHUNK;
        if (fread(chunk, 1, n, r->f) != n)
            rc = read_error(r, "the data");
        crc32_update(&crc, chunk, n);
        left -= n;
    }
    if (!rc && fread(chunk, 1, 4, r->f) != 4)
        rc = read_error(r, "the checksum");
    if (!rc && get_u32(chunk) != crc32_final(&crc))
        rc = attn_fail(ATTN_EINVAL, "%s: checksum mismatch (file damaged)", r->path);
    free(chunk);
    return rc;
}

/* Cursor over the header: every field is bounds-checked against header_len. */
typedef struct {
    const ckpt_reader *r;
    uint64_t pos;
} cursor;

static int take(cursor *c, uint64_t n, const unsigned char **out, const char *what)
{
    if (n > c->r->header_len - c->pos)
        return attn_fail(ATTN_EINVAL, "%s: expected the %s at byte %" PRIu64 " inside the %" PRIu64
                         "-byte header, found it runs past the end", c->r->path, what, c->pos,
                         c->r->header_len);
    *out = c->r->hdr + c->pos;
    c->pos += n;
    return 0;
}

static int parse_tensor(cursor *c, file_tensor *t)
{
    const unsigned char *p = NULL;
    int rc = take(c, 4, &p, "tensor name length");
    if (!rc && !(rc = take(c, t->name_len = get_u32(p), &p, "tensor name")))
        t->name = (const char *)p;
    if (!rc && !(rc = take(c, 8, &p, "tensor dtype and rank"))) {
        t->dtype = get_u32(p);
        uint32_t rank = get_u32(p + 4);
        if (rank > CKPT_MAX_RANK)
            return attn_fail(ATTN_EINVAL, "%s: tensor '%.*s': expected rank 0..%d, found %" PRIu32,
                             c->r->path, (int)t->name_len, t->name, CKPT_MAX_RANK, rank);
        t->rank = (int)rank;
    }
    if (!rc && !(rc = take(c, 8 * (uint64_t)t->rank, &p, "tensor dims")))
        memcpy(t->dims, p, 8 * (size_t)t->rank);
    if (!rc && !(rc = take(c, 8, &p, "tensor offset")))
        t->offset = get_u64(p);
    if (!rc && t->dtype != CKPT_DTYPE_F32)
        rc = attn_fail(ATTN_EUNSUPPORTED, "%s: tensor '%.*s' dtype %" PRIu32 " not supported (expected %u = f32)",
                       c->r->path, (int)t->name_len, t->name, t->dtype, CKPT_DTYPE_F32);
    if (!rc)
        rc = check_tensor(c->r->path, "tensor", t->name, t->name_len, t->rank, t->dims, t->offset,
                          c->r->nparams);
    return rc;
}

static int parse_header(ckpt_reader *r)
{
    cursor c = {.r = r, .pos = CKPT_PREFIX};
    const unsigned char *p = NULL;
    int rc = take(&c, r->config_len, &p, "config JSON");
    if (rc)
        return rc;
    r->config = (const char *)p;
    if ((rc = check_json(r->path, r->config, r->config_len)) || (rc = take(&c, 4, &p, "tensor count")))
        return rc;
    r->ntensors = get_u32(p);
    if (r->ntensors > r->header_len / 24) /* smallest entry: 24 bytes */
        return attn_fail(ATTN_EINVAL, "%s: expected at most %" PRIu64 " tensors in the header, found %" PRIu32,
                         r->path, r->header_len / 24, r->ntensors);
    r->tensors = calloc(r->ntensors ? r->ntensors : 1, sizeof *r->tensors);
    if (!r->tensors)
        return attn_fail(ATTN_ENOMEM, "%s: cannot allocate the tensor table", r->path);
    for (uint32_t i = 0; i < r->ntensors && !rc; i++)
        rc = parse_tensor(&c, &r->tensors[i]);
    if (!rc && c.pos != r->header_len)
        rc = attn_fail(ATTN_EINVAL, "%s: expected the header to end at byte %" PRIu64 ", found %" PRIu64
                       " bytes of it parsed", r->path, r->header_len, c.pos);
    return rc;
}

static void reader_close(ckpt_reader *r)
{
    if (r->f)
        fclose(r->f);
    free(r->hdr);
    free(r->tensors);
}

/* Everything but the model comparison: prefix, size, CRC, header. */
static int reader_open(ckpt_reader *r, const char *path)
{
    memset(r, 0, sizeof *r);
    r->path = path;
    struct stat st;
    if (!(r->f = fopen(path, "rb")))
        return attn_fail(ATTN_EIO, "%s: cannot open: %s", path, strerror(errno));
    if (fstat(fileno(r->f), &st) != 0)
        return attn_fail(ATTN_EIO, "%s: cannot stat: %s", path, strerror(errno));
    r->size = (uint64_t)st.st_size;
    int rc = read_prefix(r);
    if (!rc)
        rc = verify_checksum(r);
    if (!rc)
        rc = parse_header(r);
    return rc;
}

static int match_model(const ckpt_reader *r, const ckpt_state *s)
{
    if (r->ntensors != (uint32_t)s->ntensors)
        return attn_fail(ATTN_EINVAL, "%s: %" PRIu32 " tensors do not match the model's %d", r->path,
                         r->ntensors, s->ntensors);
    for (int i = 0; i < s->ntensors; i++) {
        const file_tensor *f = &r->tensors[i];
        const ckpt_tensor *m = &s->tensors[i];
        char fs[128], ms[128];
        if (f->name_len != strlen(m->name) || memcmp(f->name, m->name, f->name_len) != 0)
            return attn_fail(ATTN_EINVAL, "%s: tensor %d is '%.*s', the model's is '%s'", r->path, i,
                             (int)f->name_len, f->name, m->name);
        if (f->rank != m->rank || memcmp(f->dims, m->dims, 8 * (size_t)f->rank) != 0) {
            fmt_shape(fs, sizeof fs, f->rank, f->dims);
            fmt_shape(ms, sizeof ms, m->rank, m->dims);
            return attn_fail(ATTN_EINVAL, "%s: tensor '%s' shape %s does not match the model's %s", r->path,
                             m->name, fs, ms);
        }
        if (f->offset != m->offset)
            return attn_fail(ATTN_EINVAL, "%s: tensor '%s' at offset %" PRIu64 " does not match the model's %"
                             PRIu64, r->path, m->name, f->offset, m->offset);
    }
    /* after the table, whose errors say more about what differs */
    if (r->nparams != s->nparams)
        return attn_fail(ATTN_EINVAL, "%s: %" PRIu64 " parameters do not match the model's %zu", r->path,
                         r->nparams, s->nparams);
    if (s->opt && !(r->flags & CKPT_HAS_OPTIM))
        return attn_fail(ATTN_EINVAL, "%s: expected optimizer state to resume from, found a checkpoint "
                         "without it (load without an optimizer to take only the parameters)", r->path);
    if (s->train && !(r->flags & CKPT_HAS_TRAIN))
        return attn_fail(ATTN_EINVAL, "%s: expected the training step and RNG state, found a checkpoint "
                         "without them", r->path);
    if (s->best && !(r->flags & CKPT_HAS_BEST))
        return attn_fail(ATTN_EINVAL, "%s: expected the best-validation parameters, found a checkpoint "
                         "without them", r->path);
    return 0;
}

/* Reads n bytes into dst, or skips them when dst is NULL. */
static int read_into(const ckpt_reader *r, void *dst, uint64_t n, const char *what)
{
    if (!dst)
        return fseek(r->f, (long)n, SEEK_CUR) != 0 ? read_error(r, what) : 0;
    return fread(dst, 1, n, r->f) != n ? read_error(r, what) : 0;
}

static int read_data(const ckpt_reader *r, const ckpt_state *s)
{
    const uint64_t blob = r->nparams * sizeof(float);
    int64_t opt_step = 0, train_step = 0;
    if (fseek(r->f, (long)r->header_len, SEEK_SET) != 0)
        return read_error(r, "the parameters");
    int rc = read_into(r, s->params, blob, "the parameters");
    if (!rc && (r->flags & CKPT_HAS_OPTIM)) {
        rc = read_into(r, &opt_step, 8, "the optimizer step");
        if (!rc)
            rc = read_into(r, s->opt ? s->opt->m : NULL, blob, "the first moments");
        if (!rc)
            rc = read_into(r, s->opt ? s->opt->v : NULL, blob, "the second moments");
        if (!rc && s->opt)
            s->opt->step = opt_step;
    }
    if (!rc && (r->flags & CKPT_HAS_TRAIN)) { /* skipped when not asked for: the best copy follows */
        rc = read_into(r, s->train ? &train_step : NULL, 8, "the training step");
        if (!rc)
            rc = read_into(r, s->train ? s->train->rng.s : NULL, sizeof s->train->rng.s, "the RNG state");
        if (!rc && s->train)
            s->train->step = train_step;
    }
    if (!rc && (r->flags & CKPT_HAS_BEST))
        rc = read_into(r, s->best, blob, "the best parameters");
    return rc;
}

int ckpt_load(const char *path, const ckpt_state *s)
{
    int rc = check_state(path, s);
    if (rc)
        return rc;
    ckpt_reader r;
    rc = reader_open(&r, path);
    if (!rc)
        rc = match_model(&r, s);
    if (!rc)
        rc = read_data(&r, s);
    reader_close(&r);
    return rc;
}

int ckpt_inspect(const char *path, char **config_json, size_t *nparams, unsigned *flags)
{
    ckpt_reader r;
    int rc = reader_open(&r, path);
    if (!rc && config_json) {
        if (!(*config_json = malloc(r.config_len + 1)))
            rc = attn_fail(ATTN_ENOMEM, "%s: cannot allocate the config", path);
        else {
            memcpy(*config_json, r.config, r.config_len);
            (*config_json)[r.config_len] = '\0';
        }
    }
    if (!rc && nparams)
        *nparams = (size_t)r.nparams;
    if (!rc && flags)
        *flags = r.flags;
    reader_close(&r);
    return rc;
}
