/* sweep_model.c: the model-level sweep driver (mpoc_sweep.h). Joins the
 * model readers to the numeric sweep engine of sweep.c, the way pipeline.c
 * joins them to compression: selection, parallelism over tensors, records
 * in input order, totals. */
#include "mpoc_sweep.h"

#include <fnmatch.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"
#include "internal.h"
#include "mpoc_model.h"
#include "mpoc_pipeline.h"

mpoc_sweep_model_options mpoc_sweep_model_options_default(void)
{
    mpoc_sweep_model_options o;
    memset(&o, 0, sizeof o);
    o.sweep = mpoc_sweep_options_default();
    o.min_size = 1024;
    return o;
}

static bool any_glob(const char *name, const char *const *g, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (fnmatch(g[i], name, 0) == 0)
            return true;
    return false;
}

/* The selection rule of mpoc_compress (pipeline.c). */
static bool selected(const mpoc_tensor *t, const mpoc_sweep_model_options *o)
{
    bool by_name = o->n_include ? any_glob(t->name, o->include, o->n_include)
                                : mpoc_pipeline_default_select(t->name);
    return by_name && !any_glob(t->name, o->exclude, o->n_exclude) && t->n_dims == 2 &&
           mpoc_tensor_can_read(t) && t->n_elems >= o->min_size && t->shape[0] >= 2 &&
           t->shape[1] >= 2;
}

typedef struct model_run {
    const mpoc_model *m;
    const mpoc_sweep_model_options *o;
    mpoc_sweep_options sw;        /* with the layout of the model's format */
    size_t *sel, n_sel;
    mpoc_sweep_result *res;       /* [n_sel] */
    bool *done;                   /* [n_sel] */
    size_t next_emit, n_done;
    int stop;
    mpoc_status err;
    size_t err_index;
} model_run;

static void fail_at(model_run *r, size_t i, mpoc_status st)
{
#pragma omp critical(mpoc_sweep_emit)
    {
        if (r->err == MPOC_OK || i < r->err_index) {
            r->err = st;
            r->err_index = i;
        }
        r->stop = 1;
    }
}

static mpoc_status sweep_one(model_run *r, size_t i, mpoc_workspace *ws)
{
    const mpoc_tensor *t = mpoc_model_tensor(r->m, r->sel[i]);
    mpoc_mat w;
    mpoc_status st = mpoc_tensor_read_f32(t, &w);
    if (st != MPOC_OK)
        MPOC_FAIL(st, "tensor '%s': cannot be read as float32", t->name);
    st = mpoc_sweep_matrix(mpoc_mat_view_of(&w), t->name, t->nbytes, &r->sw, ws, &r->res[i]);
    mpoc_mat_free(&w);
    if (st != MPOC_OK)
        mpoc_log_("tensor '%s': sweep failed", t->name);
    for (size_t k = 0; st == MPOC_OK && k < r->res[i].n; k++)
        r->res[i].records[k].tensor_index = i;
    return st;
}

/* Emit the finished prefix in input order (inside the critical section). */
static void emit_ready(model_run *r)
{
    while (r->next_emit < r->n_sel && r->done[r->next_emit] && r->err == MPOC_OK) {
        const mpoc_sweep_result *res = &r->res[r->next_emit];
        for (size_t k = 0; k < res->n && r->err == MPOC_OK; k++) {
            mpoc_status st = r->o->emit(r->o->emit_user, &res->records[k]);
            if (st != MPOC_OK) {
                r->err = st;
                r->err_index = r->next_emit;
                r->stop = 1;
            }
        }
        r->next_emit++;
    }
}

static void finish_one(model_run *r, size_t i)
{
#pragma omp critical(mpoc_sweep_emit)
    {
        r->done[i] = true;
        r->n_done++;
        if (r->o->progress)
            r->o->progress(r->o->progress_user, mpoc_model_tensor(r->m, r->sel[i])->name,
                           r->n_done, r->n_sel);
        emit_ready(r);
    }
}

