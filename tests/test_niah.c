/* NIAH generators (docs/tasks.md): needle depth and snapping, answer
 * targets, distractors, multi-value/multi-query/variable-tracking layouts,
 * the Landmark passkey format, lengths and padding, determinism, the three
 * haystacks (noise, fitted Markov chain, SpamAssassin bodies) and the
 * corpus loader's errors. Rows are decoded to text with the special tokens
 * as control bytes (BOS 0x02, QUERY 0x03, ANSWER 0x04, PAD 0x05). */
#include "common/attn_error.h"
#include "tasks/metrics.h"
#include "niah_check.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void view_single(const task_data *d, int64_t i, nc_row *v)
{
    nc_view_row(d, i, v);
    cr_assert_eq(v->n, 1, "row %lld has %d needles, expected 1", (long long)i, v->n);
}

Test(niah, niah_needle_sits_at_the_requested_depth_and_targets_are_the_value, .timeout = 60)
{
    static const double depths[] = {0, 0.3, 0.5, 1};
    char ans[520], params[128];
    for (int k = 0; k < 4; k++) {
        task_data d;
        snprintf(params, sizeof params, "len=512 depth=%g snap=0", depths[k]);
        nc_make_ok(&task_niah, params, TASK_TEST, 3, 20, &d);
        cr_assert_str_eq(d.data_source, "generated");
        cr_assert(strstr(d.meta, "len=512") && strstr(d.meta, "haystack=noise") && strstr(d.meta, "needle=single"),
                  "meta %s", d.meta);
        for (int64_t i = 0; i < d.n; i++) {
            nc_row v;
            nc_view_row(&d, i, &v);
            const nc_needle *nd = v.nd;
            const char *ctx = v.ctx;
            cr_assert_eq(v.T, 512);
            cr_assert_eq(task_tokens(&d, i)[511] == NIAH_PAD, 0, "PAD in a full-length row");
            cr_assert_eq(v.n, 1);
            int64_t want = llround(depths[k] * (double)(v.C - nd[0].len));
            cr_assert_eq(nd[0].at, want, "depth %g: needle at %lld, expected round(d (C - n)) = %lld", depths[k],
                         (long long)nd[0].at, (long long)want);
            cr_assert_str_eq(nd[0].key, v.query);
            cr_assert_eq(nc_count_in(ctx, nd[0].val), 1, "value %s occurs %lld times", nd[0].val,
                         (long long)nc_count_in(ctx, nd[0].val));
            cr_assert_eq(nc_answer_text(&d, i, ans), 7);
            cr_assert_str_eq(ans, nd[0].val);
            for (int64_t t = 505; t < 512; t++)
                cr_assert_neq(task_targets(&d, i)[t], TASK_IGNORE, "answer not at the end (t=%lld)", (long long)t);
            cr_assert_eq(task_tokens(&d, i)[505], NIAH_ANSWER);
        }
        task_data_free(&d);
    }
}

Test(niah, niah_snap_moves_the_needle_back_to_just_after_a_period, .timeout = 60)
{
    char hay[520];
    static const double depths[] = {0.37, 0.81};
    for (int k = 0; k < 2; k++) {
        task_data d;
        char params[64];
        snprintf(params, sizeof params, "len=512 depth=%g haystack=random", depths[k]);
        nc_make_ok(&task_niah, params, TASK_TRAIN, 8, 30, &d);
        int moved = 0;
        for (int64_t i = 0; i < d.n; i++) {
            nc_row v;
            view_single(&d, i, &v);
            const nc_needle *nd = v.nd;
            const char *ctx = v.ctx;
            int64_t G = v.C - nd[0].len, p = nd[0].at, want = llround(depths[k] * (double)G);
            snprintf(hay, sizeof hay, "%.*s%s", (int)p, ctx, ctx + p + nd[0].len);
            cr_assert(p <= want, "snapped needle at %lld after the requested %lld", (long long)p, (long long)want);
            cr_assert(p == 0 || hay[p - 1] == '.', "needle at %lld does not follow a '.'", (long long)p);
            for (int64_t t = p; t < want; t++)
                cr_assert_neq(hay[t], '.', "a '.' at %lld lies between the needle and its depth", (long long)t);
            moved += p < want;
        }
        cr_assert(moved > 0, "snapping never moved a needle");
        task_data_free(&d);
    }
}

