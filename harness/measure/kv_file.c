#include "kv_file.h"

#include "common/atomic_file.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KV_FORMAT "attnbench-kv"

static int64_t layer_floats(int64_t H, int64_t H_kv, int64_t N, int64_t D) { return (H + 2 * H_kv) * N * D; }

/* Rows of one head of t, packed: [N][D]. */
static int write_heads(FILE *f, const attn_tensor *t, int64_t b)
{
    for (int64_t h = 0; h < t->H; h++)
        for (int64_t n = 0; n < t->N; n++)
            if (fwrite(attn_at(t, b, h, n), sizeof(float), (size_t)t->D, f) != (size_t)t->D)
                return -1;
    return 0;
}

static char *header_json(int64_t layers, const attn_tensor *q, const attn_tensor *k, const char *source)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "format", KV_FORMAT);
    cJSON_AddNumberToObject(o, "version", 1);
    cJSON_AddNumberToObject(o, "layers", (double)layers);
    cJSON_AddNumberToObject(o, "H", (double)q->H);
    cJSON_AddNumberToObject(o, "H_kv", (double)k->H);
    cJSON_AddNumberToObject(o, "N", (double)q->N);
    cJSON_AddNumberToObject(o, "D", (double)q->D);
    cJSON_AddStringToObject(o, "source", source);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

int kv_file_write(const char *path, int64_t layers, int64_t b, const char *source, kv_layer_fn get, void *ud)
{
    /* written aside and renamed: a sweep takes an existing kv file for a
     * finished dump, so a crash must never leave a prefix under the name */
    atomic_file out;
    int rc = atomic_file_open(&out, path, "wb");
    if (rc)
        return rc;
    FILE *f = out.f;
    for (int64_t l = 0; !rc && l < layers; l++) {
        attn_tensor q, k, v;
        if ((rc = get(ud, l, &q, &k, &v)) != 0)
            break;
        if (l == 0) {
            char *h = header_json(layers, &q, &k, source);
            if (!h || fprintf(f, "%s\n", h) < 0)
                rc = attn_fail(ATTN_EIO, "%s: cannot write the header", path);
            cJSON_free(h);
        }
        if (!rc && (write_heads(f, &q, b) || write_heads(f, &k, b) || write_heads(f, &v, b)))
            rc = attn_fail(ATTN_EIO, "%s: short write in layer %lld", path, (long long)l);
    }
    if (rc) {
        atomic_file_abort(&out);
        return rc;
    }
    return atomic_file_commit(&out, 0);
}

/* A positive integer field of the header. */
static int header_int(const char *path, const cJSON *o, const char *key, int64_t *v)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(x) || x->valuedouble < 1 || x->valuedouble != (double)(int64_t)x->valuedouble)
        return attn_fail(ATTN_EINVAL, "%s: header field %s: expected a positive integer", path, key);
    *v = (int64_t)x->valuedouble;
    return 0;
}

static int parse_header(const char *path, const char *line, kv_file *f)
{
    cJSON *o = cJSON_Parse(line);
    const cJSON *fmt = o ? cJSON_GetObjectItemCaseSensitive(o, "format") : NULL;
    const cJSON *ver = o ? cJSON_GetObjectItemCaseSensitive(o, "version") : NULL;
    const cJSON *src = o ? cJSON_GetObjectItemCaseSensitive(o, "source") : NULL;
    int rc = 0;
    if (!o || !cJSON_IsString(fmt) || strcmp(fmt->valuestring, KV_FORMAT))
        rc = attn_fail(ATTN_EINVAL, "%s:1: expected a JSON header with format \"%s\"", path, KV_FORMAT);
    else if (!cJSON_IsNumber(ver) || ver->valuedouble != 1)
        rc = attn_fail(ATTN_EINVAL, "%s: header field version: expected 1", path);
    else if (!(rc = header_int(path, o, "layers", &f->layers)) && !(rc = header_int(path, o, "H", &f->H)) &&
             !(rc = header_int(path, o, "H_kv", &f->H_kv)) && !(rc = header_int(path, o, "N", &f->N)))
        rc = header_int(path, o, "D", &f->D);
    if (!rc)
        snprintf(f->source, sizeof f->source, "%s", cJSON_IsString(src) ? src->valuestring : "");
    cJSON_Delete(o);
    return rc;
}

