/* Joining result directories (`attnbench merge`): the part directories of a
 * sharded sweep into the ordinary results files of one directory.
 *
 * Every <name>.csv of every part is appended to OUT/<name>.csv (created with
 * the header when absent) through csvw's reader and writer, rows in the
 * order of the parts given. A row whose job_id OUT/<name>.csv or an earlier
 * part holds already is dropped when every cell is the same (a part merged
 * twice, a merge rerun after a resumed sweep) and is an error naming both
 * file:line when a cell differs; nothing is written for a file with a
 * conflict. peak.csv is the exception: every sweep invocation appends its own
 * peaks, whose job_ids repeat across runs, so there only identical rows are
 * dropped. A file whose header is not the schema's is refused (csvw's
 * message names file:1 and the first differing column). */
#ifndef ATTN_RESULTS_MERGE_H
#define ATTN_RESULTS_MERGE_H

#include <stddef.h>

typedef struct {
    size_t files;      /* distinct <name>.csv merged */
    size_t rows_read;  /* rows of the parts */
    size_t written;    /* rows appended to OUT */
    size_t duplicates; /* rows dropped: already there, every cell the same */
} results_merge_stats;

/* Merges dirs[0..n) into out (created if absent). 0, or a negative code with
 * the one-line message recorded. */
int results_merge(const char *const *dirs, int n, const char *out, results_merge_stats *st);

#endif
