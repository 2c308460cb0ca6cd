/* MQAR with Just-Read-Twice (tasks/mqar.c, jrt=1; Arora et al. 2024,
 * JRT-Prompt): the example of jrt=0 with its key-value block repeated once
 * before the queries, labels unchanged (shifted past the copy), deterministic
 * per seed, length L + 2D. */
#include "common/attn_error.h"
#include "tasks/recall.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int make(const char *params, task_split split, uint64_t seed, int64_t n, task_data *d)
{
    param_bag p = {.n = 0};
    cr_assert_eq(param_bag_add_list(&p, params), 0, "%s", attn_last_error());
    memset(d, 0, sizeof *d);
    return task_mqar.make(&p, split, seed, n, NULL, d);
}

static void make_ok(const char *params, task_split split, uint64_t seed, int64_t n, task_data *d)
{
    cr_assert_eq(make(params, split, seed, n, d), 0, "%s: %s", params, attn_last_error());
    cr_assert_eq(d->n, n);
}

/* jrt=1 vs jrt=0 (same L, D, V, seed): [ctx | ctx | rest] with the targets of rest. */
static void check_against_plain(const char *plain_params, const char *jrt_params, int64_t L, int64_t D)
{
    task_data a, j;
    const int64_t n = 30, ctx = 2 * D;
    make_ok(plain_params, TASK_TRAIN, 5, n, &a);
    make_ok(jrt_params, TASK_TRAIN, 5, n, &j);
    cr_assert_eq(a.len, L);
    cr_assert_eq(j.len, L + ctx, "%s: length %lld, expected L + 2D = %lld", jrt_params, (long long)j.len,
                 (long long)(L + ctx));
    cr_assert_eq(j.vocab, a.vocab);
    cr_assert(strstr(j.meta, ";jrt=1") && !strstr(a.meta, "jrt"), "meta '%s' / '%s'", j.meta, a.meta);
    for (int64_t i = 0; i < n; i++) {
        const int32_t *xa = task_tokens(&a, i), *ya = task_targets(&a, i);
        const int32_t *xj = task_tokens(&j, i), *yj = task_targets(&j, i);
        cr_assert_eq(memcmp(xj, xa, sizeof *xa * (size_t)ctx), 0, "example %lld: first context differs", (long long)i);
        cr_assert_eq(memcmp(xj + ctx, xj, sizeof *xj * (size_t)ctx), 0, "example %lld: the repeat differs from the "
                     "original block", (long long)i);
        cr_assert_eq(memcmp(xj + 2 * ctx, xa + ctx, sizeof *xa * (size_t)(L - ctx)), 0,
                     "example %lld: query region differs", (long long)i);
        int64_t scored = 0;
        for (int64_t t = 0; t < 2 * ctx; t++)
            cr_assert_eq(yj[t], TASK_IGNORE, "example %lld: position %lld inside a context copy is scored",
                         (long long)i, (long long)t);
        for (int64_t t = ctx; t < L; t++) {
            cr_assert_eq(yj[t + ctx], ya[t], "example %lld: label at %lld (jrt=0 position %lld) differs", (long long)i,
                         (long long)(t + ctx), (long long)t);
            scored += ya[t] != TASK_IGNORE;
        }
        cr_assert_eq(scored, D, "example %lld: %lld scored positions", (long long)i, (long long)scored);
    }
    task_data_free(&a);
    task_data_free(&j);
}

Test(mqar_jrt, the_repeated_block_equals_the_original_and_labels_are_unchanged, .timeout = 60)
{
    check_against_plain("L=64 D=4 V=128", "L=64 D=4 V=128 jrt=1", 64, 4);
    check_against_plain("L=256 D=16 V=512", "L=256 D=16 V=512 jrt=1", 256, 16);
    /* random tokens in the blanks: the copy carries no blanks, the query region keeps its draws */
    check_against_plain("L=64 D=8 V=128 random_non_queries=1", "L=64 D=8 V=128 random_non_queries=1 jrt=1", 64, 8);
}

Test(mqar_jrt, examples_are_deterministic_per_seed_split_and_index, .timeout = 60)
{
    task_data a, b, small, other, test;
    const char *p = "L=64 D=4 V=128 jrt=1";
    make_ok(p, TASK_TRAIN, 11, 20, &a);
    make_ok(p, TASK_TRAIN, 11, 20, &b);
    make_ok(p, TASK_TRAIN, 11, 4, &small);
    make_ok(p, TASK_TRAIN, 12, 20, &other);
    make_ok(p, TASK_TEST, 11, 20, &test);
    size_t row = sizeof(int32_t) * (size_t)a.len;
    int same_other = 0, same_test = 0;
    for (int64_t i = 0; i < 20; i++) {
        cr_assert_eq(memcmp(task_tokens(&a, i), task_tokens(&b, i), row), 0, "example %lld", (long long)i);
        cr_assert_eq(memcmp(task_targets(&a, i), task_targets(&b, i), row), 0, "example %lld", (long long)i);
        if (i < 4)
            cr_assert_eq(memcmp(task_tokens(&a, i), task_tokens(&small, i), row), 0, "example %lld depends on n",
                         (long long)i);
        same_other += memcmp(task_tokens(&a, i), task_tokens(&other, i), row) == 0;
        same_test += memcmp(task_tokens(&a, i), task_tokens(&test, i), row) == 0;
    }
    cr_assert_eq(same_other, 0, "%d examples equal under another seed", same_other);
    cr_assert_eq(same_test, 0, "%d examples equal in the test split", same_test);
    task_data *all[] = {&a, &b, &small, &other, &test};
    for (int i = 0; i < 5; i++)
        task_data_free(all[i]);
}

Test(mqar_jrt, bad_values_and_jrt_with_two_passes_are_rejected)
{
    task_data d;
    cr_assert_lt(make("L=64 D=4 V=128 jrt=2", TASK_TRAIN, 1, 2, &d), 0);
    cr_assert(strstr(attn_last_error(), "jrt"), "%s", attn_last_error());
    cr_assert_lt(make("L=64 D=4 V=128 jrt=1 passes=2", TASK_TRAIN, 1, 2, &d), 0);
    cr_assert(strstr(attn_last_error(), "passes"), "%s", attn_last_error());
    task_data_free(&d);
}