Test(niah, niah_uniform_depth_spreads_needles_and_len_min_pads, .timeout = 60)
{
    task_data d;
    nc_make_ok(&task_niah, "len=512 len_min=256", TASK_TRAIN, 4, 60, &d);
    cr_assert_eq(d.pad, NIAH_PAD);
    double lo = 1, hi = 0;
    int32_t lmin = 512, lmax = 0;
    for (int64_t i = 0; i < d.n; i++) {
        nc_row v;
        nc_view_row(&d, i, &v);
        int64_t T = v.T;
        cr_assert(T >= 256 && T <= 512);
        lmin = T < lmin ? (int32_t)T : lmin, lmax = T > lmax ? (int32_t)T : lmax;
        for (int64_t t = 0; t < 512; t++) {
            cr_assert_eq(task_tokens(&d, i)[t] == NIAH_PAD, t >= T, "PAD exactly after T=%lld (t=%lld)",
                         (long long)T, (long long)t);
            cr_assert_eq(task_targets(&d, i)[t] != TASK_IGNORE, t >= T - 7 && t < T, "answer at T-7..T-1");
        }
        cr_assert_eq(v.n, 1);
        double depth = (double)v.nd[0].at / (double)(v.C - v.nd[0].len);
        lo = fmin(lo, depth), hi = fmax(hi, depth);
    }
    cr_assert(lo < 0.2 && hi > 0.8, "depths span only [%.2f, %.2f] over 60 uniform draws", lo, hi);
    cr_assert(lmin < lmax, "len_min gave a single length %d", lmin);
    task_data_free(&d);
}

/* distractors=0 keeps this project's earlier rule (1-3 distractors) as an
 * option; the RULER default of 3 is pinned in test_niah_ruler.c. */
Test(niah, niah_multikey_distractors_0_draws_1_to_3_other_keys_and_only_the_oracle_scores_100, .timeout = 60)
{
    task_data d;
    char ans[64];
    nc_make_ok(&task_niah_multikey, "len=512 distractors=0", TASK_TEST, 5, 60, &d);
    int seen[5] = {0};
    int32_t *first = malloc((size_t)(d.n * d.len) * sizeof *first), *oracle = malloc((size_t)(d.n * d.len) * sizeof *oracle);
    for (int64_t i = 0; i < d.n; i++) {
        nc_row v;
        nc_view_row(&d, i, &v);
        const nc_needle *nd = v.nd;
        const char *key = v.query;
        int n = v.n, real = -1;
        cr_assert(n >= 2 && n <= 4, "%d needles, expected 1 real + 1-3 distractors", n);
        seen[n]++;
        for (int j = 0; j < n; j++) {
            for (int k = 0; k < j; k++)
                cr_assert_str_neq(nd[j].key, nd[k].key, "distractor shares key %s", nd[j].key);
            if (strcmp(nd[j].key, key) == 0)
                real = j;
        }
        cr_assert(real >= 0, "queried key %s has no needle", key);
        nc_answer_text(&d, i, ans);
        cr_assert_str_eq(ans, nd[real].val);
        /* the oracle reads the queried key's needle; the decoy the first needle */
        int k = 0;
        for (int64_t t = 0; t < d.len; t++) {
            int scored = task_targets(&d, i)[t] != TASK_IGNORE;
            oracle[i * d.len + t] = scored ? nd[real].val[k] : -1;
            first[i * d.len + t] = scored ? nd[0].val[k] : -1;
            k += scored;
        }
    }
    cr_assert(seen[2] && seen[3] && seen[4], "distractor counts 1/2/3 seen %d/%d/%d times", seen[2], seen[3], seen[4]);
    task_lm_metrics m;
    cr_assert_eq(task_lm_metrics_compute(&d, oracle, -1, &m), 0);
    cr_assert_eq(m.exact_match, 1.0, "oracle exact match %.3f", m.exact_match);
    cr_assert_eq(task_lm_metrics_compute(&d, first, -1, &m), 0);
    cr_assert(m.exact_match > 0.05 && m.exact_match < 0.8, "first-needle decoy exact match %.3f", m.exact_match);
    free(first), free(oracle);
    task_data_free(&d);
    nc_make_ok(&task_niah_multikey, "len=512 distractors=2", TASK_TEST, 5, 5, &d);
    for (int64_t i = 0; i < d.n; i++) {
        nc_row v;
        nc_view_row(&d, i, &v);
        cr_assert_eq(v.n, 3);
    }
    task_data_free(&d);
}

