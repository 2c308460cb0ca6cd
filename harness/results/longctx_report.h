/* The long-context decode report (longctx_report.c; docs/fidelity.md, "Long
 * contexts"): for a few queries against a long KV cache, what each decode
 * kernel keeps of exact attention's quality (top-k key recall, output error)
 * for its time per token and the KV bytes it reads per token, each beside
 * exact `decode` on the same cache in the same run. Reads the same fidelity
 * rows as the fidelity report (fidrep_load), keeps the decode shapes. */
#ifndef ATTN_LONGCTX_REPORT_H
#define ATTN_LONGCTX_REPORT_H

#include "fidelity_report.h"

#include <stdio.h>

/* The targets, at N_kv = LONGCTX_TARGET_NKV on peaked inputs: a selecting
 * kernel reads at most LONGCTX_TARGET_BYTES of decode's bytes per token, is
 * LONGCTX_TARGET_SPEEDUP times faster, and keeps top-k recall >= LONGCTX_TARGET_RECALL. */
#define LONGCTX_TARGET_NKV 131072
#define LONGCTX_TARGET_BYTES 0.10
#define LONGCTX_TARGET_SPEEDUP 3.0
#define LONGCTX_TARGET_RECALL 0.9

void longctx_markdown(const fidrep *r, FILE *f);

/* Plot data: N_kv,family,kernel,label,us_per_token,mib_per_token,topk_recall,
 * rel_fro_err,exact; exact kernels' recall is 1 (they attend every key); a
 * blank line between groups. */
void longctx_csv(const fidrep *r, FILE *f);

#endif
