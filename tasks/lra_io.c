/* File and sampling helpers shared by the LRA loaders. */
#include "lra.h"

#include "common/rng.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *lra_data_root(void)
{
    const char *d = getenv("ATTN_DATA_DIR");
    return d && *d ? d : "data";
}

int lra_read_file(const char *path, size_t max_bytes, unsigned char **buf, size_t *len)
{
    *buf = NULL, *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return attn_fail(ATTN_EIO, "%s: cannot open (%s)", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    unsigned char *b = malloc(cap);
    while (b) {
        if (n == cap) {
            if (cap >= max_bytes) {
                free(b), fclose(f);
                return attn_fail(ATTN_EINVAL, "%s: larger than the %zu bytes expected of it", path, max_bytes);
            }
            cap *= 2;
            unsigned char *nb = realloc(b, cap);
            if (!nb) {
                free(b), b = NULL;
                break;
            }
            b = nb;
        }
        size_t got = fread(b + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    int err = ferror(f);
    fclose(f);
    if (!b)
        return attn_fail(ATTN_ENOMEM, "%s: out of memory reading it", path);
    if (err) {
        free(b);
        return attn_fail(ATTN_EIO, "%s: read error", path);
    }
    *buf = b, *len = n;
    return 0;
}

int lra_pick(uint64_t seed, uint64_t tag, int64_t total, int64_t n, int64_t **idx)
{
    *idx = malloc((size_t)(total > 0 ? total : 1) * sizeof **idx);
    if (!*idx)
        return attn_fail(ATTN_ENOMEM, "out of memory choosing %lld of %lld examples", (long long)n, (long long)total);
    for (int64_t i = 0; i < total; i++)
        (*idx)[i] = i;
    attn_rng r;
    attn_rng_seed_item(&r, seed, tag, 0);
    for (int64_t i = 0; i < n && i < total; i++) { /* partial Fisher-Yates: the first n */
        int64_t j = i + (int64_t)attn_rng_uint_below(&r, (uint64_t)(total - i)), t = (*idx)[i];
        (*idx)[i] = (*idx)[j], (*idx)[j] = t;
    }
    return 0;
}
