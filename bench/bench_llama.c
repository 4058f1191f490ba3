/* bench_llama.c: running models, dense vs MPO containers (issue 6).
 * tokens/s of the stories260K fixture and of a generated LLaMA-shaped model
 * of ~100M parameters, dense and compressed with mpoc_compress at several χ
 * (q8_0 cores), each container opened with mpoc_llama_open and run on its
 * cores. Two modes: batched teacher-forced evaluation (one forward pass of
 * a whole sequence) and single-token generation (one forward per token).
 * Each MPO model is timed in alternation with the dense one (paired), and
 * the speed ratio is printed beside the linear-parameter ratio and the
 * multiply-add ratio. The expectation (faster wherever ≥ 8× fewer
 * parameters) is checked on decoding, which is bound by reading weights;
 * batched evaluation is bound by arithmetic, so its rows show how many
 * multiply-adds the MPO does against dense instead of a verdict. A last row
 * times the same generated model stored as BF16 (dense operators dequantized
 * per block of rows) against its F32 copy. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

typedef struct lm_job {
    const mpoc_llama *m;
    mpoc_llama_state *s;
    const int32_t *tokens;
    size_t n;      /* tokens per call */
    bool batched;  /* true: one forward of n tokens; false: n forwards of 1 */
    float *logits; /* n × vocab (batched) or vocab */
} lm_job;

static mpoc_status run_lm(void *arg)
{
    lm_job *j = arg;
    mpoc_llama_state_reset(j->s);
    if (j->batched)
        return mpoc_llama_forward(j->m, j->s, j->tokens, j->n, j->logits);
    for (size_t i = 0; i < j->n; i++)
        BENCH_TRY(mpoc_llama_forward(j->m, j->s, j->tokens + i, 1, j->logits));
    return MPOC_OK;
}

/* A model and its two jobs (eval: batched; gen: one token at a time). */
typedef struct lm_runner {
    mpoc_llama *m;
    mpoc_llama_state *s;
    float *eval_logits, *gen_logits;
    lm_job eval, gen;
} lm_runner;

static void runner_free(lm_runner *r)
{
    mpoc_llama_state_free(r->s);
    mpoc_llama_free(r->m);
    free(r->eval_logits);
    free(r->gen_logits);
    memset(r, 0, sizeof *r);
}

static mpoc_status runner_open(lm_runner *r, const char *path, const char *config,
                               const int32_t *tokens, size_t eval_len, size_t gen_len)
{
    memset(r, 0, sizeof *r);
    mpoc_llama_options o = mpoc_llama_options_default();
    o.config_path = config;
    BENCH_TRY(mpoc_llama_open(path, &o, &r->m));
    size_t vocab = mpoc_llama_config_of(r->m)->vocab_size;
    size_t max = eval_len > gen_len ? eval_len : gen_len;
    mpoc_status st = mpoc_llama_state_new(r->m, max, &r->s);
    r->eval_logits = malloc(eval_len * vocab * sizeof(float));
    r->gen_logits = malloc(vocab * sizeof(float));
    if (st == MPOC_OK && (!r->eval_logits || !r->gen_logits))
        st = MPOC_E_NOMEM;
    if (st != MPOC_OK) {
        runner_free(r);
        return st;
    }
    r->eval = (lm_job){r->m, r->s, tokens, eval_len, true, r->eval_logits};
    r->gen = (lm_job){r->m, r->s, tokens, gen_len, false, r->gen_logits};
    return MPOC_OK;
}

/* Mean KL(dense ‖ mpo) over the positions of the last eval calls (a sanity
 * figure: the logits are used, and the container is the compressed model). */
static double eval_kl(const lm_runner *dense, const lm_runner *mpo, size_t n)
{
    size_t vocab = mpoc_llama_config_of(dense->m)->vocab_size;
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += mpoc_logits_kl(dense->eval_logits + i * vocab, mpo->eval_logits + i * vocab, vocab);
    return s / (double)n;
}

static mpoc_status compress_to(const char *in, const char *out, size_t chi)
{
    mpoc_compress_options o = mpoc_compress_options_default();
    o.mpo.eps = 0.0;
    o.mpo.svd.trunc.max_rank = chi;
    o.quant.core = MPOC_QUANT_Q8_0;
    o.policy.overwrite = true;
    return mpoc_compress(in, out, &o, NULL);
}

static void fmt_params(char *buf, size_t n, size_t p)
{
    if (p >= 1000000)
        snprintf(buf, n, "%.2f M", (double)p / 1e6);
    else
        snprintf(buf, n, "%.1f k", (double)p / 1e3);
}

