/* sweep_out.c: sweep records as JSON Lines or CSV, and the sweep plots;
 * shared by `mpoc sweep` and `mpoc bench`. The record format is specified in
 * docs/sweep.md: field names and order are stable. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char *const csv_fields =
    "tensor,method,setting,tensors,rows,cols,sites,chi,eps,quant,ranks,params,bytes,"
    "original_bytes,elems,bits_per_weight,compression,rel_error,rel_error_trunc,seconds,"
    "seconds_factor,best,best_method,kl_mean,kl_max,top1";

static bool is_total(const mpoc_sweep_record *r)
{
    return !strcmp(r->tensor, "*");
}

static json_t *jnum(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

static json_t *jsize_or_null(size_t v, bool null_if_zero)
{
    return v == 0 && null_if_zero ? json_null() : json_integer((json_int_t)v);
}

static json_t *ranks_json(const mpoc_sweep_record *r)
{
    if (is_total(r))
        return json_null();
    json_t *a = json_array();
    for (size_t i = 0; i < r->n_ranks; i++)
        json_array_append_new(a, json_integer((json_int_t)r->ranks[i]));
    return a;
}

static json_t *sweep_record_json(const mpoc_sweep_record *r)
{
    bool tot = is_total(r);
    json_t *o = json_object();
    json_object_set_new(o, "tensor", json_string(r->tensor));
    json_object_set_new(o, "method", json_string(mpoc_sweep_method_name(r->method)));
    json_object_set_new(o, "setting", json_integer((json_int_t)r->setting));
    json_object_set_new(o, "tensors", json_integer(tot ? (json_int_t)r->tensor_index : 1));
    json_object_set_new(o, "rows", jsize_or_null(r->rows, tot));
    json_object_set_new(o, "cols", jsize_or_null(r->cols, tot));
    json_object_set_new(o, "sites", jsize_or_null(tot ? r->set.sites : r->sites, true));
    json_object_set_new(o, "chi", jsize_or_null(r->set.chi, true));
    json_object_set_new(o, "eps", r->set.eps > 0.0 ? json_real(r->set.eps) : json_null());
    json_object_set_new(o, "quant", json_string(mpoc_quant_name(r->set.quant)));
    json_object_set_new(o, "ranks", ranks_json(r));
    json_object_set_new(o, "params", json_integer((json_int_t)r->params));
    json_object_set_new(o, "bytes", json_integer((json_int_t)r->bytes));
    json_object_set_new(o, "original_bytes", json_integer((json_int_t)r->original_bytes));
    json_object_set_new(o, "elems", json_integer((json_int_t)r->elems));
    json_object_set_new(o, "bits_per_weight", jnum(r->bits_per_weight));
    json_object_set_new(o, "compression", jnum(r->compression));
    json_object_set_new(o, "rel_error", jnum(r->rel_error));
    json_object_set_new(o, "rel_error_trunc", jnum(r->rel_error_trunc));
    json_object_set_new(o, "seconds", jnum(r->seconds));
    json_object_set_new(o, "seconds_factor", jnum(r->seconds_factor));
    json_object_set_new(o, "best", json_boolean(r->best));
    json_object_set_new(o, "best_method", json_string(mpoc_sweep_method_name(r->best_method)));
    json_object_set_new(o, "kl_mean", r->has_eval ? jnum(r->kl_mean) : json_null());
    json_object_set_new(o, "kl_max", r->has_eval ? jnum(r->kl_max) : json_null());
    json_object_set_new(o, "top1", r->has_eval ? jnum(r->top1) : json_null());
    return o;
}

static void csv_num(FILE *f, double v)
{
    if (isfinite(v))
        fprintf(f, ",%.10g", v);
    else
        fputc(',', f);
}

static void csv_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

void cli_sweep_csv_header(FILE *f)
{
    fprintf(f, "%s\n", csv_fields);
}

static void csv_size(FILE *f, size_t v, bool empty_if_zero)
{
    if (v == 0 && empty_if_zero)
        fputc(',', f);
    else
        fprintf(f, ",%zu", v);
}

static void csv_record(FILE *f, const mpoc_sweep_record *r)
{
    bool tot = is_total(r);
    csv_str(f, r->tensor);
    fprintf(f, ",%s,%zu,%zu", mpoc_sweep_method_name(r->method), r->setting,
            tot ? r->tensor_index : (size_t)1);
    csv_size(f, r->rows, tot);
    csv_size(f, r->cols, tot);
    csv_size(f, tot ? r->set.sites : r->sites, true);
    csv_size(f, r->set.chi, true);
    csv_num(f, r->set.eps > 0.0 ? r->set.eps : (double)NAN);
    fprintf(f, ",%s,", mpoc_quant_name(r->set.quant));
    for (size_t i = 0; !tot && i < r->n_ranks; i++)
        fprintf(f, "%s%zu", i ? "x" : "", r->ranks[i]);
    fprintf(f, ",%llu,%llu,%llu,%llu", (unsigned long long)r->params, (unsigned long long)r->bytes,
            (unsigned long long)r->original_bytes, (unsigned long long)r->elems);
    csv_num(f, r->bits_per_weight);
    csv_num(f, r->compression);
    csv_num(f, r->rel_error);
    csv_num(f, r->rel_error_trunc);
    csv_num(f, r->seconds);
    csv_num(f, r->seconds_factor);
    fprintf(f, ",%s,%s", r->best ? "true" : "false", mpoc_sweep_method_name(r->best_method));
    csv_num(f, r->has_eval ? r->kl_mean : (double)NAN);
    csv_num(f, r->has_eval ? r->kl_max : (double)NAN);
    csv_num(f, r->has_eval ? r->top1 : (double)NAN);
    fputc('\n', f);
}

void cli_sweep_write_record(FILE *f, bool csv, const mpoc_sweep_record *r)
{
    if (csv) {
        csv_record(f, r);
        return;
    }
    json_t *o = sweep_record_json(r);
    char *text = json_dumps(o, JSON_PRESERVE_ORDER | JSON_COMPACT | JSON_REAL_PRECISION(10));
    if (text)
        fprintf(f, "%s\n", text);
    free(text);
    json_decref(o);
}

/* ---------------------------------------------------------------- plots */

