/* NIAH needles (docs/tasks.md): keys, values and needle texts in RULER's
 * formats, and RULER's haystack made of needles (niah_multikey_2/3).
 *
 * RULER's needle is "One of the special magic {numbers|uuids} for {key} is:
 * {value}." with 7-digit numbers (randint(10^6, 10^7 - 1)) or uuid4 strings;
 * its variable-tracking chain is "VAR ABCDE = 12345" then "VAR FGHIJ = VAR
 * ABCDE" with 5 uppercase letters per name and the value from numpy's
 * randint(10000, 99999), which excludes 99999. */
#include "niah_gen.h"
#include "recall.h"

#include <stdio.h>
#include <string.h>

static void rand_letters(attn_rng *r, char *s, int64_t k, char first)
{
    for (int64_t j = 0; j < k; j++)
        s[j] = (char)(first + (char)recall_below(r, 26));
    s[k] = '\0';
}

/* k digits, the first nonzero (RULER: randint(10^(k-1), 10^k - 1)). */
static void rand_digits(attn_rng *r, char *s, int k)
{
    for (int j = 0; j < k; j++)
        s[j] = (char)('0' + (j == 0 ? 1 + recall_below(r, 9) : recall_below(r, 10)));
    s[k] = '\0';
}

/* A version-4 uuid as Python's str(uuid.UUID(int=getrandbits(128),
 * version=4)): 32 lowercase hex digits in groups 8-4-4-4-12, the version
 * digit 4 and the variant digit one of 8, 9, a, b. */
static void rand_uuid(attn_rng *r, char *s)
{
    static const char hex[] = "0123456789abcdef";
    int k = 0;
    for (int j = 0; j < 32; j++) {
        if (j == 8 || j == 12 || j == 16 || j == 20)
            s[k++] = '-';
        int v = (int)recall_below(r, 16);
        s[k++] = j == 12 ? '4' : j == 16 ? hex[8 + (v & 3)] : hex[v];
    }
    s[k] = '\0';
}

static int in_list(char list[][NIAH_STR], int n, const char *s)
{
    for (int j = 0; j < n; j++)
        if (strcmp(list[j], s) == 0)
            return 1;
    return 0;
}

/* A key: a uuid (MK-3) or 4-8 lowercase letters (RULER: an adjective-noun
 * pair; see docs/tasks.md), or exactly `len` letters when len > 0. */
static void rand_key(const niah_cfg *c, attn_rng *r, char *s, int64_t len)
{
    if (c->key_uuid)
        rand_uuid(r, s);
    else
        rand_letters(r, s, len > 0 ? len : 4 + (int64_t)recall_below(r, 5), 'a');
}

static void rand_value(const niah_cfg *c, attn_rng *r, char *s)
{
    if (c->kind == NK_VT)
        snprintf(s, NIAH_STR, "%d", 10000 + (int)recall_below(r, 89999));
    else if (c->val_uuid)
        rand_uuid(r, s);
    else
        rand_digits(r, s, 7);
}

void niah_draw_keys(const niah_cfg *c, attn_rng *r, niah_ex *e)
{
    int k = c->kind;
    e->n_needles = k == NK_SINGLE ? 1 : k == NK_VT ? 5 : k == NK_MULTIKEY ? 1 : 4;
    if (k == NK_MULTIKEY && c->variant == NV_MK1)
        e->n_needles += c->distractors ? (int)c->distractors : 1 + (int)recall_below(r, 3);
    e->n_vals = k == NK_VT ? 1 : e->n_needles;
    e->n_keys = k == NK_VT ? 5 : k == NK_MULTIVALUE ? 1 : e->n_needles;
    if (k == NK_VT)
        return; /* vt names have a fixed length: drawn with the values */
    for (int j = 0; j < e->n_keys; j++) {
        char s[NIAH_STR];
        do
            rand_key(c, r, s, 0);
        while (in_list(e->key, j, s));
        memcpy(e->key[j], s, sizeof s);
    }
    for (int j = 0; j < e->n_needles; j++)
        e->perm[j] = j;
    if (k == NK_MULTIQUERY)
        recall_distinct(r, 0, e->n_needles, e->n_needles, e->perm);
}

void niah_placeholder_answers(const niah_cfg *c, niah_ex *e)
{
    size_t n = c->kind == NK_VT ? 5 : c->val_uuid ? 36 : 7;
    for (int j = 0; j < NIAH_MAX_NEEDLES; j++) {
        memset(e->val[j], '0', n);
        e->val[j][n] = '\0';
        if (c->kind == NK_VT)
            memcpy(e->key[j], "AAAAA", 6);
    }
}

static int occurs(const uint8_t *hay, int64_t G, const char *s)
{
    return memmem(hay, (size_t)G, s, strlen(s)) != NULL;
}

int niah_draw_answers(const niah_cfg *c, attn_rng *r, niah_ex *e, const uint8_t *hay, int64_t G)
{
    for (int attempt = 0; attempt < 1000; attempt++) {
        int clash = 0;
        for (int j = 0; j < e->n_vals; j++) {
            char s[NIAH_STR];
            do
                rand_value(c, r, s);
            while (in_list(e->val, j, s));
            memcpy(e->val[j], s, sizeof s);
            clash |= occurs(hay, G, s);
        }
        for (int j = 0; c->kind == NK_VT && j < e->n_keys; j++) {
            char s[NIAH_STR];
            do
                rand_letters(r, s, 5, 'A');
            while (in_list(e->key, j, s));
            memcpy(e->key[j], s, sizeof s);
            clash |= occurs(hay, G, s);
        }
        /* among needles a key inside another needle's key would be ambiguous */
        for (int j = 0; c->hay == NIAH_HAY_NEEDLE && j < e->n_keys; j++)
            while (occurs(hay, G, e->key[j]))
                rand_key(c, r, e->key[j], (int64_t)strlen(e->key[j]));
        if (!clash)
            return 0;
    }
    return attn_fail(ATTN_EINVAL, "task niah: expected values absent from the haystack, found clashes in 1000 draws");
}

int niah_render_needle(const niah_cfg *c, const niah_ex *e, int j, char *out)
{
    if (c->kind == NK_VT)
        return j == 0 ? snprintf(out, NIAH_NEEDLE_CAP, " VAR %s = %s.", e->key[0], e->val[0])
                      : snprintf(out, NIAH_NEEDLE_CAP, " VAR %s = VAR %s.", e->key[j], e->key[j - 1]);
    return snprintf(out, NIAH_NEEDLE_CAP, " One of the special magic %s for %s is: %s.",
                    c->val_uuid ? "uuids" : "numbers", e->key[c->kind == NK_MULTIVALUE ? 0 : j], e->val[j]);
}

int niah_needle_hay_fill(const niah_cfg *c, attn_rng *r, uint8_t *out, int64_t n, niah_needle_hay *nh)
{
    niah_ex one;
    char text[NIAH_NEEDLE_CAP];
    memset(&one, 0, sizeof one);
    nh->n = 0, nh->used = 0;
    for (;;) {
        rand_key(c, r, one.key[0], 0);
        rand_value(c, r, one.val[0]);
        int64_t k = niah_render_needle(c, &one, 0, text);
        if (nh->used + k > n)
            return 0;
        if (nh->n == nh->cap)
            return attn_fail(ATTN_EINVAL, "task niah: internal error, more than %lld haystack needles",
                             (long long)nh->cap);
        nh->start[nh->n++] = nh->used;
        memcpy(out + nh->used, text, (size_t)k);
        nh->used += k;
    }
}
