/* Sweep config files: the shipped configs, strictness with JSON-path
 * messages, defaults, expansion order, filters and the dump round-trip. */
#include "common/attn_error.h"
#include "harness/measure/config.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The repository root, from this file's path, so the test finds configs/
 * whatever directory it runs in (ctest runs in the build directory). */
static void repo_file(const char *rel, char *out, size_t n)
{
    const char *me = __FILE__, *tests = strstr(me, "tests/test_config.c");
    snprintf(out, n, "%.*s%s", tests ? (int)(tests - me) : 0, me, rel);
}

static void load_shipped(const char *rel, cfg_config *c)
{
    char path[1024];
    repo_file(rel, path, sizeof path);
    cr_assert_eq(cfg_load(path, c), 0, "%s", attn_last_error());
}

/* The job's mask and kernel parameters as the CSV spells them. */
static const char *mask_of(const cfg_job *j)
{
    static char spec[128];
    attn_mask_format(&j->job.args.mask, spec, sizeof spec);
    return spec;
}

static const char *params_of(const cfg_job *j)
{
    static char text[256];
    const param_bag *p = &j->job.args.params;
    text[0] = '\0';
    for (int i = 0; i < p->n; i++)
        snprintf(text + strlen(text), sizeof text - strlen(text), "%s%s=%s", i ? "," : "", p->key[i], p->val[i]);
    return text;
}

static size_t count_jobs(const cfg_config *c)
{
    cfg_job *jobs;
    size_t n;
    cr_assert_eq(cfg_expand(c, &jobs, &n), 0, "%s", attn_last_error());
    free(jobs);
    return n;
}

Test(config, shipped_configs_parse_and_expand_to_the_expected_job_counts)
{
    static const struct {
        const char *file;
        size_t jobs;
    } want[] = {
        /* kernels x masks x passes x N x D (x params variants x H_kv x threads) */
        {"configs/quick.json", 3 * 3 * 2 * 4 * 1 + 8 * 2 + 4},
        {"configs/fidelity.json", (1 + 4 + 4 + 4 + 4 + 4 + 3 + 3) * 4 * 3 + (1 + 3 + 1 + 1 + 1) * 4 * 3 + (3 + 3 + 3 + 5 + 3) * 4 * 3},
        {"configs/default.json", 1 * 3 * 2 * 5 + 2 * 3 * 2 * 3 + 2 * 1 * 2 * 1 * 1 * 2 + 15 * 2 + 3 * 3 + 2 + 4 * 4 + 2 +
                                     10 * 4 + 7 * 4 + 4 * 2 + 4},
        {"configs/full.json", 1 * 3 * 2 * 6 * 2 + 2 * 3 * 2 * 5 * 2 + 3 * 1 * 2 * 1 * 1 * 2 + 15 * 2 * 4 + 3 * 3 + 2 * 2 +
                                  4 * 5 + 3 + 10 * 4 + 7 * 4 + 4 * 3 + 4 * 2},
        /* decode steps (kernels' budget variants x KV lengths), 8-step cycles, a trained cache's two layers */
        {"configs/longctx.json", (1 + 2 + 4 + 1) * 5 + 2 * 5 + 4 * 2},
        {"configs/paper.json", 1 * 4 * 2 * 7 * 2 + 2 * 4 * 2 * 4 * 2 + 1 * 1 * 2 * 2 * 1 * 3 + 3 * 2 * 2 * 2 * 2 +
                                  3 * 1 * 2 * 1 * 1 * 5},
    };
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        cfg_config c;
        load_shipped(want[i].file, &c);
        cr_assert_eq(count_jobs(&c), want[i].jobs, "%s", want[i].file);
        for (size_t s = 0; s < c.n_suites; s++)
            for (size_t k = 0; k < c.suites[s].kernels.n; k++)
                cr_assert_str_neq(c.suites[s].kernels.v[k], "oracle");
        cfg_free(&c);
    }
}

