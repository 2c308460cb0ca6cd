/* NIAH haystacks (docs/tasks.md):
 *   noise   the Landmark / RULER filler block, joined by spaces, from its start;
 *   random  an order-2 byte Markov chain (trigram counts) fitted to the noise
 *           text or to the corpus train pool, walked from a random bigram;
 *   corpus  byte spans of SpamAssassin message bodies (the offline stand-in:
 *           <root>/<group>/<name>.json with a "text" field), from a document
 *           pool chosen by a hash of the file name so train and test never
 *           share a document. Documents are parsed on first use only;
 *   essay   the stand-in for RULER's Paul Graham essays: whole ham messages
 *           without HTML from the same pools, each from its start, with every
 *           whitespace run made one space (RULER joins its essay words with
 *           single spaces), joined by ' ' and cut to length. Spam and the
 *           hard-ham group are mostly HTML, so they are left out. */
#include "niah.h"
#include "recall.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

const char niah_noise_block[] =
    "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again.";

typedef struct {
    char **paths;
    int64_t n;
    char **body;
    size_t *blen;
    signed char *essay; /* essay haystack: 0 not yet read, 1 kept (body normalised), -1 left out */
} corpus;

typedef struct {
    uint8_t *text;       /* the fitted text, restart points for dead ends */
    int64_t tlen;
    uint32_t *ctx_begin; /* [65537] first trigram of each context (a<<8 | b) */
    uint8_t *next;       /* [m] successor byte of each distinct trigram */
    uint32_t *cum;       /* [m] cumulative count within its context */
} markov;

struct niah_haystack {
    niah_hay_kind kind;
    char source[64];
    corpus c;
    markov m;
};

/* --- corpus files -------------------------------------------------------- */

task_split niah_corpus_pool_of(const char *file_name)
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a, then one SplitMix64 round */
    for (const unsigned char *s = (const unsigned char *)file_name; *s; s++)
        h = (h ^ *s) * 0x100000001b3ull;
    uint64_t b = attn_splitmix64(h) % 10;
    return b == 0 ? TASK_TEST : b == 1 ? TASK_VALID : TASK_TRAIN;
}

