/* The official Pathfinder release (Linsley et al. 2018), read unchanged:
 * DIR/pathfinder{32,64,128}/curv_{baseline,contour_length_9,contour_length_14}/
 * with imgs/<k>/sample_<i>.png and metadata/<k>.npy. Despite the suffix the
 * .npy files are plain text, one line per image: field 0 the image
 * directory, field 1 the file name, field 3 the label. There is no official
 * split: S4 splits the files 80/10/10 at random with seed 42, hence
 * split_seed=42 by default, independent of the sampling seed. Empty or
 * corrupt images (S4's blacklist: pathfinder32/curv_baseline/imgs/0/
 * sample_172.png is empty) are skipped, named on stderr and counted in
 * task_data.skipped, which the training rows carry (params "skipped="). */
#include "pathfinder.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define PF_METADATA_MAX ((size_t)1 << 28) /* a metadata file lists at most a few 100k lines */
#define PF_PNG_MAX ((size_t)1 << 24)

typedef struct {
    char *path;   /* image file */
    int32_t label;
} pf_entry;

typedef struct {
    pf_entry *e;
    int64_t n, cap;
} pf_index;

/* snprintf into a path buffer; a path that does not fit is an error. */
static int pf_path(char *out, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int pf_path(char *out, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(out, cap, fmt, ap);
    va_end(ap);
    if (k < 0 || (size_t)k >= cap)
        return attn_fail(ATTN_EINVAL, "pathfinder: expected a path of at most %zu bytes, found '%.64s...'", cap - 1,
                         out);
    return 0;
}

/* The release's directory of a difficulty, known by its contour length (6, 9, 14). */
static const char *pf_diff_dir(int32_t contour_len)
{
    return contour_len == 6 ? "curv_baseline" : contour_len == 9 ? "curv_contour_length_9" : "curv_contour_length_14";
}

static int pf_is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The difficulty directory: DIR/pathfinder<W>/<curv>, or DIR/<curv> when DIR
 * already is the resolution directory, or DIR itself when it holds metadata/. */
static int pf_find_root(const char *task, const char *dir, int32_t res, int32_t contour_len, char *root, size_t cap)
{
    const char *curv = pf_diff_dir(contour_len);
    char meta[4096];
    /* the release archive holds the trees under lra_release/lra_release/: --data may name any level */
    static const char *const release[3] = {"", "/lra_release", "/lra_release/lra_release"};
    int rc = 0;
    for (int k = 0; k < 3; k++)
        if ((rc = pf_path(root, cap, "%s%s/pathfinder%d/%s", dir, release[k], res, curv)) || pf_is_dir(root))
            return rc;
    if ((rc = pf_path(root, cap, "%s/%s", dir, curv)) || pf_is_dir(root))
        return rc;
    if ((rc = pf_path(meta, sizeof meta, "%s/metadata", dir)) || (rc = pf_path(root, cap, "%s", dir)))
        return rc;
    if (pf_is_dir(meta) && strstr(dir, curv))
        return 0;
    return attn_fail(ATTN_EIO,
                     "task %s: expected %s/pathfinder%d/%s/{imgs,metadata} (the LRA release layout), found no "
                     "such directory",
                     task, dir, res, curv);
}

static int pf_index_add(pf_index *ix, const char *path, int32_t label)
{
    if (ix->n == ix->cap) {
        ix->cap = ix->cap ? 2 * ix->cap : 1024;
        pf_entry *t = realloc(ix->e, (size_t)ix->cap * sizeof *t);
        if (!t)
            return attn_fail(ATTN_ENOMEM, "pathfinder: cannot index %lld images", (long long)ix->cap);
        ix->e = t;
    }
    if (!(ix->e[ix->n].path = strdup(path)))
        return attn_fail(ATTN_ENOMEM, "pathfinder: cannot index %s", path);
    ix->e[ix->n++].label = label;
    return 0;
}

static void pf_index_free(pf_index *ix)
{
    for (int64_t i = 0; i < ix->n; i++)
        free(ix->e[i].path);
    free(ix->e);
    memset(ix, 0, sizeof *ix);
}

/* One metadata file: "imgs/<k> sample_<i>.png <x> <label> ..." per line. */
static int pf_read_metadata(const char *root, const char *file, pf_index *ix)
{
    char path[4096], img[8192];
    uint8_t *buf;
    size_t len;
    int rc = pf_path(path, sizeof path, "%s/metadata/%s", root, file);
    if (!rc)
        rc = lra_read_file(path, PF_METADATA_MAX, &buf, &len);
    if (rc)
        return rc;
    char *text = realloc(buf, len + 1), *save = NULL;
    if (!text) {
        free(buf);
        return attn_fail(ATTN_ENOMEM, "%s: cannot allocate %zu bytes", path, len + 1);
    }
    text[len] = '\0';
    int line = 0;
    for (char *l = strtok_r(text, "\n", &save); l && !rc; l = strtok_r(NULL, "\n", &save)) {
        line++;
        char *f[4], *fs = NULL;
        int nf = 0;
        for (char *t = strtok_r(l, " \t\r", &fs); t && nf < 4; t = strtok_r(NULL, " \t\r", &fs))
            f[nf++] = t;
        if (nf == 0)
            continue;
        if (nf < 4)
            rc = attn_fail(ATTN_EINVAL,
                           "%s:%d: expected at least 4 space-separated fields (dir file _ label), found %d",
                           path, line, nf);
        else if (strcmp(f[3], "0") != 0 && strcmp(f[3], "1") != 0)
            rc = attn_fail(ATTN_EINVAL, "%s:%d: expected label 0 or 1 in field 3, found '%s'", path, line, f[3]);
        else if (!(rc = pf_path(img, sizeof img, "%s/%s/%s", root, f[0], f[1])))
            rc = pf_index_add(ix, img, f[3][0] - '0');
    }
    free(text);
    return rc;
}

static int pf_cmp_num(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;
    return (x > y) - (x < y);
}

/* All metadata/<k>.npy in numeric order of k. */
static int pf_read_index(const char *root, pf_index *ix)
{
    char path[4096], name[64];
    int rc = pf_path(path, sizeof path, "%s/metadata", root);
    if (rc)
        return rc;
    DIR *d = opendir(path);
    if (!d)
        return attn_fail(ATTN_EIO, "%s: expected the metadata directory of the release, found %s", path,
                         strerror(errno));
    long *k = NULL;
    size_t nk = 0, cap = 0;
    for (struct dirent *de; (de = readdir(d)) != NULL && !rc;) {
        char *end;
        long v = strtol(de->d_name, &end, 10);
        if (end == de->d_name || strcmp(end, ".npy") != 0 || v < 0)
            continue;
        if (nk == cap) {
            long *t = realloc(k, (cap = cap ? 2 * cap : 64) * sizeof *t);
            if (!t)
                rc = attn_fail(ATTN_ENOMEM, "%s: cannot list the metadata files", path);
            else
                k = t;
        }
        if (!rc)
            k[nk++] = v;
    }
    closedir(d);
    if (!rc && nk == 0)
        rc = attn_fail(ATTN_EIO, "%s: expected metadata files <k>.npy, found none", path);
    if (!rc)
        qsort(k, nk, sizeof *k, pf_cmp_num);
    for (size_t i = 0; i < nk && !rc; i++) {
        snprintf(name, sizeof name, "%ld.npy", k[i]);
        rc = pf_read_metadata(root, name, ix);
    }
    free(k);
    if (!rc && ix->n == 0)
        rc = attn_fail(ATTN_EIO, "%s: expected image lines in the metadata files, found none", path);
    return rc;
}

/* Loads image e into tok [1 + W*W]; 1 = skipped (empty or corrupt), 0 = ok, <0 error. */
static int pf_load_image(const char *task, const pf_entry *e, int32_t W, int32_t *tok)
{
    uint8_t *buf, *pix;
    size_t len;
    int32_t w, h;
    int rc = lra_read_file(e->path, PF_PNG_MAX, &buf, &len);
    if (rc)
        return rc;
    rc = png_gray_decode(buf, len, e->path, &pix, &w, &h);
    free(buf);
    if (rc == ATTN_EINVAL) { /* empty, truncated or corrupt: S4 skips these, and the user must know which */
        fprintf(stderr, "note: task %s: skipped %s\n", task, attn_last_error());
        return 1;
    }
    if (rc)
        return rc;
    if (w != W || h != W)
        rc = attn_fail(ATTN_EINVAL, "task %s: %s: expected a %dx%d image, found %dx%d", task, e->path, W, W, w, h);
    tok[0] = PF_CLS;
    for (int64_t p = 0; p < (int64_t)W * W && !rc; p++)
        tok[1 + p] = pix[p];
    free(pix);
    return rc;
}

static const char *pf_split_name(task_split split)
{
    return split == TASK_TRAIN ? "train" : split == TASK_VALID ? "valid" : "test";
}

/* out: tokens [n][1 + W*W] (CLS, pixels), labels [n]: the first n readable
 * images of the split in the sampling seed's order. */
int pf_official_make(const char *task, const pf_config *c, const char *diff, const param_bag *params,
                     task_split split, uint64_t seed, int64_t n, const char *data_dir, task_data *out)
{
    char root[4096];
    int rc = 0;
    uint64_t split_seed = (uint64_t)task_param_int_in(params, "split_seed", 42, 0, INT64_MAX, &rc);
    pf_index ix = {0};
    int64_t *perm = NULL, *order = NULL, got = 0, skipped = 0;
    char last_skip[512] = ""; /* why the last skipped image was skipped, for a shortfall's error */
    if (!rc)
        rc = pf_find_root(task, data_dir, c->res, c->contour_len, root, sizeof root);
    if (!rc)
        rc = pf_read_index(root, &ix);
    if (!rc && ix.n < 3)
        rc = attn_fail(ATTN_EINVAL, "task %s: %s: expected at least 3 images to split 80/10/10, found %lld", task,
                       root, (long long)ix.n);
    /* 80/10/10 of a shuffle by split_seed (S4: seed 42); valid and test keep
     * at least one image each on tiny trees */
    int64_t m = ix.n, n_valid = m / 10 > 0 ? m / 10 : 1, n_train = m - 2 * n_valid;
    int64_t lo = split == TASK_TRAIN ? 0 : split == TASK_VALID ? n_train : n_train + n_valid;
    int64_t count = split == TASK_TRAIN ? n_train : n_valid;
    if (!rc)
        rc = lra_pick(split_seed, 320, m, m, &perm);
    if (!rc)
        rc = lra_pick(seed, 330 + (uint64_t)split, count, count, &order);
    if (!rc)
        rc = task_data_alloc(out, task, TASK_CLASSIFY, n, 1 + (int64_t)c->res * c->res);
    for (int64_t j = 0; j < count && got < n && !rc; j++) {
        const pf_entry *e = &ix.e[perm[lo + order[j]]];
        int s = pf_load_image(task, e, c->res, task_tokens(out, got));
        if (s < 0)
            rc = s;
        else if (s == 1)
            skipped++, snprintf(last_skip, sizeof last_skip, "%s", attn_last_error());
        else
            out->labels[got++] = e->label;
    }
    if (!rc && got < n)
        rc = attn_fail(ATTN_EINVAL,
                       "task %s: %s: expected n=%lld readable images in the %s split, found %lld (of %lld files, "
                       "%lld skipped as empty or corrupt%s%s)",
                       task, root, (long long)n, pf_split_name(split), (long long)got, (long long)count,
                       (long long)skipped, skipped ? ", the last: " : "", last_skip);
    if (!rc) {
        out->vocab = PF_VOCAB, out->n_classes = 2, out->skipped = skipped;
        snprintf(out->data_source, sizeof out->data_source, "official");
        snprintf(out->meta, sizeof out->meta, "max_len=%lld;res=%d;difficulty=%s;split_seed=%llu;skipped=%lld",
                 (long long)out->len, c->res, diff, (unsigned long long)split_seed, (long long)skipped);
    } else {
        task_data_free(out);
    }
    free(order);
    free(perm);
    pf_index_free(&ix);
    return rc;
}
