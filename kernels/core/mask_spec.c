/* The mask spec grammar: kind names, help, parsing and the canonical
 * spelling (docs/masks.md; `attnbench list masks` prints the help). */
#include "mask.h"

#include "common/attn_error.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *name, *help, *example;
} kind_info[ATTN_MASK__COUNT] = {
    [ATTN_MASK_FULL] = {"full", "every query attends every key; causal=1 makes it causal", "full"},
    [ATTN_MASK_CAUSAL] = {"causal", "key position <= query position (bottom-right aligned)", "causal"},
    [ATTN_MASK_WINDOW] = {"window", "sliding window -wr <= qpos-kpos <= wl; wl=, wr=, w= (both), causal=1",
                          "window:wl=8,wr=8"},
    [ATTN_MASK_DILATED] = {"dilated", "dilated window: delta multiple of dil, -wr*dil <= delta <= wl*dil; "
                                      "w= (both sides, in steps), wl=, wr=, dil= (or d1+d2+.. cycled over "
                                      "heads, at most 8), causal=1",
                           "dilated:wl=4,wr=4,dil=2"},
    [ATTN_MASK_STRIDED] = {"strided", "Sparse Transformer (causal): strided:l= (0<=delta<l or l | delta) or "
                                      "fixed:l=,c= (same block of l, or kpos mod l >= l-c); split=1 gives even "
                                      "heads the first part, odd heads the second",
                           "strided:l=8"},
    [ATTN_MASK_BLOCK_SPARSE] = {"block", "block-sparse: block (qpos/bq, kpos/bk) kept with probability keep "
                                         "(hash of seed, head, blocks); b= (bq=bk) or bq=,bk=, keep=, seed=, "
                                         "heads=1 (one layout per head), diag=0|1 (diagonal blocks kept, default 1), causal=1",
                                "block:b=16,keep=0.3,seed=1"},
    [ATTN_MASK_GLOBAL_LOCAL] = {"global", "Longformer: window -wr <= delta <= wl, or query or key global; w=, wl=, wr=, "
                                          "g= (first g positions) or at=p1+p2+... (listed positions), causal=1",
                                "global:w=4,g=2"},
    [ATTN_MASK_BIGBIRD] = {"bigbird", "BigBird ITC blocks of b: |I-J| <= w/2 (w window blocks, odd, default 3), "
                                      "global blocks g (1 first, 2 first and last; default 2), r random key blocks "
                                      "per query block drawn from hash(seed, head, I); b=, w=, g=, r=, seed=, causal=1",
                           "bigbird:b=16,r=2,seed=1"},
    [ATTN_MASK_DOCUMENT] = {"document", "packed documents (varlen): same document only; lens=l1+l2+... (sum = "
                                        "sequence length) or n= documents of random lengths (seed=); causal=1 is "
                                        "causal inside each document",
                            "document:n=4,seed=3,causal=1"},
    [ATTN_MASK_PREFIX_LM] = {"prefix", "prefix-LM: kpos < p or kpos <= qpos; p=", "prefix:p=16"},
    [ATTN_MASK_SHARED_QUESTION] = {"shared_question", "[Q | A1 .. Ak]: causal in Q; each answer sees Q and "
                                                      "causally itself; q= (question length), answers= (split the rest)",
                                   "shared_question:q=16,answers=3"},
    [ATTN_MASK_SINK_WINDOW] = {"sink", "StreamingLLM: causal, kpos < n (sinks) or qpos-kpos <= w; n=, w=",
                               "sink:n=4,w=16"},
    [ATTN_MASK_RANDOM] = {"random", "random pairs kept with probability p (hash of seed, batch, head, qpos, kpos); "
                                    "p=, seed=, diag=0|1 (qpos == kpos kept, default 1), causal=1",
                          "random:p=0.1,seed=1"},
};

const char *attn_mask_kind_name(attn_mask_kind kind)
{
    return (unsigned)kind < ATTN_MASK__COUNT ? kind_info[kind].name : NULL;
}

const char *attn_mask_kind_help(attn_mask_kind kind)
{
    return (unsigned)kind < ATTN_MASK__COUNT ? kind_info[kind].help : NULL;
}

