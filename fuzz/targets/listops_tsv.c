/* The official ListOps TSV (basic_test.tsv: a Source/Target header, then an
 * expression and its value per line), read by task listops with --data. */
#include "fuzz/fuzz_task.h"
#include "fuzz/fuzz_targets.h"

#include <stdio.h>

int fuzz_listops_tsv(const uint8_t *data, size_t n)
{
    fuzz_write("listops/basic_test.tsv", data, n);
    char dir[600];
    snprintf(dir, sizeof dir, "%s/listops", fuzz_dir());
    param_bag p = {0};
    param_bag_add_list(&p, "min_len=1 max_len=48"); /* short rows: truncation is exercised too */
    return fuzz_make_task("listops", &p, 1, dir);
}
