#include "attn_error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char last_message[1024];

/* Messages are one line whatever they quote: a control byte (a newline in a
 * spec, bytes of a binary file) is written as \xNN, so it can neither break
 * the line nor reach the terminal. Applied again to a wrapped message it
 * changes nothing. */
static void copy_escaped(char *out, size_t cap, const char *in)
{
    size_t o = 0;
    for (; *in && o + 1 < cap; in++) {
        unsigned char b = (unsigned char)*in;
        if (b >= 0x20 && b != 0x7f)
            out[o++] = (char)b;
        else if (o + 4 < cap)
            o += (size_t)snprintf(out + o, cap - o, "\\x%02x", b);
        else
            break;
    }
    out[o] = '\0';
}

int attn_fail(int code, const char *fmt, ...)
{
    /* formatted aside first: callers may pass attn_last_error() as an argument
     * to wrap the previous message */
    char msg[sizeof last_message];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    copy_escaped(last_message, sizeof last_message, msg);
    return code;
}

const char *attn_last_error(void) { return last_message; }

void attn_clear_error(void) { last_message[0] = '\0'; }
