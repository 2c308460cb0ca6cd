/* Where a training step's time goes (the training benchmark): wall time and
 * FLOPs of the dense layers' GEMMs (the MLP's one region with its GELU
 * inside: models/mlp.c) and of the attention kernels, accumulated while
 * enabled. Calls come from the main thread, outside OpenMP regions. */
#ifndef NN_PROFILE_H
#define NN_PROFILE_H

typedef enum { NN_PROF_GEMM = 0, NN_PROF_ATTN, NN_PROF__COUNT } nn_prof_kind;

void nn_prof_enable(int on);
void nn_prof_reset(void);
int nn_prof_enabled(void);
double nn_prof_now(void);
void nn_prof_add(nn_prof_kind k, double seconds, double flops);
double nn_prof_seconds(nn_prof_kind k);
double nn_prof_flops(nn_prof_kind k);

#endif
