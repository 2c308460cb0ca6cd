/* Needle-in-a-haystack as a trainable byte-level task (docs/tasks.md):
 * tokens are bytes 0..255 plus PAD, BOS, QUERY and ANSWER; the haystack is
 * the fixed sentence block, a seeded order-2 byte Markov chain, byte spans
 * of real documents (the offline SpamAssassin stand-in), mailing-list prose
 * standing in for RULER's essays, or RULER's haystack of needles. The tasks
 * reproduce RULER's NIAH variants (niah: S-1..3, niah_multikey: MK-1..3);
 * cwe and fwe its aggregation tasks over word lists instead of a haystack. */
#ifndef ATTN_NIAH_H
#define ATTN_NIAH_H

#include "common/rng.h"
#include "task.h"

#include <stddef.h>
#include <stdint.h>

enum { NIAH_PAD = 256, NIAH_BOS = 257, NIAH_QUERY = 258, NIAH_ANSWER = 259, NIAH_VOCAB = 260 };

extern const task_def task_passkey;         /* Landmark passkey as bytes */
extern const task_def task_niah;            /* RULER single needle, variant=s1|s2|s3 */
extern const task_def task_niah_multikey;   /* RULER multi-key, variant=mk1|mk2|mk3 */
extern const task_def task_niah_multivalue; /* one key, 4 values */
extern const task_def task_niah_multiquery; /* 4 keys inserted, 4 queried */
extern const task_def task_niah_vt;         /* variable tracking, 4 hops */
extern const task_def task_cwe;             /* RULER common words extraction (niah_agg.c) */
extern const task_def task_fwe;             /* RULER frequent words extraction (niah_agg.c) */

/* The filler of Landmark passkey and RULER `noise`: this block
 * joined by single spaces, repeated, cut by byte count. */
extern const char niah_noise_block[];

/* --- haystacks (haystack.c) ------------------------------------------ */

typedef struct niah_haystack niah_haystack;

/* The haystack kinds and the texts a `random` chain is fitted to, with their
 * parameter names (haystack=, fit=) in enum order, NULL-terminated. NEEDLE
 * (RULER's haystack made of needles) is built by the generator, not here;
 * RULER names "the haystack RULER uses for the task's variant" and is
 * resolved by the generator too. */
typedef enum {
    NIAH_HAY_NOISE,
    NIAH_HAY_RANDOM,
    NIAH_HAY_CORPUS,
    NIAH_HAY_ESSAY,
    NIAH_HAY_NEEDLE,
    NIAH_HAY_RULER,
} niah_hay_kind;
typedef enum { NIAH_FIT_NOISE, NIAH_FIT_CORPUS } niah_fit_kind;
extern const char *const niah_hay_names[];
extern const char *const niah_fit_names[];

/* The corpus is read from data_dir, else $ATTN_DATA_DIR, else data/ (see
 * niah_corpus_root); split selects its document pool. *out is NULL on error. */
int niah_haystack_open(niah_haystack **out, niah_hay_kind kind, niah_fit_kind fit, task_split split,
                       const char *data_dir);
void niah_haystack_close(niah_haystack *h);

/* "generated" or "stand-in:spam-assassin" (corpus, essay, fit=corpus). */
const char *niah_haystack_source(const niah_haystack *h);

/* n fresh haystack bytes (noise: from the start of the block stream;
 * random: a chain walk from a random start; corpus: spans of random pool
 * documents joined by '\n'; essay: essay-like pool documents from their
 * start, whitespace runs made one space, joined by ' '). out [n]. */
int niah_haystack_fill(niah_haystack *h, attn_rng *r, uint8_t *out, int64_t n);

/* The directory holding <group>/<name>.json documents: the first of base,
 * base/spam-assassin/package/data, base/package/data that holds any, where
 * base = data_dir, else $ATTN_DATA_DIR, else "data". */
int niah_corpus_root(const char *data_dir, char *out, size_t n);

/* Whether a corpus document can stand in for RULER's essays: a ham message
 * (group easy-ham*) whose body holds no HTML markup. */
int niah_corpus_is_essay(const char *path, const char *body);

/* The pool a document belongs to, by a hash of its file name: about 10 %
 * test, 10 % valid, 80 % train, so the pools are disjoint. */
task_split niah_corpus_pool_of(const char *file_name);

/* Sorted paths of the pool's documents under root; *paths is one malloc'ed
 * block (free it). Fails if the pool is empty. */
int niah_corpus_list(const char *root, task_split split, char ***paths, int64_t *n);

/* The body of one document: its JSON "text" after the first blank line (the
 * mail headers dropped). *body is malloc'ed (free it), possibly empty. */
int niah_corpus_read_body(const char *path, char **body, size_t *n);

#endif