typedef struct series_buf {
    char label[96];
    double *x, *y;
    size_t n;
} series_buf;

static int cmp_pt(const void *a, const void *b)
{
    const double *p = a, *q = b;
    return p[0] < q[0] ? -1 : p[0] > q[0] ? 1 : (p[1] < q[1] ? -1 : p[1] > q[1]);
}

/* Sort a series by x (points as (x, y) pairs). */
static void sort_series(series_buf *s)
{
    double *pts = malloc(2 * (s->n ? s->n : 1) * sizeof *pts);
    if (!pts)
        return;
    for (size_t i = 0; i < s->n; i++) {
        pts[2 * i] = s->x[i];
        pts[2 * i + 1] = s->y[i];
    }
    qsort(pts, s->n, 2 * sizeof *pts, cmp_pt);
    for (size_t i = 0; i < s->n; i++) {
        s->x[i] = pts[2 * i];
        s->y[i] = pts[2 * i + 1];
    }
    free(pts);
}

/* The series a record belongs to, by label; created on first use. */
static series_buf *series_for(series_buf *s, size_t *ns, size_t cap, const char *label,
                              size_t max_pts)
{
    for (size_t i = 0; i < *ns; i++)
        if (!strcmp(s[i].label, label))
            return &s[i];
    if (*ns >= cap)
        return NULL;
    series_buf *b = &s[(*ns)++];
    snprintf(b->label, sizeof b->label, "%s", label);
    b->x = calloc(max_pts ? max_pts : 1, sizeof(double));
    b->y = calloc(max_pts ? max_pts : 1, sizeof(double));
    b->n = 0;
    return b->x && b->y ? b : NULL;
}

static void label_of(const mpoc_sweep_record *r, bool multi_sites, char *buf, size_t len)
{
    if (r->method != MPOC_SWEEP_MPO)
        snprintf(buf, len, "%s%s", mpoc_sweep_method_name(r->method),
                 r->method == MPOC_SWEEP_SVD ? " (f16 factors)" : " (dense)");
    else if (multi_sites)
        snprintf(buf, len, "MPO %s, %zu sites", mpoc_quant_name(r->set.quant), r->set.sites);
    else
        snprintf(buf, len, "MPO %s cores", mpoc_quant_name(r->set.quant));
}

/* Plot the records (one tensor, or totals) into `path`. by_chi: error vs χ
 * of the MPO records; else error vs bits per weight with the baselines and
 * the Pareto front. */
int cli_sweep_plot(const char *cmd, const mpoc_sweep_record *recs, size_t n, bool by_chi,
                   const char *title, const char *path, const mpoc_write_policy *pol)
{
    enum { CAP = 64 };
    series_buf s[CAP];
    size_t ns = 0;
    bool multi_sites = false;
    for (size_t i = 1; i < n; i++)
        if (recs[i].set.sites != recs[0].set.sites)
            multi_sites = true;
    for (size_t i = 0; i < n; i++) {
        const mpoc_sweep_record *r = &recs[i];
        if (by_chi && (r->method != MPOC_SWEEP_MPO || r->set.chi == 0))
            continue;
        char label[96];
        label_of(r, multi_sites, label, sizeof label);
        series_buf *b = series_for(s, &ns, CAP, label, n);
        if (!b)
            continue;
        bool dup = false; /* the block baselines repeat at every setting */
        for (size_t k = 0; k < b->n; k++)
            dup |= r->method >= MPOC_SWEEP_Q8_0 && b->x[k] == r->bits_per_weight;
        if (dup)
            continue;
        b->x[b->n] = by_chi ? (double)r->set.chi : r->bits_per_weight;
        b->y[b->n++] = r->rel_error;
    }
    mpoc_plot_series ps[CAP];
    for (size_t i = 0; i < ns; i++) {
        sort_series(&s[i]);
        ps[i] = (mpoc_plot_series){s[i].label, s[i].x, s[i].y, s[i].n};
    }
    mpoc_plot p;
    memset(&p, 0, sizeof p);
    p.title = title;
    p.x_label = by_chi ? "bond dimension chi (max rank per bond)" : "bits per weight (stored bytes x 8 / weights)";
    p.y_label = "relative Frobenius error ||W - W'|| / ||W||";
    p.log_x = true;
    p.log_y = true;
    p.pareto = !by_chi;
    p.series = ps;
    p.n_series = ns;
    mpoc_status st = ns ? mpoc_plot_write(path, &p, pol) : MPOC_E_INVAL;
    for (size_t i = 0; i < ns; i++) {
        free(s[i].x);
        free(s[i].y);
    }
    if (st != MPOC_OK)
        return cli_fail(cmd, st, path);
    return CLI_OK;
}
