/* The fuzz targets (fuzz/targets/<name>.c, each defining fuzz_<name>): the
 * list the regression test replays (tests/test_fuzz_regressions.c). A new
 * target adds its line here; CMake builds one fuzzer per file. */
#ifndef ATTN_FUZZ_TARGETS_H
#define ATTN_FUZZ_TARGETS_H

#include "fuzz_io.h"

#define FUZZ_TARGETS(X)                                                                                           \
    X(config)                                                                                                     \
    X(mask)                                                                                                       \
    X(kernel_params)                                                                                              \
    X(task_params)                                                                                                \
    X(results_csv)                                                                                                \
    X(listops_tsv)                                                                                                \
    X(aan_tsv)                                                                                                    \
    X(idx)                                                                                                        \
    X(cifar)                                                                                                      \
    X(png)                                                                                                        \
    X(pathfinder_meta)                                                                                            \
    X(checkpoint)

#define FUZZ_DECLARE(name) int fuzz_##name(const uint8_t *data, size_t n);
FUZZ_TARGETS(FUZZ_DECLARE)
#undef FUZZ_DECLARE

#endif
