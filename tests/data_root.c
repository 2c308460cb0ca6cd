#include "data_root.h"

#include "tasks/lra_text.h"

#include <stdlib.h>

const char *test_data_root(int (*has)(const char *root))
{
    const char *env = getenv("ATTN_DATA_DIR");
    const char *const roots[2] = {env && *env ? env : NULL, ATTN_SOURCE_DIR "/data"};
    for (int i = 0; i < 2; i++)
        if (roots[i] && has(roots[i]))
            return roots[i];
    return NULL;
}

const char *test_data_roots_text(void) { return "$ATTN_DATA_DIR or " ATTN_SOURCE_DIR "/data"; }

int test_has_spam_corpus(const char *root)
{
    char dir[1200];
    return spam_corpus_find(root, dir, sizeof dir) == 0;
}
