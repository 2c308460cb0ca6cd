/* Options declared once. An option set (a training run, a model, a task's or
 * a kernel's parameters, a benchmark job) is one table of opt_def rows: name, type, default,
 * range or enum names, help, and where the value lives in the typed struct
 * (offsetof) or, for the few values that need code, a setter. The command
 * line, the config reader, the canonical JSON (the text job_ids hash, and
 * checkpoint headers), --help and `attnbench list` all read the same rows, so
 * adding an option is one row plus the code that uses the value.
 *
 * Values are checked once, here, at the edge: enumerations become their index
 * (the struct holds the enum), numbers are range-checked, and an option given
 * twice is an error everywhere with one message shape:
 *     "<where>: given twice ('<first>', then '<second>')". */
#ifndef ATTN_COMMON_OPTIONS_H
#define ATTN_COMMON_OPTIONS_H

#include "params.h"

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum {
    OPT_INT,    /* int64_t */
    OPT_INT32,  /* int (or an enum field stored as its number) */
    OPT_UINT,   /* uint64_t (seeds) */
    OPT_DOUBLE, /* double */
    OPT_FLOAT,  /* float */
    OPT_BOOL,   /* int 0/1; on the command line a flag without a value */
    OPT_ENUM,   /* int index into names[]; text and JSON use the name */
    OPT_STRING, /* char[size], copied */
    OPT_ARG,    /* const char *, borrowed from argv: command line only */
    OPT_PARAMS, /* param_bag of "key=value" items: repeatable flag, JSON list of strings */
    OPT_INT_LIST,    /* int64_t[size] and its count (int at count_offset): "1,2,3"; JSON a number or a list */
    OPT_DOUBLE_LIST, /* double[size] likewise */
    OPT_CUSTOM, /* through the row's hooks (a value the struct stores its own way) */
} opt_type;

enum {
    OPT_NO_CLI = 1u << 0,        /* not a command-line option */
    OPT_NO_CONFIG = 1u << 1,     /* not a config key (the config reader has its own, e.g. a grid) */
    OPT_NO_JSON = 1u << 2,       /* not in the canonical JSON (changes no result) */
    OPT_JSON_OPTIONAL = 1u << 3, /* canonical JSON written before the option existed may lack it */
    OPT_JSON_NULL_EMPTY = 1u << 4, /* OPT_STRING: "" is written (and read) as null */
    OPT_INVERT = 1u << 5,        /* OPT_BOOL: the flag sets 0 (--quiet clears progress) */
    OPT_REQUIRED = 1u << 6,      /* the command line must give it */
    OPT_RECORDED = 1u << 7,      /* kernel parameter written into every result row's params, its
                                    default included (the seed of a random draw) */
    OPT_JSON_OMIT_DEFAULT = 1u << 8, /* the default is written as no key, and no key reads as the default:
                                        canonical JSON from before the option existed keeps its hash */
    OPT_INTERNAL = OPT_NO_CLI | OPT_NO_CONFIG, /* canonical JSON only (derived values) */
};

typedef struct opt_def opt_def;
struct opt_def {
    const char *name;  /* config key and, with '_' as '-', the command-line name */
    opt_type type;
    size_t offset;     /* of the value in the target struct */
    size_t size;       /* OPT_STRING: the buffer size; lists: the most values */
    size_t count_offset; /* lists: of the int that counts the values */
    double def;        /* default: the number, 0/1, the enum index, or a list's one value */
    const char *def_str; /* OPT_STRING default; for --help: the default's text when def is not it */
    double lo, hi;     /* range of OPT_INT* / OPT_UINT / OPT_DOUBLE / OPT_FLOAT */
    const char *const *names; /* OPT_ENUM: NULL-terminated; "" names an unset value never parsed */
    const char *help;  /* one line for --help and list; NULL: not shown */
    const char *metavar; /* "N", "FILE"; NULL: from the type */
    const char *group; /* --help section */
    unsigned flags;
    const char *cli;   /* command-line name when it is not the config name */
    const char *json;  /* canonical JSON key when it is not the config name */
    /* Canonical JSON: when set, the key is written only while row json_when of
     * the same table (a number or an enumeration) holds the value json_when_is,
     * and its absence reads as no value given: an option of one variant leaves
     * the job_ids of the others as they were. */
    const char *json_when;
    double json_when_is;
    /* OPT_CUSTOM hooks */
    int (*set_text)(void *target, const char *text, const char *where);
    cJSON *(*to_json)(const void *target);
    int (*from_json)(void *target, const cJSON *x, const char *where);
};

