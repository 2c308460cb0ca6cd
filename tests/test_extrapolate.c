/* attnbench eval --scale/--depths (harness/train/extrapolate.h): one row per
 * (length, depth) cell with its params, lengths beyond learned positions
 * refused with the option named, rows reproducible, and the trained-length
 * cell equal to a plain reload of the checkpoint, swapped kernels named by
 * their rows, memory budgets named by theirs (or refused with the least one),
 * and skip_done (sweep resume) evaluating only the cells missing
 * from the results. Models: 1 layer, d 16,
 * trained 2 steps (the grid logic, not the learning, is under test). */
#include "harness/results/csvw.h"
#include "harness/train/extrapolate.h"
#include "test_train.h"
#include "harness/train/train_run.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_ROWS 64

typedef struct {
    int n;
    csvw_row row[MAX_ROWS];
} rows_t;

static int keep_row(const csvw_row *row, void *ud)
{
    rows_t *r = ud;
    cr_assert_lt(r->n, MAX_ROWS);
    r->row[r->n++] = *row;
    return 0;
}

/* Rows of the CSV whose params mark them as extrapolation cells, with
 * metric `metric` (NULL: the headline, any metric but token_accuracy). */
static int read_extrap_metric(const char *csv, const char *metric, rows_t *out)
{
    static rows_t all; /* static: 64 rows of 70 cells of 512 bytes are 2.3 MB */
    all.n = 0;
    memset(out, 0, sizeof *out);
    csvw_read_rows(csv, keep_row, &all);
    for (int i = 0; i < all.n; i++) {
        const char *m = all.row[i].cell[ATTN_COL_METRIC];
        if (strstr(all.row[i].cell[ATTN_COL_PARAMS], ";split=extrap;") &&
            (metric ? !strcmp(m, metric) : strcmp(m, "token_accuracy") != 0))
            out->row[out->n++] = all.row[i];
    }
    return out->n;
}

static int read_extrap(const char *csv, rows_t *out) { return read_extrap_metric(csv, NULL, out); }

typedef struct {
    char dir[32], csv[64], ckpt[64];
    train_run_opts run; /* the trained run */
} scratch;

/* Trains task (params "k=v,k=v") 2 steps with positions pos, one layer of
 * one head of width d, and saves the checkpoint. */
static void train_tiny_d(scratch *s, const char *task, const char *const *params, const char *pos, int64_t d)
{
    snprintf(s->dir, sizeof s->dir, "/tmp/attn_extrap_XXXXXX");
    cr_assert_not_null(mkdtemp(s->dir));
    snprintf(s->csv, sizeof s->csv, "%s/r.csv", s->dir);
    snprintf(s->ckpt, sizeof s->ckpt, "%s/m.ckpt", s->dir);
    train_run_opts *r = &s->run;
    train_run_defaults(r);
    strcpy(r->task, task);
    for (const char *const *p = params; *p; p++)
        cr_assert_eq(param_bag_add(&r->task_params, *p), 0);
    r->train_n = 16, r->valid_n = 8, r->test_n = 24;
    r->model.layers = 1, r->model.d_model = d, r->model.heads = 1, r->model.mlp = 0;
    for (int i = 0; nn_pos_names[i]; i++)
        if (!strcmp(nn_pos_names[i], pos))
            r->model.pos = (nn_pos_kind)i;
    r->train.steps = 2, r->train.warmup = 1, r->train.eval_every = 2, r->train.batch = 8, r->train.progress = 0;
    r->out = s->csv, r->checkpoint = s->ckpt;
    double acc;
    cr_assert_eq(test_train_acc(r, &acc), 0, "%s", attn_last_error());
}

static void train_tiny(scratch *s, const char *task, const char *const *params, const char *pos)
{
    train_tiny_d(s, task, params, pos, 16);
}

static void scratch_rm(scratch *s)
{
    char path[96];
    snprintf(path, sizeof path, "%s/r2.csv", s->dir);
    unlink(path), unlink(s->csv), unlink(s->ckpt), rmdir(s->dir);
}

