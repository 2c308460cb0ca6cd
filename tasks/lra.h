/* Long Range Arena tasks (Tay et al. 2021; docs/tasks.md): official-format loaders, generators
 * and offline stand-ins, each labelled with its provenance. */
#ifndef ATTN_LRA_H
#define ATTN_LRA_H

#include "task.h"

#include <stddef.h>

extern const task_def task_lra_image;
extern const task_def task_listops;

/* Token ids of the image task: pixel intensities 0..255, then CLS. */
#define LRA_IMAGE_CLS 256
#define LRA_IMAGE_VOCAB 257

/* The data root: $ATTN_DATA_DIR, else "data" (relative to the working directory). */
const char *lra_data_root(void);

/* Reads a whole file (at most max_bytes) into a malloc'ed buffer; errors name the file. */
int lra_read_file(const char *path, size_t max_bytes, unsigned char **buf, size_t *len);

/* Indices 0..total-1 in a seeded order (the first n of a shuffle), so a subset
 * of a split is the same whatever else is drawn. */
int lra_pick(uint64_t seed, uint64_t tag, int64_t total, int64_t n, int64_t **idx);

#endif
