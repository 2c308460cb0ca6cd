/* Scoring of generated answers (docs/tasks.md, "Generated answers").
 *
 * A model answers an LM task by greedy decoding at the task's scored
 * positions (models/generate.c); the tokens it generated there are turned
 * into text and scored by the rule of the reference the task reproduces:
 *   TASK_ANSWER_FIRST_INT  Landmark Attention's passkey test: the first run
 *                          of digits in the output, read as an integer,
 *                          equals the key (score 1, else 0);
 *   TASK_ANSWER_MATCH_ALL  RULER's string_match_all: the share of the
 *                          example's references that occur in the output,
 *                          compared without regard to case (so any order
 *                          of several values scores the same).
 * One wrong digit of a 7-digit value thus scores 0, not 6/7. */
#ifndef ATTN_TASK_ANSWER_H
#define ATTN_TASK_ANSWER_H

#include "task.h"

#include <stddef.h>
#include <stdint.h>

/* Sets d's rule and gives it room for n examples' references (empty). */
int task_answer_alloc(task_data *d, task_answer_rule rule);

/* Appends reference `ref` (no '\n' in it) to example i's list. */
int task_answer_add(task_data *d, int64_t i, const char *ref);

/* Example i's references, each ended by '\n'. */
static inline const char *task_answers(const task_data *d, int64_t i)
{
    return d->answers + i * TASK_ANSWER_CAP;
}

/* The CSV metric name of a rule: "first_integer_match", "string_match_all". */
const char *task_answer_metric(task_answer_rule rule);

/* The output text of example i: gen [len] holds the generated token at each
 * scored position (targets[t] != TASK_IGNORE; other entries are not read).
 * Runs of consecutive scored positions (landmark tokens between them do
 * not count) are joined by '\n' (multiquery's four answers stay apart); a token that is not a printable byte (control
 * bytes, ids >= 256 such as the task's special tokens) becomes '\n', as
 * RULER's post-processing turns control characters into newlines. Returns
 * the text's length (cut to cap - 1 bytes). */
size_t task_answer_text(const task_data *d, int64_t i, const int32_t *gen, char *out, size_t cap);

/* The score in [0, 1] of output text `out` against the references refs
 * ('\n'-ended strings) under rule. */
double task_answer_score(task_answer_rule rule, const char *refs, const char *out);

/* The mean score of n examples with its 95 % interval: Wilson's when every
 * example has one reference (a score is then 0 or 1), else the normal
 * approximation over the examples' scores. */
typedef struct {
    double mean, ci_low, ci_high;
    int64_t examples;
} task_answer_summary;

/* Scores examples [0, n) of d from their generated tokens gen [n][len]. */
int task_answer_summarize(const task_data *d, const int32_t *gen, int64_t n, task_answer_summary *s);

#endif