/* passkey at 256 tokens, the shortest its prompt fits */
static void train_passkey(scratch *s, const char *pos)
{
    static const char *const tp[] = {"len=256", NULL};
    train_tiny(s, "passkey", tp, pos);
}

/* MQAR with V = 72 (> L at every scale): 36 values, and 2 x 200 query
 * positions give even a 2-step model some hits */
static void train_mqar(scratch *s, const char *pos)
{
    static const char *const tp[] = {"L=16", "D=2", "V=72", NULL};
    train_tiny(s, "mqar", tp, pos);
}

static double cell_value(const csvw_row *row) { return atof(row->cell[ATTN_COL_VALUE]); }

Test(extrapolate, one_row_per_length_and_depth_with_its_params, .timeout = 60)
{
    scratch s;
    train_passkey(&s, "sinusoid");
    extrapolate_opts o = {.checkpoint = s.ckpt, .out = s.csv, .test_n = 6, .threads = 1, .n_scales = 2,
                          .scale = {1, 2}, .depths = 3};
    int written;
    cr_assert_eq(extrapolate_run(&o, &written), 0, "%s", attn_last_error());
    cr_assert_eq(written, 6);
    static rows_t x;
    cr_assert_eq(read_extrap(s.csv, &x), 6);
    static rows_t tf;
    cr_assert_eq(read_extrap_metric(s.csv, "token_accuracy", &tf), 6, "each cell's teacher-forced row beside it");
    static const char *const depth[] = {"0", "0.5", "1"};
    for (int i = 0; i < 6; i++) {
        const csvw_row *row = &x.row[i];
        int len = i < 3 ? 256 : 512;
        char want[96];
        snprintf(want, sizeof want, ";split=extrap;eval_len=%d;depth=%s;train_len=256", len, depth[i % 3]);
        const char *p = row->cell[ATTN_COL_PARAMS];
        cr_assert(strlen(p) >= strlen(want) && !strcmp(p + strlen(p) - strlen(want), want), "row %d: %s", i, p);
        snprintf(want, sizeof want, "len=%d;depth=%s;", len, depth[i % 3]); /* the data the cell was made of */
        cr_assert(!strncmp(p, want, strlen(want)), "row %d: %s", i, p);
        cr_assert_eq(atoi(row->cell[ATTN_COL_N]), len);
        cr_assert_str_eq(row->cell[ATTN_COL_TASK], "passkey");
        cr_assert_str_eq(row->cell[ATTN_COL_METRIC], "first_integer_match"); /* Landmark's passkey rule */
        cr_assert_str_eq(tf.row[i].cell[ATTN_COL_PARAMS], p);
        cr_assert_str_neq(tf.row[i].cell[ATTN_COL_JOB_ID], row->cell[ATTN_COL_JOB_ID]);
        double v = cell_value(row), lo = atof(row->cell[ATTN_COL_CI_LOW]), hi = atof(row->cell[ATTN_COL_CI_HIGH]);
        cr_assert(lo <= v && v <= hi && lo >= 0 && hi <= 1, "row %d: %g [%g, %g]", i, v, lo, hi);
        /* flash keeps K and V of every token: 2 N d floats for the one layer */
        cr_assert_eq(atoll(row->cell[ATTN_COL_STATE_BYTES]), 2LL * len * 16 * 4);
    }
    scratch_rm(&s);
}

Test(extrapolate, lengths_beyond_learned_positions_fail_naming_the_option, .timeout = 60)
{
    scratch s;
    train_passkey(&s, "learned");
    extrapolate_opts o = {.checkpoint = s.ckpt, .out = s.csv, .test_n = 4, .threads = 1, .n_scales = 2,
                          .scale = {1, 4}, .depths = 2};
    int written;
    cr_assert_lt(extrapolate_run(&o, &written), 0);
    cr_assert_str_eq(attn_last_error(), "--scale 4: learned positions cover 256 tokens; train with --pos "
                                        "sinusoid|rope|none to evaluate at length 1024");
    static rows_t x;
    cr_assert_eq(read_extrap(s.csv, &x), 0, "nothing is evaluated when a cell cannot run");
    o.n_scales = 1; /* the trained length itself is fine */
    cr_assert_eq(extrapolate_run(&o, &written), 0, "%s", attn_last_error());
    cr_assert_eq(written, 2);
    scratch_rm(&s);
}

