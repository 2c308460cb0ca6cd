/* Words of RULER's aggregation tasks (niah_agg.h): RULER draws cwe's words
 * from wonderwords' English noun, adjective and verb lists, which are not
 * available offline; pronounceable pseudowords of one fixed length stand in
 * for them. The fixed length also makes RULER's substring scoring exact: in
 * an answer of words joined by a separator, a word of the same length can
 * only match a whole word. fwe's coded words are RULER's own kind. */
#include "niah_agg.h"
#include "common/attn_error.h"
#include "recall.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char consonants[] = "bcdfghjklmnprstvwz";
static const char vowels[] = "aeiou";
enum { N_CONSONANTS = sizeof consonants - 1, N_VOWELS = sizeof vowels - 1 };

double niah_word_space(niah_word_kind kind, int len)
{
    if (kind == NIAH_WORDS_CODED)
        return pow(26.0, len);
    return pow(N_CONSONANTS, (len + 1) / 2) * pow(N_VOWELS, len / 2);
}

static void draw_word(attn_rng *r, niah_word_kind kind, int len, char *w)
{
    for (int j = 0; j < len; j++)
        w[j] = kind == NIAH_WORDS_CODED ? (char)('a' + recall_below(r, 26))
               : j % 2 == 0             ? consonants[recall_below(r, N_CONSONANTS)]
                                        : vowels[recall_below(r, N_VOWELS)];
    w[len] = '\0';
}

static uint64_t word_hash(const char *w)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *w; w++)
        h = (h ^ (unsigned char)*w) * 1099511628211ull;
    return h;
}

/* Open addressing over the indices of the words drawn so far (-1: empty). */
static int64_t *slot_of(int64_t *table, uint64_t mask, const niah_word *w, const char *s)
{
    for (uint64_t k = word_hash(s) & mask;; k = (k + 1) & mask)
        if (table[k] < 0 || strcmp(w[table[k]], s) == 0)
            return &table[k];
}

int niah_draw_words(attn_rng *r, niah_word_kind kind, int len, int64_t n, niah_word *w)
{
    if (len < NIAH_WORD_MIN || len > NIAH_WORD_MAX || (double)n > niah_word_space(kind, len) / 4)
        return attn_fail(ATTN_EINVAL, "words: expected at most a quarter of the %.0f words of %d letters, asked %lld",
                         niah_word_space(kind, len), len, (long long)n);
    uint64_t size = 16;
    while (size < 2 * (uint64_t)n)
        size *= 2;
    int64_t *table = malloc(size * sizeof *table);
    if (!table)
        return attn_fail(ATTN_ENOMEM, "words: cannot allocate a table for %lld words", (long long)n);
    memset(table, 0xff, size * sizeof *table);
    for (int64_t i = 0; i < n; i++) {
        int64_t *slot;
        do {
            draw_word(r, kind, len, w[i]);
            slot = slot_of(table, size - 1, w, w[i]);
        } while (*slot >= 0);
        *slot = i;
    }
    free(table);
    return 0;
}

int64_t niah_numbered_bytes(int64_t n, int len)
{
    if (n <= 0)
        return 0;
    int64_t bytes = n * (len + 2) + (n - 1); /* ". " and the word, a space between entries */
    for (int64_t lo = 1, digits = 1; lo <= n; lo *= 10, digits++) {
        int64_t hi = lo * 10 - 1 < n ? lo * 10 - 1 : n;
        bytes += (hi - lo + 1) * digits;
    }
    return bytes;
}

double niah_zeta(double alpha)
{
    /* the first K terms, then Euler-Maclaurin for the tail (error far below 1e-12) */
    const int K = 100;
    double s = 0;
    for (int k = 1; k < K; k++)
        s += pow(k, -alpha);
    return s + pow(K, 1 - alpha) / (alpha - 1) + 0.5 * pow(K, -alpha) + alpha * pow(K, -alpha - 1) / 12 -
           alpha * (alpha + 1) * (alpha + 2) * pow(K, -alpha - 3) / 720;
}

void niah_zipf_counts(int64_t W, double alpha, double zeta, int64_t V, int64_t *counts)
{
    for (int64_t k = 0; k < V; k++)
        counts[k] = (int64_t)floor((double)W * pow((double)(k + 1), -alpha) / zeta);
    for (int64_t k = 3; k >= 1; k--) {
        int64_t below = k + 1 < V ? counts[k + 1] : 0;
        if (counts[k] <= below)
            counts[k] = below + 1;
    }
}

void niah_shuffle(attn_rng *r, int64_t *a, int64_t n)
{
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)recall_below(r, (uint64_t)i + 1), t = a[i];
        a[i] = a[j], a[j] = t;
    }
}