static int is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int is_json(const char *name)
{
    size_t k = strlen(name);
    return name[0] != '.' && k > 5 && strcmp(name + k - 5, ".json") == 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Walks the <group>/<name>.json files under root; with want_split >= 0 appends the pool's paths
 * to the growing list, else stops at the first document. Returns the count. */
static int64_t scan_docs(const char *root, int want_split, char ***list, int64_t *cap)
{
    int64_t count = 0;
    DIR *top = opendir(root);
    if (!top)
        return 0;
    struct dirent *g;
    while ((g = readdir(top))) {
        char gdir[4096];
        if (g->d_name[0] == '.' || snprintf(gdir, sizeof gdir, "%s/%s", root, g->d_name) >= (int)sizeof gdir ||
            !is_dir(gdir))
            continue;
        DIR *sub = opendir(gdir);
        struct dirent *f;
        while (sub && (f = readdir(sub))) {
            if (!is_json(f->d_name))
                continue;
            if (want_split < 0) {
                count++;
                break;
            }
            if ((int)niah_corpus_pool_of(f->d_name) != want_split)
                continue;
            if (count == *cap) {
                *cap = *cap ? 2 * *cap : 1024;
                char **grown = realloc(*list, (size_t)*cap * sizeof **list);
                if (!grown)
                    break;
                *list = grown;
            }
            size_t k = strlen(gdir) + strlen(f->d_name) + 2;
            if (((*list)[count] = malloc(k)) == NULL)
                break;
            snprintf((*list)[count++], k, "%s/%s", gdir, f->d_name);
        }
        if (sub)
            closedir(sub);
        if (want_split < 0 && count)
            break;
    }
    closedir(top);
    return count;
}

int niah_corpus_root(const char *data_dir, char *out, size_t n)
{
    const char *env = getenv("ATTN_DATA_DIR");
    const char *base = data_dir ? data_dir : env && *env ? env : "data";
    static const char *const sub[] = {"", "/spam-assassin/package/data", "/package/data"};
    char tried[1024] = "";
    for (int i = 0; i < 3; i++) {
        snprintf(out, n, "%s%s", base, sub[i]);
        if (scan_docs(out, -1, NULL, NULL) > 0)
            return 0;
        strncat(tried, i ? ", " : "", sizeof tried - strlen(tried) - 1);
        strncat(tried, out, sizeof tried - strlen(tried) - 1);
    }
    return attn_fail(ATTN_EIO,
                     "corpus haystack: expected SpamAssassin documents <group>/*.json under one of %s; found none "
                     "(set ATTN_DATA_DIR or pass the data directory)",
                     tried);
}

int niah_corpus_list(const char *root, task_split split, char ***paths, int64_t *n)
{
    char **list = NULL;
    int64_t cap = 0, k = scan_docs(root, (int)split, &list, &cap);
    *paths = NULL, *n = 0;
    size_t chars = 0;
    for (int64_t i = 0; i < k; i++)
        chars += strlen(list[i]) + 1;
    /* one block: the pointer table, then the strings */
    char **block = k ? malloc((size_t)k * sizeof *block + chars) : NULL;
    if (block) {
        qsort(list, (size_t)k, sizeof *list, cmp_str);
        char *s = (char *)(block + k);
        for (int64_t i = 0; i < k; i++) {
            size_t len = strlen(list[i]) + 1;
            block[i] = memcpy(s, list[i], len);
            s += len;
        }
    }
    for (int64_t i = 0; i < k; i++)
        free(list[i]);
    free(list);
    if (!block)
        return attn_fail(k ? ATTN_ENOMEM : ATTN_EIO,
                         "corpus haystack: expected documents of the %s pool under %s, found %lld",
                         split == TASK_TEST ? "test" : split == TASK_VALID ? "valid" : "train", root, (long long)k);
    *paths = block, *n = k;
    return 0;
}

static int read_file(const char *path, char **buf, size_t *n)
{
    FILE *f = fopen(path, "rb");
    *buf = NULL;
    if (!f)
        return attn_fail(ATTN_EIO, "corpus document %s: expected a readable file, cannot open it", path);
    size_t cap = 1 << 14, len = 0;
    char *b = malloc(cap + 1);
    size_t got;
    while (b && (got = fread(b + len, 1, cap - len, f)) > 0) {
        len += got;
        if (len == cap) {
            char *grown = realloc(b, 2 * cap + 1);
            if (!grown)
                free(b);
            b = grown, cap *= 2;
        }
    }
    fclose(f);
    if (!b)
        return attn_fail(ATTN_ENOMEM, "corpus document %s: cannot allocate its bytes", path);
    b[len] = '\0';
    *buf = b, *n = len;
    return 0;
}

int niah_corpus_read_body(const char *path, char **body, size_t *n)
{
    char *raw;
    size_t len = 0;
    *body = NULL, *n = 0;
    int rc = read_file(path, &raw, &len);
    if (rc)
        return rc;
    const char *end = NULL;
    cJSON *doc = cJSON_ParseWithLengthOpts(raw, len, &end, 0);
    if (!doc) {
        long at = end ? (long)(end - raw) : -1;
        free(raw);
        return attn_fail(ATTN_EINVAL, "corpus document %s: expected a JSON object, found malformed JSON near byte %ld",
                         path, at);
    }
    free(raw);
    const cJSON *text = cJSON_GetObjectItemCaseSensitive(doc, "text");
    if (!cJSON_IsString(text) || !text->valuestring) {
        cJSON_Delete(doc);
        return attn_fail(ATTN_EINVAL, "corpus document %s: expected a string field \"text\", found none", path);
    }
    /* the body starts after the first blank line; no blank line = headers only */
    const char *s = text->valuestring, *lf = strstr(s, "\n\n"), *crlf = strstr(s, "\r\n\r\n");
    const char *start = lf && (!crlf || lf < crlf) ? lf + 2 : crlf ? crlf + 4 : s + strlen(s);
    *n = strlen(start);
    *body = malloc(*n + 1);
    if (*body)
        memcpy(*body, start, *n + 1);
    cJSON_Delete(doc);
    return *body ? 0 : attn_fail(ATTN_ENOMEM, "corpus document %s: cannot allocate its body", path);
}

static int corpus_open(corpus *c, const char *data_dir, task_split split)
{
    char root[4096];
    int rc = niah_corpus_root(data_dir, root, sizeof root);
    if (!rc)
        rc = niah_corpus_list(root, split, &c->paths, &c->n);
    if (rc)
        return rc;
    c->body = calloc((size_t)c->n, sizeof *c->body);
    c->blen = calloc((size_t)c->n, sizeof *c->blen);
    c->essay = calloc((size_t)c->n, sizeof *c->essay);
    if (!c->body || !c->blen || !c->essay)
        return attn_fail(ATTN_ENOMEM, "corpus haystack: cannot index %lld documents", (long long)c->n);
    return 0;
}

static void corpus_close(corpus *c)
{
    for (int64_t i = 0; c->body && i < c->n; i++)
        free(c->body[i]);
    free(c->body);
    free(c->blen);
    free(c->essay);
    free(c->paths);
    memset(c, 0, sizeof *c);
}

/* Document i's body, read on first use. */
static int corpus_doc(corpus *c, int64_t i)
{
    return c->body[i] ? 0 : niah_corpus_read_body(c->paths[i], &c->body[i], &c->blen[i]);
}

/* --- essay-like documents ---------------------------------------------- */

/* An HTML tag: '<', an optional '/', letters, then '>' or a space (mail
 * addresses such as <a@b.c> are not tags). */
static int has_html_tag(const char *s)
{
    for (const char *p = strchr(s, '<'); p; p = strchr(p + 1, '<')) {
        const char *q = p + 1 + (p[1] == '/');
        const char *w = q;
        while (isalpha((unsigned char)*w))
            w++;
        if (w > q && (*w == '>' || *w == ' '))
            return 1;
    }
    return 0;
}

int niah_corpus_is_essay(const char *path, const char *body)
{
    const char *name = strrchr(path, '/');
    const char *group = name;
    while (group && group > path && group[-1] != '/')
        group--;
    return name && group && strncmp(group, "easy-ham", 8) == 0 && !has_html_tag(body);
}

/* Every whitespace run as one space, none at either end (in place). */
static size_t squeeze_space(char *s)
{
    size_t k = 0;
    for (const char *p = s; *p; p++) {
        if (!isspace((unsigned char)*p))
            s[k++] = *p;
        else if (k && !isspace((unsigned char)p[1]) && p[1])
            s[k++] = ' ';
    }
    s[k] = '\0';
    return k;
}

/* Document i as an essay: read, judged and normalised on first use. */
static int essay_doc(corpus *c, int64_t i)
{
    if (c->essay[i])
        return 0;
    int rc = corpus_doc(c, i);
    if (rc)
        return rc;
    c->essay[i] = niah_corpus_is_essay(c->paths[i], c->body[i]) ? 1 : -1;
    if (c->essay[i] > 0)
        c->blen[i] = squeeze_space(c->body[i]);
    c->essay[i] = c->essay[i] > 0 && c->blen[i] > 0 ? 1 : -1;
    return 0;
}

/* A random pool document with a usable body (essay: an essay document);
 * unusable draws are skipped, up to 100000 in a row. */
static int draw_doc(corpus *c, attn_rng *r, int essay, int64_t *i)
{
    for (int64_t tries = 0; tries < 100000; tries++) {
        *i = (int64_t)recall_below(r, (uint64_t)c->n);
        int rc = essay ? essay_doc(c, *i) : corpus_doc(c, *i);
        if (rc || (essay ? c->essay[*i] > 0 : c->blen[*i] > 0))
            return rc;
    }
    return attn_fail(ATTN_EINVAL, "%s haystack: expected %s in the pool, found none in 100000 draws",
                     essay ? "essay" : "corpus", essay ? "ham messages without HTML" : "non-empty message bodies");
}

/* Random pool documents until n bytes: corpus joins bodies by '\n' and
 * takes one random span of a body that covers the rest; essay joins whole
 * documents from their start by ' ' and cuts the last one. */
static int docs_fill(corpus *c, attn_rng *r, int essay, uint8_t *out, int64_t n)
{
    int64_t got = 0;
    while (got < n) {
        int64_t i;
        int rc = draw_doc(c, r, essay, &i);
        if (rc)
            return rc;
        int64_t k = (int64_t)c->blen[i], need = n - got, off = 0;
        if (k >= need) { /* it covers the rest */
            off = essay ? 0 : (int64_t)recall_below(r, (uint64_t)(k - need + 1));
            k = need;
        }
        memcpy(out + got, c->body[i] + off, (size_t)k);
        got += k;
        if (got < n)
            out[got++] = essay ? ' ' : '\n';
    }
    return 0;
}

/* --- order-2 byte Markov chain ------------------------------------------ */

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* Trigram counts of text [tlen] (the chain owns text afterwards). */
static int markov_fit(markov *m, uint8_t *text, int64_t tlen)
{
    m->text = text, m->tlen = tlen;
    int64_t k = tlen - 2;
    uint32_t *codes = malloc((size_t)(k > 0 ? k : 1) * sizeof *codes);
    m->ctx_begin = calloc(65537, sizeof *m->ctx_begin);
    m->next = malloc((size_t)(k > 0 ? k : 1));
    m->cum = malloc((size_t)(k > 0 ? k : 1) * sizeof *m->cum);
    if (!codes || !m->ctx_begin || !m->next || !m->cum) {
        free(codes);
        return attn_fail(ATTN_ENOMEM, "random haystack: cannot fit a chain to %lld bytes", (long long)tlen);
    }
    if (k < 1) {
        free(codes);
        return attn_fail(ATTN_EINVAL, "random haystack: expected >= 3 bytes of text to fit, found %lld",
                         (long long)tlen);
    }
    for (int64_t i = 0; i < k; i++)
        codes[i] = (uint32_t)text[i] << 16 | (uint32_t)text[i + 1] << 8 | text[i + 2];
    qsort(codes, (size_t)k, sizeof *codes, cmp_u32);
    int64_t u = 0;
    uint32_t run = 0, prev_ctx = UINT32_MAX;
    for (int64_t i = 0; i < k; i++) {
        uint32_t ctx = codes[i] >> 8;
        run = ctx == prev_ctx ? run + 1 : 1;
        prev_ctx = ctx;
        if (i + 1 < k && codes[i + 1] == codes[i])
            continue; /* count the whole run of this trigram first */
        m->next[u] = (uint8_t)(codes[i] & 255);
        m->cum[u] = run;
        m->ctx_begin[ctx + 1]++;
        u++;
    }
    for (int c = 0; c < 65536; c++)
        m->ctx_begin[c + 1] += m->ctx_begin[c];
    free(codes);
    return 0;
}

static void markov_free(markov *m)
{
    free(m->text);
    free(m->ctx_begin);
    free(m->next);
    free(m->cum);
    memset(m, 0, sizeof *m);
}

static void markov_fill(const markov *m, attn_rng *r, uint8_t *out, int64_t n)
{
    int64_t i = (int64_t)recall_below(r, (uint64_t)(m->tlen - 2));
    uint32_t a = m->text[i], b = m->text[i + 1];
    for (int64_t got = 0; got < n;) {
        uint32_t ctx = a << 8 | b, lo = m->ctx_begin[ctx], hi = m->ctx_begin[ctx + 1];
        if (lo == hi) { /* dead end (the text's last bigram): restart anywhere */
            i = (int64_t)recall_below(r, (uint64_t)(m->tlen - 2));
            a = m->text[i], b = m->text[i + 1];
            continue;
        }
        uint32_t x = (uint32_t)recall_below(r, m->cum[hi - 1]);
        while (m->cum[lo] <= x) /* contexts have few successors: linear scan */
            lo++;
        out[got++] = m->next[lo];
        a = b, b = m->next[lo];
    }
}

/* The noise stream: block, ' ', block, ' ', ... cut to n bytes. */
static void noise_fill(uint8_t *out, int64_t n)
{
    int64_t period = (int64_t)sizeof niah_noise_block; /* the block and one space */
    for (int64_t k = 0; k < n; k++) {
        int64_t j = k % period;
        out[k] = (uint8_t)(j < period - 1 ? niah_noise_block[j] : ' ');
    }
}

/* The text the chain is fitted to: two noise periods (so every context has
 * a successor), or up to 1 MiB of train-pool bodies in name order. */
static int fit_text(niah_haystack *h, niah_fit_kind fit, const char *data_dir)
{
    if (fit == NIAH_FIT_NOISE) {
        int64_t n = 2 * (int64_t)sizeof niah_noise_block;
        uint8_t *t = malloc((size_t)n);
        if (!t)
            return attn_fail(ATTN_ENOMEM, "random haystack: cannot allocate the noise text");
        noise_fill(t, n);
        return markov_fit(&h->m, t, n);
    }
    int rc = corpus_open(&h->c, data_dir, TASK_TRAIN);
    int64_t cap = 1 << 20, len = 0;
    uint8_t *t = rc ? NULL : malloc((size_t)cap);
    if (!rc && !t)
        rc = attn_fail(ATTN_ENOMEM, "random haystack: cannot allocate %lld bytes of fit text", (long long)cap);
    for (int64_t i = 0; !rc && i < h->c.n && len < cap; i++) {
        if ((rc = corpus_doc(&h->c, i)) != 0)
            break;
        int64_t k = (int64_t)h->c.blen[i] < cap - len ? (int64_t)h->c.blen[i] : cap - len;
        memcpy(t + len, h->c.body[i], (size_t)k);
        len += k;
        if (len < cap)
            t[len++] = '\n';
    }
    snprintf(h->source, sizeof h->source, "stand-in:spam-assassin");
    if (rc) {
        free(t);
        return rc;
    }
    return markov_fit(&h->m, t, len);
}

const char *const niah_hay_names[] = {"noise", "random", "corpus", "essay", "needle", "ruler", NULL};
const char *const niah_fit_names[] = {"noise", "corpus", NULL};

int niah_haystack_open(niah_haystack **out, niah_hay_kind kind, niah_fit_kind fit, task_split split,
                       const char *data_dir)
{
    *out = NULL;
    niah_haystack *h = calloc(1, sizeof *h);
    if (!h)
        return attn_fail(ATTN_ENOMEM, "haystack: cannot allocate");
    snprintf(h->source, sizeof h->source, "generated");
    int rc = 0;
    h->kind = kind;
    if (kind == NIAH_HAY_RANDOM)
        rc = fit_text(h, fit, data_dir);
    else if (kind == NIAH_HAY_CORPUS || kind == NIAH_HAY_ESSAY) {
        rc = corpus_open(&h->c, data_dir, split);
        snprintf(h->source, sizeof h->source, "stand-in:spam-assassin");
    } else if (kind != NIAH_HAY_NOISE)
        rc = attn_fail(ATTN_EINVAL, "haystack: expected noise, random, corpus or essay, found %s (built by the generator)",
                       niah_hay_names[kind]);
    if (rc) {
        niah_haystack_close(h);
        return rc;
    }
    *out = h;
    return 0;
}

void niah_haystack_close(niah_haystack *h)
{
    if (!h)
        return;
    corpus_close(&h->c);
    markov_free(&h->m);
    free(h);
}

const char *niah_haystack_source(const niah_haystack *h) { return h->source; }

int niah_haystack_fill(niah_haystack *h, attn_rng *r, uint8_t *out, int64_t n)
{
    if (n <= 0)
        return 0;
    if (h->kind == NIAH_HAY_NOISE)
        noise_fill(out, n);
    else if (h->kind == NIAH_HAY_RANDOM)
        markov_fill(&h->m, r, out, n);
    else
        return docs_fill(&h->c, r, h->kind == NIAH_HAY_ESSAY, out, n);
    return 0;
}
