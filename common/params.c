#include "params.h"

#include "attn_error.h"

#include <stdlib.h>
#include <string.h>

/* The index of the key of "k=v" (or of a bare "k") in the bag, or -1. */
static int key_index(const param_bag *p, const char *kv)
{
    size_t kl = strcspn(kv, "=");
    for (int i = 0; i < p->n; i++)
        if (strlen(p->key[i]) == kl && !memcmp(p->key[i], kv, kl))
            return i;
    return -1;
}

int param_bag_add(param_bag *p, const char *kv)
{
    const char *eq = strchr(kv, '=');
    if (!eq || eq == kv || eq[1] == '\0')
        return attn_fail(ATTN_EINVAL, "--param: expected key=value, found '%s'", kv);
    size_t kl = (size_t)(eq - kv);
    if (kl >= sizeof p->key[0] || strlen(eq + 1) >= sizeof p->val[0])
        return attn_fail(ATTN_EINVAL, "--param '%s': key or value too long", kv);
    int i = key_index(p, kv); /* a repeat is an error, as for every option (common/options.h) */
    if (i >= 0)
        return attn_fail(ATTN_EINVAL, "param %s: given twice ('%s', then '%s')", p->key[i], p->val[i], eq + 1);
    if (p->n >= PARAM_BAG_MAX)
        return attn_fail(ATTN_EINVAL, "--param: at most %d parameters", PARAM_BAG_MAX);
    memcpy(p->key[p->n], kv, kl);
    p->key[p->n][kl] = '\0';
    strcpy(p->val[p->n], eq + 1);
    p->n++;
    return 0;
}

int param_bag_add_list(param_bag *p, const char *list)
{
    char buf[1024], *save = NULL;
    if (strlen(list) >= sizeof buf)
        return attn_fail(ATTN_EINVAL, "parameters: expected a list shorter than %zu bytes", sizeof buf);
    strcpy(buf, list);
    int rc = 0;
    for (char *kv = strtok_r(buf, " ", &save); kv && !rc; kv = strtok_r(NULL, " ", &save))
        rc = param_bag_add(p, kv);
    return rc;
}

const char *param_bag_get(const param_bag *p, const char *key)
{
    for (int i = 0; i < p->n; i++)
        if (strcmp(p->key[i], key) == 0)
            return p->val[i];
    return NULL;
}

int64_t param_bag_int(const param_bag *p, const char *key, int64_t def, int64_t lo, int64_t hi, int *rc)
{
    const char *s = param_bag_get(p, key);
    if (!s)
        return def;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < lo || v > hi) {
        *rc = attn_fail(ATTN_EINVAL, "param %s: expected an integer in [%lld, %lld], found '%s'",
                        key, (long long)lo, (long long)hi, s);
        return def;
    }
    return v;
}

int param_bag_has_key_of(const param_bag *p, const char *kv) { return key_index(p, kv) >= 0; }
