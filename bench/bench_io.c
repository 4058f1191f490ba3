/* bench_io.c: model read throughput (issue 3). Large synthetic files (F32
 * and BF16 safetensors, Q4_K GGUF) are written once into a temporary folder
 * with the model writer; reading them (every byte of every tensor through
 * the mapping) and converting them to float32 are compared with the memcpy
 * bandwidth measured in the same run. The folder is removed at the end. */
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

#define Q4_K_BLOCK_ELEMS 256
#define Q4_K_BLOCK_BYTES 144


/* ---- temporary folder --------------------------------------------------- */

enum { N_FILES = 3 };
static char tmp_dir[64];
static char tmp_paths[N_FILES][128];

static void remove_tmp(void)
{
    for (size_t i = 0; i < N_FILES; i++)
        if (tmp_paths[i][0]) {
            unlink(tmp_paths[i]);
            tmp_paths[i][0] = '\0';
        }
    if (tmp_dir[0]) {
        rmdir(tmp_dir);
        tmp_dir[0] = '\0';
    }
}

/* ---- memory bandwidth --------------------------------------------------- */

typedef struct copy_job {
    void *dst;
    const void *src;
    size_t n;
} copy_job;

static mpoc_status run_copy(void *arg)
{
    copy_job *j = arg;
    memcpy(j->dst, j->src, j->n);
    return MPOC_OK;
}

/* ---- synthetic files ---------------------------------------------------- */

/* One Q4_K block with valid random content: f16 d and dmin (small positive
 * normals), 12 bytes of packed 6-bit scales and mins (any bytes are valid),
 * 128 bytes of nibbles. */
static void q4_k_block(uint8_t *blk, uint64_t *state)
{
    uint64_t s = *state;
    uint8_t raw[Q4_K_BLOCK_BYTES];
    for (size_t i = 0; i < sizeof raw; i += 8) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        memcpy(raw + i, &s, 8);
    }
    *state = s;
    float d = 1e-4f * (1.0f + (float)raw[0] / 255.0f), dmin = 1e-3f * (float)raw[1] / 255.0f;
    uint16_t hd = mpoc_f32_to_f16(d), hm = mpoc_f32_to_f16(dmin);
    blk[0] = (uint8_t)(hd & 0xFF);
    blk[1] = (uint8_t)(hd >> 8);
    blk[2] = (uint8_t)(hm & 0xFF);
    blk[3] = (uint8_t)(hm >> 8);
    memcpy(blk + 4, raw + 4, Q4_K_BLOCK_BYTES - 4);
}

typedef struct file_spec {
    const char *label;     /* "F32 safetensors" */
    const char *name;      /* file name in the temporary folder */
    mpoc_format format;
    mpoc_dtype dtype;
    uint64_t rows, cols;   /* each tensor */
} file_spec;

/* Write ceil(target / tensor bytes) tensors of spec through the writer. */
static mpoc_status write_file(const file_spec *f, const char *path, uint64_t target,
                              uint64_t *file_bytes, size_t *n_tensors)
{
    uint64_t elems = f->rows * f->cols, tbytes;
    mpoc_status st = mpoc_dtype_nbytes(f->dtype, elems, &tbytes);
    if (st != MPOC_OK)
        return st;
    size_t count = (size_t)((target + tbytes - 1) / tbytes);
    float *vals = f->dtype == MPOC_DTYPE_Q4_K ? NULL : malloc(elems * sizeof(float));
    uint8_t *raw = f->dtype == MPOC_DTYPE_Q4_K ? malloc(tbytes) : NULL;
    mpoc_writer_options wo = mpoc_writer_options_default();
    wo.format = f->format;
    mpoc_writer *w = NULL;
    if (!vals && !raw)
        return MPOC_E_NOMEM;
    st = mpoc_writer_create(path, &wo, &w);
    uint64_t shape[2] = {f->rows, f->cols};
    uint64_t state = 0x853c49e6748fea9bull;
    for (size_t i = 0; st == MPOC_OK && i < count; i++) {
        char name[48];
        snprintf(name, sizeof name, "blk.%zu.ffn.weight", i);
        if (raw) {
            for (uint64_t b = 0; b < tbytes / Q4_K_BLOCK_BYTES; b++)
                q4_k_block(raw + b * Q4_K_BLOCK_BYTES, &state);
            st = mpoc_writer_add_raw(w, name, f->dtype, shape, 2, raw, tbytes);
        } else {
            bench_fill_uniform(vals, elems, 100 + i, 0.05f);
            st = f->dtype == MPOC_DTYPE_F32
                     ? mpoc_writer_add_raw(w, name, f->dtype, shape, 2, vals, tbytes)
                     : mpoc_writer_add_f32(w, name, f->dtype, shape, 2, vals);
        }
    }
    if (st == MPOC_OK)
        st = mpoc_writer_commit(w);
    else
        mpoc_writer_abort(w);
    free(vals);
    free(raw);
    *file_bytes = tbytes * count;
    *n_tensors = count;
    return st;
}

