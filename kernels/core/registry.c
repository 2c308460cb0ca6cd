/* The one table of kernels. Adding a kernel = one file + one line here + tests.
 * A kernel that is not finished is not listed. */
#include "registry.h"

#include "kernels/aaren/aaren.h"
#include "kernels/deltanet/deltanet.h"
#include "kernels/gam/gam.h"
#include "kernels/gla/gla.h"
#include "kernels/infini/infini.h"
#include "kernels.h"
#include "kernels/landmark/landmark.h"
#include "kernels/linear/linear.h"
#include "kernels/local_linear/local_linear.h"
#include "kernels/sigmoid/sigmoid.h"
#include "kernels/sse/sse.h"
#include "kernels/streaming/streaming.h"

#include <string.h>

static const attn_kernel *const table[] = {
    &attn_kernel_oracle,
    &attn_kernel_naive,
    &attn_kernel_blas,
    &attn_kernel_flash,
    &attn_kernel_decode,
    &attn_kernel_lean,
    &attn_kernel_linear,
    &attn_kernel_based,
    &attn_kernel_streaming,
    &attn_kernel_local_linear,
    &attn_kernel_deltanet,
    &attn_kernel_gated_deltanet,
    &attn_kernel_retnet,
    &attn_kernel_gla,
    &attn_kernel_lightning,
    &attn_kernel_sse,
    &attn_kernel_sigmoid,
    &attn_kernel_aaren,
    &attn_kernel_gam,
    &attn_kernel_landmark,
    &attn_kernel_infini,
    NULL,
};

const attn_kernel *const *attn_registry(void) { return table; }

int attn_registry_count(void) { return (int)(sizeof table / sizeof table[0]) - 1; }

const attn_kernel *attn_find_kernel(const char *name)
{
    char names[1024] = "";
    for (const attn_kernel *const *k = table; *k; k++) {
        if (strcmp((*k)->name, name) == 0)
            return *k;
        strncat(names, k == table ? "" : ", ", sizeof names - strlen(names) - 1);
        strncat(names, (*k)->name, sizeof names - strlen(names) - 1);
    }
    attn_fail(ATTN_EINVAL, "unknown kernel '%s': expected one of %s", name, names);
    return NULL;
}
