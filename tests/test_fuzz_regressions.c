/* The fuzzers' inputs in the normal build: every saved crash input
 * (fuzz/regressions/<target>/) and every seed (fuzz/corpus/<target>/) goes
 * through the target's entry point, which checks the library's answer (a
 * refusal is one non-empty line; the target's own invariants hold) and
 * aborts otherwise. A crash input whose fix is reverted crashes here again. */
#include "fuzz/fuzz_targets.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int read_whole(const char *path, uint8_t **data, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    size_t cap = 1 << 16;
    *data = malloc(cap), *n = 0;
    for (size_t got; *data && (got = fread(*data + *n, 1, cap - *n, f)) > 0;)
        if ((*n += got) == cap)
            *data = realloc(*data, cap *= 2);
    fclose(f);
    return *data ? 0 : -1;
}

/* Replays every file of fuzz/<kind>/<target>/; the number replayed. */
static int replay(const char *kind, const char *target, fuzz_entry entry)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/fuzz/%s/%s", ATTN_SOURCE_DIR, kind, target);
    DIR *d = opendir(dir);
    if (!d)
        return 0; /* a target without regressions yet */
    int count = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (e->d_name[0] == '.')
            continue;
        char path[2048];
        uint8_t *data = NULL;
        size_t n = 0;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        cr_assert_eq(read_whole(path, &data, &n), 0, "cannot read %s", path);
        fprintf(stderr, "replaying %s\n", path); /* names the input should it crash */
        entry(data, n);
        free(data);
        count++;
    }
    closedir(d);
    return count;
}

#define REPLAY_TEST(name)                                                                                        \
    Test(fuzz_replay, name##_seeds_and_crash_inputs_are_read_or_refused_in_one_line, .timeout = 120)             \
    {                                                                                                             \
        cr_assert_gt(replay("corpus", #name, fuzz_##name), 0, "fuzz/corpus/" #name " holds no seeds");           \
        replay("regressions", #name, fuzz_##name);                                                                \
    }
FUZZ_TARGETS(REPLAY_TEST)
