/* LRA ListOps (Nangia and Bowman 2018; Tay et al. 2021): the value (0-9) of a nested prefix expression
 * over MAX, MIN, MED (median) and SM (sum mod 10).
 *
 * Generated (default): the reference algorithm with attnbench's RNG, so the
 * same task with a different sample (data_source "generated"): children are
 * drawn before their operator, trees of 500 < len < 2000 symbols are kept,
 * duplicates within a split are rejected, and the first n trees of a split's
 * stream are the same whatever n is. Official: basic_{train,val,test}.tsv
 * (Source<TAB>Target) from --data DIR (or DIR/listops-1000), read with
 * libcsv. Tokens: 0 pad, 1 CLS, 2..11 digits, 12..15 [MIN [MAX [MED [SM,
 * 16 ']'; parentheses are dropped as in the reference tokenizer. */
#include "lra.h"

#include "common/rng.h"

#include <csv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

enum { LO_PAD = 0, LO_CLS = 1, LO_DIGIT = 2, LO_MIN = 12, LO_MAX, LO_MED, LO_SM, LO_CLOSE, LO_VOCAB };

static const char *const op_names[4] = {"[MIN", "[MAX", "[MED", "[SM"};

typedef struct {
    int min_len, max_len, max_depth, max_args;
    double value_p;
} listops_cfg;

/* ---------------------------------------------------------------- evaluation */

static int cmp_int(const void *a, const void *b) { return *(const int *)a - *(const int *)b; }

/* int(numpy.median): the middle value, or floor of the two middle values' mean. */
static int median_of(int *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_int);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static int apply_op(int op, int *v, int n)
{
    int r = v[0];
    for (int i = 1; i < n; i++)
        r = op == LO_MIN ? (v[i] < r ? v[i] : r) : op == LO_MAX ? (v[i] > r ? v[i] : r) : r + v[i];
    return op == LO_MED ? median_of(v, n) : op == LO_SM ? r % 10 : r;
}

/* ---------------------------------------------------------------- generator */

typedef struct {
    attn_rng r;
    const listops_cfg *c;
    int32_t *tok;     /* prefix serialisation, without CLS */
    int len, cap;     /* len > cap: too long, rejected */
} gen_state;

/* Appends one subtree in prefix order; returns its value. Children are drawn
 * before the operator (the reference's RNG order); the operator slot is
 * reserved first and filled afterwards. */
static int gen(gen_state *g, int depth)
{
    if (g->len > g->cap)
        return 0; /* already too long to be kept: stop drawing (the tree is rejected) */
    double r = depth < g->c->max_depth ? attn_rng_uniform(&g->r) : 1.0;
    if (r > g->c->value_p) {
        int d = (int)attn_rng_uint_below(&g->r, 10);
        if (g->len < g->cap)
            g->tok[g->len] = LO_DIGIT + d;
        g->len++;
        return d;
    }
    int n = 2 + (int)attn_rng_uint_below(&g->r, (uint64_t)g->c->max_args - 1), slot = g->len++, v[64];
    for (int i = 0; i < n; i++)
        v[i] = gen(g, depth + 1);
    int op = LO_MIN + (int)attn_rng_uint_below(&g->r, 4);
    if (slot < g->cap)
        g->tok[slot] = op;
    if (g->len < g->cap)
        g->tok[g->len] = LO_CLOSE;
    g->len++;
    return apply_op(op, v, n);
}

/* A set of 64-bit tree hashes (open addressing). */
typedef struct {
    uint64_t *slot;
    size_t cap, n;
} hash_set;

static int hash_add(hash_set *h, uint64_t x) /* 1 if new */
{
    x |= 1; /* 0 marks an empty slot */
    if (2 * (h->n + 1) > h->cap) {
        size_t cap = h->cap ? 2 * h->cap : 1024;
        uint64_t *s = calloc(cap, sizeof *s);
        if (!s)
            return -1;
        for (size_t i = 0; i < h->cap; i++)
            for (size_t j = h->slot[i] % cap; h->slot[i]; j = (j + 1) % cap)
                if (!s[j]) {
                    s[j] = h->slot[i];
                    break;
                }
        free(h->slot);
        h->slot = s, h->cap = cap;
    }
    for (size_t j = x % h->cap;; j = (j + 1) % h->cap) {
        if (h->slot[j] == x)
            return 0;
        if (!h->slot[j]) {
            h->slot[j] = x, h->n++;
            return 1;
        }
    }
}

