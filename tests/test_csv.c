/* Results CSV writer/reader: quoting round-trip, header handling, torn-row
 * repair with resume, job identity, concurrent appenders. */
#include "common/attn_error.h"
#include "harness/results/csvw.h"
#include "test_rows.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[64], path[128];

static void make_dir(void)
{
    strcpy(dir, "/tmp/attn_csv_XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/results.csv", dir);
}

static void remove_dir(void)
{
    unlink(path);
    rmdir(dir);
}

TestSuite(csv, .init = make_dir, .fini = remove_dir);

/* A row with every identity cell set, distinguished by `tag` (in N). */
static void sample_row(csvw_row *r, int tag)
{
    csvw_row_init(r);
    csvw_row_set(r, ATTN_COL_RUN_ID, "run-1");
    csvw_row_set(r, ATTN_COL_THREADS, "2");
    csvw_row_set(r, ATTN_COL_SUITE, "kernels");
    csvw_row_set(r, ATTN_COL_KERNEL, "flash");
    csvw_row_set(r, ATTN_COL_MASK, "causal");
    csvw_row_set(r, ATTN_COL_PASS, "fwd");
    csvw_row_set(r, ATTN_COL_DTYPE, "fp32");
    csvw_row_set(r, ATTN_COL_B, "1");
    csvw_row_set(r, ATTN_COL_H, "8");
    csvw_row_set(r, ATTN_COL_H_KV, "8");
    csvw_row_set(r, ATTN_COL_N, "%d", 1024 + tag);
    csvw_row_set(r, ATTN_COL_N_KV, "1024");
    csvw_row_set(r, ATTN_COL_D, "64");
    csvw_row_set(r, ATTN_COL_DV, "64");
    csvw_row_set(r, ATTN_COL_PARAMS, "br=64,bc=128");
    csvw_row_set(r, ATTN_COL_SEED, "1");
    csvw_row_set(r, ATTN_COL_DATA_SOURCE, "generated");
    csvw_row_set_num(r, ATTN_COL_TIME_MS_MEDIAN, 1.25 + tag);
    csvw_row_set(r, ATTN_COL_STATUS, "ok");
}

static char *slurp(const char *p, size_t *len)
{
    FILE *f = fopen(p, "rb");
    cr_assert_not_null(f);
    static char buf[1 << 20];
    *len = fread(buf, 1, sizeof buf - 1, f);
    buf[*len] = '\0';
    fclose(f);
    return buf;
}

static int count_rows(const csvw_row *row, void *ud)
{
    (void)row;
    ++*(int *)ud;
    return 0;
}

Test(csv, quoted_cells_round_trip_through_writer_and_reader)
{
    static const char *const tricky[] = {
        "a,b", "say \"hi\"", "line1\nline2", "crlf\r\nend", "  padded  ", "\"", ",", "", "plain",
    };
    const int n = sizeof tricky / sizeof *tricky;
    csvw_row r;
    sample_row(&r, 0);
    for (int i = 0; i < n; i++)   /* into the (non-identity) counter columns */
        cr_assert_eq(csvw_row_set(&r, (schema_col)(ATTN_COL_PAPI_STATUS + i), "%s", tricky[i]), 0);
    csvw_row_set(&r, ATTN_COL_STATUS, "error:bad, \"worse\"\nworst");

    csvw w;
    cr_assert_eq(csvw_open(&w, path), 0, "%s", attn_last_error());
    cr_assert_eq(csvw_write(&w, &r), 0, "%s", attn_last_error());
    cr_assert_eq(csvw_close(&w), 0);

    size_t len;
    const char *text = slurp(path, &len);
    cr_assert(strstr(text, ",\"a,b\","), "comma cell quoted: %s", text);
    cr_assert(strstr(text, ",\"say \"\"hi\"\"\","), "quotes doubled");
    cr_assert(strstr(text, ",plain,"), "plain cell left unquoted");

    static test_rows c;
    c.n = 0;
    cr_assert_eq(csvw_read_rows(path, test_rows_collect, &c), 1, "%s", attn_last_error());
    cr_assert_eq(c.n, 1);
    csvw_row want = r;
    csvw_row_job_id(&r, want.cell[ATTN_COL_JOB_ID]);
    for (int col = 0; col < ATTN_COL__COUNT; col++)
        cr_assert_str_eq(c.rows[0].cell[col], want.cell[col], "column %s", schema_col_name((schema_col)col));
}

