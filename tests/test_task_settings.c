/* A task's settings text (task_settings_text), which training rows hash into
 * their job_id: every parameter of the task's table appears, given values as
 * given, the others at their defaults, so a job run under a later default is
 * a different job. */
#include "common/attn_error.h"
#include "tasks/task.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

Test(task_settings, every_parameter_appears_given_or_at_its_default)
{
    const task_def *t = task_find("niah_multikey");
    cr_assert_not_null(t);
    param_bag p = {.n = 0};
    cr_assert_eq(param_bag_add_list(&p, "len=1024 haystack=corpus"), 0);
    char text[1024];
    task_settings_text(t, &p, text, sizeof text);
    int rows = 0;
    for (const opt_def *d = t->params; d->name; d++, rows++) {
        char key[64];
        snprintf(key, sizeof key, "%s=", d->name);
        cr_assert(strstr(text, key) != NULL, "%s missing from '%s'", d->name, text);
    }
    int items = 1;
    for (const char *c = text; *c; c++)
        items += *c == ';';
    cr_assert_eq(items, rows, "one item per parameter: '%s'", text);
    cr_assert(strstr(text, "len=1024;") == text, "given values as given: '%s'", text);
    cr_assert(strstr(text, "haystack=corpus") != NULL, "%s", text);
    cr_assert(strstr(text, ";len_min=len;") != NULL, "a default that depends on len names it: '%s'", text);
    cr_assert(strstr(text, ";snap=1") != NULL, "numeric default: '%s'", text);

    char other[1024];
    param_bag q = {.n = 0};
    cr_assert_eq(param_bag_add_list(&q, "len=1024"), 0);
    task_settings_text(t, &q, other, sizeof other);
    cr_assert(strstr(other, "haystack=ruler") != NULL, "enum default by name: '%s'", other);
    cr_assert_str_neq(text, other);
}
