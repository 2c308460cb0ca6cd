/* A minimal PNG decoder for the Pathfinder release: 8-bit
 * grayscale, non-interlaced images only. zlib is not a project dependency,
 * so inflate (RFC 1951: stored, fixed and dynamic Huffman blocks, after the
 * RFC 1950 header, checked by Adler-32) is written out here in the canonical
 * decoding style of Mark Adler's puff.c, then the five PNG row filters
 * (PNG spec section 9) are undone. Chunk CRCs are verified. Anything else
 * (colour, palette, alpha, other depths, interlacing) is refused with an
 * error naming the file and what was found. */
#include "pathfinder.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- inflate (RFC 1951) ---- */

typedef struct {
    const uint8_t *in;
    size_t in_len, in_pos;
    uint32_t bitbuf;
    int bitcnt;
    uint8_t *out;
    size_t out_cap, out_pos;
    const char *why; /* the first failure, for the error message */
} png_inflater;

/* Canonical Huffman code: count[len] codes of each length, symbols sorted by
 * code; fast[b] decodes the next PNG_FAST_BITS input bits b at once when the
 * code is that short: (length << 9) | symbol, 0 when it is longer. */
#define PNG_FAST_BITS 9
typedef struct {
    short count[16];
    short symbol[288];
    uint16_t fast[1 << PNG_FAST_BITS];
} png_huffman;

static int inf_fail(png_inflater *s, const char *why)
{
    if (!s->why)
        s->why = why;
    return -1;
}

/* Reads `need` bits (LSB first, RFC 1951 3.1.1) into *val. */
static int inf_bits(png_inflater *s, int need, int *val)
{
    uint32_t b = s->bitbuf;
    while (s->bitcnt < need) {
        if (s->in_pos == s->in_len)
            return inf_fail(s, "compressed data ends early (truncated IDAT)");
        b |= (uint32_t)s->in[s->in_pos++] << s->bitcnt;
        s->bitcnt += 8;
    }
    s->bitbuf = b >> need;
    s->bitcnt -= need;
    *val = (int)(b & ((1u << need) - 1));
    return 0;
}

static int inf_put(png_inflater *s, uint8_t byte)
{
    if (s->out_pos == s->out_cap)
        return inf_fail(s, "more image data than width x height needs");
    s->out[s->out_pos++] = byte;
    return 0;
}

/* Stored block (RFC 1951 3.2.4): byte-aligned LEN, NLEN = ~LEN, raw bytes. */
/* Drops the bits of the current byte and gives back whole bytes read ahead. */
static void inf_align(png_inflater *s)
{
    s->in_pos -= (size_t)(s->bitcnt / 8);
    s->bitbuf = 0, s->bitcnt = 0;
}

static int inf_stored(png_inflater *s)
{
    inf_align(s);
    if (s->in_len - s->in_pos < 4)
        return inf_fail(s, "compressed data ends early (truncated IDAT)");
    const uint8_t *p = s->in + s->in_pos;
    unsigned len = p[0] | (unsigned)p[1] << 8, nlen = p[2] | (unsigned)p[3] << 8;
    if (len != (~nlen & 0xffffu))
        return inf_fail(s, "stored block length does not match its complement");
    s->in_pos += 4;
    if (s->in_len - s->in_pos < len)
        return inf_fail(s, "compressed data ends early (truncated IDAT)");
    if (s->out_cap - s->out_pos < len)
        return inf_fail(s, "more image data than width x height needs");
    memcpy(s->out + s->out_pos, s->in + s->in_pos, len);
    s->in_pos += len, s->out_pos += len;
    return 0;
}

/* Builds the canonical code from code lengths len[n]; over-subscribed sets are
 * errors, incomplete ones are allowed (a single distance code is legal). */
