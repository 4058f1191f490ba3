/* npy.c: .npy matrices (numpy format 1.0–3.0), read hostile-safe and written
 * atomically.
 *
 * Layout: "\x93NUMPY", major, minor, header length (u16 for 1.x, u32 for
 * 2.x/3.x), an ASCII Python dict literal {'descr': '<f4', 'fortran_order':
 * False, 'shape': (R, C), } padded with spaces and a final '\n', then the
 * data in C order. We accept exactly that dict (keys in any order) and
 * little-endian float16/32/64; the data must fill the rest of the file. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bytes.h"
#include "fileio.h"
#include "internal.h"
#include "mpoc_dtype.h"
#include "mpoc_io.h"
#include "util.h"

#define NPY_MAX_HEADER 65536 /* numpy itself refuses headers above 10 kB */

typedef struct npy_header {
    mpoc_dtype dtype;
    size_t item;
    bool have_descr, have_order, have_shape;
    bool fortran;
    size_t ndim;
    uint64_t dims[2];
} npy_header;

/* A tiny scanner over the dict literal. */
typedef struct scan {
    const char *p, *end;
} scan;

static void skip_ws(scan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

static bool eat(scan *s, char c)
{
    skip_ws(s);
    if (s->p < s->end && *s->p == c) {
        s->p++;
        return true;
    }
    return false;
}

/* A quoted string ('...' or "..."), without escapes. */
static bool quoted(scan *s, const char **str, size_t *len)
{
    skip_ws(s);
    if (s->p >= s->end || (*s->p != '\'' && *s->p != '"'))
        return false;
    char q = *s->p++;
    const char *start = s->p;
    while (s->p < s->end && *s->p != q)
        if (*s->p++ == '\\')
            return false;
    if (s->p >= s->end)
        return false;
    *str = start;
    *len = (size_t)(s->p - start);
    s->p++;
    return true;
}

static bool word(scan *s, const char *w)
{
    skip_ws(s);
    size_t n = strlen(w);
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, w, n) != 0)
        return false;
    s->p += n;
    return true;
}

static bool number(scan *s, uint64_t *v)
{
    skip_ws(s);
    if (s->p >= s->end || !isdigit((unsigned char)*s->p))
        return false;
    uint64_t x = 0;
    while (s->p < s->end && isdigit((unsigned char)*s->p)) {
        if (!mpoc_mul_u64(x, 10, &x) || !mpoc_add_u64(x, (uint64_t)(*s->p - '0'), &x))
            return false;
        s->p++;
    }
    s->p += (s->p < s->end && *s->p == 'L'); /* Python 2 longs */
    *v = x;
    return true;
}

static mpoc_status parse_descr(const char *path, const char *d, size_t n, npy_header *h)
{
    static const struct { const char *descr; mpoc_dtype dtype; size_t item; } known[] = {
        {"<f4", MPOC_DTYPE_F32, 4}, {"<f8", MPOC_DTYPE_F64, 8}, {"<f2", MPOC_DTYPE_F16, 2},
    };
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (n == 3 && !memcmp(d, known[i].descr, 3)) {
            h->dtype = known[i].dtype;
            h->item = known[i].item;
            return MPOC_OK;
        }
    if (n == 3 && d[0] == '>')
        MPOC_FAIL(MPOC_E_UNSUPPORTED, "'%s': big-endian data ('%.3s') is not supported; save it "
                  "little-endian", path, d);
    MPOC_FAIL(MPOC_E_UNSUPPORTED, "'%s': dtype '%.*s' is not supported (float32, float64 or "
              "float16 only)", path, (int)(n > 32 ? 32 : n), d);
}

static mpoc_status parse_shape(const char *path, scan *s, npy_header *h)
{
    if (!eat(s, '('))
        MPOC_FAIL(MPOC_E_FORMAT, "'%s': header 'shape' is not a tuple", path);
    h->ndim = 0;
    while (!eat(s, ')')) {
        if (h->ndim == 2)
            MPOC_FAIL(MPOC_E_UNSUPPORTED, "'%s': more than 2 dimensions; mpoc factors matrices", path);
        if (!number(s, &h->dims[h->ndim]))
            MPOC_FAIL(MPOC_E_FORMAT, "'%s': header 'shape' holds a non-integer", path);
        h->ndim++;
        if (!eat(s, ',')) {
            if (!eat(s, ')'))
                MPOC_FAIL(MPOC_E_FORMAT, "'%s': header 'shape' tuple is not closed", path);
            break;
        }
    }
    h->have_shape = true;
    return MPOC_OK;
}

