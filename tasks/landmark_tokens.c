/* Landmark tokens in the data (task.h "Landmark tokens"): Landmark Attention
 * (Mohtashami & Jaggi 2023, arXiv 2305.16300, Sec. 3) only works when a
 * landmark token sits at the last position of every block; the kernel
 * designates the positions b*l + l - 1, the data must carry the token. The
 * reference code (epfml/landmark-attention, data/utils.py add_mem_tokens)
 * appends `mem_id` after every `freq` data tokens, freq = l - 1. Unlike the
 * reference, which trains the landmark on plain next-token targets, the
 * landmark's target here is TASK_IGNORE and each data token keeps the target
 * its task gave it (what to emit after reading it), so the task's scored
 * positions and accuracy stay those of the task. */
#include "task.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int64_t task_landmark_seq_len(int64_t n, int64_t l) { return l ? n + n / (l - 1) : n; }

/* Of seq_len = n + floor(n / (l - 1)) positions, floor(seq_len / l) are
 * landmarks: the last (partial) block holds n mod (l - 1) < l - 1 data
 * tokens and so no landmark position. */
int64_t task_landmark_data_len(int64_t seq_len, int64_t l) { return l ? seq_len - seq_len / l : seq_len; }

/* The range "0, or 2..max" is not one interval: task_landmark_param checks it. */
const opt_def task_landmark_opt = {.name = "landmark", .type = OPT_INT, .def = 0, .lo = 0, .hi = TASK_LANDMARK_MAX,
                                   .help = "0 (off) or l >= 2: a landmark token every l-th position"};

int64_t task_landmark_param(const param_bag *p, int *rc)
{
    const char *s = param_bag_get(p, "landmark");
    if (!s)
        return 0;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*s == '\0' || *end != '\0' || errno || v < 0 || v == 1 || v > TASK_LANDMARK_MAX) {
        *rc = attn_fail(ATTN_EINVAL,
                        "task param landmark: expected 0 (off) or a block length in [2, %d] (a landmark token "
                        "every l-th position), found '%s'",
                        TASK_LANDMARK_MAX, s);
        return 0;
    }
    return v;
}

/* One row: src [len] -> dst [seq]; landmark positions get (id, ignore),
 * the others the next source cell (token and target alike). */
static void spread_row(const int32_t *src, int32_t *dst, int64_t seq, int64_t l, int32_t landmark)
{
    for (int64_t p = 0, j = 0; p < seq; p++)
        dst[p] = p % l == l - 1 ? landmark : src[j++];
}

int task_landmark_insert(task_data *d, int64_t l)
{
    if (d->kind != TASK_LM)
        return attn_fail(ATTN_EINVAL,
                         "task %s: landmark=%lld: expected a language-model task (recall, niah suites), found a "
                         "%s task",
                         d->name, (long long)l, d->kind == TASK_PAIR ? "pair" : "classification");
    if (l < 2 || l > TASK_LANDMARK_MAX)
        return attn_fail(ATTN_EINVAL, "task %s: landmark: expected a block length in [2, %d], found %lld", d->name,
                         TASK_LANDMARK_MAX, (long long)l);
    if (d->vocab >= INT32_MAX)
        return attn_fail(ATTN_EINVAL, "task %s: landmark: no token id left above vocab %d", d->name, d->vocab);
    int64_t seq = task_landmark_seq_len(d->len, l);
    size_t cells = (size_t)(d->n * seq);
    int32_t *tok = malloc(cells * sizeof *tok), *tgt = malloc(cells * sizeof *tgt);
    char meta[sizeof d->meta];
    int mlen = snprintf(meta, sizeof meta, "%s%slandmark=%lld", d->meta, d->meta[0] ? ";" : "", (long long)l);
    int rc = !tok || !tgt ? attn_fail(ATTN_ENOMEM, "task %s: landmark: cannot allocate %lld x %lld tokens", d->name,
                                      (long long)d->n, (long long)seq)
             : mlen < 0 || (size_t)mlen >= sizeof meta
                 ? attn_fail(ATTN_EINVAL, "task %s: landmark: meta '%s' too long to add landmark=%lld", d->name,
                             d->meta, (long long)l)
                 : 0;
    if (rc) {
        free(tok), free(tgt);
        return rc;
    }
    for (int64_t i = 0; i < d->n; i++) {
        spread_row(task_tokens(d, i), tok + i * seq, seq, l, d->vocab);
        spread_row(task_targets(d, i), tgt + i * seq, seq, l, TASK_IGNORE);
        d->lengths[i] = (int32_t)task_landmark_seq_len(d->lengths[i], l);
    }
    free(d->tokens), free(d->targets);
    d->tokens = tok, d->targets = tgt, d->len = seq, d->landmark_l = (int32_t)l, d->vocab++;
    memcpy(d->meta, meta, sizeof meta);
    return 0;
}

int task_landmark_make(const task_def *base, int is_lm, const param_bag *params, task_split split, uint64_t seed,
                       int64_t n, const char *data_dir, task_data *out)
{
    int rc = 0;
    int64_t l = task_landmark_param(params, &rc);
    if (rc)
        return rc;
    if (l && !is_lm)
        return attn_fail(ATTN_EINVAL,
                         "task %s: landmark=%lld: landmark tokens apply to language-model tasks (recall, niah "
                         "suites) only; %s (suite %s) is a classification or pair task",
                         base->name, (long long)l, base->name, base->suite);
    param_bag rest = {.n = 0}; /* the task's own parameters: its generator rejects unknown keys */
    for (int i = 0; i < params->n; i++)
        if (strcmp(params->key[i], "landmark") != 0) {
            memcpy(rest.key[rest.n], params->key[i], sizeof rest.key[0]);
            memcpy(rest.val[rest.n++], params->val[i], sizeof rest.val[0]);
        }
    if ((rc = base->make(&rest, split, seed, n, data_dir, out)) || !l)
        return rc;
    if ((rc = task_landmark_insert(out, l)))
        task_data_free(out);
    return rc;
}
