/* Results CSV writer and reader (see csvw.h for the guarantees). */
#include "csvw.h"

#include "common/attn_error.h"

#include <csv.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---------------------------------------------------------------- format */

/* Worst case: every byte of every cell a quote (doubled by libcsv), plus the
 * enclosing quotes and a separator per cell, plus the newline. */
#define RECORD_MAX (ATTN_COL__COUNT * (2 * ATTN_CELL_MAX + 1) + 1)

/* Unquoted cells keep the file readable to gnuplot and eyes; a cell is
 * quoted when it holds a separator, a quote or a line break, or begins or
 * ends with blanks (libcsv trims those from unquoted fields). */
static int needs_quotes(const char *s, size_t n)
{
    if (n && (s[0] == ' ' || s[0] == '\t' || s[n - 1] == ' ' || s[n - 1] == '\t'))
        return 1;
    for (size_t i = 0; i < n; i++)
        if (s[i] == ',' || s[i] == '"' || s[i] == '\n' || s[i] == '\r')
            return 1;
    return 0;
}

/* One record ending in '\n' into buf (RECORD_MAX bytes); returns its length. */
static size_t format_record(const char *const cells[ATTN_COL__COUNT], char *buf)
{
    size_t len = 0;
    for (int c = 0; c < ATTN_COL__COUNT; c++) {
        if (c)
            buf[len++] = ',';
        size_t n = strlen(cells[c]);
        if (needs_quotes(cells[c], n)) {
            len += csv_write(buf + len, RECORD_MAX - len, cells[c], n);
        } else {
            memcpy(buf + len, cells[c], n);
            len += n;
        }
    }
    buf[len++] = '\n';
    return len;
}

static size_t format_header(char *buf)
{
    const char *names[ATTN_COL__COUNT];
    for (int c = 0; c < ATTN_COL__COUNT; c++)
        names[c] = schema_col_name((schema_col)c);
    return format_record(names, buf);
}

/* ---------------------------------------------------------------- scan */

/* libcsv reports fields and record ends through callbacks but not where they
 * are, so the file is fed one physical line at a time: that gives line
 * numbers for messages and the offset just past the last complete record. */
typedef struct {
    const char *path;
    long line;           /* physical line being fed (1-based) */
    long rec_line;       /* line where the current record began */
    int at_start;        /* the next non-blank line begins a record */
    int ended;           /* a record ended while feeding this line */
    long records;        /* complete records, header included */
    schema_header header; /* which header the file has (after its first record) */
    int ncols;           /* fields a row of that header has */
    int nfield;
    char first_extra[ATTN_CELL_MAX];
    csvw_row row;
    long row_inside;     /* a line of the pending record that is a whole row by itself (0: none) */
    long torn_line;      /* after the scan: the line where a torn last row begins (0: none) */
    off_t torn_bytes;    /* and its length */
    int rc;              /* first error or stop code; later callbacks do nothing */
    int (*on_row)(const csvw_row *row, long line, void *ud);
    void *ud;
} scanner;

static void scanner_init(scanner *s, const char *path,
                         int (*on_row)(const csvw_row *, long, void *), void *ud)
{
    memset(s, 0, sizeof *s);
    s->path = path;
    s->at_start = 1;
    s->ncols = ATTN_COL__COUNT;
    s->on_row = on_row;
    s->ud = ud;
}

static void on_field(void *data, size_t len, void *ud)
{
    scanner *s = ud;
    if (s->rc)
        return;
    /* the header's names by position; a row's cells where its header puts them */
    int ncols = s->records ? s->ncols : ATTN_COL__COUNT;
    if (s->nfield < ncols) {
        schema_col col = s->records ? schema_header_col(s->header, s->nfield) : (schema_col)s->nfield;
        if (len >= ATTN_CELL_MAX) {
            s->rc = attn_fail(ATTN_EINVAL, "%s:%ld: column %s: expected at most %d bytes, found %zu",
                              s->path, s->rec_line, schema_col_name(col), ATTN_CELL_MAX - 1, len);
            return;
        }
        memcpy(s->row.cell[col], data, len);
        s->row.cell[col][len] = '\0';
    } else if (s->nfield == ncols) {
        size_t n = len < ATTN_CELL_MAX - 1 ? len : ATTN_CELL_MAX - 1;
        memcpy(s->first_extra, data, n);
        s->first_extra[n] = '\0';
    }
    s->nfield++;
}

