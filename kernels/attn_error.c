#include "attn_error.h"

#include <stdarg.h>
#include <stdio.h>

static _Thread_local char last_message[1024];

int attn_fail(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_message, sizeof last_message, fmt, ap);
    va_end(ap);
    return code;
}

const char *attn_last_error(void) { return last_message; }

void attn_clear_error(void) { last_message[0] = '\0'; }
