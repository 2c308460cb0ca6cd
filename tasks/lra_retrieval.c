/* LRA Retrieval (Radev et al. AAN; Tay et al. 2021): do two byte-level documents belong together
 * (1) or not (0)? Two towers: tokens and tokens2 are the two documents, each
 * CLS + bytes (+1), max_len 4000 per document.
 *
 * Official (--data DIR): new_aan_pairs.{train,eval,test}.tsv in DIR,
 * DIR/lra_release/tsv_data/ or DIR/tsv_data/: tab-separated, no header,
 * columns label (float text, 0.0 or 1.0), id1, id2, text1, text2; quotes are
 * data. Each text is cut to 10,000 bytes as the reference does, then to
 * max_len - 1.
 *
 * Stand-in (data_source "stand-in:spam-assassin-pairs"): pairs of
 * same-group bodies from SpamAssassin (docs/tasks.md). A weaker task than AAN
 * citation matching and partly a style task; a sanity check, never comparable
 * with published Retrieval numbers.
 *   1. Bodies (headers stripped, byte-identical bodies kept once: spam_corpus.c).
 *   2. Near-duplicates removed: 8-byte shingles of the part of each body
 *      the model sees (the first min(max_len - 1, 10,000) bytes: two bodies
 *      that differ only beyond it are the same input), a 64-value MinHash
 *      signature, candidate pairs from 16 LSH bands
 *      of 4 values (a pair with Jaccard 0.9 is a candidate with probability
 *      > 0.9999), and a document is dropped when an earlier one (corpus
 *      order) has an estimated Jaccard > 0.9 (>= 58 of 64 values equal).
 *      Cost O(total bytes x 64) plus a sort per band.
 *   3. Split by document: per group 80/10/10 in a fixed hash order of the
 *      file names, so no document appears in two splits.
 *   4. Pairs within a split: a positive is two different documents of the
 *      same group, a negative two documents of different groups (first
 *      document uniform, second uniform among the allowed, order swapped at
 *      random); labels are exactly half 1 (n even; one more 0 when n is odd)
 *      in a seeded order. Chance rate 0.5; set sizes are in meta. */
#include "lra_text.h"

#include "common/rng.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define AAN_CUT 10000
#define MH_SHINGLE 8
#define MH_PREFIX 10000
#define MH_HASHES 64
#define MH_BANDS 16
#define MH_ROWS (MH_HASHES / MH_BANDS)
#define MH_NEAR 58 /* equal values of 64 for an estimated Jaccard > 0.9 */

/* ---------------------------------------------------------------- official TSV */

typedef struct {
    const char *path;
    int64_t rows, len, pos;
    task_data *out;
    const int64_t *want; /* file row -> output index or -1; NULL: count only */
} aan_state;

static int aan_row(const lra_row *r, void *ud)
{
    aan_state *s = ud;
    if (r->n != 5)
        return attn_fail(ATTN_EINVAL, "%s:%lld: expected 5 tab-separated fields (label, id1, id2, text1, text2), "
                         "found %d", s->path, (long long)r->line, r->n);
    char *end;
    double v = strtod(r->field[0], &end);
    if (r->size[0] == 0 || *end || (v != 0.0 && v != 1.0))
        return attn_fail(ATTN_EINVAL, "%s:%lld: label: expected 0 or 1 (written 0.0 or 1.0), found '%.20s'", s->path,
                         (long long)r->line, r->field[0]);
    int64_t o = s->want ? s->want[s->rows] : -1;
    if (o >= 0) {
        for (int t = 0; t < 2; t++) {
            size_t n = r->size[3 + t] < AAN_CUT ? r->size[3 + t] : AAN_CUT;
            int32_t *row = t ? task_tokens2(s->out, o) : task_tokens(s->out, o);
            (t ? s->out->lengths2 : s->out->lengths)[o] =
                lra_text_encode((const unsigned char *)r->field[3 + t], n, s->len, row);
        }
        s->out->labels[o] = v == 1.0;
    }
    s->pos += v == 1.0;
    s->rows++;
    return 0;
}

