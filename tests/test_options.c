/* The option engine: one table read by the command line, configs, the
 * canonical JSON, --help and bags; repeats are errors everywhere. */
#include "common/attn_error.h"
#include "common/options.h"
#include "harness/train/train_run.h"
#include "kernels/core/registry.h"
#include "tasks/task.h"

#include <criterion/criterion.h>
#include <getopt.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

typedef enum { SHAPE_ROUND, SHAPE_SQUARE } shape_kind;
static const char *const shape_names[] = {"round", "square", NULL};

typedef struct {
    int64_t count;
    int small;
    uint64_t seed;
    double rate;
    float drop;
    int flag, verbose;
    int shape;
    char name[8];
    char dir[32];
    const char *out;
    param_bag params;
} sample;

#define AT(f) offsetof(sample, f)
static const opt_def rows[] = {
    {.name = "count", .type = OPT_INT, .offset = AT(count), .def = 3, .lo = 1, .hi = 16, .help = "how many",
     .group = "a", .flags = OPT_REQUIRED},
    {.name = "small", .type = OPT_INT32, .offset = AT(small), .def = 0, .lo = 0, .hi = 4, .help = "small one",
     .group = "a", .flags = OPT_JSON_OPTIONAL},
    {.name = "seed", .type = OPT_UINT, .offset = AT(seed), .def = 1, .lo = 0, .hi = 9.3e18, .help = "seed",
     .group = "b"},
    {.name = "rate", .type = OPT_DOUBLE, .offset = AT(rate), .def = 0.5, .lo = 0, .hi = 1, .help = "rate",
     .group = "b"},
    {.name = "drop", .type = OPT_FLOAT, .offset = AT(drop), .def = 0, .lo = 0, .hi = 0.95, .help = "dropout",
     .group = "b"},
    {.name = "flag", .type = OPT_BOOL, .offset = AT(flag), .help = "a flag", .group = "b"},
    {.name = "quiet", .type = OPT_BOOL, .offset = AT(verbose), .def = 1, .help = "less output", .group = "b",
     .flags = OPT_INVERT | OPT_NO_JSON | OPT_NO_CONFIG},
    {.name = "shape", .type = OPT_ENUM, .offset = AT(shape), .def = SHAPE_ROUND, .names = shape_names,
     .help = "shape", .group = "a"},
    {.name = "name", .type = OPT_STRING, .offset = AT(name), .size = sizeof(((sample *)0)->name), .def_str = "x",
     .help = "name", .group = "a"},
    {.name = "data", .type = OPT_STRING, .offset = AT(dir), .size = sizeof(((sample *)0)->dir), .help = "dir",
     .group = "a", .json = "data_dir", .flags = OPT_JSON_NULL_EMPTY},
    {.name = "out", .type = OPT_ARG, .offset = AT(out), .help = "output", .group = "b",
     .flags = OPT_NO_CONFIG | OPT_NO_JSON},
    {.name = "params", .type = OPT_PARAMS, .offset = AT(params), .help = "k=v", .group = "a", .cli = "param"},
    {0},
};

static int parse_cli(sample *s, int argc, const char **argv, int *help)
{
    memset(s, 0, sizeof *s);
    opt_defaults(rows, s);
    const opt_bind b[] = {{rows, s}, {0}};
    return opt_parse_cli(b, argc, (char **)argv, help);
}

Test(options, defaults_come_from_the_table)
{
    sample s;
    memset(&s, 0xff, sizeof s);
    opt_defaults(rows, &s);
    cr_assert(s.count == 3 && s.small == 0 && s.seed == 1 && s.rate == 0.5 && s.flag == 0 && s.verbose == 1);
    cr_assert(s.shape == SHAPE_ROUND && !strcmp(s.name, "x") && !s.dir[0] && !s.out);
}

