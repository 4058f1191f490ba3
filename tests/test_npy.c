/* test_npy.c: .npy reading (hostile input) and atomic writing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "numtest.h"

static char dir[64];

static int setup(void **state)
{
    (void)state;
    strcpy(dir, "/tmp/mpoc-npy-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static const char *path_of(const char *name)
{
    static char buf[128];
    snprintf(buf, sizeof buf, "%s/%s", dir, name);
    return buf;
}

/* A .npy file from a header dict and a payload; `hlen_delta` corrupts the
 * declared header length. */
static void write_npy(const char *name, const char *dict, const void *data, size_t n, int hlen_delta)
{
    size_t dl = strlen(dict), total = (dl + 11 + 63) / 64 * 64;
    unsigned char head[512];
    memcpy(head, "\x93NUMPY\x01\x00", 8);
    size_t hl = total - 10 + (size_t)hlen_delta;
    head[8] = (unsigned char)(hl & 0xff);
    head[9] = (unsigned char)(hl >> 8);
    memcpy(head + 10, dict, dl);
    memset(head + 10 + dl, ' ', total - 11 - dl);
    head[total - 1] = '\n';
    FILE *f = fopen(path_of(name), "wb");
    assert_non_null(f);
    fwrite(head, 1, total, f);
    if (n)
        fwrite(data, 1, n, f);
    fclose(f);
}

static void test_round_trip(void **state)
{
    (void)state;
    mpoc_mat a = nt_gaussian(7, 5, 1), b;
    NT_ASSERT_OK(mpoc_npy_write(path_of("a.npy"), mpoc_mat_view_of(&a), NULL));
    NT_ASSERT_OK(mpoc_npy_read(path_of("a.npy"), &b));
    assert_int_equal(b.rows, 7);
    assert_int_equal(b.cols, 5);
    assert_memory_equal(a.data, b.data, 35 * sizeof(float));
    /* no overwrite unless asked, never over an input */
    assert_int_equal(mpoc_npy_write(path_of("a.npy"), mpoc_mat_view_of(&a), NULL), MPOC_E_EXISTS);
    const char *inputs[1] = {path_of("a.npy")};
    char keep[128];
    strcpy(keep, inputs[0]);
    inputs[0] = keep;
    mpoc_write_policy pol = {true, inputs, 1};
    assert_int_equal(mpoc_npy_write(keep, mpoc_mat_view_of(&a), &pol), MPOC_E_EXISTS);
    pol.n_inputs = 0;
    NT_ASSERT_OK(mpoc_npy_write(keep, mpoc_mat_view_of(&a), &pol));
    mpoc_mat_free(&a), mpoc_mat_free(&b);
}

static void test_dtypes(void **state)
{
    (void)state;
    double d[6] = {1, -2, 3.5, 0, 1e-3, 7};
    write_npy("f8.npy", "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }", d, sizeof d, 0);
    mpoc_mat m;
    NT_ASSERT_OK(mpoc_npy_read(path_of("f8.npy"), &m));
    for (int i = 0; i < 6; i++)
        assert_true(m.data[i] == (float)d[i]);
    mpoc_mat_free(&m);
    unsigned short h[3] = {0x3c00, 0xc000, 0x3800}; /* 1, -2, 0.5 */
    write_npy("f2.npy", "{'shape': (3,), 'fortran_order': False, 'descr': '<f2'}", h, sizeof h, 0);
    NT_ASSERT_OK(mpoc_npy_read(path_of("f2.npy"), &m));
    assert_int_equal(m.rows, 1);
    assert_true(m.data[0] == 1.0f && m.data[1] == -2.0f && m.data[2] == 0.5f);
    mpoc_mat_free(&m);
}

static void test_malformed(void **state)
{
    (void)state;
    float f[4] = {1, 2, 3, 4};
    struct { const char *dict; size_t n; int delta; mpoc_status want; } cases[] = {
        {"{'descr': '<i4', 'fortran_order': False, 'shape': (2, 2), }", 16, 0, MPOC_E_UNSUPPORTED},
        {"{'descr': '>f4', 'fortran_order': False, 'shape': (2, 2), }", 16, 0, MPOC_E_UNSUPPORTED},
        {"{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", 16, 0, MPOC_E_UNSUPPORTED},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2, 1), }", 16, 0, MPOC_E_UNSUPPORTED},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 16, 0, MPOC_E_FORMAT},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }", 12, 0, MPOC_E_FORMAT},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999, 99999999999), }", 16, 0,
         MPOC_E_OVERFLOW},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), 'x': 1}", 16, 0, MPOC_E_FORMAT},
        {"{'descr': '<f4', 'fortran_order': False}", 16, 0, MPOC_E_FORMAT},
        {"{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2, 2)}", 16, 0, MPOC_E_FORMAT},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }", 16, 4000, MPOC_E_FORMAT},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (0, 2), }", 0, 0, MPOC_E_SHAPE},
        {"['descr']", 16, 0, MPOC_E_FORMAT},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_npy("bad.npy", cases[i].dict, f, cases[i].n, cases[i].delta);
        mpoc_mat m;
        assert_int_equal(mpoc_npy_read(path_of("bad.npy"), &m), cases[i].want);
        assert_null(m.data);
    }
    FILE *fp = fopen(path_of("magic.npy"), "wb");
    fputs("NOTNUMPY", fp);
    fclose(fp);
    mpoc_mat m;
    assert_int_equal(mpoc_npy_read(path_of("magic.npy"), &m), MPOC_E_FORMAT);
    assert_int_equal(mpoc_npy_read(path_of("missing.npy"), &m), MPOC_E_NOTFOUND);
    /* a FIFO is refused at once, not waited on (alarm: a hang fails) */
    assert_int_equal(mkfifo(path_of("fifo.npy"), 0600), 0);
    alarm(20);
    assert_int_equal(mpoc_npy_read(path_of("fifo.npy"), &m), MPOC_E_IO);
    alarm(0);
    /* every prefix of a valid file is rejected, never over-read */
    write_npy("ok.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }", f, 16, 0);
    FILE *src = fopen(path_of("ok.npy"), "rb");
    unsigned char all[128];
    size_t len = fread(all, 1, sizeof all, src);
    fclose(src);
    for (size_t cut = 1; cut < len; cut++) {
        FILE *t = fopen(path_of("cut.npy"), "wb");
        fwrite(all, 1, cut, t);
        fclose(t);
        assert_int_not_equal(mpoc_npy_read(path_of("cut.npy"), &m), MPOC_OK);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_dtypes),
        cmocka_unit_test(test_malformed),
    };
    return cmocka_run_group_tests_name("npy", tests, setup, teardown);
}
