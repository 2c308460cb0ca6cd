/* LRA Text (Maas et al. 2011 IMDb; Tay et al. 2021): binary sentiment of an IMDb review read as bytes
 * (byte b -> token b + 1, 0 = PAD, CLS = 257 first; max_len 4096 as in the
 * paper, the LRA repository's config uses 1000).
 *
 * Official (--data DIR): the aclImdb tree DIR[/aclImdb]/{train,test}/{pos,neg}/
 * *.txt (pos = 1), or the reference's custom-task CSVs DIR/<name>_{train,val,
 * test}.tsv, which despite the name are comma-separated with a Source,Target
 * header (lra_benchmarks/text_classification/input_pipeline.py). LRA
 * validates on the IMDb test split; attnbench holds out 10% of train instead
 * (so the test split stays unseen): per class, the files in a fixed hash order of their names,
 * the last 10% valid, so the split is the same for every seed.
 *
 * Stand-in (no --data, or DIR holding the corpus): SpamAssassin bodies, spam
 * = 1, split 80/10/10 by group (spam_corpus.c); data_source
 * "stand-in:spam-assassin". Never compare with published IMDb numbers. */
#include "lra_text.h"

#include "common/rng.h"

#include <csv.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define TEXT_MAX_FILE ((size_t)16 << 20)

/* ---------------------------------------------------------------- shared helpers */

int32_t lra_text_encode(const unsigned char *bytes, size_t n, int64_t len, int32_t *row)
{
    size_t m = n < (size_t)(len - 1) ? n : (size_t)(len - 1);
    row[0] = LRA_TEXT_CLS;
    for (size_t i = 0; i < m; i++)
        row[1 + i] = (int32_t)bytes[i] + 1;
    for (int64_t i = 1 + (int64_t)m; i < len; i++)
        row[i] = LRA_TEXT_PAD;
    return (int32_t)(1 + m);
}

int lra_text_params(const opt_def *rows, const param_bag *p, const char *task, int64_t *len)
{
    int rc = task_params_check(rows, p, task);
    *len = task_param_int(rows, p, "max_len", &rc);
    return rc;
}

int lra_cmp_keyed(const void *a, const void *b)
{
    const lra_keyed *x = a, *y = b;
    return x->key != y->key ? (x->key < y->key ? -1 : 1) : (x->i > y->i) - (x->i < y->i);
}

int lra_want_rows(uint64_t seed, uint64_t tag, int64_t rows, int64_t n, int64_t **want)
{
    int64_t *pick;
    *want = NULL;
    int rc = lra_pick(seed, tag, rows, n, &pick);
    if (rc)
        return rc;
    *want = malloc((size_t)(rows ? rows : 1) * sizeof **want);
    for (int64_t r = 0; *want && r < rows; r++)
        (*want)[r] = -1;
    for (int64_t i = 0; *want && i < n; i++)
        (*want)[pick[i]] = i;
    free(pick);
    return *want ? 0 : attn_fail(ATTN_ENOMEM, "out of memory choosing %lld of %lld rows", (long long)n, (long long)rows);
}

void lra_text_stats(const task_data *d, double *nonpad, double *pos_frac)
{
    double f = 0, p = 0;
    for (int64_t i = 0; i < d->n; i++) {
        f += (double)d->lengths[i] / (double)d->len;
        p += d->labels[i] == 1;
    }
    *nonpad = f / (double)d->n, *pos_frac = p / (double)d->n;
}

uint64_t lra_name_key(const char *name)
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a, then mixed: a fixed pseudo-random order */
    for (const char *p = name; *p; p++)
        h = (h ^ (unsigned char)*p) * 0x100000001b3ull;
    return attn_splitmix64(h);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

void lra_free_names(char **names, int64_t count)
{
    for (int64_t i = 0; names && i < count; i++)
        free(names[i]);
    free(names);
}

