#include "alloc.h"

#include <stdlib.h>

void *attn_alloc(size_t bytes)
{
    size_t n = (bytes + 63) / 64 * 64;
    return aligned_alloc(64, n ? n : 64);
}

void attn_free(void *p) { free(p); }
