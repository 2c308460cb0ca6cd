/* Length / depth grid evaluation of a checkpoint (extrapolate.h). */
#include "extrapolate.h"

#include "harness/results/csvw.h"
#include "kv_dump.h"
#include "train_run.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Whether the task declares parameter `key`. */
static int task_has_param(const task_def *t, const char *key) { return opt_find(t->params, key) != NULL; }

/* Sets key=val, replacing an existing value. */
static int params_set(param_bag *p, const char *key, const char *val)
{
    for (int i = 0; i < p->n; i++)
        if (!strcmp(p->key[i], key)) {
            if (strlen(val) >= sizeof p->val[i])
                return attn_fail(ATTN_EINVAL, "task param %s: value '%s' too long", key, val);
            strcpy(p->val[i], val);
            return 0;
        }
    char kv[128];
    snprintf(kv, sizeof kv, "%s=%s", key, val);
    return param_bag_add(p, kv);
}

static const char *params_get(const param_bag *p, const char *key)
{
    for (int i = 0; i < p->n; i++)
        if (!strcmp(p->key[i], key))
            return p->val[i];
    return NULL;
}

/* The grid: what each cell changes in the trained run. */
typedef struct {
    const extrapolate_opts *o;
    const train_run_opts *trained;
    const task_def *task;
    const char *len_key;   /* "len" | "L" */
    int has_depth;
    int64_t train_len;     /* the task's length parameter as trained (data tokens) */
    int64_t landmark;      /* task param landmark=l: l - 1 data tokens + a landmark per block, or 0 */
    char swap[192];        /* ";kernel_params=..;mask=..;kv_dtype=.." of a swapped kernel, or "" */
} extrap_grid;

static int grid_cells_per_scale(const extrap_grid *g) { return g->o->depths ? g->o->depths : 1; }

/* Tokens per sequence of scale multiple x: the data tokens plus the
 * landmark tokens the task inserts (task.h "Landmark tokens"). */
static int64_t grid_seq_len(const extrap_grid *g, int64_t x)
{
    return task_landmark_seq_len(x * g->train_len, g->landmark);
}

/* The run of cell (s, j): task params with the length (and len_min, so every
 * example has exactly that length) and depth set; split is the row's
 * "extrap;eval_len=..;depth=..;train_len=..[;kernel_params=..][;mask=..]" tail. */
static int grid_cell(const extrap_grid *g, int s, int j, train_run_opts *r, char *split, size_t n)
{
    *r = *g->trained;
    int64_t len = g->o->scale[s] * g->train_len;
    char v[64], depth[32] = "";
    snprintf(v, sizeof v, "%lld", (long long)len);
    int rc = params_set(&r->task_params, g->len_key, v);
    if (!rc && params_get(&r->task_params, "len_min"))
        rc = params_set(&r->task_params, "len_min", v);
    if (!rc && g->o->depths) {
        snprintf(depth, sizeof depth, "%.4g", (double)j / (double)(g->o->depths - 1));
        rc = params_set(&r->task_params, "depth", depth);
    } else if (g->has_depth) {
        const char *d = params_get(&r->task_params, "depth");
        snprintf(depth, sizeof depth, "%s", !d || !strcmp(d, "-1") ? "random" : d);
    }
    snprintf(split, n, "extrap;eval_len=%lld%s%s;train_len=%lld%s", (long long)len, depth[0] ? ";depth=" : "", depth,
             (long long)g->train_len, g->swap);
    return rc;
}

/* Rejects what no cell could run, before any evaluation. */
static int grid_check(const extrap_grid *g, const nn_model_cfg *m)
{
    const extrapolate_opts *o = g->o;
    if (o->n_scales < 1 || o->n_scales > ATTN_EXTRAP_MAX_SCALES)
        return attn_fail(ATTN_EINVAL, "--scale: expected 1 to %d multiples, found %d", ATTN_EXTRAP_MAX_SCALES,
                         o->n_scales);
    if (o->depths && !g->has_depth) {
        char keys[512];
        opt_names(g->task->params, keys, sizeof keys);
        return attn_fail(ATTN_EINVAL, "--depths: task '%s' has no depth parameter (params: %s)", g->task->name, keys);
    }
    if (o->depths == 1 || o->depths < 0)
        return attn_fail(ATTN_EINVAL, "--depths: expected at least 2 depths (0 and 1), found %d", o->depths);
    for (int s = 0; s < o->n_scales; s++) {
        int64_t len = grid_seq_len(g, o->scale[s]);
        if (o->scale[s] < 1)
            return attn_fail(ATTN_EINVAL, "--scale: expected multiples >= 1, found %lld", (long long)o->scale[s]);
        /* folded and hmt count positions within their windows: any length loads the same weights */
        if (m->pos == NN_POS_LEARNED && m->variant != NN_VARIANT_FOLDED && m->variant != NN_VARIANT_HMT &&
            len > m->max_len)
            return attn_fail(ATTN_EINVAL,
                             "--scale %lld: learned positions cover %lld tokens; train with --pos "
                             "sinusoid|rope|none to evaluate at length %lld",
                             (long long)o->scale[s], (long long)m->max_len, (long long)len);
    }
    /* one example per cell: the generator validates its parameters (MQAR: L even, V > L, ...) */
    for (int s = 0; s < o->n_scales; s++)
        for (int j = 0; j < grid_cells_per_scale(g); j++) {
            train_run_opts r;
            char split[256];
            task_data d;
            int rc = grid_cell(g, s, j, &r, split, sizeof split);
            if (!rc && !(rc = train_run_make_split(&r, g->task, TASK_TEST, 1, &d))) {
                if (d.len != grid_seq_len(g, o->scale[s]))
                    rc = attn_fail(ATTN_EINVAL, "task %s: %s=%lld made sequences of %lld tokens, expected %lld",
                                   g->task->name, g->len_key, (long long)(o->scale[s] * g->train_len),
                                   (long long)d.len, (long long)grid_seq_len(g, o->scale[s]));
                task_data_free(&d);
            }
            if (rc)
                return rc;
        }
    return 0;
}

