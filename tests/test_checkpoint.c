/* Checkpoints: bitwise round trip, and every way a file can be wrong gives
 * its one-line error without touching the model: damaged bytes, truncation,
 * wrong magic, a future version, a model of another shape; a failed write
 * leaves the previous checkpoint intact. */
#include "common/attn_error.h"
#include "models/checkpoint.h"

#include <criterion/criterion.h>
#include <inttypes.h>
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[64], path[128];

static void make_dir(void)
{
    strcpy(dir, "/tmp/attn_ckpt_XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/model.ckpt", dir);
}

static void remove_dir(void)
{
    DIR *d = opendir(dir);
    for (struct dirent *e; d && (e = readdir(d));) {
        char f[400];
        snprintf(f, sizeof f, "%s/%s", dir, e->d_name);
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            unlink(f);
    }
    if (d)
        closedir(d);
    rmdir(dir);
}

TestSuite(checkpoint, .init = make_dir, .fini = remove_dir);

/* A tiny model: embedding, norm gain, projection; 264 floats. */
#define NP 264
static const ckpt_tensor table[] = {
    {.name = "wte", .rank = 2, .dims = {16, 8}, .offset = 0},
    {.name = "ln.w", .rank = 1, .dims = {8}, .offset = 128},
    {.name = "w", .rank = 2, .dims = {8, 16}, .offset = 136},
};
static const optim_range ranges[] = {
    {.offset = 0, .count = 128, .decay = 1},
    {.offset = 128, .count = 8, .decay = 0},
    {.offset = 136, .count = 128, .decay = 1},
};
static const optim_config cfg = {.beta1 = 0.9f, .beta2 = 0.95f, .eps = 1e-8f, .weight_decay = 0.1f, .threads = 1};
static const char *config_json = "{\"model\":{\"d\":8,\"layers\":1},\"task\":\"copy\",\"kernel\":\"flash\"}";

typedef struct {
    float params[NP];
    optim opt;
    ckpt_train train;
    ckpt_state st;
} model;

/* A model after a few optimizer steps (non-trivial m, v, step), or a blank
 * one (sentinel parameters, zero state) to load into. */
static void model_init(model *m, int trained)
{
    memset(m, 0, sizeof *m);
    cr_assert_eq(optim_init(&m->opt, NP, &cfg, ranges, 3), 0, "%s", attn_last_error());
    m->st = (ckpt_state){.tensors = table, .ntensors = 3, .params = m->params, .nparams = NP,
                         .opt = &m->opt, .train = &m->train};
    if (!trained) {
        for (int i = 0; i < NP; i++)
            m->params[i] = -7.0f;
        return;
    }
    attn_rng_seed(&m->train.rng, 77);
    float g[NP];
    for (int i = 0; i < NP; i++)
        m->params[i] = attn_rng_range(&m->train.rng, -1.0f, 1.0f);
    for (int s = 0; s < 3; s++) {
        for (int i = 0; i < NP; i++)
            g[i] = attn_rng_range(&m->train.rng, -1.0f, 1.0f);
        cr_assert_eq(optim_step(&m->opt, m->params, g, 1e-2f), 0);
    }
    m->train.step = 42;
}

static void save_or_die(const model *m)
{
    int rc = ckpt_save(path, config_json, &m->st);
    cr_assert_eq(rc, 0, "ckpt_save: %s", attn_last_error());
}

static long file_size(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 ? (long)st.st_size : -1;
}

/* A trained model saved to `path`; returns the file's size. */
static long save_trained(model *a)
{
    model_init(a, 1);
    save_or_die(a);
    return file_size(path);
}

/* Rewrites `len` bytes at `at` (or truncates to `at` when bytes is NULL). */
static void patch_file(long at, const void *bytes, size_t len)
{
    if (!bytes) {
        cr_assert_eq(truncate(path, at), 0);
        return;
    }
    FILE *f = fopen(path, "r+b");
    cr_assert_not_null(f);
    cr_assert_eq(fseek(f, at, SEEK_SET), 0);
    cr_assert_eq(fwrite(bytes, 1, len, f), len);
    fclose(f);
}

static unsigned char byte_at(long at)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f);
    fseek(f, at, SEEK_SET);
    int c = fgetc(f);
    fclose(f);
    return (unsigned char)c;
}

/* Loads into a blank model, expects failure with exactly `msg` (after the
 * "<path>: " prefix) and the model untouched. */
static void expect_load_error(const char *msg)
{
    model b;
    model_init(&b, 0);
    cr_assert_lt(ckpt_load(path, &b.st), 0, "load of a bad file succeeded");
    char want[512];
    snprintf(want, sizeof want, "%s: %s", path, msg);
    cr_assert_str_eq(attn_last_error(), want);
    for (int i = 0; i < NP; i++)
        cr_assert_eq(b.params[i], -7.0f, "param %d written by a failed load", i);
    cr_assert_eq(b.opt.step, 0);
    optim_fini(&b.opt);
}