Test(csv, header_is_written_once_across_reopens)
{
    for (int k = 0; k < 3; k++) {
        csvw w;
        cr_assert_eq(csvw_open(&w, path), 0, "%s", attn_last_error());
        cr_assert_eq(w.rows, k);
        csvw_row r;
        sample_row(&r, k);
        cr_assert_eq(csvw_write(&w, &r), 0);
        csvw_close(&w);
    }
    size_t len;
    const char *text = slurp(path, &len);
    int headers = 0, lines = 0;
    for (const char *p = text; (p = strstr(p, "run_id,utc,git_sha")); p++)
        headers++;
    for (size_t i = 0; i < len; i++)
        lines += text[i] == '\n';
    cr_assert_eq(headers, 1);
    cr_assert_eq(lines, 4);
    cr_assert_eq(strncmp(text, "run_id,utc,git_sha,cpu,threads,suite,", 37), 0);
    cr_assert_eq(csvw_read_rows(path, count_rows, &(int){0}), 3);
}

static void write_raw(const char *p, const char *bytes, size_t n)
{
    int fd = open(p, O_WRONLY | O_CREAT | O_APPEND, 0644);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, bytes, n), (ssize_t)n);
    close(fd);
}

Test(csv, header_mismatch_names_file_line_1_and_first_differing_column)
{
    /* the schema header with column 5 renamed */
    csvw w;
    cr_assert_eq(csvw_open(&w, path), 0);
    csvw_close(&w);
    size_t len;
    char *text = strdup(slurp(path, &len));
    char *col = strstr(text, ",threads,");
    memcpy(col + 1, "thread_", 7);
    unlink(path);
    write_raw(path, text, len);
    free(text);

    cr_assert_lt(csvw_open(&w, path), 0);
    const char *msg = attn_last_error();
    cr_assert(strstr(msg, path) && strstr(msg, ":1:"), "%s", msg);
    cr_assert(strstr(msg, "column 5") && strstr(msg, "'threads'") && strstr(msg, "'thread_'"), "%s", msg);
    cr_assert_null(strchr(msg, '\n'));

    /* an older schema with fewer columns names the first missing one */
    unlink(path);
    write_raw(path, "run_id,utc\n", 11);
    cr_assert_lt(csvw_open(&w, path), 0);
    cr_assert(strstr(attn_last_error(), "column 3: expected 'git_sha'"), "%s", attn_last_error());
}

Test(csv, torn_last_row_is_removed_and_resume_neither_duplicates_nor_tears)
{
    csvw w;
    csvw_row r[3];
    char ids[3][17];
    for (int k = 0; k < 3; k++) {
        sample_row(&r[k], k);
        csvw_row_job_id(&r[k], ids[k]);
    }
    /* row 2 carries a line break so the tear can fall inside a quoted cell */
    csvw_row_set(&r[2], ATTN_COL_STATUS, "error:first line\nsecond line");
    cr_assert_eq(csvw_open(&w, path), 0);
    cr_assert_eq(csvw_write(&w, &r[0]), 0);
    cr_assert_eq(csvw_write(&w, &r[1]), 0);
    csvw_close(&w);
    size_t clean_len;
    slurp(path, &clean_len);

    /* the interrupted run: job 2's row cut inside its quoted multi-line cell */
    const char torn[] = "run-1,,,,2,kernels,,flash,,causal,fwd,fp32,1,8,8,1026,1024,64,\"br=64,bc=128\",1,"
                        "generated,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,\"error:first line\nsec";
    write_raw(path, torn, sizeof torn - 1);

    /* resume: the reader sees jobs 0 and 1 only */
    csvw_idset done;
    csvw_idset_init(&done);
    cr_assert_eq(csvw_load_job_ids(path, &done), 0, "%s", attn_last_error());
    cr_assert_eq(done.n, 2);
    cr_assert(csvw_idset_contains(&done, ids[0]) && csvw_idset_contains(&done, ids[1]));
    cr_assert_not(csvw_idset_contains(&done, ids[2]));

    cr_assert_eq(csvw_open(&w, path), 0, "%s", attn_last_error());
    cr_assert_eq(w.repaired_bytes, sizeof torn - 1);
    cr_assert_eq(w.rows, 2);
    size_t len;
    slurp(path, &len);
    cr_assert_eq(len, clean_len, "file cut back to its last whole row");
    for (int k = 0; k < 3; k++)
        if (!csvw_idset_contains(&done, ids[k]))
            cr_assert_eq(csvw_write(&w, &r[k]), 0);
    csvw_close(&w);
    csvw_idset_free(&done);

    static test_rows c;
    c.n = 0;
    cr_assert_eq(csvw_read_rows(path, test_rows_collect, &c), 3, "%s", attn_last_error());
    for (int k = 0; k < 3; k++) {
        cr_assert_str_eq(c.rows[k].cell[ATTN_COL_JOB_ID], ids[k]);
        cr_assert_str_eq(c.rows[k].cell[ATTN_COL_STATUS], r[k].cell[ATTN_COL_STATUS]);
    }
    /* a second open finds nothing to repair */
    cr_assert_eq(csvw_open(&w, path), 0);
    cr_assert_eq(w.repaired_bytes, 0);
    cr_assert_eq(w.rows, 3);
    csvw_close(&w);
}

