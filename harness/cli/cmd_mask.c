/* attnbench mask --show SPEC [--N N] [--head H] [--batch B] [--out DIR]
 * Writes the pattern of one mask as a PBM picture (plain P1 up to 256
 * positions, binary P4 above; black = allowed), one pixel per (query, key),
 * and prints its exact density and the 16x16 tile classes. */
#include "common/attn_error.h"
#include "cli.h"
#include "kernels/core/mask.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char usage[] =
    "usage: attnbench mask --show SPEC [--N N] [--head H] [--batch B] [--out DIR]\n"
    "Draws the mask SPEC (see 'attnbench list masks') for N queries x N keys as a PBM\n"
    "picture (black = allowed; rows = queries) in DIR/<spec>.pbm and prints its density.\n"
    "  --show   mask spec, e.g. bigbird:b=8,r=2,seed=1\n"
    "  --N      sequence length (default 64; at most 8192)\n"
    "  --head   query head the pattern is drawn for (masks that differ per head; default 0)\n"
    "  --batch  batch entry (random masks; default 0)\n"
    "  --out    directory (default results/plots/masks; created if missing)\n";

/* mkdir -p */
static int make_dirs(const char *dir)
{
    char path[1024];
    if (strlen(dir) >= sizeof path)
        return attn_fail(ATTN_EINVAL, "--out: path longer than %zu characters", sizeof path - 1);
    strcpy(path, dir);
    for (char *p = path + 1;; p++) {
        char c = *p;
        if (c == '/' || c == '\0') {
            *p = '\0';
            if (mkdir(path, 0777) != 0 && errno != EEXIST)
                return attn_fail(ATTN_EIO, "--out: cannot create directory '%s': %s", path, strerror(errno));
            *p = c;
        }
        if (c == '\0')
            return 0;
    }
}

/* The file name of a spec: characters other than [A-Za-z0-9._-] become '_'. */
static void file_name(const char *spec, char *buf, size_t n)
{
    size_t i = 0;
    for (; spec[i] && i + 1 < n; i++) {
        char c = spec[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                 c == '-';
        buf[i] = ok ? c : '_';
    }
    buf[i] = '\0';
}

/* P1 (text) for small pictures, P4 (packed bits, MSB first, rows padded to bytes) otherwise. */
static int write_pbm(const char *path, const attn_mask *m, const char *spec, int64_t N, int64_t b, int64_t h)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return attn_fail(ATTN_EIO, "cannot write '%s': %s", path, strerror(errno));
    unsigned char *row = malloc((size_t)N);
    int plain = N <= 256;
    fprintf(f, "%s\n# attnbench mask %s (batch %lld, head %lld; black = allowed)\n%lld %lld\n", plain ? "P1" : "P4",
            spec, (long long)b, (long long)h, (long long)N, (long long)N);
    for (int64_t i = 0; i < N; i++) {
        attn_mask_row(m, b, h, i, 0, N, row);
        if (plain) {
            for (int64_t j = 0; j < N; j++)
                fputs(row[j] ? (j + 1 < N ? "1 " : "1") : (j + 1 < N ? "0 " : "0"), f);
            fputc('\n', f);
            continue;
        }
        for (int64_t j = 0; j < N; j += 8) {
            unsigned char byte = 0;
            for (int64_t k = 0; k < 8 && j + k < N; k++)
                byte |= (unsigned char)(row[j + k] ? 0x80 >> k : 0);
            fputc(byte, f);
        }
    }
    free(row);
    if (fclose(f) != 0)
        return attn_fail(ATTN_EIO, "cannot write '%s': %s", path, strerror(errno));
    return 0;
}

int cmd_mask(int argc, char **argv)
{
    static const struct option opts[] = {{"show", required_argument, 0, 's'}, {"N", required_argument, 0, 'N'},
                                         {"head", required_argument, 0, 'H'}, {"batch", required_argument, 0, 'b'},
                                         {"out", required_argument, 0, 'o'},  {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *spec = NULL, *out = "results/plots/masks";
    int64_t N = 64, head = 0, batch = 0;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
        if (c == 's')
            spec = optarg;
        else if (c == 'o')
            out = optarg;
        else if (c == 'N' && cli_int64("--N", optarg, 1, 8192, &N))
            return cli_report("mask");
        else if (c == 'H' && cli_int64("--head", optarg, 0, 1 << 20, &head))
            return cli_report("mask");
        else if (c == 'b' && cli_int64("--batch", optarg, 0, 1 << 20, &batch))
            return cli_report("mask");
        else if (c == 'h')
            return fputs(usage, stdout), 0;
        else if (c == '?' || c == ':')
            return cli_unknown_option("mask", argc, argv);
    }
    if (!spec || optind < argc)
        return cli_usage_error("mask", "--show SPEC is required and takes no positional arguments");
    attn_mask m;
    if (attn_mask_parse(spec, &m) || attn_mask_bind(&m, N) || make_dirs(out))
        return cli_report("mask");
    char canon[512], name[512], path[1600];
    attn_mask_format(&m, canon, sizeof canon);
    file_name(canon, name, sizeof name);
    snprintf(path, sizeof path, "%s/%s.pbm", out, name);
    if (write_pbm(path, &m, canon, N, batch, head))
        return cli_report("mask");

    int64_t tiles[3] = {0, 0, 0};
    for (int64_t i0 = 0; i0 < N; i0 += 16)
        for (int64_t j0 = 0; j0 < N; j0 += 16)
            tiles[attn_mask_tile(&m, batch, head, i0, i0 + 16 < N ? i0 + 16 : N, j0, j0 + 16 < N ? j0 + 16 : N)]++;
    double pairs = attn_mask_pairs(&m, batch, head, N, N, 0, 0);
    printf("%s N=%lld head %lld: %.0f allowed pairs, density %.4f; 16x16 tiles: %lld full, %lld partial, "
           "%lld empty\nwrote %s\n",
           canon, (long long)N, (long long)head, pairs, pairs / ((double)N * N), (long long)tiles[ATTN_TILE_FULL],
           (long long)tiles[ATTN_TILE_PARTIAL], (long long)tiles[ATTN_TILE_EMPTY], path);
    return 0;
}
