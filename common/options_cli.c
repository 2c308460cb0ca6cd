/* The option engine's command-line side (options.h): --help lines, the
 * one-line summaries of `attnbench list`, and getopt_long over the tables. */
#include "options.h"

#include "attn_error.h"
#include "options_internal.h"

#include <getopt.h>
#include <string.h>

static void cli_name(const opt_def *d, char *buf, size_t n)
{
    snprintf(buf, n, "%s", d->cli ? d->cli : d->name);
    for (char *c = buf; *c; c++)
        if (*c == '_')
            *c = '-';
}

/* The default as --help shows it ("" when there is none to show). */
static void default_text(const opt_def *d, char *buf, size_t n)
{
    buf[0] = '\0';
    if (d->def_str && d->type != OPT_STRING)
        snprintf(buf, n, "%s", d->def_str);
    else if (d->type == OPT_STRING)
        snprintf(buf, n, "%s", d->def_str ? d->def_str : "");
    else if (d->type == OPT_ENUM)
        snprintf(buf, n, "%s", d->names[(int)d->def]);
    else if (is_int_type(d->type))
        snprintf(buf, n, "%lld", as_ll(d->def));
    else if (d->type == OPT_DOUBLE || d->type == OPT_FLOAT || d->type == OPT_DOUBLE_LIST)
        snprintf(buf, n, "%g", d->def);
}

static void metavar(const opt_def *d, char *buf, size_t n)
{
    if (d->type == OPT_BOOL)
        buf[0] = '\0';
    else if (d->metavar)
        snprintf(buf, n, " %s", d->metavar);
    else if (d->type == OPT_ENUM) {
        char names[256];
        opt_enum_names(d, "|", names, sizeof names);
        snprintf(buf, n, " %s", names);
    } else if (is_list(d->type))
        snprintf(buf, n, " %s", d->type == OPT_INT_LIST ? "N[,N...]" : "x[,x...]");
    else
        snprintf(buf, n, " %s", is_int_type(d->type) ? "N" : d->type == OPT_PARAMS ? "k=v" : "x");
}

/* "  --name META  text", the text wrapped at HELP_WIDTH columns and indented
 * under its first line. */
#define HELP_INDENT 22
#define HELP_WIDTH 100
static void print_wrapped(FILE *f, const char *head, const char *text)
{
    int col = fprintf(f, "%-*s", HELP_INDENT - 1, head);
    while (*text) {
        size_t w = strcspn(text, " ");
        if (col > HELP_INDENT && col + 1 + (int)w > HELP_WIDTH)
            col = fprintf(f, "\n%*s", HELP_INDENT, "") - 1;
        else
            col += fprintf(f, " ");
        col += fprintf(f, "%.*s", (int)w, text);
        text += w;
        text += strspn(text, " ");
    }
    fputc('\n', f);
}

void opt_print_help(FILE *f, const opt_def *rows, const char *group)
{
    for (const opt_def *d = rows; d->name; d++) {
        if (!d->help || (d->flags & OPT_NO_CLI) || (group && (!d->group || strcmp(group, d->group))))
            continue;
        char name[64], meta[300], def[128], head[400];
        cli_name(d, name, sizeof name), metavar(d, meta, sizeof meta), default_text(d, def, sizeof def);
        snprintf(head, sizeof head, "  --%s%s", name, meta);
        char text[1024];
        snprintf(text, sizeof text, "%s%s%s", d->help, def[0] ? "; default " : "", def);
        print_wrapped(f, head, text);
    }
}

void opt_summary(const opt_def *rows, char *buf, size_t n)
{
    buf[0] = '\0';
    for (const opt_def *d = rows; d && d->name; d++) {
        char def[128], range[300] = "";
        default_text(d, def, sizeof def);
        if (is_int_type(d->type))
            snprintf(range, sizeof range, " [%lld, %lld]", as_ll(d->lo), as_ll(d->hi));
        else if (d->type == OPT_DOUBLE || d->type == OPT_FLOAT || d->type == OPT_DOUBLE_LIST)
            snprintf(range, sizeof range, " [%g, %g]", d->lo, d->hi);
        else if (d->type == OPT_ENUM) {
            char names[256];
            opt_enum_names(d, "|", names, sizeof names);
            snprintf(range, sizeof range, " (%s)", names);
        }
        snprintf(buf + strlen(buf), n - strlen(buf), "%s%s=%s%s%s%s", buf[0] ? "; " : "", d->name, def, range,
                 d->help ? " " : "", d->help ? d->help : "");
    }
}

/* ---------------------------------------------------------------- command line */

#define OPT_CLI_MAX 96

typedef struct {
    const opt_def *def;
    void *target;
    const char *first; /* the value given first ("" for a flag), NULL until given */
} cli_slot;

static int cli_one(cli_slot *s, const char *value)
{
    char where[64], name[48];
    cli_name(s->def, name, sizeof name);
    snprintf(where, sizeof where, "--%s", name);
    if (s->first && s->def->type != OPT_PARAMS)
        return opt_given_twice(where, value ? s->first : NULL, value);
    s->first = value ? value : "";
    if (s->def->type == OPT_BOOL)
        return *(int *)field(s->target, s->def) = !(s->def->flags & OPT_INVERT), 0;
    return opt_set_text(s->def, s->target, value, where);
}

static int cli_required(const cli_slot *slots, int n)
{
    for (int i = 0; i < n; i++)
        if ((slots[i].def->flags & OPT_REQUIRED) && !slots[i].first) {
            char name[48];
            cli_name(slots[i].def, name, sizeof name);
            return attn_fail(ATTN_EINVAL, "--%s is required", name);
        }
    return 0;
}

int opt_parse_cli(const opt_bind *binds, int argc, char **argv, int *help)
{
    struct option opts[OPT_CLI_MAX + 2];
    char names[OPT_CLI_MAX][48];
    cli_slot slots[OPT_CLI_MAX];
    int n = 0, c, rc = 0;
    for (const opt_bind *b = binds; b->rows; b++)
        for (const opt_def *d = b->rows; d->name && n < OPT_CLI_MAX; d++)
            if (!(d->flags & OPT_NO_CLI)) {
                cli_name(d, names[n], sizeof names[n]);
                opts[n] = (struct option){names[n], d->type == OPT_BOOL ? no_argument : required_argument, 0, 256 + n};
                slots[n++] = (cli_slot){d, b->target, NULL};
            }
    opts[n] = (struct option){"help", no_argument, 0, 'h'};
    opts[n + 1] = (struct option){0, 0, 0, 0};
    *help = 0;
    optind = 1;
    while (!rc && (c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
        if (c == 'h')
            return *help = 1, 0;
        rc = c >= 256 && c < 256 + n ? cli_one(&slots[c - 256], optarg)
                                     : attn_fail(ATTN_EINVAL, "unknown option or missing value: '%s'",
                                                 optind > 0 && optind <= argc ? argv[optind - 1] : "?");
    }
    return rc ? rc : cli_required(slots, n);
}
