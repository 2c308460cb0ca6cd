/* The set of job ids `sweep --resume` and merge look rows up in (csvw.h). */
#include "csvw.h"

#include "common/attn_error.h"

#include <stdlib.h>
#include <string.h>

int csvw_is_job_id(const char *s)
{
    for (int i = 0; i < 16; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return s[16] == '\0';
}

void csvw_idset_init(csvw_idset *s) { memset(s, 0, sizeof *s); }

void csvw_idset_free(csvw_idset *s)
{
    free(s->keys);
    free(s->used);
    memset(s, 0, sizeof *s);
}

static int parse_id(const char *id, uint64_t *out)
{
    if (!csvw_is_job_id(id))
        return ATTN_EINVAL;
    *out = strtoull(id, NULL, 16);
    return 0;
}

/* Linear probing; the splitmix64 finalizer spreads ids that are not hashes. */
static size_t slot_of(const csvw_idset *s, uint64_t k)
{
    uint64_t h = k;
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebull;
    h ^= h >> 31;
    size_t i = (size_t)h & (s->cap - 1);
    while (s->used[i] && s->keys[i] != k)
        i = (i + 1) & (s->cap - 1);
    return i;
}

static int grow(csvw_idset *s)
{
    csvw_idset g = {0};
    g.cap = s->cap ? 2 * s->cap : 64;
    g.keys = malloc(g.cap * sizeof *g.keys);
    g.used = calloc(g.cap, 1);
    if (!g.keys || !g.used) {
        free(g.keys);
        free(g.used);
        return attn_fail(ATTN_ENOMEM, "job id set: cannot grow to %zu entries", g.cap);
    }
    for (size_t i = 0; i < s->cap; i++)
        if (s->used[i]) {
            size_t j = slot_of(&g, s->keys[i]);
            g.used[j] = 1;
            g.keys[j] = s->keys[i];
        }
    g.n = s->n;
    csvw_idset_free(s);
    *s = g;
    return 0;
}

int csvw_idset_add(csvw_idset *s, const char *job_id)
{
    uint64_t k;
    if (parse_id(job_id, &k))
        return attn_fail(ATTN_EINVAL, "job_id: expected 16 lowercase hex digits, found '%s'", job_id);
    if (2 * (s->n + 1) > s->cap) {
        int rc = grow(s);
        if (rc)
            return rc;
    }
    size_t i = slot_of(s, k);
    if (s->used[i])
        return 0;
    s->used[i] = 1;
    s->keys[i] = k;
    s->n++;
    return 1;
}

int csvw_idset_contains(const csvw_idset *s, const char *job_id)
{
    uint64_t k;
    if (s->cap == 0 || parse_id(job_id, &k))
        return 0;
    return s->used[slot_of(s, k)];
}