static uint64_t fnv_tokens(const int32_t *t, int n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (int i = 0; i < n; i++)
        h = (h ^ (uint64_t)t[i]) * 0x100000001b3ull;
    return h;
}

/* Trees drawn in a row without one kept before the generator gives up: the
 * parameters then allow too few distinct trees of the asked lengths (with
 * max_depth=1 every tree is one digit), and drawing on would never end. The
 * default settings keep about one draw in twelve. */
#define LISTOPS_MAX_REJECTS 100000

static int generate(const listops_cfg *c, task_split split, uint64_t seed, task_data *out)
{
    gen_state g = {.c = c, .cap = c->max_len};
    g.tok = malloc(sizeof *g.tok * (size_t)c->max_len);
    hash_set seen = {0};
    attn_rng_seed_item(&g.r, seed, 200 + (uint64_t)split, 0);
    int rc = g.tok ? 0 : attn_fail(ATTN_ENOMEM, "listops: out of memory");
    for (int64_t i = 0, rejects = 0; !rc && i < out->n;) {
        if (rejects == LISTOPS_MAX_REJECTS) {
            rc = attn_fail(ATTN_EINVAL, "task listops: expected %lld distinct trees with min_len < length < "
                           "max_len, found %lld, then none in %d draws (min_len=%d, max_len=%d, max_depth=%d, "
                           "max_args=%d allow too few)", (long long)out->n, (long long)i, LISTOPS_MAX_REJECTS,
                           c->min_len, c->max_len, c->max_depth, c->max_args);
            break;
        }
        rejects++;
        g.len = 0;
        int value = gen(&g, 1);
        if (g.len <= c->min_len || g.len >= c->max_len) /* 500 < len < 2000, strict */
            continue;
        int fresh = hash_add(&seen, fnv_tokens(g.tok, g.len));
        if (fresh < 0)
            rc = attn_fail(ATTN_ENOMEM, "listops: out of memory");
        if (fresh != 1)
            continue;
        rejects = 0;
        int32_t *t = task_tokens(out, i);
        t[0] = LO_CLS;
        memcpy(t + 1, g.tok, sizeof *t * (size_t)g.len);
        out->lengths[i] = g.len + 1;
        out->labels[i] = value;
        i++;
    }
    free(g.tok);
    free(seen.slot);
    return rc;
}

/* ---------------------------------------------------------------- official TSV */

typedef struct {
    const char *path;
    task_data *out;       /* rows go to out when reading, else only counted */
    int64_t line, row, col, truncated;
    int32_t *tok;
    int ntok, cap, label, rc;
    const int64_t *want; /* file row -> output index, or -1 */
} tsv_state;

static int token_id(const char *s, size_t n)
{
    if (n == 1 && s[0] >= '0' && s[0] <= '9')
        return LO_DIGIT + s[0] - '0';
    if (n == 1 && s[0] == ']')
        return LO_CLOSE;
    for (int o = 0; o < 4; o++)
        if (strlen(op_names[o]) == n && !memcmp(s, op_names[o], n))
            return LO_MIN + o;
    return -1;
}