static mpoc_status parse_entry(const char *path, scan *s, npy_header *h)
{
    const char *key, *val;
    size_t klen, vlen;
    if (!quoted(s, &key, &klen) || !eat(s, ':'))
        MPOC_FAIL(MPOC_E_FORMAT, "'%s': header dict key is not a quoted string", path);
    if (klen == 5 && !memcmp(key, "descr", 5)) {
        if (h->have_descr || !quoted(s, &val, &vlen))
            MPOC_FAIL(MPOC_E_FORMAT, "'%s': header 'descr' is repeated or not a string "
                      "(structured dtypes are not supported)", path);
        h->have_descr = true;
        return parse_descr(path, val, vlen, h);
    }
    if (klen == 13 && !memcmp(key, "fortran_order", 13)) {
        if (h->have_order)
            MPOC_FAIL(MPOC_E_FORMAT, "'%s': header 'fortran_order' is repeated", path);
        h->have_order = true;
        if (word(s, "True"))
            h->fortran = true;
        else if (!word(s, "False"))
            MPOC_FAIL(MPOC_E_FORMAT, "'%s': header 'fortran_order' is not True or False", path);
        return MPOC_OK;
    }
    if (klen == 5 && !memcmp(key, "shape", 5)) {
        if (h->have_shape)
            MPOC_FAIL(MPOC_E_FORMAT, "'%s': header 'shape' is repeated", path);
        return parse_shape(path, s, h);
    }
    MPOC_FAIL(MPOC_E_FORMAT, "'%s': unexpected header key '%.*s'", path, (int)(klen > 32 ? 32 : klen), key);
}

static mpoc_status parse_dict(const char *path, const char *text, size_t len, npy_header *h)
{
    scan s = {text, text + len};
    memset(h, 0, sizeof *h);
    if (!eat(&s, '{'))
        MPOC_FAIL(MPOC_E_FORMAT, "'%s': header is not a dict literal", path);
    while (!eat(&s, '}')) {
        MPOC_TRY(parse_entry(path, &s, h));
        if (!eat(&s, ',')) {
            if (!eat(&s, '}'))
                MPOC_FAIL(MPOC_E_FORMAT, "'%s': header dict is not closed", path);
            break;
        }
    }
    skip_ws(&s);
    if (s.p != s.end)
        MPOC_FAIL(MPOC_E_FORMAT, "'%s': bytes after the header dict", path);
    if (!h->have_descr || !h->have_order || !h->have_shape)
        MPOC_FAIL(MPOC_E_FORMAT, "'%s': header lacks 'descr', 'fortran_order' or 'shape'", path);
    if (h->fortran && h->ndim == 2 && h->dims[0] > 1 && h->dims[1] > 1)
        MPOC_FAIL(MPOC_E_UNSUPPORTED, "'%s': Fortran-order arrays are not supported; save with "
                  "numpy.ascontiguousarray", path);
    if (h->ndim == 0)
        MPOC_FAIL(MPOC_E_UNSUPPORTED, "'%s': a 0-d array is not a matrix", path);
    return MPOC_OK;
}

/* Magic, version and header of a mapped file; *data_off is where data starts. */
static mpoc_status parse_preamble(const char *path, const uint8_t *buf, uint64_t size, npy_header *h,
                                  uint64_t *data_off)
{
    mpoc_cursor c = mpoc_cursor_make(buf, size);
    const uint8_t *magic;
    uint8_t major, minor;
    if (!mpoc_cursor_take(&c, 6, &magic) || memcmp(magic, "\x93NUMPY", 6) != 0)
        MPOC_FAIL(MPOC_E_FORMAT, "'%s': not a .npy file (bad magic)", path);
    if (!mpoc_cursor_u8(&c, &major) || !mpoc_cursor_u8(&c, &minor) || major < 1 || major > 3)
        MPOC_FAIL(MPOC_E_UNSUPPORTED, "'%s': .npy format version %u.%u is not supported", path,
                  (unsigned)major, (unsigned)minor);
    uint32_t hlen = 0;
    uint16_t h16;
    bool ok = major == 1 ? mpoc_cursor_u16(&c, &h16) : mpoc_cursor_u32(&c, &hlen);
    if (major == 1)
        hlen = h16;
    if (!ok)
        MPOC_FAIL(MPOC_E_FORMAT, "'%s': truncated before the header length", path);
    if (hlen > NPY_MAX_HEADER)
        MPOC_FAIL(MPOC_E_FORMAT, "'%s': header of %u bytes exceeds the %d-byte limit", path,
                  (unsigned)hlen, NPY_MAX_HEADER);
    const uint8_t *text;
    if (!mpoc_cursor_take(&c, hlen, &text))
        MPOC_FAIL(MPOC_E_FORMAT, "'%s': header of %u bytes runs past the end of the file", path,
                  (unsigned)hlen);
    for (uint32_t i = 0; i < hlen; i++)
        if (text[i] == 0 || text[i] > 127)
            MPOC_FAIL(MPOC_E_FORMAT, "'%s': header byte %u is not printable ASCII", path, (unsigned)i);
    MPOC_TRY(parse_dict(path, (const char *)text, hlen, h));
    *data_off = c.pos;
    return MPOC_OK;
}

