/* The hand-vectorised building blocks of `flash`, `decode`, `lean` and
 * `sigmoid` (AVX2 + FMA or AVX-512 builds) against plain scalar loops that
 * run the same float operations in the same order, so the comparison is
 * bitwise: the micro-kernel on every row/column block edge (6-row blocks,
 * the 1-3 row remainder in 32-column blocks, 16-column tails), the vector
 * exp and logistic over a sweep of all float bit patterns, and the lane
 * helpers (max, interval mask, exp with row sums) on -inf and tail shapes.
 * The portable build has no vector path to compare: those tests skip. */
#include "kernels/flash/flash_internal.h"
#include "common/rng.h"
#include "kernels/sigmoid/sigmoid_internal.h"
#include "kernels/core/vexp.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
#define VECTOR_BUILD 1
#else
#define VECTOR_BUILD 0
#endif

static void skip_portable(void)
{
    if (!VECTOR_BUILD)
        cr_skip_test("portable build: no vector path to compare with the scalar loops");
}

static int same_bits(float a, float b)
{
    return memcmp(&a, &b, sizeof a) == 0;
}

/* C[i][n] = init + sum_p A(i,p) B[p][n] with one fmaf per p, p ascending:
 * the operation sequence of every vector block of attn_mk_gemm. */
static void plain_gemm(int64_t m, int64_t nn, int64_t k, const float *A, int64_t sam, int64_t sak,
                       const float *B, float *C, attn_mk_mode mode, const float *cs, float *cmax)
{
    for (int64_t i = 0; i < m; i++)
        for (int64_t n = 0; n < nn; n++) {
            float c = mode == ATTN_MK_SET ? 0.0f : mode == ATTN_MK_ADD ? C[i * nn + n] : C[i * nn + n] * cs[n];
            for (int64_t p = 0; p < k; p++)
                c = fmaf(A[i * sam + p * sak], B[p * nn + n], c);
            C[i * nn + n] = c;
            if (cmax)
                cmax[n] = cmax[n] > c ? cmax[n] : c;
        }
}

Test(flash_avx2, microkernel_equals_plain_fma_loops_bitwise_on_every_block_edge, .timeout = 60)
{
    skip_portable();
    static const int64_t nns[] = {16, 32, 48, 64, 80};
    static const int64_t ks[] = {1, 7, 40};
    attn_rng r;
    attn_rng_seed(&r, 31);
    int64_t cap = 20 * 48 * 80;
    float *A = attn_alloc(sizeof(float) * (size_t)cap), *B = attn_alloc(sizeof(float) * (size_t)cap);
    float *C = attn_alloc(sizeof(float) * (size_t)cap), *E = attn_alloc(sizeof(float) * (size_t)cap);
    float *cs = attn_alloc(sizeof(float) * 80), *cm = attn_alloc(sizeof(float) * 80);
    float *em = attn_alloc(sizeof(float) * 80);
    for (int64_t m = 1; m <= 19; m++) /* m % 6 = 0..5 and the wide remainder of 1-3 rows */
        for (int in = 0; in < 5; in++)
            for (int ik = 0; ik < 3; ik++)
                for (int mode = 0; mode < 3; mode++) {
                    int64_t nn = nns[in], k = ks[ik];
                    int orient = (int)((m + in + ik) % 2), with_max = (int)((m + mode) % 2);
                    int64_t sam = orient ? 1 : k + 3, sak = orient ? m + 2 : 1;
                    for (int64_t i = 0; i < (m + 2) * (k + 3); i++)
                        A[i] = attn_rng_range(&r, -1, 1);
                    for (int64_t i = 0; i < k * nn; i++)
                        B[i] = attn_rng_range(&r, -1, 1);
                    for (int64_t i = 0; i < m * nn; i++)
                        C[i] = E[i] = attn_rng_range(&r, -1, 1);
                    for (int64_t n = 0; n < nn; n++)
                        cs[n] = attn_rng_range(&r, 0, 1), cm[n] = em[n] = attn_rng_range(&r, -3, 3);
                    attn_mk_gemm(m, nn, k, A, sam, sak, B, nn, C, nn, (attn_mk_mode)mode, cs, with_max ? cm : NULL);
                    plain_gemm(m, nn, k, A, sam, sak, B, E, (attn_mk_mode)mode, cs, with_max ? em : NULL);
                    for (int64_t i = 0; i < m * nn; i++)
                        cr_assert(same_bits(C[i], E[i]), "m %ld nn %ld k %ld mode %d: C[%ld] = %a, plain %a",
                                  (long)m, (long)nn, (long)k, mode, (long)i, C[i], E[i]);
                    for (int64_t n = 0; with_max && n < nn; n++)
                        cr_assert(same_bits(cm[n], em[n]), "m %ld nn %ld k %ld: cmax[%ld] = %a, plain %a",
                                  (long)m, (long)nn, (long)k, (long)n, cm[n], em[n]);
                }
    attn_free(A), attn_free(B), attn_free(C), attn_free(E), attn_free(cs), attn_free(cm), attn_free(em);
}

/* Every 4099th float bit pattern (all signs, exponents, NaNs, infinities),
 * in runs of 1003 so the vector loops also end on a scalar tail. */
#define SWEEP_STEP 4099u
#define SWEEP_RUN 1003

