/* A trained model evaluated on a stored KV cache (eval --kernel decode
 * --kv-dtype T: every layer's keys and values pass through the cache format
 * a decode kernel reads) or on 16-bit operands (eval --dtype T: the kernel
 * reads Q, K, V in that type and writes O in it): the loss moves by the
 * format's rounding and no more, and a kernel that cannot read the format
 * is refused. */
#include "models/model.h"
#include "common/rng.h"

#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

enum { KV_B = 2, KV_N = 24, KV_VOCAB = 13 };

static nn_model_cfg lm_cfg(const char *kernel, attn_kv_dtype t, attn_dtype dt)
{
    nn_model_cfg c;
    memset(&c, 0, sizeof c);
    c.variant = NN_VARIANT_LM, c.head = NN_HEAD_LM, c.vocab = KV_VOCAB, c.max_len = KV_N, c.layers = 2;
    c.d_model = 64, c.heads = 2, c.mlp = 32, c.n_kernels = 1, c.loops = 1, c.causal = 1; /* D = 32: one q8_0 block */
    c.pos = NN_POS_ROPE, c.eval_only = 1, c.eval_kv_dtype = t, c.eval_dtype = dt;
    snprintf(c.kernels[0], sizeof c.kernels[0], "%s", kernel);
    return c;
}

/* The loss of the model of seed 5 (the same weights for every kernel and format) on one fixed batch. */
static int lm_loss_typed(const char *kernel, attn_kv_dtype t, attn_dtype dt, double *loss)
{
    static int32_t tok[KV_B * KV_N], tgt[KV_B * KV_N], len[KV_B];
    attn_rng r;
    attn_rng_seed(&r, 3);
    for (int i = 0; i < KV_B * KV_N; i++)
        tok[i] = (int32_t)attn_rng_uint_below(&r, KV_VOCAB), tgt[i] = (int32_t)attn_rng_uint_below(&r, KV_VOCAB);
    for (int b = 0; b < KV_B; b++)
        len[b] = KV_N;
    nn_batch batch = {.B = KV_B, .tokens = tok, .targets = tgt, .lengths = len};
    nn_model_cfg c = lm_cfg(kernel, t, dt);
    nn_model m;
    int64_t correct, scored;
    int rc = nn_model_init(&m, &c, 5);
    if (!rc)
        rc = nn_model_plan(&m, KV_B, KV_N, KV_B * KV_N, 1);
    if (!rc)
        rc = nn_model_forward(&m, &batch, 0, 0, loss, &correct, &scored, NULL);
    nn_model_free(&m);
    return rc;
}

static int lm_loss(const char *kernel, attn_kv_dtype t, double *loss)
{
    return lm_loss_typed(kernel, t, ATTN_DT_FP32, loss);
}

Test(model_lowp, decode_on_an_fp32_cache_is_the_exact_model)
{
    double flash, decode;
    cr_assert_eq(lm_loss("flash", ATTN_KV_FP32, &flash), 0, "%s", attn_last_error());
    cr_assert_eq(lm_loss("decode", ATTN_KV_FP32, &decode), 0, "%s", attn_last_error());
    cr_assert_lt(fabs(decode - flash), 1e-5 * fabs(flash), "flash %.9g decode %.9g", flash, decode);
}

/* Each format rounds K and V once: the loss moves, by less than the
 * format's relative precision allows (bf16 8 bits of mantissa, q4_0 4 bits). */
Test(model_lowp, each_cache_format_moves_the_loss_by_its_rounding_only)
{
    static const struct {
        attn_kv_dtype t;
        double bound;
    } cases[] = {{ATTN_KV_BF16, 1e-2}, {ATTN_KV_FP16, 2e-3}, {ATTN_KV_Q8_0, 2e-2}, {ATTN_KV_Q4_0, 1e-1}};
    double exact;
    cr_assert_eq(lm_loss("decode", ATTN_KV_FP32, &exact), 0, "%s", attn_last_error());
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        double l;
        cr_assert_eq(lm_loss("decode", cases[i].t, &l), 0, "%s: %s", attn_kv_dtype_names[cases[i].t], attn_last_error());
        cr_assert_neq(l, exact, "%s: the cache format changed nothing: it was not applied", attn_kv_dtype_names[cases[i].t]);
        cr_assert_lt(fabs(l - exact), cases[i].bound * fabs(exact), "%s: loss %.9g, exact %.9g",
                     attn_kv_dtype_names[cases[i].t], l, exact);
    }
}

Test(model_lowp, a_kernel_that_reads_no_stored_cache_is_refused_by_name)
{
    double l;
    cr_assert_neq(lm_loss("flash", ATTN_KV_Q8_0, &l), 0);
    cr_assert(strstr(attn_last_error(), "kernel 'flash' does not read a q8_0 KV cache"), "%s", attn_last_error());
}

/* 16-bit operands: bf16 keeps 8 bits of mantissa, fp16 11. */
Test(model_lowp, operands_in_16_bits_move_the_loss_by_their_rounding_only)
{
    static const char *const kernels[] = {"flash", "linear"};
    for (int k = 0; k < 2; k++) {
        double exact, bf16, fp16;
        cr_assert_eq(lm_loss(kernels[k], ATTN_KV_FP32, &exact), 0, "%s", attn_last_error());
        cr_assert_eq(lm_loss_typed(kernels[k], ATTN_KV_FP32, ATTN_DT_BF16, &bf16), 0, "%s", attn_last_error());
        cr_assert_eq(lm_loss_typed(kernels[k], ATTN_KV_FP32, ATTN_DT_FP16, &fp16), 0, "%s", attn_last_error());
        cr_assert(bf16 != exact && fp16 != exact, "%s: the type changed nothing: it was not applied", kernels[k]);
        cr_assert_lt(fabs(bf16 - exact), 1e-2 * fabs(exact), "%s bf16: %.9g vs %.9g", kernels[k], bf16, exact);
        cr_assert_lt(fabs(fp16 - exact), 2e-3 * fabs(exact), "%s fp16: %.9g vs %.9g", kernels[k], fp16, exact);
    }
}

Test(model_lowp, a_kernel_without_16_bit_operands_is_refused_by_name)
{
    double l;
    cr_assert_neq(lm_loss_typed("sigmoid", ATTN_KV_FP32, ATTN_DT_BF16, &l), 0);
    cr_assert(strstr(attn_last_error(), "sigmoid") && strstr(attn_last_error(), "bf16"), "%s", attn_last_error());
}
