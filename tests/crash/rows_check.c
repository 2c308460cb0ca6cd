/* attnbench_rowcheck REF_DIR RUN_DIR [HOST_RANKS]: compares the results files of a sweep
 * that was killed and resumed (RUN_DIR) with those of the same sweep run
 * without interruption (REF_DIR), through the project's own CSV reader:
 * every row of every file parses (a torn or malformed row is an error
 * naming file:line), each file holds exactly the reference's job set (by
 * job_id) with no job twice, and each row's identity cells (threads, suite
 * .. data_source) and status equal the reference row's. peak.csv is only
 * parsed: every sweep invocation measures and appends its own peaks. Every
 * checkpoint (*.ckpt) and kv dump (*.kv) left in RUN_DIR must read back
 * whole (size, checksum, header), and no temporary file (*.tmp) nor the
 * resume state of a training (.train-*.ckpt: all are finished) may remain.
 * With HOST_RANKS (an mpirun sweep against a single-process reference), each
 * timed row (a time_ms_median) must have host_ranks HOST_RANKS in RUN_DIR and
 * 1 in REF_DIR, with the same job_id: the column is out of the identity.
 *
 * Prints one line per file, then the totals ("rows compared: N", "peak rows
 * parsed: N", "training rows with the reference's value: N of M": resumed
 * trainings continue from their saved state, so with one thread their
 * values are expected to repeat); exit 0 when everything
 * matches, 1 on a mismatch (each named on stderr), 2 on bad usage or an
 * unreadable file. Used by tests/crash/kill_sweep.sh. */
#include "common/attn_error.h"
#include "harness/measure/kv_file.h"
#include "harness/results/csvw.h"
#include "models/checkpoint.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char id[17];
    char identity[ATTN_CELL_MAX * 2];
    char status[ATTN_CELL_MAX];
    char value[64];
    int train; /* a training row: its value is compared too (informational) */
    int seen;
} ref_row;

typedef struct {
    ref_row *rows;
    size_t n, cap;
} ref_rows;

/* Counts over one RUN file, and what went wrong in it. */
typedef struct {
    const char *file;
    ref_rows *ref;
    long rows, duplicates, extra, identity_diff, status_diff, train_rows, train_same, host_diff;
    const char *host_ranks; /* expected in timed rows; NULL: not checked */
} run_scan;

static const char *want_host_ranks; /* the optional third argument */

/* A timed row whose host_ranks is not `want`: counted and named. */
static long host_ranks_differ(const char *file, const csvw_row *r, const char *want)
{
    if (!want || !r->cell[ATTN_COL_TIME_MS_MEDIAN][0] || !strcmp(r->cell[ATTN_COL_HOST_RANKS], want))
        return 0;
    fprintf(stderr, "%s: job_id %s: host_ranks '%s', expected %s\n", file, r->cell[ATTN_COL_JOB_ID],
            r->cell[ATTN_COL_HOST_RANKS], want);
    return 1;
}

/* threads and the identity cells, '|'-joined (a readable digest of what job_id hashes). */
static void identity_of(const csvw_row *r, char *out, size_t n)
{
    size_t at = (size_t)snprintf(out, n, "%s", r->cell[ATTN_COL_THREADS]);
    for (int c = ATTN_COL_IDENTITY_FIRST; c <= ATTN_COL_IDENTITY_LAST && at < n; c++)
        at += (size_t)snprintf(out + at, n - at, "|%s", r->cell[c]);
}

static int add_ref(const csvw_row *r, void *ud)
{
    if (host_ranks_differ("the reference", r, want_host_ranks ? "1" : NULL))
        return attn_fail(ATTN_EINVAL, "the reference: a timed row with host_ranks '%s', expected 1",
                         r->cell[ATTN_COL_HOST_RANKS]);
    ref_rows *s = ud;
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 64;
        ref_row *grown = realloc(s->rows, cap * sizeof *grown);
        if (!grown)
            return attn_fail(ATTN_ENOMEM, "rowcheck: out of memory");
        s->rows = grown, s->cap = cap;
    }
    ref_row *e = &s->rows[s->n++];
    memset(e, 0, sizeof *e);
    snprintf(e->id, sizeof e->id, "%.16s", r->cell[ATTN_COL_JOB_ID]);
    identity_of(r, e->identity, sizeof e->identity);
    snprintf(e->status, sizeof e->status, "%s", r->cell[ATTN_COL_STATUS]);
    snprintf(e->value, sizeof e->value, "%.63s", r->cell[ATTN_COL_VALUE]);
    e->train = strcmp(r->cell[ATTN_COL_PASS], "train") == 0;
    return 0;
}

