/* mpoc_status.h: status codes, their messages, and the log callback.
 *
 * Every fallible mpoc function returns an mpoc_status; results go through
 * out-pointers. Values are append-only: a released number never changes
 * meaning. The library never prints: it reports the reason for a failure
 * (file, tensor, offending value) through the log callback, which is off
 * until the caller installs one. */
#ifndef MPOC_STATUS_H
#define MPOC_STATUS_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum mpoc_status {
    MPOC_OK = 0,              /* success */
    MPOC_E_INVAL = 1,         /* bad argument (caller error or bad option) */
    MPOC_E_NOMEM = 2,         /* allocation failed or exceeded a policy cap */
    MPOC_E_IO = 3,            /* open/read/write/rename/fsync failed */
    MPOC_E_FORMAT = 4,        /* malformed file */
    MPOC_E_UNSUPPORTED = 5,   /* valid but not handled (dtype, version, big-endian) */
    MPOC_E_OVERFLOW = 6,      /* size arithmetic would overflow */
    MPOC_E_SHAPE = 7,         /* non-conformant dimensions */
    MPOC_E_NOTFOUND = 8,      /* named tensor, key or file does not exist */
    MPOC_E_LINALG = 9,        /* LAPACK failed even after the fallback */
    MPOC_E_NUMERIC = 10,      /* NaN/Inf in data, or overflow in a result */
    MPOC_E_EXISTS = 11        /* output exists (and overwrite not asked) or is an input */
} mpoc_status;

/* Number of status codes; every value below it has a message. */
#define MPOC_STATUS_COUNT 12

/* A static, one-line English description of s ("unknown status" if s is
 * out of range). Never NULL. */
const char *mpoc_strerror(mpoc_status s);

/* Log callback: receives one complete message without a trailing newline.
 * `user` is the pointer given to mpoc_log_set. It may be called from
 * several threads at once when the library runs in parallel. */
typedef void (*mpoc_log_fn)(void *user, const char *message);

/* Install (or with cb == NULL remove) the process-wide log callback.
 * Not thread-safe against concurrent library calls: set it once at start. */
void mpoc_log_set(mpoc_log_fn cb, void *user);

#ifdef __cplusplus
}
#endif
#endif