Test(options, command_line_sets_every_type_and_enums_become_their_index)
{
    sample s = {0};
    int help;
    const char *argv[] = {"t", "--count", "7", "--small", "2", "--seed", "123456789012", "--rate", "0.25",
                          "--drop", "0.5", "--flag", "--quiet", "--shape", "square", "--name", "abc",
                          "--out", "o.csv", "--param", "a=1", "--param", "b=2", "pos"};
    cr_assert_eq(parse_cli(&s, 24, argv, &help), 0, "%s", attn_last_error());
    cr_assert(!help && optind == 23);
    cr_assert(s.count == 7 && s.small == 2 && s.seed == 123456789012ull && s.rate == 0.25 && s.drop == 0.5f);
    cr_assert(s.flag == 1 && s.verbose == 0 && s.shape == SHAPE_SQUARE && !strcmp(s.name, "abc"));
    cr_assert(!strcmp(s.out, "o.csv") && s.params.n == 2);
}

Test(options, command_line_values_out_of_range_or_unknown_name_the_option_and_what_was_expected)
{
    static const struct {
        const char *opt, *val, *msg;
    } cases[] = {
        {"--count", "17", "--count: expected an integer in [1, 16], found '17'"},
        {"--count", "2x", "--count: expected an integer in [1, 16], found '2x'"},
        {"--rate", "1.5", "--rate: expected a number in [0, 1], found '1.5'"},
        {"--shape", "oval", "--shape: expected one of round, square, found 'oval'"},
        {"--name", "toolongname", "--name: expected a value of at most 7 characters, found 'toolongname'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        sample s;
        int help;
        int first = !strcmp(cases[i].opt, "--count"); /* else --count 2 before it */
        const char *argv[] = {"t", "--count", "2", cases[i].opt, cases[i].val};
        cr_assert_lt(parse_cli(&s, first ? 3 : 5, first ? (const char *[]){"t", cases[i].opt, cases[i].val} : argv,
                               &help), 0, "case %zu", i);
        cr_assert_str_eq(attn_last_error(), cases[i].msg);
    }
}

Test(options, an_option_given_twice_is_an_error_with_both_values)
{
    sample s;
    int help;
    const char *twice[] = {"t", "--count", "2", "--count", "3"};
    cr_assert_lt(parse_cli(&s, 5, twice, &help), 0);
    cr_assert_str_eq(attn_last_error(), "--count: given twice ('2', then '3')");
    const char *flags[] = {"t", "--count", "2", "--flag", "--flag"};
    cr_assert_lt(parse_cli(&s, 5, flags, &help), 0);
    cr_assert_str_eq(attn_last_error(), "--flag: given twice");
    const char *params[] = {"t", "--count", "2", "--param", "L=32", "--param", "L=40"};
    cr_assert_lt(parse_cli(&s, 7, params, &help), 0);
    cr_assert_str_eq(attn_last_error(), "param L: given twice ('32', then '40')");
}

Test(options, a_required_option_missing_and_help_are_reported)
{
    sample s;
    int help;
    const char *none[] = {"t", "--rate", "0.1"};
    cr_assert_lt(parse_cli(&s, 3, none, &help), 0);
    cr_assert_str_eq(attn_last_error(), "--count is required");
    const char *h[] = {"t", "--help"};
    cr_assert_eq(parse_cli(&s, 2, h, &help), 0);
    cr_assert_eq(help, 1);
    const char *unknown[] = {"t", "--nope"};
    opterr = 0;
    cr_assert_lt(parse_cli(&s, 2, unknown, &help), 0);
    opterr = 1;
    cr_assert_str_eq(attn_last_error(), "unknown option or missing value: '--nope'");
}

typedef struct {
    const char *json, *msg;
} json_case;

/* Each config object fails with exactly its message (target reset to the defaults first). */
static void expect_config_errors(const opt_def *table, void *target, size_t size, const json_case *cases, size_t n,
                                 const char *where)
{
    for (size_t i = 0; i < n; i++) {
        memset(target, 0, size);
        opt_defaults(table, target);
        cJSON *o = cJSON_Parse(cases[i].json);
        cr_assert_lt(opt_read_config(table, target, o, where), 0, "case %zu", i);
        cr_assert_str_eq(attn_last_error(), cases[i].msg);
        cJSON_Delete(o);
    }
}

Test(options, config_values_are_checked_with_their_json_path)
{
    static const json_case cases[] = {
        {"{\"count\": 0}", "f.json: $.x.count: expected an integer in [1, 16], found a number"},
        {"{\"count\": 2.5}", "f.json: $.x.count: expected an integer in [1, 16], found a number"},
        {"{\"rate\": \"1\"}", "f.json: $.x.rate: expected a number in [0, 1], found a string"},
        {"{\"shape\": \"oval\"}", "f.json: $.x.shape: expected one of round, square, found 'oval'"},
        {"{\"flag\": 2}", "f.json: $.x.flag: expected 0 or 1, found a number"},
        {"{\"params\": \"a=1\"}", "f.json: $.x.params: expected a list of \"key=value\" strings, found a string"},
        {"{\"params\": [\"a=1\", \"a=2\"]}", "f.json: $.x.params: param a: given twice ('1', then '2')"},
        {"{\"seed\": 1e17}", "f.json: $.x.seed: expected an integer in [0, 9007199254740992], found a number"},
    };
    sample s;
    expect_config_errors(rows, &s, sizeof s, cases, sizeof cases / sizeof *cases, "f.json: $.x");
    opt_defaults(rows, &s);
    memset(&s.params, 0, sizeof s.params);
    cJSON *o = cJSON_Parse("{\"count\": 4, \"shape\": \"square\", \"flag\": true, \"data\": \"/d\", \"params\": [\"k=v\"]}");
    cr_assert_eq(opt_read_config(rows, &s, o, "f.json: $.x"), 0, "%s", attn_last_error());
    cr_assert(s.count == 4 && s.shape == SHAPE_SQUARE && s.flag == 1 && !strcmp(s.dir, "/d") && s.params.n == 1);
    cJSON_Delete(o);
}

Test(options, config_keys_unknown_or_repeated_are_errors)
{
    const opt_def *tables[] = {rows, NULL};
    const char *extra[] = {"grid", NULL};
    cJSON *o = cJSON_Parse("{\"count\": 2, \"grid\": [1], \"quiet\": 1}");
    cr_assert_lt(opt_check_keys(tables, extra, o, "f.json: $.x"), 0, "a command-line-only option is no config key");
    cr_assert_str_eq(attn_last_error(), "f.json: $.x: unknown key \"quiet\"");
    cJSON_Delete(o);
    o = cJSON_Parse("{\"count\": 2, \"grid\": [1], \"count\": 3}");
    cr_assert_lt(opt_check_keys(tables, extra, o, "f.json: $.x"), 0);
    cr_assert_str_eq(attn_last_error(), "f.json: $.x.count: given twice ('2', then '3')");
    cJSON_Delete(o);
    o = cJSON_Parse("{\"count\": 2, \"grid\": [1]}");
    cr_assert_eq(opt_check_keys(tables, extra, o, "f.json: $.x"), 0);
    cJSON_Delete(o);
}

Test(options, canonical_json_is_in_table_order_and_reads_back_to_the_same_values)
{
    sample s, back;
    opt_defaults(rows, &s);
    memset(&s.params, 0, sizeof s.params);
    s.count = 9, s.seed = 77, s.drop = 0.1f, s.shape = SHAPE_SQUARE;
    param_bag_add(&s.params, "L=4");
    cJSON *o = cJSON_CreateObject();
    opt_write_json(rows, &s, o);
    char *text = cJSON_PrintUnformatted(o);
    char want[256];
    snprintf(want, sizeof want, "{\"count\":9,\"small\":0,\"seed\":77,\"rate\":0.5,\"drop\":%.17g,\"flag\":0,"
             "\"shape\":\"square\",\"name\":\"x\",\"data_dir\":null,\"params\":[\"L=4\"]}", (double)0.1f);
    cJSON *w = cJSON_Parse(want);
    char *wtext = cJSON_PrintUnformatted(w);
    cr_assert_str_eq(text, wtext);
    memset(&back, 0, sizeof back);
    cJSON_DeleteItemFromObject(o, "small"); /* optional: absent in older files */
    cr_assert_eq(opt_read_json(rows, &back, o, "f: run"), 0, "%s", attn_last_error());
    cr_assert(back.count == 9 && back.seed == 77 && back.drop == s.drop && back.shape == SHAPE_SQUARE);
    cr_assert(!strcmp(back.name, "x") && !back.dir[0] && back.params.n == 1);
    cJSON_DeleteItemFromObject(o, "count");
    cr_assert_lt(opt_read_json(rows, &back, o, "f: run"), 0);
    cr_assert_str_eq(attn_last_error(), "f: run.count: expected a number, found nothing");
    free(text), free(wtext);
    cJSON_Delete(o), cJSON_Delete(w);
}

Test(options, bags_are_read_through_the_table_with_defaults_and_ranges)
{
    param_bag p = {0};
    sample s;
    cr_assert_eq(param_bag_add(&p, "count=5"), 0);
    cr_assert_eq(param_bag_add(&p, "shape=square"), 0);
    cr_assert_eq(opt_bag_read(rows, &s, &p, "task t"), 0, "%s", attn_last_error());
    cr_assert(s.count == 5 && s.shape == SHAPE_SQUARE && s.rate == 0.5);
    int rc = 0;
    cr_assert_eq(opt_bag_int(rows, &p, "count", &rc), 5);
    cr_assert_eq(opt_bag_double(rows, &p, "rate", &rc), 0.5);
    cr_assert_eq(rc, 0);
    cr_assert_eq(param_bag_add(&p, "bogus=1"), 0);
    cr_assert_lt(opt_bag_check(rows, &p, "task t"), 0);
    cr_assert(strstr(attn_last_error(), "task t: unknown param 'bogus' (expected count, small,"), "%s", attn_last_error());
    param_bag q = {0};
    cr_assert_eq(param_bag_add(&q, "count=99"), 0);
    cr_assert_eq(opt_bag_int(rows, &q, "count", &rc), 3, "the default on error");
    cr_assert_lt(rc, 0);
    cr_assert_str_eq(attn_last_error(), "param count: expected an integer in [1, 16], found '99'");
}

Test(options, help_lists_a_groups_options_with_their_defaults)
{
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    opt_print_help(f, rows, "a");
    fclose(f);
    cr_assert(strstr(buf, "--count N") && strstr(buf, "how many; default 3"), "%s", buf);
    cr_assert(strstr(buf, "--shape round|square") && strstr(buf, "--param k=v"), "%s", buf);
    cr_assert_null(strstr(buf, "--rate"), "group b is not listed: %s", buf);
    free(buf);
    char line[512];
    const opt_def two[] = {rows[0], rows[7], {0}};
    opt_summary(two, line, sizeof line);
    cr_assert_str_eq(line, "count=3 [1, 16] how many; shape=round (round|square) shape");
}

typedef struct {
    int64_t sizes[4];
    int n_sizes;
    double rates[3];
    int n_rates;
} grid;

static const opt_def grid_rows[] = {
    {.name = "sizes", .type = OPT_INT_LIST, .offset = offsetof(grid, sizes), .size = 4,
     .count_offset = offsetof(grid, n_sizes), .def = 8, .lo = 1, .hi = 100, .help = "sizes"},
    {.name = "rates", .type = OPT_DOUBLE_LIST, .offset = offsetof(grid, rates), .size = 3,
     .count_offset = offsetof(grid, n_rates), .def = 0.5, .lo = 0, .hi = 1, .help = "rates"},
    {0},
};

Test(options, lists_default_to_one_value_and_take_commas_or_json_lists_within_size_and_range)
{
    grid g;
    opt_defaults(grid_rows, &g);
    cr_assert(g.n_sizes == 1 && g.sizes[0] == 8 && g.n_rates == 1 && g.rates[0] == 0.5);
    cr_assert_eq(opt_set_text(&grid_rows[0], &g, "1,2,3", "--sizes"), 0, "%s", attn_last_error());
    cr_assert(g.n_sizes == 3 && g.sizes[2] == 3);
    cr_assert_lt(opt_set_text(&grid_rows[0], &g, "1,2,3,4,5", "--sizes"), 0);
    cr_assert_str_eq(attn_last_error(),
                     "--sizes: expected a comma-separated list of 1..4 integers in [1, 100], found '1,2,3,4,5'");
    cr_assert_lt(opt_set_text(&grid_rows[0], &g, "1,200", "--sizes"), 0);
    cr_assert_str_eq(attn_last_error(), "--sizes: expected an integer in [1, 100], found '200'");
    cJSON *o = cJSON_Parse("{\"sizes\": 5, \"rates\": [0.25, 1]}");
    cr_assert_eq(opt_read_config(grid_rows, &g, o, "f: $"), 0, "%s", attn_last_error());
    cr_assert(g.n_sizes == 1 && g.sizes[0] == 5 && g.n_rates == 2 && g.rates[1] == 1);
    cJSON_Delete(o);
    static const json_case bad[] = {
        {"{\"sizes\": []}", "f: $.sizes: expected an integer or a list of 1..4 integers in [1, 100], found an array"},
        {"{\"sizes\": [1, \"2\"]}", "f: $.sizes: expected an integer or a list of 1..4 integers in [1, 100], found a string"},
        {"{\"rates\": [0.5, 2]}", "f: $.rates: expected a number in [0, 1], found a number"},
    };
    expect_config_errors(grid_rows, &g, sizeof g, bad, sizeof bad / sizeof *bad, "f: $");
}

Test(options, lists_write_canonical_json_arrays_that_read_back)
{
    grid g, back;
    opt_defaults(grid_rows, &g);
    cr_assert_eq(opt_set_text(&grid_rows[0], &g, "4,2", "--sizes"), 0);
    cJSON *o = cJSON_CreateObject();
    opt_write_json(grid_rows, &g, o);
    char *text = cJSON_PrintUnformatted(o);
    cr_assert_str_eq(text, "{\"sizes\":[4,2],\"rates\":[0.5]}");
    memset(&back, 0, sizeof back);
    cr_assert_eq(opt_read_json(grid_rows, &back, o, "f"), 0, "%s", attn_last_error());
    cr_assert(back.n_sizes == 2 && back.sizes[0] == 4 && back.sizes[1] == 2 && back.n_rates == 1 && back.rates[0] == 0.5);
    free(text);
    cJSON_Delete(o);
}

/* A row's own default must pass its own check (rows whose default depends on
 * the problem say so in def_str), and every row a user sets says what it is. */
static void check_table(const opt_def *rows, const char *owner)
{
    for (const opt_def *d = rows; d && d->name; d++) {
        if ((d->flags & OPT_INTERNAL) == OPT_INTERNAL)
            continue; /* fitted to the data, never set by a user */
        cr_assert(d->help || d->def_str, "%s: %s has neither help nor a default text", owner, d->name);
        int number = d->type == OPT_INT || d->type == OPT_INT32 || d->type == OPT_UINT || d->type == OPT_DOUBLE ||
                     d->type == OPT_FLOAT;
        if (d->def_str || !number)
            continue;
        cr_assert(d->def >= d->lo && d->def <= d->hi, "%s: default %s=%g outside [%g, %g]", owner, d->name, d->def,
                  d->lo, d->hi);
    }
}

Test(options, every_task_and_kernel_table_has_help_and_defaults_inside_their_ranges)
{
    int tasks = 0, kernels = 0;
    for (const task_def *const *t = task_registry(); *t; t++, tasks++)
        check_table((*t)->params, (*t)->name);
    for (const attn_kernel *const *k = attn_registry(); *k; k++, kernels++)
        check_table((*k)->params, (*k)->name);
    check_table(nn_model_opts, "model");
    check_table(train_run_opts_table, "train");
    cr_assert(tasks > 10 && kernels > 10, "registries: %d tasks, %d kernels", tasks, kernels);
    cr_assert_not_null(opt_find(task_find("mqar")->params, "L"), "the length key extrapolation scales");
    cr_assert_not_null(opt_find(task_find("niah")->params, "depth"));
}
