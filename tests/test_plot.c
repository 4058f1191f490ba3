/* test_plot.c: SVG plots are well-formed XML with one path per series,
 * escaped text, log axes and a Pareto front that is really the front. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "numtest.h"

static size_t count(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

static void test_series_and_legend(void **state)
{
    (void)state;
    double x[4] = {2, 4, 8, 16}, y1[4] = {0.5, 0.3, 0.2, 0.1}, y2[4] = {0.6, 0.2, 0.05, 0.04};
    double y3[4] = {NAN, 0.4, -1, 0.3}; /* NaN and a non-positive value on a log axis: skipped */
    mpoc_plot_series s[3] = {{"mpo <q8_0>", x, y1, 4}, {"svd & f16", x, y2, 4}, {"q4_0", x, y3, 4}};
    mpoc_plot p = {"error vs size", "bits per weight", "relative error", true, true, true, s, 3, 0, 0};
    char *svg;
    NT_ASSERT_OK(mpoc_plot_svg(&p, &svg));
    assert_int_equal(count(svg, "<path"), 3);
    assert_int_equal(count(svg, "<polyline"), 1);
    assert_non_null(strstr(svg, "mpo &lt;q8_0&gt;"));
    assert_non_null(strstr(svg, "svd &amp; f16"));
    assert_null(strstr(svg, "nan"));
    assert_int_equal(count(svg, "<circle"), 4 + 4 + 2);
    assert_non_null(strstr(svg, "(log scale)"));
    /* the front holds (2, .5), (4, .2), (8, .05), (16, .04): four points */
    const char *front = strstr(svg, "<polyline");
    const char *pts = strstr(front, "points=\"") + 8;
    size_t commas = 0;
    for (const char *c = pts; *c != '"'; c++)
        commas += *c == ',';
    assert_int_equal(commas, 4);
    free(svg);
}

static void test_rejects_empty_and_writes_valid_xml(void **state)
{
    (void)state;
    double x[1] = {NAN}, y[1] = {1};
    mpoc_plot_series s = {"none", x, y, 1};
    mpoc_plot p = {NULL, "x", "y", false, false, false, &s, 1, 0, 0};
    char *svg;
    assert_int_equal(mpoc_plot_svg(&p, &svg), MPOC_E_INVAL);
    double x2[3] = {1, 2, 3}, y2[3] = {5, 5, 5}; /* a flat line still gets a range */
    mpoc_plot_series s2 = {"flat", x2, y2, 3};
    mpoc_plot p2 = {"t", "x [units]", "y", false, false, false, &s2, 1, 0, 0};
    char path[] = "/tmp/mpoc-plot-XXXXXX.svg";
    int fd = mkstemps(path, 4);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(mpoc_plot_write(path, &p2, NULL), MPOC_E_EXISTS);
    mpoc_write_policy pol = {true, NULL, 0};
    NT_ASSERT_OK(mpoc_plot_write(path, &p2, &pol));
    if (access("/usr/bin/python3", X_OK) == 0) {
        char cmd[256];
        snprintf(cmd, sizeof cmd,
                 "/usr/bin/python3 -c \"import sys,xml.etree.ElementTree as E; r=E.parse(sys.argv[1]).getroot();"
                 " n=[e for e in r.iter() if e.tag.endswith('path')]; sys.exit(0 if len(n)==1 else 1)\" %s",
                 path);
        assert_int_equal(system(cmd), 0);
    }
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_series_and_legend),
        cmocka_unit_test(test_rejects_empty_and_writes_valid_xml),
    };
    return cmocka_run_group_tests_name("plot", tests, NULL, NULL);
}