int lra_list_files(const char *dir, const char *suffix, char ***names, int64_t *count)
{
    *names = NULL, *count = 0;
    DIR *d = opendir(dir);
    if (!d)
        return attn_fail(ATTN_EIO, "%s: cannot open the directory (%s)", dir, strerror(errno));
    size_t sl = strlen(suffix);
    int64_t cap = 0;
    int rc = 0;
    for (struct dirent *e; !rc && (e = readdir(d)) != NULL;) {
        size_t l = strlen(e->d_name);
        if (l <= sl || strcmp(e->d_name + l - sl, suffix) != 0 || e->d_name[0] == '.')
            continue;
        char **nn = *count < cap ? *names : realloc(*names, (size_t)(cap = cap ? 2 * cap : 256) * sizeof *nn);
        if (nn)
            *names = nn;
        if (!nn || (nn[*count] = strdup(e->d_name)) == NULL)
            rc = attn_fail(ATTN_ENOMEM, "%s: out of memory listing it", dir);
        else
            (*count)++;
    }
    closedir(d);
    if (!rc && *count == 0)
        rc = attn_fail(ATTN_EINVAL, "%s: expected files named *%s, found none", dir, suffix);
    if (rc) {
        lra_free_names(*names, *count);
        *names = NULL, *count = 0;
        return rc;
    }
    qsort(*names, (size_t)*count, sizeof **names, cmp_str);
    return 0;
}

/* ---------------------------------------------------------------- delimited tables */

typedef struct {
    const char *path;
    lra_row_fn fn;
    void *ud;
    char *buf;            /* the current row's fields, each NUL-terminated */
    size_t used, cap;
    size_t *off, *size;   /* per field */
    const char **ptr;
    int n, fcap, rc, last_term;
    int64_t line, nl;     /* first line of the current row; newlines inside its (quoted) fields */
} table_state;

static void table_field(void *data, size_t n, void *ud)
{
    table_state *s = ud;
    if (s->rc)
        return;
    if (s->n == s->fcap) {
        int fc = s->fcap ? 2 * s->fcap : 8;
        size_t *o = realloc(s->off, (size_t)fc * sizeof *o), *z = o ? realloc(s->size, (size_t)fc * sizeof *z) : NULL;
        const char **p = z ? realloc(s->ptr, (size_t)fc * sizeof *p) : NULL;
        s->off = o ? o : s->off, s->size = z ? z : s->size, s->ptr = p ? p : s->ptr;
        if (!p) {
            s->rc = attn_fail(ATTN_ENOMEM, "%s:%lld: out of memory", s->path, (long long)s->line);
            return;
        }
        s->fcap = fc;
    }
    if (s->used + n + 1 > s->cap) {
        size_t c = 2 * (s->used + n + 1);
        char *b = realloc(s->buf, c);
        if (!b) {
            s->rc = attn_fail(ATTN_ENOMEM, "%s:%lld: out of memory", s->path, (long long)s->line);
            return;
        }
        s->buf = b, s->cap = c;
    }
    if (n)
        memcpy(s->buf + s->used, data, n);
    s->buf[s->used + n] = '\0';
    s->off[s->n] = s->used, s->size[s->n] = n;
    s->used += n + 1;
    for (size_t i = 0; i < n; i++)
        s->nl += ((const char *)data)[i] == '\n';
    s->n++;
}

static void table_row(int c, void *ud)
{
    table_state *s = ud;
    if (!s->rc && s->n > 0) {
        for (int i = 0; i < s->n; i++)
            s->ptr[i] = s->buf + s->off[i];
        lra_row row = {.field = s->ptr, .size = s->size, .n = s->n, .line = s->line};
        s->rc = s->fn(&row, s->ud);
        s->line += 1 + s->nl;
    } else if (!(c == '\n' && s->last_term == '\r')) { /* a blank line, not the LF of a CRLF */
        s->line++;
    }
    s->n = 0, s->used = 0, s->nl = 0, s->last_term = c;
}

/* libcsv trims spaces and tabs around unquoted fields by default; the
 * documents are read byte for byte, so nothing is a space to it. */
static int no_space(unsigned char c)
{
    (void)c;
    return 0;
}

