/* llama_eval.c: logit arithmetic, greedy decoding, sampling, and the
 * teacher-forced comparison of two models (docs/eval.md). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"
#include "llama_internal.h"
#include "rng.h"
#include "util.h"

/* ---- logit arithmetic ---------------------------------------------------- */

size_t mpoc_logits_argmax(const float *logits, size_t n)
{
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
        if (logits[i] > logits[best])
            best = i;
    return best;
}

double mpoc_logits_logsumexp(const float *logits, size_t n)
{
    if (n == 0)
        return -INFINITY;
    size_t top = mpoc_logits_argmax(logits, n);
    double mx = (double)logits[top], sum = 1.0; /* the largest term, exp(0) */
    for (size_t i = 0; i < n; i++)
        if (i != top)
            sum += exp((double)logits[i] - mx);
    return mx + log(sum);
}

void mpoc_logits_softmax(const float *logits, size_t n, float *probs)
{
    double lse = mpoc_logits_logsumexp(logits, n);
    for (size_t i = 0; i < n; i++)
        probs[i] = (float)exp((double)logits[i] - lse);
}

double mpoc_logits_kl(const float *p, const float *q, size_t n)
{
    double lp = mpoc_logits_logsumexp(p, n), lq = mpoc_logits_logsumexp(q, n), kl = 0.0;
    for (size_t i = 0; i < n; i++) {
        double a = (double)p[i] - lp, b = (double)q[i] - lq;
        kl += exp(a) * (a - b);
    }
    return kl > 0.0 ? kl : 0.0;
}

/* ---- decoding ------------------------------------------------------------ */

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

mpoc_status mpoc_llama_greedy(const mpoc_llama *m, int32_t first, size_t n, int32_t *out)
{
    if (n == 0 || !out)
        MPOC_FAIL(MPOC_E_INVAL, "greedy: no tokens asked for");
    size_t vocab = m->cfg.vocab_size;
    float *logits = mpoc_alloc_array(vocab, sizeof(float));
    mpoc_llama_state *s = NULL;
    mpoc_status st = logits ? mpoc_llama_state_new(m, n, &s) : MPOC_E_NOMEM;
    int32_t tok = first;
    for (size_t i = 0; i < n && st == MPOC_OK; i++) {
        st = mpoc_llama_forward(m, s, &tok, 1, logits);
        if (st == MPOC_OK)
            out[i] = tok = (int32_t)mpoc_logits_argmax(logits, vocab);
    }
    mpoc_llama_state_free(s);
    free(logits);
    return st;
}

/* The token whose cumulative probability first exceeds u (inverse CDF). */
static int32_t draw(const float *logits, size_t vocab, double u)
{
    double lse = mpoc_logits_logsumexp(logits, vocab), cum = 0.0;
    size_t last = 0;
    for (size_t i = 0; i < vocab; i++) {
        double p = exp((double)logits[i] - lse);
        if (p > 0.0)
            last = i;
        cum += p;
        if (u < cum)
            return (int32_t)i;
    }
    return (int32_t)last; /* u beyond the rounded total */
}

/* Sequences sampled in lockstep (one GEMM per layer and step), at most
 * SAMPLE_GROUP and as many as keep their KV caches under SAMPLE_CACHE_BYTES. */
#define SAMPLE_GROUP 64
#define SAMPLE_CACHE_BYTES ((size_t)256 << 20)

static size_t sample_group_size(const mpoc_llama *m, size_t n_seq, size_t length)
{
    size_t per = 2 * sizeof(float), g;
    size_t kv = m->cfg.n_kv_heads * m->cfg.head_dim;
    if (!mpoc_mul_size(per, m->cfg.n_layers, &per) || !mpoc_mul_size(per, length, &per) ||
        !mpoc_mul_size(per, kv, &per))
        return 1;
    g = SAMPLE_CACHE_BYTES / per;
    g = g < SAMPLE_GROUP ? g : SAMPLE_GROUP;
    g = g < n_seq ? g : n_seq;
    return g ? g : 1;
}

typedef struct sample_bufs {
    mpoc_llama_state **states; /* (group) */
    float *logits;             /* (group, vocab) */
    double *u;                 /* (group, length) uniforms */
    int32_t *cur;              /* (group) tokens of the step */
} sample_bufs;

