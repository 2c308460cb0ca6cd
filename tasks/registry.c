/* The one table of tasks. Adding a task = one file + one line here + tests. */
#include "task.h"

#include "lra.h"
#include "lra_text.h"
#include "niah.h"
#include "pathfinder.h"
#include "recall.h"

#include <string.h>

static const task_def *const table[] = {
    &task_mqar, &task_ar, &task_induction, &task_selective_copy, &task_copy,
    &task_passkey, &task_niah, &task_niah_multikey, &task_niah_multivalue, &task_niah_multiquery, &task_niah_vt,
    &task_listops, &task_lra_text, &task_lra_retrieval, &task_lra_image, &task_pathfinder, &task_pathx,
    NULL,
};

const task_def *const *task_registry(void) { return table; }

const task_def *task_find(const char *name)
{
    char names[512] = "";
    for (const task_def *const *t = table; *t; t++) {
        if (strcmp((*t)->name, name) == 0)
            return *t;
        strncat(names, t == table ? "" : ", ", sizeof names - strlen(names) - 1);
        strncat(names, (*t)->name, sizeof names - strlen(names) - 1);
    }
    attn_fail(ATTN_EINVAL, "unknown task '%s': expected one of %s", name, names[0] ? names : "(none registered)");
    return NULL;
}
