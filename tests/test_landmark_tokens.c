/* The generic task parameter landmark=l (task.h "Landmark tokens"): landmark
 * token ids, positions b*l + l - 1 and ignored targets on a hand-checked
 * example; the data tokens and their targets unchanged in order; vocab + 1,
 * lengths, meta; determinism; refusal for LRA tasks and bad l; and a tiny
 * LM with kernel `landmark` trained on MQAR with landmark tokens, then
 * evaluated at 1x and 2x the length with mode=topk (eval --scale). */
#include "harness/results/csvw.h"
#include "harness/train/extrapolate.h"
#include "test_train.h"
#include "tasks/task.h"
#include "harness/train/train_run.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define IG TASK_IGNORE

/* params "k=v" ... NULL */
static param_bag params_of(const char *const *kv)
{
    param_bag p = {.n = 0};
    for (; *kv; kv++)
        cr_assert_eq(param_bag_add(&p, *kv), 0, "%s", attn_last_error());
    return p;
}

/* Builds a task through the registry (the path train / sweep / eval use). */
static int make_via_registry(const char *task, const char *const *kv, task_split split, uint64_t seed, int64_t n,
                             task_data *d)
{
    param_bag p = params_of(kv);
    const task_def *t = task_find(task);
    cr_assert_not_null(t, "%s", attn_last_error());
    return t->make(&p, split, seed, n, NULL, d);
}

Test(landmark_tokens, hand_checked_positions_ids_targets_lengths_and_meta)
{
    task_data d;
    cr_assert_eq(task_data_alloc(&d, "toy", TASK_LM, 2, 7), 0);
    d.vocab = 10, d.pad = 9;
    snprintf(d.meta, sizeof d.meta, "L=7");
    static const int32_t tok[2][7] = {{0, 1, 2, 3, 4, 5, 6}, {5, 4, 3, 2, 9, 9, 9}};
    static const int32_t tgt[2][7] = {{IG, 11, IG, 13, 14, IG, 16}, {IG, IG, 7, 8, IG, IG, IG}};
    memcpy(d.tokens, tok, sizeof tok), memcpy(d.targets, tgt, sizeof tgt);
    d.lengths[1] = 4; /* row 1: 4 tokens, then padding */
    cr_assert_eq(task_landmark_insert(&d, 3), 0, "%s", attn_last_error());
    /* l = 3: a landmark (id 10 = the old vocab) after every 2 tokens, at positions 2, 5, 8 */
    static const int32_t want_tok[2][10] = {{0, 1, 10, 2, 3, 10, 4, 5, 10, 6}, {5, 4, 10, 3, 2, 10, 9, 9, 10, 9}};
    static const int32_t want_tgt[2][10] = {{IG, 11, IG, IG, 13, IG, 14, IG, IG, 16},
                                            {IG, IG, IG, 7, 8, IG, IG, IG, IG, IG}};
    cr_assert_eq(d.len, 10);
    cr_assert_eq(d.vocab, 11);
    cr_assert_eq(d.pad, 9, "the padding id is unchanged");
    for (int i = 0; i < 2; i++)
        for (int p = 0; p < 10; p++) {
            cr_assert_eq(task_tokens(&d, i)[p], want_tok[i][p], "row %d pos %d", i, p);
            cr_assert_eq(task_targets(&d, i)[p], want_tgt[i][p], "row %d pos %d", i, p);
        }
    cr_assert_eq(d.lengths[0], 10);
    cr_assert_eq(d.lengths[1], 6, "4 tokens + the 2 landmarks closing their blocks");
    cr_assert_str_eq(d.meta, "L=7;landmark=3");
    cr_assert_str_eq(d.data_source, "generated");
    task_data_free(&d);
}

