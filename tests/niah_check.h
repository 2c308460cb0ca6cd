/* Helpers of the NIAH generator tests (tests/test_niah*.c): make a task's
 * data from a parameter string, decode a row to text (the special tokens as
 * control bytes: BOS 0x02, QUERY 0x03, ANSWER 0x04, PAD 0x05), and parse
 * RULER's needles " One of the special magic {numbers|uuids} for K is: V."
 * out of a context. */
#ifndef NIAH_CHECK_H
#define NIAH_CHECK_H

#include "tasks/niah.h"

#include <stdint.h>

#define NC_QUERY '\x03'
#define NC_ANSWER '\x04'
#define NC_ROW_CAP 4200 /* rows of up to 4096 tokens */

/* t->make on params ("k=v k=v"); returns its code (no assertion). */
int nc_make(const task_def *t, const char *params, task_split split, uint64_t seed, int64_t n, const char *dir,
            task_data *d);
/* The same, asserting success and the NIAH vocabulary. */
void nc_make_ok(const task_def *t, const char *params, task_split split, uint64_t seed, int64_t n, task_data *d);

/* Row i as text, NUL-terminated, s [d->len + 1]; returns its length T. */
int64_t nc_row_text(const task_data *d, int64_t i, char *s);
/* The trained targets of row i as text; returns how many. */
int64_t nc_answer_text(const task_data *d, int64_t i, char *s);
int64_t nc_count_in(const char *hay, const char *needle);

typedef struct {
    int64_t at, len; /* position in the context, bytes */
    char key[40], val[40];
} nc_needle;

/* The needles of a context, in context order (at most cap). */
int nc_parse_needles(const char *ctx, nc_needle *out, int cap);

/* Row i decoded: its text, first query string, context and needles. */
typedef struct {
    char s[NC_ROW_CAP], query[40];
    char *ctx;
    int64_t T, C;
    nc_needle nd[64];
    int n;
} nc_row;
void nc_view_row(const task_data *d, int64_t i, nc_row *v);

/* The SpamAssassin stand-in's root (asserted present): $ATTN_DATA_DIR,
 * set to the repository's data/ (run.sh prepares it) when unset. */
const char *nc_corpus_root(void);

/* Whether s is a lowercase uuid4 string (8-4-4-4-12 hex digits, version 4,
 * variant 8, 9, a or b). */
int nc_is_uuid4(const char *s);

#endif