int lra_table_read(const char *path, unsigned char delim, unsigned char quote, lra_row_fn fn, void *ud)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return attn_fail(ATTN_EIO, "%s: cannot open (%s)", path, strerror(errno));
    struct csv_parser p;
    table_state s = {.path = path, .fn = fn, .ud = ud, .line = 1};
    if (csv_init(&p, CSV_REPALL_NL) != 0) {
        fclose(f);
        return attn_fail(ATTN_ENOMEM, "%s: out of memory", path);
    }
    csv_set_delim(&p, delim);
    csv_set_quote(&p, quote ? quote : '\a'); /* '\a' never occurs: quotes are data */
    csv_set_space_func(&p, no_space);
    char chunk[1 << 16];
    for (size_t got; !s.rc && (got = fread(chunk, 1, sizeof chunk, f)) > 0;)
        if (csv_parse(&p, chunk, got, table_field, table_row, &s) != got && !s.rc)
            s.rc = attn_fail(ATTN_EINVAL, "%s:%lld: %s", path, (long long)s.line, csv_strerror(csv_error(&p)));
    if (!s.rc && ferror(f))
        s.rc = attn_fail(ATTN_EIO, "%s: read error", path);
    if (!s.rc)
        csv_fini(&p, table_field, table_row, &s);
    csv_free(&p);
    fclose(f);
    free(s.buf), free(s.off), free(s.size), free(s.ptr);
    return s.rc;
}

/* ---------------------------------------------------------------- the text task */

static const char *split_name(task_split s) { return s == TASK_TRAIN ? "train" : s == TASK_VALID ? "valid" : "test"; }

/* Vocabulary, provenance and the statistics every row reports. */
static void text_finish(task_data *out, const char *source, const char *extra)
{
    double nonpad, pos;
    lra_text_stats(out, &nonpad, &pos);
    out->vocab = LRA_TEXT_VOCAB, out->n_classes = 2, out->pad = LRA_TEXT_PAD;
    snprintf(out->data_source, sizeof out->data_source, "%s", source);
    snprintf(out->meta, sizeof out->meta, "max_len=%lld;nonpad=%.4f;pos_frac=%.4f%s", (long long)out->len, nonpad,
             pos, extra);
}

static int too_few(const char *what, task_split split, int64_t have, int64_t n)
{
    return attn_fail(ATTN_EINVAL, "%s: the %s split has %lld examples, %lld asked for", what, split_name(split),
                     (long long)have, (long long)n);
}

typedef struct {
    char *path;
    int label;
    uint64_t key;
} text_file;

static int cmp_file(const void *a, const void *b)
{
    const text_file *x = a, *y = b;
    return x->key != y->key ? (x->key < y->key ? -1 : 1) : strcmp(x->path, y->path);
}

