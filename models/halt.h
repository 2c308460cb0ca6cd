/* Adaptive computation time (Graves 2016) for the looped model, as the
 * Universal Transformer (Dehghani et al.) applies it per position: after step
 * n (one pass of the layer stack) every position still running computes the
 * halting probability p^n = sigmoid(w.s^n + b) from its state s^n. It halts
 * at the first step N where p^1 + ... + p^N >= 1 - NN_ACT_EPS, or at the last
 * step (`loops`); its remainder is R = 1 - (p^1 + ... + p^(N-1)). The stack's
 * output is the halting-weighted mean y = sum_{n<N} p^n s^n + R s^N, and the
 * loss gains tau * mean over non-padded positions of the ponder N + R.
 *
 * A halted position keeps its state: later steps do not update it, but it
 * still serves as key and value to the positions still running (the stack is
 * computed on every position, the halted ones' results are discarded). The
 * forward stops early once every position has halted.
 *
 * Backward as Graves: N is a constant (its step is not differentiable), the
 * gradient flows through the weights p^n (n < N), through R (dR/dp^n = -1)
 * and through the states. */
#ifndef NN_HALT_H
#define NN_HALT_H

#include "layers.h"

#define NN_ACT_EPS 0.01
/* The halting bias at initialisation: sigmoid(1) = 0.73 < 1 - eps, so a
 * fresh model does not halt after the first step (typically after the
 * second), and training can move halting either way. */
#define NN_ACT_BIAS_INIT 1.0f

/* One forward's halting record over T positions of state width C, for up to
 * S steps (buffers owned by the model's plan). */
typedef struct {
    int64_t T, C, S;
    float *p;      /* (S, T) halting probability of step n at row n - 1 (running positions only) */
    float *cum;    /* (T) sum of p before halting */
    float *steps;  /* (T) N, the step the position halted at; 0 while running */
    float *rem;    /* (T) R */
    float *y;      /* (T, C) the halting-weighted mean */
    float *dz;     /* (T) backward scratch: d logit of the halting unit */
    float *dkeep;  /* (T, C) backward scratch: the gradient of halted positions, past a step */
    float margin;  /* the least |p^1 + ... + p^n - (1 - eps)| of any halting decision before the last step:
                      how far the forward is from a halting step flipping (gradient checks stay away) */
} nn_act;

/* Clears the record before step 1. */
void nn_act_begin(nn_act *a);
/* After step n (1-based) has written s_n from s_prev: positions halted
 * before step n get back their state s_prev; every position still running
 * computes p^n, halts or not, and adds its weight times s_n to y. Returns
 * the number of positions still running (0: the forward can stop). */
int64_t nn_act_step(nn_act *a, const nn_dense *halt, const float *s_prev, float *s_n, int n, int threads);
/* Over the positions with valid[t]: their count, the sum of N + R, the sum
 * of N, the least and the most N. */
typedef struct {
    int64_t count;
    double ponder, steps;
    int min_steps, max_steps;
} nn_act_sums;
nn_act_sums nn_act_ponder(const nn_act *a, const uint8_t *valid);

/* Backward of step n's halting (steps run from the last down to 1): ds (the
 * gradient at s_n, from later steps) gains w^n dy from the weighted mean and
 * the halting unit's input gradient; the halting unit's weights accumulate
 * theirs. states[k] is s_k (k = 1..); cost = tau * scale / (count of valid
 * positions), the ponder's weight in the scaled loss. */
void nn_act_backward_step(nn_act *a, const nn_dense *halt, const float *const *states, int n, const float *dy,
                          const uint8_t *valid, float cost, float *ds, int threads);
/* Around the stack's backward of step n: nn_act_hold moves the gradient of
 * positions halted before step n out of ds (their state was copied, not
 * computed), nn_act_release adds it back to the gradient at s_(n-1). */
void nn_act_hold(nn_act *a, int n, float *ds);
void nn_act_release(const nn_act *a, int n, float *ds);

/* Double twin of nn_act_step for the reference model; steps, cum, rem (T)
 * and y (T, C) zeroed by the caller before step 1; logit (T) scratch. */
void nn_act_step_ref(const nn_dense *halt, const double *P, const double *s_prev, double *s_n, int n, int S,
                     int64_t T, int64_t C, double *steps, double *cum, double *rem, double *y, double *logit);

#endif
