/* Results CSV files (docs/csv-schema.md): every file starts with the
 * header of harness/results/schema.h and grows by whole rows only.
 *
 * Writing: each row is formatted in memory (libcsv quotes the cells that need
 * it) and appended with one write(2) on an O_APPEND descriptor under an
 * exclusive flock, then fdatasync'ed, so rows from several processes never
 * interleave and a row is either in the file or not. A crash can still leave
 * a torn last line (power loss, full disk): csvw_open removes it.
 *
 * Reading: libcsv's parser, one-line errors naming file:line. A trailing
 * record without its final newline is torn by definition and is never
 * delivered (csvw_open would remove it). Only the last row can be torn: a
 * quote left open on an earlier line, which would make the parser take every
 * later row for part of one field, is an error naming that line, so no valid
 * row is ever dropped or removed.
 *
 * job_id: the FNV-1a 64-bit hash of the identity cells (THREADS, then SUITE
 * through DATA_SOURCE, joined by '\x1f') as 16 lowercase hex digits. Run
 * metadata (run_id, utc, git_sha, cpu) is not part of it, so `sweep --resume`
 * recognizes a job finished by an earlier run. */
#ifndef ATTN_CSVW_H
#define ATTN_CSVW_H

#include "schema.h"

#include <stddef.h>
#include <stdint.h>

/* ---- row helpers (harness/results/schema.c) ---- */

/* All cells empty. */
void csvw_row_init(csvw_row *r);

/* printf into one cell. A value that does not fit (ATTN_CELL_MAX - 1 bytes)
 * is an error; the cell then reads "NA:too-long" rather than a silently cut
 * value. */
int csvw_row_set(csvw_row *r, schema_col c, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* A number, printed so the file stays readable and counts stay exact:
 * integral values below 1e17 in magnitude (flop, byte, cycle counts, sizes)
 * as "%.0f", which round-trips exactly; everything else (times, ratios,
 * rates) as "%.6g", 6 significant digits being well below timing noise.
 * NaN/inf are an error and leave "NA:non-finite" in the cell. */
int csvw_row_set_num(csvw_row *r, schema_col c, double v);

/* A typed number into one cell: nothing for NONE, "NA:<why>" for NA, and
 * printf `fmt` (one double conversion, e.g. "%.4g") for a value. */
int csvw_row_set_schema_num(csvw_row *r, schema_col c, const char *fmt, const schema_num *v);

/* The row's job_id from its identity cells (see above); out is NUL-terminated. */
void csvw_row_job_id(const csvw_row *r, char out[17]);
/* The same hash continued over `extra` (a second row of one job, told apart
 * by its metric). */
void csvw_row_job_id_with(const csvw_row *r, const char *extra, char out[17]);

/* ---- set of job ids, for --resume ---- */

/* 1 when s is 16 lowercase hex digits (harness/results/csvw_idset.c). */
int csvw_is_job_id(const char *s);

typedef struct {
    uint64_t *keys;
    unsigned char *used;
    size_t cap, n;
} csvw_idset;

void csvw_idset_init(csvw_idset *s);
/* 1 if added, 0 if already present; ATTN_EINVAL unless `job_id` is 16
 * lowercase hex digits, ATTN_ENOMEM. */
int csvw_idset_add(csvw_idset *s, const char *job_id);
int csvw_idset_contains(const csvw_idset *s, const char *job_id);
void csvw_idset_free(csvw_idset *s);

/* ---- writer ---- */

typedef struct {
    int fd;
    char path[1024];
    long rows;              /* data rows in the file when opened, then + written */
    size_t repaired_bytes;  /* bytes of a torn last row removed by csvw_open */
} csvw;

/* Opens `path` for appending, creating it with the header when absent or
 * empty. An existing file must carry the schema header (else an error naming
 * file:1 and the first differing column; a file with the V1 header of
 * schema.h is refused with one line naming `attnbench migrate`) and
 * well-formed rows; a torn tail is truncated, counted in repaired_bytes and
 * noted on stderr. */
int csvw_open(csvw *w, const char *path);

/* Appends one row (whole, synced). An empty job_id cell is filled with
 * csvw_row_job_id(); a given one must be 16 lowercase hex digits. */
int csvw_write(csvw *w, const csvw_row *row);
/* Appends n rows in one write (a job's rows land together or not at all). */
int csvw_write_rows(csvw *w, const csvw_row *rows, int n);

int csvw_close(csvw *w);

/* ---- reader ---- */

/* The header `path` carries (CURRENT for a missing or empty file). Errors as
 * the reader's for a file that is not a results file. */
int csvw_file_header(const char *path, schema_header *h);
/* 0 when csvw_open could append to `path` as far as its header goes (absent,
 * empty, current); for a V1 file the error csvw_open gives, before any work
 * is done for rows that could not be written. */
int csvw_check_appendable(const char *path);

/* Every reader below accepts both headers of schema.h: a V1 file's rows come
 * with the columns it lacks filled by schema_v1_fill. */

/* Adds the job_id of every row (any status) to `set`. A missing or empty
 * file adds nothing and is not an error (a fresh --resume). */
int csvw_load_job_ids(const char *path, csvw_idset *set);

/* Calls cb for every complete row in file order; the row is valid during the
 * call only. cb returns 0 to go on; anything else stops the scan and is
 * returned. Otherwise returns the number of rows (>= 0) or a negative code.
 * An empty file (no header) and a torn last row are errors naming file:line:
 * what is read is the whole file or nothing. */
int csvw_read_rows(const char *path, int (*cb)(const csvw_row *row, void *ud), void *ud);
/* The same, giving each row's first physical line (for messages naming file:line). */
int csvw_read_rows_at(const char *path, int (*cb)(const csvw_row *row, long line, void *ud), void *ud);
/* The same for a file about to be appended to (a resumed sweep): an empty
 * file or a torn last row is what csvw_open repairs, so it is read without
 * them rather than refused. */
int csvw_read_rows_before_repair(const char *path, int (*cb)(const csvw_row *row, void *ud), void *ud);

#endif