/* Sequences first .. first+g−1 (rows of `tokens`), decoded together. */
static mpoc_status sample_group(const mpoc_llama *m, sample_bufs *sb, size_t g, size_t first,
                                size_t length, uint64_t seed, int32_t *tokens)
{
    size_t vocab = m->cfg.vocab_size;
    for (size_t i = 0; i < g; i++) {
        MPOC_TRY(mpoc_rng_uniform(seed, first + i, sb->u + i * length, length - 1));
        mpoc_llama_state_reset(sb->states[i]);
        tokens[i * length] = m->cfg.bos_id;
    }
    for (size_t t = 0; t + 1 < length; t++) {
        for (size_t i = 0; i < g; i++)
            sb->cur[i] = tokens[i * length + t];
        MPOC_TRY(mpoc_llama_decode_multi_(m, sb->states, g, sb->cur, sb->logits));
        for (size_t i = 0; i < g; i++)
            tokens[i * length + t + 1] = draw(sb->logits + i * vocab, vocab, sb->u[i * length + t]);
    }
    return MPOC_OK;
}

static void sample_bufs_free(sample_bufs *sb, size_t g)
{
    for (size_t i = 0; sb->states && i < g; i++)
        mpoc_llama_state_free(sb->states[i]);
    free(sb->states);
    free(sb->logits);
    free(sb->u);
    free(sb->cur);
}

mpoc_status mpoc_llama_sample(const mpoc_llama *m, size_t n_seq, size_t length, uint64_t seed,
                              int32_t *tokens)
{
    if (n_seq == 0 || length < 2 || !tokens)
        MPOC_FAIL(MPOC_E_INVAL, "sample: need at least one sequence of 2 or more tokens "
                  "(got %zu of %zu)", n_seq, length);
    size_t total;
    if (!mpoc_mul_size(n_seq, length, &total))
        MPOC_FAIL(MPOC_E_OVERFLOW, "sample: %zu sequences of %zu tokens overflow", n_seq, length);
    size_t g = sample_group_size(m, n_seq, length);
    sample_bufs sb = {calloc(g, sizeof *sb.states), mpoc_alloc_array(g * m->cfg.vocab_size, sizeof(float)),
                      mpoc_alloc_array(g * length, sizeof(double)), mpoc_alloc_array(g, sizeof(int32_t))};
    mpoc_status st = sb.states && sb.logits && sb.u && sb.cur ? MPOC_OK : MPOC_E_NOMEM;
    for (size_t i = 0; i < g && st == MPOC_OK; i++)
        st = mpoc_llama_state_new(m, length, &sb.states[i]);
    for (size_t i = 0; i < n_seq && st == MPOC_OK; i += g) {
        size_t k = n_seq - i < g ? n_seq - i : g;
        st = sample_group(m, &sb, k, i, length, seed, tokens + i * length);
    }
    sample_bufs_free(&sb, g);
    return st;
}

/* ---- evaluation ---------------------------------------------------------- */

typedef struct eval_acc {
    double kl_sum, kl_max, nll_ref, nll_cand;
    size_t agree, count;
} eval_acc;

static void accumulate(const float *lr, const float *lc, size_t vocab, int32_t target,
                       eval_acc *a)
{
    double kl = mpoc_logits_kl(lr, lc, vocab);
    a->kl_sum += kl;
    a->kl_max = kl > a->kl_max ? kl : a->kl_max;
    a->agree += mpoc_logits_argmax(lr, vocab) == mpoc_logits_argmax(lc, vocab);
    a->nll_ref += mpoc_logits_logsumexp(lr, vocab) - (double)lr[target];
    a->nll_cand += mpoc_logits_logsumexp(lc, vocab) - (double)lc[target];
    a->count++;
}

/* Positions per batched forward pass in eval: bounds the logits buffers to
 * 2 · EVAL_CHUNK · vocab floats whatever the sequence length. */
#define EVAL_CHUNK 128

/* A timed teacher-forced pass of n tokens of sequence `index` (starting at
 * position `start`) through m; non-finite logits (a broken candidate) are an
 * error, not a NaN in the figures. */
