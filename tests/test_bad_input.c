/* The bad-input rule, tested as a catalogue (the table is
 * tests/bad_input_cases.c): every case runs its command through the cmd_*
 * entry point in a forked child (its own getopt state, resource limits and
 * user), and must exit with code 2, end stderr with one line that names what
 * was wrong, and leave every result file that existed before byte for byte
 * as it was. */
#include "bad_input.h"

#include "common/attn_error.h"
#include "harness/cli/cli.h"
#include "harness/results/csvw.h"

#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

typedef int (*cmd_fn)(int, char **);

static cmd_fn command(const char *name)
{
    static const struct {
        const char *name;
        cmd_fn run;
    } commands[] = {{"list", cmd_list},   {"peak", cmd_peak},           {"check", cmd_check}, {"bench", cmd_bench},
                    {"sweep", cmd_sweep}, {"merge", cmd_merge}, {"migrate", cmd_migrate}, {"mask", cmd_mask}, {"train", cmd_train}, {"eval", cmd_eval},
                    {"report", cmd_report}, {"crossover", cmd_crossover}};
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        if (!strcmp(commands[i].name, name))
            return commands[i].run;
    cr_assert_fail("no command '%s'", name);
    return NULL;
}

/* s with every "@D" replaced by dir (a new string). */
static char *expand(const char *s, const char *dir)
{
    size_t n = strlen(s) + 1;
    for (const char *p = strstr(s, "@D"); p; p = strstr(p + 2, "@D"))
        n += strlen(dir);
    char *out = malloc(n), *o = out;
    cr_assert(out);
    while (*s) {
        if (s[0] == '@' && s[1] == 'D')
            o += sprintf(o, "%s", dir), s += 2;
        else
            *o++ = *s++;
    }
    *o = '\0';
    return out;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t cap = 0, n = 0, got;
    do {
        if (n + 4096 > cap)
            cap = 2 * cap + 4096, buf = realloc(buf, cap + 1);
        cr_assert(buf);
        got = fread(buf + n, 1, cap - n, f);
        n += got;
    } while (got);
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
}

static void put(const char *path, const char *text, size_t len)
{
    FILE *f = fopen(path, "wb");
    cr_assert(f, "%s: %s", path, strerror(errno));
    cr_assert_eq(fwrite(text, 1, len, f), len);
    fclose(f);
}

/* The result files every case starts with: valid rows and a report. */
static const char *const seeded[] = {"kernels.csv", "peak.csv", "LRA.md"};

typedef struct {
    char *text;
    size_t len;
} content;

/* Valid rows of the current schema, written as the harness writes them:
 * finished LRA trainings (which every reader accepts as rows, and from which
 * `report lra` makes a table). */
static content sample_rows(const char *dir)
{
    static const char *const tasks[] = {"listops", "text", "retrieval"};
    char path[256];
    snprintf(path, sizeof path, "%s/sample.csv", dir);
    csvw w;
    cr_assert_eq(csvw_open(&w, path), 0, "%s", attn_last_error());
    for (int i = 0; i < 3; i++) {
        csvw_row r;
        csvw_row_init(&r);
        csvw_row_set(&r, ATTN_COL_SUITE, "lra");
        csvw_row_set(&r, ATTN_COL_TASK, "%s", tasks[i]);
        csvw_row_set(&r, ATTN_COL_KERNEL, "flash");
        csvw_row_set(&r, ATTN_COL_MASK, "full");
        csvw_row_set(&r, ATTN_COL_MODEL, "encoder(L=2,d=64,H=2,mlp=128,pos=learned,pool=cls)");
        csvw_row_set(&r, ATTN_COL_B, "32");
        csvw_row_set(&r, ATTN_COL_N, "%d", 1024 << i);
        csvw_row_set(&r, ATTN_COL_N_KV, "%d", 1024 << i);
        csvw_row_set(&r, ATTN_COL_PARAMS, "lr=0.001;wd=0.1;steps=10;n=2000;step=10;split=test;best_step=0;weights=last");
        csvw_row_set(&r, ATTN_COL_METRIC, "accuracy");
        csvw_row_set(&r, ATTN_COL_VALUE, "0.%d5", 3 + i);
        csvw_row_set(&r, ATTN_COL_DATA_SOURCE, "generated");
        csvw_row_set(&r, ATTN_COL_TIME_MS_MEDIAN, "20");
        csvw_row_set(&r, ATTN_COL_STATUS, "ok");
        char id[17];
        csvw_row_job_id(&r, id);
        csvw_row_set(&r, ATTN_COL_JOB_ID, "%s", id);
        cr_assert_eq(csvw_write(&w, &r), 0, "%s", attn_last_error());
    }
    csvw_close(&w);
    content c;
    c.text = slurp(path, &c.len);
    cr_assert(c.text);
    unlink(path);
    return c;
}

