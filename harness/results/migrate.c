/* attnbench migrate: a V1 results file rewritten with the current header (migrate.h). */
#include "migrate.h"

#include "common/attn_error.h"
#include "csvw.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Rows are written in batches: one write and one sync per batch, not per row. */
#define BATCH 64

typedef struct {
    csvw out;
    csvw_row *rows;
    int n;
    long total;
} copier;

static int flush(copier *c)
{
    int rc = c->n ? csvw_write_rows(&c->out, c->rows, c->n) : 0;
    c->total += rc ? 0 : c->n;
    c->n = 0;
    return rc;
}

static int copy_row(const csvw_row *row, void *ud)
{
    copier *c = ud;
    c->rows[c->n++] = *row;
    return c->n == BATCH ? flush(c) : 0;
}

/* The rename is durable once the directory holding both names is synced. */
static void sync_dir_of(const char *path)
{
    char dir[1100];
    snprintf(dir, sizeof dir, "%s", path);
    int fd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

static int write_copy(const char *path, const char *tmp, long *rows)
{
    copier c = {.rows = malloc(BATCH * sizeof *c.rows)};
    if (!c.rows)
        return attn_fail(ATTN_ENOMEM, "%s: no memory for %d rows", path, BATCH);
    remove(tmp); /* a copy left by an earlier migrate that died: start over */
    int rc = csvw_open(&c.out, tmp);
    if (!rc) {
        rc = csvw_read_rows_before_repair(path, copy_row, &c);
        rc = rc < 0 ? rc : flush(&c);
        int closed = csvw_close(&c.out);
        rc = rc ? rc : closed;
    }
    free(c.rows);
    *rows = c.total;
    return rc;
}

int results_migrate(const char *path, results_migrate_stats *st)
{
    memset(st, 0, sizeof *st);
    if (access(path, F_OK) != 0)
        return attn_fail(ATTN_EIO, "%s: cannot open for reading: %s", path, strerror(errno));
    int rc = csvw_file_header(path, &st->from);
    if (rc || st->from == SCHEMA_HEADER_CURRENT)
        return rc;
    char tmp[1100];
    if (snprintf(tmp, sizeof tmp, "%s.migrate.%ld", path, (long)getpid()) >= (int)sizeof tmp)
        return attn_fail(ATTN_EINVAL, "%s: expected a shorter path", path);
    if ((rc = write_copy(path, tmp, &st->rows)) != 0) {
        remove(tmp);
        return rc;
    }
    if (rename(tmp, path) != 0) {
        int e = errno;
        remove(tmp);
        return attn_fail(ATTN_EIO, "%s: cannot replace it with the migrated copy: %s", path, strerror(e));
    }
    sync_dir_of(path);
    return 0;
}

static int csv_name(const struct dirent *e)
{
    size_t n = strlen(e->d_name);
    return n > 4 && !strcmp(e->d_name + n - 4, ".csv");
}

int results_migrate_dir(const char *dir, char *names, size_t len, int *files)
{
    struct dirent **list;
    int n = scandir(dir, &list, csv_name, alphasort), rc = 0;
    *files = 0;
    names[0] = '\0';
    if (n < 0)
        return attn_fail(ATTN_EIO, "%s: cannot list the directory: %s", dir, strerror(errno));
    for (int i = 0; i < n; i++) {
        char path[1100];
        schema_header h;
        results_migrate_stats st;
        snprintf(path, sizeof path, "%s/%s", dir, list[i]->d_name);
        if (!rc && !(rc = csvw_file_header(path, &h)) && h != SCHEMA_HEADER_CURRENT &&
            !(rc = results_migrate(path, &st))) {
            size_t used = strlen(names);
            snprintf(names + used, len - used, "%s%s (%ld rows)", *files ? ", " : "", list[i]->d_name, st.rows);
            ++*files;
        }
        free(list[i]);
    }
    free(list);
    return rc;
}