/* A quote left open on a middle line makes the parser read every later row
 * as part of one unfinished field, as it reads a torn last row: the rows
 * after it are valid, so the file is refused naming that line, and neither
 * the reader nor the writer drops or rewrites anything. */
Test(csv, unclosed_quote_in_a_middle_row_is_refused_and_no_row_is_removed)
{
    csvw w;
    csvw_row r[3];
    cr_assert_eq(csvw_open(&w, path), 0);
    for (int k = 0; k < 3; k++) {
        sample_row(&r[k], k);
        csvw_row_set(&r[k], ATTN_COL_PARAMS, "br=64"); /* no quotes that would end the open field */
        cr_assert_eq(csvw_write(&w, &r[k]), 0);
    }
    csvw_close(&w);
    size_t len;
    char *text = strdup(slurp(path, &len));
    const char *row1 = strchr(strchr(text, '\n') + 1, '\n') + 1; /* after header and row 0 */
    static char broken[1 << 16];
    int n = snprintf(broken, sizeof broken, "%.*s%s%s", (int)(row1 - text), text,
                     "run-1,\"an unclosed quote,x\n", row1);
    free(text);
    unlink(path);
    write_raw(path, broken, (size_t)n);

    csvw_idset done;
    csvw_idset_init(&done);
    cr_assert_lt(csvw_load_job_ids(path, &done), 0, "resume does not read past the bad line");
    cr_assert(strstr(attn_last_error(), path) && strstr(attn_last_error(), ":3: "), "%s", attn_last_error());
    csvw_idset_free(&done);
    cr_assert_lt(csvw_open(&w, path), 0, "the writer refuses the file");
    cr_assert(strstr(attn_last_error(), ":3: "), "%s", attn_last_error());
    static test_rows c;
    c.n = 0;
    cr_assert_lt(csvw_read_rows(path, test_rows_collect, &c), 0);
    slurp(path, &len);
    cr_assert_eq(len, (size_t)n, "no byte removed");
}

/* A file that is not text (a checkpoint given as --csv) is named in one
 * printable line: its bytes are escaped, never written raw to the terminal. */
Test(csv, a_binary_file_is_refused_with_its_bytes_escaped)
{
    static const char elf[] = "\x7f" "ELF\x02\x01\x1b[2J,x\n";
    write_raw(path, elf, sizeof elf - 1);
    static test_rows c;
    c.n = 0;
    cr_assert_lt(csvw_read_rows(path, test_rows_collect, &c), 0);
    const char *msg = attn_last_error();
    cr_assert(strstr(msg, ":1: header column 1: expected 'run_id', found '\\x7fELF\\x02\\x01\\x1b[2J'"), "%s", msg);
    for (const char *p = msg; *p; p++)
        cr_assert((unsigned char)*p >= 0x20 && *p != 0x7f, "raw byte 0x%02x in '%s'", (unsigned char)*p, msg);
}

