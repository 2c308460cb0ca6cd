/* Subcommands of the attnbench binary and the small parsing helpers they
 * share. Each command returns the process exit code: 0 ok, 1 a check or job
 * failed, 2 bad usage or input (message already printed, one line). */
#ifndef ATTN_CLI_H
#define ATTN_CLI_H

#include <stdint.h>
#include <stdio.h>

int cmd_list(int argc, char **argv);
int cmd_peak(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_sweep(int argc, char **argv);
int cmd_merge(int argc, char **argv);
int cmd_cpmodel(int argc, char **argv);
int cmd_migrate(int argc, char **argv);
int cmd_mask(int argc, char **argv);
int cmd_crossover(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_icl(int argc, char **argv);

/* Prints "attnbench <cmd>: <attn_last_error()>" and returns 2. */
int cli_report(const char *cmd);

/* "--N: expected an integer in [lo, hi], found 'x'" on error. */
int cli_int64(const char *opt, const char *s, int64_t lo, int64_t hi, int64_t *out);
int cli_double(const char *opt, const char *s, double lo, double hi, double *out);

/* Splits a comma list into at most `max` items of up to 127 characters. */
#define CLI_ITEM 128
int cli_split(const char *opt, const char *s, char (*items)[CLI_ITEM], int max, int *n);

/* The command line of `cmd` over one option table bound to target. Returns 1
 * when the command is to return *exit_code: 0 after --help (usage_head and
 * the table's options printed), 2 after a usage error (an option's message,
 * or `positional` for an argument without an option). 0: parsed, go on. */
struct opt_def;
int cli_parse_table(const char *cmd, const struct opt_def *table, void *target, int argc, char **argv,
                    const char *usage_head, const char *positional, int *exit_code);

/* Unknown option / missing argument message from getopt, as a one-liner. */
int cli_usage_error(const char *cmd, const char *what);

/* After getopt_long returned '?' (an unknown option, or one without its
 * value): cli_usage_error naming the argument, argv[optind - 1]. */
int cli_unknown_option(const char *cmd, int argc, char **argv);

#endif
