/* `retrieval` parameters, the key ranges of a row and the index stages a
 * problem needs (retrieval_internal.h). */
#include "retrieval.h"

#include <math.h>
#include <string.h>

enum { RET_IVF };
static const char *const ret_indexes[] = {"ivf", NULL};
enum { RET_BUILD_EACH, RET_BUILD_ONCE };
static const char *const ret_builds[] = {"each", "once", NULL};

const opt_def attn_retrieval_params[] = {
    {.name = "n_sink", .type = OPT_INT, .def = 4, .lo = 0, .hi = 1 << 30,
     .help = "static set: the first n_sink positions"},
    {.name = "w", .type = OPT_INT, .def = 508, .lo = 0, .hi = 1 << 30,
     .help = "static set: the w most recent positions, the query's own included"},
    {.name = "r", .type = OPT_INT, .def = 100, .lo = 0, .hi = 1 << 30,
     .help = "keys retrieved per query head from the index (0: static set only)"},
    {.name = "index", .type = OPT_ENUM, .names = ret_indexes, .def = RET_IVF,
     .help = "ivf: k-means lists ranked by <q, mu> + |q| radius"},
    {.name = "nlist", .type = OPT_INT, .def = 0, .lo = 0, .hi = 1 << 24,
     .help = "lists per index stage; 0 = round(sqrt(n)) for n indexed keys"},
    {.name = "nprobe", .type = OPT_INT, .def = 0, .lo = 0, .hi = 1 << 24,
     .help = "lists scanned per query head; 0 = max(1, round(nlist/16))"},
    {.name = "exact", .type = OPT_BOOL, .def = 0,
     .help = "1: scan lists until the bound falls below the r-th score (exact top r)"},
    {.name = "iters", .type = OPT_INT, .def = 10, .lo = 0, .hi = 1000, .help = "Lloyd rounds of the k-means"},
    {.name = "train", .type = OPT_INT, .def = 64, .lo = 0, .hi = 1 << 20,
     .help = "k-means training keys per list (a seeded sample); 0 = every indexed key"},
    {.name = "min_index", .type = OPT_INT, .def = 1024, .lo = 1, .hi = 1 << 30,
     .help = "fewest index keys worth an index; below, the keys are searched exhaustively"},
    {.name = "seed", .type = OPT_UINT, .def = 1, .lo = 0, .hi = (double)INT64_MAX, .flags = OPT_RECORDED,
     .help = "seed of the k-means training sample and initial centroids"},
    {.name = "build", .type = OPT_ENUM, .names = ret_builds, .def = RET_BUILD_EACH,
     .help = "each: every forward builds its index; once: kept for later forwards on the same K (decode steps)"},
    {0},
};

ret_row ret_row_of(const ret_plan *pl, const attn_args *a, int64_t i)
{
    ret_row r;
    int64_t last = a->Nk - 1, own = a->q_off + i - a->k_off;
    r.hj = pl->causal && own < last ? own : last;
    int64_t ns = pl->ns, end = r.hj + 1;
    r.sink_end = ns < end ? ns : end < 0 ? 0 : end;
    r.win_lo = end - pl->w > ns ? end - pl->w : ns;
    r.idx_lo = ns;
    r.s = r.hj < 0 || r.win_lo < ns ? 0 : r.win_lo - ns;
    if (r.win_lo > end) /* the sinks reach past the row's keys */
        r.win_lo = end;
    return r;
}

int ret_stage_of(const ret_plan *pl, int64_t s)
{
    int t = -1;
    for (int u = 0; u < pl->n_stages && pl->st[u].size <= s; u++)
        t = u;
    return t;
}

/* Stage t of size S: its lists, probes and training sample. */
static void ret_stage_shape(ret_plan *pl, ret_stage *st, int64_t S, int64_t M)
{
    st->size = S, st->members = M;
    st->nlist = pl->nlist > 0 ? pl->nlist : (int64_t)llround(sqrt((double)S));
    st->nlist = st->nlist < 1 ? 1 : st->nlist > S ? S : st->nlist;
    st->nprobe = pl->nprobe > 0 ? pl->nprobe : (int64_t)llround((double)st->nlist / 16.0);
    st->nprobe = st->nprobe < 1 ? 1 : st->nprobe > st->nlist ? st->nlist : st->nprobe;
    st->train = pl->train > 0 && pl->train * st->nlist < S ? pl->train * st->nlist : S;
}

/* Stages from the index sizes of the first row that has index keys and of
 * the last row (s grows with the row). */
