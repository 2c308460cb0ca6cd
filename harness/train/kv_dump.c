#include "kv_dump.h"

#include "harness/measure/kv_file.h"
#include "models/batch_buf.h"
#include "models/train.h"

static int layer_of(void *ud, int64_t app, attn_tensor *q, attn_tensor *k, attn_tensor *v)
{
    return nn_model_attn_inputs(ud, app, q, k, v);
}

int kv_dump_write(const char *path, nn_model *m, const task_data *d, int64_t example, int threads,
                  const char *source)
{
    if (example < 0 || example >= d->n)
        return attn_fail(ATTN_EINVAL, "--dump-kv: example %lld: the test split has %lld", (long long)example,
                         (long long)d->n);
    nn_batch_buf bb;
    int rc = nn_model_plan(m, 1, d->len, nn_rows_max(d, 1), threads);
    if (rc || (rc = nn_batch_buf_alloc(&bb, d, 1)))
        return rc;
    nn_batch_buf_put(&bb, d, 0, example);
    double loss;
    int64_t correct, scored;
    rc = nn_model_forward(m, &bb.b, 0, 0, &loss, &correct, &scored, NULL);
    if (!rc)
        rc = kv_file_write(path, nn_model_applications(m), 0, source, layer_of, m); /* act may stop early */
    nn_batch_buf_free(&bb);
    return rc;
}