Test(niah, niah_multivalue_emits_all_values_in_context_order, .timeout = 60)
{
    task_data d;
    char ans[200], want[200];
    nc_make_ok(&task_niah_multivalue, "len=512", TASK_TRAIN, 6, 30, &d);
    for (int64_t i = 0; i < d.n; i++) {
        nc_row v;
        nc_view_row(&d, i, &v);
        const nc_needle *nd = v.nd;
        const char *ctx = v.ctx;
        cr_assert_eq(v.n, 4);
        for (int j = 0; j < 4; j++) {
            cr_assert_str_eq(nd[j].key, v.query);
            cr_assert_eq(nc_count_in(ctx, nd[j].val), 1, "value %s repeats", nd[j].val);
        }
        snprintf(want, sizeof want, "%s,%s,%s,%s", nd[0].val, nd[1].val, nd[2].val, nd[3].val);
        nc_answer_text(&d, i, ans);
        cr_assert_str_eq(ans, want);
    }
    task_data_free(&d);
}

Test(niah, niah_multiquery_answers_every_query_with_its_value, .timeout = 60)
{
    task_data d;
    char s[520], ans[64];
    nc_make_ok(&task_niah_multiquery, "len=512", TASK_TRAIN, 7, 30, &d);
    int reordered = 0;
    for (int64_t i = 0; i < d.n; i++) {
        nc_row_text(&d, i, s);
        char tail[128];
        snprintf(tail, sizeof tail, "%s", strchr(s, NC_QUERY));
        nc_row v;
        nc_view_row(&d, i, &v);
        const nc_needle *nd = v.nd;
        cr_assert_eq(v.n, 4);
        nc_answer_text(&d, i, ans);
        cr_assert_eq(strlen(ans), 28, "4 values of 7 digits are scored, found '%s'", ans);
        /* tail: (QUERY key ANSWER value) x 4; the last value is target-only */
        const char *p = tail;
        int used[4] = {0};
        for (int g = 0; g < 4; g++) {
            cr_assert_eq(*p, NC_QUERY);
            const char *a = strchr(p, NC_ANSWER);
            int j = 0;
            while (j < 4 && (strlen(nd[j].key) != (size_t)(a - p - 1) || strncmp(nd[j].key, p + 1, (size_t)(a - p - 1))))
                j++;
            cr_assert(j < 4 && !used[j], "query %d asks an unknown or repeated key", g);
            used[j] = 1;
            reordered += g != j;
            cr_assert_eq(strncmp(ans + 7 * g, nd[j].val, 7), 0, "answer %d is not key %s's value", g, nd[j].key);
            p = a + 8;
        }
    }
    cr_assert(reordered > 0, "queries always follow the insertion order");
    task_data_free(&d);
}

