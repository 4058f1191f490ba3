/* plot.c: SVG line plots (see mpoc_plot.h). Pure text generation plus one
 * atomic write; no numeric or model module involved. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"
#include "internal.h"
#include "mpoc_plot.h"

/* ------------------------------------------------------------ text buffer */

typedef struct sbuf {
    char *p;
    size_t len, cap;
    bool oom;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sb_printf(sbuf *b, const char *fmt, ...)
{
    if (b->oom)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = true;
            return;
        }
        if (b->p && b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = (b->cap ? b->cap * 2 : 4096) + (size_t)n;
        char *np = realloc(b->p, cap);
        if (!np) {
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
}

/* Text content with XML's five special characters escaped. */
static void sb_text(sbuf *b, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '&': sb_printf(b, "&amp;"); break;
        case '<': sb_printf(b, "&lt;"); break;
        case '>': sb_printf(b, "&gt;"); break;
        case '"': sb_printf(b, "&quot;"); break;
        case '\'': sb_printf(b, "&apos;"); break;
        default:
            if ((unsigned char)*s >= 0x20 || *s == '\t')
                sb_printf(b, "%c", *s);
        }
    }
}

/* ------------------------------------------------------------------ axes */

typedef struct axis {
    bool log;
    double lo, hi;       /* data range in axis units (log10 for log axes) */
    double px0, px1;     /* pixel range */
} axis;

static bool usable(const axis *a, double v)
{
    return isfinite(v) && (!a->log || v > 0.0);
}

static double to_px(const axis *a, double v)
{
    double u = a->log ? log10(v) : v;
    return a->px0 + (u - a->lo) / (a->hi - a->lo) * (a->px1 - a->px0);
}

/* Range of all usable values, padded a little; false when there are none. */
static bool data_range(const mpoc_plot *p, bool for_x, axis *a)
{
    double lo = INFINITY, hi = -INFINITY;
    for (size_t s = 0; s < p->n_series; s++)
        for (size_t i = 0; i < p->series[s].n; i++) {
            double v = for_x ? p->series[s].x[i] : p->series[s].y[i];
            double other = for_x ? p->series[s].y[i] : p->series[s].x[i];
            axis other_axis = {for_x ? p->log_y : p->log_x, 0, 0, 0, 0};
            if (!usable(a, v) || !usable(&other_axis, other))
                continue;
            double u = a->log ? log10(v) : v;
            lo = u < lo ? u : lo;
            hi = u > hi ? u : hi;
        }
    if (!(lo <= hi))
        return false;
    double span = hi - lo;
    if (span == 0.0)
        span = a->log ? 1.0 : (fabs(lo) > 0 ? fabs(lo) : 1.0);
    a->lo = lo - 0.05 * span;
    a->hi = hi + 0.05 * span;
    return true;
}

/* 1, 2 or 5 times a power of ten, near span/5. */
static double nice_step(double span)
{
    double raw = span / 5.0, p = pow(10.0, floor(log10(raw))), f = raw / p;
    return (f < 1.5 ? 1.0 : f < 3.5 ? 2.0 : f < 7.5 ? 5.0 : 10.0) * p;
}

static void tick(sbuf *b, const axis *a, bool is_x, double v, const axis *other)
{
    double px = to_px(a, v);
    char label[32];
    snprintf(label, sizeof label, "%g", v);
    if (is_x) {
        sb_printf(b, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"#ddd\"/>\n", px,
                  other->px0, px, other->px1);
        sb_printf(b, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\" font-size=\"11\">%s</text>\n",
                  px, other->px0 + 16, label);
    } else {
        sb_printf(b, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"#ddd\"/>\n",
                  other->px0, px, other->px1, px);
        sb_printf(b, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"end\" font-size=\"11\">%s</text>\n",
                  other->px0 - 6, px + 4, label);
    }
}