/* Statistics of both towers and the provenance (chance rate, set sizes). */
static void pair_finish(task_data *out, const char *source, const char *extra)
{
    double nonpad, nonpad2 = 0, pos;
    lra_text_stats(out, &nonpad, &pos);
    for (int64_t i = 0; i < out->n; i++)
        nonpad2 += (double)out->lengths2[i] / (double)out->len;
    out->vocab = LRA_TEXT_VOCAB, out->n_classes = 2, out->pad = LRA_TEXT_PAD;
    snprintf(out->data_source, sizeof out->data_source, "%s", source);
    snprintf(out->meta, sizeof out->meta, "max_len=%lld;nonpad=%.4f/%.4f;pos_frac=%.4f;chance=0.5%s",
             (long long)out->len, nonpad, nonpad2 / (double)out->n, pos, extra);
}

static int aan_official(const char *path, task_split split, uint64_t seed, int64_t n, int64_t len, task_data *out)
{
    aan_state s = {.path = path, .len = len};
    int64_t *want = NULL, rows = 0;
    int rc = lra_table_read(path, '\t', 0, aan_row, &s);
    if (!rc && n > s.rows)
        rc = attn_fail(ATTN_EINVAL, "%s: %lld pairs, %lld asked for", path, (long long)s.rows, (long long)n);
    if (!rc && !(rc = lra_want_rows(seed, 410 + (uint64_t)split, rows = s.rows, n, &want)) &&
        !(rc = task_data_alloc(out, "retrieval", TASK_PAIR, n, len))) {
        s = (aan_state){.path = path, .len = len, .out = out, .want = want};
        char extra[64];
        snprintf(extra, sizeof extra, ";file_pairs=%lld", (long long)rows);
        if ((rc = lra_table_read(path, '\t', 0, aan_row, &s)) != 0)
            task_data_free(out);
        else
            pair_finish(out, "official", extra);
    }
    free(want);
    return rc;
}

/* new_aan_pairs.<split>.tsv under dir, dir/lra_release/tsv_data or dir/tsv_data; 1 if found. */
static int aan_path(const char *dir, task_split split, char *path, size_t n)
{
    static const char *const names[3] = {"train", "eval", "test"};
    static const char *const sub[3] = {"", "/lra_release/tsv_data", "/tsv_data"};
    struct stat st;
    for (int i = 0; i < 3; i++) {
        snprintf(path, n, "%s%s/new_aan_pairs.%s.tsv", dir, sub[i], names[split]);
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
            return 1;
    }
    return 0;
}

/* ---------------------------------------------------------------- near-duplicates */

static uint32_t fmix32(uint32_t x) /* MurmurHash3's finaliser: a bijection with full avalanche */
{
    x ^= x >> 16;
    x *= 0x85ebca6bu;
    x ^= x >> 13;
    x *= 0xc2b2ae35u;
    return x ^ (x >> 16);
}

/* sig[64]: per salt k, the minimum over the 8-byte shingles of the body's
 * first `prefix` bytes (a shorter body is one shingle) of fmix32(h ^ salt_k). */
static void minhash(const unsigned char *b, size_t n, size_t prefix, const uint32_t *salt, uint32_t *sig)
{
    n = n < prefix ? n : prefix;
    size_t shingles = n >= MH_SHINGLE ? n - MH_SHINGLE + 1 : 1;
    for (int k = 0; k < MH_HASHES; k++)
        sig[k] = UINT32_MAX;
    for (size_t i = 0; i < shingles; i++) {
        uint64_t x = 0;
        memcpy(&x, b + i, n < MH_SHINGLE ? n : MH_SHINGLE);
        uint32_t h = (uint32_t)(attn_splitmix64(x) >> 32);
        for (int k = 0; k < MH_HASHES; k++) {
            uint32_t v = fmix32(h ^ salt[k]);
            sig[k] = v < sig[k] ? v : sig[k];
        }
    }
}

static int near_equal(const uint32_t *a, const uint32_t *b)
{
    int eq = 0;
    for (int k = 0; k < MH_HASHES; k++)
        eq += a[k] == b[k];
    return eq >= MH_NEAR;
}

