/* Fashion-MNIST IDX files (the Image task's stand-in): the first byte picks
 * which of the two files the rest of the input is (even: the images, odd:
 * the labels); the other one is the valid fixture of tests/data. */
#include "fuzz/fuzz_task.h"
#include "fuzz/fuzz_targets.h"

#include <stdio.h>

#define FIXTURE "tests/data/lra/fashion_ok/fashion-mnist/"

int fuzz_idx(const uint8_t *data, size_t n)
{
    if (n == 0)
        return 0;
    int labels = data[0] & 1;
    if (labels) {
        fuzz_copy_fixture("idx/fashion-mnist/t10k-images-idx3-ubyte", FIXTURE "t10k-images-idx3-ubyte");
        fuzz_write("idx/fashion-mnist/t10k-labels-idx1-ubyte", data + 1, n - 1);
    } else {
        fuzz_copy_fixture("idx/fashion-mnist/t10k-labels-idx1-ubyte", FIXTURE "t10k-labels-idx1-ubyte");
        fuzz_write("idx/fashion-mnist/t10k-images-idx3-ubyte", data + 1, n - 1);
    }
    char dir[600];
    snprintf(dir, sizeof dir, "%s/idx", fuzz_dir());
    param_bag p = {0};
    return fuzz_make_task("image", &p, 1, dir);
}
