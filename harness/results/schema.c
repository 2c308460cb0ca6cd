/* Column names of the results schema and the helpers that fill a row. */
#include "csvw.h"

#include "common/attn_error.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const col_names[ATTN_COL__COUNT] = {
#define ATTN_COL_NAME(id, name) name,
    ATTN_COLUMNS(ATTN_COL_NAME)
#undef ATTN_COL_NAME
};

const char *schema_col_name(schema_col c)
{
    return (unsigned)c < ATTN_COL__COUNT ? col_names[c] : NULL;
}

int schema_col_find(const char *name)
{
    for (int c = 0; c < ATTN_COL__COUNT; c++)
        if (strcmp(col_names[c], name) == 0)
            return c;
    return -1;
}

/* The columns added after V1; a V1 header is every other column in order. */
static int added_after_v1(int c)
{
    return c == ATTN_COL_LOAD_AVG_1M || c == ATTN_COL_RUNNABLE_OTHERS || c == ATTN_COL_NOISE ||
           c == ATTN_COL_HOST_RANKS || c == ATTN_COL_PCT_ROOFLINE;
}

int schema_header_ncols(schema_header h)
{
    return h == SCHEMA_HEADER_V1 ? ATTN_COL__COUNT - SCHEMA_V1_NEW_COLUMNS : ATTN_COL__COUNT;
}

schema_col schema_header_col(schema_header h, int field)
{
    if (h == SCHEMA_HEADER_CURRENT)
        return (schema_col)field;
    for (int c = 0; c < ATTN_COL__COUNT; c++)
        if (!added_after_v1(c) && field-- == 0)
            return (schema_col)c;
    return ATTN_COL__COUNT;
}

void schema_v1_fill(csvw_row *row)
{
    int timed = row->cell[ATTN_COL_TIME_MS_MEDIAN][0] != '\0';
    for (int c = 0; c < ATTN_COL__COUNT; c++)
        if (added_after_v1(c))
            snprintf(row->cell[c], ATTN_CELL_MAX, "%s", timed ? "NA:written before the column existed" : "");
}

void csvw_row_init(csvw_row *r) { memset(r, 0, sizeof *r); }

static int vset(csvw_row *r, schema_col c, const char *fmt, va_list ap)
{
    if ((unsigned)c >= ATTN_COL__COUNT)
        return attn_fail(ATTN_EINVAL, "csvw_row_set: expected a column index below %d, found %d",
                         ATTN_COL__COUNT, (int)c);
    int n = vsnprintf(r->cell[c], ATTN_CELL_MAX, fmt, ap);
    if (n < 0 || n >= ATTN_CELL_MAX) {
        snprintf(r->cell[c], ATTN_CELL_MAX, "NA:too-long");
        return attn_fail(ATTN_EINVAL, "column %s: expected at most %d bytes, found a %d-byte value",
                         col_names[c], ATTN_CELL_MAX - 1, n);
    }
    return 0;
}

int csvw_row_set(csvw_row *r, schema_col c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = vset(r, c, fmt, ap);
    va_end(ap);
    return rc;
}

int csvw_row_set_num(csvw_row *r, schema_col c, double v)
{
    if (!isfinite(v)) {
        csvw_row_set(r, c, "NA:non-finite");
        return attn_fail(ATTN_EINVAL, "column %s: expected a finite number, found %g",
                         schema_col_name(c) ? schema_col_name(c) : "?", v);
    }
    /* Counts are integral and must survive exactly (flops reach 1e14);
     * below 1e17 "%.0f" needs at most 18 characters. */
    if (v == floor(v) && fabs(v) < 1e17)
        return csvw_row_set(r, c, "%.0f", v == 0 ? 0.0 : v);   /* no "-0" */
    return csvw_row_set(r, c, "%.6g", v);
}

schema_num schema_num_value(double v)
{
    schema_num n = {SCHEMA_NUM_VALUE, v, ""};
    return n;
}

schema_num schema_num_na(const char *why)
{
    schema_num n = {SCHEMA_NUM_NA, 0, ""};
    snprintf(n.why, sizeof n.why, "%s", why);
    return n;
}

int csvw_row_set_schema_num(csvw_row *r, schema_col c, const char *fmt, const schema_num *v)
{
    if (v->state == SCHEMA_NUM_NA)
        return csvw_row_set(r, c, "NA:%s", v->why);
    if (v->state != SCHEMA_NUM_VALUE)
        return 0;
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    return csvw_row_set(r, c, fmt, v->value);
#pragma GCC diagnostic pop
}

/* FNV-1a, 64-bit (Fowler, Noll, Vo): simple, stable across platforms. */
static uint64_t fnv1a(uint64_t h, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static uint64_t identity_hash(const csvw_row *r)
{
    /* '\x1f' (unit separator) cannot be confused with cell content, so
     * ("a", "bc") and ("ab", "c") hash differently. */
    const char sep = '\x1f';
    uint64_t h = 0xcbf29ce484222325ull;
    h = fnv1a(h, r->cell[ATTN_COL_THREADS], strnlen(r->cell[ATTN_COL_THREADS], ATTN_CELL_MAX));
    for (int c = ATTN_COL_IDENTITY_FIRST; c <= ATTN_COL_IDENTITY_LAST; c++) {
        h = fnv1a(h, &sep, 1);
        h = fnv1a(h, r->cell[c], strnlen(r->cell[c], ATTN_CELL_MAX));
    }
    return h;
}

void csvw_row_job_id(const csvw_row *r, char out[17]) { snprintf(out, 17, "%016" PRIx64, identity_hash(r)); }

void csvw_row_job_id_with(const csvw_row *r, const char *extra, char out[17])
{
    const char sep = '\x1f';
    uint64_t h = fnv1a(identity_hash(r), &sep, 1);
    snprintf(out, 17, "%016" PRIx64, fnv1a(h, extra, strlen(extra)));
}