int lra_near_duplicates(const spam_corpus *c, size_t prefix, unsigned char *keep, int64_t *dropped)
{
    uint32_t salt[MH_HASHES];
    for (int k = 0; k < MH_HASHES; k++)
        salt[k] = (uint32_t)attn_splitmix64(0x6e656172ull + (uint64_t)k);
    int64_t n = c->n;
    uint32_t *sig = malloc((size_t)(n ? n : 1) * MH_HASHES * sizeof *sig);
    lra_keyed *e = malloc((size_t)(n ? n : 1) * sizeof *e);
    if (!sig || !e) {
        free(sig), free(e);
        return attn_fail(ATTN_ENOMEM, "retrieval: out of memory for %lld MinHash signatures", (long long)n);
    }
    for (int64_t i = 0; i < n; i++) {
        minhash(c->doc[i].body, c->doc[i].len, prefix, salt, sig + i * MH_HASHES);
        keep[i] = 1;
    }
    for (int band = 0; band < MH_BANDS; band++) {
        for (int64_t i = 0; i < n; i++) {
            uint64_t h = (uint64_t)band;
            for (int r = 0; r < MH_ROWS; r++)
                h = attn_splitmix64(h ^ sig[i * MH_HASHES + band * MH_ROWS + r]);
            e[i] = (lra_keyed){.key = h, .i = i};
        }
        qsort(e, (size_t)n, sizeof *e, lra_cmp_keyed);
        for (int64_t a = 0; a < n; a++) /* a run of equal keys is sorted by document */
            for (int64_t b = a + 1; b < n && e[b].key == e[a].key; b++)
                if (keep[e[b].i] && near_equal(sig + e[a].i * MH_HASHES, sig + e[b].i * MH_HASHES))
                    keep[e[b].i] = 0;
    }
    *dropped = 0;
    for (int64_t i = 0; i < n; i++)
        *dropped += !keep[i];
    free(sig), free(e);
    return 0;
}

/* ---------------------------------------------------------------- stand-in pairs */

typedef struct {
    const spam_corpus *c;
    const int64_t *docs;        /* the split's documents, grouped by group */
    int64_t count;
    int64_t start[SPAM_GROUPS + 1]; /* docs[start[g] .. start[g+1]) are group g */
} pair_pool;

static int group_of(const pair_pool *p, int64_t j) { return p->c->doc[p->docs[j]].group; }

/* Draws pair i (label given) from its own stream: positions a, b into docs. */
static void draw_pair(const pair_pool *p, uint64_t seed, uint64_t tag, int64_t i, int label, int64_t *a, int64_t *b)
{
    attn_rng r;
    attn_rng_seed_item(&r, seed, tag, (uint64_t)i);
    if (label) { /* uniform over documents whose group has another one */
        int64_t eligible = 0;
        for (int g = 0; g < SPAM_GROUPS; g++)
            eligible += p->start[g + 1] - p->start[g] >= 2 ? p->start[g + 1] - p->start[g] : 0;
        int64_t k = (int64_t)attn_rng_uint_below(&r, (uint64_t)eligible);
        int g = 0;
        for (;; g++) {
            int64_t m = p->start[g + 1] - p->start[g];
            if (m >= 2 && k < m)
                break;
            k -= m >= 2 ? m : 0;
        }
        int64_t m = p->start[g + 1] - p->start[g], j = (int64_t)attn_rng_uint_below(&r, (uint64_t)(m - 1));
        *a = p->start[g] + k;
        *b = p->start[g] + (j >= k ? j + 1 : j);
    } else { /* uniform first document, second uniform among the other groups' */
        *a = (int64_t)attn_rng_uint_below(&r, (uint64_t)p->count);
        int g = group_of(p, *a);
        int64_t others = p->count - (p->start[g + 1] - p->start[g]);
        int64_t j = (int64_t)attn_rng_uint_below(&r, (uint64_t)others);
        *b = j < p->start[g] ? j : j + (p->start[g + 1] - p->start[g]);
    }
    if (attn_rng_next(&r) >> 63) {
        int64_t t = *a;
        *a = *b, *b = t;
    }
}

