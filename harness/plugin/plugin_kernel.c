/* A plugin kernel seen as an attn_kernel: the harness's problem and tensors
 * handed over in the plugin header's plain types (plugin.h). */
#include "plugin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The adapter: the attn_kernel first, so ctx->kernel leads back to it. */
typedef struct {
    attn_kernel k;
    const attnbench_plugin_kernel *p;
    char notes[512];
} plugin_kernel;

static const plugin_kernel *of(const attn_ctx *ctx) { return (const plugin_kernel *)ctx->kernel; }

static const opt_def no_params[] = {{0}};

static attnbench_problem problem_of(const attn_args *a)
{
    return (attnbench_problem){.B = a->B, .H = a->H, .H_kv = a->H_kv, .Nq = a->Nq, .Nk = a->Nk, .D = a->D,
                               .Dv = attn_dv(a), .scale = attn_scale(a), .causal = a->mask.kind == ATTN_MASK_CAUSAL,
                               .q_off = a->q_off, .k_off = a->k_off, .threads = a->threads};
}

static attnbench_tensor tensor_of(const attn_tensor *t)
{
    return (attnbench_tensor){.data = t->data, .B = t->B, .H = t->H, .N = t->N, .D = t->D,
                              .sb = t->sb, .sh = t->sh, .sn = t->sn};
}

static attnbench_io io_of(const attn_io *io)
{
    return (attnbench_io){.q = tensor_of(&io->q), .k = tensor_of(&io->k), .v = tensor_of(&io->v),
                          .o = tensor_of(&io->o), .lse = io->lse};
}

static int plugin_init(attn_ctx *ctx, const attn_args *a)
{
    const plugin_kernel *pk = of(ctx);
    int rc = attn_params_check(a, pk->k.name, no_params);
    if (rc)
        return rc;
    attnbench_problem pr = problem_of(a);
    ctx->workspace_bytes = pk->p->workspace_bytes ? pk->p->workspace_bytes(&pr) : 0;
    return 0;
}

/* A plugin's failure, with its own words. */
static int failed(const plugin_kernel *pk, const char *what, const char *err)
{
    return attn_fail(ATTN_EINVAL, "plugin kernel '%s' %s: %s", pk->k.name, what, err[0] ? err : "failed (no reason given)");
}

static int plugin_forward(attn_ctx *ctx, const attn_io *io)
{
    const plugin_kernel *pk = of(ctx);
    attnbench_problem pr = problem_of(&ctx->args);
    attnbench_io x = io_of(io);
    char err[256] = "";
    return pk->p->forward(&pr, &x, ctx->workspace, err, sizeof err) ? failed(pk, "forward", err) : 0;
}

static int plugin_backward(attn_ctx *ctx, const attn_io *io, const attn_grads *g)
{
    const plugin_kernel *pk = of(ctx);
    attnbench_problem pr = problem_of(&ctx->args);
    attnbench_io x = io_of(io);
    attnbench_grads gx = {.d_o = tensor_of(&g->d_o), .dq = tensor_of(&g->dq), .dk = tensor_of(&g->dk),
                          .dv = tensor_of(&g->dv)};
    char err[256] = "";
    return pk->p->backward(&pr, &x, &gx, ctx->workspace, err, sizeof err) ? failed(pk, "backward", err) : 0;
}

static const unsigned allowed = ATTNBENCH_EXACT | ATTNBENCH_APPROX | ATTNBENCH_CAUSAL | ATTNBENCH_GQA |
                                ATTNBENCH_CROSS | ATTNBENCH_DETERMINISTIC;

static int well_formed(const attnbench_plugin_kernel *p, const char *path)
{
    if (!p->name || !p->name[0] || strlen(p->name) > 48 || strspn(p->name, "abcdefghijklmnopqrstuvwxyz0123456789_") !=
                                                                strlen(p->name))
        return attn_fail(ATTN_EINVAL, "%s: a kernel name is missing or not [a-z0-9_]{1,48} ('%s')", path,
                         p->name ? p->name : "(null)");
    if (!p->forward)
        return attn_fail(ATTN_EINVAL, "%s: kernel '%s' has no forward", path, p->name);
    if (p->flags & ~allowed)
        return attn_fail(ATTN_EINVAL, "%s: kernel '%s' has flags 0x%x this ABI does not define", path, p->name,
                         p->flags & ~allowed);
    if (!(p->flags & ATTNBENCH_EXACT) == !(p->flags & ATTNBENCH_APPROX))
        return attn_fail(ATTN_EINVAL, "%s: kernel '%s' must be either EXACT or APPROX", path, p->name);
    return 0;
}

void plugin_kernel_free(const attn_kernel *k) { free((plugin_kernel *)k); }

const attn_kernel *plugin_kernel_adapt(const attnbench_plugin_kernel *p, const char *path)
{
    if (well_formed(p, path))
        return NULL;
    plugin_kernel *pk = calloc(1, sizeof *pk);
    if (!pk) {
        attn_fail(ATTN_ENOMEM, "%s: out of memory", path);
        return NULL;
    }
    pk->p = p;
    snprintf(pk->notes, sizeof pk->notes, "plugin %s%s%s", path, p->notes ? "; " : "", p->notes ? p->notes : "");
    attn_kernel *k = &pk->k;
    k->name = p->name, k->family = p->family ? p->family : "plugin", k->reference = p->reference ? p->reference : "";
    k->flags = p->flags | (p->backward ? ATTN_TRAINABLE : 0);
    k->masks = ATTN_MASK_BIT(ATTN_MASK_FULL) | (p->flags & ATTNBENCH_CAUSAL ? ATTN_MASK_BIT(ATTN_MASK_CAUSAL) : 0);
    k->params = no_params, k->notes = pk->notes;
    k->init = plugin_init, k->forward = plugin_forward, k->backward = p->backward ? plugin_backward : NULL;
    k->flops = attn_softmax_flops, k->bytes = attn_softmax_bytes;
    return k;
}