static void seed_results(const char *dir, const content *sample, content before[3])
{
    char path[256];
    snprintf(path, sizeof path, "%s/results", dir);
    cr_assert_eq(mkdir(path, 0755), 0);
    for (int i = 0; i < 3; i++) {
        const char *md = "# LRA\n\nseeded before the case ran\n";
        before[i].len = i < 2 ? sample->len : strlen(md);
        before[i].text = memcpy(malloc(before[i].len), i < 2 ? sample->text : md, before[i].len);
        snprintf(path, sizeof path, "%s/results/%s", dir, seeded[i]);
        put(path, before[i].text, before[i].len);
    }
}

/* A file's text, or the sample rows a "@SAMPLE..." text names (bad_input_cases.c). */
static char *file_text(const bad_file *f, const content *sample, size_t *len)
{
    if (f->text[0] != '@') {
        *len = f->len ? f->len : strlen(f->text);
        return memcpy(malloc(*len + 1), f->text, *len + 1);
    }
    *len = sample->len;
    char *t = memcpy(malloc(*len + 2), sample->text, *len);
    t[*len] = '\0';
    if (!strcmp(f->text, "@SAMPLE_TORN"))
        *len -= 20; /* inside the last row, its newline gone */
    else if (!strcmp(f->text, "@HEADER_ONLY"))
        *len = (size_t)(strchr(t, '\n') - t) + 1;
    else if (!strcmp(f->text, "@SAMPLE_QUOTE3")) {
        char *line3 = strchr(strchr(t, '\n') + 1, '\n') + 1;
        memmove(line3 + 1, line3, *len - (size_t)(line3 - t) + 1);
        *line3 = '"', ++*len;
    } else
        cr_assert_str_eq(f->text, "@SAMPLE");
    return t;
}

static void make_files(const bad_case *c, const char *dir, const content *sample)
{
    for (int i = 0; i < BAD_FILES && c->files[i].name; i++) {
        char *path = expand(c->files[i].name, dir), *slash = strrchr(path, '/');
        *slash = '\0';
        mkdir(path, 0755); /* its subdirectory, if it has one */
        *slash = '/';
        size_t len;
        char *text = file_text(&c->files[i], sample, &len);
        put(path, text, len);
        free(text), free(path);
    }
}

static void set_results_writable(const char *dir, int writable)
{
    char path[256];
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/results/%s", dir, seeded[i]);
        chmod(path, writable ? 0644 : 0444);
    }
    snprintf(path, sizeof path, "%s/results", dir);
    chmod(path, writable ? 0755 : 0555);
}

/* In the child: the case's limits, then the command; exits with its code. */
static void run_child(const bad_case *c, char **argv, int argc, int out_fd, int msg_fd)
{
    int null_fd = open("/dev/null", O_WRONLY);
    dup2(null_fd, 1), dup2(out_fd, 2); /* tables and progress on stdout; the message on stderr */
    alarm(120); /* a case that starts real work instead of refusing it fails, not hangs */
    if (c->flags & BAD_FULL_DISK) {
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit lim = {1024, 1024};
        setrlimit(RLIMIT_FSIZE, &lim);
    }
    /* root writes through file modes: drop to nobody for the read-only case */
    if ((c->flags & BAD_READ_ONLY_RESULTS) && geteuid() == 0 && (setgid(65534) || setuid(65534)))
        _exit(99);
    attn_clear_error();
    int rc = command(argv[0])(argc, argv);
    fflush(stdout), fflush(stderr);
    const char *msg = attn_last_error();
    if (write(msg_fd, msg, strlen(msg)) < 0)
        _exit(98);
    _exit(rc);
}

