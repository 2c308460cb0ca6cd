/* What else the machine was doing while a row was timed: the 1-minute load
 * average (/proc/loadavg) and the runnable tasks that are not this process's
 * (/proc/stat procs_running minus this process's threads in state R). A row
 * timed beside other runnable work, or whose probes moved, is marked noisy in
 * the noise column (docs/measurement.md). */
#ifndef ATTN_SYSLOAD_H
#define ATTN_SYSLOAD_H

#include <stddef.h>

typedef struct {
    int ok;                /* both files were read */
    double load_1m;
    int runnable_others;   /* procs_running less this process's running threads, >= 0 */
} sysload_sample;

/* One reading now; ok 0 when /proc cannot be read (the cells then say NA). */
void sysload_read(sysload_sample *s);

/* Where loadavg and stat are read: "/proc" by default. Tests point it at a
 * directory of fake files (NULL restores /proc) so load can be "injected"
 * without burning CPU. */
void sysload_set_proc_dir(const char *dir);

/* How many processes of the run share this host (the host_ranks cell of its
 * timed rows): 1 unless set, as for one process (bench, sweep, train, a
 * --shard run); the MPI ranks on the host under mpirun. Process-wide, like
 * the /proc directory above: a process never changes hosts. */
void sysload_set_host_ranks(int n);
int sysload_host_ranks(void);

/* The probes of a row moved by more than this fraction (max / min - 1). */
#define SYSLOAD_PROBE_MOVED 0.15

/* The noise verdict of a timed row, as its cell: "no", or "yes:<why>" naming
 * the other runnable work and/or how far the probes moved (`probe_moved`,
 * max/min - 1; 0 when the row was not re-probed). */
void sysload_noise_cell(const sysload_sample *s, double probe_moved, char *buf, size_t n);

#endif
