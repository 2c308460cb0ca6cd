/* Crash-safe whole-file writes (atomic_file.h). */
#include "atomic_file.h"

#include "attn_error.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

int atomic_file_open(atomic_file *a, const char *path, const char *mode)
{
    memset(a, 0, sizeof *a);
    if ((size_t)snprintf(a->path, sizeof a->path, "%s", path) >= sizeof a->path)
        return attn_fail(ATTN_EINVAL, "%.64s...: expected a path shorter than %zu bytes", path, sizeof a->path);
    snprintf(a->tmp, sizeof a->tmp, "%s.tmp", path);
    if (!(a->f = fopen(a->tmp, mode)))
        return attn_fail(ATTN_EIO, "%s: cannot create: %s", a->tmp, strerror(errno));
    return 0;
}

/* The rename is durable only once the directory entry is on disk. */
static void fsync_dir(const char *path)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == dir)
        slash[1] = '\0';
    else
        *slash = '\0';
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

int atomic_file_commit(atomic_file *a, int err)
{
    if (!a->f)
        return attn_fail(ATTN_EIO, "%s: not open for writing", a->path);
    errno = 0;
    if (!err && (fflush(a->f) != 0 || ferror(a->f) || fsync(fileno(a->f)) != 0))
        err = errno ? errno : EIO;
    if (fclose(a->f) != 0 && !err)
        err = errno;
    a->f = NULL;
    if (!err && rename(a->tmp, a->path) != 0)
        err = errno;
    if (err) {
        unlink(a->tmp);
        return attn_fail(ATTN_EIO, "%s: write failed (%s); the previous file, if any, is unchanged", a->path,
                         strerror(err));
    }
    fsync_dir(a->path);
    return 0;
}

void atomic_file_abort(atomic_file *a)
{
    if (a->f)
        fclose(a->f);
    a->f = NULL;
    if (a->tmp[0])
        unlink(a->tmp);
}