const char *attn_mask_kind_example(attn_mask_kind kind)
{
    return (unsigned)kind < ATTN_MASK__COUNT ? kind_info[kind].example : NULL;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* ---- spec grammar ---- */

static int parse_int(const char *spec, const char *key, const char *val, int64_t lo, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(val, &end, 10);
    if (*val == '\0' || *end != '\0' || v < lo || errno == ERANGE) /* ERANGE: clamped, not the number given */
        return attn_fail(ATTN_EINVAL, "mask '%s': %s expects an integer >= %lld, found '%s'", spec, key,
                         (long long)lo, val);
    *out = v;
    return 0;
}

static int parse_prob(const char *spec, const char *key, const char *val, double *out)
{
    char *end;
    double v = strtod(val, &end);
    if (*val == '\0' || *end != '\0' || !(v >= 0 && v <= 1))
        return attn_fail(ATTN_EINVAL, "mask '%s': %s expects a number in [0, 1], found '%s'", spec, key, val);
    *out = v;
    return 0;
}

/* 1 if `list` has an empty item: a separator first, last or doubled (the
 * tokenizer would skip it, and a typo would pass unnoticed). */
static int has_empty_item(const char *list, char sep)
{
    size_t n = strlen(list);
    const char two[3] = {sep, sep, '\0'};
    return n == 0 || list[0] == sep || list[n - 1] == sep || strstr(list, two);
}

/* "a+b+c" into out[] (at most `max` values >= lo). */
static int parse_list(const char *spec, const char *key, char *val, int64_t lo, int64_t *out, int64_t *n, int64_t max)
{
    *n = 0;
    if (has_empty_item(val, '+'))
        return attn_fail(ATTN_EINVAL, "mask '%s': %s expects values joined by '+', found an empty item in '%s'",
                         spec, key, val);
    for (char *save = NULL, *t = strtok_r(val, "+", &save); t; t = strtok_r(NULL, "+", &save)) {
        if (*n >= max)
            return attn_fail(ATTN_EINVAL, "mask '%s': %s takes at most %lld values", spec, key, (long long)max);
        int rc = parse_int(spec, key, t, lo, &out[*n]);
        if (rc)
            return rc;
        (*n)++;
    }
    if (*n == 0)
        return attn_fail(ATTN_EINVAL, "mask '%s': %s expects values joined by '+'", spec, key);
    return 0;
}

/* Keys each kind accepts (for the error message). */
static const char *const kind_keys[ATTN_MASK__COUNT] = {
    [ATTN_MASK_FULL] = "causal",
    [ATTN_MASK_CAUSAL] = "causal",
    [ATTN_MASK_WINDOW] = "wl, wr, w, causal",
    [ATTN_MASK_DILATED] = "wl, wr, w, dil, causal",
    [ATTN_MASK_STRIDED] = "l, c (fixed), split",
    [ATTN_MASK_BLOCK_SPARSE] = "b, bq, bk, keep, seed, heads, diag, causal",
    [ATTN_MASK_GLOBAL_LOCAL] = "wl, wr, w, g, at, causal",
    [ATTN_MASK_BIGBIRD] = "b, w, g, r, seed, causal",
    [ATTN_MASK_DOCUMENT] = "lens, n, seed, causal",
    [ATTN_MASK_PREFIX_LM] = "p, causal",
    [ATTN_MASK_SHARED_QUESTION] = "q, answers",
    [ATTN_MASK_SINK_WINDOW] = "n, w",
    [ATTN_MASK_RANDOM] = "p, seed, diag, causal",
};

static int is_key(const char *key, const char *k) { return strcmp(key, k) == 0; }

/* One key=value of kind m->kind; 1 if the key is not one of the kind's. */
static int parse_param(const char *spec, attn_mask *m, const char *key, char *val, int *rc, unsigned *seen)
{
    int64_t v = 0;
    attn_mask_kind k = m->kind;
#define INT(lo) ((*rc = parse_int(spec, key, val, (lo), &v)) == 0)
    if (is_key(key, "causal") && k != ATTN_MASK_STRIDED && k != ATTN_MASK_SHARED_QUESTION &&
        k != ATTN_MASK_SINK_WINDOW) {
        if (INT(0) && v > 1)
            *rc = attn_fail(ATTN_EINVAL, "mask '%s': causal expects 0 or 1, found '%s'", spec, val);
        m->causal = (int)v;
        return 0;
    }
    switch (k) {
    case ATTN_MASK_WINDOW:
    case ATTN_MASK_DILATED:
    case ATTN_MASK_GLOBAL_LOCAL:
        if (is_key(key, "wl") && INT(0))
            return m->wl = v, *seen |= 1, 0;
        if (is_key(key, "wr") && INT(0))
            return m->wr = v, *seen |= 1, 0;
        if (is_key(key, "w") && INT(0))
            return m->wl = m->wr = v, *seen |= 1, 0;
        if (k == ATTN_MASK_DILATED && is_key(key, "dil") && strchr(val, '+')) { /* one per head, cycled */
            *rc = parse_list(spec, key, val, 1, m->dils, &m->n_dil, 8);
            return 0;
        }
        if (k == ATTN_MASK_DILATED && is_key(key, "dil") && INT(1))
            return m->dil = v, m->n_dil = 0, 0;
        if (k == ATTN_MASK_GLOBAL_LOCAL && is_key(key, "g") && INT(0))
            return m->n_global = v, *seen |= 2, 0;
        if (k == ATTN_MASK_GLOBAL_LOCAL && is_key(key, "at")) {
            if ((*rc = parse_list(spec, key, val, 0, m->global, &m->n_global_list, ATTN_MASK_MAX_SPANS)) == 0)
                qsort(m->global, (size_t)m->n_global_list, sizeof(int64_t), cmp_i64);
            return *seen |= 2, 0;
        }
        break;
    case ATTN_MASK_STRIDED:
        if (is_key(key, "l") && INT(1))
            return m->stride = v, *seen |= 1, 0;
        if (m->fixed && is_key(key, "c") && INT(1))
            return m->summ = v, *seen |= 2, 0;
        if (is_key(key, "split") && INT(0))
            return m->split_heads = v != 0, 0;
        break;
    case ATTN_MASK_BLOCK_SPARSE:
    case ATTN_MASK_BIGBIRD:
        if (is_key(key, "b") && INT(1))
            return m->bq = m->bk = v, *seen |= 1, 0;
        if (k == ATTN_MASK_BLOCK_SPARSE && is_key(key, "bq") && INT(1))
            return m->bq = v, *seen |= 1, 0;
        if (k == ATTN_MASK_BLOCK_SPARSE && is_key(key, "bk") && INT(1))
            return m->bk = v, *seen |= 1, 0;
        if (is_key(key, "seed") && INT(0))
            return m->seed = (uint64_t)v, 0;
        if (k == ATTN_MASK_BLOCK_SPARSE && is_key(key, "keep"))
            return *rc = parse_prob(spec, key, val, &m->p_keep), *seen |= 2, 0;
        if (k == ATTN_MASK_BLOCK_SPARSE && is_key(key, "heads") && INT(0))
            return m->per_head = v != 0, 0;
        if (k == ATTN_MASK_BLOCK_SPARSE && is_key(key, "diag") && INT(0))
            return m->keep_diag = v != 0, 0;
        if (k == ATTN_MASK_BIGBIRD && is_key(key, "w") && INT(1)) {
            if (v % 2 == 0)
                *rc = attn_fail(ATTN_EINVAL, "mask '%s': w (window blocks) expects an odd number, found %lld",
                                spec, (long long)v);
            return m->win_blocks = v, 0;
        }
        if (k == ATTN_MASK_BIGBIRD && is_key(key, "g") && INT(0)) {
            if (v > 2)
                *rc = attn_fail(ATTN_EINVAL, "mask '%s': g (global blocks) expects 0, 1 or 2, found %lld",
                                spec, (long long)v);
            return m->n_global = v, 0;
        }
        if (k == ATTN_MASK_BIGBIRD && is_key(key, "r") && INT(0)) {
            if (v > ATTN_MASK_MAX_RAND_BLOCKS)
                *rc = attn_fail(ATTN_EINVAL, "mask '%s': r expects at most %d random blocks", spec, ATTN_MASK_MAX_RAND_BLOCKS);
            return m->n_rand_blocks = v, 0;
        }
        break;
    case ATTN_MASK_DOCUMENT:
        if (is_key(key, "lens"))
            return *rc = parse_list(spec, key, val, 1, m->lens, &m->n_lens, ATTN_MASK_MAX_SPANS), m->n_docs = m->n_lens, *seen |= 1, 0;
        if (is_key(key, "n") && INT(1)) {
            if (v > ATTN_MASK_MAX_SPANS)
                *rc = attn_fail(ATTN_EINVAL, "mask '%s': n expects at most %d documents", spec, ATTN_MASK_MAX_SPANS);
            return m->n_docs = v, *seen |= 2, 0;
        }
        if (is_key(key, "seed") && INT(0))
            return m->seed = (uint64_t)v, 0;
        break;
    case ATTN_MASK_PREFIX_LM:
        if (is_key(key, "p") && INT(0))
            return m->prefix = v, *seen |= 1, 0;
        break;
    case ATTN_MASK_SHARED_QUESTION:
        if (is_key(key, "q") && INT(0))
            return m->qlen = v, *seen |= 1, 0;
        if (is_key(key, "answers") && INT(1)) {
            if (v > ATTN_MASK_MAX_SPANS - 1)
                *rc = attn_fail(ATTN_EINVAL, "mask '%s': answers expects at most %d", spec, ATTN_MASK_MAX_SPANS - 1);
            return m->n_ans = v, *seen |= 2, 0;
        }
        break;
    case ATTN_MASK_SINK_WINDOW:
        if (is_key(key, "n") && INT(0))
            return m->n_sink = v, *seen |= 1, 0;
        if (is_key(key, "w") && INT(0))
            return m->wl = v, *seen |= 2, 0;
        break;
    case ATTN_MASK_RANDOM:
        if (is_key(key, "p"))
            return *rc = parse_prob(spec, key, val, &m->p_keep), *seen |= 1, 0;
        if (is_key(key, "seed") && INT(0))
            return m->seed = (uint64_t)v, 0;
        if (is_key(key, "diag") && INT(0))
            return m->keep_diag = v != 0, 0;
        break;
    default:
        break;
    }
#undef INT
    return *rc ? 0 : 1;
}

/* Parameters every spec of the kind must give (bits of `seen`), with a message. */
static int check_required(const char *spec, const attn_mask *m, unsigned seen)
{
    static const struct {
        attn_mask_kind kind;
        unsigned bits;
        const char *what;
    } req[] = {
        {ATTN_MASK_WINDOW, 1, "a width (w=, wl= or wr=)"},
        {ATTN_MASK_DILATED, 1, "a width (w=, wl= or wr=)"},
        {ATTN_MASK_STRIDED, 1, "a block length l="},
        {ATTN_MASK_BLOCK_SPARSE, 3, "a block size (b= or bq=,bk=) and keep="},
        {ATTN_MASK_GLOBAL_LOCAL, 3, "a width (w=, wl= or wr=) and global tokens (g= or at=)"},
        {ATTN_MASK_BIGBIRD, 1, "a block size b="},
        {ATTN_MASK_PREFIX_LM, 1, "a prefix length p="},
        {ATTN_MASK_SHARED_QUESTION, 3, "q= and answers="},
        {ATTN_MASK_SINK_WINDOW, 3, "n= (sinks) and w= (window)"},
        {ATTN_MASK_RANDOM, 1, "a keep probability p="},
    };
    for (size_t i = 0; i < sizeof req / sizeof *req; i++)
        if (req[i].kind == m->kind && (seen & req[i].bits) != req[i].bits)
            return attn_fail(ATTN_EINVAL, "mask '%s': %s needs %s", spec, kind_info[m->kind].name, req[i].what);
    if (m->kind == ATTN_MASK_BLOCK_SPARSE && (m->bq < 1 || m->bk < 1)) /* bq= without bk= or the reverse */
        return attn_fail(ATTN_EINVAL, "mask '%s': block needs b= or both bq= and bk=", spec);
    if (m->kind == ATTN_MASK_STRIDED && m->fixed && !(seen & 2))
        return attn_fail(ATTN_EINVAL, "mask '%s': fixed needs c= (summary positions per block)", spec);
    if (m->kind == ATTN_MASK_DOCUMENT && (seen & 3) != 1 && (seen & 3) != 2)
        return attn_fail(ATTN_EINVAL, "mask '%s': document needs exactly one of lens=l1+l2+... or n=", spec);
    if (m->kind == ATTN_MASK_GLOBAL_LOCAL && m->n_global && m->n_global_list)
        return attn_fail(ATTN_EINVAL, "mask '%s': global takes g= or at=, not both", spec);
    return 0;
}

static int causal_by_definition(attn_mask_kind kind)
{
    return kind == ATTN_MASK_CAUSAL || kind == ATTN_MASK_STRIDED || kind == ATTN_MASK_SHARED_QUESTION ||
           kind == ATTN_MASK_SINK_WINDOW;
}

attn_mask attn_mask_default(attn_mask_kind kind)
{
    attn_mask m;
    memset(&m, 0, sizeof m);
    m.kind = kind;
    m.dil = 1;
    m.keep_diag = 1;
    m.win_blocks = 3;
    if (kind == ATTN_MASK_BIGBIRD)
        m.n_global = 2;
    if (kind == ATTN_MASK_DOCUMENT)
        m.seed = 1;
    m.causal = causal_by_definition(kind);
    return m;
}

/* A key given twice is an error, as a repeated option is, rather than "the
 * last wins". Checked on a copy before parsing (which cuts list values). */
static int check_repeats(const char *spec, const char *params)
{
    char buf[512], *save = NULL;
    const char *key[256], *val[256];
    int n = 0;
    snprintf(buf, sizeof buf, "%s", params);
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        if (!eq)
            continue; /* reported by the parser */
        *eq = '\0';
        for (int i = 0; i < n; i++)
            if (strcmp(key[i], tok) == 0)
                return attn_fail(ATTN_EINVAL, "mask '%s': %s: given twice ('%s', then '%s')", spec, tok, val[i],
                                 eq + 1);
        key[n] = tok;
        val[n++] = eq + 1;
    }
    return 0;
}

