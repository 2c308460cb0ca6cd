/* Whether a benchmark job can fit and finish, judged before anything is
 * allocated. Memory: the problem's tensors (inputs, outputs, gradients for a
 * backward) and the workspace the kernel's init asks for (naive's and blas's
 * N x N score matrices among them). Time: every call the job makes (the
 * gate's forward, the warm-ups, the repetitions measure_run will take, the
 * counted call), each at least the kernel's analytic FLOPs at the sgemm peak
 * or its analytic bytes at the STREAM peak, whichever is longer. Both are
 * lower bounds, so a refused job could not have fitted or finished. */
#ifndef ATTN_BENCH_FIT_H
#define ATTN_BENCH_FIT_H

#include "bench.h"

typedef struct {
    double tensor_bytes, workspace_bytes; /* their sum is judged against max_mem_bytes */
    double call_s;   /* one timed call at the peaks; 0 without a peak */
    double calls;    /* calls the job makes */
    double seconds;  /* the whole job; 0 without a peak */
} bench_estimate;

/* The analytic work of a pass (forward + backward for fwdbwd). */
double bench_pass_work(double (*f)(const attn_args *, attn_pass), const attn_args *a, bench_pass pass);

/* The job's estimate; peak NULL: memory only. Fails as the kernel's init does
 * (ATTN_EUNSUPPORTED when it refuses the problem). */
int bench_estimate_job(const bench_job *job, const peak_result *peak, bench_estimate *e);

/* 0 when estimate e of the job is within job->max_workspace_bytes and
 * job->limits (the time when e has one); otherwise ATTN_EUNSUPPORTED with one line giving the estimate and the
 * limit. */
int bench_fit_limits(const bench_job *job, const bench_estimate *e);

/* The estimate, then bench_fit_limits: 0 when the job fits job->limits (time only with a peak); otherwise
 * ATTN_EUNSUPPORTED with one line giving the estimate and the limit:
 * "kernel 'flash' N=16777216: needs at least 137 GB (...) > --max-mem 19.5 GB". */
int bench_fit(const bench_job *job, const peak_result *peak);

/* The memory-budget mode (docs/memory-budget.md): with args.mem_budget set
 * and a kernel that claims the mode, the sizes attn_budget_fit chooses go
 * into job->args.params, so the row's params name them. 0 without a budget
 * or for a kernel that does not claim the mode (its job is skipped when it
 * runs); otherwise as attn_budget_fit: ATTN_EUNSUPPORTED with the least
 * budget the kernel can meet when no setting fits. */
int bench_budget_fit(bench_job *job);

/* Sizes of a peak probe that takes milliseconds, for the time estimate when
 * the same-run peaks are not measured (--no-peak): in-cache sizes overstate
 * the peaks, which keeps the estimate a lower bound. */
#define FIT_PROBE_SGEMM_N 256
#define FIT_PROBE_STREAM_BYTES ((size_t)3 << 20)

/* "42 s", "12.5 min", "5.83 h", "67.2 days": three significant digits. */
void bench_fmt_seconds(double s, char *buf, size_t n);

/* The default of --max-mem: 80% of the memory available now (the rest is
 * the process itself, the gate's double copies and the other programs). */
double bench_default_max_mem(void);

#endif
