/* The long-context decode report: decode shapes only, every configuration's
 * time and bytes per token as ratios to exact decode's in the same group, and
 * the target stated per selecting kernel, met or plainly not. */
#include "harness/results/csvw.h"
#include "harness/results/longctx_report.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    const char *kernel, *params;
    int Nq, Nkv;
    double time_ms, bytes, recall;
} lc_put;

/* The job's rows the report reads: rel_fro_err and topk_recall. */
static void put(csvw *w, lc_put p)
{
    static const char *const metric[] = {"rel_fro_err", "topk_recall"};
    for (int m = 0; m < 2; m++) {
        csvw_row r;
        csvw_row_init(&r);
        csvw_row_set(&r, ATTN_COL_SUITE, "longctx");
        csvw_row_set(&r, ATTN_COL_KERNEL, "%s", p.kernel);
        csvw_row_set(&r, ATTN_COL_MASK, "full");
        csvw_row_set(&r, ATTN_COL_B, "1");
        csvw_row_set(&r, ATTN_COL_H, "32");
        csvw_row_set(&r, ATTN_COL_H_KV, "8");
        csvw_row_set(&r, ATTN_COL_N, "%d", p.Nq);
        csvw_row_set(&r, ATTN_COL_N_KV, "%d", p.Nkv);
        csvw_row_set(&r, ATTN_COL_D, "128");
        csvw_row_set(&r, ATTN_COL_PARAMS, "%s%sinputs=peaked", p.params, p.params[0] ? ";" : "");
        csvw_row_set(&r, ATTN_COL_TIME_MS_MEDIAN, "%g", p.time_ms);
        csvw_row_set(&r, ATTN_COL_SDE_BYTES_READ, "%.0f", p.bytes);
        csvw_row_set(&r, ATTN_COL_METRIC, "%s", metric[m]);
        if (m == 1 && p.recall < 0)
            csvw_row_set(&r, ATTN_COL_VALUE, "NA:kernel selects no keys by content");
        else
            csvw_row_set(&r, ATTN_COL_VALUE, "%g", m ? p.recall : 0.01);
        csvw_row_set(&r, ATTN_COL_STATUS, "ok");
        cr_assert_eq(csvw_write(w, &r), 0);
    }
}