static int inf_build(png_inflater *s, png_huffman *h, const short *len, int n)
{
    short offs[16];
    memset(h->count, 0, sizeof h->count);
    for (int i = 0; i < n; i++)
        h->count[len[i]]++;
    int left = 1;
    for (int l = 1; l < 16; l++) {
        left = 2 * left - h->count[l];
        if (left < 0)
            return inf_fail(s, "over-subscribed Huffman code lengths");
    }
    offs[1] = 0;
    for (int l = 1; l < 15; l++)
        offs[l + 1] = (short)(offs[l] + h->count[l]);
    for (int i = 0; i < n; i++)
        if (len[i])
            h->symbol[offs[len[i]]++] = (short)i;
    /* the fast table: codes of length l are consecutive from first(l) (RFC 1951
     * 3.2.2) and arrive most significant bit first, so index by the reversed code */
    memset(h->fast, 0, sizeof h->fast);
    int code = 0, index = 0;
    for (int l = 1; l <= PNG_FAST_BITS; l++) {
        for (int k = 0; k < h->count[l]; k++, code++) {
            int rev = 0;
            for (int b = 0; b < l; b++)
                rev |= ((code >> b) & 1) << (l - 1 - b);
            for (int fill = rev; fill < (1 << PNG_FAST_BITS); fill += 1 << l)
                h->fast[fill] = (uint16_t)(l << 9 | h->symbol[index + k]);
        }
        index += h->count[l];
        code <<= 1;
    }
    return 0;
}

/* Decodes one symbol: by the fast table when PNG_FAST_BITS bits are at hand
 * and the code is that short, else bit by bit (codes of each length are
 * consecutive integers, as in puff.c). */
static int inf_decode(png_inflater *s, const png_huffman *h, int *sym)
{
    while (s->bitcnt < PNG_FAST_BITS && s->in_pos < s->in_len) {
        s->bitbuf |= (uint32_t)s->in[s->in_pos++] << s->bitcnt;
        s->bitcnt += 8;
    }
    if (s->bitcnt >= PNG_FAST_BITS) {
        int e = h->fast[s->bitbuf & ((1u << PNG_FAST_BITS) - 1)];
        if (e) {
            s->bitbuf >>= e >> 9;
            s->bitcnt -= e >> 9;
            *sym = e & 511;
            return 0;
        }
    }
    int code = 0, first = 0, index = 0;
    for (int l = 1; l < 16; l++) {
        int bit;
        if (inf_bits(s, 1, &bit))
            return -1;
        code |= bit;
        int count = h->count[l];
        if (code - count < first) {
            *sym = h->symbol[index + (code - first)];
            return 0;
        }
        index += count, first += count;
        first <<= 1, code <<= 1;
    }
    return inf_fail(s, "invalid Huffman code");
}

/* Length and distance symbols (RFC 1951 3.2.5). */
static const short len_base[29] = {3,  4,  5,  6,  7,  8,  9,  10, 11,  13,  15,  17,  19,  23, 27,
                                   31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258};
static const short len_extra[29] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2,
                                    2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0};
static const short dist_base[30] = {1,    2,    3,    4,    5,    7,     9,     13,    17,  25,
                                    33,   49,   65,   97,   129,  193,   257,   385,   513, 769,
                                    1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577};
static const short dist_extra[30] = {0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6,
                                     6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13};

/* Literal/length and distance symbols until end-of-block (256). */
static int inf_codes(png_inflater *s, const png_huffman *lencode, const png_huffman *distcode)
{
    for (;;) {
        int sym, extra, dsym;
        if (inf_decode(s, lencode, &sym))
            return -1;
        if (sym < 256) {
            if (inf_put(s, (uint8_t)sym))
                return -1;
            continue;
        }
        if (sym == 256)
            return 0;
        sym -= 257;
        if (sym >= 29)
            return inf_fail(s, "invalid length symbol");
        if (inf_bits(s, len_extra[sym], &extra))
            return -1;
        size_t len = (size_t)(len_base[sym] + extra);
        if (inf_decode(s, distcode, &dsym))
            return -1;
        if (dsym >= 30)
            return inf_fail(s, "invalid distance symbol");
        if (inf_bits(s, dist_extra[dsym], &extra))
            return -1;
        size_t dist = (size_t)(dist_base[dsym] + extra);
        if (dist > s->out_pos)
            return inf_fail(s, "back-reference before the start of the data");
        for (size_t k = 0; k < len; k++) /* byte by byte: copies may overlap */
            if (inf_put(s, s->out[s->out_pos - dist]))
                return -1;
    }
}

/* Fixed Huffman block (RFC 1951 3.2.6). */
static int inf_fixed(png_inflater *s)
{
    png_huffman lencode, distcode;
    short len[288];
    int i = 0;
    for (; i < 144; i++)
        len[i] = 8;
    for (; i < 256; i++)
        len[i] = 9;
    for (; i < 280; i++)
        len[i] = 7;
    for (; i < 288; i++)
        len[i] = 8;
    if (inf_build(s, &lencode, len, 288))
        return -1;
    for (i = 0; i < 30; i++)
        len[i] = 5;
    if (inf_build(s, &distcode, len, 30))
        return -1;
    return inf_codes(s, &lencode, &distcode);
}