Test(niah, niah_vt_answer_is_the_chain_of_names_bound_to_the_value, .timeout = 60)
{
    task_data d;
    char ans[64];
    nc_make_ok(&task_niah_vt, "len=512", TASK_TRAIN, 9, 30, &d);
    for (int64_t i = 0; i < d.n; i++) {
        nc_row v;
        nc_view_row(&d, i, &v);
        char names[5][6], want[40];
        const char *value = v.query, *ctx = v.ctx;
        cr_assert_eq(strlen(value), 5);
        const char *p = ctx;
        for (int j = 0; j < 5; j++) {
            p = strstr(p, " VAR ");
            cr_assert(p, "statement %d missing", j);
            memcpy(names[j], p + 5, 5);
            names[j][5] = '\0';
            char stmt[64];
            if (j == 0)
                snprintf(stmt, sizeof stmt, " VAR %s = %s.", names[0], value);
            else
                snprintf(stmt, sizeof stmt, " VAR %s = VAR %s.", names[j], names[j - 1]);
            cr_assert_eq(strncmp(p, stmt, strlen(stmt)), 0, "statement %d is '%.24s', expected '%s'", j, p, stmt);
            p += strlen(stmt);
        }
        cr_assert_eq(nc_count_in(ctx, " VAR "), 9, "expected 5 statements (4 hops), nothing else");
        snprintf(want, sizeof want, "%s,%s,%s,%s,%s", names[0], names[1], names[2], names[3], names[4]);
        nc_answer_text(&d, i, ans);
        cr_assert_str_eq(ans, want);
    }
    task_data_free(&d);
}

/* The noise stream: the block joined by spaces, from its start; n + 1 <=
 * size, the bytes of out. */
static void noise_stream(char *out, size_t size, int64_t n)
{
    cr_assert(n >= 0 && (size_t)n < size, "noise of %lld bytes in a buffer of %zu", (long long)n, size);
    int64_t period = (int64_t)strlen(niah_noise_block) + 1;
    for (int64_t k = 0; k < n; k++)
        out[k] = k % period < period - 1 ? niah_noise_block[k % period] : ' ';
    out[n] = '\0';
}

Test(niah, passkey_follows_the_landmark_format, .timeout = 60)
{
    cr_assert_str_eq(niah_noise_block,
                     "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again.");
    static const char desc[] = "There is an important info hidden inside a lot of irrelevant text. Find it and "
                               "memorize them. I will quiz you about the important information there.\n";
    static const char question[] = "\nWhat is the pass key? The pass key is ";
    task_data d;
    char s[420], ans[16], noise[420], info[96];
    nc_make_ok(&task_passkey, "len=400 depth=0.5 snap=0", TASK_TEST, 1, 100, &d);
    int distinct = 0;
    long prev = -1;
    int64_t hay_min = INT64_MAX, hay_sum = 0;
    for (int64_t i = 0; i < d.n; i++) {
        nc_row_text(&d, i, s);
        cr_assert_eq(s[0], '\x02');
        cr_assert_eq(strncmp(s + 1, desc, strlen(desc)), 0, "description line");
        nc_answer_text(&d, i, ans);
        long K = strtol(ans, NULL, 10);
        cr_assert(K >= 1 && K <= 50000 && ans[strlen(ans) - 1] == '.', "answer '%s'", ans);
        distinct += K != prev, prev = K;
        snprintf(info, sizeof info, "\nThe pass key is %ld. Remember it. %ld is the pass key.\n", K, K);
        const char *prefix = s + 1 + strlen(desc), *in = strstr(prefix, info);
        cr_assert(in, "info line for K=%ld missing", K);
        const char *suffix = in + strlen(info), *qu = strstr(suffix, question);
        cr_assert(qu && qu + strlen(question) == s + 400 - (strlen(ans) - 1), "question must end the row");
        int64_t np = in - prefix, ns = qu - suffix;
        noise_stream(noise, sizeof noise, np > ns ? np : ns);
        cr_assert_eq(strncmp(prefix, noise, (size_t)np), 0, "prefix is not the filler");
        cr_assert_eq(strncmp(suffix, noise, (size_t)ns), 0, "suffix is not the filler from its start");
        cr_assert_eq(np, llround(0.5 * (double)(np + ns)), "prefix %lld of %lld filler bytes", (long long)np,
                     (long long)(np + ns));
        hay_min = np + ns < hay_min ? np + ns : hay_min, hay_sum += np + ns;
    }
    cr_assert(distinct > 90, "passkeys repeat: %d distinct of 100", distinct);
    /* the progress line's haystack figures are the filler bytes counted here */
    char want[64];
    snprintf(want, sizeof want, ";hay_min=%lld;hay_share=%.2f", (long long)hay_min, (double)hay_sum / (100.0 * 400.0));
    cr_assert(strstr(d.meta, want), "meta '%s' lacks '%s'", d.meta, want);
    task_data_free(&d);
}

