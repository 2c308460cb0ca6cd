/* results/LRA.md: test rows become cells that name non-official data sources
 * and their budget, the published rows of the same models sit beside them,
 * the average needs all five tasks, and runs of different settings are never
 * averaged into one cell. */
#include "harness/cli/cli.h"
#include "harness/results/csvw.h"
#include "test_rows.h"
#include "harness/results/lra_report.h"
#include "harness/results/lra_speed.h"

#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    const char *task, *kernel, *split, *acc, *src;
    const char *lr;   /* NULL: 0.001 */
    int steps, batch; /* 0: 10 steps of 32 */
    const char *ms;   /* NULL: 20 for flash, else 10 */
    const char *task_params; /* "difficulty=easy;" before lr, or NULL */
    const char *mask;        /* NULL: full */
} lra_put;

static void put(csvw *w, lra_put p)
{
    csvw_row r;
    csvw_row_init(&r);
    int steps = p.steps ? p.steps : 10;
    csvw_row_set(&r, ATTN_COL_SUITE, "lra");
    csvw_row_set(&r, ATTN_COL_TASK, "%s", p.task);
    csvw_row_set(&r, ATTN_COL_KERNEL, "%s", p.kernel);
    csvw_row_set(&r, ATTN_COL_MASK, "%s", p.mask ? p.mask : "full");
    csvw_row_set(&r, ATTN_COL_MODEL, "encoder(L=2,d=64,H=2,mlp=128,pos=learned,pool=cls)");
    csvw_row_set(&r, ATTN_COL_B, "%d", p.batch ? p.batch : 32);
    csvw_row_set(&r, ATTN_COL_PARAMS, "%slr=%s;wd=0.1;steps=%d;n=2000;step=%d;split=%s%s",
                 p.task_params ? p.task_params : "", p.lr ? p.lr : "0.001", steps, steps, p.split,
                 !strcmp(p.split, "test") ? ";best_step=0;weights=last" : "");
    csvw_row_set(&r, ATTN_COL_METRIC, "accuracy");
    csvw_row_set(&r, ATTN_COL_VALUE, "%s", p.acc);
    csvw_row_set(&r, ATTN_COL_DATA_SOURCE, "%s", p.src);
    csvw_row_set(&r, ATTN_COL_TIME_MS_MEDIAN, "%s", p.ms ? p.ms : !strcmp(p.kernel, "flash") ? "20" : "10");
    csvw_row_set(&r, ATTN_COL_STATUS, "ok");
    test_row_write(w, &r);
}

typedef struct {
    char dir[32], csv[64];
    csvw w;
} scratch;

static void open_scratch(scratch *s)
{
    snprintf(s->dir, sizeof s->dir, "/tmp/attn_lra_XXXXXX");
    cr_assert_not_null(mkdtemp(s->dir));
    snprintf(s->csv, sizeof s->csv, "%s/lra.csv", s->dir);
    cr_assert_eq(csvw_open(&s->w, s->csv), 0);
}

/* Closes the CSV, loads it and renders both outputs (free them). */
static void render(scratch *s, char **md, char **bub)
{
    csvw_close(&s->w);
    static lra_table t;
    cr_assert_eq(lra_table_load(s->csv, &t), 0);
    size_t n;
    FILE *f = open_memstream(md, &n), *g = open_memstream(bub, &n);
    lra_table_markdown(&t, f);
    lra_table_bubbles(&t, NULL, g);
    fclose(f), fclose(g);
    unlink(s->csv), rmdir(s->dir);
}

Test(lra_report, cells_name_their_source_beside_the_published_rows)
{
    scratch s;
    open_scratch(&s);
    put(&s.w, (lra_put){.task = "listops", .kernel = "flash", .split = "valid", .acc = "0.30", .src = "generated"});
    put(&s.w, (lra_put){.task = "listops", .kernel = "flash", .split = "test", .acc = "0.364", .src = "generated"});
    put(&s.w, (lra_put){.task = "image", .kernel = "flash", .split = "test", .acc = "0.5", .src = "official"});
    put(&s.w, (lra_put){.task = "listops", .kernel = "linear", .split = "valid", .acc = "0.2", .src = "generated"});
    put(&s.w, (lra_put){.task = "listops", .kernel = "linear", .split = "test", .acc = "0.25", .src = "generated"});
    /* a reload is not another run */
    put(&s.w, (lra_put){.task = "listops", .kernel = "linear", .split = "test-reload", .acc = "0.99", .src = "generated"});
    char *md, *bub;
    render(&s, &md, &bub);
    cr_assert(strstr(md, "| attnbench `flash` | 36.40 (generated; 10 steps × 32) | — | — | 50.00 (10 steps × 32) | — | — "
                         "| — (2 of 5 tasks) |"), "%s", md);
    cr_assert(strstr(md, "| *published: Transformer* | *36.37* |"), "%s", md);
    cr_assert(strstr(md, "| attnbench `linear` | 25.00 (generated; 10 steps × 32) |"), "%s", md);
    cr_assert(strstr(md, "| *published: Linear Trans.* | *16.13* |"), "%s", md);
    cr_assert(strstr(bub, "linear,2.0000,25.000"), "%s", bub); /* half the step time of flash */
    free(md), free(bub);
}

