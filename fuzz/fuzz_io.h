/* Helpers of the libFuzzer targets (docs/testing.md, "Fuzzing"): the loaders under test
 * read files from directories they expect to find, so a target writes the
 * fuzzer's bytes into a scratch directory first. */
#ifndef ATTN_FUZZ_IO_H
#define ATTN_FUZZ_IO_H

#include "common/attn_error.h"
#include "common/params.h"

#include <stddef.h>
#include <stdint.h>

/* A private scratch directory, created on first use (under $TMPDIR, else
 * /tmp) and removed with everything in it when the process exits. */
const char *fuzz_dir(void);

/* data[n] as a NUL-terminated string (malloc'ed; NULL when out of memory). */
char *fuzz_text(const uint8_t *data, size_t n);

/* "name:key=value,..." (kernel and task parameters as configs give them),
 * split in place: *name is the text before the first ':' (all of it when
 * there is none), and every comma-separated item goes through
 * param_bag_add into the zeroed bag; returns the first refusal's code. */
int fuzz_name_and_params(char *text, const char **name, param_bag *bag, const char *target);

/* Writes data[n] to fuzz_dir()/rel (parent directories are created) and
 * returns the full path in a static buffer; aborts when the scratch
 * directory cannot be written (the harness is broken, not the input). */
const char *fuzz_write(const char *rel, const uint8_t *data, size_t n);

/* Writes the repository file src (relative to the source tree; read once
 * per process) to fuzz_dir()/rel: the valid companions of a fuzzed file. */
void fuzz_copy_fixture(const char *rel, const char *src);

/* CRC-32 (IEEE 802.3, reflected 0xEDB88320): what PNG chunks and checkpoint
 * files carry, so a target can make a mutated input's checksum right and
 * reach the parser behind the check. */
uint32_t fuzz_crc32(const uint8_t *p, size_t n);

/* The library's error contract for any input: a refused input (rc < 0)
 * leaves one non-empty line; aborts otherwise, so the fuzzer reports it. */
void fuzz_check_error(int rc, const char *target);

/* One target: the library's result for the input (0 accepted, < 0 refused). */
typedef int (*fuzz_entry)(const uint8_t *data, size_t n);

#endif