/* Time one mode of an MPO model against the dense one and print its row. */
/* Time one mode of an MPO model against the dense one and print its row.
 * `macs` is the MPO's multiply-adds per token over dense's. */
static mpoc_status mode_row(bench_ctx *c, const char *set, size_t chi, const char *mode,
                            lm_job *dense, lm_job *cand, double fewer, double macs, int *pass,
                            int *fail)
{
    bench_timing tb, tc;
    double ratio;
    BENCH_TRY(bench_time_paired(run_lm, dense, run_lm, cand, c->budget, 3, &tb, &tc, &ratio));
    double tps_d = (double)dense->n / tb.median, tps_c = (double)cand->n / tc.median;
    bool decoding = !dense->batched;
    char verdict[96];
    snprintf(verdict, sizeof verdict, "(no expectation: < 8x fewer)");
    char metric[96];
    snprintf(metric, sizeof metric, "%s_chi%zu_%s_speed_ratio", set, chi, mode);
    if (fewer >= 8.0 && decoding) {
        bool ok = ratio > 1.0;
        snprintf(verdict, sizeof verdict, "%s", ok ? "PASS (>= 8x fewer: faster)"
                                                   : "FAIL (>= 8x fewer, not faster)");
        bench_emit_check(c, "llama", metric, ratio, "x", "decoding faster than dense when >= 8x "
                         "fewer", ok);
        (ok ? (*pass)++ : (*fail)++);
    } else {
        if (!decoding)
            snprintf(verdict, sizeof verdict, "(compute-bound: %.2fx the multiply-adds)", macs);
        bench_emit(c, "llama", metric, ratio, "x");
    }
    printf("   %-5zu %-9s %10.1f %10.1f %8.2fx  %3zu pairs  %s\n", chi, mode, tps_d, tps_c, ratio,
           tb.samples, verdict);
    snprintf(metric, sizeof metric, "%s_chi%zu_%s_tokens_per_s", set, chi, mode);
    bench_emit(c, "llama", metric, tps_c, "tokens/s");
    snprintf(metric, sizeof metric, "%s_dense_%s_tokens_per_s", set, mode);
    bench_emit(c, "llama", metric, tps_d, "tokens/s");
    fflush(stdout);
    return MPOC_OK;
}

/* A fixed pseudo-random token sequence starting with BOS. */
static void make_tokens(int32_t *tokens, size_t n, int32_t bos, size_t vocab)
{
    uint64_t x = 0x9E3779B97F4A7C15ull;
    tokens[0] = bos;
    for (size_t i = 1; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        tokens[i] = (int32_t)(x % vocab);
    }
}

/* The generated model stored as BF16 (dense operators keep the stored bytes
 * and dequantize blocks of rows per apply) against its F32 copy. */
static int bench_stored(bench_ctx *c, const char *f32_dir, const char *bf16_dir, size_t eval_len,
                        size_t gen_len)
{
    size_t n_tok = eval_len > gen_len ? eval_len : gen_len;
    int32_t *tokens = malloc(n_tok * sizeof *tokens);
    lm_runner a, b;
    memset(&b, 0, sizeof b);
    mpoc_status st = tokens ? runner_open(&a, f32_dir, NULL, tokens, eval_len, gen_len)
                            : MPOC_E_NOMEM;
    if (st == MPOC_OK) {
        const mpoc_llama_config *cfg = mpoc_llama_config_of(a.m);
        make_tokens(tokens, n_tok, cfg->bos_id, cfg->vocab_size);
        st = runner_open(&b, bf16_dir, NULL, tokens, eval_len, gen_len);
    }
    const char *modes[2] = {"eval", "generate"};
    for (int i = 0; st == MPOC_OK && i < 2; i++) {
        bench_timing ta, tb;
        double ratio;
        lm_job *ja = i ? &a.gen : &a.eval, *jb = i ? &b.gen : &b.eval;
        st = bench_time_paired(run_lm, ja, run_lm, jb, c->budget, 3, &ta, &tb, &ratio);
        if (st != MPOC_OK)
            break;
        printf("   %-15s %-9s %10.1f %10.1f %8.2fx  %3zu pairs  (same weights rounded to BF16)\n",
               "bf16 vs f32", modes[i], (double)ja->n / ta.median, (double)jb->n / tb.median,
               ratio, ta.samples);
        char metric[64];
        snprintf(metric, sizeof metric, "synth_bf16_%s_speed_ratio", modes[i]);
        bench_emit(c, "llama", metric, ratio, "x");
    }
    if (st == MPOC_OK)
        printf("   %-15s (mean KL(f32 || bf16) over the eval tokens: %.3g nats)\n", "",
               eval_kl(&a, &b, eval_len));
    else
        fprintf(stderr, "mpoc-bench: BF16 vs F32 model: %s\n", mpoc_strerror(st));
    runner_free(&a);
    runner_free(&b);
    free(tokens);
    return st != MPOC_OK;
}

