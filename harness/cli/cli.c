#include "cli.h"

#include "common/attn_error.h"
#include "common/options.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

int cli_report(const char *cmd)
{
    fprintf(stderr, "attnbench %s: %s\n", cmd, attn_last_error());
    return 2;
}

int cli_parse_table(const char *cmd, const opt_def *table, void *target, int argc, char **argv,
                    const char *usage_head, const char *positional, int *exit_code)
{
    const opt_bind binds[] = {{table, target}, {0}};
    int help, rc = opt_parse_cli(binds, argc, argv, &help);
    if (help) {
        fputs(usage_head, stdout);
        opt_print_help(stdout, table, NULL);
        *exit_code = 0;
        return 1;
    }
    if (rc || optind < argc) {
        *exit_code = cli_usage_error(cmd, rc ? attn_last_error() : positional);
        return 1;
    }
    return 0;
}

int cli_usage_error(const char *cmd, const char *what)
{
    fprintf(stderr, "attnbench %s: %s (see 'attnbench %s --help')\n", cmd, what, cmd);
    return 2;
}

int cli_unknown_option(const char *cmd, int argc, char **argv)
{
    attn_fail(ATTN_EINVAL, "unknown option or missing value: '%s'", optind > 0 && optind <= argc ? argv[optind - 1] : "?");
    return cli_usage_error(cmd, attn_last_error());
}

int cli_int64(const char *opt, const char *s, int64_t lo, int64_t hi, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*s == '\0' || *end != '\0' || errno || v < lo || v > hi)
        return attn_fail(ATTN_EINVAL, "%s: expected an integer in [%lld, %lld], found '%s'", opt,
                         (long long)lo, (long long)hi, s);
    *out = v;
    return 0;
}

int cli_double(const char *opt, const char *s, double lo, double hi, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (*s == '\0' || *end != '\0' || !(v >= lo && v <= hi))
        return attn_fail(ATTN_EINVAL, "%s: expected a number in [%g, %g], found '%s'", opt, lo, hi, s);
    *out = v;
    return 0;
}

int cli_split(const char *opt, const char *s, char (*items)[CLI_ITEM], int max, int *n)
{
    *n = 0;
    const char *p = s;
    while (1) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len == 0 || len >= CLI_ITEM)
            return attn_fail(ATTN_EINVAL, "%s: expected a comma-separated list of names, found '%s'", opt, s);
        if (*n >= max)
            return attn_fail(ATTN_EINVAL, "%s: at most %d items", opt, max);
        memcpy(items[*n], p, len);
        items[(*n)++][len] = '\0';
        if (!comma)
            return 0;
        p = comma + 1;
    }
}