/* Swaps o->kernel into every layer of the trained model and names it in
 * g->swap: the kernel column names the kernel; the checkpoint's own
 * kernel(s), its params and mask go into the params tail (and the mask
 * column), so rows of two swaps, or of one swap into two checkpoints,
 * differ. */
static int swap_kernel(const extrapolate_opts *o, train_run_opts *trained, extrap_grid *g)
{
    nn_model_cfg *mc = &trained->model;
    char was[160] = ""; /* the checkpoint's own kernels: rows of swaps into two checkpoints of one shape differ */
    for (int i = 0; i < mc->n_kernels; i++)
        snprintf(was + strlen(was), sizeof was - strlen(was), "%s%s", i ? "," : "", mc->kernels[i]);
    if (strlen(o->kernel) >= sizeof mc->kernels[0])
        return attn_fail(ATTN_EINVAL, "--kernel %s: expected a name below %zu bytes", o->kernel, sizeof mc->kernels[0]);
    mc->n_kernels = 1;
    snprintf(mc->kernels[0], sizeof mc->kernels[0], "%s", o->kernel);
    if (mc->variant == NN_VARIANT_HYBRID)
        mc->variant = mc->head == NN_HEAD_LM ? NN_VARIANT_LM : NN_VARIANT_ENCODER;
    mc->kparams = o->kparams;
    mc->eval_only = 1;
    char kp[128] = "", mask[96] = "";
    for (int i = 0; i < o->kparams.n; i++)
        snprintf(kp + strlen(kp), sizeof kp - strlen(kp), "%s%s=%s", i ? "," : "", o->kparams.key[i],
                 o->kparams.val[i]);
    mc->has_eval_mask = o->mask != NULL;
    if (o->mask) { /* parsed here, once: the model gets the typed mask */
        if (attn_mask_parse(o->mask, &mc->eval_mask))
            return attn_fail(ATTN_EINVAL, "--mask %s: %s", o->mask, attn_last_error());
        attn_mask_format(&mc->eval_mask, mask, sizeof mask);
    }
    mc->eval_kv_dtype = o->kv_dtype;
    snprintf(g->swap, sizeof g->swap, ";trained=%.60s%s%s%s%s%s%s", was, kp[0] ? ";kernel_params=" : "", kp,
             mask[0] ? ";mask=" : "", mask, o->kv_dtype ? ";kv_dtype=" : "", o->kv_dtype ? attn_kv_dtype_names[o->kv_dtype] : "");
    return 0;
}

/* Evaluates cell (s, j) into its row unless done holds its job_id (then *skipped). */
static int eval_cell(const extrap_grid *g, int s, int j, const nn_model_cfg *cfg, nn_model *m, int *loaded,
                     csvw_idset *done, int *skipped)
{
    train_run_opts r;
    char split[256], id[17];
    task_data d;
    train_eval_result e;
    int rc = grid_cell(g, s, j, &r, split, sizeof split);
    if (rc || (rc = train_run_make_split(&r, g->task, TASK_TEST, r.test_n, &d)))
        return rc;
    *skipped = 0;
    if (g->o->skip_done && !(rc = train_run_eval_row_id(&r, &d, split, id)))
        *skipped = csvw_idset_contains(done, id) != 0;
    if (!rc && !*skipped && !*loaded && access(g->o->checkpoint, F_OK) != 0)
        rc = attn_fail(ATTN_EINVAL, "%s: expected the checkpoint of the trained model, found none (cell %s is not "
                       "in the results yet)", g->o->checkpoint, split);
    if (!rc && !*skipped && !*loaded && !(rc = train_run_model_load(g->o->checkpoint, cfg, m)))
        *loaded = 1;
    if (!rc && !*skipped && !(rc = train_run_eval_write(&r, &d, m, split, &e)) && g->o->skip_done)
        rc = csvw_idset_add(done, id) < 0 ? ATTN_ENOMEM : 0;
    if (!rc && g->o->progress && !*skipped)
        train_eval_print(stderr, &e);
    task_data_free(&d);
    return rc;
}