static void ticks(sbuf *b, const axis *a, bool is_x, const axis *other)
{
    if (a->log) {
        int d0 = (int)floor(a->lo), d1 = (int)ceil(a->hi);
        bool few = d1 - d0 <= 2; /* a narrow range also gets 2 and 5 */
        for (int d = d0; d <= d1; d++)
            for (int m = 1; m <= 5; m += (m == 1 ? 1 : 3)) {
                if (m > 1 && !few)
                    continue;
                double v = m * pow(10.0, d), u = log10(v);
                if (u >= a->lo && u <= a->hi)
                    tick(b, a, is_x, v, other);
            }
        return;
    }
    double step = nice_step(a->hi - a->lo);
    for (double v = ceil(a->lo / step) * step; v <= a->hi + 1e-9 * step; v += step)
        tick(b, a, is_x, fabs(v) < 1e-12 * step ? 0.0 : v, other);
}

/* ---------------------------------------------------------------- series */

static const char *const palette[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                                      "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

static void draw_series(sbuf *b, const mpoc_plot_series *s, const char *color, const axis *ax,
                        const axis *ay)
{
    sb_printf(b, "<path fill=\"none\" stroke=\"%s\" stroke-width=\"1.8\" d=\"", color);
    bool first = true;
    for (size_t i = 0; i < s->n; i++) {
        if (!usable(ax, s->x[i]) || !usable(ay, s->y[i]))
            continue;
        sb_printf(b, "%s%.2f %.2f", first ? "M" : " L", to_px(ax, s->x[i]), to_px(ay, s->y[i]));
        first = false;
    }
    sb_printf(b, "\"><title>");
    sb_text(b, s->label);
    sb_printf(b, "</title></path>\n");
    for (size_t i = 0; i < s->n; i++)
        if (usable(ax, s->x[i]) && usable(ay, s->y[i]))
            sb_printf(b, "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"3\" fill=\"%s\"/>\n", to_px(ax, s->x[i]),
                      to_px(ay, s->y[i]), color);
}

typedef struct point {
    double x, y;
} point;

static int by_x_then_y(const void *a, const void *b)
{
    const point *p = a, *q = b;
    if (p->x != q->x)
        return p->x < q->x ? -1 : 1;
    return (p->y > q->y) - (p->y < q->y);
}

/* The Pareto front: points no other point beats in both x and y. */
static void draw_pareto(sbuf *b, const mpoc_plot *p, const axis *ax, const axis *ay)
{
    size_t n = 0;
    for (size_t s = 0; s < p->n_series; s++)
        n += p->series[s].n;
    point *pts = malloc((n ? n : 1) * sizeof *pts);
    if (!pts) {
        b->oom = true;
        return;
    }
    size_t k = 0;
    for (size_t s = 0; s < p->n_series; s++)
        for (size_t i = 0; i < p->series[s].n; i++)
            if (usable(ax, p->series[s].x[i]) && usable(ay, p->series[s].y[i]))
                pts[k++] = (point){p->series[s].x[i], p->series[s].y[i]};
    qsort(pts, k, sizeof *pts, by_x_then_y);
    sb_printf(b, "<polyline fill=\"none\" stroke=\"#000\" stroke-width=\"1\" stroke-dasharray=\"5 4\" "
                 "points=\"");
    double best = INFINITY;
    for (size_t i = 0; i < k; i++)
        if (pts[i].y < best) {
            best = pts[i].y;
            sb_printf(b, "%.2f,%.2f ", to_px(ax, pts[i].x), to_px(ay, pts[i].y));
        }
    sb_printf(b, "\"><title>Pareto front</title></polyline>\n");
    free(pts);
}

static void legend(sbuf *b, const mpoc_plot *p, double x, double y)
{
    size_t rows = p->n_series + (p->pareto ? 1 : 0);
    for (size_t s = 0; s < rows; s++) {
        double yy = y + 18.0 * (double)s;
        bool front = s == p->n_series;
        sb_printf(b, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"%s\" "
                     "stroke-width=\"2\"%s/>\n",
                  x, yy, x + 22, yy, front ? "#000" : palette[s % 10],
                  front ? " stroke-dasharray=\"5 4\"" : "");
        sb_printf(b, "<text x=\"%.2f\" y=\"%.2f\" font-size=\"12\">", x + 28, yy + 4);
        sb_text(b, front ? "Pareto front" : p->series[s].label);
        sb_printf(b, "</text>\n");
    }
}

static void frame(sbuf *b, const mpoc_plot *p, const axis *ax, const axis *ay, unsigned w, unsigned h)
{
    sb_printf(b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                 "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%u\" height=\"%u\" "
                 "viewBox=\"0 0 %u %u\" font-family=\"sans-serif\">\n"
                 "<rect width=\"100%%\" height=\"100%%\" fill=\"#fff\"/>\n",
              w, h, w, h);
    if (p->title) {
        sb_printf(b, "<text x=\"%.2f\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">",
                  (ax->px0 + ax->px1) / 2);
        sb_text(b, p->title);
        sb_printf(b, "</text>\n");
    }
    ticks(b, ax, true, ay);
    ticks(b, ay, false, ax);
    sb_printf(b, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"none\" "
                 "stroke=\"#333\"/>\n",
              ax->px0, ay->px1, ax->px1 - ax->px0, ay->px0 - ay->px1);
    sb_printf(b, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\" font-size=\"13\">",
              (ax->px0 + ax->px1) / 2, (double)h - 14);
    sb_text(b, p->x_label);
    sb_printf(b, "%s</text>\n", p->log_x ? " (log scale)" : "");
    sb_printf(b, "<text transform=\"translate(18 %.2f) rotate(-90)\" text-anchor=\"middle\" "
                 "font-size=\"13\">",
              (ay->px0 + ay->px1) / 2);
    sb_text(b, p->y_label);
    sb_printf(b, "%s</text>\n", p->log_y ? " (log scale)" : "");
}

mpoc_status mpoc_plot_svg(const mpoc_plot *p, char **out)
{
    *out = NULL;
    unsigned w = p->width ? p->width : 720, h = p->height ? p->height : 480;
    if (w < 300 || h < 200 || w > 10000 || h > 10000)
        MPOC_FAIL(MPOC_E_INVAL, "plot size %u x %u is outside 300x200 .. 10000x10000", w, h);
    axis ax = {p->log_x, 0, 0, 80.0, (double)w - 190.0};
    axis ay = {p->log_y, 0, 0, (double)h - 60.0, 40.0};
    if (!p->series || !data_range(p, true, &ax) || !data_range(p, false, &ay))
        MPOC_FAIL(MPOC_E_INVAL, "plot '%s': no plottable points", p->title ? p->title : "");
    sbuf b = {0};
    frame(&b, p, &ax, &ay, w, h);
    for (size_t s = 0; s < p->n_series; s++)
        draw_series(&b, &p->series[s], palette[s % 10], &ax, &ay);
    if (p->pareto)
        draw_pareto(&b, p, &ax, &ay);
    legend(&b, p, (double)w - 180.0, 50.0);
    sb_printf(&b, "</svg>\n");
    if (b.oom) {
        free(b.p);
        return MPOC_E_NOMEM;
    }
    *out = b.p;
    return MPOC_OK;
}

mpoc_status mpoc_plot_write(const char *path, const mpoc_plot *plot, const mpoc_write_policy *policy)
{
    char *svg;
    MPOC_TRY(mpoc_plot_svg(plot, &svg));
    mpoc_outfile f;
    mpoc_status st = mpoc_out_open(path, policy, &f);
    if (st == MPOC_OK) {
        st = mpoc_out_write(&f, svg, strlen(svg));
        st = st == MPOC_OK ? mpoc_out_commit(&f) : (mpoc_out_abort(&f), st);
    }
    free(svg);
    return st;
}