int attn_mask_parse(const char *spec, attn_mask *out)
{
    char buf[512];
    if (!spec || strlen(spec) >= sizeof buf)
        return attn_fail(ATTN_EINVAL, "mask spec missing or longer than %zu characters", sizeof buf - 1);
    strcpy(buf, spec);
    char *params = strchr(buf, ':');
    if (params)
        *params++ = '\0';

    int kind = -1;
    for (int k = 0; k < ATTN_MASK__COUNT; k++)
        if (strcmp(buf, kind_info[k].name) == 0)
            kind = k;
    if (strcmp(buf, "fixed") == 0)
        kind = ATTN_MASK_STRIDED;
    if (kind < 0) {
        char names[512] = "";
        for (int k = 0; k < ATTN_MASK__COUNT; k++) {
            strcat(names, k ? ", " : "");
            strcat(names, kind_info[k].name);
            if (k == ATTN_MASK_STRIDED)
                strcat(names, ", fixed");
        }
        return attn_fail(ATTN_EINVAL, "unknown mask '%s': expected one of %s", buf, names);
    }
    *out = attn_mask_default((attn_mask_kind)kind);
    out->fixed = strcmp(buf, "fixed") == 0;

    if (params && !*params)
        return attn_fail(ATTN_EINVAL, "mask '%s': expected key=value after ':', found nothing", spec);
    if (params && has_empty_item(params, ','))
        return attn_fail(ATTN_EINVAL, "mask '%s': expected key=value items separated by single commas, found an "
                         "empty item", spec);
    if (params) {
        int rc = check_repeats(spec, params);
        if (rc)
            return rc;
    }
    unsigned seen = 0;
    char *save = NULL;
    for (char *tok = params ? strtok_r(params, ",", &save) : NULL; tok; tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        if (!eq)
            return attn_fail(ATTN_EINVAL, "mask '%s': expected key=value, found '%s'", spec, tok);
        *eq = '\0';
        int rc = 0;
        if (parse_param(spec, out, tok, eq + 1, &rc, &seen))
            return attn_fail(ATTN_EINVAL, "mask '%s': unknown parameter '%s=%s' (%s takes %s)", spec, tok, eq + 1,
                             out->fixed ? "fixed" : kind_info[kind].name, kind_keys[kind]);
        if (rc)
            return rc;
    }
    int rc = check_required(spec, out, seen);
    if (rc)
        return rc;
    if (causal_by_definition(out->kind))
        out->causal = 1; /* whatever the spec said */
    if (kind == ATTN_MASK_BIGBIRD)
        out->bk = out->bq;
    return 0;
}