/* The last non-empty line of text. */
static const char *last_line(char *text)
{
    size_t n = strlen(text);
    while (n && text[n - 1] == '\n')
        text[--n] = '\0';
    char *nl = strrchr(text, '\n');
    return nl ? nl + 1 : text;
}

static void check_case(const bad_case *c)
{
    char dir[] = "/tmp/attn_bad_XXXXXX";
    cr_assert(mkdtemp(dir));
    chmod(dir, 0755); /* readable by the user the read-only case runs as */
    content before[3], sample = sample_rows(dir);
    seed_results(dir, &sample, before);
    make_files(c, dir, &sample);
    char *argv[BAD_ARGS + 1] = {0};
    int argc = 0;
    for (; c->argv[argc]; argc++)
        argv[argc] = expand(c->argv[argc], dir);
    if (c->flags & BAD_READ_ONLY_RESULTS)
        set_results_writable(dir, 0);
    char out_path[64], msg_path[64];
    snprintf(out_path, sizeof out_path, "%s/stderr", dir);
    snprintf(msg_path, sizeof msg_path, "%s/message", dir);
    int out_fd = open(out_path, O_CREAT | O_WRONLY | O_TRUNC, 0644), msg_fd = open(msg_path, O_CREAT | O_WRONLY | O_TRUNC, 0644);
    cr_assert(out_fd >= 0 && msg_fd >= 0);
    fflush(stdout), fflush(stderr);
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0)
        run_child(c, argv, argc, out_fd, msg_fd);
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    close(out_fd), close(msg_fd);
    set_results_writable(dir, 1);

    size_t n;
    char *out = slurp(out_path, &n), *msg = slurp(msg_path, &n);
    cr_assert(out && msg);
    const char *line = last_line(out);
    cr_assert(WIFEXITED(status), "%s: %s (signal %d); output: %s", c->what, c->argv[0],
              WIFSIGNALED(status) ? WTERMSIG(status) : 0, out);
    cr_assert_eq(WEXITSTATUS(status), 2, "%s: exit code %d, expected 2; last line: %s", c->what, WEXITSTATUS(status), line);
    cr_assert(strstr(line, c->expect), "%s: the last line does not name '%s': %s", c->what, c->expect, line);
    cr_assert(!strncmp(line, "attnbench ", 10), "%s: the last line is not the command's message: %s", c->what, line);
    cr_assert(!strchr(msg, '\n'), "%s: the message is not one line: %s", c->what, msg);
    cr_log_info("%s -> %s", c->what, line); /* the catalogue's messages, with --verbose */
    for (int i = 0; i < 3; i++) {
        char path[256];
        snprintf(path, sizeof path, "%s/results/%s", dir, seeded[i]);
        char *after = slurp(path, &n);
        cr_assert(after && n == before[i].len && !memcmp(after, before[i].text, n), "%s: results/%s changed", c->what,
                  seeded[i]);
        free(after), free(before[i].text);
    }
    free(out), free(msg), free(sample.text);
    for (int i = 0; i < argc; i++)
        free(argv[i]);
    char rm[128];
    snprintf(rm, sizeof rm, "rm -rf '%s'", dir);
    cr_assert_eq(system(rm), 0);
}

ParameterizedTestParameters(bad_input, catalogue)
{
    size_t *idx = cr_malloc(sizeof *idx * bad_case_count);
    for (size_t i = 0; i < bad_case_count; i++)
        idx[i] = i;
    return cr_make_param_array(size_t, idx, bad_case_count);
}

ParameterizedTest(size_t *i, bad_input, catalogue, .timeout = 180)
{
    check_case(&bad_cases[*i]);
}

/* The rule is held across every command the binary has. */
Test(bad_input, the_catalogue_covers_every_command_with_at_least_60_cases)
{
    static const char *const all[] = {"list", "peak", "check", "bench", "sweep", "mask", "train", "eval", "report",
                                      "crossover"};
    cr_assert_geq(bad_case_count, 60);
    for (size_t k = 0; k < sizeof all / sizeof *all; k++) {
        size_t n = 0;
        for (size_t i = 0; i < bad_case_count; i++)
            n += !strcmp(bad_cases[i].argv[0], all[k]);
        cr_assert_gt(n, 0, "no case for '%s'", all[k]);
    }
}
