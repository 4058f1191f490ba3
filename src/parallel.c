/* parallel.c: the tensor-parallel driver (parallel.h). */
#include "parallel.h"

#include <omp.h>

void mpoc_par_fail(mpoc_par_state *st, size_t i, mpoc_status err)
{
#pragma omp critical(mpoc_par_err)
    {
        if (st->err == MPOC_OK || i < st->err_index) {
            st->err = err;
            st->err_index = i;
        }
    }
    mpoc_par_stop(st);
}

void mpoc_par_stop(mpoc_par_state *st)
{
#pragma omp atomic write
    st->stop = 1;
}

int mpoc_par_stopped(mpoc_par_state *st)
{
    int stop;
#pragma omp atomic read
    stop = st->stop;
    return stop;
}

mpoc_status mpoc_par_for(size_t n, int threads, mpoc_par_item_fn fn, void *user,
                         mpoc_par_state *st)
{
    int prev = mpoc_threads();
    mpoc_set_threads(1); /* BLAS on one thread: results independent of the thread count */
    int nt = threads > 0 ? threads : omp_get_max_threads();
    long count = (long)n;
#pragma omp parallel num_threads(nt)
    {
        mpoc_workspace *ws = NULL;
        if (mpoc_workspace_new(&ws) != MPOC_OK)
            mpoc_par_fail(st, 0, MPOC_E_NOMEM);
#pragma omp for schedule(dynamic, 1)
        for (long i = 0; i < count; i++) {
            if (!ws || mpoc_par_stopped(st))
                continue;
            mpoc_status err = fn(user, (size_t)i, ws);
            if (err != MPOC_OK)
                mpoc_par_fail(st, (size_t)i, err);
        }
        mpoc_workspace_free(ws);
    }
    mpoc_set_threads(prev);
    return st->err;
}
