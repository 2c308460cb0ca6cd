/* Stable counting sort of rows by a small integer key, shared by the
 * content-routed kernels that sort rows by hash bucket (reformer, hyper):
 * O(n + keys), rows of one key kept in ascending position, so a kernel and
 * a reference that sorts on (key, position) agree. */
#ifndef ATTN_COUNTING_SORT_H
#define ATTN_COUNTING_SORT_H

#include <stdint.h>
#include <string.h>

/* Rows [0, n) with key[i] in [0, nkeys): order[slot] = base + row and, when
 * rank is not NULL, rank[row] = slot. count: nkeys + 1 ints of scratch. */
static inline void attn_counting_sort(const int32_t *key, int64_t n, int64_t nkeys, int64_t base, int32_t *order,
                                      int32_t *rank, int32_t *count)
{
    memset(count, 0, sizeof(int32_t) * (size_t)(nkeys + 1));
    for (int64_t i = 0; i < n; i++)
        count[key[i] + 1]++;
    for (int64_t k = 0; k < nkeys; k++)
        count[k + 1] += count[k];
    for (int64_t i = 0; i < n; i++) { /* ascending rows: stable */
        int32_t slot = count[key[i]]++;
        order[slot] = (int32_t)(base + i);
        if (rank)
            rank[i] = slot;
    }
}

#endif
