#include "fuzz_io.h"

#include "common/attn_error.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char scratch[512];

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st, (void)type, (void)ftw;
    remove(path);
    return 0;
}

static void remove_scratch(void)
{
    if (scratch[0])
        nftw(scratch, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

const char *fuzz_dir(void)
{
    if (scratch[0])
        return scratch;
    const char *tmp = getenv("TMPDIR");
    snprintf(scratch, sizeof scratch, "%s/attn-fuzz-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(scratch)) {
        fprintf(stderr, "fuzz: cannot create %s: %s\n", scratch, strerror(errno));
        abort();
    }
    atexit(remove_scratch);
    return scratch;
}

/* mkdir -p of every directory in path before its last '/'. */
static void make_parents(char *path)
{
    for (char *s = strchr(path + 1, '/'); s; s = strchr(s + 1, '/')) {
        *s = '\0';
        if (mkdir(path, 0700) != 0 && errno != EEXIST) {
            fprintf(stderr, "fuzz: cannot create %s: %s\n", path, strerror(errno));
            abort();
        }
        *s = '/';
    }
}

char *fuzz_text(const uint8_t *data, size_t n)
{
    char *text = malloc(n + 1);
    if (text) {
        memcpy(text, data, n);
        text[n] = '\0';
    }
    return text;
}

int fuzz_name_and_params(char *text, const char **name, param_bag *bag, const char *target)
{
    char *colon = strchr(text, ':'), *list = colon ? colon + 1 : text + strlen(text);
    if (colon)
        *colon = '\0';
    *name = text;
    memset(bag, 0, sizeof *bag);
    for (char *save = NULL, *kv = strtok_r(list, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
        attn_clear_error();
        int rc = param_bag_add(bag, kv);
        fuzz_check_error(rc, target);
        if (rc)
            return rc;
    }
    return 0;
}

const char *fuzz_write(const char *rel, const uint8_t *data, size_t n)
{
    static char path[1024];
    snprintf(path, sizeof path, "%s/%s", fuzz_dir(), rel);
    make_parents(path);
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(data, 1, n, f) != n) || fclose(f) != 0) {
        fprintf(stderr, "fuzz: cannot write %s: %s\n", path, strerror(errno));
        abort();
    }
    return path;
}

void fuzz_copy_fixture(const char *rel, const char *src)
{
    static struct {
        char src[256];
        uint8_t *data;
        size_t n;
    } cache[8];
    int i = 0;
    while (i < 8 && cache[i].data && strcmp(cache[i].src, src) != 0)
        i++;
    if (i == 8)
        abort(); /* more fixtures than a target uses */
    if (!cache[i].data) {
        char from[1024];
        snprintf(from, sizeof from, "%s/%s", ATTN_SOURCE_DIR, src);
        FILE *f = fopen(from, "rb");
        uint8_t *buf = malloc(1 << 20);
        size_t n = f && buf ? fread(buf, 1, 1 << 20, f) : 0;
        if (!f || !buf || ferror(f) || !feof(f)) {
            fprintf(stderr, "fuzz: cannot read the fixture %s\n", from);
            abort();
        }
        fclose(f);
        snprintf(cache[i].src, sizeof cache[i].src, "%s", src);
        cache[i].data = buf, cache[i].n = n;
    }
    fuzz_write(rel, cache[i].data, cache[i].n);
}

uint32_t fuzz_crc32(const uint8_t *p, size_t n)
{
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = c >> 1 ^ (0xEDB88320u & (0u - (c & 1u)));
    }
    return c ^ 0xFFFFFFFFu;
}

void fuzz_check_error(int rc, const char *target)
{
    if (rc >= 0)
        return;
    const char *msg = attn_last_error();
    if (!msg[0] || strchr(msg, '\n')) {
        fprintf(stderr, "fuzz %s: refused input (rc %d) without a one-line message: '%s'\n", target, rc, msg);
        abort();
    }
}