Test(config, quick_expands_in_documented_order_with_canonical_masks)
{
    cfg_config c;
    load_shipped("configs/quick.json", &c);
    cfg_job *j;
    size_t n;
    cr_assert_eq(cfg_expand(&c, &j, &n), 0);
    /* N innermost, then pass, mask, kernel */
    cr_assert_str_eq(j[0].job.kernel->name, "naive");
    cr_assert_str_eq(mask_of(&j[0]), "full");
    cr_assert_str_eq(bench_pass_name(j[0].job.pass), "fwd");
    cr_assert_eq(j[0].job.args.Nq, 256);
    cr_assert_eq(j[1].job.args.Nq, 512);
    cr_assert_eq(j[3].job.args.Nq, 2048);
    cr_assert_str_eq(bench_pass_name(j[4].job.pass), "bwd");
    cr_assert_str_eq(mask_of(&j[8]), "causal");
    cr_assert_str_eq(mask_of(&j[16]), "window:wl=256,wr=0");
    cr_assert_str_eq(j[24].job.kernel->name, "blas");
    cr_assert_str_eq(j[71].job.kernel->name, "flash");
    cr_assert_str_eq(j[72].job.suite, "fidelity", "the fidelity slice follows the kernels");
    cr_assert_str_eq(j[88].job.suite, "longctx", "the long-context slice comes last");
    cr_assert_eq(n, 72 + 16 + 4);
    for (size_t i = 0; i < 72; i++) {
        cr_assert_str_eq(j[i].job.suite, "kernels");
        const attn_args *a = &j[i].job.args;
        cr_assert(a->threads == 2 && a->B == 1 && a->H == 4 && a->H_kv == 4 && a->D == 64);
        cr_assert_eq(j[i].job.args.Nk, j[i].job.args.Nq);
        cr_assert_eq(j[i].job.seed, 1);
        cr_assert_str_eq(params_of(&j[i]), "");
    }
    cr_assert_eq(c.measure.min_reps, 3);
    free(j);
    cfg_free(&c);
}

/* Parses text expecting failure; returns the message. */
static const char *parse_error(const char *text)
{
    cfg_config c;
    int rc = cfg_parse("x.json", text, &c);
    cr_assert_lt(rc, 0, "expected an error for: %s", text);
    cr_assert_eq(c.n_suites, 0, "a failed parse leaves an empty config");
    const char *msg = attn_last_error();
    cr_assert_null(strchr(msg, '\n'), "one line: %s", msg);
    return msg;
}

#define SUITE(extra) "{\"name\":\"t\",\"suites\":[{\"suite\":\"k\",\"kernels\":[\"flash\"],\"H\":[8],\"N\":[256],\"D\":[64]" extra "}]}"