/* A 200-step and a 400-step Image run (docs/results.md has two such flash runs) are two
 * settings: the cell shows the larger budget alone, averaged over its seeds,
 * and says it is one of two; equal budgets (a learning-rate grid) show the
 * best mean. The bubble data take the shown setting's accuracy and step time. */
Test(lra_report, runs_of_different_settings_are_not_averaged_and_the_largest_budget_is_shown)
{
    scratch s;
    open_scratch(&s);
    put(&s.w, (lra_put){.task = "image", .kernel = "flash", .split = "valid", .acc = "0.7", .src = "stand-in:fmnist",
                        .steps = 200, .batch = 64, .ms = "40"});
    put(&s.w, (lra_put){.task = "image", .kernel = "flash", .split = "test", .acc = "0.750", .src = "stand-in:fmnist",
                        .steps = 200, .batch = 64});
    for (int seed = 0; seed < 2; seed++) {
        put(&s.w, (lra_put){.task = "image", .kernel = "flash", .split = "valid", .acc = "0.78",
                            .src = "stand-in:fmnist", .steps = 400, .batch = 64, .ms = "20"});
        put(&s.w, (lra_put){.task = "image", .kernel = "flash", .split = "test", .acc = seed ? "0.810" : "0.800",
                            .src = "stand-in:fmnist", .steps = 400, .batch = 64});
    }
    /* a learning-rate grid at one budget: best of the grid */
    put(&s.w, (lra_put){.task = "image", .kernel = "linear", .split = "valid", .acc = "0.6", .src = "stand-in:fmnist",
                        .lr = "0.003", .steps = 400, .batch = 64, .ms = "5"});
    put(&s.w, (lra_put){.task = "image", .kernel = "linear", .split = "test", .acc = "0.700", .src = "stand-in:fmnist",
                        .lr = "0.003", .steps = 400, .batch = 64});
    put(&s.w, (lra_put){.task = "image", .kernel = "linear", .split = "valid", .acc = "0.6", .src = "stand-in:fmnist",
                        .steps = 400, .batch = 64, .ms = "80"});
    put(&s.w, (lra_put){.task = "image", .kernel = "linear", .split = "test", .acc = "0.600", .src = "stand-in:fmnist",
                        .steps = 400, .batch = 64});
    /* a bigger budget that has not reached its test row yet is not shown */
    put(&s.w, (lra_put){.task = "image", .kernel = "linear", .split = "valid", .acc = "0.9", .src = "stand-in:fmnist",
                        .steps = 4000, .batch = 64, .ms = "1"});
    char *md, *bub;
    render(&s, &md, &bub);
    cr_assert(strstr(md, "| attnbench `flash` | — | — | — | 80.50 (stand-in:fmnist; 400 steps × 64; 1 of 2 settings) |"),
              "%s", md);
    cr_assert(strstr(md, "| attnbench `linear` | — | — | — | 70.00 (stand-in:fmnist; 400 steps × 64; 1 of 2 settings) |"),
              "%s", md);
    cr_assert(strstr(md, "never averaged together"), "the rule is documented: %s", md);
    /* every setting listed, the shown ones marked */
    cr_assert(strstr(md, "lr=0.001;wd=0.1;steps=200;n=2000 (stand-in:fmnist) | 200 × 64 | 1 | 75.00 |  |"), "%s", md);
    cr_assert(strstr(md, "lr=0.001;wd=0.1;steps=400;n=2000 (stand-in:fmnist) | 400 × 64 | 2 | 80.50 | yes |"), "%s", md);
    cr_assert(strstr(md, "lr=0.003;wd=0.1;steps=400;n=2000 (stand-in:fmnist) | 400 × 64 | 1 | 70.00 | yes |"), "%s", md);
    cr_assert_null(strstr(md, "steps=4000"), "a setting without a test row is not a result: %s", md);
    /* step times of the shown settings: flash 20 ms (not the 200-step run's 40), linear 5 ms */
    cr_assert(strstr(bub, "flash,1.0000,80.500"), "%s", bub);
    cr_assert(strstr(bub, "linear,4.0000,70.000"), "%s", bub);
    free(md), free(bub);
}

