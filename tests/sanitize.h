/* Whether the suite was built with the sanitizers (./run.sh test --sanitize,
 * CMake -DATTN_SANITIZE=ON), where code runs several times slower. The few
 * tests that train models for many steps or difference large problems take a
 * smaller size there (SANITIZED ? small : full): ASan and UBSan look for
 * memory and undefined-behaviour errors, which a shorter run of the same code
 * paths meets as well, while the properties that need the full size (a model
 * beating chance) are held by the normal build. SAN_TIMEOUT(s) stretches a
 * per-test timeout by the slowdown for tests kept at their size. */
#ifndef ATTN_TEST_SANITIZE_H
#define ATTN_TEST_SANITIZE_H

#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#else
#define SANITIZED 0
#endif

#define SAN_TIMEOUT(seconds) ((seconds) * (SANITIZED ? 4 : 1))

#endif
