/* Internals of RULER's aggregation tasks (niah_agg.c: cwe, fwe), shared with
 * their tests: the word lists (niah_words.c), the size of RULER's numbered
 * list and the Zipf counts of its coded text. */
#ifndef ATTN_NIAH_AGG_H
#define ATTN_NIAH_AGG_H

#include "common/rng.h"

#include <stdint.h>

enum { NIAH_WORD_MIN = 3, NIAH_WORD_MAX = 8 };
typedef char niah_word[NIAH_WORD_MAX + 1];

typedef enum {
    NIAH_WORDS_PSEUDO, /* consonant-vowel alternation: the stand-in for RULER's English word list */
    NIAH_WORDS_CODED,  /* random lowercase letters: RULER's coded words (fwe) */
} niah_word_kind;

/* How many distinct words of len letters the kind can make: pseudowords
 * alternate 18 consonants and 5 vowels from a consonant, coded words 26^len. */
double niah_word_space(niah_word_kind kind, int len);

/* n distinct words of len letters into w [n], drawn from r (a word already
 * drawn is drawn again). n must be at most a quarter of the word space, so
 * the redraws stay few (niah_agg.c refuses longer lists). */
int niah_draw_words(attn_rng *r, niah_word_kind kind, int len, int64_t n, niah_word *w);

/* Bytes of RULER's numbered list "1. w 2. w ... n. w" of n words of len letters. */
int64_t niah_numbered_bytes(int64_t n, int len);

/* Riemann's zeta(alpha) for alpha > 1 (RULER normalises by scipy's zeta). */
double niah_zeta(double alpha);

/* Occurrences of ranks 1..V for W words as RULER's freq_words_extraction.py
 * counts them, floor(W k^-alpha / zeta), with one rule added: ranks 4, 3, 2 (in
 * that order) are raised to one more than the rank below where they would
 * not exceed it, so the three answer words (ranks 2-4; rank 1 is the noise
 * word "...") have distinct counts above every other word's. counts [V], V >= 4;
 * non-increasing from rank 2 on. */
void niah_zipf_counts(int64_t W, double alpha, double zeta, int64_t V, int64_t *counts);

/* Fisher-Yates shuffle of a [n] with r. */
void niah_shuffle(attn_rng *r, int64_t *a, int64_t n);

#endif
