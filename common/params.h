/* A bag of key=value parameters as the command line (--param, --task-param)
 * or a config gives them, before a kernel or a task reads its own keys. */
#ifndef ATTN_COMMON_PARAMS_H
#define ATTN_COMMON_PARAMS_H

#include <stdint.h>

#define PARAM_BAG_MAX 16
typedef struct {
    int n;
    char key[PARAM_BAG_MAX][32];
    char val[PARAM_BAG_MAX][64];
} param_bag;

/* Parses "k=v" and appends it; a key already in the bag is an error. */
int param_bag_add(param_bag *p, const char *kv);
/* Appends every "k=v" of a space-separated list ("slots=16 taps=3"). */
int param_bag_add_list(param_bag *p, const char *list);
/* The value of `key`, or NULL when absent. */
const char *param_bag_get(const param_bag *p, const char *key);
/* The integer value of `key`, `def` when absent; a value that is not an
 * integer in [lo, hi] is recorded as the error and reported through *rc. */
int64_t param_bag_int(const param_bag *p, const char *key, int64_t def, int64_t lo, int64_t hi, int *rc);

/* 1 if the key of "k=v" (or of a bare "k") is in the bag already. */
int param_bag_has_key_of(const param_bag *p, const char *kv);

#endif
