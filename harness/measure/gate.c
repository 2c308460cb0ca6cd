#include "gate.h"

#include "head_view.h"

#include <math.h>
#include <stdlib.h>

static double worse(double err, double e) { return e <= err ? err : isnan(e) ? INFINITY : e; }

/* Softmax kernels against the oracle; own-reference kernels only collect the
 * softmax fidelity here (their error comes from ref_gate). A kernel that
 * read a stored KV cache (args.kv_dtype) is checked against the oracle on
 * the values it read (the cache dequantized by the plain loop), and its
 * distance from the oracle on the unrounded K and V is its fidelity; so is a
 * kernel on 16-bit operands (io holds their values as floats, exact the
 * unrounded Q, K and V). */
static void sampled_rows(const attn_kernel *kern, const attn_args *a, const attn_io *io, const attn_io *exact,
                         gate_result *r)
{
    int own = kern && kern->ref_forward, one_query = kern && (kern->flags & ATTN_ONE_QUERY);
    int stored = a->kv_dtype != ATTN_KV_FP32 && io->kc.data, rounded = stored || exact;
    const attn_io *u = exact ? exact : io; /* the unrounded inputs */
    int64_t G = a->H / a->H_kv, Dv = attn_dv(a);
    double diff2 = 0, ref2 = 0, *orow = malloc(sizeof(double) * 2 * (size_t)Dv), *urow = orow + Dv;
    FOR_SAMPLED_HEADS(a, b, h) {
        if (one_query)
            break; /* one learned query: no softmax rows to compare with */
        attn_tensor_f64 k = head_widen(&u->k, b, h / G, 0, a->Nk), v = head_widen(&u->v, b, h / G, 0, a->Nk);
        attn_tensor_f64 kr = k, vr = v; /* what the kernel read */
        if (stored)
            kr = head_widen_cache(&io->kc, b, h / G, 0, a->Nk), vr = head_widen_cache(&io->vc, b, h / G, 0, a->Nk);
        else if (exact)
            kr = head_widen(&io->k, b, h / G, 0, a->Nk), vr = head_widen(&io->v, b, h / G, 0, a->Nk);
        double vmax = 0;
        for (int64_t n = 0; n < a->Nk * Dv; n++)
            vmax = fmax(vmax, fabs(vr.data[n]));
        int64_t rows[3] = {0, a->Nq / 2, a->Nq - 1};
        for (int s = 0; s < 3; s++) {
            double lse = head_oracle_row(a, io, &kr, &vr, b, h, rows[s], orow), err = 0;
            if (rounded)
                head_oracle_row(a, u, &k, &v, b, h, rows[s], urow);
            const double *unrounded = rounded ? urow : orow;
            const float *got = attn_at(&io->o, b, h, rows[s]);
            for (int64_t d = 0; d < Dv; d++) {
                diff2 += (got[d] - unrounded[d]) * (got[d] - unrounded[d]);
                ref2 += unrounded[d] * unrounded[d];
                err = worse(err, fabs((double)got[d] - orow[d]) / (vmax > 0 ? vmax : 1));
            }
            if (own)
                continue;
            double got_lse = io->lse[(b * a->H + h) * a->Nq + rows[s]];
            if (isinf(lse) || isinf(got_lse))
                err = lse == got_lse ? err : INFINITY;
            else
                err = fmax(err, fabs(got_lse - lse) / (1 + fabs(lse)) * 2); /* lse tol is half O's */
            r->err = worse(r->err, err);
        }
        if (rounded) {
            free(kr.data);
            free(vr.data);
        }
        free(k.data);
        free(v.data);
    }
    free(orow);
    r->softmax_rel = (own || rounded) && ref2 > 0 ? sqrt(diff2 / ref2) : NAN;
}

/* Rows whose output depends on keys before them only: a prefix of the
 * sequence is a complete problem of its own (not for a routed kernel, whose
 * chunks are cut over the whole sequence, nor a ranked one, whose rows
 * compete with every other row). */
