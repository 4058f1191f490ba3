/* mpoc_plot.h: SVG line plots written by mpoc itself (no plotting program
 * needed), for sweeps and benchmarks: axes with ticks and units, linear or
 * log scales, one <path> per series with point markers, a legend, and an
 * optional Pareto front (the lower-left envelope of all points) drawn as a
 * dashed <polyline>. Output is deterministic for the same input. */
#ifndef MPOC_PLOT_H
#define MPOC_PLOT_H

#include <stdbool.h>
#include <stddef.h>

#include "mpoc_io.h"
#include "mpoc_status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mpoc_plot_series {
    const char *label;      /* legend text (borrowed) */
    const double *x, *y;    /* n points (borrowed); non-finite points are skipped */
    size_t n;
} mpoc_plot_series;

typedef struct mpoc_plot {
    const char *title;      /* may be NULL */
    const char *x_label;    /* with units, e.g. "bits per weight" */
    const char *y_label;    /* e.g. "relative Frobenius error" */
    bool log_x, log_y;      /* log axes need positive values; others are skipped */
    bool pareto;            /* mark the front: minimal y for x not larger, over all series */
    const mpoc_plot_series *series;
    size_t n_series;
    unsigned width, height; /* pixels; 0 = 720 × 480 */
} mpoc_plot;

/* The SVG document as a new NUL-terminated string (free with free()).
 * MPOC_E_INVAL when there is nothing plottable. */
mpoc_status mpoc_plot_svg(const mpoc_plot *plot, char **out);

/* Write the SVG atomically under `policy` (NULL: no overwrite). */
mpoc_status mpoc_plot_write(const char *path, const mpoc_plot *plot, const mpoc_write_policy *policy);

#ifdef __cplusplus
}
#endif
#endif
