/* Storage type of the attention operands Q, K, V and O (and of dO, dQ, dK,
 * dV in a backward): fp32, or the 16-bit floats bf16 and fp16
 * (docs/dtypes.md). A kernel that takes 16-bit operands reads them in that
 * form and widens to fp32 for every product; accumulation, the softmax
 * statistics and the LSE stay fp32, and O and the gradients are rounded to
 * the operand type once, when they are written. The scalar conversions are
 * kv_format.h's (round to nearest, ties to even). */
#ifndef ATTN_DTYPE_H
#define ATTN_DTYPE_H

#include <stddef.h>
#include <stdint.h>

typedef enum { ATTN_DT_FP32 = 0, ATTN_DT_BF16, ATTN_DT_FP16, ATTN_DT__COUNT } attn_dtype;

#define ATTN_DT_BIT(t) (1u << (t))

/* The names by value ("fp32", "bf16", "fp16"), NULL-terminated. */
extern const char *const attn_dtype_names[];
/* 0 and *t set, or ATTN_EINVAL naming the valid names. */
int attn_dtype_parse(const char *s, attn_dtype *t);

/* Unit roundoff of the type (half its relative spacing at 1): 2^-24, 2^-8, 2^-11. */
double attn_dtype_unit_roundoff(attn_dtype t);

/* A 16-bit tensor, [B, H, N, D] with element (b,h,n,d) at
 * data[b*sb + h*sh + n*sn + d], as attn_tensor (kernels/core/attn.h). */
typedef struct {
    uint16_t *data;
    int64_t B, H, N, D;
    int64_t sb, sh, sn;
} attn_tensor_h;

static inline uint16_t *attn_at_h(const attn_tensor_h *t, int64_t b, int64_t h, int64_t n)
{
    return t->data + b * t->sb + h * t->sh + n * t->sn;
}

/* n values of type t (bf16 or fp16) to fp32: exact. The build's vector path
 * (AVX-512F, or AVX2 with F16C for fp16; bf16 by a 16-bit shift) and
 * attn_widen_plain, the scalar loop it is tested against, give the same bits. */
void attn_widen(attn_dtype t, const uint16_t *x, int64_t n, float *y);
void attn_widen_plain(attn_dtype t, const uint16_t *x, int64_t n, float *y);
/* n floats rounded to type t (nearest, ties to even; attn_f32_to_bf16 / _fp16). */
void attn_narrow(attn_dtype t, const float *x, int64_t n, uint16_t *y);

#endif