static ref_row *find_ref(ref_rows *s, const char *id)
{
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->rows[i].id, id))
            return &s->rows[i];
    return NULL;
}

static int check_run_row(const csvw_row *r, void *ud)
{
    run_scan *s = ud;
    const char *id = r->cell[ATTN_COL_JOB_ID];
    ref_row *e = find_ref(s->ref, id);
    s->rows++;
    if (!e) {
        s->extra++;
        fprintf(stderr, "%s: row %ld: job_id %s is not in the uninterrupted run\n", s->file, s->rows, id);
        return 0;
    }
    if (e->seen++) {
        s->duplicates++;
        fprintf(stderr, "%s: row %ld: job_id %s written twice\n", s->file, s->rows, id);
        return 0;
    }
    char identity[sizeof e->identity];
    identity_of(r, identity, sizeof identity);
    if (strcmp(identity, e->identity)) {
        s->identity_diff++;
        fprintf(stderr, "%s: job_id %s: identity cells differ:\n  run: %s\n  ref: %s\n", s->file, id, identity,
                e->identity);
    }
    if (strcmp(r->cell[ATTN_COL_STATUS], e->status)) {
        s->status_diff++;
        fprintf(stderr, "%s: job_id %s: status '%s', the uninterrupted run's '%s'\n", s->file, id,
                r->cell[ATTN_COL_STATUS], e->status);
    }
    s->host_diff += host_ranks_differ(s->file, r, s->host_ranks);
    if (e->train) {
        s->train_rows++;
        s->train_same += strcmp(r->cell[ATTN_COL_VALUE], e->value) == 0;
    }
    return 0;
}

static int no_op(const csvw_row *r, void *ud)
{
    (void)r, (void)ud;
    return 0;
}

typedef struct {
    long compared, peaks, train_rows, train_same;
} totals;

/* One results file: 0 when it matches, 1 on a mismatch, 2 when unreadable. */
static int check_file(const char *ref_dir, const char *run_dir, const char *name, totals *t)
{
    char ref_path[4096], run_path[4096];
    snprintf(ref_path, sizeof ref_path, "%s/%s", ref_dir, name);
    snprintf(run_path, sizeof run_path, "%s/%s", run_dir, name);
    if (!strcmp(name, "peak.csv")) {
        int n = csvw_read_rows(run_path, no_op, NULL);
        if (n < 0) {
            fprintf(stderr, "%s\n", attn_last_error());
            return 2;
        }
        printf("%s: %d rows parsed (peaks: one set per sweep invocation, not compared)\n", name, n);
        t->peaks += n;
        return 0;
    }
    ref_rows ref = {0};
    run_scan scan = {.file = run_path, .ref = &ref, .host_ranks = want_host_ranks};
    int rc = csvw_read_rows(ref_path, add_ref, &ref) < 0 || csvw_read_rows(run_path, check_run_row, &scan) < 0;
    if (rc) {
        fprintf(stderr, "%s\n", attn_last_error());
        free(ref.rows);
        return 2;
    }
    long missing = 0;
    for (size_t i = 0; i < ref.n; i++)
        if (!ref.rows[i].seen) {
            missing++;
            fprintf(stderr, "%s: job_id %s of the uninterrupted run is missing\n", run_path, ref.rows[i].id);
        }
    int bad = missing || scan.extra || scan.duplicates || scan.identity_diff || scan.status_diff || scan.host_diff;
    if (want_host_ranks)
        printf("%s: %ld timed rows without host_ranks %s\n", name, scan.host_diff, want_host_ranks);
    printf("%s: %ld rows, %zu in the reference: %ld missing, %ld extra, %ld duplicated, %ld identity and %ld status "
           "differences; training rows with the reference's value: %ld of %ld\n",
           name, scan.rows, ref.n, missing, scan.extra, scan.duplicates, scan.identity_diff, scan.status_diff,
           scan.train_same, scan.train_rows);
    t->compared += scan.rows, t->train_rows += scan.train_rows, t->train_same += scan.train_same;
    free(ref.rows);
    return bad;
}