/* A cell as it may appear in a one-line message: bytes that are not
 * printable ASCII as \xNN (a binary file must not write control bytes to the
 * terminal or break the line), at most 80 of them. */
static const char *printable(const char *cell, char out[4 * 80 + 4])
{
    size_t o = 0;
    int i = 0;
    for (; cell[i] && i < 80; i++) {
        unsigned char b = (unsigned char)cell[i];
        o += (size_t)(b >= 0x20 && b < 0x7f ? sprintf(out + o, "%c", b) : sprintf(out + o, "\\x%02x", b));
    }
    strcpy(out + o, cell[i] ? "..." : "");
    return out;
}

/* 1 if the header just read is the one before the roofline and noise columns. */
static int is_v1_header(const scanner *s)
{
    if (s->nfield != schema_header_ncols(SCHEMA_HEADER_V1))
        return 0;
    for (int f = 0; f < s->nfield; f++)
        if (strcmp(s->row.cell[f], schema_col_name(schema_header_col(SCHEMA_HEADER_V1, f))) != 0)
            return 0;
    return 1;
}

static int check_header(scanner *s)
{
    char found[4 * 80 + 4];
    if (is_v1_header(s)) {
        s->header = SCHEMA_HEADER_V1;
        s->ncols = schema_header_ncols(SCHEMA_HEADER_V1);
        return 0;
    }
    for (int c = 0; c < ATTN_COL__COUNT && c < s->nfield; c++) {
        const char *want = schema_col_name((schema_col)c);
        if (strcmp(s->row.cell[c], want) != 0)
            return attn_fail(ATTN_EINVAL, "%s:%ld: header column %d: expected '%s', found '%s' "
                             "(not a results file, or one written with another schema)",
                             s->path, s->rec_line, c + 1, want, printable(s->row.cell[c], found));
    }
    if (s->nfield < ATTN_COL__COUNT)
        return attn_fail(ATTN_EINVAL, "%s:%ld: header column %d: expected '%s', found the end of "
                         "the line (%d columns, the schema has %d)", s->path, s->rec_line,
                         s->nfield + 1, schema_col_name((schema_col)s->nfield), s->nfield, ATTN_COL__COUNT);
    if (s->nfield > ATTN_COL__COUNT)
        return attn_fail(ATTN_EINVAL, "%s:%ld: header column %d: expected the end of the line, "
                         "found '%s' (%d columns, the schema has %d)", s->path, s->rec_line,
                         ATTN_COL__COUNT + 1, printable(s->first_extra, found), s->nfield, ATTN_COL__COUNT);
    return 0;
}

static void on_record(int term, void *ud)
{
    (void)term;
    scanner *s = ud;
    if (s->rc)
        return;
    if (s->records == 0)
        s->rc = check_header(s);
    else if (s->nfield != s->ncols)
        s->rc = attn_fail(ATTN_EINVAL, "%s:%ld: expected %d fields, found %d",
                          s->path, s->rec_line, s->ncols, s->nfield);
    else if (s->on_row) {
        if (s->header == SCHEMA_HEADER_V1)
            schema_v1_fill(&s->row);
        s->rc = s->on_row(&s->row, s->rec_line, s->ud);
    }
    s->records++;
    s->nfield = 0;
    s->ended = 1;
    s->at_start = 1;
}

/* ---- is one physical line a whole row on its own? */

typedef struct {
    int fields, records, last_is_id;
} line_shape;