Test(landmark_tokens, sequence_and_data_lengths_are_inverse)
{
    for (int64_t l = 2; l <= 40; l++)
        for (int64_t n = 0; n <= 300; n++) {
            int64_t s = task_landmark_seq_len(n, l);
            cr_assert_eq(s, n + n / (l - 1));
            cr_assert_eq(s / l, n / (l - 1), "landmarks in [0, s) for n=%lld l=%lld", (long long)n, (long long)l);
            cr_assert_eq(task_landmark_data_len(s, l), n, "n=%lld l=%lld", (long long)n, (long long)l);
        }
    cr_assert_eq(task_landmark_seq_len(256, 0), 256, "off");
    cr_assert_eq(task_landmark_data_len(256, 0), 256, "off");
}

/* The data tokens and targets of a landmark run, read back with the landmark
 * positions skipped, are those of the plain run, for every row. */
static void expect_spread_of(const task_data *plain, const task_data *lm, int64_t l)
{
    cr_assert_eq(lm->n, plain->n);
    cr_assert_eq(lm->len, task_landmark_seq_len(plain->len, l));
    cr_assert_eq(lm->vocab, plain->vocab + 1);
    cr_assert_eq(lm->pad, plain->pad);
    cr_assert_str_eq(lm->data_source, plain->data_source);
    char meta[300];
    snprintf(meta, sizeof meta, "%s;landmark=%lld", plain->meta, (long long)l);
    cr_assert_str_eq(lm->meta, meta);
    for (int64_t i = 0; i < lm->n; i++) {
        int64_t j = 0;
        for (int64_t p = 0; p < lm->len; p++) {
            int32_t t = task_tokens(lm, i)[p], y = task_targets(lm, i)[p];
            if (p % l == l - 1) {
                cr_assert_eq(t, plain->vocab, "row %lld pos %lld: the landmark id", (long long)i, (long long)p);
                cr_assert_eq(y, TASK_IGNORE);
                continue;
            }
            cr_assert_neq(t, plain->vocab, "row %lld pos %lld: a data token", (long long)i, (long long)p);
            cr_assert_eq(t, task_tokens(plain, i)[j]);
            cr_assert_eq(y, task_targets(plain, i)[j++]);
        }
        cr_assert_eq(j, plain->len);
        cr_assert_eq(lm->lengths[i], task_landmark_seq_len(plain->lengths[i], l));
    }
}

Test(landmark_tokens, mqar_through_the_registry_is_the_plain_data_spread_out, .timeout = 30)
{
    static const char *const plain_kv[] = {"L=64", "D=8", "V=128", NULL};
    static const char *const lm_kv[] = {"L=64", "landmark=8", "D=8", "V=128", NULL};
    task_data plain, lm, again;
    cr_assert_eq(make_via_registry("mqar", plain_kv, TASK_VALID, 5, 16, &plain), 0, "%s", attn_last_error());
    cr_assert_eq(make_via_registry("mqar", lm_kv, TASK_VALID, 5, 16, &lm), 0, "%s", attn_last_error());
    expect_spread_of(&plain, &lm, 8);
    cr_assert_eq(lm.len, 64 + 9);
    cr_assert_eq(make_via_registry("mqar", lm_kv, TASK_VALID, 5, 16, &again), 0);
    cr_assert_eq(memcmp(lm.tokens, again.tokens, sizeof *lm.tokens * (size_t)(lm.n * lm.len)), 0, "deterministic");
    cr_assert_eq(memcmp(lm.targets, again.targets, sizeof *lm.targets * (size_t)(lm.n * lm.len)), 0);
    task_data_free(&plain), task_data_free(&lm), task_data_free(&again);
}