static void sweep_inputs(uint64_t u0, float *x)
{
    for (int i = 0; i < SWEEP_RUN; i++) {
        uint32_t b = (uint32_t)(u0 + (uint64_t)i * SWEEP_STEP);
        memcpy(&x[i], &b, sizeof b);
    }
}

Test(flash_avx2, vector_exp_and_logistic_equal_the_scalar_forms_bitwise, .timeout = 60)
{
    skip_portable();
    float x[SWEEP_RUN], y[SWEEP_RUN], z[SWEEP_RUN];
    long n = 0;
    for (uint64_t u0 = 0; u0 < (1ull << 32); u0 += (uint64_t)SWEEP_STEP * SWEEP_RUN) {
        sweep_inputs(u0, x);
        attn_vexp(y, x, SWEEP_RUN);
        memcpy(z, x, sizeof z);
        sig_row_sigmoid(z, SWEEP_RUN, 0.0f);
        for (int i = 0; i < SWEEP_RUN; i++, n++) {
            float e = attn_expf(x[i]), s = attn_sigmoidf(x[i]);
            if (isnan(x[i])) { /* a signalling NaN comes back quieted: only NaN-ness is kept */
                cr_assert(isnan(y[i]) && isnan(z[i]), "exp/sigma(NaN) = %a / %a", y[i], z[i]);
                continue;
            }
            cr_assert(same_bits(e, y[i]), "exp(%a): vector %a, scalar %a", x[i], y[i], e);
            cr_assert(same_bits(s, z[i]), "sigma(%a): vector %a, scalar %a", x[i], z[i], s);
        }
    }
    cr_assert_gt(n, 1000000, "only %ld inputs swept", n);
}

Test(flash_avx2, lane_max_mask_and_exp_equal_plain_loops_bitwise, .timeout = 60)
{
    skip_portable();
    static const int64_t lane_counts[] = {16, 48, 64};
    attn_rng r;
    attn_rng_seed(&r, 5);
    float *S = attn_alloc(sizeof(float) * 11 * 64), *E = attn_alloc(sizeof(float) * 11 * 64);
    float *tmax = attn_alloc(sizeof(float) * 64), *shift = attn_alloc(sizeof(float) * 64);
    float *sum = attn_alloc(sizeof(float) * 64);
    int32_t *lo = attn_alloc(sizeof(int32_t) * 64), *hi = attn_alloc(sizeof(int32_t) * 64);
    float emax[64], esum[64];
    for (int il = 0; il < 3; il++)
        for (int64_t nk = 1; nk <= 11; nk++) { /* the 4-way unrolled max and its tails */
            int64_t lanes = lane_counts[il];
            for (int64_t i = 0; i < nk * lanes; i++)
                S[i] = attn_rng_range(&r, -4, 4);
            for (int64_t q = 0; q < lanes; q++) {
                lo[q] = (int32_t)attn_rng_uint_below(&r, (uint64_t)(nk + 1));
                hi[q] = lo[q] + (int32_t)attn_rng_uint_below(&r, (uint64_t)(nk + 2 - lo[q]));
                tmax[q] = emax[q] = q % 7 ? -INFINITY : attn_rng_range(&r, -1, 1);
                sum[q] = esum[q] = attn_rng_range(&r, 0, 2);
            }
            flash_mask_lanes(S, nk, lanes, lo, hi);
            for (int64_t j = 0; j < nk; j++)
                for (int64_t q = 0; q < lanes; q++) {
                    float want = j < lo[q] || j >= hi[q] ? -INFINITY : S[j * lanes + q];
                    cr_assert(same_bits(S[j * lanes + q], want), "mask: lanes %ld nk %ld S[%ld][%ld] = %a",
                              (long)lanes, (long)nk, (long)j, (long)q, S[j * lanes + q]);
                }
            flash_lanes_max(S, nk, lanes, tmax);
            for (int64_t q = 0; q < lanes; q++) {
                for (int64_t j = 0; j < nk; j++)
                    emax[q] = emax[q] > S[j * lanes + q] ? emax[q] : S[j * lanes + q];
                cr_assert(same_bits(tmax[q], emax[q]), "max: lanes %ld nk %ld lane %ld: %a, plain %a",
                          (long)lanes, (long)nk, (long)q, tmax[q], emax[q]);
                shift[q] = tmax[q] == -INFINITY ? 0.0f : tmax[q];
            }
            memcpy(E, S, sizeof(float) * (size_t)(nk * lanes));
            flash_exp_lanes(S, nk, lanes, shift, sum);
            for (int64_t q = 0; q < lanes; q++) {
                float acc = 0;
                for (int64_t j = 0; j < nk; j++) {
                    float p = attn_expf(E[j * lanes + q] - shift[q]);
                    acc += p;
                    cr_assert(same_bits(S[j * lanes + q], p), "exp: lanes %ld nk %ld P[%ld][%ld] = %a, plain %a",
                              (long)lanes, (long)nk, (long)j, (long)q, S[j * lanes + q], p);
                }
                esum[q] += acc;
                cr_assert(same_bits(sum[q], esum[q]), "row sum: lanes %ld nk %ld lane %ld: %a, plain %a",
                          (long)lanes, (long)nk, (long)q, sum[q], esum[q]);
            }
        }
    attn_free(S), attn_free(E), attn_free(tmax), attn_free(shift), attn_free(sum), attn_free(lo), attn_free(hi);
}
