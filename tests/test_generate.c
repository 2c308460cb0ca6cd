/* Greedy decoding at answer positions (models/generate.h): the batched,
 * shortcut decoding equals the definition — one forward per answer token,
 * each generated token fed back before the next is read — on an untrained
 * model (most tokens differ from the data: many forwards), across varying
 * lengths, two answer runs and landmark tokens; and where the data already
 * holds the greedy output, one forward per batch suffices. */
#include "common/attn_error.h"
#include "common/rng.h"
#include "models/batch_buf.h"
#include "models/generate.h"
#include "models/model.h"
#include "models/train.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

enum { V = 12, LEN = 24, NEX = 9, BATCH = 4, LANDMARK = V - 1, LANDMARK_L = 5 };

/* Random tokens; scored runs at 9-12 and 16-18; with `landmarks`, landmark
 * tokens (no target) at every 5th position, cutting both runs; example
 * lengths 19-24. */
static void make_data(task_data *d, int landmarks)
{
    cr_assert_eq(task_data_alloc(d, "gen", TASK_LM, NEX, LEN), 0);
    d->vocab = V;
    attn_rng r;
    attn_rng_seed(&r, 11);
    for (int64_t i = 0; i < NEX; i++) {
        d->lengths[i] = (int32_t)(LEN - (i % 6));
        for (int64_t t = 0; t < LEN; t++) {
            task_tokens(d, i)[t] = (int32_t)attn_rng_uint_below(&r, V - 1);
            int scored = (t >= 9 && t <= 12) || (t >= 16 && t <= 18);
            task_targets(d, i)[t] = scored && t < d->lengths[i] ? (int32_t)attn_rng_uint_below(&r, V - 1) : TASK_IGNORE;
        }
        for (int64_t t = LANDMARK_L - 1; landmarks && t < LEN; t += LANDMARK_L) {
            d->landmark_l = LANDMARK_L;
            task_tokens(d, i)[t] = LANDMARK;
            task_targets(d, i)[t] = TASK_IGNORE;
        }
    }
}

static void make_model(nn_model *m)
{
    nn_model_cfg c;
    nn_model_cfg_defaults(&c);
    c.variant = NN_VARIANT_LM, c.head = NN_HEAD_LM, c.causal = 1;
    c.vocab = V, c.max_len = LEN, c.layers = 2, c.d_model = 16, c.heads = 2, c.mlp = 32;
    cr_assert_eq(nn_model_init(m, &c, 5), 0, "%s", attn_last_error());
}

/* The definition: example e alone in slot 0, one forward per scored position. */
static void decode_by_definition(nn_model *m, const task_data *d, int32_t *gen)
{
    nn_batch_buf bb;
    cr_assert_eq(nn_batch_buf_alloc(&bb, d, BATCH), 0);
    int32_t pred[BATCH * LEN];
    for (int64_t e = 0; e < d->n; e++) {
        nn_batch_buf_put(&bb, d, 0, e);
        for (int64_t s = 1; s < BATCH; s++)
            nn_batch_buf_blank(&bb, d, s);
        for (int64_t t = 0; t < LEN; t++) {
            if (task_targets(d, e)[t] == TASK_IGNORE)
                continue;
            double loss;
            int64_t correct, scored;
            cr_assert_eq(nn_model_forward(m, &bb.b, 0, 0, &loss, &correct, &scored, pred), 0);
            gen[e * LEN + t] = pred[t];
            int64_t u = task_next_input(d, t);
            if (u < d->lengths[e])
                bb.tok[u] = pred[t];
        }
    }
    nn_batch_buf_free(&bb);
}

static void compare(const task_data *d, const int32_t *want, const int32_t *got)
{
    for (int64_t e = 0; e < d->n; e++)
        for (int64_t t = 0; t < LEN; t++)
            if (task_targets(d, e)[t] != TASK_IGNORE)
                cr_assert_eq(got[e * LEN + t], want[e * LEN + t], "example %lld position %lld: %d, by definition %d",
                             (long long)e, (long long)t, got[e * LEN + t], want[e * LEN + t]);
}

static void decoding_matches_the_definition(int landmarks)
{
    task_data d;
    make_data(&d, landmarks);
    nn_model m;
    make_model(&m);
    cr_assert_eq(nn_model_plan(&m, BATCH, LEN, nn_rows_max(&d, BATCH), 1), 0);
    int32_t want[NEX * LEN], got[NEX * LEN];
    decode_by_definition(&m, &d, want);
    int64_t forwards;
    cr_assert_eq(nn_generate(&m, &d, NEX, BATCH, 1, got, &forwards), 0, "%s", attn_last_error());
    compare(&d, want, got);
    cr_assert_gt(forwards, (NEX + BATCH - 1) / BATCH, "an untrained model differs from the data: %lld forwards",
                 (long long)forwards);

    /* data that holds the greedy output: the teacher-forced pass is the answer */
    for (int64_t e = 0; e < NEX; e++)
        for (int64_t t = 0; t < LEN; t++)
            if (task_targets(&d, e)[t] != TASK_IGNORE) {
                task_targets(&d, e)[t] = want[e * LEN + t];
                int64_t u = task_next_input(&d, t);
                if (u < d.lengths[e])
                    task_tokens(&d, e)[u] = want[e * LEN + t];
            }
    memset(got, 0xff, sizeof got);
    cr_assert_eq(nn_generate(&m, &d, NEX, BATCH, 1, got, &forwards), 0);
    compare(&d, want, got);
    cr_assert_eq(forwards, (NEX + BATCH - 1) / BATCH, "one forward per batch, found %lld", (long long)forwards);
    nn_model_free(&m);
    task_data_free(&d);
}

Test(generate, batched_decoding_equals_one_forward_per_answer_token, .timeout = 60)
{
    decoding_matches_the_definition(0);
}

Test(generate, landmark_tokens_stay_and_the_token_after_them_takes_the_answer, .timeout = 60)
{
    decoding_matches_the_definition(1);
}

Test(generate, refuses_a_classification_model)
{
    task_data d;
    make_data(&d, 0);
    nn_model m;
    nn_model_cfg c;
    nn_model_cfg_defaults(&c);
    c.variant = NN_VARIANT_ENCODER, c.head = NN_HEAD_CLASSIFY, c.vocab = V, c.n_classes = 2, c.max_len = LEN;
    cr_assert_eq(nn_model_init(&m, &c, 1), 0, "%s", attn_last_error());
    int32_t got[NEX * LEN];
    cr_assert_neq(nn_generate(&m, &d, NEX, BATCH, 1, got, NULL), 0);
    cr_assert(strstr(attn_last_error(), "lm model") != NULL, "%s", attn_last_error());
    nn_model_free(&m);
    task_data_free(&d);
}
