/* `attnbench report all`: REPORT.md from a results directory's CSVs alone,
 * a section per suite (a table where there are rows, a sentence where the
 * suite was not run), the provenance of the rows, and only links that
 * resolve. */
#include "harness/cli/cli.h"
#include "common/attn_error.h"

#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ARGV(...) ((char *[]){__VA_ARGS__, NULL})
#define ARGC(...) ((int)(sizeof((char *[]){__VA_ARGS__}) / sizeof(char *)))

static void quiet(void)
{
    cr_redirect_stdout();
    cr_redirect_stderr();
}

TestSuite(report_all, .init = quiet, .timeout = 120);

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    cr_assert(f, "%s missing", path);
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* Every Markdown link target "](x)" names a file under dir. */
static void assert_links_resolve(const char *dir, const char *md)
{
    int links = 0;
    for (const char *p = md; (p = strstr(p, "](")) != NULL; p += 2) {
        const char *end = strchr(p + 2, ')');
        cr_assert(end, "unclosed link");
        char path[1024];
        snprintf(path, sizeof path, "%s/%.*s", dir, (int)(end - p - 2), p + 2);
        cr_assert_eq(access(path, R_OK), 0, "link to %s does not resolve", path);
        links++;
    }
    cr_assert_geq(links, 1, "the report links its CSVs");
}

Test(report_all, the_report_has_every_suite_the_provenance_and_links_that_resolve)
{
    char dir[] = "/tmp/attnbench-report-XXXXXX", kernels[128], report[160];
    cr_assert(mkdtemp(dir));
    snprintf(kernels, sizeof kernels, "%s/kernels.csv", dir), snprintf(report, sizeof report, "%s/REPORT.md", dir);
    cr_assert_eq(cmd_bench(ARGC("bench", "--kernel", "flash,linear", "--mask", "causal", "--N", "64,128", "--H", "2",
                                "--D", "16", "--reps", "2", "--min-time", "0", "--no-peak", "--threads", "1", "--out",
                                kernels),
                           ARGV("bench", "--kernel", "flash,linear", "--mask", "causal", "--N", "64,128", "--H", "2",
                                "--D", "16", "--reps", "2", "--min-time", "0", "--no-peak", "--threads", "1", "--out",
                                kernels)),
                 0, "%s", attn_last_error());
    cr_assert_eq(cmd_report(ARGC("report", "all", "--results", dir), ARGV("report", "all", "--results", dir)), 0, "%s",
                 attn_last_error());
    const char *md = slurp(report);
    static const char *const want[] = {"## Where the numbers come from", "| `kernels.csv` | 4 (4) | 1 |",
                                       "**Counters**", "## Kernels", "| flash | causal | fwd | 16 | 1 | 128 |",
                                       "| linear | causal | fwd | 16 | 1 | 128 |",
                                       "No `masks.csv` in this results directory: the suite was not run.",
                                       "## Long Range Arena", "No `peak.csv`"};
    for (size_t i = 0; i < sizeof want / sizeof *want; i++)
        cr_assert(strstr(md, want[i]), "REPORT.md lacks '%s'", want[i]);
    assert_links_resolve(dir, md);
    unlink(kernels), unlink(report), rmdir(dir);
}

Test(report_all, a_directory_without_results_is_an_error_naming_it)
{
    char dir[] = "/tmp/attnbench-report-XXXXXX";
    cr_assert(mkdtemp(dir));
    cr_assert_neq(cmd_report(ARGC("report", "all", "--results", dir), ARGV("report", "all", "--results", dir)), 0);
    cr_assert(strstr(attn_last_error(), dir) && strstr(attn_last_error(), "no results CSV"), "%s", attn_last_error());
    char report[160];
    snprintf(report, sizeof report, "%s/REPORT.md", dir);
    cr_assert_neq(access(report, F_OK), 0, "no report is left behind");
    rmdir(dir);
}
