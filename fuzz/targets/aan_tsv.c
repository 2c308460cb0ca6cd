/* The official Retrieval (AAN) pair TSV (new_aan_pairs.test.tsv: label, id1,
 * id2, text1, text2 per line, no header), read by task retrieval with --data. */
#include "fuzz/fuzz_task.h"
#include "fuzz/fuzz_targets.h"

#include <stdio.h>

int fuzz_aan_tsv(const uint8_t *data, size_t n)
{
    fuzz_write("aan/new_aan_pairs.test.tsv", data, n);
    char dir[600];
    snprintf(dir, sizeof dir, "%s/aan", fuzz_dir());
    param_bag p = {0};
    param_bag_add_list(&p, "max_len=48");
    return fuzz_make_task("retrieval", &p, 1, dir);
}
