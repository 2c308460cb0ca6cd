/* Evaluation tasks (docs/tasks.md): generators and loaders that turn a
 * task definition into token sequences with labels, ready for a model.
 *
 * Three shapes of supervision cover the suites:
 *   TASK_CLASSIFY  tokens [n][len] -> labels [n]           (LRA ListOps, Text, Image, Pathfinder)
 *   TASK_PAIR      tokens, tokens2 [n][len] -> labels [n]  (LRA Retrieval, two towers)
 *   TASK_LM        tokens [n][len] -> targets [n][len], TASK_IGNORE where not
 *                  scored (MQAR, AR, induction heads, selective copying, NIAH):
 *                  the target at position t is what the model must emit after
 *                  reading tokens 0..t (already shifted, as Zoology's labels).
 *                  The loss and the metrics read the same targets, so a task
 *                  whose reference trains on more positions than it scores
 *                  gives its splits different targets: ar and induction in
 *                  safari's form have a next-token target on every position
 *                  of the training split, and only the answer on valid and test.
 *   TASK_REGRESS   float inputs [n][len][dim] -> float values [n][len], scored
 *                  where scored[] is 1 (in-context linear regression): the
 *                  value at position t is what the model must output after
 *                  reading inputs 0..t.
 * Every dataset names its provenance: "generated", "official"
 * or "stand-in:<name>", and carries its slice keys for the results rows. */
#ifndef ATTN_TASK_H
#define ATTN_TASK_H

#include "common/attn_error.h"
#include "common/options.h"
#include "common/params.h"

#include <stdint.h>

#define TASK_IGNORE (-100)

typedef enum { TASK_CLASSIFY = 0, TASK_PAIR = 1, TASK_LM = 2, TASK_REGRESS = 3 } task_kind;
typedef enum { TASK_TRAIN = 0, TASK_VALID = 1, TASK_TEST = 2 } task_split;

/* How a generated answer is scored (tasks/answer.h): the rule of the
 * reference whose numbers the task's accuracy is compared with. */
typedef enum {
    TASK_ANSWER_NONE = 0,  /* no generated answer: the token accuracy is the metric */
    TASK_ANSWER_FIRST_INT, /* Landmark Attention's passkey test: the first integer of the output equals the key */
    TASK_ANSWER_MATCH_ALL, /* RULER's string_match_all: the share of the references the output contains */
} task_answer_rule;

/* Bytes per example for its references (answers, below). */
#define TASK_ANSWER_CAP 128

typedef struct {
    char name[32];          /* task name, e.g. "mqar" */
    char data_source[64];   /* "generated" | "official" | "stand-in:<name>" */
    char meta[256];         /* slice keys "L=256;D=16;a=0.01" for the results rows */
    task_kind kind;
    int32_t vocab;          /* token ids are in [0, vocab) */
    int32_t n_classes;      /* CLASSIFY, PAIR; 0 for LM */
    int32_t pad;            /* padding token id, or -1 when sequences are never padded */
    int32_t landmark_l;     /* landmark tokens at positions b*l + l - 1 (task_landmark_insert), 0: none */
    int64_t n, len;         /* examples, tokens per example (padded to len) */
    int64_t skipped;        /* files the loader skipped as unreadable (official Pathfinder/Path-X
                               images that are empty or corrupt); the rows carry it */
    int32_t *tokens;        /* [n][len] */
    int32_t *tokens2;       /* [n][len] the second document (PAIR), else NULL */
    int32_t *targets;       /* [n][len] (LM), else NULL */
    int32_t *labels;        /* [n] (CLASSIFY, PAIR), else NULL */
    int32_t *lengths;       /* [n] tokens before the padding (tokens2's in lengths2) */
    int32_t *lengths2;
    task_answer_rule answer_rule; /* LM tasks whose targets spell answers; NONE elsewhere */
    char *answers;          /* [n][TASK_ANSWER_CAP] with answer_rule: the example's reference
                               strings, each ended by '\n' (task_answer_set), else NULL */
    int32_t dim;            /* REGRESS: floats per input vector; 0 elsewhere */
    float *inputs;          /* REGRESS: [n][len][dim], else NULL (tokens are then all 0: one token whose
                               embedding a model adds to the inputs' read-in as its bias) */
    float *values;          /* REGRESS: [n][len] the value to output at each position */
    uint8_t *scored;        /* REGRESS: [n][len] 1 where the value is scored, 0 elsewhere */
} task_data;

/* Allocates the arrays `kind` needs (zeroed; lengths set to len) and names the task. */
int task_data_alloc(task_data *d, const char *name, task_kind kind, int64_t n, int64_t len);
/* A TASK_REGRESS dataset: inputs, values and scored, and tokens all 0 (zeroed). */
int task_data_alloc_regress(task_data *d, const char *name, int64_t n, int64_t len, int64_t dim);
void task_data_free(task_data *d);

/* The position of the input token that target t predicts: t + 1, or t + 2
 * when t + 1 holds a landmark (landmark positions carry no target: the
 * token after a landmark is the one the position before it predicts). May
 * be >= len. */