/* One model: dense, then a container per χ. `dir` holds model.safetensors
 * and config.json. */
static int bench_set(bench_ctx *c, const char *set, const char *dir, const size_t *chis,
                     size_t n_chi, size_t eval_len, size_t gen_len, const char *tmp)
{
    char in[1024], config[1024], out[1024];
    snprintf(in, sizeof in, "%s/model.safetensors", dir);
    snprintf(config, sizeof config, "%s/config.json", dir);
    lm_runner dense, mpo;
    memset(&mpo, 0, sizeof mpo);
    int32_t *tokens = malloc((eval_len > gen_len ? eval_len : gen_len) * sizeof *tokens);
    if (!tokens)
        return 1;
    /* open once to know the vocabulary, then the token sequence */
    mpoc_llama *probe = NULL;
    mpoc_status st = mpoc_llama_open(dir, NULL, &probe);
    if (st != MPOC_OK) {
        fprintf(stderr, "mpoc-bench: cannot open %s: %s\n", dir, mpoc_strerror(st));
        free(tokens);
        return 1;
    }
    const mpoc_llama_config *cfg = mpoc_llama_config_of(probe);
    size_t vocab = cfg->vocab_size, n_tok = eval_len > gen_len ? eval_len : gen_len;
    make_tokens(tokens, n_tok, cfg->bos_id, vocab);
    printf("   %s: dim %zu, MLP %zu, %zu layers, %zu heads (%zu kv), vocab %zu\n", set, cfg->dim,
           cfg->hidden_dim, cfg->n_layers, cfg->n_heads, cfg->n_kv_heads, vocab);
    mpoc_llama_free(probe);
    st = runner_open(&dense, dir, NULL, tokens, eval_len, gen_len);
    if (st != MPOC_OK) {
        fprintf(stderr, "mpoc-bench: cannot run %s: %s\n", dir, mpoc_strerror(st));
        free(tokens);
        return 1;
    }
    size_t dense_params = mpoc_llama_linear_params(dense.m);
    char pbuf[32];
    fmt_params(pbuf, sizeof pbuf, dense_params);
    printf("   dense: %s parameters in linear layers (projections + tied classifier)\n", pbuf);
    printf("   eval = one teacher-forced forward of %zu tokens; generate = %zu single-token "
           "forwards (KV cache); tokens/s = tokens / median time\n", eval_len, gen_len);
    printf("   chi   mode        dense t/s    mpo t/s    speed (paired, >1: MPO faster)\n");
    int pass = 0, fail = 0, rc = 0;
    for (size_t k = 0; k < n_chi; k++) {
        snprintf(out, sizeof out, "%s/%s-chi%zu.mpoc.safetensors", tmp, set, chis[k]);
        double t0 = bench_now();
        st = compress_to(in, out, chis[k]);
        double tcomp = bench_now() - t0;
        if (st == MPOC_OK)
            st = runner_open(&mpo, out, config, tokens, eval_len, gen_len);
        if (st != MPOC_OK) {
            fprintf(stderr, "mpoc-bench: chi %zu container of %s: %s\n", chis[k], set,
                    mpoc_strerror(st));
            rc = 1;
            break;
        }
        size_t p = mpoc_llama_linear_params(mpo.m);
        double fewer = (double)dense_params / (double)p;
        double macs = mpoc_llama_linear_macs(mpo.m, eval_len) /
                      mpoc_llama_linear_macs(dense.m, eval_len);
        double macs1 = mpoc_llama_linear_macs(mpo.m, 1) / mpoc_llama_linear_macs(dense.m, 1);
        fmt_params(pbuf, sizeof pbuf, p);
        printf("   chi %zu (q8_0 cores, compressed in %.1f s): %s linear params = %.1fx fewer; "
               "multiply-adds per token %.2fx dense (batched, merged sites), %.2fx (one token) "
               "(%zu MPO operators)\n", chis[k], tcomp, pbuf, fewer, macs, macs1,
               mpoc_llama_mpo_count(mpo.m));
        char metric[96];
        snprintf(metric, sizeof metric, "%s_chi%zu_linear_param_ratio", set, chis[k]);
        bench_emit(c, "llama", metric, fewer, "x");
        snprintf(metric, sizeof metric, "%s_chi%zu_macs_ratio", set, chis[k]);
        bench_emit(c, "llama", metric, macs, "x");
        st = mode_row(c, set, chis[k], "eval", &dense.eval, &mpo.eval, fewer, macs, &pass, &fail);
        if (st == MPOC_OK)
            st = mode_row(c, set, chis[k], "generate", &dense.gen, &mpo.gen, fewer, macs, &pass,
                          &fail);
        if (st == MPOC_OK) {
            double kl = eval_kl(&dense, &mpo, eval_len);
            printf("   %-5s (mean KL(dense || mpo) over the eval tokens: %.4g nats)\n", "", kl);
            snprintf(metric, sizeof metric, "%s_chi%zu_kl_mean", set, chis[k]);
            bench_emit(c, "llama", metric, kl, "nats");
        }
        runner_free(&mpo);
        unlink(out);
        if (st != MPOC_OK) {
            fprintf(stderr, "mpoc-bench: timing %s chi %zu failed: %s\n", set, chis[k],
                    mpoc_strerror(st));
            rc = 1;
            break;
        }
    }
    if (pass + fail > 0)
        printf("   %s: %d of %d decoding rows with >= 8x fewer linear params are faster than "
               "dense\n", set, pass, pass + fail);
    runner_free(&dense);
    free(tokens);
    return rc;
}

