/* Training runs: the job_id names every setting that changes a
 * result; a run interrupted and resumed ends bitwise as the uninterrupted
 * one with one validation row per evaluation; early stopping tests the
 * best-validation weights; LRA's rsqrt learning-rate schedule; a resumed
 * sweep evaluates the extrapolation cells a crash lost, and only those. */
#include "harness/cli/cli.h"
#include "harness/measure/config.h"
#include "harness/train/config_train.h"
#include "harness/results/csvw.h"
#include "harness/train/train_run.h"
#include "test_train.h"

#include <criterion/criterion.h>
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---------------------------------------------------------------- helpers */

/* MQAR small enough for ~0.1 s of training per run. */
static void tiny_run(train_run_opts *r, const char *csv)
{
    train_run_defaults(r);
    strcpy(r->task, "mqar");
    cr_assert_eq(param_bag_add(&r->task_params, "L=32"), 0);
    cr_assert_eq(param_bag_add(&r->task_params, "D=4"), 0);
    cr_assert_eq(param_bag_add(&r->task_params, "V=64"), 0);
    r->train_n = 256, r->valid_n = 32, r->test_n = 40;
    r->model.d_model = 32, r->model.mlp = 0;
    r->train.steps = 30, r->train.eval_every = 10, r->train.batch = 16, r->train.progress = 0, r->train.threads = 1;
    r->out = csv;
}

typedef struct {
    int n, valid[64], test;       /* valid[s]: rows of the evaluation at step s */
    char value[64][16], test_value[16], test_params[ATTN_CELL_MAX], test_steps[16];
} rows;

static int take_row(const csvw_row *row, void *ud)
{
    rows *r = ud;
    const char *p = row->cell[ATTN_COL_PARAMS], *at = strstr(p, ";step=");
    cr_assert_not_null(at, "params without a step: %s", p);
    int step = atoi(at + 6);
    r->n++;
    if (strstr(p, "split=valid")) {
        cr_assert(step > 0 && step < 64);
        r->valid[step]++;
        snprintf(r->value[step], sizeof r->value[step], "%.15s", row->cell[ATTN_COL_VALUE]);
    } else if (strstr(p, "split=test")) {
        r->test++;
        snprintf(r->test_value, sizeof r->test_value, "%.15s", row->cell[ATTN_COL_VALUE]);
        snprintf(r->test_params, sizeof r->test_params, "%s", p);
        snprintf(r->test_steps, sizeof r->test_steps, "%.15s", row->cell[ATTN_COL_TRAIN_STEPS]);
    }
    return 0;
}

static rows read_rows(const char *csv)
{
    rows r;
    memset(&r, 0, sizeof r);
    cr_assert_geq(csvw_read_rows(csv, take_row, &r), 0, "%s", attn_last_error());
    return r;
}

/* The parameter blob of a checkpoint file (models/checkpoint.h: header
 * length at byte 16, nparams at 24, the floats at the header length). */
static float *ckpt_params(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    uint64_t h[4];
    cr_assert_eq(fread(h, 8, 4, f), 4);
    *n = (size_t)h[3];
    float *p = malloc(sizeof *p * *n);
    cr_assert_eq(fseek(f, (long)h[2], SEEK_SET), 0);
    cr_assert_eq(fread(p, sizeof *p, *n, f), *n);
    fclose(f);
    return p;
}

static void expect_same_params(const char *a, const char *b)
{
    size_t na, nb;
    float *pa = ckpt_params(a, &na), *pb = ckpt_params(b, &nb);
    cr_assert_eq(na, nb);
    cr_assert_eq(memcmp(pa, pb, sizeof *pa * na), 0, "the weights of %s and %s differ", a, b);
    free(pa), free(pb);
}

static void copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    cr_assert(in && out, "%s -> %s", from, to);
    char buf[4096];
    for (size_t k; (k = fread(buf, 1, sizeof buf, in)) > 0;)
        cr_assert_eq(fwrite(buf, 1, k, out), k);
    fclose(in), fclose(out);
}

static char dir[64];

