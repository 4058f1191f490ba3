/* bench_compress.c: whole-model compression (issue 4). A LLaMA-7B-shaped
 * layer is generated with mpoc_synth_llama and compressed with mpoc_compress
 * (χ = 256, q8_0 cores, default threads) in a child process, so that the
 * child's peak RSS (wait4's ru_maxrss) is the compression's own; then a
 * multi-GB model made of copies of that layer shows that the peak stays a
 * multiple of the largest tensor, not of the model. Temporary files live in
 * mkdtemp("/tmp/mpoc-bench-XXXXXX") and are removed at the end. */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <omp.h>

#include "bench.h"

#define COMPRESS_CHI 256

/* ---- temporary folders -------------------------------------------------- */

int bench_mkdtemp(char *buf, size_t n)
{
    if (n < sizeof "/tmp/mpoc-bench-XXXXXX")
        return -1;
    memcpy(buf, "/tmp/mpoc-bench-XXXXXX", sizeof "/tmp/mpoc-bench-XXXXXX");
    if (!mkdtemp(buf)) {
        fprintf(stderr, "mpoc-bench: mkdtemp: %s\n", strerror(errno));
        buf[0] = '\0';
        return -1;
    }
    return 0;
}

void bench_rmtree(const char *path)
{
    if (!path || !path[0])
        return;
    DIR *d = opendir(path);
    if (!d) {
        unlink(path);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char sub[4096];
        if ((size_t)snprintf(sub, sizeof sub, "%s/%s", path, e->d_name) >= sizeof sub)
            continue;
        struct stat st;
        if (lstat(sub, &st) == 0 && S_ISDIR(st.st_mode))
            bench_rmtree(sub);
        else
            unlink(sub);
    }
    closedir(d);
    rmdir(path);
}

/* ---- the child: one mpoc_compress run ----------------------------------- */

/* Resident set of this process now, in KiB (VmRSS), or -1. */
static long vm_rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    char line[256];
    long kib = -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6)) {
            kib = strtol(line + 6, NULL, 10);
            break;
        }
    fclose(f);
    return kib;
}

/* mpoc-bench --compress-child IN OUT CHI RESULT: compress IN into OUT at χ
 * with q8_0 cores (f16 centre, feedback, default threads) and write
 * "status seconds compressed bytes original_bytes rel_error rss_before_kib"
 * to RESULT. */
int bench_compress_child(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "mpoc-bench: --compress-child IN OUT CHI RESULT\n");
        return 2;
    }
    mpoc_compress_options o = mpoc_compress_options_default();
    o.mpo.eps = 0.0;
    o.mpo.svd.trunc.max_rank = (size_t)strtoul(argv[4], NULL, 10);
    o.quant.core = MPOC_QUANT_Q8_0;
    o.policy.overwrite = true;
    long rss0 = vm_rss_kib();
    mpoc_summary s;
    memset(&s, 0, sizeof s);
    mpoc_status st = mpoc_compress(argv[2], argv[3], &o, &s);
    FILE *f = fopen(argv[5], "w");
    if (!f)
        return 1;
    fprintf(f, "%d %.6f %zu %llu %llu %.9g %ld\n", (int)st, s.seconds, s.compressed,
            (unsigned long long)s.compressed_bytes,
            (unsigned long long)s.compressed_original_bytes, s.rel_error, rss0);
    fclose(f);
    return st == MPOC_OK ? 0 : 1;
}

typedef struct child_result {
    int status;
    double seconds, wall, rel_error;
    size_t compressed;
    unsigned long long bytes, original_bytes;
    long rss_before_kib, maxrss_kib;
} child_result;

/* Run the compression in a fresh process (exec of this program, so the
 * peak RSS counts nothing of the bench's own memory). */
