/* Making a task's examples from fuzzed parameters or files, and checking
 * what a loader delivers against task.h's contract. */
#ifndef ATTN_FUZZ_TASK_H
#define ATTN_FUZZ_TASK_H

#include "tasks/task.h"

/* t->make(params, TASK_TEST, seed 1, n, data_dir); an accepted result must
 * hold token ids in [0, vocab), labels in [0, n_classes), targets in range
 * or TASK_IGNORE and lengths in [0, len] (else abort). Returns make's code. */
int fuzz_make_task(const char *task, const param_bag *params, int64_t n, const char *data_dir);

#endif