/* --dump-kv: the first example of cell (0, 0) through the loaded model. */
static int dump_cell(const extrap_grid *g, const nn_model_cfg *cfg, nn_model *m)
{
    train_run_opts r;
    char split[256], source[768] = "";
    task_data d;
    int rc = grid_cell(g, 0, 0, &r, split, sizeof split);
    if (rc || (rc = train_run_make_split(&r, g->task, TASK_TEST, 1, &d)))
        return rc;
    snprintf(source, sizeof source, "checkpoint=%.300s;task=%s;%s;example=0", g->o->checkpoint, g->task->name, split);
    if (!(rc = train_run_model_load(g->o->checkpoint, cfg, m)))
        rc = kv_dump_write(g->o->dump_kv, m, &d, 0, g->o->threads, source);
    task_data_free(&d);
    return rc;
}

int extrapolate_run(const extrapolate_opts *o, int *rows)
{
    train_run_opts trained;
    double logged;
    extrap_grid g = {.o = o, .trained = &trained};
    *rows = 0;
    int rc = o->skip_done && o->run && access(o->checkpoint, F_OK) != 0
                 ? train_run_fitted(o->run, &trained, &g.train_len)
                 : train_run_checkpoint(o->checkpoint, &trained, &g.train_len, &logged);
    if (rc)
        return rc;
    if (o->test_n > 0)
        trained.test_n = o->test_n;
    trained.out = o->out, trained.train.threads = o->threads;
    if (!(g.task = task_find(trained.task)))
        return ATTN_EINVAL;
    g.len_key = task_has_param(g.task, "len") ? "len" : task_has_param(g.task, "L") ? "L" : NULL;
    if (!g.len_key)
        return attn_fail(ATTN_EINVAL, "--scale: task '%s' has no length parameter (len or L)", g.task->name);
    g.has_depth = task_has_param(g.task, "depth");
    /* the checkpoint holds the sequence length; scales multiply the data tokens */
    g.landmark = task_landmark_param(&trained.task_params, &rc);
    if (rc)
        return rc;
    g.train_len = task_landmark_data_len(g.train_len, g.landmark);
    if (o->kernel && (rc = swap_kernel(o, &trained, &g)))
        return rc;
    if (o->dtype != ATTN_DT_FP32) { /* the kernel in every layer on rounded operands: a cell of its own */
        trained.model.eval_dtype = o->dtype, trained.model.eval_only = 1;
        snprintf(g.swap + strlen(g.swap), sizeof g.swap - strlen(g.swap), ";dtype=%s", attn_dtype_names[o->dtype]);
    }
    if (o->mem_budget) { /* every layer's kernel with its sizes chosen under the budget: a cell of its own */
        trained.model.eval_mem_budget = o->mem_budget, trained.model.eval_only = 1;
        snprintf(g.swap + strlen(g.swap), sizeof g.swap - strlen(g.swap), ";mem_budget=%llu",
                 (unsigned long long)o->mem_budget);
    }
    if ((rc = grid_check(&g, &trained.model)))
        return rc;
    csvw_idset done; /* job_ids already in the results (skip_done) */
    csvw_idset_init(&done);
    if (o->skip_done) {
        char path[1100];
        train_run_results_path(&trained, path, sizeof path);
        if ((rc = csvw_load_job_ids(path, &done)) > 0)
            rc = 0;
    }
    /* one model for every cell, loaded when a cell first needs it: positions
     * other than learned (and folded's, per window) hold no parameters per
     * position, so a longer max_len loads the same weights */
    nn_model_cfg cfg = trained.model;
    for (int s = 0; s < o->n_scales; s++)
        if (grid_seq_len(&g, o->scale[s]) > cfg.max_len)
            cfg.max_len = grid_seq_len(&g, o->scale[s]);
    nn_model m;
    memset(&m, 0, sizeof m);
    if (o->dump_kv) {
        rc = dump_cell(&g, &cfg, &m);
        nn_model_free(&m);
        csvw_idset_free(&done);
        return rc;
    }
    int loaded = 0, skipped, n_skipped = 0;
    for (int s = 0; !rc && s < o->n_scales; s++)
        for (int j = 0; !rc && j < grid_cells_per_scale(&g); j++)
            if (!(rc = eval_cell(&g, s, j, &cfg, &m, &loaded, &done, &skipped)))
                skipped ? n_skipped++ : ++*rows;
    if (n_skipped && o->progress)
        fprintf(stderr, "eval: %s%s: %d of %d cells already in the results (resume)\n", trained.task, g.swap,
                n_skipped, o->n_scales * grid_cells_per_scale(&g));
    nn_model_free(&m);
    csvw_idset_free(&done);
    return rc;
}