Test(checkpoint, round_trip_is_bitwise, .timeout = 60)
{
    model a, b;
    model_init(&a, 1);
    model_init(&b, 0);
    save_or_die(&a);
    cr_assert_eq(ckpt_load(path, &b.st), 0, "ckpt_load: %s", attn_last_error());
    cr_assert_eq(memcmp(a.params, b.params, sizeof a.params), 0, "parameters differ");
    cr_assert_eq(memcmp(a.opt.m, b.opt.m, NP * sizeof(float)), 0, "first moments differ");
    cr_assert_eq(memcmp(a.opt.v, b.opt.v, NP * sizeof(float)), 0, "second moments differ");
    cr_assert_eq(b.opt.step, 3);
    cr_assert_eq(b.train.step, 42);
    cr_assert_eq(memcmp(&a.train.rng, &b.train.rng, sizeof a.train.rng), 0, "RNG state differs");

    char *json = NULL;
    size_t n = 0;
    unsigned flags = 0;
    cr_assert_eq(ckpt_inspect(path, &json, &n, &flags), 0, "%s", attn_last_error());
    cr_assert_str_eq(json, config_json);
    cr_assert_eq(n, NP);
    cr_assert_eq(flags, CKPT_HAS_OPTIM | CKPT_HAS_TRAIN);
    free(json);
    cr_assert_eq(file_size(path), 40 + (long)strlen(config_json) + 4 + (4 + 3 + 8 + 16 + 8) + (4 + 4 + 8 + 8 + 8) +
                                      (4 + 1 + 8 + 16 + 8) + 12 * NP + 8 + 40 + 4);
    optim_fini(&a.opt);
    optim_fini(&b.opt);
}

Test(checkpoint, parameters_only_load_and_missing_state_is_an_error_when_asked, .timeout = 60)
{
    model a, b;
    model_init(&a, 1);
    model_init(&b, 0);
    a.st.opt = NULL;
    a.st.train = NULL;
    save_or_die(&a);
    expect_load_error("expected optimizer state to resume from, found a checkpoint without it "
                      "(load without an optimizer to take only the parameters)");
    b.st.opt = NULL;
    b.st.train = NULL;
    cr_assert_eq(ckpt_load(path, &b.st), 0, "%s", attn_last_error());
    cr_assert_eq(memcmp(a.params, b.params, sizeof a.params), 0);
    optim_fini(&a.opt);
    optim_fini(&b.opt);
}

Test(checkpoint, flipped_byte_is_a_checksum_error, .timeout = 60)
{
    model a;
    long size = save_trained(&a);
    /* in the config, the tensor table, the parameters, the moments, the RNG
     * state and the checksum itself */
    const long at[] = {45, 110, 200, size / 2, size - 20, size - 1};
    for (size_t k = 0; k < sizeof at / sizeof *at; k++) {
        unsigned char orig = byte_at(at[k]), flipped = orig ^ 0x10;
        patch_file(at[k], &flipped, 1);
        expect_load_error("checksum mismatch (file damaged)");
        patch_file(at[k], &orig, 1);
    }
    model b;
    model_init(&b, 0);
    cr_assert_eq(ckpt_load(path, &b.st), 0, "restored file: %s", attn_last_error());
    optim_fini(&a.opt);
    optim_fini(&b.opt);
}

Test(checkpoint, truncated_file_names_the_byte, .timeout = 60)
{
    model a;
    long size = save_trained(&a);
    char msg[128];
    patch_file(size - 100, NULL, 0);
    snprintf(msg, sizeof msg, "truncated at byte %ld (expected %ld)", size - 100, size);
    expect_load_error(msg);
    patch_file(20, NULL, 0);
    expect_load_error("truncated at byte 20 (expected 40)");
    optim_fini(&a.opt);
}

Test(checkpoint, trailing_bytes_are_rejected, .timeout = 60)
{
    model a;
    long size = save_trained(&a);
    patch_file(size, "x", 1);
    char msg[128];
    snprintf(msg, sizeof msg, "expected %ld bytes, found %ld (trailing data)", size, size + 1);
    expect_load_error(msg);
    optim_fini(&a.opt);
}

Test(checkpoint, wrong_magic_is_rejected, .timeout = 60)
{
    model a;
    save_trained(&a);
    patch_file(0, "ATNBCKPX", 8);
    expect_load_error("bad magic (expected \"ATNBCKPT\" at byte 0: not an attnbench checkpoint)");
    FILE *f = fopen(path, "w");
    fputs("{\"not\": \"a checkpoint\"}\n", f);
    fclose(f);
    expect_load_error("bad magic (expected \"ATNBCKPT\" at byte 0: not an attnbench checkpoint)");
    optim_fini(&a.opt);
}

