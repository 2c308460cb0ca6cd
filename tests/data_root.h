/* Where tests find the offline stand-in corpora: $ATTN_DATA_DIR when set,
 * else the repository's data/ (run.sh prepares it). */
#ifndef ATTN_TEST_DATA_ROOT_H
#define ATTN_TEST_DATA_ROOT_H

/* The first of the two roots for which has(root) holds, or NULL. */
const char *test_data_root(int (*has)(const char *root));

/* has() for the SpamAssassin stand-in (its JSON files under spam-assassin/package/data/). */
int test_has_spam_corpus(const char *root);

/* How the roots read in a message: "$ATTN_DATA_DIR or <repository>/data". */
const char *test_data_roots_text(void);

#endif