/* Dynamic Huffman block (RFC 1951 3.2.7): code-length code, then the
 * literal/length and distance code lengths run-length coded with 16/17/18. */
static int inf_dynamic(png_inflater *s)
{
    static const short order[19] = {16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15};
    short len[320];
    png_huffman lencode, distcode;
    int nlen, ndist, ncode;
    if (inf_bits(s, 5, &nlen) || inf_bits(s, 5, &ndist) || inf_bits(s, 4, &ncode))
        return -1;
    nlen += 257, ndist += 1, ncode += 4;
    if (nlen > 286 || ndist > 30)
        return inf_fail(s, "bad dynamic block header counts");
    memset(len, 0, sizeof len);
    for (int i = 0; i < ncode; i++) {
        int v;
        if (inf_bits(s, 3, &v))
            return -1;
        len[order[i]] = (short)v;
    }
    if (inf_build(s, &lencode, len, 19))
        return -1;
    for (int i = 0; i < nlen + ndist;) {
        int sym, rep, v = 0;
        if (inf_decode(s, &lencode, &sym))
            return -1;
        if (sym < 16) {
            len[i++] = (short)sym;
            continue;
        }
        if (sym == 16) {
            if (i == 0)
                return inf_fail(s, "repeat of a code length with no previous length");
            v = len[i - 1];
            if (inf_bits(s, 2, &rep))
                return -1;
            rep += 3;
        } else if (sym == 17) {
            if (inf_bits(s, 3, &rep))
                return -1;
            rep += 3;
        } else {
            if (inf_bits(s, 7, &rep))
                return -1;
            rep += 11;
        }
        if (i + rep > nlen + ndist)
            return inf_fail(s, "code lengths run past the declared count");
        while (rep--)
            len[i++] = (short)v;
    }
    if (len[256] == 0)
        return inf_fail(s, "dynamic block has no end-of-block code");
    if (inf_build(s, &lencode, len, nlen) || inf_build(s, &distcode, len + nlen, ndist))
        return -1;
    return inf_codes(s, &lencode, &distcode);
}

static uint32_t png_adler32(const uint8_t *p, size_t n)
{
    /* 5552 bytes is the longest run whose sums cannot overflow 32 bits (RFC 1950 9) */
    uint32_t a = 1, b = 0;
    while (n) {
        size_t run = n < 5552 ? n : 5552;
        n -= run;
        while (run--) {
            a += *p++;
            b += a;
        }
        a %= 65521u, b %= 65521u;
    }
    return b << 16 | a;
}

static uint32_t png_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* zlib stream (RFC 1950) in[n] -> out[cap]; the output must fill out exactly. */
static int png_zlib(png_inflater *s)
{
    if (s->in_len < 2)
        return inf_fail(s, "compressed data ends early (truncated IDAT)");
    int cmf = s->in[0], flg = s->in[1];
    if ((cmf & 15) != 8 || (cmf >> 4) > 7 || (cmf * 256 + flg) % 31 != 0 || (flg & 32))
        return inf_fail(s, "bad zlib header");
    s->in_pos = 2;
    int last = 0;
    while (!last) {
        int type;
        if (inf_bits(s, 1, &last) || inf_bits(s, 2, &type))
            return -1;
        int rc = type == 0   ? inf_stored(s)
                 : type == 1 ? inf_fixed(s)
                 : type == 2 ? inf_dynamic(s)
                             : inf_fail(s, "deflate block type 3 (reserved)");
        if (rc)
            return -1;
    }
    inf_align(s);
    if (s->in_len - s->in_pos < 4)
        return inf_fail(s, "compressed data ends early (missing Adler-32)");
    if (png_be32(s->in + s->in_pos) != png_adler32(s->out, s->out_pos))
        return inf_fail(s, "Adler-32 checksum of the image data does not match");
    if (s->out_pos != s->out_cap)
        return inf_fail(s, "less image data than width x height needs (truncated IDAT)");
    return 0;
}

int png_inflate_zlib(const uint8_t *in, size_t n, uint8_t *out, size_t cap, const char **why)
{
    png_inflater s = {.in = in, .in_len = n, .out = out, .out_cap = cap};
    int rc = png_zlib(&s);
    *why = s.why;
    return rc;
}

