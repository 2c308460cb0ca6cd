/* The sanitized build's hook into LeakSanitizer (sanitize.h). */
#include "sanitize.h"

#include <stdlib.h>

#if SANITIZED
/* LeakSanitizer asks this at a process's exit whether to look for leaks.
 * Each test runs in a BoxFort worker process, which has BXFI_MAP in its
 * environment, and is checked there. The Criterion runner process, which
 * runs no test, exits holding 17 blocks (816 bytes) that libcriterion
 * allocated; no frame of ours is on their stack and none of theirs has a
 * symbol, and a suppression of libcriterion.so would hide the tests' own
 * leaks too (every test runs under libcriterion's frames). */
int __lsan_is_turned_off(void);
int __lsan_is_turned_off(void) { return getenv("BXFI_MAP") == NULL; }
#endif
