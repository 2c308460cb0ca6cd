/* The 8-bit grayscale PNG decoder (tasks/png_gray.c). Every whole chunk's
 * CRC is made right before decoding: a mutation would otherwise stop at the
 * first checksum and never reach the inflater or the filters (a wrong CRC is
 * refused by a test of its own). */
#include "fuzz/fuzz_io.h"
#include "fuzz/fuzz_targets.h"
#include "tasks/pathfinder.h"

#include <stdlib.h>
#include <string.h>

static volatile uint8_t pixel_sink; /* every pixel is read, so ASan checks the whole allocation */

static uint32_t be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }

static void fix_chunk_crcs(uint8_t *b, size_t n)
{
    size_t at = 8; /* after the signature */
    while (at + 12 <= n) {
        uint32_t len = be32(b + at);
        if (len > n - at - 12)
            break;
        uint32_t crc = fuzz_crc32(b + at + 4, 4 + (size_t)len);
        uint8_t *c = b + at + 8 + len;
        c[0] = (uint8_t)(crc >> 24), c[1] = (uint8_t)(crc >> 16), c[2] = (uint8_t)(crc >> 8), c[3] = (uint8_t)crc;
        at += 12 + (size_t)len;
    }
}

int fuzz_png(const uint8_t *data, size_t n)
{
    uint8_t *b = malloc(n ? n : 1);
    if (!b)
        return 0;
    memcpy(b, data, n);
    fix_chunk_crcs(b, n);
    uint8_t *pix = NULL;
    int32_t w = 0, h = 0;
    attn_clear_error();
    int rc = png_gray_decode(b, n, "fuzz.png", &pix, &w, &h);
    fuzz_check_error(rc, "png: png_gray_decode");
    if (!rc) {
        if (w < 1 || h < 1 || w > PNG_GRAY_MAX_SIDE || h > PNG_GRAY_MAX_SIDE)
            abort();
        for (int64_t i = 0; i < (int64_t)w * h; i++) /* every pixel was allocated and written */
            pixel_sink ^= pix[i];
        free(pix);
    }
    free(b);
    return rc;
}
