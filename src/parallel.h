/* parallel.h: the tensor-parallel driver shared by mpoc_compress and the
 * model sweep (never installed). */
#ifndef MPOC_PARALLEL_H
#define MPOC_PARALLEL_H

#include <stddef.h>

#include "mpoc_status.h"
#include "mpoc_svd.h"

/* Shared state of one parallel loop: once `stop` is set no further item
 * starts; `err` is the error of the lowest failed index. Zero-initialise. */
typedef struct mpoc_par_state {
    int stop;
    mpoc_status err;
    size_t err_index;
} mpoc_par_state;

/* One item: its error stops the loop and is recorded by index. */
typedef mpoc_status (*mpoc_par_item_fn)(void *user, size_t i, mpoc_workspace *ws);

/* fn(user, i, ws) for every i in [0, n) on `threads` OpenMP threads (≤ 0:
 * OpenMP's default), dynamically scheduled, each thread with its own
 * workspace; BLAS runs on one thread meanwhile, so every item's result is
 * independent of the thread count. Returns st->err (MPOC_OK when the loop
 * only stopped through mpoc_par_stop). */
mpoc_status mpoc_par_for(size_t n, int threads, mpoc_par_item_fn fn, void *user,
                         mpoc_par_state *st);

/* Record err for item i (lowest index wins) and stop handing out items. */
void mpoc_par_fail(mpoc_par_state *st, size_t i, mpoc_status err);
/* Stop handing out items without an error (e.g. a test hook). */
void mpoc_par_stop(mpoc_par_state *st);
/* Whether the loop has stopped (an error or mpoc_par_stop). */
int mpoc_par_stopped(mpoc_par_state *st);

#endif