int bench_llama(bench_ctx *c)
{
    char tmp[64], gen_dir[128], fix[1024];
    if (bench_mkdtemp(tmp, sizeof tmp))
        return 1;
    int rc = 0;
    /* the fixture */
    const char *fx = getenv("MPOC_FIXTURES");
    snprintf(fix, sizeof fix, "%s/stories260K-hf", fx && fx[0] ? fx : "../shared/fixtures");
    char probe[1100];
    snprintf(probe, sizeof probe, "%s/model.safetensors", fix);
    if (access(probe, R_OK) == 0) {
        static const size_t fchi[] = {4, 8, 16};
        printf("   -- fixture %s\n", fix);
        rc |= bench_set(c, "fixture", fix, fchi, sizeof fchi / sizeof fchi[0], 256, 64, tmp);
    } else {
        printf("   -- fixture: %s not found (set MPOC_FIXTURES); skipped\n", probe);
    }
    /* a generated ~100M-parameter model */
    mpoc_llama_shape sh = mpoc_llama_shape_default();
    if (c->quick) {
        sh.dim = 512, sh.hidden = 1376, sh.layers = 4, sh.heads = 8, sh.kv_heads = 8;
        sh.vocab = 2048;
    } else {
        sh.dim = 1024, sh.hidden = 2816, sh.layers = 8, sh.heads = 16, sh.kv_heads = 16;
        sh.vocab = 4096;
    }
    sh.seed = 1;
    sh.dtype = MPOC_DTYPE_F32;
    snprintf(gen_dir, sizeof gen_dir, "%s/synth", tmp);
    double t0 = bench_now();
    mpoc_status st = mpoc_synth_llama(&sh, gen_dir, NULL);
    if (st != MPOC_OK) {
        fprintf(stderr, "mpoc-bench: mpoc_synth_llama failed: %s\n", mpoc_strerror(st));
        bench_rmtree(tmp);
        return 1;
    }
    printf("\n   -- generated model (mpoc_synth_llama, seed 1, F32; %.1f s, not timed)%s\n",
           bench_now() - t0, c->quick ? " (quick: ~13M, not ~100M)" : "");
    static const size_t gchi[] = {8, 16, 32, 64};
    static const size_t qchi[] = {8, 32};
    rc |= bench_set(c, "synth", gen_dir, c->quick ? qchi : gchi,
                    c->quick ? 2 : sizeof gchi / sizeof gchi[0], 128, c->quick ? 16 : 16, tmp);
    printf("   expectation (issue 6): MPO faster than dense wherever it has >= 8x fewer "
           "linear parameters — checked on decoding (tokens/s of generation, bound by reading the "
           "weights); batched eval is bound by arithmetic: its rows give the multiply-add ratio\n");
    /* the same model stored as BF16: dense operators dequantized per block */
    char bf_dir[160];
    snprintf(bf_dir, sizeof bf_dir, "%s/synth-bf16", tmp);
    sh.dtype = MPOC_DTYPE_BF16;
    st = mpoc_synth_llama(&sh, bf_dir, NULL);
    if (st == MPOC_OK) {
        printf("\n   -- the generated model stored as BF16 (same seed): dense operators keep the "
               "stored bytes, dequantized per block of rows at each apply\n");
        printf("   model           mode        f32 t/s   bf16 t/s    speed (paired, >1: BF16 "
               "faster)\n");
        rc |= bench_stored(c, gen_dir, bf_dir, 128, 16);
    } else {
        fprintf(stderr, "mpoc-bench: mpoc_synth_llama (BF16) failed: %s\n", mpoc_strerror(st));
        rc = 1;
    }
    bench_rmtree(tmp);
    return rc;
}
