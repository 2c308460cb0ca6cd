/* Task parameters as --task-param or a training config gives them,
 * "task:key=value,...": the bag, the task's table, the settings text results
 * rows hash, then two examples made with those parameters. Tasks that read
 * data find an empty data directory (the loaders have targets of their own);
 * the generators run. */
#include "fuzz/fuzz_io.h"
#include "fuzz/fuzz_targets.h"
#include "fuzz/fuzz_task.h"
#include "tasks/task.h"

#include <stdlib.h>
#include <string.h>

int fuzz_task_params(const uint8_t *data, size_t n)
{
    setenv("ATTN_DATA_DIR", fuzz_dir(), 1);
    char *text = fuzz_text(data, n);
    if (!text)
        return 0;
    const char *name;
    param_bag bag;
    int rc = fuzz_name_and_params(text, &name, &bag, "task_params: param_bag_add");
    attn_clear_error();
    const task_def *t = rc ? NULL : task_find(name);
    if (!rc && !t)
        fuzz_check_error(rc = ATTN_EINVAL, "task_params: task_find");
    if (!rc) {
        attn_clear_error();
        rc = task_params_check(t->params, &bag, t->name);
        fuzz_check_error(rc, "task_params: task_params_check");
    }
    if (!rc) {
        char settings[1024];
        task_settings_text(t, &bag, settings, sizeof settings);
        /* Pathfinder images above 32 x 32 take tens of seconds each under the
         * sanitizers (a 64 x 64 'hard' pair took 33 s): a unit past the fuzzer's
         * timeout, not a finding. Their parameters are still parsed above;
         * the generator at those sizes is covered by the tests. */
        const char *res = param_bag_get(&bag, "res");
        if (!strcmp(t->name, "pathfinder") && res && atoi(res) > 32)
            goto done;
        rc = fuzz_make_task(t->name, &bag, 2, NULL);
    }
done:
    free(text);
    return rc;
}