static void count_field(void *data, size_t len, void *ud)
{
    line_shape *l = ud;
    char id[17];
    l->fields++;
    l->last_is_id = 0;
    if (len == 16) {
        memcpy(id, data, 16);
        id[16] = '\0';
        l->last_is_id = csvw_is_job_id(id);
    }
}

static void count_record(int term, void *ud)
{
    (void)term;
    ((line_shape *)ud)->records++;
}

/* A record the parser has not finished after several lines is either a row
 * torn inside a quoted multi-line cell or a quote left open on a bad line
 * that swallows the rows after it. Those rows give the second case away:
 * each is a complete row with a job_id when parsed on its own line, which no
 * continuation line of a quoted cell written here is (its quote would close
 * the cell in the middle of an unquoted field, a strict-mode error). */
static int is_whole_row(const char *line, size_t len, int ncols)
{
    struct csv_parser p;
    line_shape l = {0, 0, 0};
    if (csv_init(&p, CSV_STRICT) != 0)
        return 0;
    int ok = csv_parse(&p, line, len, count_field, count_record, &l) == len &&
             csv_fini(&p, count_field, count_record, &l) == 0;
    csv_free(&p);
    return ok && l.records == 1 && l.fields == ncols && l.last_is_id;
}

/* Feeds the stream from its current position to the end. *good_end is the
 * offset just past the last complete record or blank line and *good_lines the
 * number of lines up to there; bytes after it are a torn tail. */
static int scan_stream(scanner *s, FILE *f, off_t *good_end, long *good_lines)
{
    struct csv_parser p;
    if (csv_init(&p, CSV_STRICT) != 0)
        return attn_fail(ATTN_ENOMEM, "%s: cannot initialize the CSV parser", s->path);
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    off_t off = 0;
    *good_end = 0;
    *good_lines = 0;
    while (!s->rc && (len = getline(&line, &cap, f)) > 0) {
        s->line++;
        s->ended = 0;
        int blank = strspn(line, "\r\n") == (size_t)len;
        if (s->at_start && !blank) {
            s->rec_line = s->line;
            s->at_start = 0;
        }
        if (!s->at_start && s->rec_line < s->line && !s->row_inside && is_whole_row(line, (size_t)len, s->ncols))
            s->row_inside = s->line;
        if (csv_parse(&p, line, (size_t)len, on_field, on_record, s) != (size_t)len && !s->rc)
            s->rc = s->rec_line < s->line
                        ? attn_fail(ATTN_EINVAL, "%s:%ld: expected CSV quoting, found a quoted field opened "
                                    "on this line and closed on line %ld in the middle of a field (%s)",
                                    s->path, s->rec_line, s->line, csv_strerror(csv_error(&p)))
                        : attn_fail(ATTN_EINVAL, "%s:%ld: expected CSV quoting, found a malformed field (%s)",
                                    s->path, s->line, csv_strerror(csv_error(&p)));
        off += len;
        if (line[len - 1] == '\n' && (s->ended || (blank && s->at_start))) {
            *good_end = off;
            *good_lines = s->line;
        }
    }
    if (!s->rc && ferror(f))
        s->rc = attn_fail(ATTN_EIO, "%s:%ld: read error: %s", s->path, s->line + 1, strerror(errno));
    if (!s->rc && !s->at_start && s->row_inside)
        s->rc = attn_fail(ATTN_EINVAL, "%s:%ld: expected CSV quoting, found a quoted field that is never "
                          "closed: it runs over the whole row on line %ld to the end of the file "
                          "(correct this line; the file was not changed)",
                          s->path, s->rec_line, s->row_inside);
    if (!s->at_start)
        s->torn_line = s->rec_line, s->torn_bytes = off - *good_end;
    free(line);
    csv_free(&p);   /* a pending record is the torn tail: never delivered */
    return s->rc;
}

/* Opens path for reading under a shared lock (so no repair runs meanwhile)
 * and scans it. A missing file sets *missing instead of failing. */
