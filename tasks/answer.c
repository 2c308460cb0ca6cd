/* Generated-answer scoring: see answer.h. */
#include "answer.h"
#include "metrics.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int task_answer_alloc(task_data *d, task_answer_rule rule)
{
    free(d->answers);
    d->answers = calloc((size_t)d->n, TASK_ANSWER_CAP);
    d->answer_rule = d->answers ? rule : TASK_ANSWER_NONE;
    return d->answers ? 0 : attn_fail(ATTN_ENOMEM, "task %s: cannot allocate answers for %lld examples", d->name,
                                      (long long)d->n);
}

int task_answer_add(task_data *d, int64_t i, const char *ref)
{
    char *a = d->answers + i * TASK_ANSWER_CAP;
    size_t used = strlen(a), n = strlen(ref);
    if (n == 0 || strchr(ref, '\n') || used + n + 2 > TASK_ANSWER_CAP)
        return attn_fail(ATTN_EINVAL, "task %s: example %lld: expected a non-empty one-line reference fitting %d bytes, "
                         "found '%s'", d->name, (long long)i, TASK_ANSWER_CAP, ref);
    memcpy(a + used, ref, n);
    a[used + n] = '\n';
    return 0;
}

const char *task_answer_metric(task_answer_rule rule)
{
    switch (rule) {
    case TASK_ANSWER_FIRST_INT:
        return "first_integer_match";
    case TASK_ANSWER_MATCH_ALL:
        return "string_match_all";
    default:
        return "token_accuracy";
    }
}

size_t task_answer_text(const task_data *d, int64_t i, const int32_t *gen, char *out, size_t cap)
{
    const int32_t *tgt = task_targets(d, i);
    size_t n = 0;
    int64_t last = -2;
    for (int64_t t = 0; t < d->len && n + 1 < cap; t++) {
        if (tgt[t] == TASK_IGNORE)
            continue;
        if (last >= 0 && t != task_next_input(d, last) && n + 2 < cap)
            out[n++] = '\n'; /* a new run (landmarks inside a value do not cut it) */
        int32_t g = gen[t];
        out[n++] = g >= 0x20 && g < 256 && g != 0x7f ? (char)g : '\n';
        last = t;
    }
    out[n] = '\0';
    return n;
}

/* 1 if needle [k] occurs in hay, ignoring case. */
static int contains_nocase(const char *hay, const char *needle, size_t k)
{
    size_t n = strlen(hay);
    for (size_t at = 0; at + k <= n; at++) {
        size_t j = 0;
        while (j < k && tolower((unsigned char)hay[at + j]) == tolower((unsigned char)needle[j]))
            j++;
        if (j == k)
            return 1;
    }
    return 0;
}

/* Digits of s[0..n) without leading zeros (so "007" reads as 7), as [*p, *p + *k). */
static void strip_zeros(const char *s, size_t n, const char **p, size_t *k)
{
    while (n > 1 && *s == '0')
        s++, n--;
    *p = s, *k = n;
}

static int first_int_matches(const char *ref, size_t ref_len, const char *out)
{
    const char *d = out;
    while (*d && !isdigit((unsigned char)*d))
        d++;
    size_t n = 0;
    while (isdigit((unsigned char)d[n]))
        n++;
    if (n == 0)
        return 0;
    const char *a, *b;
    size_t ka, kb;
    strip_zeros(d, n, &a, &ka);
    strip_zeros(ref, ref_len, &b, &kb);
    return ka == kb && memcmp(a, b, ka) == 0;
}

double task_answer_score(task_answer_rule rule, const char *refs, const char *out)
{
    if (rule == TASK_ANSWER_FIRST_INT) /* one key: the first reference */
        return *refs ? first_int_matches(refs, strcspn(refs, "\n"), out) : 0;
    int64_t found = 0, total = 0;
    for (const char *r = refs; *r;) {
        size_t k = strcspn(r, "\n");
        total++, found += contains_nocase(out, r, k);
        r += k + (r[k] == '\n');
    }
    return total ? (double)found / (double)total : 0;
}

static int64_t count_refs(const char *refs)
{
    int64_t k = 0;
    for (; *refs; refs++)
        k += *refs == '\n';
    return k;
}

int task_answer_summarize(const task_data *d, const int32_t *gen, int64_t n, task_answer_summary *s)
{
    memset(s, 0, sizeof *s);
    if (!d->answers || d->answer_rule == TASK_ANSWER_NONE)
        return attn_fail(ATTN_EINVAL, "task %s: expected references for generated answers, found none", d->name);
    char text[4 * TASK_ANSWER_CAP];
    double sum = 0, sum2 = 0;
    int binary = 1;
    for (int64_t i = 0; i < n; i++) {
        int64_t refs = count_refs(task_answers(d, i));
        if (!refs)
            continue; /* an example without an answer is left out, as one without scored positions */
        task_answer_text(d, i, gen + i * d->len, text, sizeof text);
        double v = task_answer_score(d->answer_rule, task_answers(d, i), text);
        binary &= d->answer_rule == TASK_ANSWER_FIRST_INT || refs == 1;
        sum += v, sum2 += v * v, s->examples++;
    }
    if (!s->examples) {
        s->ci_low = 0, s->ci_high = 1;
        return 0;
    }
    s->mean = sum / (double)s->examples;
    if (binary)
        task_wilson((int64_t)llround(sum), s->examples, TASK_Z95, &s->ci_low, &s->ci_high);
    else
        task_normal_interval(sum, sum2, s->examples, TASK_Z95, &s->ci_low, &s->ci_high);
    return 0;
}
