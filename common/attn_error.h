/* One error channel for the whole project: a function that fails
 * records "where: what was expected, what was found" and returns a negative
 * code; main() prints the message and exits non-zero. */
#ifndef ATTN_ERROR_H
#define ATTN_ERROR_H

enum {
    ATTN_OK = 0,
    ATTN_EINVAL = -1,   /* bad argument or input */
    ATTN_ENOMEM = -2,
    ATTN_EUNSUPPORTED = -3, /* kernel cannot do what was asked (mask, pass) */
    ATTN_EIO = -4,
};

/* Records the message (printf-style) for this thread and returns `code`.
 * The message stays one line: control bytes in it (from a quoted input)
 * are recorded as \xNN. */
int attn_fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The last message recorded on this thread ("" if none). */
const char *attn_last_error(void);

void attn_clear_error(void);

#endif
