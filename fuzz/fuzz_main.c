/* libFuzzer's entry point for one target; CMake compiles this file once per
 * fuzz/targets/<name>.c with -DFUZZ_ENTRY=fuzz_<name>. */
#include "fuzz_targets.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
    (void)FUZZ_ENTRY(data, n); /* refusals are expected; crashes and aborts are the findings */
    return 0;
}