static mpoc_status run_all(model_run *r)
{
    int prev = mpoc_threads();
    mpoc_set_threads(1); /* as mpoc_compress: bytes independent of the thread count */
    int nt = r->o->threads > 0 ? r->o->threads : omp_get_max_threads();
    long n = (long)r->n_sel;
#pragma omp parallel num_threads(nt)
    {
        mpoc_workspace *ws = NULL;
        if (mpoc_workspace_new(&ws) != MPOC_OK)
            fail_at(r, 0, MPOC_E_NOMEM);
#pragma omp for schedule(dynamic, 1)
        for (long i = 0; i < n; i++) {
            int stop;
#pragma omp atomic read
            stop = r->stop;
            if (stop || !ws)
                continue;
            mpoc_status st = sweep_one(r, (size_t)i, ws);
            if (st != MPOC_OK)
                fail_at(r, (size_t)i, st);
            else
                finish_one(r, (size_t)i);
        }
        mpoc_workspace_free(ws);
    }
    mpoc_set_threads(prev);
    return r->err;
}

static mpoc_status emit_totals(model_run *r)
{
    size_t n = 0;
    for (size_t i = 0; i < r->n_sel; i++)
        n += r->res[i].n;
    mpoc_sweep_record *all = calloc(n ? n : 1, sizeof *all);
    if (!all)
        return MPOC_E_NOMEM;
    size_t k = 0;
    for (size_t i = 0; i < r->n_sel; i++)
        for (size_t j = 0; j < r->res[i].n; j++)
            all[k++] = r->res[i].records[j];
    mpoc_sweep_result tot;
    memset(&tot, 0, sizeof tot);
    mpoc_status st = mpoc_sweep_totals(all, n, &r->sw, &tot);
    for (size_t i = 0; st == MPOC_OK && i < tot.n; i++)
        st = r->o->emit(r->o->emit_user, &tot.records[i]);
    mpoc_sweep_result_free(&tot);
    free(all);
    return st;
}

static mpoc_status select_all(model_run *r)
{
    size_t nt = mpoc_model_tensor_count(r->m);
    r->sel = calloc(nt ? nt : 1, sizeof *r->sel);
    if (!r->sel)
        return MPOC_E_NOMEM;
    for (size_t i = 0; i < nt; i++)
        if (selected(mpoc_model_tensor(r->m, i), r->o))
            r->sel[r->n_sel++] = i;
    if (r->n_sel == 0)
        MPOC_FAIL(MPOC_E_NOTFOUND, "sweep: no tensor of %zu is selected (2-D weights of attention "
                  "and MLP projections by default; see --include)", nt);
    r->res = calloc(r->n_sel, sizeof *r->res);
    r->done = calloc(r->n_sel, sizeof *r->done);
    return r->res && r->done ? MPOC_OK : MPOC_E_NOMEM;
}

mpoc_status mpoc_sweep_model(const char *path, const mpoc_sweep_model_options *opt)
{
    if (!path || !opt || !opt->emit)
        MPOC_FAIL(MPOC_E_INVAL, "sweep: no model path or no record callback");
    model_run r;
    memset(&r, 0, sizeof r);
    r.o = opt;
    r.sw = opt->sweep;
    mpoc_model *m = NULL;
    MPOC_TRY(mpoc_model_open(path, &m));
    r.m = m;
    mpoc_format f = mpoc_model_format(m);
    r.sw.layout = f == MPOC_FORMAT_GGUF ? MPOC_SWEEP_LAYOUT_GGML : MPOC_SWEEP_LAYOUT_SPLIT;
    mpoc_status st = select_all(&r);
    if (st == MPOC_OK)
        st = run_all(&r);
    if (st == MPOC_OK)
        st = emit_totals(&r);
    for (size_t i = 0; r.res && i < r.n_sel; i++)
        mpoc_sweep_result_free(&r.res[i]);
    free(r.res);
    free(r.done);
    free(r.sel);
    mpoc_model_close(m);
    return st;
}

mpoc_status mpoc_write_file(const char *path, const void *data, size_t n,
                            const mpoc_write_policy *policy)
{
    if (!path || (!data && n))
        MPOC_FAIL(MPOC_E_INVAL, "write: no path or no data");
    mpoc_outfile f;
    MPOC_TRY(mpoc_out_open(path, policy, &f));
    mpoc_status st = mpoc_out_write(&f, data, n);
    if (st != MPOC_OK) {
        mpoc_out_abort(&f);
        return st;
    }
    return mpoc_out_commit(&f);
}