Test(niah, niah_is_deterministic_per_example_and_split, .timeout = 60)
{
    task_data a, b, small, test;
    nc_make_ok(&task_niah_multikey, "len=256 haystack=random", TASK_TRAIN, 21, 12, &a);
    nc_make_ok(&task_niah_multikey, "len=256 haystack=random", TASK_TRAIN, 21, 12, &b);
    nc_make_ok(&task_niah_multikey, "len=256 haystack=random", TASK_TRAIN, 21, 3, &small);
    nc_make_ok(&task_niah_multikey, "len=256 haystack=random", TASK_TEST, 21, 12, &test);
    size_t row = (size_t)a.len * sizeof(int32_t);
    int same_test = 0;
    for (int64_t i = 0; i < 12; i++) {
        cr_assert_eq(memcmp(task_tokens(&a, i), task_tokens(&b, i), row), 0);
        cr_assert_eq(memcmp(task_targets(&a, i), task_targets(&b, i), row), 0);
        if (i < 3)
            cr_assert_eq(memcmp(task_tokens(&a, i), task_tokens(&small, i), row), 0, "example %lld depends on n",
                         (long long)i);
        same_test += memcmp(task_tokens(&a, i), task_tokens(&test, i), row) == 0;
    }
    cr_assert_eq(same_test, 0);
    task_data_free(&a), task_data_free(&b), task_data_free(&small), task_data_free(&test);
}

Test(niah, random_haystack_is_an_order2_chain_fitted_to_the_noise_text, .timeout = 60)
{
    /* every trigram an order-2 chain emits was seen in its fitting text */
    char noise[400];
    noise_stream(noise, sizeof noise, 2 * ((int64_t)strlen(niah_noise_block) + 1));
    task_data d;
    nc_make_ok(&task_niah, "len=512 depth=1 snap=0 haystack=random", TASK_TRAIN, 2, 10, &d);
    cr_assert_str_eq(d.data_source, "generated");
    int differs = 0;
    for (int64_t i = 0; i < d.n; i++) {
        nc_row v;
        view_single(&d, i, &v);
        const nc_needle *nd = v.nd;
        const char *ctx = v.ctx;
        for (int64_t t = 0; t + 3 <= nd[0].at; t++) {
            char tri[4] = {ctx[t], ctx[t + 1], ctx[t + 2], 0};
            cr_assert(strstr(noise, tri), "trigram '%s' at %lld never occurs in the noise text", tri, (long long)t);
        }
        differs += strncmp(ctx, noise, 100) != 0;
    }
    cr_assert(differs >= 9, "the random haystack copies the noise stream");
    task_data_free(&d);
}