static int ret_stages(ret_plan *pl, const attn_args *a)
{
    int64_t s_first = 0, s_last = a->Nq > 0 ? ret_row_of(pl, a, a->Nq - 1).s : 0;
    for (int64_t i = 0; i < a->Nq && s_first == 0; i++)
        s_first = ret_row_of(pl, a, i).s;
    pl->S0 = s_first > pl->min_index ? s_first : pl->min_index;
    pl->n_stages = 0;
    if (pl->r == 0) /* nothing is ever retrieved */
        return 0;
    size_t off = 0;
    for (int64_t S = pl->S0; S <= s_last; S *= 2) {
        if (pl->n_stages == RET_MAX_STAGES)
            return attn_fail(ATTN_EINVAL, "kernel 'retrieval': more than %d index stages (min_index=%lld, %lld keys)",
                             RET_MAX_STAGES, (long long)pl->min_index, (long long)s_last);
        ret_stage *st = &pl->st[pl->n_stages++];
        int64_t M = 2 * S - 1 < s_last ? 2 * S - 1 : s_last;
        ret_stage_shape(pl, st, S, M);
        st->off = off;
        off += ret_stage_floats(st->nlist, M, pl->D);
        pl->nlist_max = st->nlist > pl->nlist_max ? st->nlist : pl->nlist_max;
        pl->members_max = M > pl->members_max ? M : pl->members_max;
        pl->train_max = st->train > pl->train_max ? st->train : pl->train_max;
    }
    pl->slot_floats = RET_ROUND16(off);
    return 0;
}

/* Per-thread floats of the search and attention of one row and KV group
 * (ret_search_ws, retrieval_fwd.c). */
static size_t ret_search_floats(const ret_plan *pl)
{
    int64_t G = pl->G, nl = pl->nlist_max, hits = pl->hits_max + 1;
    return (size_t)(G * 4 * RET_ROUND16(nl) /* ranked lists per head: bound (double) and list */ + RET_ROUND16(nl) /* counts */ +
                    RET_ROUND16(G * nl) /* chosen lists (bytes) */ + G * 4 * RET_ROUND16(hits) /* hits */ +
                    RET_ROUND16(G * pl->static_max) /* static scores */ + G * RET_ROUND16(hits) /* weights */ +
                    2 * RET_ROUND16(G * pl->D) /* Q and O rows of the group */);
}

int ret_plan_make(ret_plan *pl, const attn_args *a)
{
    const opt_def *P = attn_retrieval_params;
    int rc = attn_params_check(a, "retrieval", P);
    if (rc)
        return rc;
    memset(pl, 0, sizeof *pl);
    pl->n_sink = attn_param_int(a, P, "n_sink", &rc);
    pl->w = attn_param_int(a, P, "w", &rc);
    pl->r = attn_param_int(a, P, "r", &rc);
    (void)attn_param_enum(a, P, "index", &rc);
    pl->nlist = attn_param_int(a, P, "nlist", &rc);
    pl->nprobe = attn_param_int(a, P, "nprobe", &rc);
    pl->exact = (int)attn_param_int(a, P, "exact", &rc);
    pl->iters = attn_param_int(a, P, "iters", &rc);
    pl->train = attn_param_int(a, P, "train", &rc);
    pl->min_index = attn_param_int(a, P, "min_index", &rc);
    pl->seed = (uint64_t)attn_param_int(a, P, "seed", &rc);
    pl->once = attn_param_enum(a, P, "build", &rc) == RET_BUILD_ONCE;
    if (rc)
        return rc;
    if (a->Dv != 0 && a->Dv != a->D)
        return attn_fail(ATTN_EUNSUPPORTED, "kernel 'retrieval': expected Dv = D, found Dv %lld, D %lld",
                         (long long)a->Dv, (long long)a->D);
    pl->causal = a->mask.kind == ATTN_MASK_CAUSAL || a->mask.causal;
    pl->G = a->H / a->H_kv, pl->D = a->D;
    int64_t ns = pl->n_sink - a->k_off;
    pl->ns = ns < 0 ? 0 : ns > a->Nk ? a->Nk : ns;
    pl->static_max = pl->ns + (pl->w < a->Nk ? pl->w : a->Nk);
    if ((rc = ret_stages(pl, a)) != 0)
        return rc;
    int64_t s_max = a->Nq > 0 ? ret_row_of(pl, a, a->Nq - 1).s : 0;
    pl->hits_max = pl->r < s_max ? pl->r : s_max;
    size_t build = pl->n_stages ? ret_build_scratch_floats(pl) : 0, search = ret_search_floats(pl);
    pl->thread_floats = RET_ROUND16(build > search ? build : search);
    return 0;
}
