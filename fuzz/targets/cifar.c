/* A CIFAR-10 binary batch (test_batch.bin: records of a label byte and
 * 3 x 1024 colour bytes), read by task image with --data. */
#include "fuzz/fuzz_task.h"
#include "fuzz/fuzz_targets.h"

#include <stdio.h>

int fuzz_cifar(const uint8_t *data, size_t n)
{
    fuzz_write("cifar/cifar-10-batches-bin/test_batch.bin", data, n);
    char dir[600];
    snprintf(dir, sizeof dir, "%s/cifar", fuzz_dir());
    param_bag p = {0};
    return fuzz_make_task("image", &p, 1, dir);
}