Test(niah, random_haystack_follows_the_trigram_frequencies_of_the_noise_text, .timeout = 60)
{
    /* independent twin: successor counts of each bigram in the cyclic noise
     * text, against 200k bytes walked by the fitted chain */
    char text[200];
    int64_t period = (int64_t)strlen(niah_noise_block) + 1;
    noise_stream(text, sizeof text, period + 2); /* one period, cyclic */
    static double fit[65536][4];
    static unsigned char succ[65536][4];
    static int nsucc[65536];
    for (int64_t t = 0; t < period; t++) {
        int ctx = (unsigned char)text[t] << 8 | (unsigned char)text[t + 1], j = 0;
        while (j < nsucc[ctx] && succ[ctx][j] != (unsigned char)text[t + 2])
            j++;
        cr_assert(j < 4, "noise context with > 4 successors");
        if (j == nsucc[ctx])
            succ[ctx][nsucc[ctx]++] = (unsigned char)text[t + 2];
        fit[ctx][j] += 1;
    }
    niah_haystack *h;
    cr_assert_eq(niah_haystack_open(&h, NIAH_HAY_RANDOM, NIAH_FIT_NOISE, TASK_TRAIN, NULL), 0, "%s", attn_last_error());
    cr_assert_str_eq(niah_haystack_source(h), "generated");
    const int64_t n = 200000;
    uint8_t *buf = malloc((size_t)n);
    attn_rng r;
    attn_rng_seed(&r, 99);
    cr_assert_eq(niah_haystack_fill(h, &r, buf, n), 0);
    static double seen[65536][4];
    for (int64_t t = 0; t + 2 < n; t++) {
        int ctx = buf[t] << 8 | buf[t + 1], j = 0;
        while (j < nsucc[ctx] && succ[ctx][j] != buf[t + 2])
            j++;
        cr_assert(j < nsucc[ctx], "trigram never seen in the noise text at %lld", (long long)t);
        seen[ctx][j] += 1;
    }
    int checked = 0;
    for (int ctx = 0; ctx < 65536; ctx++) {
        double tf = 0, ts = 0;
        for (int j = 0; j < nsucc[ctx]; j++)
            tf += fit[ctx][j], ts += seen[ctx][j];
        if (nsucc[ctx] < 2 || ts < 2000)
            continue;
        checked++;
        for (int j = 0; j < nsucc[ctx]; j++)
            cr_assert(fabs(seen[ctx][j] / ts - fit[ctx][j] / tf) < 0.04, "context '%c%c' -> '%c': %.3f, fitted %.3f",
                      ctx >> 8, ctx & 255, succ[ctx][j], seen[ctx][j] / ts, fit[ctx][j] / tf);
    }
    cr_assert(checked >= 3, "only %d branching contexts checked", checked);
    free(buf);
    niah_haystack_close(h);
}

Test(niah, corpus_haystack_takes_spans_of_real_message_bodies_from_split_pools, .timeout = 60)
{
    nc_corpus_root();
    char root[4096], s[300];
    cr_assert_eq(niah_corpus_root(NULL, root, sizeof root), 0);
    char **train, **test;
    int64_t ntr, nte;
    cr_assert_eq(niah_corpus_list(root, TASK_TRAIN, &train, &ntr), 0, "%s", attn_last_error());
    cr_assert_eq(niah_corpus_list(root, TASK_TEST, &test, &nte), 0, "%s", attn_last_error());
    cr_assert(ntr > 4 * nte && nte > 100, "pools train %lld, test %lld", (long long)ntr, (long long)nte);
    for (int64_t i = 0, j = 0; i < nte; i++) { /* both lists are sorted: merge to find a shared file */
        while (j < ntr && strcmp(train[j], test[i]) < 0)
            j++;
        cr_assert(j == ntr || strcmp(train[j], test[i]) != 0, "%s is in both pools", test[i]);
    }
    task_data d;
    nc_make_ok(&task_niah, "len=256 depth=1 snap=0 haystack=corpus", TASK_TEST, 3, 4, &d);
    cr_assert_str_eq(d.data_source, "stand-in:spam-assassin");
    int found[4] = {0};
    for (int64_t k = 0; k < nte; k++) {
        char *body;
        size_t n;
        cr_assert_eq(niah_corpus_read_body(test[k], &body, &n), 0, "%s", attn_last_error());
        for (int64_t i = 0; i < d.n; i++) {
            nc_row_text(&d, i, s);
            s[1 + 24] = '\0'; /* the first 24 haystack bytes */
            found[i] |= strstr(body, s + 1) != NULL;
        }
        free(body);
    }
    for (int64_t i = 0; i < d.n; i++)
        cr_assert(found[i], "example %lld's haystack is not from a test-pool body", (long long)i);
    free(train), free(test);
    task_data_free(&d);
    /* a chain fitted to the corpus is a stand-in too */
    nc_make_ok(&task_niah, "len=256 haystack=random fit=corpus", TASK_TEST, 3, 2, &d);
    cr_assert_str_eq(d.data_source, "stand-in:spam-assassin");
    cr_assert(strstr(d.meta, "haystack=random;fit=corpus"), "meta %s", d.meta);
    task_data_free(&d);
}

