/* The cost model of ring and ulysses (cp_model.h): closed forms over a
 * link (latency, bandwidth) and flash's measured rate. */
#include "cp_model.h"

#include "common/attn_error.h"

#include <math.h>
#include <stdio.h>

const char *const cpm_kind_names[] = {"ring", "ulysses", NULL};
const char *const cpm_bound_names[] = {"compute", "bandwidth", "latency", NULL};

double cpm_rate(const cpm_machine *m, double rows)
{
    int n = m->n_rates;
    if (rows <= m->rows[0])
        return m->flops_per_s[0];
    for (int i = 1; i < n; i++)
        if (rows <= m->rows[i]) { /* linear in log(rows) between the two measured sizes */
            double f = log(rows / m->rows[i - 1]) / log(m->rows[i] / m->rows[i - 1]);
            return m->flops_per_s[i - 1] + f * (m->flops_per_s[i] - m->flops_per_s[i - 1]);
        }
    return m->flops_per_s[n - 1];
}

/* Allowed pairs of the whole problem. */
static double pairs(const cpm_problem *p)
{
    double N = (double)p->N;
    return p->causal ? N * (N + 1) / 2 : N * N;
}

double cpm_flops(const cpm_problem *p) { return 4.0 * (double)(p->B * p->H) * (double)p->D * pairs(p); }

double cpm_bytes_per_rank(const cpm_problem *p, int backward)
{
    double P = (double)p->P, n = (double)p->N / P, B = (double)p->B, D = (double)p->D, f = 4.0;
    if (p->kind == CPM_RING) {
        /* K and V of the rank's rows travel P-1 hops; backward adds dK, dV
         * over P hops (the last one home), none when alone */
        double kv = 2 * B * (double)p->H_kv * n * D * f;
        return !backward ? (P - 1) * kv : (P - 1) * kv + (P > 1 ? P * kv : 0);
    }
    /* ulysses: to each of the P-1 others, its share of the rank's rows: forward
     * Q, K, V out and O, lse back; backward Q, K, V, O, dO, lse out and dQ, dK, dV back */
    double hq = (double)(p->H / p->P), hkv = (double)(p->H_kv / p->P);
    double per = !backward ? D * (2 * hq + 2 * hkv) + hq : D * (4 * hq + 4 * hkv) + hq;
    return (P - 1) * B * n * per * f;
}

/* Whether the kernel splits the problem as kernels/cp does (why, if not). */
static int splits(const cpm_problem *p, char *why, size_t n)
{
    int64_t parts = p->kind == CPM_RING ? 2 * p->P : p->P;
    if (p->N % parts)
        return snprintf(why, n, "N=%lld does not split into %lld equal parts", (long long)p->N, (long long)parts), 0;
    if (p->kind == CPM_ULYSSES && (p->H % p->P || p->H_kv % p->P))
        return snprintf(why, n, "H=%lld and H_kv=%lld must be multiples of P", (long long)p->H, (long long)p->H_kv), 0;
    return 1;
}

/* What a communication-limited step is limited by. */
static cpm_bound comm_bound(const cpm_machine *m, double latency_s, double bytes)
{
    return latency_s > bytes / m->bandwidth_Bps ? CPM_LATENCY_BOUND : CPM_BANDWIDTH_BOUND;
}

static void predict_ring(const cpm_machine *m, const cpm_problem *p, cpm_prediction *o)
{
    double P = (double)p->P, step = o->one_rank_s / (P * P) * cpm_rate(m, (double)p->N) /
                                    cpm_rate(m, (double)p->N / (2 * P)); /* blocks of N/(2P) rows */
    double msg = o->bytes / (P > 1 ? P - 1 : 1), send = m->latency_s + msg / m->bandwidth_Bps;
    o->compute_s = P * step;
    o->comm_s = (P - 1) * send;
    o->exposed_s = (P - 1) * fmax(0, send - step);
    o->bound = send > step && P > 1 ? comm_bound(m, m->latency_s, msg) : CPM_COMPUTE_BOUND;
}

static void predict_ulysses(const cpm_machine *m, const cpm_problem *p, cpm_prediction *o)
{
    double P = (double)p->P, lat = 2 * (P - 1) * m->latency_s;
    o->compute_s = o->one_rank_s / P; /* whole sequences: the same block size as one rank */
    o->comm_s = o->exposed_s = lat + o->bytes / m->bandwidth_Bps;
    o->bound = o->comm_s > o->compute_s ? comm_bound(m, lat, o->bytes) : CPM_COMPUTE_BOUND;
}

int cpm_predict(const cpm_machine *m, const cpm_problem *p, cpm_prediction *o)
{
    *o = (cpm_prediction){.overlap = NAN, .efficiency = NAN, .time_s = NAN};
    if (m->n_rates < 1 || m->n_rates > CPM_RATES_MAX || !(m->latency_s >= 0) || !(m->bandwidth_Bps > 0))
        return attn_fail(ATTN_EINVAL, "cp model: expected 1..%d measured rates, latency >= 0 and bandwidth > 0, "
                         "found %d rates, latency %g s, bandwidth %g B/s", CPM_RATES_MAX, m->n_rates, m->latency_s,
                         m->bandwidth_Bps);
    for (int i = 0; i < m->n_rates; i++)
        if (!(m->flops_per_s[i] > 0) || !(m->rows[i] > 0) || (i && !(m->rows[i] > m->rows[i - 1])))
            return attn_fail(ATTN_EINVAL, "cp model: rate %d: expected increasing block rows and a positive rate, "
                             "found %g rows at %g FLOP/s", i, m->rows[i], m->flops_per_s[i]);
    if (p->B < 1 || p->H < 1 || p->H_kv < 1 || p->N < 1 || p->D < 1 || p->P < 1)
        return attn_fail(ATTN_EINVAL, "cp model: expected positive B, H, H_kv, N, D, P");
    if (!(o->feasible = splits(p, o->why, sizeof o->why)))
        return 0;
    o->one_rank_s = cpm_flops(p) / cpm_rate(m, (double)p->N);
    o->bytes = cpm_bytes_per_rank(p, 0);
    (p->kind == CPM_RING ? predict_ring : predict_ulysses)(m, p, o);
    o->time_s = o->compute_s + o->exposed_s;
    o->efficiency = o->one_rank_s / ((double)p->P * o->time_s);
    if (o->comm_s > 0)
        o->overlap = 1 - o->exposed_s / o->comm_s;
    return 0;
}

int cpm_fit_link(const double *bytes, const double *seconds, int n, double *latency_s, double *bandwidth_Bps)
{
    double S = 0, Sx = 0, Sy = 0, Sxx = 0, Sxy = 0;
    for (int i = 0; i < n; i++) {
        if (!(seconds[i] > 0))
            return attn_fail(ATTN_EINVAL, "link fit: time %d is %g s, expected a positive time", i, seconds[i]);
        double w = 1 / (seconds[i] * seconds[i]), x = bytes[i], y = seconds[i];
        S += w, Sx += w * x, Sy += w * y, Sxx += w * x * x, Sxy += w * x * y;
    }
    double det = S * Sxx - Sx * Sx;
    if (n < 2 || !(det > 0))
        return attn_fail(ATTN_EINVAL, "link fit: expected times at 2 or more message sizes, found %d", n);
    double slope = (S * Sxy - Sx * Sy) / det;
    if (!(slope > 0))
        return attn_fail(ATTN_EINVAL, "link fit: time does not grow with message size (slope %g s/B)", slope);
    *bandwidth_Bps = 1 / slope;
    *latency_s = fmax(0, (Sy - slope * Sx) / S);
    return 0;
}