static void on_field(void *data, size_t n, void *ud)
{
    tsv_state *s = ud;
    const char *f = data ? data : "";
    if (s->rc)
        return;
    if (s->line == 1) { /* header */
        static const char *const want[2] = {"Source", "Target"};
        if (s->col < 2 && (strlen(want[s->col]) != n || memcmp(f, want[s->col], n)))
            s->rc = attn_fail(ATTN_EINVAL, "%s:1: column %lld: expected header '%s', found '%.*s'", s->path,
                              (long long)s->col + 1, want[s->col], (int)(n > 40 ? 40 : n), f);
    } else if (s->col == 0) {
        s->ntok = 0;
        for (size_t i = 0; i < n && !s->rc;) {
            while (i < n && f[i] == ' ')
                i++;
            size_t j = i;
            while (j < n && f[j] != ' ')
                j++;
            if (j == i)
                break;
            if (!((j - i == 1) && (f[i] == '(' || f[i] == ')'))) {
                int id = token_id(f + i, j - i);
                if (id < 0)
                    s->rc = attn_fail(ATTN_EINVAL, "%s:%lld: Source: expected digits, [MIN [MAX [MED [SM ] ( ), "
                                      "found '%.*s'", s->path, (long long)s->line, (int)(j - i > 20 ? 20 : j - i), f + i);
                else if (s->ntok < s->cap)
                    s->tok[s->ntok++] = id;
                else
                    s->ntok = s->cap + 1; /* longer than the sequence: truncated below */
            }
            i = j;
        }
    } else if (s->col == 1) {
        char *end, buf[32];
        snprintf(buf, sizeof buf, "%.*s", (int)(n < 31 ? n : 31), f);
        long v = strtol(buf, &end, 10);
        if (!n || *end || v < 0 || v > 9)
            s->rc = attn_fail(ATTN_EINVAL, "%s:%lld: Target: expected a digit 0-9, found '%s'", s->path,
                              (long long)s->line, buf);
        s->label = (int)v;
    }
    s->col++;
}

static void on_row(int c, void *ud)
{
    (void)c;
    tsv_state *s = ud;
    if (!s->rc && s->col != 2)
        s->rc = attn_fail(ATTN_EINVAL, "%s:%lld: expected 2 tab-separated fields (Source, Target), found %lld",
                          s->path, (long long)s->line, (long long)s->col);
    if (!s->rc && s->line > 1) {
        int64_t o = s->want ? s->want[s->row] : -1;
        if (o >= 0) {
            int n = s->ntok > s->cap ? s->cap : s->ntok;
            s->truncated += s->ntok > s->cap;
            int32_t *t = task_tokens(s->out, o);
            t[0] = LO_CLS;
            memcpy(t + 1, s->tok, sizeof *t * (size_t)n);
            s->out->lengths[o] = n + 1;
            s->out->labels[o] = s->label;
        }
        s->row++;
    }
    s->line++;
    s->col = 0;
}

/* Parses the file; with want == NULL only counts its rows into s->row. */
static int read_tsv(tsv_state *s)
{
    unsigned char *b;
    size_t n;
    int rc = lra_read_file(s->path, (size_t)1 << 31, &b, &n);
    if (rc)
        return rc;
    struct csv_parser p;
    csv_init(&p, CSV_APPEND_NULL);
    csv_set_delim(&p, '\t');
    csv_set_quote(&p, '\a'); /* quotes are data in these files, not delimiters */
    s->line = 1, s->row = 0, s->col = 0;
    if (csv_parse(&p, b, n, on_field, on_row, s) != n && !s->rc)
        s->rc = attn_fail(ATTN_EINVAL, "%s:%lld: %s", s->path, (long long)s->line, csv_strerror(csv_error(&p)));
    csv_fini(&p, on_field, on_row, s);
    csv_free(&p);
    free(b);
    return s->rc;
}