static mpoc_status convert_data(const char *path, const npy_header *h, const uint8_t *src, mpoc_mat *out)
{
    size_t rows = h->ndim == 2 ? (size_t)h->dims[0] : 1;
    size_t cols = h->ndim == 2 ? (size_t)h->dims[1] : (size_t)h->dims[0];
    if (rows == 0 || cols == 0)
        MPOC_FAIL(MPOC_E_SHAPE, "'%s': empty array (%zu x %zu)", path, rows, cols);
    MPOC_TRY(mpoc_mat_alloc(out, rows, cols));
    mpoc_status st = mpoc_dtype_to_f32(h->dtype, src, rows * cols, out->data);
    if (st != MPOC_OK)
        mpoc_mat_free(out);
    return st;
}

mpoc_status mpoc_npy_read(const char *path, mpoc_mat *out)
{
    memset(out, 0, sizeof *out);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY); /* FIFO: no blocking */
    if (fd < 0)
        MPOC_FAIL(errno == ENOENT ? MPOC_E_NOTFOUND : MPOC_E_IO, "'%s': cannot open: %s", path,
                  strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        MPOC_FAIL(MPOC_E_IO, "'%s': not a regular file", path);
    }
    uint64_t size = (uint64_t)st.st_size;
    void *map = size ? mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0) : MAP_FAILED;
    close(fd);
    if (map == MAP_FAILED)
        MPOC_FAIL(size ? MPOC_E_IO : MPOC_E_FORMAT, "'%s': %s", path,
                  size ? "cannot map the file" : "empty file");
    npy_header h;
    uint64_t off = 0, elems = 0, bytes = 0;
    mpoc_status s = parse_preamble(path, map, size, &h, &off);
    if (s == MPOC_OK && (!mpoc_product_u64(h.dims, h.ndim, &elems) || !mpoc_mul_u64(elems, h.item, &bytes)))
        s = MPOC_E_OVERFLOW, mpoc_log_("'%s': shape product overflows", path);
    if (s == MPOC_OK && bytes != size - off) {
        mpoc_log_("'%s': shape needs %llu data bytes but the file holds %llu", path,
                  (unsigned long long)bytes, (unsigned long long)(size - off));
        s = MPOC_E_FORMAT;
    }
    if (s == MPOC_OK && elems > SIZE_MAX / sizeof(float))
        s = MPOC_E_OVERFLOW;
    if (s == MPOC_OK)
        s = convert_data(path, &h, (const uint8_t *)map + off, out);
    munmap(map, size);
    return s;
}

mpoc_status mpoc_npy_write(const char *path, mpoc_mat_view m, const mpoc_write_policy *policy)
{
    if (!m.data || m.rows == 0 || m.cols == 0 || m.ld < m.cols)
        MPOC_FAIL(MPOC_E_SHAPE, "'%s': nothing to write (%zu x %zu)", path, m.rows, m.cols);
    char dict[160];
    int n = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (%zu, %zu), }",
                     m.rows, m.cols);
    /* 10-byte preamble + dict + spaces + '\n' is a multiple of 64 (numpy ≥ 1.9) */
    size_t total = ((size_t)n + 11 + 63) / 64 * 64;
    uint8_t head[256];
    memcpy(head, "\x93NUMPY\x01\x00", 8);
    mpoc_store_le16(head + 8, (uint16_t)(total - 10));
    memcpy(head + 10, dict, (size_t)n);
    memset(head + 10 + n, ' ', total - 10 - (size_t)n - 1);
    head[total - 1] = '\n';
    mpoc_outfile f;
    MPOC_TRY(mpoc_out_open(path, policy, &f));
    mpoc_status st = mpoc_out_write(&f, head, total);
    for (size_t i = 0; st == MPOC_OK && i < m.rows; i++)
        st = mpoc_out_write(&f, m.data + i * m.ld, m.cols * sizeof(float));
    if (st == MPOC_OK)
        return mpoc_out_commit(&f);
    mpoc_out_abort(&f);
    return st;
}
