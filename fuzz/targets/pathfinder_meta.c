/* Pathfinder metadata (metadata/<k>.npy of the release: one "dir file _
 * label ..." line per image), read by task pathfinder with --data; the
 * images it may name are the valid fixtures of tests/data (imgs/2 and
 * imgs/10, three each). */
#include "fuzz/fuzz_task.h"
#include "fuzz/fuzz_targets.h"

#include <stdio.h>

#define TREE "pf/pathfinder32/curv_contour_length_14/"
#define FIXTURE "tests/data/lra/pathfinder/official/pathfinder32/curv_contour_length_14/"

int fuzz_pathfinder_meta(const uint8_t *data, size_t n)
{
    static const char *const images[] = {"imgs/2/sample_0.png",  "imgs/2/sample_1.png",  "imgs/2/sample_2.png",
                                         "imgs/10/sample_0.png", "imgs/10/sample_1.png", "imgs/10/sample_2.png"};
    static int ready;
    for (int i = 0; !ready && i < 6; i++) {
        char rel[256], src[256];
        snprintf(rel, sizeof rel, TREE "%s", images[i]);
        snprintf(src, sizeof src, FIXTURE "%s", images[i]);
        fuzz_copy_fixture(rel, src);
    }
    ready = 1;
    fuzz_write(TREE "metadata/0.npy", data, n);
    char dir[600];
    snprintf(dir, sizeof dir, "%s/pf", fuzz_dir());
    param_bag p = {0};
    return fuzz_make_task("pathfinder", &p, 1, dir);
}
