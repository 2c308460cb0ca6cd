#include "fuzz_task.h"

#include "fuzz_io.h"

#include <stdio.h>
#include <stdlib.h>

static void bad(const task_data *d, const char *what, int64_t i, int64_t v)
{
    fprintf(stderr, "fuzz task %s (%s): %s: element %lld is %lld\n", d->name, d->data_source, what, (long long)i,
            (long long)v);
    abort();
}

static void check_ids(const task_data *d, const int32_t *x, int64_t count, int32_t lo, int32_t hi, int ignore_ok,
                      const char *what)
{
    for (int64_t i = 0; x && i < count; i++)
        if ((x[i] < lo || x[i] >= hi) && !(ignore_ok && x[i] == TASK_IGNORE))
            bad(d, what, i, x[i]);
}

static void check_data(const task_data *d)
{
    int64_t cells = d->n * d->len;
    check_ids(d, d->tokens, cells, 0, d->vocab, 0, "token outside [0, vocab)");
    check_ids(d, d->tokens2, cells, 0, d->vocab, 0, "second token outside [0, vocab)");
    check_ids(d, d->targets, cells, 0, d->vocab, 1, "target outside [0, vocab)");
    if (d->kind != TASK_LM)
        check_ids(d, d->labels, d->n, 0, d->n_classes, 0, "label outside [0, n_classes)");
    check_ids(d, d->lengths, d->n, 0, (int32_t)d->len + 1, 0, "length outside [0, len]");
    check_ids(d, d->lengths2, d->n, 0, (int32_t)d->len + 1, 0, "second length outside [0, len]");
}

int fuzz_make_task(const char *task, const param_bag *params, int64_t n, const char *data_dir)
{
    const task_def *t = task_find(task);
    if (!t)
        abort(); /* the targets name registered tasks */
    task_data d;
    attn_clear_error();
    int rc = t->make(params, TASK_TEST, 1, n, data_dir, &d);
    fuzz_check_error(rc, task);
    if (!rc) {
        check_data(&d);
        task_data_free(&d);
    }
    return rc;
}