Test(extrapolate, mqar_keeps_D_and_the_trained_length_cell_equals_a_reload, .timeout = 60)
{
    scratch s;
    train_mqar(&s, "rope");
    extrapolate_opts o = {.checkpoint = s.ckpt, .out = s.csv, .test_n = 200, .threads = 1, .n_scales = 2,
                          .scale = {1, 2}};
    int written;
    cr_assert_eq(extrapolate_run(&o, &written), 0, "%s", attn_last_error());
    cr_assert_eq(written, 2);
    double reload, logged;
    cr_assert_eq(test_eval_acc(s.ckpt, 200, 1, s.csv, &reload, &logged), 0, "%s", attn_last_error());
    static rows_t x;
    cr_assert_eq(read_extrap(s.csv, &x), 2);
    cr_assert_gt(reload, 0, "the comparison below needs hits");
    cr_assert_float_eq(cell_value(&x.row[0]), reload, 1e-6);
    cr_assert(!strncmp(x.row[1].cell[ATTN_COL_PARAMS], "L=32;D=2;V=72;", 14), "%s", x.row[1].cell[ATTN_COL_PARAMS]);
    cr_assert(strstr(x.row[1].cell[ATTN_COL_PARAMS], ";split=extrap;eval_len=32;train_len=16"), "no depth for mqar");
    cr_assert_eq(atoi(x.row[1].cell[ATTN_COL_N]), 32);
    o.depths = 3; /* mqar has no depth parameter */
    cr_assert_lt(extrapolate_run(&o, &written), 0);
    cr_assert(strstr(attn_last_error(), "--depths: task 'mqar' has no depth parameter"), "%s", attn_last_error());
    scratch_rm(&s);
}

Test(extrapolate, rows_are_reproducible, .timeout = 60)
{
    scratch s;
    train_mqar(&s, "none");
    char csv2[96];
    snprintf(csv2, sizeof csv2, "%s/r2.csv", s.dir);
    extrapolate_opts o = {.checkpoint = s.ckpt, .out = s.csv, .test_n = 200, .threads = 1, .n_scales = 3,
                          .scale = {1, 2, 4}};
    int written;
    cr_assert_eq(extrapolate_run(&o, &written), 0, "%s", attn_last_error());
    o.out = csv2, o.threads = 2; /* the thread count is in the identity: compare values only */
    cr_assert_eq(extrapolate_run(&o, &written), 0, "%s", attn_last_error());
    static rows_t a, b;
    cr_assert_eq(read_extrap(s.csv, &a), 3);
    cr_assert_eq(read_extrap(csv2, &b), 3);
    double sum = 0;
    for (int i = 0; i < 3; i++) {
        static const schema_col same[] = {ATTN_COL_PARAMS, ATTN_COL_N, ATTN_COL_VALUE, ATTN_COL_CI_LOW,
                                        ATTN_COL_CI_HIGH, ATTN_COL_STATE_BYTES};
        for (size_t c = 0; c < sizeof same / sizeof *same; c++)
            cr_assert_str_eq(a.row[i].cell[same[c]], b.row[i].cell[same[c]], "row %d %s", i, schema_col_name(same[c]));
        sum += cell_value(&a.row[i]);
    }
    cr_assert_gt(sum, 0, "all-zero accuracies would make the comparison vacuous");
    o.threads = 1; /* same threads: the same job ids too */
    cr_assert_eq(extrapolate_run(&o, &written), 0, "%s", attn_last_error());
    static rows_t c;
    cr_assert_eq(read_extrap(csv2, &c), 6);
    for (int i = 0; i < 3; i++)
        cr_assert_str_eq(a.row[i].cell[ATTN_COL_JOB_ID], c.row[3 + i].cell[ATTN_COL_JOB_ID]);
    scratch_rm(&s);
}

/* A kernel swapped in at evaluation: StreamingLLM's sink + window cache with
 * a window covering the whole sequence is causal attention again, so its
 * rows equal the trained flash model's; a narrow window changes them. */
