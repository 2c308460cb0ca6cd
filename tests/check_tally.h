/* Tallies the typed results of the `attnbench check` case table
 * (check_kernel_cases) for tests: how many cases ran and failed, the first
 * failure's case and reason, which kinds and gradients were measured. */
#ifndef ATTN_TEST_CHECK_TALLY_H
#define ATTN_TEST_CHECK_TALLY_H

#include "harness/measure/check.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    int cases, failed;
    unsigned kinds;          /* bit (1 << check_kind) per kind seen */
    unsigned grads;          /* bit i when err_grad[i] was measured */
    int saw_document;        /* a case under a document mask ran */
    char first_failure[400]; /* "kernel check case: reason" */
} check_tally;

static inline void check_tally_add(const check_result *r, void *ctx)
{
    check_tally *t = ctx;
    t->cases++;
    t->kinds |= 1u << r->kind;
    for (int i = 0; i < ATTN_CHECK_GRADS; i++)
        t->grads |= isnan(r->err_grad[i]) ? 0u : 1u << i;
    t->saw_document |= strncmp(r->what, "document", 8) == 0;
    if (r->status != CHECK_PASS && t->failed++ == 0)
        snprintf(t->first_failure, sizeof t->first_failure, "%s %s: %s", r->kernel->name, r->what, r->reason);
}

#endif