Test(checkpoint, future_version_is_rejected, .timeout = 60)
{
    model a;
    save_trained(&a);
    const uint32_t v3 = 3;
    patch_file(8, &v3, 4);
    expect_load_error("version 3 not supported (expected 1)");
    optim_fini(&a.opt);
}

Test(checkpoint, shape_mismatch_names_the_tensor_and_both_shapes, .timeout = 60)
{
    model a;
    save_trained(&a);
    /* the same model with a wider projection */
    static float params[136 + 128 * 2];
    const ckpt_tensor wider[] = {table[0], table[1], {.name = "w", .rank = 2, .dims = {8, 32}, .offset = 136}};
    const ckpt_state st = {.tensors = wider, .ntensors = 3, .params = params, .nparams = 136 + 256};
    cr_assert_lt(ckpt_load(path, &st), 0);
    char want[256];
    snprintf(want, sizeof want, "%s: tensor 'w' shape [8,16] does not match the model's [8,32]", path);
    cr_assert_str_eq(attn_last_error(), want);

    const ckpt_tensor renamed[] = {table[0], {.name = "ln.g", .rank = 1, .dims = {8}, .offset = 128}, table[2]};
    const ckpt_state st2 = {.tensors = renamed, .ntensors = 3, .params = params, .nparams = NP};
    cr_assert_lt(ckpt_load(path, &st2), 0);
    snprintf(want, sizeof want, "%s: tensor 1 is 'ln.w', the model's is 'ln.g'", path);
    cr_assert_str_eq(attn_last_error(), want);
    optim_fini(&a.opt);
}

Test(checkpoint, invalid_config_json_is_refused_and_nothing_written, .timeout = 60)
{
    model a;
    model_init(&a, 1);
    cr_assert_eq(ckpt_save(path, "{\"model\": ", &a.st), ATTN_EINVAL);
    cr_assert(strstr(attn_last_error(), "expected the config to be JSON text"), "%s", attn_last_error());
    cr_assert_eq(file_size(path), -1, "a checkpoint was written");
    optim_fini(&a.opt);
}

/* The write fails half-way (a file-size limit makes write() return EFBIG):
 * the previous checkpoint must still load, and no <path>.tmp may remain. */
Test(checkpoint, failed_write_leaves_the_previous_checkpoint_intact, .timeout = 60)
{
    model a, b;
    long size = save_trained(&a);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit lim = {.rlim_cur = (rlim_t)size / 2, .rlim_max = RLIM_INFINITY};
        setrlimit(RLIMIT_FSIZE, &lim);
        for (int i = 0; i < NP; i++)
            a.params[i] = 99.0f;
        int rc = ckpt_save(path, config_json, &a.st);
        _exit(rc == ATTN_EIO && strstr(attn_last_error(), "write failed") ? 0 : 1);
    }
    int status = 0;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the save past the size limit did not fail cleanly");
    char tmp[160];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    cr_assert_eq(file_size(tmp), -1, "a partial %s was left behind", tmp);
    cr_assert_eq(file_size(path), size);
    model_init(&b, 0);
    cr_assert_eq(ckpt_load(path, &b.st), 0, "previous checkpoint: %s", attn_last_error());
    cr_assert_eq(memcmp(a.params, b.params, sizeof a.params), 0, "previous checkpoint changed");

    /* a directory that does not exist: nothing is created */
    char missing[200];
    snprintf(missing, sizeof missing, "%s/no/such/dir.ckpt", dir);
    cr_assert_eq(ckpt_save(missing, config_json, &a.st), ATTN_EIO);
    cr_assert(strstr(attn_last_error(), "cannot create"), "%s", attn_last_error());
    optim_fini(&a.opt);
    optim_fini(&b.opt);
}

/* A shape whose element count overflows int64 is refused by name, before
 * any size arithmetic (the fuzzer found the product computed past overflow). */
Test(checkpoint, shape_whose_size_overflows_is_refused, .timeout = 60)
{
    model a;
    save_trained(&a);
    static float params[NP];
    const int64_t huge = INT64_C(1) << 40;
    const ckpt_tensor overflow[] = {{.name = "w", .rank = 4, .dims = {huge, huge, huge, huge}, .offset = 0}};
    const ckpt_state st = {.tensors = overflow, .ntensors = 1, .params = params, .nparams = NP};
    cr_assert_lt(ckpt_load(path, &st), 0);
    char want[256];
    snprintf(want, sizeof want, "%s: model tensor 'w': shape [%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64
             "] has more than 2^63 elements", path, huge, huge, huge, huge);
    cr_assert_str_eq(attn_last_error(), want);
    optim_fini(&a.opt);
}