/* ---- PNG container and row filters ---- */

/* CRC-32 of the PNG spec (annex D) with its byte table, built per file on
 * the stack (thread safe; 2 k operations against a file's n). */
static void png_crc_table(uint32_t *t)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1)));
        t[i] = c;
    }
}

static uint32_t png_crc(const uint32_t *t, const uint8_t *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++)
        c = t[(c ^ p[i]) & 255] ^ (c >> 8);
    return c ^ 0xffffffffu;
}

static int png_paeth(int a, int b, int c)
{
    int p = a + b - c, pa = abs(p - a), pb = abs(p - b), pc = abs(p - c);
    return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/* raw [h][1 + w] (filter byte + row) -> pix [h][w], one byte per pixel; the
 * first row reads an implicit row of zeros above (zero[w]). */
static int png_unfilter(const uint8_t *raw, int32_t w, int32_t h, uint8_t *pix, const uint8_t *zero, int *bad_type)
{
    for (int32_t y = 0; y < h; y++) {
        const uint8_t *r = raw + (size_t)y * (size_t)(w + 1) + 1;
        uint8_t *o = pix + (size_t)y * (size_t)w;
        const uint8_t *up = y ? o - w : zero;
        switch (r[-1]) {
        case 0:
            memcpy(o, r, (size_t)w);
            break;
        case 1:
            for (int32_t x = 0; x < w; x++)
                o[x] = (uint8_t)(r[x] + (x ? o[x - 1] : 0));
            break;
        case 2:
            for (int32_t x = 0; x < w; x++)
                o[x] = (uint8_t)(r[x] + up[x]);
            break;
        case 3:
            for (int32_t x = 0; x < w; x++)
                o[x] = (uint8_t)(r[x] + ((x ? o[x - 1] : 0) + up[x]) / 2);
            break;
        case 4:
            for (int32_t x = 0; x < w; x++)
                o[x] = (uint8_t)(r[x] + png_paeth(x ? o[x - 1] : 0, up[x], x ? up[x - 1] : 0));
            break;
        default:
            *bad_type = r[-1];
            return -1;
        }
    }
    return 0;
}

static const char *png_colour_name(int ct)
{
    switch (ct) {
    case 0: return "grayscale";
    case 2: return "RGB";
    case 3: return "palette";
    case 4: return "grayscale+alpha";
    case 6: return "RGBA";
    default: return "invalid";
    }
}

/* Checks IHDR (13 bytes): size bounds, 8-bit grayscale, no interlace. */
static int png_header(const uint8_t *d, const char *name, int32_t *w, int32_t *h)
{
    uint32_t W = png_be32(d), H = png_be32(d + 4);
    int depth = d[8], ct = d[9];
    if (W == 0 || H == 0 || W > PNG_GRAY_MAX_SIDE || H > PNG_GRAY_MAX_SIDE)
        return attn_fail(ATTN_EINVAL, "%s: expected a PNG of 1..%d pixels a side, found %ux%u", name,
                         PNG_GRAY_MAX_SIDE, W, H);
    if (ct != 0)
        return attn_fail(ATTN_EUNSUPPORTED, "%s: colour type %d (%s) not supported: expected 8-bit grayscale", name,
                         ct, png_colour_name(ct));
    if (depth != 8)
        return attn_fail(ATTN_EUNSUPPORTED, "%s: bit depth %d not supported: expected 8-bit grayscale", name, depth);
    if (d[10] != 0 || d[11] != 0)
        return attn_fail(ATTN_EINVAL, "%s: expected compression and filter method 0, found %d and %d", name, d[10],
                         d[11]);
    if (d[12] != 0)
        return attn_fail(ATTN_EUNSUPPORTED, "%s: interlace method %d not supported: expected a non-interlaced PNG",
                         name, d[12]);
    *w = (int32_t)W, *h = (int32_t)H;
    return 0;
}

/* Walks the chunks, checks each CRC, concatenates IDAT into *idat (malloc'd). */
static int png_chunks(const uint8_t *buf, size_t len, const char *name, int32_t *w, int32_t *h, uint8_t **idat,
                      size_t *idat_len)
{
    static const uint8_t sig[8] = {137, 'P', 'N', 'G', 13, 10, 26, 10};
    size_t pos = 8, cap = 0;
    int seen_hdr = 0;
    uint32_t table[256];
    png_crc_table(table);
    *idat = NULL, *idat_len = 0;
    if (len == 0)
        return attn_fail(ATTN_EINVAL, "%s: expected a PNG image, found an empty file", name);
    if (len < 8 || memcmp(buf, sig, 8) != 0)
        return attn_fail(ATTN_EINVAL, "%s: expected the PNG signature, found other bytes", name);
    for (;;) {
        if (len - pos < 12)
            return attn_fail(ATTN_EINVAL, "%s: expected an IEND chunk, found the file truncated at byte %zu", name,
                             len);
        uint32_t n = png_be32(buf + pos);
        const uint8_t *type = buf + pos + 4, *data = buf + pos + 8;
        char tn[5]; /* the type for messages: letters only, so a corrupt one cannot break the line */
        for (int k = 0; k < 4; k++)
            tn[k] = (type[k] | 32) >= 'a' && (type[k] | 32) <= 'z' ? (char)type[k] : '?';
        tn[4] = '\0';
        if (n > len - pos - 12)
            return attn_fail(ATTN_EINVAL, "%s: chunk '%s' of %u bytes runs past the end of the file (truncated)",
                             name, tn, n);
        uint32_t crc = png_be32(data + n), want = png_crc(table, type, (size_t)n + 4);
        if (crc != want)
            return attn_fail(ATTN_EINVAL, "%s: CRC mismatch in chunk '%s' (stored %08x, computed %08x)", name,
                             tn, crc, want);
        pos += (size_t)n + 12;
        if (!seen_hdr) {
            if (memcmp(type, "IHDR", 4) != 0 || n != 13)
                return attn_fail(ATTN_EINVAL, "%s: expected IHDR (13 bytes) first, found '%s' (%u bytes)", name, tn,
                                 n);
            int rc = png_header(data, name, w, h);
            if (rc)
                return rc;
            seen_hdr = 1;
        } else if (memcmp(type, "IDAT", 4) == 0) {
            if (n == 0)
                continue; /* allowed and empty: nothing to append (and no buffer to append to yet) */
            if (*idat_len + n > cap) {
                cap = 2 * (*idat_len + n);
                uint8_t *t = realloc(*idat, cap);
                if (!t)
                    return attn_fail(ATTN_ENOMEM, "%s: cannot allocate %zu bytes of IDAT", name, cap);
                *idat = t;
            }
            memcpy(*idat + *idat_len, data, n);
            *idat_len += n;
        } else if (memcmp(type, "IEND", 4) == 0) {
            break;
        } else if (!(type[0] & 32)) { /* critical chunk we do not know (PLTE is illegal in grayscale) */
            return attn_fail(ATTN_EUNSUPPORTED, "%s: critical chunk '%s' not supported in an 8-bit grayscale PNG",
                             name, tn);
        }
    }
    if (*idat_len == 0)
        return attn_fail(ATTN_EINVAL, "%s: expected IDAT image data, found none", name);
    return 0;
}

int png_gray_decode(const uint8_t *buf, size_t len, const char *name, uint8_t **pix, int32_t *w, int32_t *h)
{
    uint8_t *idat = NULL, *raw = NULL;
    size_t idat_len = 0;
    *pix = NULL;
    int rc = png_chunks(buf, len, name, w, h, &idat, &idat_len);
    if (!rc) {
        size_t raw_len = (size_t)*h * (size_t)(*w + 1);
        raw = malloc(raw_len + (size_t)*w); /* + a row of zeros above the first */
        *pix = malloc((size_t)*w * (size_t)*h);
        const char *why = NULL;
        int bad = 0;
        if (!raw || !*pix)
            rc = attn_fail(ATTN_ENOMEM, "%s: cannot allocate a %dx%d image", name, *w, *h);
        else if (png_inflate_zlib(idat, idat_len, raw, raw_len, &why))
            rc = attn_fail(ATTN_EINVAL, "%s: corrupt image data: %s", name, why);
        else if (memset(raw + raw_len, 0, (size_t)*w) && png_unfilter(raw, *w, *h, *pix, raw + raw_len, &bad))
            rc = attn_fail(ATTN_EINVAL, "%s: expected row filter type 0..4, found %d", name, bad);
    }
    free(idat);
    free(raw);
    if (rc) {
        free(*pix);
        *pix = NULL;
    }
    return rc;
}
