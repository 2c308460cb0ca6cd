/* Helpers of the NIAH generator tests (niah_check.h). */
#include "niah_check.h"
#include "common/attn_error.h"

#include <criterion/criterion.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

static const char needle_head[] = " One of the special magic ";

int nc_make(const task_def *t, const char *params, task_split split, uint64_t seed, int64_t n, const char *dir,
            task_data *d)
{
    param_bag p = {.n = 0};
    cr_assert_eq(param_bag_add_list(&p, params), 0, "%s", attn_last_error());
    memset(d, 0, sizeof *d);
    return t->make(&p, split, seed, n, dir, d);
}

void nc_make_ok(const task_def *t, const char *params, task_split split, uint64_t seed, int64_t n, task_data *d)
{
    cr_assert_eq(nc_make(t, params, split, seed, n, NULL, d), 0, "%s %s: %s", t->name, params, attn_last_error());
    cr_assert_eq(d->vocab, NIAH_VOCAB);
}

int64_t nc_row_text(const task_data *d, int64_t i, char *s)
{
    const int32_t *x = task_tokens(d, i);
    for (int64_t t = 0; t < d->len; t++)
        s[t] = x[t] < 256 ? (char)x[t]
                          : (char)(2 + (x[t] == NIAH_QUERY) + 2 * (x[t] == NIAH_ANSWER) + 3 * (x[t] == NIAH_PAD));
    s[d->len] = '\0';
    return d->lengths[i];
}

int64_t nc_answer_text(const task_data *d, int64_t i, char *s)
{
    int64_t k = 0;
    for (int64_t t = 0; t < d->len; t++)
        if (task_targets(d, i)[t] != TASK_IGNORE)
            s[k++] = (char)task_targets(d, i)[t];
    s[k] = '\0';
    return k;
}

int64_t nc_count_in(const char *hay, const char *needle)
{
    int64_t k = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
        k++;
    return k;
}

int nc_parse_needles(const char *ctx, nc_needle *out, int cap)
{
    int n = 0;
    for (const char *p = strstr(ctx, needle_head); p && n < cap; p = strstr(p + 1, needle_head)) {
        const char *type = p + strlen(needle_head);
        const char *k = strncmp(type, "numbers for ", 12) == 0 ? type + 12
                        : strncmp(type, "uuids for ", 10) == 0 ? type + 10 : NULL;
        cr_assert(k, "needle type neither numbers nor uuids near '%.60s'", p);
        const char *is = strstr(k, " is: ");
        cr_assert(is && is - k >= 4 && is - k <= 36, "needle key of bad length near '%.60s'", p);
        const char *v = is + 5, *end = strchr(v, '.');
        cr_assert(end && end - v <= 36, "needle value without its '.' near '%.60s'", p);
        memcpy(out[n].key, k, (size_t)(is - k));
        out[n].key[is - k] = '\0';
        memcpy(out[n].val, v, (size_t)(end - v));
        out[n].val[end - v] = '\0';
        out[n].at = p - ctx;
        out[n].len = end + 1 - p;
        n++;
    }
    return n;
}

void nc_view_row(const task_data *d, int64_t i, nc_row *v)
{
    cr_assert(d->len < NC_ROW_CAP);
    v->T = nc_row_text(d, i, v->s);
    const char *q = strchr(v->s, NC_QUERY), *a = q ? strchr(q, NC_ANSWER) : NULL;
    cr_assert(q && a, "row %lld has no QUERY ... ANSWER", (long long)i);
    snprintf(v->query, sizeof v->query, "%.*s", (int)(a - q - 1), q + 1);
    cr_assert_eq(v->s[0], '\x02', "row must start with BOS");
    v->s[q - v->s] = '\0';
    v->C = q - v->s - 1;
    v->ctx = v->s + 1;
    v->n = nc_parse_needles(v->ctx, v->nd, 64);
}

int nc_is_uuid4(const char *s)
{
    if (strlen(s) != 36)
        return 0;
    for (int j = 0; j < 36; j++) {
        int dash = j == 8 || j == 13 || j == 18 || j == 23;
        if (dash != (s[j] == '-') || (!dash && !(isdigit((unsigned char)s[j]) || (s[j] >= 'a' && s[j] <= 'f'))))
            return 0;
    }
    return s[14] == '4' && strchr("89ab", s[19]) != NULL;
}

const char *nc_corpus_root(void)
{
    static char root[4096];
    if (!getenv("ATTN_DATA_DIR")) /* the repository's data/, which run.sh prepares */
        setenv("ATTN_DATA_DIR", ATTN_SOURCE_DIR "/data", 1);
    cr_assert_eq(niah_corpus_root(NULL, root, sizeof root), 0,
                 "the SpamAssassin stand-in is required for this test: %s", attn_last_error());
    return root;
}
