/* sweep_model.c: the model-level sweep driver (mpoc_sweep.h). Joins the
 * model readers to the numeric sweep engine of sweep.c, the way pipeline.c
 * joins them to compression: selection, parallelism over tensors, records
 * in input order, totals. */
#include "mpoc_sweep.h"

#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"
#include "internal.h"
#include "linalg.h"
#include "mpoc_llama.h"
#include "mpoc_model.h"
#include "mpoc_pipeline.h"
#include "parallel.h"
#include "util.h"

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

/* What one swept tensor would store at each setting, kept for the
 * model-level eval: the dequantized MPOs and the SVD baseline's factors. */
typedef struct eval_slot {
    mpoc_mpo *mpo;                /* [ns], zeroed until kept */
    float *l, *rt;                /* rows × rank, rank × cols (f16-rounded) */
    size_t rows, cols, rank;
} eval_slot;

typedef struct model_run {
    const mpoc_model *m;
    const mpoc_sweep_model_options *o;
    mpoc_sweep_options sw;        /* with the layout of the model's format */
    size_t *sel, n_sel;
    mpoc_sweep_result *res;       /* [n_sel] */
    bool *done;                   /* [n_sel] */
    size_t next_emit, n_done;
    mpoc_par_state par;
    size_t ns;                    /* settings of the grid */
    eval_slot *slots;             /* [n_sel] with an eval reference, else NULL */
} model_run;

static mpoc_status keep_mpo(void *user, size_t setting, const mpoc_qmpo *q)
{
    eval_slot *e = user;
    mpoc_mpo_free(&e->mpo[setting]);
    return mpoc_mpo_copy(&e->mpo[setting], &q->mpo);
}

static mpoc_status keep_svd(void *user, const float *l, const float *rt, size_t rows, size_t cols,
                            size_t rank)
{
    eval_slot *e = user;
    free(e->l);
    free(e->rt);
    e->l = mpoc_alloc_array(rows, rank * sizeof(float));
    e->rt = mpoc_alloc_array(rank, cols * sizeof(float));
    if (!e->l || !e->rt)
        return MPOC_E_NOMEM;
    memcpy(e->l, l, rows * rank * sizeof(float));
    memcpy(e->rt, rt, rank * cols * sizeof(float));
    e->rows = rows;
    e->cols = cols;
    e->rank = rank;
    return MPOC_OK;
}

static void free_slots(model_run *r)
{
    for (size_t i = 0; r->slots && i < r->n_sel; i++) {
        for (size_t s = 0; r->slots[i].mpo && s < r->ns; s++)
            mpoc_mpo_free(&r->slots[i].mpo[s]);
        free(r->slots[i].mpo);
        free(r->slots[i].l);
        free(r->slots[i].rt);
    }
    free(r->slots);
    r->slots = NULL;
}

