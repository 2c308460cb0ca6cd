/* What options.c and options_cli.c share, not part of the engine's interface. */
#ifndef ATTN_COMMON_OPTIONS_INTERNAL_H
#define ATTN_COMMON_OPTIONS_INTERNAL_H

#include "options.h"

#include <limits.h>

static inline void *field(void *target, const opt_def *d) { return (char *)target + d->offset; }
static inline const void *cfield(const void *target, const opt_def *d) { return (const char *)target + d->offset; }

/* A range bound as an integer (INT64_MAX is not a double: clamp). */
static inline long long as_ll(double x)
{
    return x >= 9.2233720368547758e18 ? LLONG_MAX : x <= -9.2233720368547758e18 ? LLONG_MIN : (long long)x;
}

static inline int is_int_type(opt_type t)
{
    return t == OPT_INT || t == OPT_INT32 || t == OPT_UINT || t == OPT_INT_LIST;
}
static inline int is_list(opt_type t) { return t == OPT_INT_LIST || t == OPT_DOUBLE_LIST; }

/* "a, b, c": the names an enum accepts (the unset "" left out). */
void opt_enum_names(const opt_def *d, const char *sep, char *buf, size_t n);

/* "<where>: given twice ('a', then 'b')" (first NULL: a flag): the one
 * message for a repeat; returns ATTN_EINVAL. */
int opt_given_twice(const char *where, const char *first, const char *second);

#endif
