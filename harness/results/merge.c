#include "merge.h"

#include "common/attn_error.h"
#include "csvw.h"

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { MAX_SOURCES = 4097, WRITE_BATCH = 32 };

/* One row seen in pass 1: its key (job_id, or its content in peak.csv), its
 * content hash, where it is and its order of appearance. */
typedef struct {
    uint64_t key, content;
    int src;
    long line;
    size_t seq;
} seen_row;

typedef struct {
    const char *paths[MAX_SOURCES]; /* [0]: OUT's file (may be absent), then the parts' */
    int n;
    int by_content;                 /* peak.csv */
    seen_row *rows;
    size_t n_rows, cap;
    int src;                        /* being read */
    unsigned char *keep;            /* by seq: append to OUT */
    csvw out;
    csvw_row *pending;
    int n_pending;
    size_t seq, written;
} merge_file;

static uint64_t content_hash(const csvw_row *r)
{
    uint64_t h = 1469598103934665603ull;
    for (int c = 0; c < ATTN_COL__COUNT; c++)
        for (const unsigned char *p = (const unsigned char *)r->cell[c];; p++) {
            h = (h ^ *p) * 1099511628211ull; /* the NUL separates the cells */
            if (!*p)
                break;
        }
    return h;
}

static int note_row(const csvw_row *row, long line, void *ud)
{
    merge_file *m = ud;
    if (m->n_rows == m->cap) {
        size_t cap = m->cap ? 2 * m->cap : 256;
        seen_row *g = realloc(m->rows, cap * sizeof *g);
        if (!g)
            return attn_fail(ATTN_ENOMEM, "out of memory for %zu rows", cap);
        m->rows = g, m->cap = cap;
    }
    seen_row *s = &m->rows[m->n_rows];
    s->content = content_hash(row);
    s->key = m->by_content ? s->content : strtoull(row->cell[ATTN_COL_JOB_ID], NULL, 16);
    s->src = m->src, s->line = line, s->seq = m->n_rows++;
    return 0;
}

static int by_key_then_seq(const void *a, const void *b)
{
    const seen_row *x = a, *y = b;
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    return (x->seq > y->seq) - (x->seq < y->seq);
}

/* Which rows to append: the first of each key, unless OUT has it; later
 * ones must repeat it cell for cell. */
static int decide(merge_file *m, results_merge_stats *st)
{
    qsort(m->rows, m->n_rows, sizeof *m->rows, by_key_then_seq);
    m->keep = calloc(m->n_rows ? m->n_rows : 1, 1);
    if (!m->keep)
        return attn_fail(ATTN_ENOMEM, "out of memory for %zu rows", m->n_rows);
    for (size_t i = 0; i < m->n_rows; i++) {
        const seen_row *r = &m->rows[i], *first = r;
        while (first > m->rows && first[-1].key == r->key)
            first--;
        if (first == r) {
            m->keep[r->seq] = r->src > 0;
            continue;
        }
        if (r->content != first->content)
            return attn_fail(ATTN_EINVAL, "%s:%ld: job_id %016llx: expected the cells of %s:%ld (the same job), "
                             "found different ones; nothing merged into this file", m->paths[r->src], r->line,
                             (unsigned long long)r->key, m->paths[first->src], first->line);
        st->duplicates += r->src > 0;
    }
    return 0;
}

static int flush(merge_file *m)
{
    int rc = m->n_pending ? csvw_write_rows(&m->out, m->pending, m->n_pending) : 0;
    m->written += (size_t)m->n_pending;
    m->n_pending = 0;
    return rc;
}

static int copy_row(const csvw_row *row, long line, void *ud)
{
    (void)line;
    merge_file *m = ud;
    if (!m->keep[m->seq++])
        return 0;
    m->pending[m->n_pending++] = *row;
    return m->n_pending == WRITE_BATCH ? flush(m) : 0;
}