Test(landmark_tokens, padded_niah_rows_keep_lengths_and_passkey_needles_stay_among_the_data, .timeout = 30)
{
    static const char *const plain_kv[] = {"len=300", "len_min=256", NULL};
    static const char *const lm_kv[] = {"len=300", "len_min=256", "landmark=16", NULL};
    task_data plain, lm;
    cr_assert_eq(make_via_registry("niah", plain_kv, TASK_TEST, 3, 6, &plain), 0, "%s", attn_last_error());
    cr_assert_eq(make_via_registry("niah", lm_kv, TASK_TEST, 3, 6, &lm), 0, "%s", attn_last_error());
    int padded = 0;
    for (int64_t i = 0; i < plain.n; i++)
        padded |= plain.lengths[i] < plain.len;
    cr_assert(padded, "some rows are shorter than len (the case under test)");
    expect_spread_of(&plain, &lm, 16);
    task_data_free(&plain), task_data_free(&lm);
    /* a needle at a fixed depth is where the plain task puts it, among the data tokens */
    static const char *const pk_plain[] = {"len=256", "depth=0.5", NULL};
    static const char *const pk_lm[] = {"landmark=32", "len=256", "depth=0.5", NULL};
    cr_assert_eq(make_via_registry("passkey", pk_plain, TASK_TRAIN, 9, 4, &plain), 0, "%s", attn_last_error());
    cr_assert_eq(make_via_registry("passkey", pk_lm, TASK_TRAIN, 9, 4, &lm), 0, "%s", attn_last_error());
    expect_spread_of(&plain, &lm, 32);
    cr_assert_eq(lm.len, 264);
    task_data_free(&plain), task_data_free(&lm);
}

Test(landmark_tokens, landmark_0_is_off_and_the_help_names_the_parameter)
{
    static const char *const plain_kv[] = {"L=32", "D=4", "V=64", NULL};
    static const char *const off_kv[] = {"L=32", "D=4", "V=64", "landmark=0", NULL};
    task_data a, b;
    cr_assert_eq(make_via_registry("mqar", plain_kv, TASK_TEST, 1, 4, &a), 0);
    cr_assert_eq(make_via_registry("mqar", off_kv, TASK_TEST, 1, 4, &b), 0, "%s", attn_last_error());
    cr_assert_eq(a.len, b.len);
    cr_assert_eq(a.vocab, b.vocab);
    cr_assert_str_eq(a.meta, b.meta);
    cr_assert_eq(memcmp(a.tokens, b.tokens, sizeof *a.tokens * (size_t)(a.n * a.len)), 0);
    task_data_free(&a), task_data_free(&b);
    for (const task_def *const *t = task_registry(); *t; t++) {
        int lm = strcmp((*t)->suite, "lra") != 0;
        cr_assert_eq(opt_find((*t)->params, "landmark") != NULL, lm, "%s", (*t)->name);
    }
}

Test(landmark_tokens, bad_block_lengths_are_refused_naming_the_parameter)
{
    static const char *const bad[] = {"landmark=1", "landmark=-4", "landmark=x", "landmark=65537", "landmark=8.5"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        const char *kv[] = {"L=32", "D=4", "V=64", bad[i], NULL};
        task_data d;
        cr_assert_lt(make_via_registry("mqar", kv, TASK_TEST, 1, 2, &d), 0, "%s accepted", bad[i]);
        cr_assert(strstr(attn_last_error(), "task param landmark: expected 0 (off) or a block length in [2, 65536]"),
                  "%s", attn_last_error());
    }
    task_data d;
    cr_assert_eq(task_data_alloc(&d, "toy", TASK_LM, 1, 4), 0);
    cr_assert_lt(task_landmark_insert(&d, 1), 0);
    cr_assert(strstr(attn_last_error(), "[2, 65536]"), "%s", attn_last_error());
    cr_assert_eq(d.len, 4, "a refused insertion leaves the data alone");
    memset(d.meta, 'x', sizeof d.meta - 1); /* no room for ";landmark=4" */
    cr_assert_lt(task_landmark_insert(&d, 4), 0);
    cr_assert(strstr(attn_last_error(), "too long to add landmark=4"), "%s", attn_last_error());
    cr_assert_eq(d.len, 4);
    cr_assert_eq(d.vocab, 0);
    task_data_free(&d);
}

