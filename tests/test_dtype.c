/* Operand types (kernels/core/dtype.h): the vector widening equals the plain
 * loop bitwise on every 16-bit pattern and at every tail length; names parse;
 * kernels that declare no 16-bit operands refuse them as unsupported, and so
 * does a job asking for 16-bit operands and a stored KV cache at once. */
#include "kernels/core/attn.h"
#include "kernels/core/registry.h"
#include "kernels/flash/flash.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

Test(dtype, widening_equals_the_plain_loop_on_every_16_bit_pattern)
{
    /* every pattern, NaNs and infinities included, from an odd offset so the
     * vector loop ends in every tail length on the way */
    enum { N = 65536 + 17 };
    uint16_t *x = malloc(sizeof(uint16_t) * N);
    float *fast = malloc(sizeof(float) * N), *plain = malloc(sizeof(float) * N);
    for (int i = 0; i < N; i++)
        x[i] = (uint16_t)(i * 40503u); /* odd multiplier: a permutation of the 16-bit patterns */
    for (int t = ATTN_DT_BF16; t <= ATTN_DT_FP16; t++)
        for (int64_t n = 0; n <= 40; n += n < 20 ? 1 : 20) {
            int64_t len = n == 40 ? N : n;
            memset(fast, 0, sizeof(float) * N), memset(plain, 0, sizeof(float) * N);
            attn_widen((attn_dtype)t, x + 1, len - (len > 0), fast);
            attn_widen_plain((attn_dtype)t, x + 1, len - (len > 0), plain);
            cr_assert(memcmp(fast, plain, sizeof(float) * N) == 0, "%s, %lld values", attn_dtype_names[t],
                      (long long)len);
        }
    free(x), free(fast), free(plain);
}

Test(dtype, narrowing_rounds_to_nearest_even_and_widening_undoes_it_on_representable_values)
{
    /* 1 + 2^-8 is the tie between bf16's 1 and 1 + 2^-7: even is 1; 1 + 3*2^-8 goes up */
    float x[4] = {1.0f + 0x1p-8f, 1.0f + 3 * 0x1p-8f, 1.0f + 0x1p-11f, 1.0f + 3 * 0x1p-11f}, y[4];
    uint16_t h[4];
    attn_narrow(ATTN_DT_BF16, x, 2, h);
    attn_widen(ATTN_DT_BF16, h, 2, y);
    cr_assert(y[0] == 1.0f && y[1] == 1.0f + 0x1p-6f, "%a %a", y[0], y[1]);
    attn_narrow(ATTN_DT_FP16, x + 2, 2, h);
    attn_widen(ATTN_DT_FP16, h, 2, y);
    cr_assert(y[0] == 1.0f && y[1] == 1.0f + 0x1p-9f, "%a %a", y[0], y[1]);
    cr_assert_eq(attn_dtype_unit_roundoff(ATTN_DT_BF16), 0x1p-8);
    cr_assert_eq(attn_dtype_unit_roundoff(ATTN_DT_FP16), 0x1p-11);
}

Test(dtype, names_parse_and_unknown_ones_are_refused_with_the_list)
{
    for (int t = 0; t < ATTN_DT__COUNT; t++) {
        attn_dtype got;
        cr_assert_eq(attn_dtype_parse(attn_dtype_names[t], &got), 0);
        cr_assert_eq(got, (attn_dtype)t);
    }
    attn_dtype got;
    cr_assert_eq(attn_dtype_parse("q8_0", &got), ATTN_EINVAL);
    cr_assert(strstr(attn_last_error(), "fp32, bf16, fp16"), "%s", attn_last_error());
}

static attn_args small_args(attn_dtype t)
{
    attn_args a;
    memset(&a, 0, sizeof a);
    a.B = 1, a.H = 2, a.H_kv = 2, a.Nq = a.Nk = 64, a.D = 32, a.threads = 1, a.dtype = t;
    attn_args_defaults(&a);
    return a;
}

Test(dtype, kernels_without_16_bit_operands_refuse_them_as_unsupported)
{
    int declared = 0, refused = 0;
    const attn_kernel *const *reg = attn_registry();
    for (int i = 0; reg[i]; i++) {
        const attn_kernel *k = reg[i];
        attn_args a32 = small_args(ATTN_DT_FP32);
        if (attn_args_validate(k, &a32) != 0) /* the shape itself is not the kernel's (one query, mask) */
            continue;
        for (int t = ATTN_DT_BF16; t <= ATTN_DT_FP16; t++) {
            attn_args a = small_args((attn_dtype)t);
            int rc = attn_args_validate(k, &a);
            if (k->dtypes & ATTN_DT_BIT(t)) {
                cr_assert_eq(rc, 0, "%s %s: %s", k->name, attn_dtype_names[t], attn_last_error());
                declared++;
                continue;
            }
            cr_assert_eq(rc, ATTN_EUNSUPPORTED, "%s %s: %d", k->name, attn_dtype_names[t], rc);
            cr_assert(strstr(attn_last_error(), "operands"), "%s", attn_last_error());
            refused++;
        }
    }
    cr_assert(declared >= 2 && refused >= 20, "declared %d, refused %d", declared, refused);
    cr_assert(attn_kernel_flash.dtypes & ATTN_DT_BIT(ATTN_DT_BF16));
}

Test(dtype, sixteen_bit_operands_with_a_stored_kv_cache_or_an_unknown_type_are_refused)
{
    attn_args a = small_args(ATTN_DT_BF16);
    a.kv_dtype = ATTN_KV_Q8_0;
    cr_assert_neq(attn_args_validate(&attn_kernel_flash, &a), 0);
    a = small_args((attn_dtype)7);
    cr_assert_eq(attn_args_validate(&attn_kernel_flash, &a), ATTN_EINVAL);
    cr_assert(strstr(attn_last_error(), "dtype"), "%s", attn_last_error());
}
