/* The bad-input catalogue: one row per bad input, across every command.
 * The rule each row is held to (tests/test_bad_input.c): exit code 2, the
 * last line on stderr names what was wrong (the row's `expect`: a file:line,
 * a JSON path, a field or an option), and no result file that existed
 * before changed. */
#ifndef ATTN_TESTS_BAD_INPUT_H
#define ATTN_TESTS_BAD_INPUT_H

#include <stddef.h>

enum {
    BAD_READ_ONLY_RESULTS = 1u << 0, /* the seeded results directory and its files are not writable */
    BAD_FULL_DISK = 1u << 1,         /* RLIMIT_FSIZE of 1 KiB, SIGXFSZ ignored: every write past it fails */
};

#define BAD_ARGS 24
#define BAD_FILES 3

typedef struct {
    const char *name;  /* a file name under the scratch directory (a '/' in it: one subdirectory) */
    const char *text;  /* its content */
    size_t len;        /* of text; 0: strlen(text) (a content with NUL bytes gives its length) */
} bad_file;

/* In argv and in files' names, "@D" stands for the case's scratch directory;
 * "@D/results" is seeded with valid result files (kernels.csv, peak.csv,
 * LRA.md) that must not change. */
typedef struct {
    const char *what;               /* the defect, as the test names it */
    const char *argv[BAD_ARGS];     /* argv[0] the command, NULL-terminated */
    bad_file files[BAD_FILES];      /* files to create first */
    const char *expect;             /* a substring of the one-line message */
    unsigned flags;                 /* BAD_* */
} bad_case;

extern const bad_case bad_cases[];
extern const size_t bad_case_count;

#endif
