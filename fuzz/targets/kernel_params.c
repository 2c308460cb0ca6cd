/* Kernel parameters as a config or --param gives them, "kernel:key=value,...":
 * the bag, the kernel's table (opt_bag_validate, what bench and configs check
 * before any job), the recorded text, then the kernel set up and run once on
 * a small problem with those parameters. */
#include "fuzz/fuzz_io.h"
#include "fuzz/fuzz_targets.h"
#include "harness/measure/problem.h"
#include "kernels/core/registry.h"

#include <stdlib.h>
#include <string.h>

/* A shape every kernel takes: one query for decode-only kernels, the causal
 * mask where the kernel has it (recurrent kernels have nothing else). */
static attn_args small_problem(const attn_kernel *k, const param_bag *bag)
{
    attn_args a = {.B = 1, .H = 2, .H_kv = 2, .Nq = 32, .Nk = 32, .D = 16, .threads = 1, .params = *bag};
    if (k->flags & (ATTN_ONE_QUERY | ATTN_DECODE))
        a.Nq = 1;
    a.mask.kind = k->masks & ATTN_MASK_BIT(ATTN_MASK_CAUSAL) ? ATTN_MASK_CAUSAL : ATTN_MASK_FULL;
    a.mask.causal = a.mask.kind == ATTN_MASK_CAUSAL;
    return a;
}

static int run_once(const attn_kernel *k, const param_bag *bag)
{
    attn_args a = small_problem(k, bag);
    attn_ctx ctx;
    attn_clear_error();
    int rc = attn_ctx_create(k, &a, &ctx);
    fuzz_check_error(rc, "kernel_params: attn_ctx_create");
    if (rc)
        return rc;
    (void)k->flops(&ctx.args, ATTN_PASS_FWD);
    (void)k->bytes(&ctx.args, ATTN_PASS_FWD);
    if (k->state_bytes)
        (void)k->state_bytes(&ctx.args);
    problem p;
    if (problem_make(&p, k, &ctx.args, 1, 0) == 0) {
        attn_io io = problem_io(&p);
        attn_clear_error();
        rc = k->forward(&ctx, &io);
        fuzz_check_error(rc, "kernel_params: forward");
        problem_free(&p);
    }
    attn_ctx_destroy(&ctx);
    return rc;
}

int fuzz_kernel_params(const uint8_t *data, size_t n)
{
    char *text = fuzz_text(data, n);
    if (!text)
        return 0;
    const char *name;
    param_bag bag;
    int rc = fuzz_name_and_params(text, &name, &bag, "kernel_params: param_bag_add");
    attn_clear_error();
    const attn_kernel *k = rc ? NULL : attn_find_kernel(name);
    if (!rc && !k)
        fuzz_check_error(rc = ATTN_EINVAL, "kernel_params: attn_find_kernel");
    if (!rc) {
        attn_clear_error();
        rc = opt_bag_validate(k->params, &bag, k->name);
        fuzz_check_error(rc, "kernel_params: opt_bag_validate");
    }
    if (!rc) {
        char recorded[1024];
        attn_params_recorded_text(k, &bag, ";", recorded, sizeof recorded);
        rc = run_once(k, &bag);
    }
    free(text);
    return rc;
}