static int scan_path(scanner *s, const char *path, int *missing)
{
    *missing = 0;
    FILE *f = fopen(path, "r");
    if (!f) {
        if (errno == ENOENT) {
            *missing = 1;
            return 0;
        }
        return attn_fail(ATTN_EIO, "%s: cannot open for reading: %s", path, strerror(errno));
    }
    if (flock(fileno(f), LOCK_SH) != 0) {
        int e = errno;
        fclose(f);
        return attn_fail(ATTN_EIO, "%s: cannot lock: %s", path, strerror(e));
    }
    off_t good_end;
    long good_lines;
    int rc = scan_stream(s, f, &good_end, &good_lines);
    fclose(f);
    return rc;
}

/* ---------------------------------------------------------------- write */

/* Appends buf with one write(2). The caller holds the exclusive lock, so the
 * size before the write is where it starts: a short write is cut off again
 * rather than left as half a row. */
static int append_locked(csvw *w, const char *buf, size_t len)
{
    struct stat st;
    if (fstat(w->fd, &st) != 0)
        return attn_fail(ATTN_EIO, "%s: fstat: %s", w->path, strerror(errno));
    ssize_t n = write(w->fd, buf, len);
    if (n != (ssize_t)len) {
        int e = n < 0 ? errno : ENOSPC;
        if (n > 0 && ftruncate(w->fd, st.st_size) != 0)
            return attn_fail(ATTN_EIO, "%s: short write (%s) and cannot remove the partial row: %s",
                             w->path, strerror(e), strerror(errno));
        return attn_fail(ATTN_EIO, "%s: cannot append a row: %s", w->path, strerror(e));
    }
    if (fdatasync(w->fd) != 0)
        return attn_fail(ATTN_EIO, "%s: fdatasync: %s", w->path, strerror(errno));
    return 0;
}

/* Appending to a V1 file would leave rows of two widths under one header. */
static int v1_refused(const char *path)
{
    return attn_fail(ATTN_EINVAL, "%s: written before the pct_roofline and noise columns existed: run "
                     "'attnbench migrate %s' to rewrite it with them (every row kept), then run this again",
                     path, path);
}

/* A file without one complete line is a header torn while being created only
 * if its bytes are a prefix of the header; anything else is not ours. */
static int is_header_prefix(int fd, off_t size)
{
    char want[RECORD_MAX], got[RECORD_MAX];
    size_t n = format_header(want);
    if ((size_t)size >= n)
        return 0;
    return pread(fd, got, (size_t)size, 0) == (ssize_t)size && memcmp(got, want, (size_t)size) == 0;
}

static int write_header(csvw *w)
{
    char buf[RECORD_MAX];
    return append_locked(w, buf, format_header(buf));
}

/* Under the exclusive lock: header for a new file, validation and tail repair
 * for an existing one. */
static int prepare_locked(csvw *w)
{
    struct stat st;
    if (fstat(w->fd, &st) != 0)
        return attn_fail(ATTN_EIO, "%s: fstat: %s", w->path, strerror(errno));
    if (st.st_size == 0)
        return write_header(w);

    int dfd = dup(w->fd);
    FILE *f = dfd < 0 ? NULL : fdopen(dfd, "r");
    if (!f) {
        if (dfd >= 0)
            close(dfd);
        return attn_fail(ATTN_EIO, "%s: cannot read back: %s", w->path, strerror(errno));
    }
    scanner s;
    scanner_init(&s, w->path, NULL, NULL);
    off_t good_end;
    long good_lines;
    int rc = fseeko(f, 0, SEEK_SET) != 0
                 ? attn_fail(ATTN_EIO, "%s: seek: %s", w->path, strerror(errno))
                 : scan_stream(&s, f, &good_end, &good_lines);
    fclose(f);
    if (rc)
        return rc;
    if (s.records == 0) {
        if (!is_header_prefix(w->fd, st.st_size))
            return attn_fail(ATTN_EINVAL, "%s:1: expected the results header line, found %lld "
                             "bytes without a complete line", w->path, (long long)st.st_size);
        if (ftruncate(w->fd, 0) != 0)
            return attn_fail(ATTN_EIO, "%s: ftruncate: %s", w->path, strerror(errno));
        return write_header(w);
    }
    if (s.header != SCHEMA_HEADER_CURRENT)
        return v1_refused(w->path);
    w->rows = s.records - 1;
    if (good_end == st.st_size)
        return 0;
    if (ftruncate(w->fd, good_end) != 0 || fdatasync(w->fd) != 0)
        return attn_fail(ATTN_EIO, "%s:%ld: cannot remove a torn last row: %s", w->path,
                         good_lines + 1, strerror(errno));
    w->repaired_bytes = (size_t)(st.st_size - good_end);
    fprintf(stderr, "note: %s:%ld: removed a torn last row (%zu bytes, left by an interrupted write)\n",
            w->path, good_lines + 1, w->repaired_bytes);
    return 0;
}