static void make_dir(void)
{
    strcpy(dir, "/tmp/attn_resume_XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

/* Only what this suite made, in its own mkdtemp directory. */
static void remove_dir(void) { nftw(dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS); }

static void in_dir(char *out, size_t n, const char *name) { snprintf(out, n, "%s/%s", dir, name); }

/* Where a run writing into `dir` keeps its resumable checkpoint. */
static void resume_file(const train_run_opts *r, char *out, size_t n)
{
    char id[17];
    cr_assert_eq(train_run_test_id(r, id), 0, "%s", attn_last_error());
    snprintf(out, n, "%s/.train-%s.ckpt", dir, id);
}

TestSuite(train_resume, .init = make_dir, .fini = remove_dir);

/* ---------------------------------------------------------------- (a) job_id */

#define N_MUT 33 /* the data directory: its own test below (generated tasks refuse one) */

/* Mutation i of a run: each changes one setting that can change a result. */
static const char *mutate(train_run_opts *r, int i)
{
    nn_model_cfg *m = &r->model;
    nn_train_cfg *t = &r->train;
    switch (i) {
    case 0: param_bag_add(&m->kparams, "chunk=16"); return "kernel_params";
    case 1: t->warmup++; return "warmup";
    case 2: t->sched = OPTIM_SCHED_LINEAR; return "sched";
    case 3: t->clip = 0.5; return "clip";
    case 4: r->data_seed++; return "data_seed";
    case 5: t->accum = 2; return "accum";
    case 6: t->min_lr_ratio = 0.2; return "min_lr";
    case 7: m->dropout = 0.1f; return "dropout";
    case 8: t->weight_decay = 0.01; return "wd";
    case 9: t->eval_every = 5; return "eval_every";
    case 10: t->patience = 2; return "patience";
    case 11: r->train_n++; return "train_n";
    case 12: r->valid_n++; return "valid_n";
    case 13: r->test_n++; return "test_n";
    case 14: param_bag_add(&r->task_params, "a=0.5"); return "task_params";
    case 15: m->layers = 3; return "layers";
    case 16: m->heads = 4; return "heads";
    case 17: m->heads_kv = 1; return "heads_kv";
    case 18: m->mlp = 16; return "mlp";
    case 19: m->pos = NN_POS_ROPE; return "pos";
    case 20: m->pool = NN_POOL_MEAN; return "pool";
    case 21: m->rms = 1; return "rms";
    case 22: m->loops = 2; return "loops";
    case 23: t->lr *= 2; return "lr";
    case 24: t->steps++; return "steps";
    case 25: t->batch = 8; return "batch";
    case 26: t->seed++; return "seed";
    case 27: t->threads = 2; return "threads";
    case 28: t->eval_n = 16; return "eval_n";
    case 29: strcpy(m->kernels[0], "naive"); return "kernel";
    case 30: m->variant = NN_VARIANT_LOOPED, m->loops = 2, m->halting = NN_HALTING_ACT; return "halting";
    case 31: m->variant = NN_VARIANT_LOOPED, m->loops = 2, m->halting = NN_HALTING_ACT, m->ponder_cost = 0.5f;
        return "ponder_cost";
    default: m->d_model = 64; return "d_model";
    }
}

Test(train_resume, job_id_changes_with_every_setting_that_changes_a_result, .timeout = 60)
{
    train_run_opts a, b;
    tiny_run(&a, "a.csv");
    tiny_run(&b, "b.csv");
    char ia[17], ib[17];
    cr_assert_eq(train_run_test_id(&a, ia), 0, "%s", attn_last_error());
    b.checkpoint = "x.ckpt", b.train.progress = 1, b.train.halt_after = 3; /* change no result */
    cr_assert_eq(train_run_test_id(&b, ib), 0, "%s", attn_last_error());
    cr_assert_str_eq(ia, ib, "identical settings, different ids");
    csvw_idset seen;
    csvw_idset_init(&seen);
    cr_assert_eq(csvw_idset_add(&seen, ia), 1);
    for (int i = 0; i < N_MUT; i++) {
        tiny_run(&b, "a.csv");
        const char *what = mutate(&b, i);
        cr_assert_eq(train_run_test_id(&b, ib), 0, "%s: %s", what, attn_last_error());
        cr_assert_eq(csvw_idset_add(&seen, ib), 1, "changing %s leaves the job_id %s (or repeats another's)", what,
                     ib);
    }
    csvw_idset_free(&seen);
}

/* Two directories holding the same official files are two jobs: the id
 * names the data a run read, not only its content. */
Test(train_resume, the_data_directory_is_part_of_the_job_id, .timeout = 60)
{
    char link[96], ia[17], ib[17];
    in_dir(link, sizeof link, "listops-copy");
    cr_assert_eq(symlink(ATTN_SOURCE_DIR "/tests/data/lra/listops", link), 0);
    train_run_opts r;
    train_run_defaults(&r);
    strcpy(r.task, "listops");
    r.train_n = r.valid_n = r.test_n = 4, r.model.d_model = 32, r.train.progress = 0;
    strcpy(r.data_dir, ATTN_SOURCE_DIR "/tests/data/lra/listops");
    cr_assert_eq(train_run_test_id(&r, ia), 0, "%s", attn_last_error());
    strcpy(r.data_dir, link);
    cr_assert_eq(train_run_test_id(&r, ib), 0, "%s", attn_last_error());
    cr_assert_str_neq(ia, ib);
}

/* ---------------------------------------------------------------- (b) resume */

Test(train_resume, an_interrupted_run_resumed_ends_bitwise_as_the_uninterrupted_one, .timeout = 120)
{
    char csv_a[96], csv_b[96], ck_a[96], ck_b[96], resume[128], saved[96];
    in_dir(csv_a, sizeof csv_a, "a/recall.csv"), in_dir(csv_b, sizeof csv_b, "recall.csv");
    in_dir(ck_a, sizeof ck_a, "a.ckpt"), in_dir(ck_b, sizeof ck_b, "b.ckpt"), in_dir(saved, sizeof saved, "at10");
    char sub[96];
    in_dir(sub, sizeof sub, "a");
    cr_assert_eq(mkdir(sub, 0777), 0);
    train_run_opts a, b;
    tiny_run(&a, csv_a);
    a.checkpoint = ck_a, a.train.patience = 5; /* keeps (and checkpoints) the best weights */
    double acc_a, acc_b;
    cr_assert_eq(test_train_acc(&a, &acc_a), 0, "%s", attn_last_error());

    tiny_run(&b, csv_b);
    b.checkpoint = ck_b, b.train.patience = 5;
    resume_file(&b, resume, sizeof resume);
    b.train.halt_after = 15; /* "crash" at step 15: the checkpoint of step 10 survives */
    cr_assert_lt(test_train_acc(&b, &acc_b), 0);
    cr_assert(strstr(attn_last_error(), "halted after 15 steps"), "%s", attn_last_error());
    cr_assert_eq(access(resume, F_OK), 0, "no resumable checkpoint %s", resume);
    copy_file(resume, saved);
    rows r = read_rows(csv_b);
    cr_assert(r.n == 1 && r.valid[10] == 1, "after the first crash: %d rows", r.n);

    /* 15 more steps reach step 25 only if the run continued from step 10 */
    cr_assert_lt(test_train_acc(&b, &acc_b), 0);
    cr_assert(strstr(attn_last_error(), "at step 25"), "%s", attn_last_error());
    r = read_rows(csv_b);
    cr_assert(r.n == 2 && r.valid[10] == 1 && r.valid[20] == 1, "after the second crash: %d rows", r.n);

    /* a crash between the row of step 20 and its checkpoint: the rerun redoes
     * step 20 from the checkpoint of step 10 and must not write that row again */
    copy_file(saved, resume);
    b.train.halt_after = 0;
    cr_assert_eq(test_train_acc(&b, &acc_b), 0, "%s", attn_last_error());
    cr_assert_neq(access(resume, F_OK), 0, "the resumable checkpoint outlived the finished run");

    rows ra = read_rows(csv_a), rb = read_rows(csv_b);
    cr_assert_eq(ra.n, 4);
    cr_assert_eq(rb.n, 4, "expected 3 validation rows and a test row, found %d rows", rb.n);
    for (int s = 10; s <= 30; s += 10) {
        cr_assert_eq(rb.valid[s], 1, "step %d: %d validation rows", s, rb.valid[s]);
        cr_assert_str_eq(rb.value[s], ra.value[s], "step %d", s);
    }
    cr_assert_eq(rb.test, 1);
    cr_assert_str_eq(rb.test_value, ra.test_value);
    cr_assert_str_eq(rb.test_params, ra.test_params);
    cr_assert_eq(acc_a, acc_b);
    expect_same_params(ck_a, ck_b);
}

/* A kill between a run's test row and the removal of its resume state
 * leaves the state of a finished run: running that run again starts afresh
 * (a whole new set of rows), not from the stale state, and the state goes. */
Test(train_resume, a_finished_runs_leftover_resume_state_is_not_resumed, .timeout = 120)
{
    char csv[96], resume[128], saved[96];
    in_dir(csv, sizeof csv, "recall.csv"), in_dir(saved, sizeof saved, "at10");
    train_run_opts r;
    tiny_run(&r, csv);
    resume_file(&r, resume, sizeof resume);
    double acc;
    r.train.halt_after = 15; /* the state of step 10, as a finished run's last would be */
    cr_assert_lt(test_train_acc(&r, &acc), 0);
    copy_file(resume, saved);
    r.train.halt_after = 0;
    cr_assert_eq(test_train_acc(&r, &acc), 0, "%s", attn_last_error());
    cr_assert_eq(read_rows(csv).n, 4);
    copy_file(saved, resume); /* the kill after the test row */
    cr_assert_eq(test_train_acc(&r, &acc), 0, "%s", attn_last_error());
    rows again = read_rows(csv);
    cr_assert_eq(again.n, 8, "the run again: expected 4 new rows, found %d (resumed from the stale state?)",
                 again.n - 4);
    cr_assert_eq(again.valid[10], 2);
    cr_assert_neq(access(resume, F_OK), 0, "the finished run's resume state is still there");
}

Test(train_resume, a_damaged_or_foreign_resume_file_is_an_error_that_names_it, .timeout = 60)
{
    char csv[96], resume[128];
    in_dir(csv, sizeof csv, "recall.csv");
    train_run_opts r;
    tiny_run(&r, csv);
    resume_file(&r, resume, sizeof resume);
    r.train.halt_after = 12;
    double acc;
    cr_assert_lt(test_train_acc(&r, &acc), 0);
    train_run_opts other = r; /* another run's file under this run's name is refused */
    other.valid_n++;
    char theirs[128];
    resume_file(&other, theirs, sizeof theirs);
    copy_file(resume, theirs);
    other.train.halt_after = 0;
    cr_assert_lt(test_train_acc(&other, &acc), 0);
    cr_assert(strstr(attn_last_error(), "expected job_id"), "%s", attn_last_error());
    FILE *f = fopen(resume, "r+b");
    cr_assert_not_null(f);
    fseek(f, 200, SEEK_SET);
    int c = fgetc(f);
    fseek(f, 200, SEEK_SET);
    fputc(c ^ 0x21, f);
    fclose(f);
    r.train.halt_after = 0;
    cr_assert_lt(test_train_acc(&r, &acc), 0);
    cr_assert(strstr(attn_last_error(), ".train-") && strstr(attn_last_error(), "checksum mismatch") &&
                  strstr(attn_last_error(), "remove it"),
              "%s", attn_last_error());
}

/* ---------------------------------------------------------------- (c) early stop */

/* A constant learning rate: the weights at step k do not depend on steps. */
static void constant_lr_run(train_run_opts *r, const char *csv, const char *ckpt)
{
    tiny_run(r, csv);
    r->train.lr = 1e-2, r->train.sched = OPTIM_SCHED_CONSTANT, r->train.warmup = 0, r->train.eval_every = 3;
    r->checkpoint = ckpt;
}

Test(train_resume, early_stop_tests_the_best_validation_weights, .timeout = 120)
{
    /* lr 1e-2, constant: validation accuracy 0.0625 at step 3, then 0.047,
     * 0.016, 0.0625 (not better): patience 3 stops at step 12 with the best
     * at step 3 (the curve is checked below, not assumed) */
    char csv[96], ck[96], csv_ref[96], ck_ref[96];
    in_dir(csv, sizeof csv, "recall.csv"), in_dir(ck, sizeof ck, "es.ckpt");
    in_dir(csv_ref, sizeof csv_ref, "ref.csv"), in_dir(ck_ref, sizeof ck_ref, "ref.ckpt");
    train_run_opts r;
    constant_lr_run(&r, csv, ck);
    r.train.patience = 3;
    double acc, acc_ref;
    cr_assert_eq(test_train_acc(&r, &acc), 0, "%s", attn_last_error());
    rows x = read_rows(csv);
    int best = 0, last = 0;
    double best_v = -1;
    for (int s = 1; s < 64; s++)
        if (x.valid[s]) {
            last = s;
            if (atof(x.value[s]) > best_v)
                best_v = atof(x.value[s]), best = s;
        }
    cr_assert_lt(best, last, "validation never got worse (best at step %d of %d): the premise is gone", best, last);
    cr_assert_lt(last, 30, "no early stop");
    char want[64];
    snprintf(want, sizeof want, ";best_step=%d;weights=best", best);
    cr_assert(strstr(x.test_params, want), "test row params %s, expected %s", x.test_params, want);
    cr_assert_eq(atoi(x.test_steps), best);

    /* the same run stopped at the best step (constant lr: the same weights
     * there) and tested with its last weights */
    train_run_opts ref;
    constant_lr_run(&ref, csv_ref, ck_ref);
    ref.train.steps = best;
    cr_assert_eq(test_train_acc(&ref, &acc_ref), 0, "%s", attn_last_error());
    rows y = read_rows(csv_ref);
    cr_assert(strstr(y.test_params, ";weights=last"), "%s", y.test_params);
    cr_assert_str_eq(y.value[best], x.value[best]);
    cr_assert_eq(acc, acc_ref, "tested %.9g, the best-step weights give %.9g", acc, acc_ref);
    expect_same_params(ck, ck_ref);

    /* crashed at step 7 (checkpoint of step 6: best at 3, one stale
     * evaluation) and resumed: the best copy and the patience counter come
     * back, so it stops at the same step and tests the same weights */
    char sub[96], csv_b[96], ck_b[96];
    in_dir(sub, sizeof sub, "b"), in_dir(csv_b, sizeof csv_b, "b/recall.csv"), in_dir(ck_b, sizeof ck_b, "b.ckpt");
    cr_assert_eq(mkdir(sub, 0777), 0);
    train_run_opts b;
    constant_lr_run(&b, csv_b, ck_b);
    b.train.patience = 3, b.train.halt_after = 7;
    double acc_b;
    cr_assert_lt(test_train_acc(&b, &acc_b), 0);
    b.train.halt_after = 0;
    cr_assert_eq(test_train_acc(&b, &acc_b), 0, "%s", attn_last_error());
    rows z = read_rows(csv_b);
    cr_assert_eq(z.n, x.n, "%d rows after the resume, %d without the crash", z.n, x.n);
    cr_assert_str_eq(z.test_params, x.test_params);
    cr_assert_eq(acc_b, acc);
    expect_same_params(ck, ck_b);
}

/* ---------------------------------------------------------------- (d) rsqrt */

static double lra_rsqrt(double base, double w, double t) { return base * fmin(1.0, t / w) / sqrt(fmax(t, w)); }

Test(train_resume, rsqrt_schedule_is_lra_linear_warmup_times_rsqrt_decay, .timeout = 60)
{
    const double base = 0.05, w = 1000, peak = base / sqrt(w); /* LRA ListOps: base 0.05, warm-up 1000 */
    optim_schedule s = {.kind = OPTIM_SCHED_RSQRT, .peak_lr = peak, .warmup_steps = 1000, .total_steps = 5000,
                        .min_lr_ratio = 0.1};
    cr_assert_eq(optim_schedule_check(&s), 0, "%s", attn_last_error());
    const int64_t at[] = {0, 1, 10, 500, 999, 1000, 1001, 2000, 4000, 5000, 20000};
    for (size_t i = 0; i < sizeof at / sizeof *at; i++) {
        double want = lra_rsqrt(base, w, (double)at[i]), got = optim_lr_at(&s, at[i]);
        cr_assert_leq(fabs(got - want), 1e-12 * peak, "step %lld: %.17g, LRA gives %.17g", (long long)at[i], got, want);
    }
    cr_assert_eq(optim_lr_at(&s, 0), 0.0, "LRA's first step has lr 0");
    cr_assert_float_eq(optim_lr_at(&s, 500), peak / 2, 1e-18);
    cr_assert_float_eq(optim_lr_at(&s, 1000), peak, 1e-18);
    cr_assert_float_eq(optim_lr_at(&s, 4000), peak / 2, 1e-18);
    s.min_lr_ratio = 0.9; /* no floor: rsqrt decays forever */
    cr_assert_float_eq(optim_lr_at(&s, 100000), peak * sqrt(1000.0 / 100000.0), 1e-18);
    s.warmup_steps = 8000; /* LRA Retrieval: warm-up longer than the run is allowed */
    cr_assert_eq(optim_schedule_check(&s), 0, "%s", attn_last_error());
    cr_assert_float_eq(optim_lr_at(&s, 5000), lra_rsqrt(peak * sqrt(8000.0), 8000, 5000), 1e-18);
    s.warmup_steps = 0;
    cr_assert_eq(optim_schedule_check(&s), ATTN_EINVAL);
    cr_assert(strstr(attn_last_error(), "rsqrt: expected warmup_steps >= 1"), "%s", attn_last_error());

    cfg_config c; /* and configs name it */
    cr_assert_eq(cfg_parse("t.json", "{\"name\":\"t\",\"trainings\":[{\"task\":\"mqar\",\"kernels\":[\"flash\"],"
                                     "\"sched\":\"rsqrt\",\"warmup\":8}]}", &c), 0, "%s", attn_last_error());
    cr_assert_eq(c.trainings[0].base.train.sched, OPTIM_SCHED_RSQRT);
    cfg_free(&c);
}

/* ---------------------------------------------------------------- (e) sweep resume with extrapolation */

typedef struct {
    int n, extrap, test, valid;
    char id[16][17], value[16][16];
} sweep_rows;

static int take_sweep_row(const csvw_row *row, void *ud)
{
    sweep_rows *r = ud;
    const char *p = row->cell[ATTN_COL_PARAMS];
    r->n++;
    r->valid += strstr(p, ";split=valid") != NULL;
    r->test += strstr(p, ";split=test;") != NULL;
    if (strstr(p, ";split=extrap;")) {
        cr_assert_lt(r->extrap, 16);
        snprintf(r->id[r->extrap], 17, "%.16s", row->cell[ATTN_COL_JOB_ID]);
        snprintf(r->value[r->extrap++], 16, "%.15s", row->cell[ATTN_COL_VALUE]);
    }
    return 0;
}

static sweep_rows read_sweep(const char *csv)
{
    sweep_rows r;
    memset(&r, 0, sizeof r);
    cr_assert_geq(csvw_read_rows(csv, take_sweep_row, &r), 0, "%s", attn_last_error());
    return r;
}

/* Copies the rows whose job_id is not in drop[0..n). */
typedef struct {
    csvw w;
    const char (*drop)[17];
    int n;
} row_filter;

static int copy_kept(const csvw_row *row, void *ud)
{
    row_filter *c = ud;
    for (int i = 0; i < c->n; i++)
        if (!strcmp(row->cell[ATTN_COL_JOB_ID], c->drop[i]))
            return 0;
    return csvw_write(&c->w, row);
}

/* Rewrites csv without the rows whose job_id is in drop[0..n) (cells a crash lost). */
static void drop_rows(const char *csv, const char (*drop)[17], int n)
{
    char tmp[128];
    snprintf(tmp, sizeof tmp, "%s.new", csv);
    row_filter c = {.drop = drop, .n = n};
    cr_assert_eq(csvw_open(&c.w, tmp), 0, "%s", attn_last_error());
    cr_assert_geq(csvw_read_rows(csv, copy_kept, &c), 0, "%s", attn_last_error());
    csvw_close(&c.w);
    cr_assert_eq(rename(tmp, csv), 0);
}

static int sweep(const char *config, const char *results, int resume)
{
    char *argv[] = {"sweep", "--config", (char *)config, "--results", (char *)results, resume ? "--resume" : NULL,
                    NULL};
    return cmd_sweep(resume ? 6 : 5, argv);
}

/* A sweep resumed after a crash that lost extrapolation cells of a finished
 * training (one of the trained kernel, one of the swapped kernel) evaluates
 * exactly those again, with the same rows, and does not train again; the
 * cells need the training's checkpoint, whose absence is an error. */
Test(train_resume, a_resumed_sweep_runs_the_missing_extrapolation_cells_only, .timeout = 120)
{
    char config[96], results[96], csv[128];
    in_dir(config, sizeof config, "sweep.json"), in_dir(results, sizeof results, "res");
    snprintf(csv, sizeof csv, "%s/recall.csv", results);
    FILE *f = fopen(config, "w");
    cr_assert_not_null(f);
    fputs("{\"name\": \"t\", \"trainings\": [{\"task\": \"mqar\", \"task_params\": [\"L=16\", \"D=2\", \"V=72\"],\n"
          " \"kernels\": [\"flash\"], \"layers\": 1, \"d_model\": 16, \"heads\": 1, \"mlp\": 0, \"pos\": \"none\",\n"
          " \"steps\": 2, \"warmup\": 1, \"eval_every\": 2, \"batch\": 8, \"train_n\": 16, \"valid_n\": 8, \"test_n\": 40,\n"
          " \"extrapolate\": {\"scale\": [1, 2], \"kernels\": [{\"kernel\": \"streaming\", \"params\": [\"mode=decode\"],\n"
          " \"mask\": \"sink:n=1,w=4\"}]}}]}\n", f);
    fclose(f);
    cr_assert_eq(sweep(config, results, 0), 0, "%s", attn_last_error());
    sweep_rows a = read_sweep(csv);
    cr_assert(a.test == 1 && a.valid == 1 && a.extrap == 4, "test %d valid %d extrap %d", a.test, a.valid, a.extrap);
    for (int i = 0; i < 4; i++)
        for (int k = 0; k < i; k++)
            cr_assert_str_neq(a.id[i], a.id[k], "cells %d and %d share a job_id", k, i);

    cr_assert_neq(sweep(config, results, 0), 0, "without --resume a finished training is an error");
    cr_assert(strstr(attn_last_error(), "pass --resume"), "%s", attn_last_error());
    cr_assert_eq(sweep(config, results, 1), 0, "%s", attn_last_error());
    sweep_rows b = read_sweep(csv);
    cr_assert_eq(b.n, a.n, "a complete sweep resumed writes nothing");

    char lost[2][17];
    memcpy(lost[0], a.id[1], 17), memcpy(lost[1], a.id[2], 17); /* flash x2, streaming x1 */
    drop_rows(csv, (const char (*)[17])lost, 2);
    cr_assert_eq(read_sweep(csv).extrap, 2);
    cr_assert_eq(sweep(config, results, 1), 0, "%s", attn_last_error());
    b = read_sweep(csv);
    cr_assert(b.test == 1 && b.valid == 1, "trained again: test %d valid %d", b.test, b.valid);
    cr_assert_eq(b.extrap, 4);
    for (int i = 0; i < 4; i++) {
        int rows = 0;
        for (int k = 0; k < 4; k++)
            if (!strcmp(b.id[k], a.id[i])) {
                rows++;
                cr_assert_str_eq(b.value[k], a.value[i], "cell %d", i);
            }
        cr_assert_eq(rows, 1, "cell %d has %d rows", i, rows);
    }

    /* the checkpoint of the finished training is gone: its missing cells cannot run */
    char ckpt[160];
    cfg_config cfg;
    cr_assert_eq(cfg_load(config, &cfg), 0, "%s", attn_last_error());
    train_run_opts *jobs;
    size_t n;
    cr_assert_eq(cfg_trainings_expand(cfg.trainings, cfg.n_trainings, NULL, NULL, NULL, 0, &jobs, &n), 0);
    cr_assert_eq(n, 1);
    char id[17];
    cr_assert_eq(train_run_test_id(&jobs[0], id), 0, "%s", attn_last_error());
    snprintf(ckpt, sizeof ckpt, "%s/%s.ckpt", results, id);
    cr_assert_eq(unlink(ckpt), 0, "the sweep keeps its checkpoint at %s", ckpt);
    free(jobs);
    cfg_free(&cfg);
    cr_assert_eq(sweep(config, results, 1), 0, "no cell missing: no checkpoint needed (%s)", attn_last_error());
    cr_assert_eq(read_sweep(csv).n, a.n);
    drop_rows(csv, (const char (*)[17])lost, 1);
    cr_assert_eq(sweep(config, results, 1), 1, "the job fails, the sweep goes on");
    cr_assert(strstr(attn_last_error(), "1 of 2 evaluations failed"), "%s", attn_last_error());
    cr_assert_eq(read_sweep(csv).extrap, 3);
}
