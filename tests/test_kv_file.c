/* kv files: what 'eval --dump-kv' writes is what the `cache` input family
 * reads back; a damaged file is refused naming what is wrong; the dump's
 * rows are the model's rows at their positions (a causal model's row t does
 * not change when later tokens do); a problem takes the file's heads by
 * modulo and its query rows at their positions. */
#include "common/attn_error.h"
#include "common/rng.h"
#include "harness/measure/bench_inputs.h"
#include "harness/measure/kv_file.h"
#include "harness/train/kv_dump.h"
#include "models/model.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { H = 2, HKV = 1, N = 6, D = 4, LAYERS = 2 };

/* Value of (layer, tensor t: 0 q 1 k 2 v, head, row, column): all distinct. */
static float val(int64_t l, int t, int64_t h, int64_t n, int64_t d) { return (float)(((l * 3 + t) * 10 + h) * 100 + n * 10 + d); }

static float store[LAYERS][3][H * N * D];

static int synth_layer(void *ud, int64_t l, attn_tensor *q, attn_tensor *k, attn_tensor *v)
{
    (void)ud;
    attn_tensor *t[3] = {q, k, v};
    for (int i = 0; i < 3; i++) {
        int64_t heads = i ? HKV : H;
        *t[i] = (attn_tensor){store[l][i], 1, heads, N, D, heads * N * D, N * D, D};
        for (int64_t h = 0; h < heads; h++)
            for (int64_t n = 0; n < N; n++)
                for (int64_t d = 0; d < D; d++)
                    store[l][i][(h * N + n) * D + d] = val(l, i, h, n, d);
    }
    return 0;
}

static void tmp_path(char *dir, char *path, size_t n)
{
    cr_assert(mkdtemp(dir));
    snprintf(path, n, "%s/x.kv", dir);
}

Test(kv_file, what_is_written_is_read_back_and_fills_a_problem_by_position_and_head)
{
    char dir[] = "/tmp/attn_kv_XXXXXX", path[64];
    tmp_path(dir, path, sizeof path);
    cr_assert_eq(kv_file_write(path, LAYERS, 0, "synthetic", synth_layer, NULL), 0, "%s", attn_last_error());
    kv_file f;
    cr_assert_eq(kv_file_load(path, &f), 0, "%s", attn_last_error());
    cr_assert(f.layers == LAYERS && f.H == H && f.H_kv == HKV && f.N == N && f.D == D);
    cr_assert_str_eq(f.source, "synthetic");
    /* a decode problem: 2 queries at positions 3, 4 against 5 keys, 4 heads over 2 KV heads */
    attn_args a = {.B = 1, .H = 4, .H_kv = 2, .Nq = 2, .Nk = 5, .D = D, .q_off = 3};
    float q[4 * 2 * D], k[2 * 5 * D], v[2 * 5 * D];
    attn_io io = {.q = {q, 1, 4, 2, D, 4 * 2 * D, 2 * D, D}, .k = {k, 1, 2, 5, D, 2 * 5 * D, 5 * D, D},
                  .v = {v, 1, 2, 5, D, 2 * 5 * D, 5 * D, D}};
    cr_assert_eq(kv_file_fill(&f, 1, &a, &io), 0, "%s", attn_last_error());
    cr_assert_eq(attn_at(&io.q, 0, 3, 1)[2], val(1, 0, 3 % H, 4, 2), "head 3 reads file head 1, row 1 position 4");
    cr_assert_eq(attn_at(&io.k, 0, 1, 4)[0], val(1, 1, 0, 4, 0), "KV head 1 reads the file's only KV head");
    cr_assert_eq(attn_at(&io.v, 0, 0, 2)[3], val(1, 2, 0, 2, 3));
    a.q_off = 5; /* query at position 5 + 1: beyond the file */
    cr_assert_neq(kv_file_fill(&f, 1, &a, &io), 0);
    cr_assert(strstr(attn_last_error(), "holds 6 positions"), "%s", attn_last_error());
    a.q_off = 3, a.D = 8;
    cr_assert_neq(kv_file_fill(&f, 0, &a, &io), 0);
    cr_assert(strstr(attn_last_error(), "D:"), "%s", attn_last_error());
    kv_file_free(&f);
    unlink(path), rmdir(dir);
}