Test(extrapolate, a_swapped_kernel_names_itself_and_equals_the_trained_one_when_it_sees_everything, .timeout = 60)
{
    scratch s;
    train_mqar(&s, "none");
    extrapolate_opts o = {.checkpoint = s.ckpt, .out = s.csv, .test_n = 200, .threads = 1, .n_scales = 2,
                          .scale = {1, 2}};
    int written;
    cr_assert_eq(extrapolate_run(&o, &written), 0, "%s", attn_last_error());
    o.kernel = "streaming", o.mask = "sink:n=2,w=1000";
    cr_assert_eq(param_bag_add(&o.kparams, "mode=decode"), 0);
    cr_assert_eq(extrapolate_run(&o, &written), 0, "%s", attn_last_error());
    o.mask = "sink:n=1,w=2";
    cr_assert_eq(extrapolate_run(&o, &written), 0, "%s", attn_last_error());
    static rows_t r;
    cr_assert_eq(read_extrap(s.csv, &r), 6);
    int differs = 0;
    for (int i = 0; i < 2; i++) {
        cr_assert_str_eq(r.row[i].cell[ATTN_COL_KERNEL], "flash");
        cr_assert_str_eq(r.row[2 + i].cell[ATTN_COL_KERNEL], "streaming");
        cr_assert_str_eq(r.row[2 + i].cell[ATTN_COL_VALUE], r.row[i].cell[ATTN_COL_VALUE], "scale %d", i + 1);
        differs |= strcmp(r.row[4 + i].cell[ATTN_COL_VALUE], r.row[i].cell[ATTN_COL_VALUE]) != 0;
    }
    cr_assert(differs, "a 2-token window should change some accuracy");
    /* the two swaps differ only in their mask: the rows say which, and their
     * job_ids differ (a resumed sweep tells the cells apart) */
    for (int i = 0; i < 6; i++) {
        const char *p = r.row[i].cell[ATTN_COL_PARAMS], *want = i < 2 ? "train_len=16"
                                                              : i < 4 ? "train_len=16;trained=flash;kernel_params=mode=decode;mask=sink:n=2,w=1000"
                                                                      : "train_len=16;trained=flash;kernel_params=mode=decode;mask=sink:n=1,w=2";
        cr_assert(strlen(p) > strlen(want) && !strcmp(p + strlen(p) - strlen(want), want), "row %d: %s", i, p);
        cr_assert_str_eq(r.row[i].cell[ATTN_COL_MASK], i < 2 ? "causal" : i < 4 ? "sink:n=2,w=1000" : "sink:n=1,w=2");
        for (int k = 0; k < i; k++)
            cr_assert_str_neq(r.row[i].cell[ATTN_COL_JOB_ID], r.row[k].cell[ATTN_COL_JOB_ID], "rows %d and %d", k, i);
    }
    scratch_rm(&s);
}

/* `decode` swapped in reading the trained keys and values from a stored
 * cache, and the trained kernel on bf16 operands: one row per format, named
 * in the params and the job_id; an fp32 cache is the trained model, the
 * rounded ones stay near it. */
