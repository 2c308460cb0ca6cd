/* The one report to read: DIR/REPORT.md from the results CSVs of DIR alone
 * (`attnbench report all`, and the end of every ./run.sh): where the numbers
 * come from (machines, commits, runs, counters, data), the same-run roofs, a
 * summary table per suite, the suite reports (LRA, recall, fidelity, long
 * context) inline, and every plot drawn in DIR/plots. Links are relative
 * to DIR and point only at files that exist. */
#ifndef ATTN_REPORT_ALL_H
#define ATTN_REPORT_ALL_H

/* Writes md (DIR/REPORT.md when NULL) from dir's CSVs and the reports and
 * plots already in dir (run the suite reports and plots/plot.sh first for
 * them to be included). Returns 0, or a negative code naming the file that
 * could not be read or written. */
int report_all_write(const char *dir, const char *md);

#endif