static int64_t ref_prefix(const attn_kernel *k, const attn_args *a)
{
    int causal = a->mask.kind == ATTN_MASK_CAUSAL || (a->mask.kind == ATTN_MASK_FULL && a->mask.causal);
    int64_t L = a->Nk;
    if ((causal || (k->flags & ATTN_ONE_QUERY)) && !(k->flags & (ATTN_ROUTED | ATTN_RANKED)) && a->Nq == a->Nk && L > 2048)
        L = 2048;
    return L;
}

/* Own-reference kernels: the kernel's double reference on each sampled head,
 * over a prefix when the mask allows (a padded batch: over the sequence's
 * own rows, the rows after it must be 0), against the kernel's rows. Some kernels
 * depend on the head index and count (RetNet's and Lightning's per-head
 * decay schedules), so the reference runs with the problem's H and H_kv,
 * every head a view of head h's data (the answer is head h). A group-local
 * kernel (ATTN_GROUP_LOCAL) runs on h's GQA group alone: H / H_kv heads,
 * one KV head, the answer is head h's place in the group. */
static void ref_gate(const attn_kernel *k, const attn_args *a, const attn_io *io, gate_result *r)
{
    int64_t Dv = attn_dv(a);
    FOR_SAMPLED_HEADS(a, b, h) {
        int64_t L = ref_prefix(k, a), pad_from = a->Nq;
        if (a->seq_len) /* self-attention: the sequence is its first seq_len[b] rows */
            L = L < a->seq_len[b] ? L : a->seq_len[b], pad_from = a->seq_len[b];
        int64_t nq = k->flags & ATTN_ONE_QUERY ? 1 : a->Nq - (a->Nk - L), no = k->flags & ATTN_ONE_QUERY ? L : nq;
        if (a->seq_len)
            nq = no = L;
        double pad_err = 0; /* largest |O| on the padded rows */
        for (int64_t n = pad_from; n < a->Nq; n++)
            for (int64_t d = 0; d < Dv; d++)
                pad_err = worse(pad_err, fabs((double)attn_at(&io->o, b, h, n)[d]));
        if (L == 0) {
            r->err = worse(r->err, pad_err);
            continue;
        }
        attn_args one = *a;
        int64_t G = a->H / a->H_kv, hr = k->flags & ATTN_GROUP_LOCAL ? h % G : h;
        one.B = 1, one.Nk = L, one.Nq = nq, one.kv_len = NULL, one.seq_len = NULL;
        one.q_off = one.k_off = 0;
        if (k->flags & ATTN_GROUP_LOCAL)
            one.H = G, one.H_kv = 1;
        attn_args_defaults(&one);
        if (L < a->Nk && k->ref_prefix_args)
            k->ref_prefix_args(a, b, &one);
        attn_io64 x;
        head_io64(&one, io, b, h, no, &x);
        double err = 0, omax = 0;
        if (k->ref_forward(&one, &x) != 0)
            err = INFINITY;
        const double *oh = x.o.data + hr * no * Dv;
        for (int64_t n = 0; n < no * Dv; n++)
            omax = fmax(omax, fabs(oh[n]));
        for (int64_t n = 0; n < no; n++)
            for (int64_t d = 0; d < Dv; d++)
                err = worse(err, fabs((double)attn_at(&io->o, b, h, n)[d] - oh[n * Dv + d]));
        r->err = worse(r->err, omax > 0 ? fmax(err, pad_err) / omax : fmax(err, pad_err));
        head_io64_free(&x);
    }
}

void gate_check(const attn_kernel *k, const attn_args *a, const attn_io *io, const attn_io *exact, gate_result *r)
{
    double grow = fmax(1.0, sqrt((double)a->Nk / 4096.0));
    r->err = 0;
    r->softmax_rel = NAN;
    /* 10x the test tolerances (docs/kernel-interface.md): a gate catches broken
     * kernels, the tests hold the tight bounds. */
    r->tol = 10 * (k && k->ref_forward ? 5e-5 : 2e-5) * grow;
    /* 16-bit operands: O is rounded once on the way out, |O| <= max|V| */
    if (a->dtype != ATTN_DT_FP32)
        r->tol += attn_dtype_unit_roundoff(a->dtype);
    if (k && k->ref_forward)
        ref_gate(k, a, io, r);
    sampled_rows(k, a, io, exact, r);
}