/* Shortest "%g" spelling of p that reads back as the same double. */
static void fmt_prob(char *buf, size_t n, double p)
{
    for (int prec = 6; prec <= 17; prec++) {
        snprintf(buf, n, "%.*g", prec, p);
        if (strtod(buf, NULL) == p)
            return;
    }
}

static void fmt_list(char *buf, size_t n, const int64_t *v, int64_t count)
{
    buf[0] = '\0';
    for (int64_t i = 0; i < count; i++) {
        size_t l = strlen(buf);
        snprintf(buf + l, n - l, "%s%lld", i ? "+" : "", (long long)v[i]);
    }
}

void attn_mask_format(const attn_mask *m, char *buf, int len)
{
    char p[64], list[ATTN_MASK_MAX_SPANS * 21];
    const char *c = m->causal ? ",causal=1" : "";
    long long wl = m->wl, wr = m->wr;
    switch (m->kind) {
    case ATTN_MASK_WINDOW:
        snprintf(buf, len, "window:wl=%lld,wr=%lld%s", wl, wr, c);
        break;
    case ATTN_MASK_DILATED:
        fmt_list(list, sizeof list, m->n_dil ? m->dils : &m->dil, m->n_dil ? m->n_dil : 1);
        snprintf(buf, len, "dilated:wl=%lld,wr=%lld,dil=%s%s", wl, wr, list, c);
        break;
    case ATTN_MASK_STRIDED:
        if (m->fixed)
            snprintf(buf, len, "fixed:l=%lld,c=%lld%s", (long long)m->stride, (long long)m->summ,
                     m->split_heads ? ",split=1" : "");
        else
            snprintf(buf, len, "strided:l=%lld%s", (long long)m->stride, m->split_heads ? ",split=1" : "");
        break;
    case ATTN_MASK_BLOCK_SPARSE:
        fmt_prob(p, sizeof p, m->p_keep);
        snprintf(buf, len, "block:bq=%lld,bk=%lld,keep=%s,seed=%llu%s%s%s", (long long)m->bq, (long long)m->bk, p,
                 (unsigned long long)m->seed, m->per_head ? ",heads=1" : "", m->keep_diag ? "" : ",diag=0", c);
        break;
    case ATTN_MASK_GLOBAL_LOCAL:
        if (m->n_global_list) {
            fmt_list(list, sizeof list, m->global, m->n_global_list);
            snprintf(buf, len, "global:wl=%lld,wr=%lld,at=%s%s", wl, wr, list, c);
        } else
            snprintf(buf, len, "global:wl=%lld,wr=%lld,g=%lld%s", wl, wr, (long long)m->n_global, c);
        break;
    case ATTN_MASK_BIGBIRD:
        snprintf(buf, len, "bigbird:b=%lld,w=%lld,g=%lld,r=%lld,seed=%llu%s", (long long)m->bq,
                 (long long)m->win_blocks, (long long)m->n_global, (long long)m->n_rand_blocks,
                 (unsigned long long)m->seed, c);
        break;
    case ATTN_MASK_DOCUMENT:
        if (m->n_lens) {
            fmt_list(list, sizeof list, m->lens, m->n_lens);
            snprintf(buf, len, "document:lens=%s%s", list, c);
        } else
            snprintf(buf, len, "document:n=%lld,seed=%llu%s", (long long)m->n_docs, (unsigned long long)m->seed, c);
        break;
    case ATTN_MASK_PREFIX_LM:
        snprintf(buf, len, "prefix:p=%lld%s", (long long)m->prefix, c);
        break;
    case ATTN_MASK_SHARED_QUESTION:
        snprintf(buf, len, "shared_question:q=%lld,answers=%lld", (long long)m->qlen, (long long)m->n_ans);
        break;
    case ATTN_MASK_SINK_WINDOW:
        snprintf(buf, len, "sink:n=%lld,w=%lld", (long long)m->n_sink, wl);
        break;
    case ATTN_MASK_RANDOM:
        fmt_prob(p, sizeof p, m->p_keep);
        snprintf(buf, len, "random:p=%s,seed=%llu%s%s", p, (unsigned long long)m->seed, m->keep_diag ? "" : ",diag=0", c);
        break;
    case ATTN_MASK_FULL:
        snprintf(buf, len, "%s", m->causal ? "causal" : "full");
        break;
    default:
        snprintf(buf, len, "%s", attn_mask_kind_name(m->kind));
        break;
    }
}
