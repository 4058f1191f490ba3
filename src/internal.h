/* internal.h: helpers every module may use (never installed). */
#ifndef MPOC_INTERNAL_H
#define MPOC_INTERNAL_H

#include "mpoc_status.h"

/* Send a formatted reason to the log callback (no-op when none is set). */
void mpoc_log_(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Log the reason and return the status from the enclosing function. */
#define MPOC_FAIL(status, ...)                                                 \
    do {                                                                       \
        mpoc_log_(__VA_ARGS__);                                                \
        return (status);                                                       \
    } while (0)

/* Return a non-OK status from the enclosing function. */
#define MPOC_TRY(expr)                                                         \
    do {                                                                       \
        mpoc_status mpoc_try_s_ = (expr);                                      \
        if (mpoc_try_s_ != MPOC_OK)                                            \
            return mpoc_try_s_;                                                \
    } while (0)

/* Set `st` and jump to the function's cleanup label on a non-OK status. */
#define MPOC_CHECK_GOTO(st, expr, label)                                       \
    do {                                                                       \
        (st) = (expr);                                                         \
        if ((st) != MPOC_OK)                                                   \
            goto label;                                                        \
    } while (0)

#endif