/* A headline cell trained away from the task's reference setting says so:
 * the task parameters given (Pathfinder at difficulty=easy beside the
 * published numbers at LRA's hard setting). */
Test(lra_report, a_cell_names_the_task_parameters_it_was_trained_with)
{
    scratch s;
    open_scratch(&s);
    put(&s.w, (lra_put){.task = "pathfinder", .kernel = "flash", .split = "valid", .acc = "0.6", .src = "generated",
                        .task_params = "difficulty=easy;"});
    put(&s.w, (lra_put){.task = "pathfinder", .kernel = "flash", .split = "test", .acc = "0.600", .src = "generated",
                        .task_params = "difficulty=easy;"});
    put(&s.w, (lra_put){.task = "image", .kernel = "flash", .split = "test", .acc = "0.800", .src = "stand-in:fmnist"});
    char *md, *bub;
    render(&s, &md, &bub);
    cr_assert(strstr(md, "| 60.00 (generated; difficulty=easy; 10 steps × 32) |"), "%s", md);
    cr_assert(strstr(md, "| 80.00 (stand-in:fmnist; 10 steps × 32) |"), "no task parameter given, none named: %s", md);
    free(md), free(bub);
}

/* LRA's sparse-pattern models are flash with a mask: each mask kind is a row
 * of its own beside the model it stands for, its spec in the settings list. */
Test(lra_report, masked_flash_rows_stand_beside_the_sparse_models_they_reproduce)
{
    scratch s;
    open_scratch(&s);
    put(&s.w, (lra_put){.task = "listops", .kernel = "flash", .split = "test", .acc = "0.30", .src = "generated"});
    put(&s.w, (lra_put){.task = "listops", .kernel = "flash", .split = "test", .acc = "0.20", .src = "generated",
                        .mask = "block:bq=20,bk=20,keep=0,seed=0"});
    put(&s.w, (lra_put){.task = "listops", .kernel = "flash", .split = "test", .acc = "0.25", .src = "generated",
                        .mask = "bigbird:b=64,w=3,g=2,r=3,seed=1"});
    char *md, *bub;
    render(&s, &md, &bub);
    cr_assert(strstr(md, "| attnbench `flash` | 30.00 "), "%s", md);
    cr_assert(strstr(md, "| attnbench `flash+block` | 20.00 "), "%s", md);
    cr_assert(strstr(md, "| *published: Local Attention* | *15.82* |"), "%s", md);
    cr_assert(strstr(md, "| attnbench `flash+bigbird` | 25.00 "), "%s", md);
    cr_assert(strstr(md, "| *published: BigBird* | *36.05* |"), "%s", md);
    cr_assert(strstr(md, "mask=block:bq=20,bk=20,keep=0,seed=0 lr=0.001"), "the spec is in the settings: %s", md);
    free(md), free(bub);
}

static void put_speed(csvw *w, const char *kernel, const char *mask, int N, const char *ms, const char *rss)
{
    csvw_row r;
    csvw_row_init(&r);
    csvw_row_set(&r, ATTN_COL_SUITE, "lra_speed");
    csvw_row_set(&r, ATTN_COL_KERNEL, "%s", kernel);
    csvw_row_set(&r, ATTN_COL_MASK, "%s", mask);
    csvw_row_set(&r, ATTN_COL_N, "%d", N);
    csvw_row_set(&r, ATTN_COL_TIME_MS_MEDIAN, "%s", ms);
    csvw_row_set(&r, ATTN_COL_PEAK_RSS_BYTES, "%s", rss);
    csvw_row_set(&r, ATTN_COL_STATUS, "ok");
    test_row_write(w, &r);
}

/* Table 2's analogue: steps/s and peak RSS as ratios to flash at the same
 * length, the paper's ratios beside them only where its lengths match. */