static void expect_refused(const char *header, long extra_floats, const char *says)
{
    char dir[] = "/tmp/attn_kv_XXXXXX", path[64];
    tmp_path(dir, path, sizeof path);
    FILE *f = fopen(path, "wb");
    fprintf(f, "%s\n", header);
    float z = 0;
    for (long i = 0; i < LAYERS * (H + 2 * HKV) * N * D + extra_floats; i++)
        fwrite(&z, sizeof z, 1, f);
    fclose(f);
    kv_file k;
    cr_assert_neq(kv_file_load(path, &k), 0, "%s", header);
    cr_assert(strstr(attn_last_error(), path) && strstr(attn_last_error(), says), "%s", attn_last_error());
    cr_assert_null(k.data);
    unlink(path), rmdir(dir);
}

/* Layer 0 as synth_layer, then a failure: a write that stops half-way. */
static int fail_after_layer0(void *ud, int64_t l, attn_tensor *q, attn_tensor *k, attn_tensor *v)
{
    return l == 0 ? synth_layer(ud, l, q, k, v) : attn_fail(ATTN_EIO, "layer %lld: source gone", (long long)l);
}

/* A sweep takes an existing kv file for a finished dump: a write that stops
 * half-way (an error here, a kill -9 in a sweep) must leave the earlier file
 * whole and no prefix under the name. */
Test(kv_file, a_write_that_stops_half_way_leaves_the_earlier_file_whole)
{
    char dir[] = "/tmp/attn_kv_XXXXXX", path[64], tmp[80];
    tmp_path(dir, path, sizeof path);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    cr_assert_neq(kv_file_write(path, LAYERS, 0, "first", fail_after_layer0, NULL), 0);
    cr_assert_neq(access(path, F_OK), 0, "a half-written %s exists", path);
    cr_assert_eq(kv_file_write(path, LAYERS, 0, "first", synth_layer, NULL), 0, "%s", attn_last_error());
    cr_assert_neq(kv_file_write(path, LAYERS, 0, "second", fail_after_layer0, NULL), 0);
    cr_assert_neq(access(tmp, F_OK), 0, "%s left behind", tmp);
    kv_file f;
    cr_assert_eq(kv_file_load(path, &f), 0, "the earlier file was damaged: %s", attn_last_error());
    cr_assert_str_eq(f.source, "first");
    kv_file_free(&f);
    unlink(path);
    rmdir(dir);
}

Test(kv_file, a_damaged_file_is_refused_naming_the_field_or_the_size)
{
    const char *good = "{\"format\":\"attnbench-kv\",\"version\":1,\"layers\":2,\"H\":2,\"H_kv\":1,\"N\":6,\"D\":4}";
    expect_refused("{\"format\":\"npy\"}", 0, "format");
    expect_refused("{\"format\":\"attnbench-kv\",\"version\":2,\"layers\":2,\"H\":2,\"H_kv\":1,\"N\":6,\"D\":4}", 0,
                   "version");
    expect_refused("{\"format\":\"attnbench-kv\",\"version\":1,\"layers\":2,\"H\":2,\"H_kv\":1,\"N\":-6,\"D\":4}", 0,
                   "field N");
    expect_refused(good, -1, "found fewer");
    expect_refused(good, 1, "found more");
}

