#include "bench_inputs.h"

#include "kv_file.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CACHE_PREFIX "cache:"

static int parse_cache(const char *spec, bench_inputs *in, const char *where)
{
    const char *at = strrchr(spec, '@');
    size_t len = at ? (size_t)(at - spec) : strlen(spec);
    if (len == 0 || len >= sizeof in->kv_file)
        return attn_fail(ATTN_EINVAL, "%s: expected cache:FILE[@LAYER] with a file name below %zu bytes, found '%s%s'",
                         where, sizeof in->kv_file, CACHE_PREFIX, spec);
    memcpy(in->kv_file, spec, len);
    in->kv_file[len] = '\0';
    in->kv_layer = -1;
    if (at) {
        char *end;
        long long l = strtoll(at + 1, &end, 10);
        if (end == at + 1 || *end || l < 0)
            return attn_fail(ATTN_EINVAL, "%s: expected a layer number >= 0 after '@', found '%s'", where, at + 1);
        in->kv_layer = l;
    }
    return 0;
}

int bench_inputs_parse(const char *text, bench_inputs *in, const char *where)
{
    memset(in, 0, sizeof *in);
    in->kv_layer = -1;
    if (!strncmp(text, CACHE_PREFIX, strlen(CACHE_PREFIX)))
        return parse_cache(text + strlen(CACHE_PREFIX), in, where);
    for (int f = 0; fid_inputs_names[f]; f++)
        if (!strcmp(text, fid_inputs_names[f]))
            return in->family = (fid_inputs)f, 0;
    char names[128] = "";
    for (int f = 0; fid_inputs_names[f]; f++)
        snprintf(names + strlen(names), sizeof names - strlen(names), "%s, ", fid_inputs_names[f]);
    return attn_fail(ATTN_EINVAL, "%s: expected one of %scache:FILE[@LAYER], found '%s'", where, names, text);
}

void bench_inputs_format(const bench_inputs *in, char *buf, size_t n)
{
    if (!in->kv_file[0])
        snprintf(buf, n, "%s", fid_inputs_names[in->family]);
    else if (in->kv_layer < 0)
        snprintf(buf, n, "%s%s", CACHE_PREFIX, in->kv_file);
    else
        snprintf(buf, n, "%s%s@%lld", CACHE_PREFIX, in->kv_file, (long long)in->kv_layer);
}

int bench_inputs_measured(const bench_inputs *in) { return in->family != FID_UNIFORM || in->kv_file[0]; }

int bench_inputs_cmp(const bench_inputs *a, const bench_inputs *b)
{
    int c = (int)a->family - (int)b->family;
    if (!c)
        c = strcmp(a->kv_file, b->kv_file);
    return c ? c : (a->kv_layer > b->kv_layer) - (a->kv_layer < b->kv_layer);
}

const char *bench_inputs_source(const bench_inputs *in) { return in->kv_file[0] ? "kv-file" : "generated"; }

int bench_inputs_check(const bench_inputs *in)
{
    if (!in->kv_file[0])
        return 0;
    kv_file f;
    int rc = kv_file_load(in->kv_file, &f);
    if (rc)
        return rc;
    if (in->kv_layer >= f.layers)
        rc = attn_fail(ATTN_EINVAL, "%s%s@%lld: expected a layer below %lld (the file's layers)", CACHE_PREFIX,
                       in->kv_file, (long long)in->kv_layer, (long long)f.layers);
    kv_file_free(&f);
    return rc;
}

int bench_inputs_fill(const bench_inputs *in, const attn_args *a, uint64_t seed, const attn_io *io)
{
    if (!in->kv_file[0]) {
        fid_fill(in->family, a, seed, io);
        return 0;
    }
    kv_file f;
    int rc = kv_file_load(in->kv_file, &f);
    if (rc)
        return rc;
    rc = kv_file_fill(&f, in->kv_layer < 0 ? f.layers - 1 : in->kv_layer, a, io);
    kv_file_free(&f);
    return rc;
}