static int run_child(const char *in, const char *out, size_t chi, const char *result,
                     child_result *r)
{
    memset(r, 0, sizeof *r);
    char chi_s[32];
    snprintf(chi_s, sizeof chi_s, "%zu", chi);
    fflush(stdout);
    fflush(stderr);
    double t0 = bench_now();
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "mpoc-bench: fork: %s\n", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        static char a0[] = "mpoc-bench", a1[] = "--compress-child";
        static char a2[1024], a3[1024], a5[1024];
        snprintf(a2, sizeof a2, "%s", in);
        snprintf(a3, sizeof a3, "%s", out);
        snprintf(a5, sizeof a5, "%s", result);
        char *args[] = {a0, a1, a2, a3, chi_s, a5, NULL};
        execv("/proc/self/exe", args);
        _exit(127);
    }
    int wst = 0;
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    if (wait4(pid, &wst, 0, &ru) < 0) {
        fprintf(stderr, "mpoc-bench: wait4: %s\n", strerror(errno));
        return -1;
    }
    r->wall = bench_now() - t0;
    r->maxrss_kib = ru.ru_maxrss;
    FILE *f = fopen(result, "r");
    int ok = f && fscanf(f, "%d %lf %zu %llu %llu %lf %ld", &r->status, &r->seconds,
                         &r->compressed, &r->bytes, &r->original_bytes, &r->rel_error,
                         &r->rss_before_kib) == 7;
    if (f)
        fclose(f);
    if (!WIFEXITED(wst) || WEXITSTATUS(wst) != 0 || !ok || r->status != MPOC_OK) {
        fprintf(stderr, "mpoc-bench: compression child failed (exit %d, status %d)\n",
                WIFEXITED(wst) ? WEXITSTATUS(wst) : -1, r->status);
        return -1;
    }
    return 0;
}

/* ---- flop model of the compression -------------------------------------- */

/* TT-SVD work of every compressed tensor of the container at `path`: per bond
 * the unfolding (r_k·m_k·n_k) × (∏_{l>k} m_l n_l), with the path the AUTO
 * rule takes for a rank cap χ (randomized when min side ≥ 256 and
 * χ + p ≤ min side / 4, p = 10, q = 2; else exact), costed by
 * bench_svd_flops. Quantization with error feedback, canonicalization and
 * the error measurement are NOT counted: a lower bound of the job's work. */
static mpoc_status container_flops(const char *path, size_t chi, double *flops,
                                   uint64_t *largest_elems)
{
    mpoc_model *m = NULL;
    mpoc_container *ct = NULL;
    *flops = 0.0;
    *largest_elems = 0;
    BENCH_TRY(mpoc_model_open(path, &m));
    mpoc_status st = mpoc_container_open(m, &ct);
    if (st != MPOC_OK) {
        mpoc_model_close(m);
        return st;
    }
    const double p = 10.0;
    for (size_t i = 0; i < mpoc_container_count(ct); i++) {
        const mpoc_container_entry *e = mpoc_container_entry_at(ct, i);
        const mpoc_shape *s = &e->shape;
        uint64_t elems = (uint64_t)s->rows * s->cols;
        if (elems > *largest_elems)
            *largest_elems = elems;
        double rest = (double)s->padded_rows * (double)s->padded_cols;
        for (size_t k = 0; k + 1 < s->sites; k++) {
            double site = (double)s->row_dims[k] * (double)s->col_dims[k];
            double rows = (double)e->ranks[k] * site;
            rest /= site;
            double full = rows < rest ? rows : rest;
            bool rnd = full >= 256.0 && (double)chi + p <= full / 4.0;
            double l = (double)chi + p;
            *flops += bench_svd_flops(rows, rest, rnd, l < full ? l : full, 2);
        }
    }
    mpoc_container_close(ct);
    mpoc_model_close(m);
    return MPOC_OK;
}

/* ---- a multi-layer model from copies of one layer ------------------------ */

/* Write `out`: every tensor of `layer_model` outside the blocks once, and
 * its block-0 tensors `layers` times as blocks 0 .. layers−1. */
static mpoc_status replicate_layers(const char *layer_model, const char *out, size_t layers,
                                    uint64_t *bytes)
{
    static const char prefix[] = "model.layers.0.";
    mpoc_model *m = NULL;
    mpoc_writer *w = NULL;
    *bytes = 0;
    BENCH_TRY(mpoc_model_open(layer_model, &m));
    mpoc_writer_options wo = mpoc_writer_options_default();
    mpoc_status st = mpoc_writer_create(out, &wo, &w);
    for (size_t i = 0; st == MPOC_OK && i < mpoc_model_tensor_count(m); i++) {
        const mpoc_tensor *t = mpoc_model_tensor(m, i);
        if (strncmp(t->name, prefix, sizeof prefix - 1)) {
            st = mpoc_writer_add_tensor(w, t, NULL);
            *bytes += t->nbytes;
            continue;
        }
        for (size_t l = 0; st == MPOC_OK && l < layers; l++) {
            char name[512];
            snprintf(name, sizeof name, "model.layers.%zu.%s", l, t->name + sizeof prefix - 1);
            st = mpoc_writer_add_tensor(w, t, name);
            *bytes += t->nbytes;
        }
    }
    if (st == MPOC_OK)
        st = mpoc_writer_commit(w);
    else
        mpoc_writer_abort(w);
    mpoc_model_close(m);
    return st;
}

