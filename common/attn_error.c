#include "attn_error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char last_message[1024];

int attn_fail(int code, const char *fmt, ...)
{
    /* formatted aside first: callers may pass attn_last_error() as an argument
     * to wrap the previous message */
    char msg[sizeof last_message];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    memcpy(last_message, msg, sizeof msg);
    return code;
}

const char *attn_last_error(void) { return last_message; }

void attn_clear_error(void) { last_message[0] = '\0'; }