static mpoc_status sweep_one(model_run *r, size_t i, mpoc_workspace *ws)
{
    const mpoc_tensor *t = mpoc_model_tensor(r->m, r->sel[i]);
    mpoc_mat w;
    mpoc_status st = mpoc_tensor_read_f32(t, &w);
    if (st != MPOC_OK)
        MPOC_FAIL(st, "tensor '%s': cannot be read as float32", t->name);
    mpoc_sweep_options sw = r->sw;
    if (r->slots) {
        sw.keep_mpo = keep_mpo;
        sw.keep_svd = sw.baselines ? keep_svd : NULL;
        sw.keep_user = &r->slots[i];
    }
    st = mpoc_sweep_matrix(mpoc_mat_view_of(&w), t->name, t->nbytes, &sw, ws, &r->res[i]);
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
    while (r->next_emit < r->n_sel && r->done[r->next_emit] && !mpoc_par_stopped(&r->par)) {
        const mpoc_sweep_result *res = &r->res[r->next_emit];
        for (size_t k = 0; k < res->n && !mpoc_par_stopped(&r->par); k++) {
            mpoc_status st = r->o->emit(r->o->emit_user, &res->records[k]);
            if (st != MPOC_OK)
                mpoc_par_fail(&r->par, r->next_emit, st);
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

/* One tensor: swept, then its records emitted in input order. */
static mpoc_status run_one(void *user, size_t i, mpoc_workspace *ws)
{
    model_run *r = user;
    MPOC_TRY(sweep_one(r, i, ws));
    finish_one(r, i);
    return MPOC_OK;
}

static mpoc_status run_all(model_run *r)
{
    return mpoc_par_for(r->n_sel, r->o->threads, run_one, r, &r->par);
}

/* ---- model-level eval ---------------------------------------------------- */

/* The candidate being evaluated: every swept matrix as `method` at `setting`. */
typedef struct eval_cand {
    const model_run *r;
    size_t setting;
    mpoc_sweep_method method;
} eval_cand;

/* The svd record's rank of tensor i at a setting. */
static size_t svd_rank(const model_run *r, size_t i, size_t setting)
{
    const mpoc_sweep_result *res = &r->res[i];
    for (size_t k = 0; k < res->n; k++)
        if (res->records[k].setting == setting && res->records[k].method == MPOC_SWEEP_SVD)
            return res->records[k].ranks[0];
    return 0;
}

static mpoc_status svd_dense(const eval_slot *e, size_t rank, mpoc_linear **out)
{
    mpoc_mat d;
    MPOC_TRY(mpoc_mat_zeros(&d, e->rows, e->cols));
    mpoc_status st = MPOC_OK;
    if (rank > e->rank)
        st = MPOC_E_INVAL;
    else if (rank > 0)
        st = mpoc_la_gemm(false, false, e->rows, e->cols, rank, 1.0f, e->l, e->rank, e->rt,
                          e->cols, 0.0f, d.data, d.cols);
    if (st == MPOC_OK)
        st = mpoc_linear_new_dense(&d, out);
    mpoc_mat_free(&d);
    return st;
}

/* mpoc_llama_options.linear_source: the swept tensors as the candidate's
 * method; everything else declined (read as stored). */
static mpoc_status eval_source(void *user, const mpoc_model *model, const char *name, size_t rows,
                               size_t cols, mpoc_linear **out)
{
    const eval_cand *c = user;
    const model_run *r = c->r;
    size_t i = 0;
    while (i < r->n_sel && strcmp(mpoc_model_tensor(r->m, r->sel[i])->name, name) != 0)
        i++;
    if (i == r->n_sel)
        return MPOC_E_NOTFOUND;
    const eval_slot *e = &r->slots[i];
    (void)rows;
    (void)cols;
    if (c->method == MPOC_SWEEP_MPO) {
        mpoc_mpo m;
        memset(&m, 0, sizeof m);
        if (!e->mpo[c->setting].cores[0])
            MPOC_FAIL(MPOC_E_INVAL, "sweep eval: no MPO kept for '%s' at setting %zu", name,
                      c->setting);
        MPOC_TRY(mpoc_mpo_copy(&m, &e->mpo[c->setting]));
        mpoc_status st = mpoc_linear_new_mpo(&m, out);
        mpoc_mpo_free(&m);
        return st;
    }
    if (c->method == MPOC_SWEEP_SVD) {
        size_t rank = svd_rank(r, i, c->setting);
        if (rank > 0 && !e->l)
            MPOC_FAIL(MPOC_E_INVAL, "sweep eval: no SVD factors kept for '%s'", name);
        mpoc_status st = svd_dense(e, rank, out);
        if (st != MPOC_OK)
            mpoc_log_("sweep eval: svd baseline of '%s' (rank %zu of %zu)", name, rank, e->rank);
        return st;
    }
    /* q8_0 / q4_0: the stored tensor, block-quantized as the baseline does */
    const mpoc_tensor *t = NULL;
    for (size_t k = 0; k < mpoc_model_tensor_count(model) && !t; k++)
        if (!strcmp(mpoc_model_tensor(model, k)->name, name))
            t = mpoc_model_tensor(model, k);
    if (!t)
        return MPOC_E_NOTFOUND;
    mpoc_mat w;
    MPOC_TRY(mpoc_tensor_read_f32(t, &w));
    mpoc_status st = mpoc_sweep_block_roundtrip(mpoc_mat_view_of(&w), c->method);
    if (st == MPOC_OK)
        st = mpoc_linear_new_dense(&w, out);
    mpoc_mat_free(&w);
    return st;
}

typedef struct eval_figs {
    bool done;
    double kl_mean, kl_max, top1;
} eval_figs;

static mpoc_status eval_one(model_run *r, const char *path, size_t setting,
                            mpoc_sweep_method method, eval_figs *out)
{
    const mpoc_sweep_model_options *o = r->o;
    eval_cand c = {r, setting, method};
    mpoc_llama_options lo = mpoc_llama_options_default();
    lo.linear_source = eval_source;
    lo.linear_user = &c;
    mpoc_llama *cand = NULL;
    mpoc_status st = mpoc_llama_open(path, &lo, &cand);
    mpoc_eval_result er;
    if (st == MPOC_OK)
        st = mpoc_llama_eval(o->eval_ref, cand, o->eval_tokens, o->eval_n_seq, o->eval_length,
                             &er);
    mpoc_llama_free(cand);
    if (st != MPOC_OK) {
        mpoc_log_("sweep eval: %s at setting %zu of %s failed", mpoc_sweep_method_name(method),
                  setting, path);
        return st;
    }
    out->done = true;
    out->kl_mean = er.kl_mean;
    out->kl_max = er.kl_max;
    out->top1 = er.top1;
    return MPOC_OK;
}

/* figs[s · METHODS + m]; q8_0 / q4_0 do not depend on the setting and are
 * evaluated once. */
static mpoc_status eval_all(model_run *r, const char *path, eval_figs *figs)
{
    size_t nm = MPOC_SWEEP_METHOD_COUNT_, nsteps = r->ns * (r->sw.baselines ? 2 : 1) +
                                                   (r->sw.baselines ? 2 : 0), step = 0;
    mpoc_status st = MPOC_OK;
    for (size_t s = 0; st == MPOC_OK && s < r->ns; s++)
        for (size_t m = 0; st == MPOC_OK && m < nm; m++) {
            if (m != MPOC_SWEEP_MPO && !r->sw.baselines)
                continue;
            if ((m == MPOC_SWEEP_Q8_0 || m == MPOC_SWEEP_Q4_0) && s > 0) {
                figs[s * nm + m] = figs[m];
                continue;
            }
            st = eval_one(r, path, s, (mpoc_sweep_method)m, &figs[s * nm + m]);
            if (st == MPOC_OK && r->o->progress) {
                char what[64];
                snprintf(what, sizeof what, "eval: %s, setting %zu", mpoc_sweep_method_name(
                         (mpoc_sweep_method)m), s);
                r->o->progress(r->o->progress_user, what, ++step, nsteps);
            }
        }
    return st;
}

static mpoc_status emit_totals(model_run *r, const eval_figs *figs)
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
    for (size_t i = 0; st == MPOC_OK && i < tot.n; i++) {
        mpoc_sweep_record *t = &tot.records[i];
        const eval_figs *f = figs ? &figs[t->setting * MPOC_SWEEP_METHOD_COUNT_ + t->method] : NULL;
        if (f && f->done) {
            t->has_eval = true;
            t->kl_mean = f->kl_mean;
            t->kl_max = f->kl_max;
            t->top1 = f->top1;
        }
        st = r->o->emit(r->o->emit_user, t);
    }
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
    if (!r->res || !r->done)
        return MPOC_E_NOMEM;
    if (r->o->eval_ref) {
        r->slots = calloc(r->n_sel, sizeof *r->slots);
        if (!r->slots)
            return MPOC_E_NOMEM;
        for (size_t i = 0; i < r->n_sel; i++)
            if (!(r->slots[i].mpo = calloc(r->ns, sizeof *r->slots[i].mpo)))
                return MPOC_E_NOMEM;
    }
    return MPOC_OK;
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
    r.ns = mpoc_sweep_setting_count(&r.sw);
    eval_figs *figs = NULL;
    mpoc_status st = MPOC_OK;
    if (opt->eval_ref) {
        if (!opt->eval_tokens || opt->eval_n_seq == 0 || opt->eval_length < 2)
            st = MPOC_E_INVAL;
        if (st != MPOC_OK)
            mpoc_log_("sweep eval: no token sequences (need at least one of 2 or more tokens)");
        else if (!(figs = calloc(r.ns * MPOC_SWEEP_METHOD_COUNT_, sizeof *figs)))
            st = MPOC_E_NOMEM;
    }
    if (st == MPOC_OK)
        st = select_all(&r);
    if (st == MPOC_OK)
        st = run_all(&r);
    if (st == MPOC_OK && figs)
        st = eval_all(&r, path, figs);
    if (st == MPOC_OK)
        st = emit_totals(&r, figs);
    free_slots(&r);
    free(figs);
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
