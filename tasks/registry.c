/* The one table of tasks. Adding a task = one file + one line here + tests.
 *
 * Every task is served through a wrapper that takes the generic parameter
 * landmark=l out of its params and, for the LM tasks, inserts the landmark
 * tokens into the data the task built (task.h "Landmark tokens"), so every
 * path that builds task data through task_find (train, sweeps, eval --scale)
 * gets them. The tasks' own task_def objects stay the plain generators. */
#include "task.h"

#include "lra.h"
#include "lra_text.h"
#include "niah.h"
#include "pathfinder.h"
#include "recall.h"

#include <stdio.h>
#include <string.h>
#include <threads.h>

/* X(symbol, is_lm): the tasks in listing order. */
#define TASKS(X)                                                                                               \
    X(mqar, 1) X(ar, 1) X(induction, 1) X(selective_copy, 1) X(copy, 1) X(passkey, 1) X(niah, 1)              \
    X(niah_multikey, 1) X(niah_multivalue, 1) X(niah_multiquery, 1) X(niah_vt, 1) X(cwe, 1) X(fwe, 1)          \
    X(listops, 0)                                                                                              \
    X(lra_text, 0) X(lra_retrieval, 0) X(lra_image, 0) X(pathfinder, 0) X(pathx, 0)

#define WRAP_MAKE(sym, lm)                                                                                     \
    static int make_##sym(const param_bag *p, task_split s, uint64_t seed, int64_t n, const char *dir,        \
                          task_data *out)                                                                      \
    {                                                                                                          \
        return task_landmark_make(&task_##sym, lm, p, s, seed, n, dir, out);                                   \
    }
TASKS(WRAP_MAKE)

typedef struct {
    const task_def *base;
    int is_lm;
    int (*make)(const param_bag *, task_split, uint64_t, int64_t, const char *, task_data *);
} wrap_entry;

#define WRAP_ENTRY(sym, lm) {.base = &task_##sym, .is_lm = lm, .make = make_##sym},
static const wrap_entry entries[] = {TASKS(WRAP_ENTRY)};
#define N_TASKS (sizeof entries / sizeof *entries)

#define MAX_PARAMS 31 /* rows of the largest task's table (Pathfinder) with room to grow */

static task_def defs[N_TASKS];
static opt_def params[N_TASKS][MAX_PARAMS + 2]; /* + landmark + the end row */
static const task_def *table[N_TASKS + 1];
static once_flag built = ONCE_FLAG_INIT;

/* The wrapped definitions: the base's name, suite, description and
 * parameters; the LM tasks' parameters gain the landmark row. */
static void build_table(void)
{
    for (size_t i = 0; i < N_TASKS; i++) {
        const task_def *b = entries[i].base;
        int n = 0;
        for (const opt_def *d = b->params; d && d->name && n < MAX_PARAMS; d++)
            params[i][n++] = *d;
        if (entries[i].is_lm)
            params[i][n++] = task_landmark_opt;
        params[i][n] = (opt_def){0};
        defs[i] = (task_def){.name = b->name, .suite = b->suite, .description = b->description,
                             .params = params[i], .make = entries[i].make};
        table[i] = &defs[i];
    }
    table[N_TASKS] = NULL;
}

const task_def *const *task_registry(void)
{
    call_once(&built, build_table);
    return table;
}

const task_def *task_find(const char *name)
{
    const task_def *const *all = task_registry();
    char names[512] = "";
    for (const task_def *const *t = all; *t; t++) {
        if (strcmp((*t)->name, name) == 0)
            return *t;
        strncat(names, t == all ? "" : ", ", sizeof names - strlen(names) - 1);
        strncat(names, (*t)->name, sizeof names - strlen(names) - 1);
    }
    attn_fail(ATTN_EINVAL, "unknown task '%s': expected one of %s", name, names[0] ? names : "(none registered)");
    return NULL;
}