Test(lra_report, speed_section_gives_ratios_to_flash_beside_the_papers)
{
    scratch s;
    open_scratch(&s);
    put_speed(&s.w, "flash", "full", 4096, "400", "104857600");
    put_speed(&s.w, "flash", "full", 1024, "100", "10485760");
    put_speed(&s.w, "linear", "full", 1024, "50", "5242880");
    put_speed(&s.w, "linear", "full", 4096, "80", "20971520");
    put_speed(&s.w, "flash", "block:bq=20,bk=20,keep=0,seed=0", 1024, "25", "10485760");
    csvw_close(&s.w);
    lra_speed sp;
    cr_assert_eq(lra_speed_load(s.csv, &sp), 0);
    cr_assert_eq(sp.n_N, 2);
    cr_assert_eq(sp.N[0], 1024, "lengths ascending");
    char *md;
    size_t n;
    FILE *f = open_memstream(&md, &n);
    lra_speed_markdown(&sp, f);
    fclose(f);
    cr_assert(strstr(md, "| attnbench `linear` | 20 (2.00×) | 12.5 (5.00×) | 5 (0.50×) | 20 (0.20×) |"), "%s", md);
    cr_assert(strstr(md, "| *paper: Linear Trans.* | *1.1×* | *5.6×* | *0.44×* | *0.11×* |"), "%s", md);
    cr_assert(strstr(md, "| attnbench `flash+block` | 40 (4.00×) | — |"), "%s", md);
    free(md);
    unlink(s.csv), rmdir(s.dir);
}

/* The bubbles take speed and memory from the speed rows at the longest length
 * each row and flash share (the paper's chart uses its 4K benchmark), not
 * from the trainings; a row the speed file lacks gets no x. */
Test(lra_report, bubbles_take_speed_and_memory_from_the_speed_rows_when_given)
{
    scratch s;
    open_scratch(&s);
    const char *const kernels[] = {"flash", "linear", "performer"};
    for (int k = 0; k < 3; k++) {
        put(&s.w, (lra_put){.task = "image", .kernel = kernels[k], .split = "valid", .acc = "0.5", .src = "stand-in:fmnist"});
        put(&s.w, (lra_put){.task = "image", .kernel = kernels[k], .split = "test", .acc = "0.500", .src = "stand-in:fmnist"});
    }
    put_speed(&s.w, "flash", "full", 4096, "400", "104857600");
    put_speed(&s.w, "flash", "full", 1024, "100", "10485760");
    put_speed(&s.w, "linear", "full", 1024, "50", "5242880");
    put_speed(&s.w, "linear", "full", 4096, "80", "20971520");
    csvw_close(&s.w);
    static lra_table t;
    lra_speed sp;
    cr_assert_eq(lra_table_load(s.csv, &t), 0);
    cr_assert_eq(lra_speed_load(s.csv, &sp), 0);
    char *bub;
    size_t n;
    FILE *g = open_memstream(&bub, &n);
    lra_table_bubbles(&t, &sp, g);
    fclose(g);
    cr_assert(!strncmp(bub, "# machine: ", 11) && strstr(bub, " threads\nkernel,"), "the chart names its machine: %s", bub);
    cr_assert(strstr(bub, "flash,1.0000,50.000,100.0,1,4096"), "%s", bub);
    cr_assert(strstr(bub, "linear,5.0000,50.000,20.0,1,4096"), "training times (10 vs 20 ms) would give 2: %s", bub);
    cr_assert(strstr(bub, "performer,nan,50.000,nan,1,0"), "%s", bub);
    free(bub);
    unlink(s.csv), rmdir(s.dir);
}

/* The report says plainly where the ranking differs from the paper's. */
Test(lra_report, ranking_section_names_the_models_that_move)
{
    static const char *const five[] = {"listops", "text", "retrieval", "image", "pathfinder"};
    scratch s;
    open_scratch(&s);
    for (int i = 0; i < 5; i++) {
        put(&s.w, (lra_put){.task = five[i], .kernel = "flash", .split = "test", .acc = "0.50", .src = "generated"});
        put(&s.w, (lra_put){.task = five[i], .kernel = "linear", .split = "test", .acc = "0.60", .src = "generated"});
        put(&s.w, (lra_put){.task = five[i], .kernel = "flash", .split = "test", .acc = "0.40", .src = "generated",
                            .mask = "block:bq=20,bk=20,keep=0,seed=0"});
    }
    char *md, *bub;
    render(&s, &md, &bub);
    cr_assert(strstr(md, "| `linear` (Linear Trans.) | 60.00 | 1 | 50.55 | 2 | higher here |"), "%s", md);
    cr_assert(strstr(md, "| `flash` (Transformer) | 50.00 | 2 | 54.39 | 1 | lower here |"), "%s", md);
    cr_assert(strstr(md, "| `flash+block` (Local Attention) | 40.00 | 3 | 46.06 | 3 | same place |"), "%s", md);
    cr_assert(strstr(md, "2 of 3 models rank differently than in the paper."), "%s", md);
    free(md), free(bub);
}

/* Nothing is left out silently: an empty file, a file without one training
 * row and a torn last row (a Pathfinder cell would vanish and the average
 * become "4 of 5 tasks") are errors naming the file; the table names the
 * file it was read from. */
