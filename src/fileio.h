/* fileio.h: atomic output files (temp in the target folder, fsync, rename,
 * fsync folder) and refusal to write over an input. */
#ifndef MPOC_FILEIO_H
#define MPOC_FILEIO_H

#include <stddef.h>
#include <stdint.h>

#include "mpoc_io.h"

typedef struct mpoc_outfile {
    int fd;           /* temp file descriptor, -1 when closed */
    char *path;       /* final destination (owned) */
    char *tmp_path;   /* temp file beside it (owned) */
    uint64_t written; /* bytes written so far */
} mpoc_outfile;

/* Create the temp file for `path` after checking the policy (NULL = no
 * overwrite, no inputs). On failure nothing is left on disk. */
mpoc_status mpoc_out_open(const char *path, const mpoc_write_policy *policy,
                          mpoc_outfile *out);
/* Write all n bytes (retrying short writes). */
mpoc_status mpoc_out_write(mpoc_outfile *f, const void *data, size_t n);
/* Write n zero bytes. */
mpoc_status mpoc_out_zeros(mpoc_outfile *f, size_t n);
/* fsync and close the temp file but keep it: a later mpoc_out_commit only
 * renames it. Lets an output of several files (shards) write and sync all
 * of them before it replaces any; MPOC_E_IO (the temp stays for abort). */
mpoc_status mpoc_out_finish(mpoc_outfile *f);
/* fsync, close (unless finished), rename into place, fsync the folder;
 * frees f's strings. */
mpoc_status mpoc_out_commit(mpoc_outfile *f);
/* Close and delete the temp file; frees f's strings. Safe after commit. */
void mpoc_out_abort(mpoc_outfile *f);

/* True when a and b name the same existing file (st_dev, st_ino). */
int mpoc_same_file(const char *a, const char *b);

#endif