static char *render(void (*fill)(csvw *), char **points)
{
    char dir[] = "/tmp/attn_longctx_XXXXXX", path[64];
    cr_assert(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/l.csv", dir);
    csvw w;
    cr_assert_eq(csvw_open(&w, path), 0);
    fill(&w);
    csvw_close(&w);
    fidrep r;
    cr_assert_eq(fidrep_load(path, &r), 0);
    char *md;
    size_t n;
    FILE *f = open_memstream(&md, &n), *g = open_memstream(points, &n);
    longctx_markdown(&r, f);
    longctx_csv(&r, g);
    fclose(f), fclose(g);
    fidrep_free(&r);
    unlink(path), rmdir(dir);
    return md;
}

/* At 128K: one configuration meets all three targets, a slower one does not;
 * another kernel reads too much; a prefill shape stays out. */
static void fill_targets(csvw *w)
{
    put(w, (lc_put){"decode", "", 1, 131072, 40.0, 268435456, -1});
    put(w, (lc_put){"landmark", "mode=topk;k=4", 1, 131072, 10.0, 16777216, 0.95});
    put(w, (lc_put){"landmark", "mode=topk;k=64", 1, 131072, 20.0, 26843545, 0.99});
    put(w, (lc_put){"performer", "", 1, 131072, 1.0, 134217728, 0.5});
    put(w, (lc_put){"linear", "", 4096, 4096, 1.0, 1000, -1});
    put(w, (lc_put){"recycled", "S=8;K=64", 8, 131072, 80.0, 8 * 26843545.0, 0.3});
    put(w, (lc_put){"recycled", "S=8;K=4096", 8, 131072, 200.0, 8 * 53687091.0, 0.3});
}

Test(longctx_report, ratios_are_to_decode_and_the_target_is_stated_per_selecting_kernel)
{
    char *pts, *md = render(fill_targets, &pts);
    cr_assert(strstr(md, "## N_kv = 131072, 1 query, B = 1, H = 32 / H_kv = 8, D = 128, inputs `peaked`, mask full"),
              "%s", md);
    cr_assert(strstr(md, "| `landmark` | mode=topk;k=4 | 1e+04 | 0.25x | 16 | 0.0625 | 0.950 |"), "%s", md);
    cr_assert(strstr(md, "| `landmark` | yes | mode=topk;k=4 | 4x faster | 0.0625 of decode's | 0.950 |"), "%s", md);
    cr_assert(strstr(md, "| `performer` | **no** | defaults | 40x faster | 0.5 of decode's | 0.500 |"),
              "half the bytes is not a tenth: %s", md);
    cr_assert_null(strstr(md, "`linear`"), "a self-attention shape is the fidelity report's: %s", md);
    cr_assert(strstr(md, "| `recycled` | S=8;K=64 | 1e+04 | 0.25x | 25.6 | 0.1 |"),
              "an 8-step row is per token against decode's one-query row: %s", md);
    cr_assert(strstr(md, "- S=8;K=64, 8 steps: 1e+04 µs per token, 0.25x `decode` (4e+04 µs): yes"), "%s", md);
    cr_assert(strstr(md, "- S=8;K=4096, 8 steps: 2.5e+04 µs per token, 0.625x `decode` (4e+04 µs): **no**"), "%s", md);
    cr_assert(strstr(pts, "131072,peaked,decode,decode,40000,256,1,0.01,1"), "exact decode at recall 1: %s", pts);
    cr_assert_null(strstr(pts, "linear"), "%s", pts);
    free(md), free(pts);
}

static void fill_no_decode(csvw *w) { put(w, (lc_put){"landmark", "mode=topk;k=4", 1, 131072, 10.0, 1, 0.95}); }

Test(longctx_report, a_group_without_decode_says_so_instead_of_inventing_ratios)
{
    char *pts, *md = render(fill_no_decode, &pts);
    cr_assert(strstr(md, "| `landmark` | mode=topk;k=4 | 1e+04 | NA |"), "%s", md);
    cr_assert(strstr(md, "no `decode` row to compare with"), "%s", md);
    free(md), free(pts);
}

#include "harness/results/longctx_evals.h"

/* An extrapolation row: a generated-answer score at eval_len (depth d). */
static void put_eval(csvw *w, const char *kernel, const char *tail, int eval_len, double depth, double score)
{
    csvw_row r;
    csvw_row_init(&r);
    csvw_row_set(&r, ATTN_COL_SUITE, "niah");
    csvw_row_set(&r, ATTN_COL_TASK, "passkey");
    csvw_row_set(&r, ATTN_COL_KERNEL, "%s", kernel);
    csvw_row_set(&r, ATTN_COL_MODEL, "lm(L=2,d=64,H=2,mlp=128,pos=rope)");
    csvw_row_set(&r, ATTN_COL_PARAMS, "len=%d;depth=%g;lr=0.001;steps=600;split=extrap;eval_len=%d;depth=%g;train_len=256%s",
                 eval_len, depth, eval_len, depth, tail);
    csvw_row_set(&r, ATTN_COL_SEED, "1");
    csvw_row_set(&r, ATTN_COL_METRIC, "first_integer_match");
    csvw_row_set(&r, ATTN_COL_VALUE, "%g", score);
    csvw_row_set(&r, ATTN_COL_STATUS, "ok");
    cr_assert_eq(csvw_write(w, &r), 0);
}

/* Swaps are compared with decode swapped into the same checkpoint, means over
 * depths; a second checkpoint of the same shape (another trained kernel)
 * stays apart; a kernel within 0.02 is said to be, one beyond says by how much. */
Test(longctx_report, swapped_decode_kernels_are_scored_beside_exact_decode_on_the_same_weights)
{
    char dir[] = "/tmp/attn_longctx_XXXXXX", path[64];
    cr_assert(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/niah.csv", dir);
    csvw w;
    cr_assert_eq(csvw_open(&w, path), 0);
    for (int d = 0; d < 2; d++) {
        put_eval(&w, "flash", "", 256, d, 0.9);
        put_eval(&w, "decode", ";trained=flash", 256, d, d ? 0.8 : 1.0);
        put_eval(&w, "landmark", ";trained=flash;kernel_params=mode=topk,k=4", 256, d, d ? 0.8 : 0.99);
        put_eval(&w, "landmark", ";trained=flash;kernel_params=mode=topk,k=1", 256, d, 0.5);
        put_eval(&w, "infini", "", 256, d, 0.1);
        put_eval(&w, "decode", ";trained=infini", 256, d, 0.2);
    }
    csvw_close(&w);
    static longctx_evals t;
    cr_assert_eq(longctx_evals_load(path, &t), 0);
    char *md;
    size_t n;
    FILE *f = open_memstream(&md, &n);
    longctx_evals_markdown(&t, f);
    fclose(f);
    cr_assert(strstr(md, "with `flash`, trained at 256") && strstr(md, "with `infini`, trained at 256"), "%s", md);
    cr_assert(strstr(md, "| `decode` | defaults | 0.900 |"), "mean over the depths: %s", md);
    cr_assert(strstr(md, "| `landmark` | kernel_params=mode=topk,k=4 | 0.895 (-0.005) |"), "%s", md);
    cr_assert(strstr(md, "`landmark` kernel_params=mode=topk,k=4: within 0.02 of `decode`"), "%s", md);
    cr_assert(strstr(md, "`landmark` kernel_params=mode=topk,k=1: **misses** by 0.380"), "%s", md);
    cr_assert(strstr(md, "| `decode` | defaults | 0.200 |"), "infini's decode swap is its own: %s", md);
    free(md);
    unlink(path), rmdir(dir);
}