static int is_csv(const char *name)
{
    size_t n = strlen(name);
    return n > 4 && name[0] != '.' && !strcmp(name + n - 4, ".csv");
}

/* Calls visit(dir, name, ud) for every entry of dir; returns the worst
 * status it gave (0 ok, 1 mismatch, 2 unreadable), 2 when dir cannot be read. */
static int each_entry(const char *dir, int (*visit)(const char *dir, const char *name, void *ud), void *ud)
{
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "%s: cannot open the directory\n", dir);
        return 2;
    }
    int worst = 0;
    for (struct dirent *e; (e = readdir(d));) {
        int rc = visit(dir, e->d_name, ud);
        worst = rc > worst ? rc : worst;
    }
    closedir(d);
    return worst;
}

/* A .csv of one directory must be in the other (ud) too: a file only one
 * run wrote is a different job set. */
static int in_other(const char *dir, const char *name, void *ud)
{
    const char *other = ud;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", other, name);
    FILE *f = is_csv(name) ? fopen(path, "r") : NULL;
    if (f)
        fclose(f);
    else if (is_csv(name))
        return fprintf(stderr, "%s/%s: no such file in %s\n", dir, name, other), 1;
    return 0;
}

static int ends_with(const char *name, const char *suffix)
{
    size_t n = strlen(name), k = strlen(suffix);
    return n > k && !strcmp(name + n - k, suffix);
}

/* A checkpoint or kv dump of RUN_DIR reads back whole; no *.tmp and no
 * training's resume state is left. ud: the count of files verified. */
static int side_file(const char *dir, const char *name, void *ud)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int rc = 0;
    if (!strncmp(name, ".train-", 7))
        rc = attn_fail(ATTN_EIO, "%s: the resume state of a finished training was left behind", path);
    else if (ends_with(name, ".ckpt"))
        rc = ckpt_inspect(path, NULL, NULL, NULL);
    else if (ends_with(name, ".kv")) {
        kv_file f;
        if (!(rc = kv_file_load(path, &f)))
            kv_file_free(&f);
    } else if (ends_with(name, ".tmp"))
        rc = attn_fail(ATTN_EIO, "%s: a temporary file was left behind", path);
    else
        return 0;
    if (rc)
        return fprintf(stderr, "%s\n", attn_last_error()), 1;
    ++*(long *)ud;
    return 0;
}

typedef struct {
    const char *run_dir;
    totals t;
} compare;

static int compare_csv(const char *ref_dir, const char *name, void *ud)
{
    compare *c = ud;
    return is_csv(name) ? check_file(ref_dir, c->run_dir, name, &c->t) : 0;
}

static int worse(int a, int b) { return a > b ? a : b; }

int main(int argc, char **argv)
{
    if (argc != 3 && argc != 4) {
        fprintf(stderr, "usage: attnbench_rowcheck REF_DIR RUN_DIR [HOST_RANKS]\n");
        return 2;
    }
    want_host_ranks = argc == 4 ? argv[3] : NULL;
    compare c = {.run_dir = argv[2]};
    long files = 0;
    int worst = worse(each_entry(argv[1], in_other, argv[2]), each_entry(argv[2], in_other, argv[1]));
    worst = worse(worst, each_entry(argv[1], compare_csv, &c));
    worst = worse(worst, each_entry(argv[2], side_file, &files));
    printf("checkpoints and kv dumps read back whole: %ld\n", files);
    printf("rows compared: %ld\npeak rows parsed: %ld\ntraining rows with the reference's value: %ld of %ld\n",
           c.t.compared, c.t.peaks, c.t.train_same, c.t.train_rows);
    return worst;
}
