/* The tiny MQAR training that the test-time-trained memory kernels (titans,
 * atlas) share: a two-layer LM with the kernel in every layer (short
 * convolutions on q, k, v, as the recurrent kernels are paired in the recall
 * configs) must learn multi-query associative recall well above chance in a
 * few hundred steps. A smoke test of the kernel inside the model's training
 * path (forward, backward through the memory's updates, the gate
 * projections), not a recall measurement. The same run trains other model
 * options (GTrXL gating). Include from a Criterion test file. */
#ifndef ATTN_MEMORY_TRAIN_H
#define ATTN_MEMORY_TRAIN_H

#include "sanitize.h"
#include "test_train.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The shared run: MQAR L 32, 4 pairs, vocabulary 64, a 2-layer LM of width 32
 * (one head, no MLP, short convolutions), 300 steps; its CSV in a new folder
 * dir (a mkdtemp template) named into csv. */
static inline void tiny_mqar_opts(train_run_opts *r, char *dir, char *csv, size_t csv_size)
{
    tiny_mqar(r, dir, csv, csv_size);
    r->model.d_model = 32, r->model.heads = 1, r->model.mlp = 0, r->model.short_conv = 4;
    r->train_n = 1024, r->valid_n = 32, r->test_n = 128;
    r->train.steps = SANITIZED ? 20 : 300, r->train.eval_every = r->train.steps, r->train.batch = 16;
    r->train.lr = 3e-3, r->train.threads = 2, r->train.progress = 0;
    r->out = csv;
}

/* The test accuracy's 95% interval clears 4x chance: values are drawn from
 * half the vocabulary of 64, a guess among them is right 2/64 of the time. */
static inline void tiny_mqar_expect_above_chance(const char *what, const train_result *res)
{
    double chance = 2.0 / 64.0;
    cr_log_info("%s tiny MQAR: test accuracy %.4f [%.4f, %.4f], chance %.4f", what, res->test.value,
                res->test.ci_low, res->test.ci_high, chance);
    cr_assert(SANITIZED || res->test.ci_low > 4 * chance,
              "%s: test accuracy %.4f, 95%% interval [%.4f, %.4f], not clearly above 4x chance %.4f", what,
              res->test.value, res->test.ci_low, res->test.ci_high, 4 * chance);
}

/* Trains r (tiny_mqar_opts) with a checkpoint in its folder ckpt (64 bytes),
 * expects it above chance and a reload of the checkpoint to score the same;
 * res is the training's (the caller frees it, then tiny_mqar_clean). */
static inline void tiny_mqar_train_and_reload(const char *what, train_run_opts *r, const char *dir, char *ckpt,
                                              train_result *res)
{
    snprintf(ckpt, 64, "%s/model.ckpt", dir);
    r->checkpoint = ckpt;
    cr_assert_eq(train_run_exec(r, res), 0, "%s", attn_last_error());
    tiny_mqar_expect_above_chance(what, res);
    double again, logged;
    cr_assert_eq(test_eval_acc(ckpt, 0, 1, r->out, &again, &logged), 0, "%s", attn_last_error());
    cr_assert_eq(again, res->test.value, "%s: reloaded %.9g vs trained %.9g", what, again, res->test.value);
}

static inline void tiny_mqar_clean(const char *dir, const char *csv, const char *ckpt)
{
    unlink(csv), unlink(ckpt), rmdir(dir);
}

/* kparams: the kernel parameters of every layer ("k=v k=v"), or NULL. */
static inline void tiny_mqar_beats_chance(const char *kernel, const char *kparams)
{
    char dir[] = "/tmp/attn_memory_XXXXXX", csv[64];
    train_run_opts r;
    tiny_mqar_opts(&r, dir, csv, sizeof csv);
    snprintf(r.model.kernels[0], sizeof r.model.kernels[0], "%s", kernel);
    if (kparams)
        cr_assert_eq(param_bag_add_list(&r.model.kparams, kparams), 0);
    train_result res;
    cr_assert_eq(train_run_exec(&r, &res), 0, "%s", attn_last_error());
    tiny_mqar_expect_above_chance(kernel, &res);
    train_result_free(&res);
    remove(csv);
    rmdir(dir);
}

#endif
