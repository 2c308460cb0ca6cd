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
    char *text = malloc(n + 1);
    if (!text)
        return 0;
    memcpy(text, data, n);
    text[n] = '\0';
    char *colon = strchr(text, ':'), *list = colon ? colon + 1 : text + n;
    if (colon)
        *colon = '\0';
    param_bag bag = {0};
    attn_clear_error();
    const task_def *t = task_find(text);
    int rc = t ? 0 : ATTN_EINVAL;
    fuzz_check_error(rc, "task_params: task_find");
    for (char *save = NULL, *kv = strtok_r(list, ",", &save); kv && !rc; kv = strtok_r(NULL, ",", &save)) {
        attn_clear_error();
        rc = param_bag_add(&bag, kv);
        fuzz_check_error(rc, "task_params: param_bag_add");
    }
    if (!rc) {
        attn_clear_error();
        rc = task_params_check(t->params, &bag, t->name);
        fuzz_check_error(rc, "task_params: task_params_check");
    }
    if (!rc) {
        char settings[1024];
        task_settings_text(t, &bag, settings, sizeof settings);
        rc = fuzz_make_task(t->name, &bag, 2, NULL);
    }
    free(text);
    return rc;
}