int csvw_open(csvw *w, const char *path)
{
    memset(w, 0, sizeof *w);
    w->fd = -1;
    if (strlen(path) >= sizeof w->path)
        return attn_fail(ATTN_EINVAL, "%s: expected a path shorter than %zu bytes", path, sizeof w->path);
    strcpy(w->path, path);
    int fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0)
        return attn_fail(ATTN_EIO, "%s: cannot open for appending: %s", path, strerror(errno));
    if (flock(fd, LOCK_EX) != 0) {
        int e = errno;
        close(fd);
        return attn_fail(ATTN_EIO, "%s: cannot lock: %s", path, strerror(e));
    }
    w->fd = fd;
    int rc = prepare_locked(w);
    flock(fd, LOCK_UN);
    if (rc) {
        close(fd);
        w->fd = -1;
    }
    return rc;
}

/* Row `row` formatted into buf (RECORD_MAX bytes), its job_id filled in or
 * checked; returns the length, or a negative code. */
static long format_row(const csvw *w, const csvw_row *row, char *buf)
{
    const char *cells[ATTN_COL__COUNT];
    for (int c = 0; c < ATTN_COL__COUNT; c++) {
        if (strnlen(row->cell[c], ATTN_CELL_MAX) == ATTN_CELL_MAX)
            return attn_fail(ATTN_EINVAL, "%s: column %s: expected a NUL-terminated cell of at most %d bytes",
                             w->path, schema_col_name((schema_col)c), ATTN_CELL_MAX - 1);
        cells[c] = row->cell[c];
    }
    char id[17];
    if (cells[ATTN_COL_JOB_ID][0] == '\0') {
        csvw_row_job_id(row, id);
        cells[ATTN_COL_JOB_ID] = id;
    } else if (!csvw_is_job_id(cells[ATTN_COL_JOB_ID])) {
        return attn_fail(ATTN_EINVAL, "%s: column job_id: expected 16 lowercase hex digits, found '%s'",
                         w->path, cells[ATTN_COL_JOB_ID]);
    }
    return (long)format_record(cells, buf);
}

int csvw_write_rows(csvw *w, const csvw_row *rows, int n)
{
    if (w->fd < 0)
        return attn_fail(ATTN_EINVAL, "%s: expected an open results file", w->path);
    char *buf = malloc((size_t)n * RECORD_MAX);
    if (!buf)
        return attn_fail(ATTN_ENOMEM, "%s: no memory for %d rows", w->path, n);
    size_t len = 0;
    for (int i = 0; i < n; i++) {
        long l = format_row(w, &rows[i], buf + len);
        if (l < 0)
            return free(buf), (int)l;
        len += (size_t)l;
    }
    int rc;
    if (flock(w->fd, LOCK_EX) != 0)
        rc = attn_fail(ATTN_EIO, "%s: cannot lock: %s", w->path, strerror(errno));
    else {
        rc = append_locked(w, buf, len);
        flock(w->fd, LOCK_UN);
    }
    if (rc == 0)
        w->rows += n;
    free(buf);
    return rc;
}

