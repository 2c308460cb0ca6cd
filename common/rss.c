/* Resident memory from /proc/self/status and getrusage (rss.h). */
#include "rss.h"

#include "attn_error.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* A "Key:   123 kB" line of /proc/self/status in bytes; 0 if absent. */
static size_t status_kb_field(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return 0;
    char line[256];
    size_t klen = strlen(key), bytes = 0;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
            bytes = (size_t)strtoull(line + klen + 1, NULL, 10) << 10;
            break;
        }
    fclose(f);
    return bytes;
}

size_t rss_peak_bytes(void)
{
    size_t hwm = status_kb_field("VmHWM");
    if (hwm)
        return hwm;
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0;
    return (size_t)ru.ru_maxrss << 10;   /* kilobytes on Linux */
}

size_t rss_current_bytes(void) { return status_kb_field("VmRSS"); }

int rss_reset_peak(void)
{
    int fd = open("/proc/self/clear_refs", O_WRONLY);
    if (fd < 0)
        return attn_fail(ATTN_EUNSUPPORTED, "rss: cannot open /proc/self/clear_refs: %s", strerror(errno));
    ssize_t w = write(fd, "5", 1);
    int err = errno;
    close(fd);
    if (w != 1)
        return attn_fail(ATTN_EUNSUPPORTED, "rss: writing 5 to /proc/self/clear_refs failed: %s",
                         strerror(err));
    /* Old kernels accept the write but ignore "5": check that the peak fell
     * to (about) the current RSS. 1 MiB of slack for concurrent allocation. */
    size_t hwm = status_kb_field("VmHWM"), rss = status_kb_field("VmRSS");
    if (hwm > rss + (1u << 20))
        return attn_fail(ATTN_EUNSUPPORTED, "rss: VmHWM not reset by clear_refs (VmHWM %zu, VmRSS %zu)",
                         hwm, rss);
    return 0;
}

void rss_region_begin(rss_region *r)
{
    r->exact = rss_reset_peak() == 0;
    r->baseline = rss_current_bytes();
    r->anon_baseline = status_kb_field("RssAnon");
    r->anon_growth = 0;
}

void rss_region_sample(rss_region *r)
{
    size_t anon = status_kb_field("RssAnon");
    if (anon > r->anon_baseline && anon - r->anon_baseline > r->anon_growth)
        r->anon_growth = anon - r->anon_baseline;
}

size_t rss_region_peak_bytes(const rss_region *r)
{
    size_t peak = rss_peak_bytes(), growth = peak > r->baseline ? peak - r->baseline : 0;
    return growth > r->anon_growth ? growth : r->anon_growth;
}