static mpoc_status timed_forward(const mpoc_llama *m, const char *role, mpoc_llama_state *s,
                                 const int32_t *seq, size_t index, size_t start, size_t n,
                                 float *logits, double *seconds)
{
    if (start == 0)
        mpoc_llama_state_reset(s);
    double t0 = now_seconds();
    mpoc_status st = mpoc_llama_forward(m, s, seq + start, n, logits);
    *seconds += now_seconds() - t0;
    size_t len = n * m->cfg.vocab_size;
    for (size_t i = 0; i < len && st == MPOC_OK; i++)
        if (!isfinite(logits[i]))
            MPOC_FAIL(MPOC_E_NUMERIC, "eval: the %s model's logit %zu at position %zu of sequence "
                      "%zu is %g", role, i % m->cfg.vocab_size, start + i / m->cfg.vocab_size,
                      index, (double)logits[i]);
    return st;
}

static mpoc_status eval_check(const mpoc_llama *ref, const mpoc_llama *cand, size_t n_seq,
                              size_t length, size_t *elems)
{
    MPOC_TRY(mpoc_llama_check_compatible(ref, cand));
    if (n_seq == 0 || length < 2)
        MPOC_FAIL(MPOC_E_INVAL, "eval: need at least one sequence of 2 or more tokens (got %zu "
                  "of %zu)", n_seq, length);
    size_t total, chunk = length < EVAL_CHUNK ? length : EVAL_CHUNK;
    if (!mpoc_mul_size(chunk, ref->cfg.vocab_size, elems) || !mpoc_mul_size(n_seq, length, &total))
        MPOC_FAIL(MPOC_E_OVERFLOW, "eval: %zu sequences of %zu tokens overflow", n_seq, length);
    return MPOC_OK;
}

/* Sequence `index` through both models, chunk by chunk over the caches. */
static mpoc_status eval_sequence(const mpoc_llama *ref, const mpoc_llama *cand,
                                 mpoc_llama_state *sr, mpoc_llama_state *sc, const int32_t *seq,
                                 size_t index, size_t length, float *lr, float *lc,
                                 eval_acc *acc, mpoc_eval_result *out)
{
    size_t vocab = ref->cfg.vocab_size;
    for (size_t c = 0; c < length; c += EVAL_CHUNK) {
        size_t n = length - c < EVAL_CHUNK ? length - c : EVAL_CHUNK;
        MPOC_TRY(timed_forward(ref, "reference", sr, seq, index, c, n, lr, &out->ref_seconds));
        MPOC_TRY(timed_forward(cand, "candidate", sc, seq, index, c, n, lc, &out->cand_seconds));
        for (size_t t = 0; t < n && c + t + 1 < length; t++)
            accumulate(lr + t * vocab, lc + t * vocab, vocab, seq[c + t + 1], acc);
    }
    return MPOC_OK;
}

mpoc_status mpoc_llama_eval(const mpoc_llama *ref, const mpoc_llama *cand, const int32_t *tokens,
                            size_t n_seq, size_t length, mpoc_eval_result *out)
{
    memset(out, 0, sizeof *out);
    size_t elems;
    MPOC_TRY(eval_check(ref, cand, n_seq, length, &elems));
    float *lr = mpoc_alloc_array(elems, sizeof(float)), *lc = mpoc_alloc_array(elems, sizeof(float));
    mpoc_llama_state *sr = NULL, *sc = NULL;
    mpoc_status st = lr && lc ? mpoc_llama_state_new(ref, length, &sr) : MPOC_E_NOMEM;
    if (st == MPOC_OK)
        st = mpoc_llama_state_new(cand, length, &sc);
    eval_acc acc = {0};
    for (size_t i = 0; i < n_seq && st == MPOC_OK; i++)
        st = eval_sequence(ref, cand, sr, sc, tokens + i * length, i, length, lr, lc, &acc, out);
    mpoc_llama_state_free(sr);
    mpoc_llama_state_free(sc);
    free(lr);
    free(lc);
    if (st != MPOC_OK)
        return st;
    double n = (double)acc.count;
    out->n_tokens = acc.count;
    out->n_forward = n_seq * length;
    out->kl_mean = acc.kl_sum / n;
    out->kl_max = acc.kl_max;
    out->top1 = (double)acc.agree / n;
    out->ppl_ref = exp(acc.nll_ref / n);
    out->ppl_cand = exp(acc.nll_cand / n);
    return MPOC_OK;
}
