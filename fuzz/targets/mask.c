/* Mask specs (kernels/core/mask.h): parse; an accepted spec's canonical form
 * parses to the same canonical form; bound to a short sequence, the row
 * predicate, the tile classifier and the closed-form pair count agree with
 * the pairwise predicate. */
#include "fuzz/fuzz_io.h"
#include "fuzz/fuzz_targets.h"
#include "kernels/core/mask.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define POS 40 /* positions: short enough to check every pair */

static void fail(const char *spec, const char *what, int64_t b, int64_t h, int64_t i)
{
    fprintf(stderr, "fuzz mask: '%s': %s (b %lld, h %lld, query %lld)\n", spec, what, (long long)b, (long long)h,
            (long long)i);
    abort();
}

static void check_round_trip(const attn_mask *m, const char *spec)
{
    char canon[1024], again[1024];
    attn_mask m2;
    attn_mask_format(m, canon, sizeof canon);
    if (attn_mask_parse(canon, &m2) != 0) {
        fprintf(stderr, "fuzz mask: '%s' formats as '%s', which is refused: %s\n", spec, canon, attn_last_error());
        abort();
    }
    attn_mask_format(&m2, again, sizeof again);
    if (strcmp(canon, again) != 0) {
        fprintf(stderr, "fuzz mask: '%s' formats as '%s', then as '%s'\n", spec, canon, again);
        abort();
    }
}

/* Queries q_off..q_off+nq-1 against keys 0..POS-1 of (b, h). */
static void check_rows(const attn_mask *m, const char *spec, int64_t b, int64_t h, int64_t q_off, int64_t nq)
{
    unsigned char row[POS];
    double pairs = 0;
    for (int64_t i = q_off; i < q_off + nq; i++) {
        attn_mask_row(m, b, h, i, 0, POS, row);
        int64_t lo = POS, hi = 0, count = 0;
        for (int64_t j = 0; j < POS; j++) {
            int allowed = attn_mask_allowed(m, b, h, i, j);
            if (allowed != !!row[j])
                fail(spec, "attn_mask_row differs from attn_mask_allowed", b, h, i);
            if (allowed) {
                count++;
                lo = j < lo ? j : lo;
                hi = j + 1;
            }
        }
        pairs += (double)count;
        attn_tile t = attn_mask_tile(m, b, h, i, i + 1, 0, POS);
        if ((t == ATTN_TILE_EMPTY && count) || (t == ATTN_TILE_FULL && count != POS))
            fail(spec, "attn_mask_tile misclassifies the row", b, h, i);
        if (attn_mask_is_interval(m) && count) {
            int64_t rlo, rhi;
            attn_mask_row_range(m, i, 0, POS, &rlo, &rhi);
            if (rlo != lo || rhi != hi || hi - lo != count)
                fail(spec, "attn_mask_row_range differs from the allowed keys", b, h, i);
        }
    }
    if (attn_mask_pairs(m, b, h, nq, POS, q_off, 0) != pairs)
        fail(spec, "attn_mask_pairs differs from the pairwise count", b, h, q_off);
}

int fuzz_mask(const uint8_t *data, size_t n)
{
    char *spec = fuzz_text(data, n);
    if (!spec)
        return 0;
    attn_mask m;
    attn_clear_error();
    int rc = attn_mask_parse(spec, &m);
    fuzz_check_error(rc, "mask: attn_mask_parse");
    if (!rc) {
        check_round_trip(&m, spec);
        attn_clear_error();
        int bound = attn_mask_bind(&m, POS);
        fuzz_check_error(bound, "mask: attn_mask_bind");
        for (int64_t b = 0; !bound && b < 2; b++)
            for (int64_t h = 0; h < 3; h++) {
                check_rows(&m, spec, b, h, 0, POS);   /* prefill */
                check_rows(&m, spec, b, h, POS - 3, 3); /* the last queries of a decode */
            }
    }
    free(spec);
    return rc;
}