/* ---- the benchmark -------------------------------------------------------- */

static double mib(double kib)
{
    return kib / 1024.0;
}

int bench_compress(bench_ctx *c)
{
    char dir[64], layer_dir[128], layer_in[192], out1[192], multi_in[192], out2[192],
        result[192];
    if (bench_need_sgemm_peak(c) != MPOC_OK)
        return 1;
    if (bench_mkdtemp(dir, sizeof dir))
        return 1;
    int rc = 1;
    mpoc_llama_shape sh = mpoc_llama_shape_default();
    sh.dim = c->quick ? 2048 : 4096;
    sh.hidden = c->quick ? 5504 : 11008;
    sh.layers = 1;
    sh.heads = sh.dim / 128;
    sh.kv_heads = sh.heads;
    sh.vocab = 256;
    sh.seed = 1;
    sh.dtype = MPOC_DTYPE_F32;
    size_t layers = c->quick ? 2 : 4;
    snprintf(layer_dir, sizeof layer_dir, "%s/layer", dir);
    snprintf(layer_in, sizeof layer_in, "%s/model.safetensors", layer_dir);
    snprintf(out1, sizeof out1, "%s/layer.mpoc.safetensors", dir);
    snprintf(multi_in, sizeof multi_in, "%s/multi.safetensors", dir);
    snprintf(out2, sizeof out2, "%s/multi.mpoc.safetensors", dir);
    snprintf(result, sizeof result, "%s/result.txt", dir);

    printf("   layer: dim %zu, MLP %zu (%s shapes: 4 x %zux%zu, 3 x %zux%zu F32), vocab %zu; "
           "files in %s\n", sh.dim, sh.hidden, c->quick ? "quick: half of LLaMA-7B's" :
           "LLaMA-7B", sh.dim, sh.dim, sh.hidden, sh.dim, sh.vocab, dir);
    double t0 = bench_now();
    mpoc_status st = mpoc_synth_llama(&sh, layer_dir, NULL);
    if (st != MPOC_OK) {
        fprintf(stderr, "mpoc-bench: mpoc_synth_llama failed: %s\n", mpoc_strerror(st));
        goto done;
    }
    printf("   generated with mpoc_synth_llama (trained-like statistics, seed 1) in %.1f s, "
           "not timed\n", bench_now() - t0);
    printf("   job: mpoc_compress, chi %d, q8_0 cores, f16 centre, error feedback, AUTO SVD, "
           "default threads (%d, OpenMP's), in a child process (peak RSS = its ru_maxrss)\n",
           COMPRESS_CHI, omp_get_max_threads());

    child_result r1, r2;
    if (run_child(layer_in, out1, COMPRESS_CHI, result, &r1))
        goto done;
    double flops = 0.0;
    uint64_t largest = 0;
    st = container_flops(out1, COMPRESS_CHI, &flops, &largest);
    if (st != MPOC_OK) {
        fprintf(stderr, "mpoc-bench: cannot read the container back: %s\n", mpoc_strerror(st));
        goto done;
    }
    double largest_mib = (double)largest * 4.0 / 1048576.0;
    double gfs = flops / r1.seconds * 1e-9, frac = gfs / c->sgemm_gflops;
    double rss_ratio1 = mib((double)r1.maxrss_kib) / largest_mib;
    double model1_mib = (double)r1.original_bytes / 1048576.0;
    printf("   one layer: %zu matrices, %.1f MiB -> %.1f MiB (%.2fx), size-weighted error %.4f\n",
           r1.compressed, model1_mib, (double)r1.bytes / 1048576.0,
           (double)r1.original_bytes / (double)r1.bytes, r1.rel_error);
    printf("   seconds per layer: %.1f s (mpoc_compress's own time; child wall %.1f s)\n",
           r1.seconds, r1.wall);
    printf("   peak RSS: %.0f MiB = %.1fx the largest tensor (%.0f MiB as float32), "
           "%.2fx the layer's matrices (%.0f MiB); before compressing %.0f MiB\n",
           mib((double)r1.maxrss_kib), rss_ratio1, largest_mib,
           mib((double)r1.maxrss_kib) / model1_mib, model1_mib, mib((double)r1.rss_before_kib));
    printf("   flop model (TT-SVD only: per bond, the path AUTO takes at chi %d; feedback "
           "quantization and error measurement not counted, so a lower bound):\n"
           "     %.1f GFLOP / %.1f s = %.1f GFLOP/s = %.1f%% of the SGEMM peak (%.1f GFLOP/s, "
           "this run)\n", COMPRESS_CHI, flops * 1e-9, r1.seconds, gfs, 100.0 * frac,
           c->sgemm_gflops);
    bench_emit(c, "compress", "seconds_per_layer", r1.seconds, "s");
    bench_emit(c, "compress", "peak_rss_mib", mib((double)r1.maxrss_kib), "MiB");
    bench_emit(c, "compress", "peak_rss_over_largest_tensor", rss_ratio1, "1");
    bench_emit(c, "compress", "gflop_model", flops * 1e-9, "GFLOP");
    bench_emit(c, "compress", "fraction_of_sgemm_peak", frac, "1");
    bench_emit(c, "compress", "rel_error", r1.rel_error, "1");
    bench_emit(c, "compress", "compression", (double)r1.original_bytes / (double)r1.bytes, "x");
    unlink(out1);

    /* bounded memory on a multi-GB model */
    uint64_t multi_bytes = 0;
    t0 = bench_now();
    st = replicate_layers(layer_in, multi_in, layers, &multi_bytes);
    if (st != MPOC_OK) {
        fprintf(stderr, "mpoc-bench: writing the multi-layer model failed: %s\n",
                mpoc_strerror(st));
        goto done;
    }
    bench_rmtree(layer_dir);
    double multi_mib = (double)multi_bytes / 1048576.0;
    printf("   multi-layer model: %zu copies of the layer, %.2f GiB of F32 tensors "
           "(written in %.1f s, not timed)\n", layers, multi_mib / 1024.0, bench_now() - t0);
    if (run_child(multi_in, out2, COMPRESS_CHI, result, &r2))
        goto done;
    double rss2 = mib((double)r2.maxrss_kib);
    double ratio_largest = rss2 / largest_mib, ratio_model = rss2 / multi_mib;
    printf("   %zu layers: %.1f s (%.1f s per layer), error %.4f\n", layers, r2.seconds,
           r2.seconds / (double)layers, r2.rel_error);
    printf("   peak RSS: %.0f MiB = %.1fx the largest tensor, %.2fx the model (%.0f MiB); "
           "one layer: %.0f MiB\n", rss2, ratio_largest, ratio_model, multi_mib,
           mib((double)r1.maxrss_kib));
    /* "bounded": the peak does not grow with the model (within 25% of the
     * one-layer run's); "small multiple": docs/compress.md's "threads × a few
     * copies of the largest matrix", read as at most 4 copies per thread. */
    bool flat = rss2 <= 1.25 * mib((double)r1.maxrss_kib);
    int tensor_threads = omp_get_max_threads();
    double per_thread = ratio_largest / (double)tensor_threads;
    bool small = per_thread <= 4.0;
    printf("   peak independent of the model size (%zu-layer peak / 1-layer peak = %.2f, "
           "target <= 1.25) %s\n", layers, rss2 / mib((double)r1.maxrss_kib),
           bench_verdict(flat));
    printf("   small multiple of the largest tensor: %.1fx with %d threads = %.1f copies per "
           "thread (target <= 4, docs/compress.md's 'a few copies') %s\n", ratio_largest,
           tensor_threads, per_thread, bench_verdict(small));
    bench_emit(c, "compress", "multi_seconds_per_layer", r2.seconds / (double)layers, "s");
    bench_emit(c, "compress", "multi_peak_rss_mib", rss2, "MiB");
    bench_emit(c, "compress", "multi_peak_rss_over_model", ratio_model, "1");
    bench_emit_check(c, "compress", "multi_peak_rss_over_one_layer",
                     rss2 / mib((double)r1.maxrss_kib), "1", "<= 1.25", flat);
    bench_emit_check(c, "compress", "peak_rss_largest_tensors_per_thread", per_thread, "1",
                     "<= 4", small);
    rc = 0;
done:
    bench_rmtree(dir);
    return rc;
}
