/* Resident memory of this process: current, peak, and the peak during one
 * region (the peak RSS growth of a job, docs/measurement.md).
 *
 * Linux keeps the high-water mark in /proc/self/status VmHWM; writing "5" to
 * /proc/self/clear_refs (Linux >= 4.0) resets it to the current RSS, which is
 * what makes a per-region peak exact. ru_maxrss cannot be reset, so it is only
 * the fallback for the whole-process peak. On this project's VMs (Linux 6.x)
 * the reset works; where it does not, the region peak falls back to
 * "process peak at the end - RSS at the start", which over-states the region
 * when an earlier phase peaked higher, and the region says so (exact = 0). */
#ifndef ATTN_RSS_H
#define ATTN_RSS_H

#include <stddef.h>

/* Peak RSS in bytes since start or the last reset: VmHWM, else ru_maxrss. */
size_t rss_peak_bytes(void);

/* Current RSS in bytes (VmRSS); 0 if unknown. */
size_t rss_current_bytes(void);

/* Resets the peak to the current RSS. 0 if it was reset and VmHWM confirms
 * it; ATTN_EUNSUPPORTED with a message otherwise. */
int rss_reset_peak(void);

typedef struct {
    size_t baseline;   /* RSS when the region began */
    size_t anon_baseline, anon_growth; /* RssAnon at begin; largest sampled growth */
    int exact;         /* 1 if the peak was reset at the start of the region */
} rss_region;

/* Begins a region: resets the peak if possible and records the baseline. */
void rss_region_begin(rss_region *r);

/* Records the current growth of anonymous memory (RssAnon) over the region.
 * A lower bound that does not depend on VmHWM: in a long-running sweep the
 * high-water mark was seen to read at or below the baseline (file-backed
 * pages dropped between begin and end), which made real growth read as 0. */
void rss_region_sample(rss_region *r);

/* Highest RSS reached since begin, minus the baseline, and at least the
 * largest sampled anonymous growth (0 if it never grew). */
size_t rss_region_peak_bytes(const rss_region *r);

#endif
