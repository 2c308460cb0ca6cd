#include "nonfinite.h"

#include <math.h>
#include <stdio.h>

int nonfinite_tensor(const attn_tensor *t, const char *what, char *why, size_t n)
{
    for (int64_t b = 0; t->data && b < t->B; b++)
        for (int64_t h = 0; h < t->H; h++)
            for (int64_t r = 0; r < t->N; r++) {
                const float *row = attn_at(t, b, h, r);
                for (int64_t d = 0; d < t->D; d++)
                    if (!isfinite(row[d])) {
                        snprintf(why, n, "nonfinite: %s holds %g at b=%ld h=%ld n=%ld d=%ld", what, (double)row[d],
                                 (long)b, (long)h, (long)r, (long)d);
                        return 1;
                    }
            }
    return 0;
}

/* The first of count named tensors that holds a non-finite element. */
static int first_nonfinite(const attn_tensor *const *t, const char *const *what, int count, char *why, size_t n)
{
    for (int i = 0; i < count; i++)
        if (nonfinite_tensor(t[i], what[i], why, n))
            return 1;
    return 0;
}

int nonfinite_inputs(const attn_io *io, char *why, size_t n)
{
    const attn_tensor *t[] = {&io->q, &io->k, &io->v, &io->beta, &io->gate, &io->router, &io->w};
    static const char *const what[] = {"input Q",    "input K",      "input V",        "input beta",
                                       "input gate", "input router", "input weights"};
    return first_nonfinite(t, what, 7, why, n);
}

int nonfinite_outputs(const attn_io *io, const attn_args *a, char *why, size_t n)
{
    if (nonfinite_tensor(&io->o, "output O", why, n))
        return 1;
    int64_t rows = a->B * a->H * a->Nq;
    for (int64_t i = 0; io->lse && i < rows; i++)
        if (isnan(io->lse[i]) || io->lse[i] == INFINITY) {
            snprintf(why, n, "nonfinite: output lse holds %g at b=%ld h=%ld n=%ld", (double)io->lse[i],
                     (long)(i / (a->H * a->Nq)), (long)(i / a->Nq % a->H), (long)(i % a->Nq));
            return 1;
        }
    return 0;
}

int nonfinite_grads(const attn_grads *g, char *why, size_t n)
{
    const attn_tensor *t[] = {&g->dq, &g->dk, &g->dv, &g->dbeta, &g->dgate, &g->drouter, &g->dw};
    static const char *const what[] = {"gradient dQ",    "gradient dK",      "gradient dV", "gradient dbeta",
                                       "gradient dgate", "gradient drouter", "gradient dw"};
    return first_nonfinite(t, what, 7, why, n);
}
