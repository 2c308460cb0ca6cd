/* Whole-file replacement that a crash cannot tear: the content goes to
 * "<path>.tmp", is synced, and is renamed over <path>, so a reader (or a
 * resumed run deciding from the file's existence whether its work is done)
 * sees the old file or the complete new one, never a prefix. A crash leaves
 * at most the .tmp file behind, which the next write of the same path
 * overwrites. */
#ifndef ATTN_ATOMIC_FILE_H
#define ATTN_ATOMIC_FILE_H

#include <stdio.h>

typedef struct {
    FILE *f;          /* write the content here */
    char path[4096];  /* the file being replaced */
    char tmp[4104];   /* path + ".tmp" */
} atomic_file;

/* Creates <path>.tmp for writing (mode: fopen's "w" or "wb"). */
int atomic_file_open(atomic_file *a, const char *path, const char *mode);

/* Flushes, syncs and closes the temporary file, then renames it over the
 * path. `err`: the errno of a write the caller saw fail (0: none), which
 * makes this an abort. On any failure the temporary file is removed, the
 * path is left as it was, and an ATTN_EIO message names the path. */
int atomic_file_commit(atomic_file *a, int err);

/* Closes and removes the temporary file: the path is left as it was. */
void atomic_file_abort(atomic_file *a);

#endif