static int has_dir(const char *root, const char *sub)
{
    char p[1300];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", root, sub);
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The review files of a split: test = test/, train and valid = the first 90%
 * and last 10% of train/ per class in the fixed name-hash order. */
static int imdb_files(const char *root, task_split split, text_file **files, int64_t *count)
{
    static const char *const cls[2] = {"neg", "pos"};
    *files = NULL, *count = 0;
    int rc = 0;
    for (int label = 0; !rc && label < 2; label++) {
        char dir[1200], **names;
        int64_t m;
        snprintf(dir, sizeof dir, "%s/%s/%s", root, split == TASK_TEST ? "test" : "train", cls[label]);
        if ((rc = lra_list_files(dir, ".txt", &names, &m)) != 0)
            break;
        text_file *f = realloc(*files, (size_t)(*count + m) * sizeof *f);
        if (!f) {
            lra_free_names(names, m);
            return attn_fail(ATTN_ENOMEM, "%s: out of memory", dir);
        }
        *files = f;
        text_file *c = f + *count;
        for (int64_t i = 0; i < m; i++) {
            size_t l = strlen(dir) + strlen(names[i]) + 2;
            c[i] = (text_file){.path = malloc(l), .label = label, .key = lra_name_key(names[i])};
            if (c[i].path)
                snprintf(c[i].path, l, "%s/%s", dir, names[i]);
        }
        lra_free_names(names, m);
        qsort(c, (size_t)m, sizeof *c, cmp_file);
        int64_t valid = split == TASK_TEST ? 0 : (m + 5) / 10, lo = split == TASK_VALID ? m - valid : 0;
        int64_t hi = split == TASK_TRAIN ? m - valid : m;
        for (int64_t i = 0; i < m; i++)
            if (i < lo || i >= hi)
                free(c[i].path);
        memmove(c, c + lo, (size_t)(hi - lo) * sizeof *c);
        *count += hi - lo;
        for (int64_t i = 0; i < hi - lo; i++)
            if (!c[i].path)
                rc = attn_fail(ATTN_ENOMEM, "%s: out of memory", dir);
    }
    return rc;
}

static int imdb_official(const char *root, task_split split, uint64_t seed, int64_t n, int64_t len, task_data *out)
{
    text_file *files;
    int64_t count, *pick = NULL;
    int rc = imdb_files(root, split, &files, &count);
    if (!rc && n > count)
        rc = too_few(root, split, count, n);
    if (!rc && !(rc = lra_pick(seed, 300 + (uint64_t)split, count, n, &pick)))
        rc = task_data_alloc(out, "text", TASK_CLASSIFY, n, len);
    for (int64_t i = 0; !rc && i < n; i++) {
        const text_file *f = &files[pick[i]];
        unsigned char *b;
        size_t m;
        if ((rc = lra_read_file(f->path, TEXT_MAX_FILE, &b, &m)) != 0)
            break;
        if (m == 0)
            rc = attn_fail(ATTN_EINVAL, "%s: expected a review, found an empty file", f->path);
        out->lengths[i] = lra_text_encode(b, m, len, task_tokens(out, i));
        out->labels[i] = f->label;
        free(b);
    }
    if (!rc)
        text_finish(out, "official", ";valid=last_10pct_of_train");
    else if (out->tokens)
        task_data_free(out);
    for (int64_t i = 0; i < count; i++)
        free(files[i].path);
    free(files);
    free(pick);
    return rc;
}

/* The one file of dir whose name ends in "<split>.tsv" or "<split>.csv"
 * (the reference's <task>_{train,val,test}.tsv); 1 if found. */
static int find_csv(const char *dir, task_split split, char *path, size_t n)
{
    static const char *const stem[3] = {"train", "val", "test"};
    DIR *d = opendir(dir);
    int found = 0;
    for (struct dirent *e; d && (e = readdir(d)) != NULL;) {
        size_t l = strlen(e->d_name), sl = strlen(stem[split]);
        if (l >= sl + 4 && strncmp(e->d_name + l - sl - 4, stem[split], sl) == 0 &&
            (strcmp(e->d_name + l - 4, ".tsv") == 0 || strcmp(e->d_name + l - 4, ".csv") == 0)) {
            snprintf(path, n, "%s/%s", dir, e->d_name);
            found++;
        }
    }
    if (d)
        closedir(d);
    return found == 1;
}

typedef struct {
    const char *path;
    int src, tgt, ncol;
    int64_t rows, len;
    task_data *out;
    const int64_t *want; /* file row -> output index or -1; NULL: count only */
} csv_state;

static int csv_row(const lra_row *r, void *ud)
{
    csv_state *s = ud;
    if (s->ncol == 0) { /* the header */
        s->src = s->tgt = -1;
        for (int i = 0; i < r->n; i++) {
            s->src = strcmp(r->field[i], "Source") == 0 ? i : s->src;
            s->tgt = strcmp(r->field[i], "Target") == 0 ? i : s->tgt;
        }
        if (s->src < 0 || s->tgt < 0)
            return attn_fail(ATTN_EINVAL, "%s:%lld: expected a header with columns Source,Target, found '%.40s%s'",
                             s->path, (long long)r->line, r->field[0], r->n > 1 ? ",..." : "");
        s->ncol = r->n;
        return 0;
    }
    if (r->n != s->ncol)
        return attn_fail(ATTN_EINVAL, "%s:%lld: expected %d comma-separated fields (as the header), found %d",
                         s->path, (long long)r->line, s->ncol, r->n);
    const char *t = r->field[s->tgt];
    if (strcmp(t, "0") != 0 && strcmp(t, "1") != 0)
        return attn_fail(ATTN_EINVAL, "%s:%lld: Target: expected 0 or 1, found '%.20s'", s->path, (long long)r->line, t);
    if (r->size[s->src] == 0)
        return attn_fail(ATTN_EINVAL, "%s:%lld: Source: expected the text, found an empty field", s->path,
                         (long long)r->line);
    int64_t o = s->want ? s->want[s->rows] : -1;
    if (o >= 0) {
        s->out->lengths[o] = lra_text_encode((const unsigned char *)r->field[s->src], r->size[s->src], s->len,
                                             task_tokens(s->out, o));
        s->out->labels[o] = t[0] - '0';
    }
    s->rows++;
    return 0;
}

/* Counts the rows (and validates them), picks n, then reads those. */
static int csv_official(const char *path, task_split split, uint64_t seed, int64_t n, int64_t len, task_data *out)
{
    csv_state s = {.path = path, .len = len};
    int64_t *want = NULL;
    int rc = lra_table_read(path, ',', '"', csv_row, &s);
    if (!rc && n > s.rows)
        rc = too_few(path, split, s.rows, n);
    if (!rc && !(rc = lra_want_rows(seed, 310 + (uint64_t)split, s.rows, n, &want)) &&
        !(rc = task_data_alloc(out, "text", TASK_CLASSIFY, n, len))) {
        s = (csv_state){.path = path, .len = len, .out = out, .want = want};
        if ((rc = lra_table_read(path, ',', '"', csv_row, &s)) != 0)
            task_data_free(out);
        else
            text_finish(out, "official", ";format=csv");
    }
    free(want);
    return rc;
}

static int spam_standin(const char *root, task_split split, uint64_t seed, int64_t n, int64_t len, task_data *out)
{
    spam_corpus c;
    int64_t *docs = NULL, count = 0, *pick = NULL, spam = 0;
    int rc = spam_corpus_load(root, &c);
    if (!rc)
        rc = spam_corpus_split(&c, NULL, split, &docs, &count);
    if (!rc && n > count)
        rc = too_few("task text (stand-in:spam-assassin)", split, count, n);
    if (!rc && !(rc = lra_pick(seed, 320 + (uint64_t)split, count, n, &pick)))
        rc = task_data_alloc(out, "text", TASK_CLASSIFY, n, len);
    for (int64_t i = 0; !rc && i < n; i++) {
        const spam_doc *d = &c.doc[docs[pick[i]]];
        out->lengths[i] = lra_text_encode(d->body, d->len, len, task_tokens(out, i));
        out->labels[i] = spam_group_is_spam(d->group);
    }
    if (!rc) {
        char extra[160];
        int64_t files = 0;
        for (int g = 0; g < SPAM_GROUPS; g++)
            files += c.files[g];
        for (int64_t i = 0; i < c.n; i++)
            spam += spam_group_is_spam(c.doc[i].group);
        snprintf(extra, sizeof extra, ";files=%lld;duplicates=%lld;corpus_spam=%.4f;split_docs=%lld", (long long)files,
                 (long long)c.duplicates, (double)spam / (double)c.n, (long long)count);
        text_finish(out, "stand-in:spam-assassin", extra);
    }
    free(docs), free(pick);
    spam_corpus_free(&c);
    return rc;
}

static const opt_def text_params[] = {
    {.name = "max_len", .type = OPT_INT, .def = 4096, .lo = 2, .hi = 1 << 20,
     .help = "tokens: CLS + max_len-1 bytes (the LRA repo config uses 1000)"},
    {0},
};

static int text_make(const param_bag *params, task_split split, uint64_t seed, int64_t n, const char *data_dir,
                     task_data *out)
{
    int64_t len;
    int rc = lra_text_params(text_params, params, "text", &len);
    if (rc)
        return rc;
    memset(out, 0, sizeof *out);
    char path[1200], dir[1100];
    if (!data_dir)
        return spam_standin(lra_data_root(), split, seed, n, len, out);
    snprintf(path, sizeof path, "%s/aclImdb", data_dir);
    if (has_dir(path, "train/pos") || has_dir(path, "test/pos"))
        return imdb_official(path, split, seed, n, len, out);
    if (has_dir(data_dir, "train/pos") || has_dir(data_dir, "test/pos"))
        return imdb_official(data_dir, split, seed, n, len, out);
    if (find_csv(data_dir, split, path, sizeof path))
        return csv_official(path, split, seed, n, len, out);
    if (spam_corpus_find(data_dir, dir, sizeof dir) == 0)
        return spam_standin(data_dir, split, seed, n, len, out);
    return attn_fail(ATTN_EINVAL, "%s: expected aclImdb/{train,test}/{pos,neg}/*.txt, {train,test}/{pos,neg}/*.txt, "
                     "one <name>_%s.tsv CSV with a Source,Target header, or the SpamAssassin stand-in "
                     "(spam-assassin/package/data/<group>/*.json); found none", data_dir,
                     split == TASK_VALID ? "val" : split_name(split));
}

const task_def task_lra_text = {
    .name = "text",
    .suite = "lra",
    .description = "LRA Text: binary classification of a byte-level document (official IMDb aclImdb tree or "
                   "Source,Target CSV via --data; stand-in SpamAssassin, spam = 1)",
    .params = text_params,
    .make = text_make,
};