int csvw_write(csvw *w, const csvw_row *row) { return csvw_write_rows(w, row, 1); }

int csvw_close(csvw *w)
{
    if (w->fd < 0)
        return 0;
    int rc = close(w->fd) == 0 ? 0 : attn_fail(ATTN_EIO, "%s: close: %s", w->path, strerror(errno));
    w->fd = -1;
    return rc;
}

/* ---------------------------------------------------------------- read */

typedef struct {
    const char *path;
    csvw_idset *set;
} idload;

static int load_one(const csvw_row *row, long line, void *ud)
{
    idload *l = ud;
    int rc = csvw_idset_add(l->set, row->cell[ATTN_COL_JOB_ID]);
    if (rc == ATTN_EINVAL)
    {
        char found[4 * 80 + 4];
        return attn_fail(ATTN_EINVAL, "%s:%ld: column job_id: expected 16 lowercase hex digits, found '%s'",
                         l->path, line, printable(row->cell[ATTN_COL_JOB_ID], found));
    }
    return rc < 0 ? rc : 0;
}

int csvw_load_job_ids(const char *path, csvw_idset *set)
{
    idload l = {path, set};
    scanner s;
    scanner_init(&s, path, load_one, &l);
    int missing;
    return scan_path(&s, path, &missing);
}

typedef struct {
    int (*cb)(const csvw_row *, void *);
    void *ud;
} rowcb;

static int call_user(const csvw_row *row, long line, void *ud)
{
    (void)line;
    rowcb *r = ud;
    return r->cb(row, r->ud);
}

/* strict: a file without its header or with a torn last row is an error
 * (a report would otherwise show a table short of a row without saying so). */
static int read_rows_at(const char *path, int (*cb)(const csvw_row *, long, void *), void *ud, int strict)
{
    scanner s;
    scanner_init(&s, path, cb, ud);
    int missing;
    int rc = scan_path(&s, path, &missing);
    if (rc)
        return rc;
    if (missing)
        return attn_fail(ATTN_EIO, "%s: cannot open for reading: %s", path, strerror(ENOENT));
    if (strict && s.records == 0 && !s.torn_line)
        return attn_fail(ATTN_EINVAL, "%s:1: expected the results header line, found an empty file", path);
    if (strict && s.torn_line)
        return attn_fail(ATTN_EINVAL, "%s:%ld: expected a complete last row, found %lld bytes without a line end "
                         "(a write cut short: the next bench, sweep or train appending to this file removes them)",
                         path, s.torn_line, (long long)s.torn_bytes);
    return s.records > 0 ? (int)(s.records - 1) : 0;
}

static int read_rows(const char *path, int (*cb)(const csvw_row *, void *), void *ud, int strict)
{
    rowcb r = {cb, ud};
    return read_rows_at(path, call_user, &r, strict);
}

int csvw_read_rows_at(const char *path, int (*cb)(const csvw_row *row, long line, void *ud), void *ud)
{
    return read_rows_at(path, cb, ud, 1);
}

int csvw_read_rows(const char *path, int (*cb)(const csvw_row *row, void *ud), void *ud)
{
    return read_rows(path, cb, ud, 1);
}

int csvw_read_rows_before_repair(const char *path, int (*cb)(const csvw_row *row, void *ud), void *ud)
{
    return read_rows(path, cb, ud, 0);
}

static int stop_at_first_row(const csvw_row *row, long line, void *ud)
{
    (void)row, (void)line, (void)ud;
    return 1;
}

int csvw_file_header(const char *path, schema_header *h)
{
    scanner s;
    scanner_init(&s, path, stop_at_first_row, NULL);
    int missing;
    int rc = scan_path(&s, path, &missing);
    *h = s.header;
    return rc == 1 ? 0 : rc;
}

int csvw_check_appendable(const char *path)
{
    schema_header h;
    int rc = csvw_file_header(path, &h);
    if (rc || h == SCHEMA_HEADER_CURRENT)
        return rc;
    return v1_refused(path);
}