/* ---- timed reads -------------------------------------------------------- */

typedef struct read_job {
    const char *path;
    float *buf;           /* largest tensor's floats (to_f32) */
    size_t buf_elems;
    bool convert;         /* false: sum the bytes; true: mpoc_tensor_to_f32 */
    uint64_t sink;        /* keeps the reads observable */
    uint64_t bytes;       /* tensor bytes per pass (filled by the job) */
} read_job;

static uint64_t sum_bytes(const uint8_t *p, uint64_t n)
{
    uint64_t acc[4] = {0, 0, 0, 0}, w[4];
    uint64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        memcpy(w, p + i, 32);
        acc[0] += w[0], acc[1] += w[1], acc[2] += w[2], acc[3] += w[3];
    }
    for (; i < n; i++)
        acc[0] += p[i];
    return acc[0] ^ acc[1] ^ acc[2] ^ acc[3];
}

/* One pass as a user would do it: open (mmap), walk every tensor, close. */
static mpoc_status run_read(void *arg)
{
    read_job *j = arg;
    mpoc_model *m;
    mpoc_status st = mpoc_model_open(j->path, &m);
    if (st != MPOC_OK)
        return st;
    j->bytes = 0;
    for (size_t i = 0; st == MPOC_OK && i < mpoc_model_tensor_count(m); i++) {
        const mpoc_tensor *t = mpoc_model_tensor(m, i);
        j->bytes += t->nbytes;
        if (!j->convert) {
            j->sink += sum_bytes(t->data, t->nbytes);
        } else if (t->n_elems > j->buf_elems) {
            st = MPOC_E_NOMEM;
        } else {
            st = mpoc_tensor_to_f32(t, j->buf, (size_t)t->n_elems);
            j->sink += (uint64_t)(j->buf[t->n_elems - 1] != 0.0f);
        }
    }
    mpoc_model_close(m);
    return st;
}

/* ---- the benchmark ------------------------------------------------------ */

static double gbps(double bytes, double seconds)
{
    return bytes / seconds * 1e-9;
}

/* Read or convert one file, timed in alternation with the memcpy baseline;
 * returns the median fraction of the memcpy rate (bytes per second) and
 * fills the file-side timing. */
static mpoc_status paired_fraction(bench_ctx *c, copy_job *cj, read_job *j, bench_timing *t,
                                   double *copy_gbps, double *fraction)
{
    bench_timing tc;
    double ratio;
    BENCH_TRY(bench_time_paired(run_copy, cj, run_read, j, c->budget, 3, &tc, t, &ratio));
    *copy_gbps = gbps((double)cj->n, tc.median);
    *fraction = ratio * (double)j->bytes / (double)cj->n;
    return MPOC_OK;
}