int kv_file_load(const char *path, kv_file *f)
{
    memset(f, 0, sizeof *f);
    FILE *in = fopen(path, "rb");
    if (!in)
        return attn_fail(ATTN_EIO, "%s: cannot open the kv file", path);
    char line[2048];
    int rc = fgets(line, sizeof line, in) ? parse_header(path, line, f)
                                          : attn_fail(ATTN_EINVAL, "%s:1: expected a JSON header line", path);
    int64_t n = rc ? 0 : f->layers * layer_floats(f->H, f->H_kv, f->N, f->D);
    if (!rc && !(f->data = malloc(sizeof(float) * (size_t)n)))
        rc = attn_fail(ATTN_ENOMEM, "%s: no memory for %lld floats", path, (long long)n);
    if (!rc && fread(f->data, sizeof(float), (size_t)n, in) != (size_t)n)
        rc = attn_fail(ATTN_EINVAL, "%s: expected %lld bytes of tensors after the header, found fewer", path,
                       (long long)(n * (int64_t)sizeof(float)));
    if (!rc && fgetc(in) != EOF)
        rc = attn_fail(ATTN_EINVAL, "%s: expected %lld bytes of tensors after the header, found more", path,
                       (long long)(n * (int64_t)sizeof(float)));
    fclose(in);
    if (rc)
        kv_file_free(f);
    return rc;
}

void kv_file_free(kv_file *f)
{
    free(f->data);
    f->data = NULL;
}

void kv_file_layer(const kv_file *f, int64_t layer, attn_tensor *q, attn_tensor *k, attn_tensor *v)
{
    int64_t N = f->N, D = f->D;
    float *base = f->data + layer * layer_floats(f->H, f->H_kv, N, D);
    *q = (attn_tensor){base, 1, f->H, N, D, f->H * N * D, N * D, D};
    *k = (attn_tensor){base + f->H * N * D, 1, f->H_kv, N, D, f->H_kv * N * D, N * D, D};
    *v = (attn_tensor){base + (f->H + f->H_kv) * N * D, 1, f->H_kv, N, D, f->H_kv * N * D, N * D, D};
}

static void copy_row(const attn_tensor *from, int64_t h, int64_t n, float *to)
{
    memcpy(to, attn_at(from, 0, h, n), sizeof(float) * (size_t)from->D);
}

int kv_file_fill(const kv_file *f, int64_t layer, const attn_args *a, const attn_io *io)
{
    if (layer < 0 || layer >= f->layers)
        return attn_fail(ATTN_EINVAL, "kv file: layer %lld: expected 0 to %lld", (long long)layer,
                         (long long)f->layers - 1);
    if (a->D != f->D || attn_dv(a) != f->D)
        return attn_fail(ATTN_EINVAL, "kv file: D: the file's rows have %lld columns, the problem %lld", (long long)f->D,
                         (long long)a->D);
    if (a->Nk > f->N || a->q_off + a->Nq > f->N)
        return attn_fail(ATTN_EINVAL, "kv file: N_kv: the file holds %lld positions, the problem needs %lld",
                         (long long)f->N, (long long)(a->Nk > a->q_off + a->Nq ? a->Nk : a->q_off + a->Nq));
    attn_tensor q, k, v;
    kv_file_layer(f, layer, &q, &k, &v);
    for (int64_t b = 0; b < a->B; b++) {
        for (int64_t h = 0; h < a->H; h++)
            for (int64_t i = 0; i < a->Nq; i++)
                copy_row(&q, h % f->H, a->q_off + i, attn_at(&io->q, b, h, i));
        for (int64_t g = 0; g < a->H_kv; g++)
            for (int64_t j = 0; j < a->Nk; j++) {
                copy_row(&k, g % f->H_kv, j, attn_at(&io->k, b, g, j));
                copy_row(&v, g % f->H_kv, j, attn_at(&io->v, b, g, j));
            }
    }
    return 0;
}