Test(csv, torn_header_of_a_new_file_is_rewritten_but_foreign_text_is_left_alone)
{
    write_raw(path, "run_id,utc,git", 14);
    csvw w;
    cr_assert_eq(csvw_open(&w, path), 0, "%s", attn_last_error());
    csvw_close(&w);
    size_t len;
    const char *text = slurp(path, &len);
    cr_assert_eq(strncmp(text, "run_id,utc,git_sha,", 19), 0);
    cr_assert_eq(text[len - 1], '\n');
    cr_assert(strstr(text, ",status,job_id\n"));

    unlink(path);
    write_raw(path, "hello", 5);
    cr_assert_lt(csvw_open(&w, path), 0);
    cr_assert(strstr(attn_last_error(), ":1: expected the results header"), "%s", attn_last_error());
    slurp(path, &len);
    cr_assert_eq(len, 5, "a file that is not ours is not modified");
}

Test(csv, malformed_row_is_reported_with_file_line_and_field_count)
{
    csvw w;
    csvw_row r;
    sample_row(&r, 0);
    cr_assert_eq(csvw_open(&w, path), 0);
    cr_assert_eq(csvw_write(&w, &r), 0);
    csvw_close(&w);
    write_raw(path, "a,b,c\n", 6);
    static test_rows c;
    c.n = 0;
    cr_assert_lt(csvw_read_rows(path, test_rows_collect, &c), 0);
    const char *msg = attn_last_error();
    char want[64];
    snprintf(want, sizeof want, ":3: expected %d fields, found 3", ATTN_COL__COUNT);
    cr_assert(strstr(msg, path) && strstr(msg, want), "%s", msg);
    cr_assert_lt(csvw_open(&w, path), 0, "appending to a corrupt file is refused");

    unlink(path);
    cr_assert_eq(csvw_open(&w, path), 0);
    csvw_close(&w);
    write_raw(path, "x,\"un\"closed,y\n", 15);
    cr_assert_lt(csvw_read_rows(path, test_rows_collect, &c), 0);
    cr_assert(strstr(attn_last_error(), ":2: expected CSV quoting"), "%s", attn_last_error());
}

Test(csv, job_id_is_stable_and_depends_on_identity_columns_only)
{
    csvw_row r;
    sample_row(&r, 0);
    char base[17], id[17];
    csvw_row_job_id(&r, base);
    /* FNV-1a 64 of "2" US "kernels" US "" US "flash" ... "generated", computed independently */
    cr_assert_str_eq(base, "c03232dada8abbe6");

    static const schema_col meta[] = {ATTN_COL_RUN_ID, ATTN_COL_UTC, ATTN_COL_GIT_SHA, ATTN_COL_CPU,
                                    ATTN_COL_REPS, ATTN_COL_TIME_MS_MEDIAN, ATTN_COL_STATUS, ATTN_COL_VALUE};
    for (size_t i = 0; i < sizeof meta / sizeof *meta; i++) {
        csvw_row m = r;
        csvw_row_set(&m, meta[i], "changed");
        csvw_row_job_id(&m, id);
        cr_assert_str_eq(id, base, "%s must not change job_id", schema_col_name(meta[i]));
    }
    for (int c = ATTN_COL_IDENTITY_FIRST - 1; c <= ATTN_COL_IDENTITY_LAST; c++) {
        if (c == ATTN_COL_IDENTITY_FIRST - 1)
            c = ATTN_COL_THREADS;   /* threads belongs to the identity too */
        csvw_row m = r;
        csvw_row_set(&m, (schema_col)c, "%sx", r.cell[c]);
        csvw_row_job_id(&m, id);
        cr_assert_str_neq(id, base, "%s must change job_id", schema_col_name((schema_col)c));
    }
    /* cell boundaries matter: ("kernels", "") differs from ("kernel", "s") */
    csvw_row m = r;
    csvw_row_set(&m, ATTN_COL_SUITE, "kernel");
    csvw_row_set(&m, ATTN_COL_TASK, "s");
    csvw_row_job_id(&m, id);
    cr_assert_str_neq(id, base);
}

