/* A generated-answer task's evaluation has two rows (the headline metric and
 * its token accuracy); a resumed run looks for the headline's job_id only.
 * Both rows must land in one write: when the second cannot be written (a
 * kill, here a file-size limit), the file must not keep the first, or the
 * resumed run writes that row a second time (a kill -9 during a sweep's
 * extrapolation cells did exactly that). */
#include "common/attn_error.h"
#include "harness/train/train_run.h"
#include "test_train.h"

#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

/* Bytes of the file's last line (its newline included). */
static long last_line_length(const char *path)
{
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "%s", path);
    static char line[1 << 16];
    long len = 0;
    while (fgets(line, sizeof line, f))
        len = (long)strlen(line);
    fclose(f);
    return len;
}

Test(eval_pair, an_evaluations_two_rows_land_together_or_not_at_all, .timeout = 120)
{
    char dir[] = "/tmp/attn_evalpair_XXXXXX", csv[64], ckpt[64];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(csv, sizeof csv, "%s/niah.csv", dir);
    snprintf(ckpt, sizeof ckpt, "%s/model.ckpt", dir);
    train_run_opts r;
    train_run_defaults(&r);
    strcpy(r.task, "passkey");
    cr_assert_eq(param_bag_add(&r.task_params, "len=256"), 0);
    r.train_n = 8, r.valid_n = 2, r.test_n = 2;
    r.model.layers = 1, r.model.d_model = 8, r.model.heads = 1, r.model.mlp = 0;
    r.train.steps = 1, r.train.warmup = 0, r.train.eval_every = 1, r.train.batch = 2, r.train.threads = 1;
    r.train.progress = 0;
    r.out = csv, r.checkpoint = ckpt;
    double acc, logged;
    cr_assert_eq(test_train_acc(&r, &acc), 0, "%s", attn_last_error());
    long before = file_size(csv), row = last_line_length(csv);
    cr_assert(before > 0 && row > 0);

    /* the evaluation of the checkpoint again, with room for one row and a half */
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit lim = {.rlim_cur = (rlim_t)(before + row + row / 2), .rlim_max = RLIM_INFINITY};
        setrlimit(RLIMIT_FSIZE, &lim);
        _exit(test_eval_acc(ckpt, 0, 1, csv, &acc, &logged) != 0 ? 0 : 1);
    }
    int status = 0;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the evaluation past the size limit did not fail");
    cr_assert_eq(file_size(csv), before, "half an evaluation was left in the results (%ld bytes added)",
                 file_size(csv) - before);
    unlink(csv), unlink(ckpt), rmdir(dir);
}