Test(lra_report, an_empty_file_no_training_row_or_a_torn_last_row_is_an_error)
{
    scratch s;
    static lra_table t;
    open_scratch(&s);
    csvw_close(&s.w);
    cr_assert_lt(lra_table_load(s.csv, &t), 0, "a file with the header only");
    cr_assert(strstr(attn_last_error(), "expected LRA training rows"), "%s", attn_last_error());
    truncate(s.csv, 0);
    cr_assert_lt(lra_table_load(s.csv, &t), 0, "an empty file");
    cr_assert(strstr(attn_last_error(), ":1: expected the results header line, found an empty file"), "%s",
              attn_last_error());

    unlink(s.csv);
    cr_assert_eq(csvw_open(&s.w, s.csv), 0);
    put(&s.w, (lra_put){.task = "listops", .kernel = "flash", .split = "test", .acc = "0.364", .src = "generated"});
    csvw_close(&s.w);
    int fd = open(s.csv, O_WRONLY | O_APPEND);
    cr_assert_eq(write(fd, ",,,,1,lra,pathfinder,flash", 26), 26);
    close(fd);
    cr_assert_lt(lra_table_load(s.csv, &t), 0);
    cr_assert(strstr(attn_last_error(), s.csv) && strstr(attn_last_error(), ":3: expected a complete last row"),
              "%s", attn_last_error());
    unlink(s.csv), rmdir(s.dir);
}

Test(lra_report, the_table_names_the_csv_it_was_read_from)
{
    scratch s;
    open_scratch(&s);
    put(&s.w, (lra_put){.task = "listops", .kernel = "flash", .split = "test", .acc = "0.364", .src = "generated"});
    char want[96];
    snprintf(want, sizeof want, "one setting in %s;", s.csv);
    char *md, *bub;
    render(&s, &md, &bub);
    cr_assert(strstr(md, want), "%s", md);
    free(md), free(bub);
}

/* Run where there is no results/ directory: --md elsewhere takes the data
 * file along beside it. */
Test(lra_report, md_outside_results_needs_no_results_directory, .init = cr_redirect_stdout)
{
    scratch s;
    open_scratch(&s);
    put(&s.w, (lra_put){.task = "listops", .kernel = "flash", .split = "test", .acc = "0.364", .src = "generated"});
    csvw_close(&s.w);
    cr_assert_eq(chdir(s.dir), 0);
    char md[96], bub[96];
    snprintf(md, sizeof md, "%s/T.md", s.dir);
    snprintf(bub, sizeof bub, "%s/lra_bubbles.csv", s.dir);
    char *argv[] = {"report", "lra", "--csv", s.csv, "--md", md, NULL};
    cr_assert_eq(cmd_report(6, argv), 0, "%s", attn_last_error());
    cr_assert_eq(access(md, F_OK), 0);
    cr_assert_eq(access(bub, F_OK), 0, "the data file beside --md");
    unlink(md), unlink(bub), unlink(s.csv), rmdir(s.dir);
}

static void quiet_report(void)
{
    cr_redirect_stdout();
    cr_redirect_stderr();
}

/* A report that cannot write one of its outputs (or is killed while
 * writing) leaves the earlier report whole: nothing is truncated first. */
Test(lra_report, a_report_that_cannot_write_keeps_the_earlier_files_whole, .init = quiet_report)
{
    scratch s;
    open_scratch(&s);
    put(&s.w, (lra_put){.task = "listops", .kernel = "flash", .split = "test", .acc = "0.364", .src = "generated"});
    csvw_close(&s.w);
    char md[96], data[96], text[64] = "";
    snprintf(md, sizeof md, "%s/T.md", s.dir);
    snprintf(data, sizeof data, "%s/no/such/dir/bubbles.csv", s.dir);
    FILE *f = fopen(md, "w");
    cr_assert(f);
    fputs("the earlier report\n", f);
    fclose(f);
    char *argv[] = {"report", "lra", "--csv", s.csv, "--md", md, "--data", data, NULL};
    cr_assert_eq(cmd_report(8, argv), 2);
    f = fopen(md, "r");
    cr_assert(f && fgets(text, sizeof text, f));
    fclose(f);
    cr_assert_str_eq(text, "the earlier report\n");
    char tmp[104];
    snprintf(tmp, sizeof tmp, "%s.tmp", md);
    cr_assert_neq(access(tmp, F_OK), 0, "%s left behind", tmp);
    unlink(md), unlink(s.csv), rmdir(s.dir);
}
