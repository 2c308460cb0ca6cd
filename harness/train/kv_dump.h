/* 'attnbench eval --dump-kv FILE': the queries, keys and values every block
 * of a trained model feeds its kernel on one test example, written as a kv
 * file (harness/measure/kv_file.h) for the `cache` input family of fidelity
 * jobs: recall and error measured on what a trained model's cache holds. */
#ifndef ATTN_KV_DUMP_H
#define ATTN_KV_DUMP_H

#include "models/model.h"
#include "tasks/task.h"

/* Runs m (loaded, any plan) on example `example` of d alone and writes
 * every block application's attention inputs to path; `source` (the
 * checkpoint, task and length) goes into the file's header. */
int kv_dump_write(const char *path, nn_model *m, const task_data *d, int64_t example, int threads,
                  const char *source);

#endif