static int pairs_standin(const char *root, task_split split, uint64_t seed, int64_t n, int64_t len, task_data *out)
{
    spam_corpus c;
    unsigned char *keep = NULL;
    int64_t *docs = NULL, *order = NULL, count = 0, sizes[3] = {0}, dropped = 0;
    int rc = spam_corpus_load(root, &c);
    if (!rc && !(keep = malloc((size_t)(c.n ? c.n : 1))))
        rc = attn_fail(ATTN_ENOMEM, "retrieval: out of memory");
    if (!rc)
        rc = lra_near_duplicates(&c, (size_t)(len - 1 < MH_PREFIX ? len - 1 : MH_PREFIX), keep, &dropped);
    for (int s = 0; !rc && s < 3; s++) { /* every split's size for meta; keep the one asked for */
        int64_t *d = NULL;
        rc = spam_corpus_split(&c, keep, (task_split)s, &d, &sizes[s]);
        if (s == (int)split)
            docs = d, count = sizes[s];
        else
            free(d);
    }
    pair_pool p = {.c = &c, .docs = docs, .count = count};
    int with_pair = 0, groups = 0;
    for (int64_t j = 0; !rc && j < count; j++) /* spam_corpus_split lists group by group */
        p.start[c.doc[docs[j]].group + 1] = j + 1;
    for (int g = 1; !rc && g <= SPAM_GROUPS; g++)
        p.start[g] = p.start[g] > p.start[g - 1] ? p.start[g] : p.start[g - 1];
    for (int g = 0; !rc && g < SPAM_GROUPS; g++) {
        groups += p.start[g + 1] > p.start[g];
        with_pair += p.start[g + 1] - p.start[g] >= 2;
    }
    if (!rc && (groups < 2 || (!with_pair && n > 1)))
        rc = attn_fail(ATTN_EINVAL, "task retrieval (stand-in): the %s split has %lld documents in %d groups; "
                       "expected two groups and one group with two documents", split == TASK_TRAIN ? "train" :
                       split == TASK_VALID ? "valid" : "test", (long long)count, groups);
    if (!rc && !(rc = lra_pick(seed, 430 + (uint64_t)split, n, n, &order)))
        rc = task_data_alloc(out, "retrieval", TASK_PAIR, n, len);
    for (int64_t i = 0; !rc && i < n; i++) {
        int64_t a, b, o = order[i]; /* example i has label i % 2, stored at a seeded place */
        draw_pair(&p, seed, 420 + (uint64_t)split, i, (int)(i % 2), &a, &b);
        const spam_doc *x = &c.doc[docs[a]], *y = &c.doc[docs[b]];
        out->lengths[o] = lra_text_encode(x->body, x->len, len, task_tokens(out, o));
        out->lengths2[o] = lra_text_encode(y->body, y->len, len, task_tokens2(out, o));
        out->labels[o] = (int32_t)(i % 2);
    }
    if (!rc) {
        char extra[160];
        snprintf(extra, sizeof extra, ";docs=%lld/%lld/%lld;duplicates=%lld;near_dups=%lld", (long long)sizes[0],
                 (long long)sizes[1], (long long)sizes[2], (long long)c.duplicates, (long long)dropped);
        pair_finish(out, "stand-in:spam-assassin-pairs", extra);
    }
    free(keep), free(docs), free(order);
    spam_corpus_free(&c);
    return rc;
}

/* ---------------------------------------------------------------- task */

static const opt_def retrieval_params[] = {
    {.name = "max_len", .type = OPT_INT, .def = 4000, .lo = 2, .hi = 1 << 20,
     .help = "tokens per document: CLS + max_len-1 bytes"},
    {0},
};

static int retrieval_make(const param_bag *params, task_split split, uint64_t seed, int64_t n, const char *data_dir,
                          task_data *out)
{
    int64_t len;
    int rc = lra_text_params(retrieval_params, params, "retrieval", &len);
    if (rc)
        return rc;
    memset(out, 0, sizeof *out);
    char path[1200];
    if (!data_dir)
        return pairs_standin(lra_data_root(), split, seed, n, len, out);
    if (aan_path(data_dir, split, path, sizeof path))
        return aan_official(path, split, seed, n, len, out);
    if (spam_corpus_find(data_dir, path, sizeof path) == 0)
        return pairs_standin(data_dir, split, seed, n, len, out);
    return attn_fail(ATTN_EINVAL, "%s: expected new_aan_pairs.%s.tsv (in it, lra_release/tsv_data/ or tsv_data/) or "
                     "the SpamAssassin stand-in (spam-assassin/package/data/<group>/*.json); found neither", data_dir,
                     split == TASK_TRAIN ? "train" : split == TASK_VALID ? "eval" : "test");
}

const task_def task_lra_retrieval = {
    .name = "retrieval",
    .suite = "lra",
    .description = "LRA Retrieval: do two byte-level documents match (two towers; official AAN pair TSVs via "
                   "--data; stand-in SpamAssassin same-group pairs)",
    .params = retrieval_params,
    .make = retrieval_make,
};