Test(kv_file, inputs_spell_a_family_or_a_file_and_its_layer)
{
    bench_inputs in;
    char buf[256];
    cr_assert_eq(bench_inputs_parse("peaked", &in, "--inputs"), 0);
    cr_assert(in.family == FID_PEAKED && !in.kv_file[0] && bench_inputs_measured(&in));
    cr_assert_eq(bench_inputs_parse("cache:m.kv@1", &in, "--inputs"), 0);
    bench_inputs_format(&in, buf, sizeof buf);
    cr_assert_str_eq(buf, "cache:m.kv@1");
    cr_assert(bench_inputs_measured(&in) && !strcmp(bench_inputs_source(&in), "kv-file"));
    cr_assert_eq(bench_inputs_parse("cache:m.kv", &in, "--inputs"), 0);
    cr_assert_eq(in.kv_layer, -1, "the last layer");
    cr_assert_eq(bench_inputs_parse("uniform", &in, "--inputs"), 0);
    cr_assert(!bench_inputs_measured(&in));
    const char *bad[] = {"cache:", "cache:m.kv@", "cache:m.kv@-1", "cache:m.kv@x", "needles"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        cr_assert_neq(bench_inputs_parse(bad[i], &in, "--inputs"), 0, "%s", bad[i]);
        cr_assert(strstr(attn_last_error(), "--inputs"), "%s", attn_last_error());
    }
}

enum { V = 10, LEN = 12, T = 7 };

/* Dumps example 0 of a one-example LM dataset whose tokens after position T
 * depend on `tail`. */
static void dump(nn_model *m, int tail, const char *path)
{
    task_data d;
    cr_assert_eq(task_data_alloc(&d, "kv", TASK_LM, 1, LEN), 0);
    d.vocab = V;
    d.lengths[0] = LEN;
    for (int64_t t = 0; t < LEN; t++) {
        task_tokens(&d, 0)[t] = (int32_t)(t <= T ? t % (V - 1) : (t * 3 + tail) % (V - 1));
        task_targets(&d, 0)[t] = TASK_IGNORE;
    }
    task_targets(&d, 0)[LEN - 1] = 1;
    cr_assert_eq(kv_dump_write(path, m, &d, 0, 1, "test"), 0, "%s", attn_last_error());
    task_data_free(&d);
}

Test(kv_file, a_causal_models_dump_holds_each_row_at_its_position)
{
    nn_model_cfg c;
    nn_model_cfg_defaults(&c);
    c.variant = NN_VARIANT_LM, c.head = NN_HEAD_LM, c.causal = 1, c.pos = NN_POS_ROPE;
    c.vocab = V, c.max_len = LEN, c.layers = 2, c.d_model = 16, c.heads = 2, c.mlp = 32;
    nn_model m;
    memset(&m, 0, sizeof m);
    cr_assert_eq(nn_model_init(&m, &c, 3), 0, "%s", attn_last_error());
    char dir[] = "/tmp/attn_kv_XXXXXX", p1[64], p2[80];
    tmp_path(dir, p1, sizeof p1);
    snprintf(p2, sizeof p2, "%s/y.kv", dir);
    dump(&m, 1, p1);
    dump(&m, 2, p2);
    kv_file a, b;
    cr_assert_eq(kv_file_load(p1, &a), 0, "%s", attn_last_error());
    cr_assert_eq(kv_file_load(p2, &b), 0, "%s", attn_last_error());
    cr_assert(a.layers == 2 && a.H == 2 && a.N == LEN && a.D == 8);
    for (int64_t l = 0; l < a.layers; l++) {
        attn_tensor qa, ka, va, qb, kb, vb;
        kv_file_layer(&a, l, &qa, &ka, &va);
        kv_file_layer(&b, l, &qb, &kb, &vb);
        int later_differs = 0;
        for (int64_t h = 0; h < a.H_kv; h++)
            for (int64_t n = 0; n < LEN; n++) {
                int same = !memcmp(attn_at(&ka, 0, h, n), attn_at(&kb, 0, h, n), sizeof(float) * (size_t)a.D) &&
                           !memcmp(attn_at(&qa, 0, h, n), attn_at(&qb, 0, h, n), sizeof(float) * (size_t)a.D);
                if (n <= T)
                    cr_assert(same, "layer %lld row %lld reads only tokens up to its position", (long long)l,
                              (long long)n);
                later_differs |= !same;
            }
        cr_assert(later_differs, "layer %lld: the rows after the change do change", (long long)l);
    }
    kv_file_free(&a), kv_file_free(&b);
    nn_model_free(&m);
    unlink(p1), unlink(p2), rmdir(dir);
}