Test(extrapolate, quantized_caches_and_16_bit_operands_name_their_format, .timeout = 60)
{
    static const char *const tp[] = {"L=16", "D=2", "V=72", NULL};
    scratch s;
    train_tiny_d(&s, "mqar", tp, "none", 32); /* D = 32: one block of the block formats per row */
    extrapolate_opts o = {.checkpoint = s.ckpt, .out = s.csv, .test_n = 200, .threads = 1, .n_scales = 1,
                          .scale = {1}};
    int written;
    cr_assert_eq(extrapolate_run(&o, &written), 0, "%s", attn_last_error());
    o.kernel = "decode";
    static const attn_kv_dtype formats[] = {ATTN_KV_FP32, ATTN_KV_Q8_0, ATTN_KV_Q4_0};
    for (int i = 0; i < 3; i++) {
        o.kv_dtype = formats[i];
        cr_assert_eq(extrapolate_run(&o, &written), 0, "%s", attn_last_error());
    }
    /* the trained flash on bf16 operands: a cell of its own too */
    o.kernel = NULL, o.kv_dtype = ATTN_KV_FP32, o.dtype = ATTN_DT_BF16;
    cr_assert_eq(extrapolate_run(&o, &written), 0, "%s", attn_last_error());
    static rows_t r;
    cr_assert_eq(read_extrap(s.csv, &r), 5);
    cr_assert_str_eq(r.row[1].cell[ATTN_COL_VALUE], r.row[0].cell[ATTN_COL_VALUE], "decode on fp32 = the trained model");
    for (int i = 1; i < 5; i++) {
        static const char *const tails[] = {"", "trained=flash", "trained=flash;kv_dtype=q8_0",
                                            "trained=flash;kv_dtype=q4_0", "train_len=16;dtype=bf16"};
        const char *p = r.row[i].cell[ATTN_COL_PARAMS], *tail = tails[i];
        cr_assert(strlen(p) > strlen(tail) && !strcmp(p + strlen(p) - strlen(tail), tail), "row %d: %s", i, p);
        cr_assert_str_eq(r.row[i].cell[ATTN_COL_KERNEL], i < 4 ? "decode" : "flash");
        cr_assert_lt(fabs(cell_value(&r.row[i]) - cell_value(&r.row[0])), 0.05, "row %d: %s vs %s", i,
                     r.row[i].cell[ATTN_COL_VALUE], r.row[0].cell[ATTN_COL_VALUE]);
        for (int k = 0; k < i; k++)
            cr_assert_str_neq(r.row[i].cell[ATTN_COL_JOB_ID], r.row[k].cell[ATTN_COL_JOB_ID], "rows %d and %d", k, i);
    }
    scratch_rm(&s);
}

/* Rewrites csv without the rows whose job_id is drop (a cell lost in a crash). */
static void drop_row(const char *csv, const char *drop)
{
    static rows_t all; /* static: 64 rows of 70 cells of 512 bytes are 2.3 MB */
    all.n = 0;
    cr_assert_geq(csvw_read_rows(csv, keep_row, &all), 0, "%s", attn_last_error());
    cr_assert_eq(unlink(csv), 0);
    csvw w;
    cr_assert_eq(csvw_open(&w, csv), 0, "%s", attn_last_error());
    for (int i = 0; i < all.n; i++)
        if (strcmp(all.row[i].cell[ATTN_COL_JOB_ID], drop))
            cr_assert_eq(csvw_write(&w, &all.row[i]), 0, "%s", attn_last_error());
    csvw_close(&w);
}

/* skip_done (sweep resume): cells already in the results are not evaluated
 * again, a missing one is, with the same row as before; a swapped kernel's
 * cells are cells of their own. */
