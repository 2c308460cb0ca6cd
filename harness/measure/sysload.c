/* /proc readings for the noise columns (sysload.h). */
#include "sysload.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>

static char proc_dir[512] = "/proc";

void sysload_set_proc_dir(const char *dir) { snprintf(proc_dir, sizeof proc_dir, "%s", dir ? dir : "/proc"); }

static int host_ranks = 1;

void sysload_set_host_ranks(int n) { host_ranks = n > 0 ? n : 1; }

int sysload_host_ranks(void) { return host_ranks; }

static FILE *open_proc(const char *name)
{
    char path[600];
    snprintf(path, sizeof path, "%s/%s", proc_dir, name);
    return fopen(path, "r");
}

static int read_load(double *load_1m)
{
    FILE *f = open_proc("loadavg");
    int ok = f && fscanf(f, "%lf", load_1m) == 1;
    if (f)
        fclose(f);
    return ok;
}

static int read_procs_running(int *n)
{
    FILE *f = open_proc("stat");
    char line[4096];
    int ok = 0;
    while (f && !ok && fgets(line, sizeof line, f))
        ok = sscanf(line, "procs_running %d", n) == 1;
    if (f)
        fclose(f);
    return ok;
}

/* This process's threads in state R (running or runnable): OpenMP workers
 * spinning between calls are ours, not other work. Always the real /proc. */
static int own_running(void)
{
    DIR *d = opendir("/proc/self/task");
    if (!d)
        return 1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[300], buf[512];
        snprintf(path, sizeof path, "/proc/self/task/%s/stat", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        size_t len = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[len] = '\0';
        const char *paren = strrchr(buf, ')'); /* the name may hold spaces and parentheses */
        n += paren && paren[1] == ' ' && paren[2] == 'R';
    }
    closedir(d);
    return n ? n : 1; /* the reader itself runs */
}

void sysload_read(sysload_sample *s)
{
    memset(s, 0, sizeof *s);
    int running = 0;
    s->ok = read_load(&s->load_1m) && read_procs_running(&running);
    if (s->ok) {
        int others = running - own_running();
        s->runnable_others = others > 0 ? others : 0;
    }
}

void sysload_noise_cell(const sysload_sample *s, double probe_moved, char *buf, size_t n)
{
    int busy = s->ok && s->runnable_others > 0, moved = probe_moved > SYSLOAD_PROBE_MOVED;
    if (!busy && !moved) {
        snprintf(buf, n, "no");
        return;
    }
    snprintf(buf, n, "yes:");
    if (busy)
        snprintf(buf + strlen(buf), n - strlen(buf), "%d other runnable", s->runnable_others);
    if (moved)
        snprintf(buf + strlen(buf), n - strlen(buf), "%sprobes moved %.0f%%", busy ? ";" : "",
                 100 * probe_moved);
}