static inline int64_t task_next_input(const task_data *d, int64_t t)
{
    int64_t u = t + 1;
    if (d->landmark_l > 0 && u % d->landmark_l == d->landmark_l - 1)
        u++; /* by position, not by token: a model may well emit the landmark id */
    return u;
}

/* Row i of tokens / tokens2 / targets. */
static inline int32_t *task_tokens(const task_data *d, int64_t i) { return d->tokens + i * d->len; }
static inline int32_t *task_tokens2(const task_data *d, int64_t i) { return d->tokens2 + i * d->len; }
static inline int32_t *task_targets(const task_data *d, int64_t i) { return d->targets + i * d->len; }
/* Example i of a REGRESS dataset: its input vectors, values and scored flags. */
static inline float *task_inputs(const task_data *d, int64_t i) { return d->inputs + i * d->len * d->dim; }
static inline float *task_values(const task_data *d, int64_t i) { return d->values + i * d->len; }
static inline uint8_t *task_scored(const task_data *d, int64_t i) { return d->scored + i * d->len; }

/* A registered task. `make` builds n examples of a split from a seed; the
 * same (params, split, seed, n) always gives the same data. data_dir points at
 * official files (--data DIR) or an offline stand-in; NULL means the task's
 * default (its generator, or the stand-in under ATTN_DATA_DIR / data/). */
typedef struct task_def {
    const char *name;        /* "mqar" */
    const char *suite;       /* "recall" | "niah" | "lra" */
    const char *description; /* one line */
    const opt_def *params;   /* its parameters: key, type, default, range, help (NULL-terminated) */
    int (*make)(const param_bag *params, task_split split, uint64_t seed, int64_t n,
                const char *data_dir, task_data *out);
} task_def;

const task_def *const *task_registry(void);   /* NULL-terminated */
const task_def *task_find(const char *name);   /* NULL + error listing the names */

/* Every parameter of the task's table with its value in p or, when p does
 * not give it, its default ("k=v;k=v" in table order; a default that
 * depends on another parameter reads as that one's name, e.g. len_min=len).
 * Results rows hash it, so a job's identity follows the data it ran on even
 * when a default changes between versions. */
void task_settings_text(const task_def *t, const param_bag *p, char *buf, size_t n);

/* For a task that only generates its data: a --data directory given to it
 * is an error (it would be ignored, and the user believe the files used). */
int task_generated_only(const char *task, const char *data_dir);

/* Parameter helpers, reading through the task's table (strict: unknown keys
 * and bad values are errors naming the task or the key). */
int task_params_check(const opt_def *rows, const param_bag *p, const char *task);
int64_t task_param_int(const opt_def *rows, const param_bag *p, const char *key, int *rc);
double task_param_double(const opt_def *rows, const param_bag *p, const char *key, int *rc);
/* Values whose default or range depends on another parameter (Pathfinder's
 * on res): the row documents them, the caller gives the bounds. */
int64_t task_param_int_in(const param_bag *p, const char *key, int64_t def, int64_t lo, int64_t hi, int *rc);
double task_param_double_in(const param_bag *p, const char *key, double def, double lo, double hi, int *rc);

/* Landmark tokens (tasks/landmark_tokens.c; Mohtashami & Jaggi 2023, Landmark
 * Attention, Sec. 3: a landmark token closes every block of l tokens, the
 * reference code's data pipeline inserts `landmark_id` after every
 * mem_freq = l - 1 data tokens). The generic task parameter landmark=l
 * (0 or absent: off; 2 <= l <= TASK_LANDMARK_MAX) of every LM task: after
 * the task builds its examples, the new token id `vocab` (vocab grows by 1)
 * is inserted after every l - 1 tokens of each row, so positions b*l + l - 1
 * hold landmarks, as kernel `landmark` (params l=<same l>) designates them.
 * Landmark targets are TASK_IGNORE; a data token keeps its target. A row of
 * n tokens becomes task_landmark_seq_len(n, l) = n + floor(n / (l - 1))
 * tokens (lengths[] likewise); meta gains ";landmark=l". */
#define TASK_LANDMARK_MAX 65536
/* The row the registry appends to every LM task's table. */
extern const opt_def task_landmark_opt;
int64_t task_landmark_seq_len(int64_t n, int64_t l);       /* n when l == 0 */
int64_t task_landmark_data_len(int64_t seq_len, int64_t l); /* the inverse: seq_len - floor(seq_len / l) */
/* l of params p (0 when absent; *rc set on an invalid value). */
int64_t task_landmark_param(const param_bag *p, int *rc);
/* Inserts the landmarks of block length l into an LM task's data in place. */
int task_landmark_insert(task_data *d, int64_t l);
/* base->make with landmark=l taken out of params and applied to its data;
 * is_lm = 0 (classify / pair tasks) refuses any l != 0. */
int task_landmark_make(const task_def *base, int is_lm, const param_bag *params, task_split split, uint64_t seed,
                       int64_t n, const char *data_dir, task_data *out);

#endif
