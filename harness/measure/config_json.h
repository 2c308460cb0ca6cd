/* The sweep config reader's JSON helpers, shared by its files: a value's
 * place in the file for messages, strict typed reads of cJSON items (unknown
 * and repeated keys, wrong types, empty or repeated list values are errors,
 * each reported as `file: $.json.path: expected ..., found ...`), and
 * defaults for lists an entry leaves out. Private to harness/measure/config*.c. */
#ifndef ATTN_CONFIG_JSON_H
#define ATTN_CONFIG_JSON_H

#include "config.h"
#include "common/options.h"

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#define CFG_EXACT_MAX 9007199254740992LL   /* 2^53: larger JSON numbers are not exact doubles */

/* Where a value sits, for messages: the file and the JSON path. */
typedef struct {
    const char *file;
    char path[192];
} cfg_where;

/* The place of member `key` / element `i` of the value at *w (a path deeper
 * than the buffer, only with absurd keys, is cut short). */
cfg_where cfg_json_key(const cfg_where *w, const char *key);
cfg_where cfg_json_index(const cfg_where *w, size_t i);

/* Records "file: path: expected <what>, found <the value as JSON, shortened>". */
int cfg_json_bad(const cfg_where *w, const char *expected, const cJSON *v);

/* Records that the object at *w lacks the required `key`. */
int cfg_json_missing(const cfg_where *w, const char *key);

/* Appends name to a ", "-separated list unless it is there already. */
void cfg_list_add(char *list, size_t cap, const char *name);

/* The object's keys must be among `keys` (NULL-terminated) and each appear
 * once: a typo must not silently fall back to a default. */
int cfg_json_check_keys(const cfg_where *w, const cJSON *obj, const char *const *keys);

/* Member `key` of obj, or NULL (case-sensitive). */
const cJSON *cfg_json_item(const cJSON *obj, const char *key);

/* An integer in [lo, hi]; the optional member `key` keeps *out's default when absent. */
int cfg_json_int(const cfg_where *w, const cJSON *v, int64_t lo, int64_t hi, int64_t *out);
int cfg_json_opt_int(const cfg_where *w, const cJSON *obj, const char *key, int64_t lo, int64_t hi, int64_t *out);

/* The same for a key an option row declares (bench_opts.h): the row's name
 * and range (above 2^53, JSON numbers stop being exact: capped there). */
int cfg_json_opt_int_row(const cfg_where *w, const cJSON *obj, const opt_def *d, int64_t *out);
int cfg_json_ints_row(const cfg_where *w, const cJSON *obj, const opt_def *d, int required, cfg_ints *out);
/* A number in the row's range; "what" names its unit in messages ("seconds"). */
int cfg_json_opt_double_row(const cfg_where *w, const cJSON *obj, const opt_def *d, const char *what, double *out);

/* The keys of an object: `extra` (NULL-terminated), then the config rows of
 * `group` in table order; keys[] holds at most max - 1 and a NULL. */
void cfg_json_keys_of(const char *const *extra, const opt_def *rows, const char *group, const char **keys,
                      size_t max);

/* A name of 1-31 characters from [A-Za-z0-9_-]: suite and kernel names
 * become file names and CSV cells. req_: the member `key` must be there. */
int cfg_json_name(const cfg_where *w, const cJSON *v, char *out);
int cfg_json_req_name(const cfg_where *w, const cJSON *obj, const char *key, char *out);

/* An optional string member shorter than cap; *out unchanged when absent. */
int cfg_json_opt_string(const cfg_where *w, const cJSON *obj, const char *key, size_t cap, char *out);

/* The non-empty array at obj.key; NULL when absent (an error if required,
 * which *rc then holds) or malformed (`what` names the expected array). */
const cJSON *cfg_json_array(const cfg_where *w, const cJSON *obj, const char *key, int required, const char *what,
                            int *rc);

/* A non-empty array of distinct integers in [lo, hi] at obj.key (calloc'ed). */
int cfg_json_ints(const cfg_where *w, const cJSON *obj, const char *key, int required, int64_t lo, int64_t hi,
                  cfg_ints *out);

/* Reads one list element into its typed slot `out` and writes its canonical
 * text to `canon` (what distinctness is judged on); ctx is what the reader
 * needs besides the element (the suite entry being parsed), or NULL. */
typedef int (*cfg_elem_read)(const cfg_where *w, const cJSON *v, const void *ctx, void *out,
                             char canon[CFG_SPEC_MAX]);

/* A non-empty array of distinct elements at obj.key, each read by `read` into
 * a slot of `size` bytes of *out (calloc'ed, *n of them). */
int cfg_json_list(const cfg_where *w, const cJSON *obj, const char *key, int required, cfg_elem_read read,
                  size_t size, const void *ctx, void **out, size_t *n);

/* Defaults for a list the entry left out: a copy of *value (one element of
 * `size` bytes), or of the n integers v. Lists already given are kept. */
int cfg_default_one(void **v, size_t *n, const void *value, size_t size);
int cfg_default_ints(cfg_ints *dst, const int64_t *v, size_t n);

#endif