/* Tables are arrays of rows ended by a row whose name is NULL. */
const opt_def *opt_find(const opt_def *rows, const char *name);
/* Every row's default into target (OPT_PARAMS and OPT_CUSTOM rows untouched). */
void opt_defaults(const opt_def *rows, void *target);

/* One value from text ("12", "cosine"); where names it in messages ("--layers",
 * "param L"): "<where>: expected an integer in [1, 16], found 'x'". */
int opt_set_text(const opt_def *d, void *target, const char *text, const char *where);
/* One value from a config's JSON value; where is its JSON path:
 * "<file: $.a.b>: expected an integer in [1, 16], found a string". */
int opt_set_json(const opt_def *d, void *target, const cJSON *x, const char *where);

/* Config objects. Every config row present in obj is set (where: the
 * object's path, "t.json: $.trainings[0]"). */
int opt_read_config(const opt_def *rows, void *target, const cJSON *obj, const char *where);
/* Fails on a key of obj that is neither a config row of one of the tables
 * (NULL-terminated) nor in extra (NULL-terminated, may be NULL), and on a key
 * given twice. */
int opt_check_keys(const opt_def *const *tables, const char *const *extra, const cJSON *obj, const char *where);

/* Canonical JSON: every JSON row in table order (a json_when row only while
 * its condition holds), numbers as numbers, enums by name; its unformatted
 * print is what job_ids hash. */
void opt_write_json(const opt_def *rows, const void *target, cJSON *obj);
/* Reads it back (checkpoint headers); types are checked, ranges are not (the
 * writer was this program). Rows absent from obj are errors unless
 * OPT_JSON_OPTIONAL or json_when. where: "file: model" -> "file: model.layers: ...". */
int opt_read_json(const opt_def *rows, void *target, const cJSON *obj, const char *where);

/* "key=value" bags (task and kernel parameters): every key must be a row. */
int opt_bag_check(const opt_def *rows, const param_bag *p, const char *owner);
/* opt_bag_check, then every given number, flag or enumeration parsed and
 * range-checked as the owner will read it, so bad values are refused before
 * any work starts (other types are left to the owner). */
int opt_bag_validate(const opt_def *rows, const param_bag *p, const char *owner);
/* Every row of a bag into target: the given value or the row's default
 * (opt_bag_check first). Messages: "param L: expected ...". */
int opt_bag_read(const opt_def *rows, void *target, const param_bag *p, const char *owner);
/* The value of row `name` (OPT_INT / OPT_DOUBLE) of bag p, the row's default
 * when absent; on a bad value *rc is set and the default returned. */
int64_t opt_bag_int(const opt_def *rows, const param_bag *p, const char *name, int *rc);
double opt_bag_double(const opt_def *rows, const param_bag *p, const char *name, int *rc);

/* "V, L, D": the names of a table's rows. */
void opt_names(const opt_def *rows, char *buf, size_t n);

/* --help: the rows of `group` (NULL: all), one line each. */
void opt_print_help(FILE *f, const opt_def *rows, const char *group);
/* One line for `attnbench list`: "L=256 (4..16777216) D=16 ... : help". */
void opt_summary(const opt_def *rows, char *buf, size_t n);

/* Command line: one table bound to its target struct. */
typedef struct {
    const opt_def *rows;
    void *target;
} opt_bind;

/* getopt_long over the tables (NULL-terminated binds); --help/-h sets *help
 * and stops. Parsing stops at the first error: an unknown option or a missing
 * value records "unknown option or missing value: '<arg>'"; positional arguments
 * remain from optind on. */
int opt_parse_cli(const opt_bind *binds, int argc, char **argv, int *help);

#endif