static int official(const char *dir, task_split split, uint64_t seed, int64_t n, int64_t len, task_data *out)
{
    static const char *const names[3] = {"basic_train.tsv", "basic_val.tsv", "basic_test.tsv"};
    /* the release unpacks to lra_release/listops-1000/; --data may name any level of it */
    static const char *const sub[3] = {"/listops-1000", "/lra_release/listops-1000", ""};
    char path[1200];
    struct stat st;
    for (int k = 0; k < 3; k++) {
        snprintf(path, sizeof path, "%s%s/%s", dir, sub[k], names[split]);
        if (stat(path, &st) == 0)
            break;
    }
    tsv_state s = {.path = path, .cap = (int)len - 1};
    memset(out, 0, sizeof *out); /* freeable on every error path */
    s.tok = malloc(sizeof *s.tok * (size_t)len);
    int rc = s.tok ? read_tsv(&s) : attn_fail(ATTN_ENOMEM, "listops: out of memory");
    int64_t rows = s.row, *idx = NULL;
    if (!rc && s.line == 1)
        rc = attn_fail(ATTN_EINVAL, "%s: expected a header line (Source, Target) and examples, found an empty file",
                       path);
    if (!rc && rows == 0)
        rc = attn_fail(ATTN_EINVAL, "%s: expected examples after the header line, found none", path);
    if (!rc && n > rows)
        rc = attn_fail(ATTN_EINVAL, "%s: %lld examples, %lld asked for", path, (long long)rows, (long long)n);
    int64_t *want = NULL;
    if (!rc && !(rc = lra_pick(seed, 210 + (uint64_t)split, rows, n, &idx)) &&
        !(rc = task_data_alloc(out, "listops", TASK_CLASSIFY, n, len))) {
        want = malloc(sizeof *want * (size_t)rows);
        rc = want ? 0 : attn_fail(ATTN_ENOMEM, "listops: out of memory");
        for (int64_t r = 0; want && r < rows; r++)
            want[r] = -1;
        for (int64_t i = 0; want && i < n; i++)
            want[idx[i]] = i;
        s.want = want, s.out = out, s.rc = 0, s.truncated = 0;
        if (!rc)
            rc = read_tsv(&s);
        snprintf(out->meta, sizeof out->meta, "max_len=%lld;truncated=%lld", (long long)len, (long long)s.truncated);
        snprintf(out->data_source, sizeof out->data_source, "official");
        out->vocab = LO_VOCAB, out->n_classes = 10, out->pad = LO_PAD;
    }
    free(want);
    free(idx);
    free(s.tok);
    if (rc)
        task_data_free(out);
    return rc;
}

/* ---------------------------------------------------------------- task */

static const opt_def listops_params[] = {
    {.name = "min_len", .type = OPT_INT, .def = 500, .lo = 0, .hi = 1 << 20, .help = "fewest symbols (exclusive)"},
    {.name = "max_len", .type = OPT_INT, .def = 2000, .lo = 2, .hi = 1 << 20,
     .help = "most symbols (exclusive; sequences hold CLS + symbols)"},
    {.name = "max_depth", .type = OPT_INT, .def = 10, .lo = 1, .hi = 64, .help = "deepest nesting"},
    {.name = "max_args", .type = OPT_INT, .def = 10, .lo = 2, .hi = 64, .help = "most arguments of an operator"},
    {.name = "value_p", .type = OPT_DOUBLE, .def = 0.25, .lo = 0.01, .hi = 1.0,
     .help = "probability that an argument is a digit"},
    {0},
};

static int listops_make(const param_bag *params, task_split split, uint64_t seed, int64_t n, const char *data_dir,
                        task_data *out)
{
    int rc = task_params_check(listops_params, params, "listops");
    listops_cfg c = {
        .min_len = (int)task_param_int(listops_params, params, "min_len", &rc),
        .max_len = (int)task_param_int(listops_params, params, "max_len", &rc),
        .max_depth = (int)task_param_int(listops_params, params, "max_depth", &rc),
        .max_args = (int)task_param_int(listops_params, params, "max_args", &rc),
        .value_p = task_param_double(listops_params, params, "value_p", &rc),
    };
    if (rc)
        return rc;
    if (c.min_len + 1 >= c.max_len)
        return attn_fail(ATTN_EINVAL, "task listops: expected min_len + 1 < max_len, found %d and %d", c.min_len,
                         c.max_len);
    if (data_dir)
        return official(data_dir, split, seed, n, c.max_len, out);
    if ((rc = task_data_alloc(out, "listops", TASK_CLASSIFY, n, c.max_len)) != 0)
        return rc;
    out->vocab = LO_VOCAB, out->n_classes = 10, out->pad = LO_PAD;
    snprintf(out->meta, sizeof out->meta, "max_len=%d;min_len=%d;max_depth=%d;max_args=%d", c.max_len, c.min_len,
             c.max_depth, c.max_args);
    if ((rc = generate(&c, split, seed, out)) != 0)
        task_data_free(out);
    return rc;
}

const task_def task_listops = {
    .name = "listops",
    .suite = "lra",
    .description = "LRA ListOps: the digit a nested MAX/MIN/MED/SM prefix expression evaluates to (generated, "
                   "or the official TSVs via --data)",
    .params = listops_params,
    .make = listops_make,
};