Test(csv, numbers_print_counts_exactly_and_measures_to_six_digits)
{
    csvw_row r;
    csvw_row_init(&r);
    cr_assert_eq(csvw_row_set_num(&r, ATTN_COL_FLOPS_ANALYTIC, 87960930222080.0), 0);
    cr_assert_str_eq(r.cell[ATTN_COL_FLOPS_ANALYTIC], "87960930222080");
    cr_assert_eq(strtod(r.cell[ATTN_COL_FLOPS_ANALYTIC], NULL), 87960930222080.0);
    csvw_row_set_num(&r, ATTN_COL_TIME_MS_MEDIAN, 0.000123456789);
    cr_assert_str_eq(r.cell[ATTN_COL_TIME_MS_MEDIAN], "0.000123457");
    csvw_row_set_num(&r, ATTN_COL_GFLOPS, 31.96123);
    cr_assert_str_eq(r.cell[ATTN_COL_GFLOPS], "31.9612");
    csvw_row_set_num(&r, ATTN_COL_DENSITY, -0.0);
    cr_assert_str_eq(r.cell[ATTN_COL_DENSITY], "0");
    cr_assert_lt(csvw_row_set_num(&r, ATTN_COL_TIME_CV, 0.0 / 0.0), 0);
    cr_assert_str_eq(r.cell[ATTN_COL_TIME_CV], "NA:non-finite");
    cr_assert(strstr(attn_last_error(), "time_cv"), "%s", attn_last_error());

    char big[ATTN_CELL_MAX + 100];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    cr_assert_lt(csvw_row_set(&r, ATTN_COL_PARAMS, "%s", big), 0);
    cr_assert_str_eq(r.cell[ATTN_COL_PARAMS], "NA:too-long");
    cr_assert(strstr(attn_last_error(), "params"), "%s", attn_last_error());
    cr_assert_eq(csvw_row_set(&r, ATTN_COL_PARAMS, "%.*s", ATTN_CELL_MAX - 1, big), 0, "ATTN_CELL_MAX - 1 bytes fit");
}

Test(csv, concurrent_appenders_write_whole_rows)
{
    enum { PROCS = 3, ROWS = 40 };
    for (int p = 0; p < PROCS; p++) {
        pid_t pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) {
            csvw w;
            if (csvw_open(&w, path))
                _exit(1);
            for (int k = 0; k < ROWS; k++) {
                csvw_row r;
                sample_row(&r, p * ROWS + k);
                /* long cells make a torn or interleaved row likely to show */
                csvw_row_set(&r, ATTN_COL_CPU, "%0180d", p);
                if (csvw_write(&w, &r))
                    _exit(2);
            }
            csvw_close(&w);
            _exit(0);
        }
    }
    for (int p = 0; p < PROCS; p++) {
        int st;
        wait(&st);
        cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    csvw_idset ids;
    csvw_idset_init(&ids);
    cr_assert_eq(csvw_load_job_ids(path, &ids), 0, "%s", attn_last_error());
    cr_assert_eq(ids.n, PROCS * ROWS, "every row whole and distinct");
    csvw_idset_free(&ids);
    size_t len;
    const char *text = slurp(path, &len);
    int headers = 0;
    for (const char *q = text; (q = strstr(q, "run_id,utc")); q++)
        headers++;
    cr_assert_eq(headers, 1, "one header although all processes raced to create the file");
}

Test(csv, id_set_adds_finds_and_rejects_malformed_ids)
{
    csvw_idset s;
    csvw_idset_init(&s);
    char id[17];
    for (unsigned k = 0; k < 1000; k++) {
        snprintf(id, sizeof id, "%016x", k * 2654435761u);
        cr_assert_eq(csvw_idset_add(&s, id), 1);
    }
    cr_assert_eq(csvw_idset_add(&s, "0000000000000000"), 0, "present already");
    cr_assert_eq(s.n, 1000);
    for (unsigned k = 0; k < 1000; k++) {
        snprintf(id, sizeof id, "%016x", k * 2654435761u);
        cr_assert(csvw_idset_contains(&s, id));
        snprintf(id, sizeof id, "%016x", k * 2654435761u + 1);
        cr_assert_not(csvw_idset_contains(&s, id));
    }
    cr_assert_eq(csvw_idset_add(&s, "ABCDEF0123456789"), ATTN_EINVAL);
    cr_assert_eq(csvw_idset_add(&s, "abc"), ATTN_EINVAL);
    csvw_idset_free(&s);

    csvw_idset_init(&s);
    cr_assert_eq(csvw_load_job_ids(path, &s), 0, "a missing file is a fresh resume");
    cr_assert_eq(s.n, 0);
    csvw_idset_free(&s);
}
