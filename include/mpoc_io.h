/* mpoc_io.h: how mpoc writes files, and .npy matrices.
 *
 * Every file mpoc writes goes to a temporary file in the destination folder,
 * is fsynced and renamed into place (then the folder is fsynced), so a reader
 * never sees a partial output. An existing destination is replaced only when
 * `overwrite` is set, and never when it is the same file (device and inode)
 * as one of `inputs`. */
#ifndef MPOC_IO_H
#define MPOC_IO_H

#include <stdbool.h>
#include <stddef.h>

#include "mpoc_mat.h"
#include "mpoc_status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mpoc_write_policy {
    bool overwrite;            /* replace an existing destination */
    const char *const *inputs; /* paths the output must never replace (borrowed) */
    size_t n_inputs;
} mpoc_write_policy;

/* Read a 2-D C-order .npy file (float32, float64 or float16, little-endian)
 * into a new float32 matrix. A 1-D array is read as a 1×n matrix. Other
 * dtypes, Fortran order, big-endian data, a truncated or oversized file
 * give MPOC_E_UNSUPPORTED / MPOC_E_FORMAT with the reason logged.
 * Values are converted, not checked: NaN/Inf pass through (the numeric
 * layer rejects them). `out` must be unallocated; free with mpoc_mat_free. */
mpoc_status mpoc_npy_read(const char *path, mpoc_mat *out);

/* Write a float32 matrix as a 2-D C-order .npy (format version 1.0),
 * atomically under `policy` (NULL: no overwrite, no inputs). */
mpoc_status mpoc_npy_write(const char *path, mpoc_mat_view m,
                           const mpoc_write_policy *policy);

#ifdef __cplusplus
}
#endif
#endif