Test(extrapolate, skip_done_evaluates_only_the_cells_missing_from_the_results, .timeout = 60)
{
    scratch s;
    train_mqar(&s, "none");
    extrapolate_opts o = {.checkpoint = s.ckpt, .out = s.csv, .test_n = 40, .threads = 1, .n_scales = 2,
                          .scale = {1, 2}, .skip_done = 1};
    int written;
    cr_assert_eq(extrapolate_run(&o, &written), 0, "%s", attn_last_error());
    cr_assert_eq(written, 2);
    cr_assert_eq(extrapolate_run(&o, &written), 0, "%s", attn_last_error());
    cr_assert_eq(written, 0, "every cell is there already");
    extrapolate_opts sw = o;
    sw.kernel = "streaming", sw.mask = "sink:n=1,w=4";
    cr_assert_eq(param_bag_add(&sw.kparams, "mode=decode"), 0);
    cr_assert_eq(extrapolate_run(&sw, &written), 0, "%s", attn_last_error());
    cr_assert_eq(written, 2, "the swapped kernel's cells are new cells");
    static rows_t before, after;
    cr_assert_eq(read_extrap(s.csv, &before), 4);
    drop_row(s.csv, before.row[1].cell[ATTN_COL_JOB_ID]);
    drop_row(s.csv, before.row[2].cell[ATTN_COL_JOB_ID]);
    cr_assert_eq(read_extrap(s.csv, &after), 2);
    cr_assert_eq(extrapolate_run(&o, &written), 0, "%s", attn_last_error());
    cr_assert_eq(written, 1);
    cr_assert_eq(extrapolate_run(&sw, &written), 0, "%s", attn_last_error());
    cr_assert_eq(written, 1);
    cr_assert_eq(read_extrap(s.csv, &after), 4, "no cell twice");
    for (int i = 0; i < 4; i++) {
        int same = 0;
        for (int k = 0; k < 4; k++)
            if (!strcmp(after.row[k].cell[ATTN_COL_JOB_ID], before.row[i].cell[ATTN_COL_JOB_ID])) {
                same++;
                cr_assert_str_eq(after.row[k].cell[ATTN_COL_VALUE], before.row[i].cell[ATTN_COL_VALUE]);
                cr_assert_str_eq(after.row[k].cell[ATTN_COL_PARAMS], before.row[i].cell[ATTN_COL_PARAMS]);
            }
        cr_assert_eq(same, 1, "cell %d: %d rows", i, same);
    }
    /* given the run, the cells are known without the checkpoint: only a
     * missing cell needs it */
    o.run = &s.run;
    cr_assert_eq(unlink(s.ckpt), 0);
    cr_assert_eq(extrapolate_run(&o, &written), 0, "%s", attn_last_error());
    cr_assert_eq(written, 0);
    drop_row(s.csv, before.row[1].cell[ATTN_COL_JOB_ID]);
    cr_assert_lt(extrapolate_run(&o, &written), 0);
    cr_assert(strstr(attn_last_error(), "m.ckpt: expected the checkpoint of the trained model, found none (cell "
                                        "extrap;eval_len=32;train_len=16 is not in the results yet)"),
              "%s", attn_last_error());
    cr_assert_eq(read_extrap(s.csv, &after), 3);
    scratch_rm(&s);
}

/* --mem-budget: every layer's kernel planned within the budget, the rows
 * naming it; a budget no setting meets refused with the least one, which
 * then evaluates as the unbudgeted model does; a kernel without the mode
 * refused. */
Test(extrapolate, a_memory_budget_evaluates_every_layer_within_it_or_names_the_least_one, .timeout = 60)
{
    scratch s;
    train_mqar(&s, "rope");
    extrapolate_opts o = {.checkpoint = s.ckpt, .out = s.csv, .test_n = 200, .threads = 1, .n_scales = 1,
                          .scale = {1}};
    int written;
    cr_assert_eq(extrapolate_run(&o, &written), 0, "%s", attn_last_error());
    o.mem_budget = 1;
    cr_assert_eq(extrapolate_run(&o, &written), ATTN_EUNSUPPORTED);
    const char *least = strstr(attn_last_error(), "least budget it can meet is ");
    cr_assert(least, "%s", attn_last_error());
    o.mem_budget = strtoull(least + strlen("least budget it can meet is "), NULL, 10);
    cr_assert_gt(o.mem_budget, 1);
    cr_assert_eq(extrapolate_run(&o, &written), 0, "budget %llu: %s", (unsigned long long)o.mem_budget,
                 attn_last_error());
    static rows_t r;
    cr_assert_eq(read_extrap(s.csv, &r), 2);
    char tail[48];
    snprintf(tail, sizeof tail, ";mem_budget=%llu", (unsigned long long)o.mem_budget);
    const char *p = r.row[1].cell[ATTN_COL_PARAMS];
    cr_assert(strlen(p) > strlen(tail) && !strcmp(p + strlen(p) - strlen(tail), tail), "%s", p);
    cr_assert_str_neq(r.row[1].cell[ATTN_COL_JOB_ID], r.row[0].cell[ATTN_COL_JOB_ID]);
    cr_assert_lt(fabs(cell_value(&r.row[1]) - cell_value(&r.row[0])), 0.01, "%s vs %s", r.row[1].cell[ATTN_COL_VALUE],
                 r.row[0].cell[ATTN_COL_VALUE]);
    o.kernel = "naive";
    cr_assert_eq(extrapolate_run(&o, &written), ATTN_EUNSUPPORTED);
    cr_assert(strstr(attn_last_error(), "does not claim the memory-budget mode"), "%s", attn_last_error());
    scratch_rm(&s);
}
