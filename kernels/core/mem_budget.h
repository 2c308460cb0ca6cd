/* The memory-budget mode (docs/memory-budget.md): the sizes of a kernel's
 * tiles, chunks or splits chosen so its planned workspace fits a budget. */
#ifndef ATTN_MEM_BUDGET_H
#define ATTN_MEM_BUDGET_H

#include "attn.h"

#define ATTN_BUDGET_KNOBS 3

typedef struct {
    int n;                            /* knobs: the names in attn_kernel.budget_params */
    char name[ATTN_BUDGET_KNOBS][32];
    int64_t value[ATTN_BUDGET_KNOBS]; /* the chosen sizes (after a refusal: those of the least) */
    size_t workspace;                 /* the plan's workspace with them, bytes */
    size_t least;                     /* after a search (the defaults did not fit): the smallest workspace
                                         any setting plans, the least budget the kernel meets */
} attn_budget_choice;

/* With a->mem_budget set, chooses the kernel's budget_params and adds them
 * to a->params (a size the params already give stays as given): the
 * kernel's defaults when their plan fits, else the setting whose planned
 * workspace is the largest that fits (ties: the one nearest the defaults in
 * powers of two). Every candidate is planned by the kernel (attn_ctx_plan),
 * not estimated. Without a budget: 0 and nothing changes. Errors:
 * ATTN_EUNSUPPORTED when the kernel does not claim the mode, or when no
 * setting fits, with the least budget it could meet in the message;
 * whatever the kernel's plan refuses. *out (may be NULL) gets the choice. */
int attn_budget_fit(const attn_kernel *k, attn_args *a, attn_budget_choice *out);

#endif