/* Pass 1 over every source, the decision, then pass 2 appending. */
static int merge_one(merge_file *m, results_merge_stats *st)
{
    int rc = 0;
    for (m->src = 0; rc >= 0 && m->src < m->n; m->src++) {
        if (m->src == 0 && access(m->paths[0], F_OK) != 0)
            continue; /* OUT has no such file yet */
        size_t before = m->n_rows;
        rc = csvw_read_rows_at(m->paths[m->src], note_row, m);
        if (m->src > 0)
            st->rows_read += m->n_rows - before;
    }
    if (rc < 0 || (rc = decide(m, st)) != 0)
        return rc;
    m->seq = 0; /* pass 2 numbers the parts' rows as pass 1 did: after OUT's */
    for (size_t i = 0; i < m->n_rows; i++)
        m->seq += m->rows[i].src == 0;
    if ((rc = csvw_open(&m->out, m->paths[0])) != 0)
        return rc;
    for (int s = 1; rc >= 0 && s < m->n; s++)
        rc = csvw_read_rows_at(m->paths[s], copy_row, m);
    if (rc >= 0)
        rc = flush(m);
    int crc = csvw_close(&m->out);
    st->written += m->written;
    return rc < 0 ? rc : crc;
}

static int merge_name(const char *const *dirs, int n, const char *out, const char *name, results_merge_stats *st)
{
    merge_file *m = calloc(1, sizeof *m);
    char (*buf)[1100] = calloc((size_t)n + 1, sizeof *buf);
    csvw_row *pending = malloc(WRITE_BATCH * sizeof *pending);
    int rc = !m || !buf || !pending ? attn_fail(ATTN_ENOMEM, "out of memory") : 0;
    if (!rc) {
        m->pending = pending;
        m->by_content = !strcmp(name, "peak.csv");
        snprintf(buf[0], sizeof buf[0], "%s/%s", out, name);
        m->paths[m->n++] = buf[0];
        for (int d = 0; d < n; d++) {
            snprintf(buf[m->n], sizeof buf[m->n], "%s/%s", dirs[d], name);
            if (access(buf[m->n], F_OK) == 0)
                m->paths[m->n] = buf[m->n], m->n++;
        }
        rc = merge_one(m, st);
        st->files++;
    }
    if (m)
        free(m->rows), free(m->keep);
    free(m), free(buf), free(pending);
    return rc;
}

static int is_csv(const char *name)
{
    size_t n = strlen(name);
    return n > 4 && !strcmp(name + n - 4, ".csv");
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The distinct *.csv names of the dirs, sorted; *names malloc'ed. */
static int list_names(const char *const *dirs, int n, char ***names, size_t *count)
{
    size_t k = 0, cap = 16;
    char **v = malloc(cap * sizeof *v);
    int rc = v ? 0 : attn_fail(ATTN_ENOMEM, "out of memory");
    for (int d = 0; !rc && d < n; d++) {
        DIR *dir = opendir(dirs[d]);
        if (!dir) {
            rc = attn_fail(ATTN_EIO, "%s: cannot read the directory: %s", dirs[d], strerror(errno));
            break;
        }
        for (struct dirent *e; !rc && (e = readdir(dir));) {
            int dup = 0;
            for (size_t i = 0; i < k; i++)
                dup |= !strcmp(v[i], e->d_name);
            if (!is_csv(e->d_name) || dup)
                continue;
            if (k == cap) {
                char **g = realloc(v, 2 * cap * sizeof *v);
                if (!g) {
                    rc = attn_fail(ATTN_ENOMEM, "out of memory");
                    break;
                }
                v = g, cap *= 2;
            }
            if (!(v[k] = strdup(e->d_name)))
                rc = attn_fail(ATTN_ENOMEM, "out of memory");
            else
                k++;
        }
        closedir(dir);
    }
    if (!rc)
        qsort(v, k, sizeof *v, by_name);
    *names = v, *count = k;
    return rc;
}

int results_merge(const char *const *dirs, int n, const char *out, results_merge_stats *st)
{
    memset(st, 0, sizeof *st);
    if (n < 1 || n >= MAX_SOURCES)
        return attn_fail(ATTN_EINVAL, "expected 1 to %d part directories, found %d", MAX_SOURCES - 1, n);
    char **names = NULL;
    size_t count = 0;
    int rc = list_names(dirs, n, &names, &count);
    if (!rc && mkdir(out, 0777) != 0 && errno != EEXIST)
        rc = attn_fail(ATTN_EIO, "%s: cannot create the directory: %s", out, strerror(errno));
    for (size_t i = 0; !rc && i < count; i++)
        rc = merge_name(dirs, n, out, names[i], st);
    for (size_t i = 0; i < count; i++)
        free(names[i]);
    free(names);
    return rc;
}