static void write_tmp(char *path, const char *text)
{
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

Test(niah, corpus_loader_keeps_the_body_after_the_first_blank_line, .timeout = 60)
{
    char path[] = "/tmp/attnbench_doc_XXXXXX", *body;
    size_t n;
    write_tmp(path, "{\"id\": \"1\", \"text\": \"From: a@b\\nSubject: hi\\n\\nHello.\\n\\nReceived: x\"}");
    cr_assert_eq(niah_corpus_read_body(path, &body, &n), 0, "%s", attn_last_error());
    cr_assert_str_eq(body, "Hello.\n\nReceived: x");
    cr_assert_eq(n, strlen(body));
    free(body);
    unlink(path);
}

Test(niah, corpus_malformed_json_gives_an_error_naming_the_file, .timeout = 60)
{
    const char *dir = ATTN_SOURCE_DIR "/tests/data/spam-bad";
    task_data d;
    task_split pool = niah_corpus_pool_of("broken.json");
    param_bag p = {.n = 0};
    param_bag_add(&p, "haystack=corpus");
    param_bag_add(&p, "len=128");
    cr_assert_lt(task_niah.make(&p, pool, 1, 2, dir, &d), 0);
    cr_assert(strstr(attn_last_error(), "broken.json") && strstr(attn_last_error(), "malformed JSON"), "%s",
              attn_last_error());
    /* a document without "text" */
    char path[] = "/tmp/attnbench_notext_XXXXXX";
    write_tmp(path, "{\"id\": \"1\"}");
    char *body;
    size_t n;
    cr_assert_lt(niah_corpus_read_body(path, &body, &n), 0);
    cr_assert(strstr(attn_last_error(), path) && strstr(attn_last_error(), "\"text\""), "%s", attn_last_error());
    unlink(path);
    cr_assert_lt(nc_make(&task_niah, "haystack=corpus", TASK_TRAIN, 1, 2, "/nonexistent/dir", &d), 0);
    cr_assert(strstr(attn_last_error(), "/nonexistent/dir"), "%s", attn_last_error());
}

Test(niah, niah_rejects_bad_params_with_clear_messages, .timeout = 60)
{
    task_data d;
    cr_assert_lt(nc_make(&task_niah, "len=40", TASK_TRAIN, 1, 2, NULL, &d), 0);
    cr_assert(strstr(attn_last_error(), "expected len >="), "%s", attn_last_error());
    cr_assert_lt(nc_make(&task_niah, "depth=-0.5", TASK_TRAIN, 1, 2, NULL, &d), 0);
    cr_assert_lt(nc_make(&task_niah, "haystack=paul-graham", TASK_TRAIN, 1, 2, NULL, &d), 0);
    cr_assert(strstr(attn_last_error(), "param haystack: expected one of noise, random, corpus, essay, needle, ruler"),
              "%s", attn_last_error());
    cr_assert_lt(nc_make(&task_niah_multikey, "variant=mk2 distractors=2", TASK_TRAIN, 1, 2, NULL, &d), 0);
    cr_assert(strstr(attn_last_error(), "param distractors: expected only with variant=mk1"), "%s", attn_last_error());
    cr_assert_lt(nc_make(&task_niah_multivalue, "haystack=needle", TASK_TRAIN, 1, 2, NULL, &d), 0);
    cr_assert(strstr(attn_last_error(), "param haystack: expected needle only with one inserted needle"), "%s",
              attn_last_error());
    cr_assert_lt(nc_make(&task_passkey, "haystack=needle", TASK_TRAIN, 1, 2, NULL, &d), 0);
    cr_assert_lt(nc_make(&task_niah_vt, "len=200", TASK_TRAIN, 1, 2, NULL, &d), 0);
    cr_assert(strstr(attn_last_error(), "niah_vt: expected >= 5 sentences"), "%s", attn_last_error());
    cr_assert_lt(nc_make(&task_niah, "distractors=2", TASK_TRAIN, 1, 2, NULL, &d), 0);
    cr_assert_lt(nc_make(&task_passkey, "len=100", TASK_TRAIN, 1, 2, NULL, &d), 0);
    cr_assert_lt(nc_make(&task_niah, "len=256 len_min=300", TASK_TRAIN, 1, 2, NULL, &d), 0);
}