static int bench_one_file(bench_ctx *c, const file_spec *f, size_t idx, uint64_t target,
                          copy_job *cj, float *buf, size_t buf_elems)
{
    snprintf(tmp_paths[idx], sizeof tmp_paths[idx], "%s/%s", tmp_dir, f->name);
    uint64_t bytes;
    size_t count;
    double t0 = bench_now();
    mpoc_status st = write_file(f, tmp_paths[idx], target, &bytes, &count);
    if (st != MPOC_OK) {
        fprintf(stderr, "mpoc-bench: writing %s failed: %s\n", tmp_paths[idx], mpoc_strerror(st));
        return 1;
    }
    printf("   %s: %zu tensors of %llu x %llu %s, %.2f GiB (written in %.1f s, not timed)\n",
           f->label, count, (unsigned long long)f->rows, (unsigned long long)f->cols,
           mpoc_dtype_name(f->dtype), (double)bytes / 1073741824.0, bench_now() - t0);
    read_job j = {tmp_paths[idx], buf, buf_elems, false, 0, 0};
    bench_timing tr, tc;
    double copy_r, copy_c, frac_r, frac_c;
    st = paired_fraction(c, cj, &j, &tr, &copy_r, &frac_r);
    if (st == MPOC_OK) {
        j.convert = true;
        st = paired_fraction(c, cj, &j, &tc, &copy_c, &frac_c);
    }
    if (st != MPOC_OK) {
        fprintf(stderr, "mpoc-bench: reading %s failed: %s\n", tmp_paths[idx], mpoc_strerror(st));
        return 1;
    }
    double elems = (double)count * (double)f->rows * (double)f->cols;
    double read = gbps((double)j.bytes, tr.median), conv = gbps((double)j.bytes, tc.median);
    double out = gbps(elems * 4.0, tc.median), frac_out = frac_c * elems * 4.0 / (double)j.bytes;
    bool pass_in = frac_c >= 1.0 / 3.0, pass_out = frac_out >= 1.0 / 3.0;
    printf("     read (open, touch every byte, close): %6.2f GB/s = %.2f of memcpy (%.2f GB/s)\n",
           read, frac_r, copy_r);
    printf("     to float32 (mpoc_tensor_to_f32)     : %6.2f GB/s of file = %.2f of memcpy "
           "(%.2f GB/s) %s\n", conv, frac_c, copy_c, bench_verdict(pass_in));
    printf("       counted in float32 bytes written  : %6.2f GB/s = %.2f of memcpy %s  "
           "(target for both: >= 1/3)\n", out, frac_out, bench_verdict(pass_out));
    char metric[64];
    const char *tag = mpoc_dtype_name(f->dtype);
    snprintf(metric, sizeof metric, "%s_memcpy_gbps", tag);
    bench_emit(c, "io", metric, copy_c, "GB/s");
    snprintf(metric, sizeof metric, "%s_read_gbps", tag);
    bench_emit(c, "io", metric, read, "GB/s");
    snprintf(metric, sizeof metric, "%s_read_fraction_of_memcpy", tag);
    bench_emit(c, "io", metric, frac_r, "1");
    snprintf(metric, sizeof metric, "%s_to_f32_gbps_file", tag);
    bench_emit(c, "io", metric, conv, "GB/s");
    snprintf(metric, sizeof metric, "%s_to_f32_fraction_of_memcpy_file_bytes", tag);
    bench_emit_check(c, "io", metric, frac_c, "1", ">= 1/3", pass_in);
    snprintf(metric, sizeof metric, "%s_to_f32_fraction_of_memcpy_f32_bytes", tag);
    bench_emit_check(c, "io", metric, frac_out, "1", ">= 1/3", pass_out);
    unlink(tmp_paths[idx]); /* free the disk and page cache before the next file */
    tmp_paths[idx][0] = '\0';
    return 0;
}

int bench_io(bench_ctx *c)
{
    static const file_spec files[N_FILES] = {
        {"F32 safetensors", "f32.safetensors", MPOC_FORMAT_SAFETENSORS, MPOC_DTYPE_F32, 4096, 4096},
        {"BF16 safetensors", "bf16.safetensors", MPOC_FORMAT_SAFETENSORS, MPOC_DTYPE_BF16, 4096,
         4096},
        {"Q4_K GGUF", "q4k.gguf", MPOC_FORMAT_GGUF, MPOC_DTYPE_Q4_K, 4096, 16384},
    };
    uint64_t target = c->quick ? 256ull << 20 : 1ull << 30;
    size_t copy_bytes = c->quick ? 256u << 20 : 512u << 20;
    size_t buf_elems = 4096 * 16384; /* largest tensor above */
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/mpoc-bench-XXXXXX");
    if (!mkdtemp(tmp_dir)) {
        tmp_dir[0] = '\0';
        fprintf(stderr, "mpoc-bench: cannot create a folder under /tmp\n");
        return 1;
    }
    atexit(remove_tmp);
    char *src = malloc(copy_bytes), *dst = malloc(copy_bytes);
    float *buf = malloc(buf_elems * sizeof *buf);
    int rc = 1;
    if (!src || !dst || !buf) {
        fprintf(stderr, "mpoc-bench: no memory for the I/O benchmark\n");
        goto done;
    }
    memset(src, 1, copy_bytes); /* first touch outside the timings */
    memset(dst, 2, copy_bytes);
    memset(buf, 0, buf_elems * sizeof *buf);
    copy_job cj = {dst, src, copy_bytes};
    printf("   baseline: memcpy of %zu MiB (1 thread; GB/s = bytes copied per second), timed in "
           "alternation with each\n   file pass; files in %s, %.0f MiB each at least, read from "
           "the page cache (warm);\n   each pass opens (mmap), walks every tensor, closes\n",
           copy_bytes >> 20, tmp_dir, (double)(target >> 20));
    rc = 0;
    for (size_t i = 0; i < N_FILES && rc == 0; i++)
        rc = bench_one_file(c, &files[i], i, target, &cj, buf, buf_elems);
done:
    free(src), free(dst), free(buf);
    remove_tmp();
    return rc;
}
