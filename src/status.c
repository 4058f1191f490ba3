/* status.c: the status message table and log dispatch. */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>

static const char *const status_messages[MPOC_STATUS_COUNT] = {
    [MPOC_OK] = "success",
    [MPOC_E_INVAL] = "invalid argument",
    [MPOC_E_NOMEM] = "out of memory",
    [MPOC_E_IO] = "input/output error",
    [MPOC_E_FORMAT] = "malformed file",
    [MPOC_E_UNSUPPORTED] = "unsupported",
    [MPOC_E_OVERFLOW] = "size overflow",
    [MPOC_E_SHAPE] = "non-conformant shape",
    [MPOC_E_NOTFOUND] = "not found",
    [MPOC_E_LINALG] = "linear algebra failure",
    [MPOC_E_NUMERIC] = "non-finite or out-of-range value",
    [MPOC_E_EXISTS] = "output exists or is an input",
};

const char *mpoc_strerror(mpoc_status s)
{
    if ((int)s < 0 || (int)s >= MPOC_STATUS_COUNT || !status_messages[s])
        return "unknown status";
    return status_messages[s];
}

static mpoc_log_fn log_cb;
static void *log_user;

void mpoc_log_set(mpoc_log_fn cb, void *user)
{
    log_cb = cb;
    log_user = user;
}

void mpoc_log_(const char *fmt, ...)
{
    if (!log_cb)
        return;
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    log_cb(log_user, buf);
}
