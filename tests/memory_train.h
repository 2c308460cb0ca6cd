/* The tiny MQAR training that the test-time-trained memory kernels (titans,
 * atlas) share: a two-layer LM with the kernel in every layer (short
 * convolutions on q, k, v, as the recurrent kernels are paired in the recall
 * configs) must learn multi-query associative recall well above chance in a
 * few hundred steps. A smoke test of the kernel inside the model's training
 * path (forward, backward through the memory's updates, the gate
 * projections), not a recall measurement. Include from a Criterion test file. */
#ifndef ATTN_MEMORY_TRAIN_H
#define ATTN_MEMORY_TRAIN_H

#include "harness/train/train_run.h"
#include "sanitize.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* kparams: the kernel parameters of every layer ("k=v k=v"), or NULL. */
static void tiny_mqar_beats_chance(const char *kernel, const char *kparams)
{
    char dir[] = "/tmp/attn_memory_XXXXXX", csv[64];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(csv, sizeof csv, "%s/recall.csv", dir);
    train_run_opts r;
    train_run_defaults(&r);
    strcpy(r.task, "mqar");
    const int64_t V = 64;
    cr_assert_eq(param_bag_add(&r.task_params, "L=32"), 0);
    cr_assert_eq(param_bag_add(&r.task_params, "D=4"), 0);
    cr_assert_eq(param_bag_add(&r.task_params, "V=64"), 0);
    snprintf(r.model.kernels[0], sizeof r.model.kernels[0], "%s", kernel);
    if (kparams)
        cr_assert_eq(param_bag_add_list(&r.model.kparams, kparams), 0);
    r.model.d_model = 32, r.model.heads = 1, r.model.mlp = 0, r.model.short_conv = 4;
    r.train_n = 1024, r.valid_n = 32, r.test_n = 128;
    r.train.steps = SANITIZED ? 20 : 300, r.train.eval_every = r.train.steps, r.train.batch = 16;
    r.train.lr = 3e-3, r.train.threads = 2, r.train.progress = 0;
    r.out = csv;
    train_result res;
    cr_assert_eq(train_run_exec(&r, &res), 0, "%s", attn_last_error());
    /* values are drawn from half the vocabulary: a guess among them is right 2/V of the time */
    double chance = 2.0 / (double)V;
    cr_log_info("%s tiny MQAR: test accuracy %.4f [%.4f, %.4f], chance %.4f", kernel, res.test.value,
                res.test.ci_low, res.test.ci_high, chance);
    cr_assert(SANITIZED || res.test.ci_low > 4 * chance,
              "%s: test accuracy %.4f, 95%% interval [%.4f, %.4f], not clearly above 4x chance %.4f", kernel,
              res.test.value, res.test.ci_low, res.test.ci_high, 4 * chance);
    train_result_free(&res);
    remove(csv);
    rmdir(dir);
}

#endif
