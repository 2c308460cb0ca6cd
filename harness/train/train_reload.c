/* A trained run read back from its checkpoint: the run it names, its model
 * with the saved weights, and a re-evaluation of it (train_run.h). */
#include "train_run.h"

#include "models/checkpoint.h"
#include "models/model_json.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Reads a --checkpoint header back into r (settings absent from older files
 * keep their defaults). */
static int json_run(const char *path, const char *text, train_run_opts *r, int64_t *len, double *logged)
{
    cJSON *o = cJSON_Parse(text);
    if (!o)
        return attn_fail(ATTN_EINVAL, "%s: config: not JSON", path);
    char where[1100];
    snprintf(where, sizeof where, "%s: config", path);
    int rc = opt_read_json(train_run_opts_table, r, o, where);
    const cJSON *ln = cJSON_GetObjectItemCaseSensitive(o, "len"), *acc = cJSON_GetObjectItemCaseSensitive(o, "test_accuracy");
    if (!rc && (!cJSON_IsNumber(ln) || !cJSON_IsNumber(acc)))
        rc = attn_fail(ATTN_EINVAL, "%s: config: len, test_accuracy: expected numbers", path);
    if (!rc) {
        *len = (int64_t)ln->valuedouble, *logged = acc->valuedouble;
        rc = nn_model_cfg_from_json(cJSON_GetObjectItemCaseSensitive(o, "model"), path, &r->model);
    }
    cJSON_Delete(o);
    return rc;
}

int train_run_eval_checkpoint(const char *path, int64_t test_n, int threads, const char *out, train_eval_result *e,
                               double *logged)
{
    train_run_opts r;
    int64_t len = 0;
    int rc = train_run_checkpoint(path, &r, &len, logged);
    if (rc)
        return rc;
    if (test_n > 0)
        r.test_n = test_n;
    r.out = out, r.train.threads = threads;
    const task_def *t = task_find(r.task);
    if (!t)
        return ATTN_EINVAL;
    task_data te;
    if ((rc = train_run_make_split(&r, t, TASK_TEST, r.test_n, &te)) != 0)
        return rc;
    nn_model m;
    memset(&m, 0, sizeof m);
    if (te.len != len)
        rc = attn_fail(ATTN_EINVAL, "%s: the task now makes sequences of %lld tokens, the model was trained on %lld",
                       path, (long long)te.len, (long long)len);
    if (!rc && !(rc = train_run_model_load(path, &r.model, &m)))
        rc = train_run_eval_write(&r, &te, &m, "test-reload", e);
    nn_model_free(&m);
    task_data_free(&te);
    return rc;
}

int train_run_checkpoint(const char *path, train_run_opts *r, int64_t *len, double *logged)
{
    char *text = NULL;
    size_t nparams;
    unsigned flags;
    train_run_defaults(r);
    int rc = ckpt_inspect(path, &text, &nparams, &flags);
    if (!rc)
        rc = json_run(path, text, r, len, logged);
    free(text);
    return rc;
}

int train_run_model_load(const char *path, const nn_model_cfg *cfg, nn_model *m)
{
    nn_model_cfg c = *cfg;
    c.eval_only = 1; /* evaluation needs no backward */
    ckpt_tensor *tens = NULL;
    nn_param_info *info = NULL;
    int n;
    memset(m, 0, sizeof *m);
    int rc = nn_model_init(m, &c, 0);
    if (!rc && !(rc = nn_ckpt_tensors(m, &tens, &info, &n))) {
        ckpt_state st = {.tensors = tens, .ntensors = n, .params = m->params, .nparams = m->n_params};
        rc = ckpt_load(path, &st);
    }
    free(tens), free(info);
    return rc;
}
