/* Adaptive computation time end to end: a tiny looped LM with --halting act
 * learns MQAR above chance, its CSV has a ponder_steps row beside every
 * evaluation (the mean steps, within 1..loops), and its checkpoint keeps the
 * halting (a reload scores the same). */
#include "common/attn_error.h"
#include "memory_train.h"
#include "test_rows.h"
#include "test_train.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    int ponder, headline;
    double lo, hi;
} ponder_tally;

static int tally_ponder(const csvw_row *row, void *ud)
{
    ponder_tally *t = ud;
    const char *metric = row->cell[ATTN_COL_METRIC];
    if (!strcmp(metric, "ponder_steps")) {
        double v = atof(row->cell[ATTN_COL_VALUE]);
        t->ponder++, t->lo = v < t->lo ? v : t->lo, t->hi = v > t->hi ? v : t->hi;
    } else if (!strcmp(metric, "accuracy")) {
        t->headline++;
    }
    return 0;
}

Test(act_train, a_looped_act_lm_learns_mqar_above_chance_and_reports_its_ponder_steps, .timeout = 180)
{
    char dir[] = "/tmp/attn_act_XXXXXX", csv[64], ckpt[64];
    train_run_opts r;
    tiny_mqar_opts(&r, dir, csv, sizeof csv);
    snprintf(ckpt, sizeof ckpt, "%s/model.ckpt", dir);
    r.model.variant = NN_VARIANT_LOOPED, r.model.layers = 1, r.model.loops = 3;
    cr_assert_eq(opt_set_text(opt_find(nn_model_opts, "halting"), &r.model, "act", "--halting"), 0);
    r.train.eval_every = r.train.steps / 2;
    r.checkpoint = ckpt;
    train_result res;
    cr_assert_eq(train_run_exec(&r, &res), 0, "%s", attn_last_error());
    tiny_mqar_expect_above_chance("looped act", &res);
    cr_assert(res.test.has_ponder && res.test.ponder_steps >= 1 && res.test.ponder_steps <= 3,
              "test ponder steps %g, expected within 1..3", res.test.ponder_steps);
    cr_log_info("looped act tiny MQAR: mean ponder steps %.3f on the test split", res.test.ponder_steps);
    ponder_tally t = {.lo = 1e9, .hi = -1e9};
    cr_assert_gt(csvw_read_rows(csv, tally_ponder, &t), 0, "%s", attn_last_error());
    cr_assert_eq(t.ponder, t.headline, "one ponder_steps row per evaluation: %d vs %d", t.ponder, t.headline);
    cr_assert_eq(t.ponder, 3, "2 validations and the test, found %d ponder rows", t.ponder);
    cr_assert(t.lo >= 1 && t.hi <= 3, "ponder steps in rows within %g..%g, expected 1..3", t.lo, t.hi);
    double again, logged;
    cr_assert_eq(test_eval_acc(ckpt, 0, 1, csv, &again, &logged), 0, "%s", attn_last_error());
    cr_assert_eq(again, res.test.value, "reloaded %.9g vs trained %.9g", again, res.test.value);
    train_result_free(&res);
    unlink(csv), unlink(ckpt), rmdir(dir);
}