Test(landmark_tokens, lra_tasks_refuse_landmark_tokens, .timeout = 30)
{
    static const char *const kv[] = {"landmark=8", NULL};
    task_data d;
    for (const task_def *const *t = task_registry(); *t; t++) {
        if (strcmp((*t)->suite, "lra") != 0)
            continue;
        cr_assert_lt(make_via_registry((*t)->name, kv, TASK_TEST, 1, 2, &d), 0, "%s accepted", (*t)->name);
        char want[160];
        snprintf(want, sizeof want, "task %s: landmark=8: landmark tokens apply to language-model tasks", (*t)->name);
        cr_assert(strstr(attn_last_error(), want), "%s", attn_last_error());
    }
    /* and insertion itself refuses a classification task's data */
    cr_assert_eq(task_data_alloc(&d, "toy", TASK_CLASSIFY, 1, 4), 0);
    cr_assert_lt(task_landmark_insert(&d, 4), 0);
    cr_assert(strstr(attn_last_error(), "expected a language-model task"), "%s", attn_last_error());
    task_data_free(&d);
}

/* ---------------------------------------------------------------- end to end */

typedef struct {
    int rows, extrap;
    long long n[4];
} seen_rows;

static int see_row(const csvw_row *row, void *ud)
{
    seen_rows *s = ud;
    cr_assert_str_eq(row->cell[ATTN_COL_STATUS], "ok");
    cr_assert(strstr(row->cell[ATTN_COL_PARAMS], "landmark=8"), "%s", row->cell[ATTN_COL_PARAMS]);
    double v = atof(row->cell[ATTN_COL_VALUE]);
    cr_assert(v >= 0 && v <= 1, "accuracy %g", v);
    if (strstr(row->cell[ATTN_COL_PARAMS], ";split=extrap;") && s->extrap < 4)
        s->n[s->extrap++] = atoll(row->cell[ATTN_COL_N]);
    s->rows++;
    return 0;
}

Test(landmark_tokens, tiny_lm_with_the_landmark_kernel_trains_and_evaluates_with_topk, .timeout = 60)
{
    char dir[] = "/tmp/attn_lmtok_XXXXXX", csv[64], ckpt[64];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(csv, sizeof csv, "%s/recall.csv", dir);
    snprintf(ckpt, sizeof ckpt, "%s/m.ckpt", dir);
    train_run_opts r;
    train_run_defaults(&r);
    strcpy(r.task, "mqar");
    r.task_params = params_of((const char *const[]){"L=32", "D=4", "V=72", "landmark=8", NULL});
    snprintf(r.model.kernels[0], sizeof r.model.kernels[0], "landmark");
    r.model.n_kernels = 1;
    r.model.kparams = params_of((const char *const[]){"l=8", NULL});
    r.model.pos = NN_POS_ROPE;
    r.model.layers = 1, r.model.d_model = 16, r.model.heads = 1, r.model.mlp = 0;
    r.train_n = 32, r.valid_n = 8, r.test_n = 16;
    r.train.steps = 4, r.train.warmup = 1, r.train.eval_every = 2, r.train.batch = 8, r.train.progress = 0;
    r.train.threads = 1;
    r.out = csv, r.checkpoint = ckpt;
    double acc;
    cr_assert_eq(test_train_acc(&r, &acc), 0, "%s", attn_last_error());
    cr_assert(acc >= 0 && acc <= 1, "%g", acc);
    /* the inference form: the 2 best earlier blocks, at the trained length and twice it */
    extrapolate_opts o = {.checkpoint = ckpt, .out = csv, .test_n = 8, .threads = 1, .n_scales = 2, .scale = {1, 2},
                          .kernel = "landmark"};
    o.kparams = params_of((const char *const[]){"l=8", "mode=topk", "k=2", NULL});
    int written;
    cr_assert_eq(extrapolate_run(&o, &written), 0, "%s", attn_last_error());
    cr_assert_eq(written, 2);
    seen_rows s = {0};
    cr_assert_eq(csvw_read_rows(csv, see_row, &s), 5);
    cr_assert_eq(s.rows, 2 + 1 + 2, "valid at steps 2 and 4, test, two extrapolation cells");
    cr_assert_eq(s.extrap, 2);
    /* N is the sequence: 32 and 64 data tokens + a landmark per 7 */
    cr_assert_eq(s.n[0], 32 + 4);
    cr_assert_eq(s.n[1], 64 + 9);
    unlink(csv), unlink(ckpt), rmdir(dir);
}