Test(config, malformed_json_reports_file_line_and_column)
{
    const char *msg = parse_error("{\n  \"name\": \"x\",\n  \"suites\": [\n    {\"suite\": \"k\" \"kernels\": []}\n  ]\n}");
    cr_assert(strncmp(msg, "x.json:4:19: expected well-formed JSON", 38) == 0, "%s", msg);
    msg = parse_error("{\"name\": \"x\",\n \"suites\": [");
    cr_assert(strstr(msg, "x.json:2:") && strstr(msg, "the end of the file"), "%s", msg);

    /* the same through a file */
    char path[] = "/tmp/attn_cfg_XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    const char bad[] = "{\n\n   \"name\": x\n}";
    cr_assert_eq(write(fd, bad, sizeof bad - 1), (ssize_t)(sizeof bad - 1));
    close(fd);
    cfg_config c;
    cr_assert_lt(cfg_load(path, &c), 0);
    char want[64];
    snprintf(want, sizeof want, "%s:3:12:", path);
    cr_assert(strncmp(attn_last_error(), want, strlen(want)) == 0, "%s", attn_last_error());
    unlink(path);
    cr_assert_lt(cfg_load(path, &c), 0);
    cr_assert(strstr(attn_last_error(), "cannot open"), "%s", attn_last_error());
}

Test(config, unknown_and_repeated_keys_name_their_json_path)
{
    const char *msg = parse_error(SUITE(",\"Nq\":[4]"));
    cr_assert(strstr(msg, "x.json: $.suites[0].Nq: expected one of the keys suite, description, kernels"), "%s", msg);
    msg = parse_error("{\"nmae\":\"t\"}");
    cr_assert(strstr(msg, "$.nmae:") && strstr(msg, "unknown key"), "%s", msg);
    msg = parse_error("{\"name\":\"t\",\"measure\":{\"reps\":3},\"suites\":[]}");
    cr_assert(strstr(msg, "$.measure.reps:"), "%s", msg);
    msg = parse_error(SUITE(",\"N\":[512]"));
    cr_assert(strstr(msg, "$.suites[0].N: expected each key once"), "%s", msg);
}

Test(config, wrong_types_and_values_name_their_json_path)
{
    cr_assert_str_eq(parse_error(SUITE(",\"N_kv\":[256, \"abc\"]")),
                     "x.json: $.suites[0].N_kv[1]: expected an integer in [1, 16777216], found \"abc\"");
    cr_assert_str_eq(parse_error(SUITE(",\"B\":2")),
                     "x.json: $.suites[0].B: expected a non-empty array of integers in [1, 1048576], found 2");
    cr_assert_str_eq(parse_error(SUITE(",\"seed\":-1")),
                     "x.json: $.suites[0].seed: expected a non-negative integer, found -1");
    cr_assert_str_eq(parse_error(SUITE(",\"threads\":[2.5]")),
                     "x.json: $.suites[0].threads[0]: expected an integer in [1, 4096], found 2.5");
    const char *msg = parse_error("{\"name\":\"t\",\"measure\":{\"min_time_s\":\"fast\"},\"suites\":[]}");
    cr_assert(strstr(msg, "$.measure.min_time_s: expected a number of seconds"), "%s", msg);
    msg = parse_error("{\"name\":\"t\",\"measure\":{\"min_reps\":5,\"max_reps\":2},\"suites\":[1]}");
    cr_assert(strstr(msg, "$.measure.max_reps: expected max_reps >= min_reps"), "%s", msg);
    msg = parse_error("{\"name\":\"t\",\"suites\":[]}");
    cr_assert(strstr(msg, "$.suites: expected a non-empty array of suite objects, found []"), "%s", msg);
    msg = parse_error(SUITE(",\"pass\":[\"forward\"]"));
    cr_assert(strstr(msg, "$.suites[0].pass[0]: expected one of \"fwd\""), "%s", msg);
    msg = parse_error(SUITE(",\"N_kv\":[64,64]"));
    cr_assert(strstr(msg, "$.suites[0].N_kv[1]: expected distinct values, found 64 again"), "%s", msg);
    msg = parse_error(SUITE(",\"H_kv\":[3]"));
    cr_assert(strstr(msg, "$.suites[0].H_kv[0]: expected a divisor of every H"), "%s", msg);
    msg = parse_error("{\"name\":\"t\",\"suites\":[{\"suite\":\"k\",\"kernels\":[\"flash\"],\"H\":[8],\"D\":[64]}]}");
    cr_assert(strstr(msg, "$.suites[0]: expected the required key \"N\""), "%s", msg);
    msg = parse_error("{\"name\":\"t\",\"suites\":[{\"suite\":\"a/b\",\"kernels\":[\"flash\"],\"H\":[8],\"N\":[1],\"D\":[1]}]}");
    cr_assert(strstr(msg, "$.suites[0].suite: expected a name"), "%s", msg);
}

Test(config, bad_mask_spec_names_its_json_path)
{
    const char *msg = parse_error(SUITE(",\"masks\":[\"full\",\"windw:w=3\"]"));
    cr_assert(strstr(msg, "x.json: $.suites[0].masks[1]: unknown mask 'windw'"), "%s", msg);
    msg = parse_error(SUITE(",\"masks\":[\"window\"]"));
    cr_assert(strstr(msg, "$.suites[0].masks[0]: ") && strstr(msg, "width"), "%s", msg);
    /* two spellings of one mask are one job */
    msg = parse_error(SUITE(",\"masks\":[\"window:w=4\",\"window:wl=4,wr=4\"]"));
    cr_assert(strstr(msg, "$.suites[0].masks[1]: expected distinct values"), "%s", msg);
}

Test(config, oracle_is_rejected_from_sweeps)
{
    const char *msg = parse_error("{\"name\":\"t\",\"suites\":[{\"suite\":\"k\",\"kernels\":[\"naive\",\"oracle\"],"
                                  "\"H\":[8],\"N\":[256],\"D\":[64]}]}");
    cr_assert(strstr(msg, "x.json: $.suites[0].kernels[1]: expected a benchmark kernel, found \"oracle\""), "%s", msg);
}

Test(config, defaults_fill_what_an_entry_leaves_out)
{
    cfg_config c;
    cr_assert_eq(cfg_parse("x.json", SUITE(""), &c), 0, "%s", attn_last_error());
    cr_assert_eq(c.measure.warmup, 3);
    cr_assert_eq(c.measure.min_reps, 10);
    cr_assert_eq(c.measure.max_reps, 1000);
    cr_assert_float_eq(c.measure.min_time_s, 1.0, 1e-12);
    cr_assert_eq(c.max_workspace_bytes, 0);
    cfg_job *j;
    size_t n;
    cr_assert_eq(cfg_expand(&c, &j, &n), 0);
    cr_assert_eq(n, 1);
    cr_assert_str_eq(mask_of(&j[0]), "full");
    cr_assert_str_eq(bench_pass_name(j[0].job.pass), "fwd");
    const attn_args *a = &j[0].job.args;
    cr_assert(a->B == 1 && a->H_kv == 8 && a->Nk == 256 && a->threads == 1 && j[0].job.seed == 1);
    free(j);
    cfg_free(&c);
}

Test(config, params_entries_multiply_only_their_kernel)
{
    cfg_config c;
    const char *text = "{\"name\":\"t\",\"threads\":[2],\"suites\":[{\"suite\":\"k\",\"kernels\":[\"naive\",\"flash\"],"
                       "\"H\":[8],\"N\":[256],\"D\":[64],\"params\":[\"flash:br=32,bc=64\",\"flash:\"]}]}";
    cr_assert_eq(cfg_parse("x.json", text, &c), 0, "%s", attn_last_error());
    cfg_job *j;
    size_t n;
    cr_assert_eq(cfg_expand(&c, &j, &n), 0);
    cr_assert_eq(n, 3);
    cr_assert(!strcmp(j[0].job.kernel->name, "naive") && !strcmp(params_of(&j[0]), ""));
    cr_assert(!strcmp(j[1].job.kernel->name, "flash") && !strcmp(params_of(&j[1]), "br=32,bc=64"));
    cr_assert(!strcmp(j[2].job.kernel->name, "flash") && !strcmp(params_of(&j[2]), ""));
    free(j);
    cfg_free(&c);

    const char *msg = parse_error(SUITE(",\"params\":[\"blas:x=1\"]"));
    cr_assert(strstr(msg, "$.suites[0].params[0]: expected \"kernel:key=value,...\""), "%s", msg);
    msg = parse_error(SUITE(",\"params\":[\"flash:br\"]"));
    cr_assert(strstr(msg, "$.suites[0].params[0]: expected key=value"), "%s", msg);
    msg = parse_error(SUITE(",\"params\":[\"flash:br=1,br=2\"]"));
    cr_assert(strstr(msg, "$.suites[0].params[0]: param br: given twice ('1', then '2')"), "%s", msg);
}

/* Checked against the kernel's table when the config is read, before any
 * job runs: a config error (exit 2), not an error row per job (exit 1). */
Test(config, an_unknown_or_out_of_range_kernel_param_is_refused_before_any_job)
{
    const char *msg = parse_error(SUITE(",\"params\":[\"flash:nope=1\"]"));
    cr_assert(strstr(msg, "x.json: suite 'k': kernel 'flash': unknown param 'nope' (expected br, bc, gather, gbr, split)"),
              "%s", msg);
    msg = parse_error(SUITE(",\"params\":[\"flash:br=100000\"]"));
    cr_assert(strstr(msg, "x.json: suite 'k': param br: expected an integer in [1, 1024], found '100000'"), "%s", msg);
}

Test(config, entries_sharing_a_suite_must_not_repeat_a_job)
{
    const char *msg = parse_error(
        "{\"name\":\"t\",\"suites\":[{\"suite\":\"k\",\"kernels\":[\"flash\"],\"H\":[8],\"N\":[256,512],\"D\":[64]},"
        "{\"suite\":\"j\",\"kernels\":[\"flash\"],\"H\":[8],\"N\":[512],\"D\":[64]},"
        "{\"suite\":\"k\",\"kernels\":[\"naive\",\"flash\"],\"H\":[8],\"N\":[512],\"D\":[64]}]}");
    cr_assert(strstr(msg, "x.json: $.suites[2]: expected jobs distinct from $.suites[0], found kernel flash"), "%s",
              msg);
}

Test(config, filters_select_suites_and_kernels_and_reject_unknown_names)
{
    cfg_config c;
    load_shipped("configs/default.json", &c);
    cfg_job *j;
    size_t n;
    const char *flash[] = {"flash"};
    cfg_filter f = {.suite = "threads", .kernels = flash, .n_kernels = 1};
    cr_assert_eq(cfg_expand_filtered(&c, &f, &j, &n), 0, "%s", attn_last_error());
    cr_assert_eq(n, 4);   /* causal x fwd,bwd x threads 1,2 */
    for (size_t i = 0; i < n; i++)
        cr_assert(!strcmp(j[i].job.suite, "threads") && !strcmp(j[i].job.kernel->name, "flash"));
    free(j);

    f = (cfg_filter){.kernels = flash, .n_kernels = 1};
    cr_assert_eq(cfg_expand_filtered(&c, &f, &j, &n), 0);
    cr_assert_eq(n, 30 + 4 + 30 + 3 + 2 + 4 + 4); /* kernels, threads, masks, decode, scaling, fidelity x2 */
    free(j);

    f = (cfg_filter){.suite = "kernel"};
    cr_assert_lt(cfg_expand_filtered(&c, &f, &j, &n), 0);
    cr_assert(strstr(attn_last_error(), "suite filter 'kernel': expected one of kernels, threads, masks, decode, scaling"), "%s",
              attn_last_error());
    const char *nope[] = {"flash", "no_such_kernel"};
    f = (cfg_filter){.kernels = nope, .n_kernels = 2};
    cr_assert_lt(cfg_expand_filtered(&c, &f, &j, &n), 0);
    cr_assert(strstr(attn_last_error(), "kernel filter 'no_such_kernel': expected one of flash, naive, blas, decode, lean"), "%s",
              attn_last_error());
    cfg_free(&c);
}

Test(config, dump_is_a_config_that_expands_to_the_same_jobs)
{
    cfg_config c, d;
    load_shipped("configs/paper.json", &c);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    cfg_dump(f, &c);
    fclose(f);
    cr_assert_eq(cfg_parse("dump", text, &d), 0, "%s\n%s", attn_last_error(), text);
    cr_assert(strstr(text, "\"max_workspace_bytes\":\t17179869184"), "%s", text);
    cfg_job *a, *b;
    size_t na, nb;
    cr_assert_eq(cfg_expand(&c, &a, &na), 0);
    cr_assert_eq(cfg_expand(&d, &b, &nb), 0);
    cr_assert_eq(na, nb);
    for (size_t i = 0; i < na; i++) {
        cr_assert_str_eq(a[i].job.kernel->name, b[i].job.kernel->name);
        cr_assert_str_eq(mask_of(&a[i]), mask_of(&b[i]));
        cr_assert_str_eq(params_of(&a[i]), params_of(&b[i]));
        cr_assert_str_eq(a[i].job.suite, b[i].job.suite);
        cr_assert_str_eq(bench_pass_name(a[i].job.pass), bench_pass_name(b[i].job.pass));
        const attn_args *x = &a[i].job.args, *y = &b[i].job.args;
        cr_assert(x->B == y->B && x->H == y->H && x->H_kv == y->H_kv && x->Nq == y->Nq && x->Nk == y->Nk &&
                  x->D == y->D && x->threads == y->threads && a[i].job.seed == b[i].job.seed);
    }
    free(a);
    free(b);
    free(text);
    cfg_free(&c);
    cfg_free(&d);
}

/* The jobs of config `text` (parsed into *cfg, which the caller frees). */
static cfg_job *jobs_of(const char *text, cfg_config *cfg, size_t *n)
{
    cr_assert_eq(cfg_parse("t.json", text, cfg), 0, "%s", attn_last_error());
    cfg_job *jobs;
    cr_assert_eq(cfg_expand(cfg, &jobs, n), 0, "%s", attn_last_error());
    return jobs;
}

Test(config, ragged_kv_lens_set_batch_and_kv_length)
{
    cfg_config cfg;
    size_t n;
    cfg_job *jobs = jobs_of("{\"name\":\"r\",\"suites\":[{\"suite\":\"decode\",\"kernels\":[\"decode\"],\"H\":[4],"
                            "\"N\":[1],\"D\":[16],\"kv_lens\":[\"100+7+0\",\"5\"]}]}",
                            &cfg, &n);
    cr_assert_eq(n, 2);
    cr_assert_eq(jobs[0].job.args.B, 3);
    cr_assert_eq(jobs[0].job.args.Nk, 100);
    cr_assert_eq(jobs[0].job.lens.kind, BENCH_LENS_RAGGED_KV);
    cr_assert(jobs[0].job.lens.n == 3 && jobs[0].job.lens.len[0] == 100 && jobs[0].job.lens.len[1] == 7 &&
              jobs[0].job.lens.len[2] == 0);
    cr_assert_eq(jobs[1].job.args.B, 1);
    cr_assert_eq(jobs[1].job.args.Nk, 5);
    free(jobs);
    cfg_free(&cfg);
}

/* A one-suite config of H 4, D 16 and `fields` is refused with an error naming `needle`. */
static void expect_suite_refused(const char *fields, const char *needle)
{
    char text[512];
    snprintf(text, sizeof text, "{\"name\":\"r\",\"suites\":[{\"suite\":\"s\",\"H\":[4],\"D\":[16],%s}]}", fields);
    cfg_config cfg;
    cr_assert_neq(cfg_parse("r.json", text, &cfg), 0, "%s accepted", fields);
    cr_assert(strstr(attn_last_error(), needle), "%s: %s", fields, attn_last_error());
    cfg_free(&cfg);
}

Test(config, ragged_kv_lens_reject_bad_lists_and_explicit_batch)
{
    static const char *const bad[] = {"\"kv_lens\":[\"100+\"]", "\"kv_lens\":[\"0+0\"]", "\"kv_lens\":[\"7+-1\"]",
                                      "\"kv_lens\":[\"8+8\"],\"B\":[2]"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char fields[256];
        snprintf(fields, sizeof fields, "\"kernels\":[\"decode\"],\"N\":[1],%s", bad[i]);
        expect_suite_refused(fields, "$.suites[0].kv_lens");
    }
}

Test(config, padded_seq_lens_set_batch_and_keep_n)
{
    cfg_config cfg;
    size_t n;
    cfg_job *jobs = jobs_of("{\"name\":\"p\",\"suites\":[{\"suite\":\"masks\",\"kernels\":[\"flash\"],\"H\":[4],"
                            "\"N\":[128,256],\"D\":[16],\"seq_lens\":[\"100+7+1\"]}]}",
                            &cfg, &n);
    cr_assert_eq(n, 2);
    for (size_t i = 0; i < 2; i++) {
        cr_assert_eq(jobs[i].job.args.B, 3);
        cr_assert_eq(jobs[i].job.args.Nk, jobs[i].job.args.Nq, "a padded batch is self-attention");
        cr_assert_eq(jobs[i].job.lens.kind, BENCH_LENS_PADDED_SEQ);
        cr_assert(jobs[i].job.lens.n == 3 && jobs[i].job.lens.len[0] == 100 && jobs[i].job.lens.len[1] == 7 &&
                  jobs[i].job.lens.len[2] == 1);
    }
    free(jobs);
    cfg_free(&cfg);
}

Test(config, padded_seq_lens_reject_longer_than_n_ragged_beside_and_explicit_batch)
{
    static const char *const bad[][2] = {{"\"seq_lens\":[\"100+129\"]", "$.suites[0].seq_lens[0]"},
                                         {"\"seq_lens\":[\"8\"],\"kv_lens\":[\"8\"]", "$.suites[0].seq_lens"},
                                         {"\"seq_lens\":[\"8+8\"],\"B\":[2]", "$.suites[0].seq_lens"},
                                         {"\"seq_lens\":[\"0+0\"]", "$.suites[0].seq_lens"}};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char fields[256];
        snprintf(fields, sizeof fields, "\"kernels\":[\"flash\"],\"N\":[128],%s", bad[i][0]);
        expect_suite_refused(fields, bad[i][1]);
    }
}
