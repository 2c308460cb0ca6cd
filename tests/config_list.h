/* A sweep config list that makes one job per value ("kv_dtype", "dtype"):
 * the row-level tests of both read it the same way. */
#ifndef ATTN_TEST_CONFIG_LIST_H
#define ATTN_TEST_CONFIG_LIST_H

#include "harness/measure/config.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* `good` (one suite whose list has n values) expands to `jobs` jobs whose
 * job_value cycles through want[0..n-1]; its dump holds `dumped` and parses
 * back with a list of n values (list_len); `bad` is refused naming `path`
 * and the valid name `valid`. */
static inline void assert_config_list(const char *good, size_t jobs, int (*job_value)(const bench_job *), const int *want,
                                      size_t n, size_t (*list_len)(const cfg_suite *), const char *dumped,
                                      const char *bad, const char *path, const char *valid)
{
    cfg_config c, d;
    cr_assert_eq(cfg_parse("x.json", good, &c), 0, "%s", attn_last_error());
    cfg_job *j;
    size_t count;
    cr_assert_eq(cfg_expand(&c, &j, &count), 0);
    cr_assert_eq(count, jobs);
    for (size_t i = 0; i < count; i++)
        cr_assert_eq(job_value(&j[i].job), want[i % n], "job %zu", i);
    free(j);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    cfg_dump(f, &c);
    fclose(f);
    cr_assert(strstr(text, dumped), "%s", text);
    cr_assert_eq(cfg_parse("dump", text, &d), 0, "%s", attn_last_error());
    cr_assert_eq(list_len(&d.suites[0]), n);
    free(text);
    cfg_free(&c);
    cfg_free(&d);
    cr_assert_lt(cfg_parse("x.json", bad, &c), 0);
    cr_assert(strstr(attn_last_error(), path) && strstr(attn_last_error(), valid), "%s", attn_last_error());
}

#endif
