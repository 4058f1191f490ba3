/* quant.c: storage precision of MPO cores and quantization with error
 * feedback (see mpoc_quant.h and docs/format.md §6). Numeric layer: uses the
 * dtype codecs and the BLAS adapter, never I/O. */
#include "mpoc_quant.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "internal.h"
#include "linalg.h"
#include "mpo_internal.h"
#include "util.h"

static const char *const quant_names[MPOC_QUANT_COUNT_] = {"f32", "f16", "bf16", "q8_0", "q4_0"};
static const mpoc_dtype quant_dtypes[MPOC_QUANT_COUNT_] = {
    MPOC_DTYPE_F32, MPOC_DTYPE_F16, MPOC_DTYPE_BF16, MPOC_DTYPE_Q8_0, MPOC_DTYPE_Q4_0};

const char *mpoc_quant_name(mpoc_quant_type t)
{
    return (unsigned)t < MPOC_QUANT_COUNT_ ? quant_names[t] : "?";
}

mpoc_status mpoc_quant_parse(const char *s, mpoc_quant_type *out)
{
    for (int i = 0; s && i < MPOC_QUANT_COUNT_; i++)
        if (!strcasecmp(s, quant_names[i])) {
            *out = (mpoc_quant_type)i;
            return MPOC_OK;
        }
    MPOC_FAIL(MPOC_E_INVAL, "unknown core type '%s' (f32, f16, bf16, q8_0, q4_0)", s ? s : "");
}

mpoc_dtype mpoc_quant_dtype(mpoc_quant_type t)
{
    return (unsigned)t < MPOC_QUANT_COUNT_ ? quant_dtypes[t] : MPOC_DTYPE_COUNT_;
}

mpoc_status mpoc_quant_from_dtype(mpoc_dtype d, mpoc_quant_type *out)
{
    for (int i = 0; i < MPOC_QUANT_COUNT_; i++)
        if (quant_dtypes[i] == d) {
            *out = (mpoc_quant_type)i;
            return MPOC_OK;
        }
    MPOC_FAIL(MPOC_E_UNSUPPORTED, "dtype %s is not a core storage type", mpoc_dtype_name(d));
}

static bool is_block(mpoc_quant_type t)
{
    return t == MPOC_QUANT_Q8_0 || t == MPOC_QUANT_Q4_0;
}

mpoc_status mpoc_quant_padded(mpoc_quant_type t, size_t n, size_t *out)
{
    if ((unsigned)t >= MPOC_QUANT_COUNT_)
        MPOC_FAIL(MPOC_E_INVAL, "invalid core type %d", (int)t);
    uint64_t p;
    if (!is_block(t)) {
        *out = n;
        return MPOC_OK;
    }
    if (!mpoc_round_up_u64(n, MPOC_QUANT_BLOCK, &p) || p > SIZE_MAX)
        return MPOC_E_OVERFLOW;
    *out = (size_t)p;
    return MPOC_OK;
}

mpoc_status mpoc_quant_nbytes(mpoc_quant_type t, size_t n, size_t *bytes)
{
    size_t p;
    uint64_t b;
    MPOC_TRY(mpoc_quant_padded(t, n, &p));
    MPOC_TRY(mpoc_dtype_nbytes(quant_dtypes[t], p, &b));
    if (b > SIZE_MAX)
        return MPOC_E_OVERFLOW;
    *bytes = (size_t)b;
    return MPOC_OK;
}

mpoc_status mpoc_quant_encode(mpoc_quant_type t, const float *src, size_t n, void *dst)
{
    size_t p;
    MPOC_TRY(mpoc_quant_padded(t, n, &p));
    for (size_t i = 0; i < n; i++)
        if (!isfinite(src[i]))
            MPOC_FAIL(MPOC_E_NUMERIC, "core value %zu is not finite", i);
    if (p == n)
        return mpoc_dtype_from_f32(quant_dtypes[t], src, n, dst);
    float *tmp = mpoc_calloc_array(p, sizeof(float));
    if (!tmp)
        return MPOC_E_NOMEM;
    memcpy(tmp, src, n * sizeof(float));
    mpoc_status st = mpoc_dtype_from_f32(quant_dtypes[t], tmp, p, dst);
    free(tmp);
    return st;
}

mpoc_status mpoc_quant_decode(mpoc_quant_type t, const void *src, size_t n, float *dst)
{
    size_t p;
    MPOC_TRY(mpoc_quant_padded(t, n, &p));
    if (p == n)
        return mpoc_dtype_to_f32(quant_dtypes[t], src, n, dst);
    float *tmp = mpoc_alloc_array(p, sizeof(float));
    if (!tmp)
        return MPOC_E_NOMEM;
    mpoc_status st = mpoc_dtype_to_f32(quant_dtypes[t], src, p, tmp);
    if (st == MPOC_OK)
        memcpy(dst, tmp, n * sizeof(float));
    free(tmp);
    return st;
}

mpoc_quant_options mpoc_quant_options_default(void)
{
    mpoc_quant_options o = {MPOC_QUANT_Q8_0, MPOC_QUANT_F16, false};
    return o;
}

void mpoc_qmpo_free(mpoc_qmpo *q)
{
    if (!q)
        return;
    mpoc_mpo_free(&q->mpo);
    for (size_t k = 0; k < MPOC_MAX_SITES; k++)
        free(q->data[k]);
    memset(q, 0, sizeof *q);
}

size_t mpoc_qmpo_bytes(const mpoc_qmpo *q)
{
    size_t b = 0;
    for (size_t k = 0; k < q->mpo.shape.sites; k++)
        b += q->nbytes[k];
    return b;
}

/* ------------------------------------------------------------ one core */

static size_t site_size(const mpoc_shape *s, size_t k)
{
    return s->row_dims[k] * s->col_dims[k];
}

/* Decode the n stored values back over `core` a chunk at a time (no
 * n-float buffer: a core can be tens of MB, and fresh memory costs page
 * faults), accumulating ‖Δ‖² and ‖core‖² on the way. Chunks are whole
 * blocks, so every chunk but the last starts at a block boundary. */
static mpoc_status decode_over(mpoc_quant_type t, const uint8_t *bytes, float *core, size_t n,
                               double *d2, double *n2)
{
    enum { CHUNK = 64 * MPOC_QUANT_BLOCK };
    float buf[CHUNK];
    size_t chunk_bytes;
    MPOC_TRY(mpoc_quant_nbytes(t, CHUNK, &chunk_bytes));
    double sd = 0.0, sn = 0.0;
    for (size_t i = 0, off = 0; i < n; i += CHUNK, off += chunk_bytes) {
        size_t len = n - i < CHUNK ? n - i : CHUNK;
        MPOC_TRY(mpoc_quant_decode(t, bytes + off, len, buf));
        for (size_t j = 0; j < len; j++) {
            double d = (double)core[i + j] - (double)buf[j];
            sd += d * d;
            sn += (double)core[i + j] * (double)core[i + j];
        }
        memcpy(core + i, buf, len * sizeof(float));
    }
    *d2 = sd;
    *n2 = sn;
    return MPOC_OK;
}

/* Store `core` (n floats) as type t in q's slot k: bytes, and the decoded
 * values written back over `core`. *eta gets ‖Δ‖/‖core‖. */
static mpoc_status store_core(mpoc_qmpo *q, size_t k, mpoc_quant_type t, float *core, size_t n,
                              double *eta)
{
    size_t nb;
    MPOC_TRY(mpoc_quant_nbytes(t, n, &nb));
    uint8_t *bytes = malloc(nb ? nb : 1);
    if (!bytes)
        return MPOC_E_NOMEM;
    double d2 = 0.0, n2 = 0.0;
    mpoc_status st = mpoc_quant_encode(t, core, n, bytes);
    if (st == MPOC_OK)
        st = decode_over(t, bytes, core, n, &d2, &n2);
    if (st != MPOC_OK) {
        free(bytes);
        return st;
    }
    *eta = n2 > 0.0 ? sqrt(d2 / n2) : 0.0;
    free(q->data[k]);
    q->data[k] = bytes;
    q->nbytes[k] = nb;
    q->types[k] = t;
    return MPOC_OK;
}

mpoc_status mpoc_qmpo_from_stored(const mpoc_shape *shape, const size_t *ranks,
                                  const mpoc_quant_type *types, const uint8_t *const *data,
                                  const size_t *nbytes, mpoc_qmpo *out)
{
    memset(out, 0, sizeof *out);
    if (shape->sites == 0 || shape->sites > MPOC_MAX_SITES || ranks[0] != 1 ||
        ranks[shape->sites] != 1)
        MPOC_FAIL(MPOC_E_SHAPE, "quantized MPO: bad sites or boundary ranks");
    out->mpo.shape = *shape;
    memcpy(out->mpo.ranks, ranks, (shape->sites + 1) * sizeof *ranks);
    out->mpo.centre = MPOC_NO_CENTRE;
    mpoc_status st = MPOC_OK;
    for (size_t k = 0; st == MPOC_OK && k < shape->sites; k++) {
        size_t n = 0, nb;
        bool ok = ranks[k] > 0 && ranks[k + 1] > 0 && mpoc_mul_size(ranks[k], site_size(shape, k), &n) &&
                  mpoc_mul_size(n, ranks[k + 1], &n);
        if (!ok) {
            st = MPOC_E_OVERFLOW;
            break;
        }
        st = mpoc_quant_nbytes(types[k], n, &nb);
        if (st == MPOC_OK && nb != nbytes[k]) {
            mpoc_log_("core %zu: %zu bytes stored where %s of %zu values needs %zu", k, nbytes[k],
                      mpoc_quant_name(types[k]), n, nb);
            st = MPOC_E_FORMAT;
        }
        if (st != MPOC_OK)
            break;
        out->mpo.cores[k] = mpoc_alloc_array(n, sizeof(float));
        out->data[k] = malloc(nb ? nb : 1);
        if (!out->mpo.cores[k] || !out->data[k]) {
            st = MPOC_E_NOMEM;
            break;
        }
        memcpy(out->data[k], data[k], nb);
        out->nbytes[k] = nb;
        out->types[k] = types[k];
        st = mpoc_quant_decode(types[k], data[k], n, out->mpo.cores[k]);
    }
    if (st != MPOC_OK)
        mpoc_qmpo_free(out);
    return st;
}

/* ------------------------------------------------------- error feedback */

/* Notation: T is W permuted to site order (s_0 … s_{d−1}, zero padded), the
 * MPO right-canonical (centre 0), n_k = s_0⋯s_{k−1}. Core k is re-fitted as
 * the minimiser of ‖T − L_k·G·R_k‖ with L_k (n_k × r_k) the contraction of
 * the stored cores 0..k−1 and R_k that of the right-orthonormal cores
 * k+1..d−1: G = M_k⁻¹·L_kᵀ·P_k, M_k = L_kᵀL_k, P_k = T contracted from the
 * right with cores k+1..d−1 ((n_k s_k) × r_{k+1}). The P_k and the re-fit of
 * core 0 (L_0 = [1]) do not depend on the core type, so they are computed
 * once for every type quantized from the same MPO (fb_shared). */

/* M⁻¹ by the old scalar Cholesky with clamped pivots, for a Gram that
 * LAPACK finds indefinite (rank-deficient up to rounding): the clamp keeps
 * the deficient directions finite. a (r × r, double) gets M⁻¹. */
static void clamped_inverse(const float *m, size_t r, double ridge, double *l, double *li, double *a)
{
    for (size_t i = 0; i < r; i++) /* M = L Lᵀ */
        for (size_t j = 0; j <= i; j++) {
            double v = 0.5 * ((double)m[i * r + j] + (double)m[j * r + i]) + (i == j ? ridge : 0.0);
            for (size_t p = 0; p < j; p++)
                v -= l[i * r + p] * l[j * r + p];
            l[i * r + j] = i == j ? sqrt(v > ridge ? v : ridge) : v / l[j * r + j];
        }
    for (size_t j = 0; j < r; j++) /* L⁻¹, lower triangular, column by column */
        for (size_t i = j; i < r; i++) {
            double v = i == j ? 1.0 : 0.0;
            for (size_t p = j; p < i; p++)
                v -= l[i * r + p] * li[p * r + j];
            li[i * r + j] = v / l[i * r + i];
        }
    for (size_t i = 0; i < r; i++) /* M⁻¹ = L⁻ᵀ L⁻¹ */
        for (size_t j = 0; j <= i; j++) {
            double v = 0.0;
            for (size_t p = i; p < r; p++)
                v += li[p * r + i] * li[p * r + j];
            a[i * r + j] = a[j * r + i] = v;
        }
}

/* inv (r × r, float) = (M + ridge·I)⁻¹ in double. M is the Gram matrix of a
 * nearly orthonormal left environment, so well conditioned; the tiny
 * relative ridge keeps a rank-deficient one (e.g. from an all-zero block of
 * W) finite. LAPACK's Cholesky (O(r³) at BLAS speed; the scalar loops cost
 * ~10 ms at r = 240), the clamped scalar one when LAPACK refuses M. */
static mpoc_status gram_inverse(const float *m, size_t r, float *inv)
{
    size_t rr;
    if (!mpoc_mul_size(r, r, &rr))
        return MPOC_E_OVERFLOW;
    double *a = mpoc_alloc_array(rr, sizeof(double));
    if (!a)
        return MPOC_E_NOMEM;
    double trace = 0.0;
    for (size_t i = 0; i < r; i++)
        trace += (double)m[i * r + i];
    double ridge = trace > 0.0 ? 1e-10 * trace / (double)r : 1e-30;
    for (size_t i = 0; i < r; i++)
        for (size_t j = 0; j < r; j++)
            a[i * r + j] = 0.5 * ((double)m[i * r + j] + (double)m[j * r + i]) + (i == j ? ridge : 0.0);
    bool ok;
    mpoc_status st = mpoc_la_spd_inverse(a, r, &ok);
    if (st == MPOC_OK && !ok) {
        double *l = mpoc_calloc_array(rr, sizeof(double));
        double *li = mpoc_calloc_array(rr, sizeof(double));
        if (l && li)
            clamped_inverse(m, r, ridge, l, li, a);
        else
            st = MPOC_E_NOMEM;
        free(l);
        free(li);
    }
    for (size_t i = 0; st == MPOC_OK && i < rr; i++)
        inv[i] = (float)a[i];
    free(a);
    return st;
}

/* Buffers of the feedback sweep a target keeps between calls, grow-only:
 * first touch of fresh memory costs page faults (~15% of a sweep's time),
 * and a sweep quantizes many MPOs of one shape, the largest first. */
enum { TB_P = 0, TB_L0 = MPOC_MAX_SITES, TB_L1, TB_Z, TB_T, TB_DENSE, TB_COUNT };

/* W prepared for every MPO of one shape (mpoc_quant.h). */
struct mpoc_quant_target {
    mpoc_shape shape;
    float *t;        /* T: W permuted to site order, zero padded */
    uint8_t *real;   /* 1 where T holds an entry of W, 0 on padding; NULL: no padding */
    double norm_sq;  /* ‖W‖² */
    float *buf[TB_COUNT];
    size_t cap[TB_COUNT];
};

/* At least n floats of the target's buffer `slot` (contents not kept). */
static float *target_buf(mpoc_quant_target *tg, int slot, size_t n)
{
    n = n ? n : 1;
    if (tg->cap[slot] < n) {
        free(tg->buf[slot]);
        tg->buf[slot] = mpoc_alloc_array(n, sizeof(float));
        tg->cap[slot] = tg->buf[slot] ? n : 0;
    }
    return tg->buf[slot];
}

/* What every core type quantized from one MPO shares. */
typedef struct fb_shared {
    const mpoc_mpo *ref;          /* the MPO, right-canonical: the caller's or own_ref */
    mpoc_mpo own_ref;
    mpoc_quant_target *tg;        /* the caller's, or own */
    mpoc_quant_target *own;
    float *p[MPOC_MAX_SITES];     /* P_k (the target's buffers); p[d−1] is T */
    float *core0;                 /* re-fitted core 0 before quantization (in p[0]) */
    size_t l_max, z_max, t_max, r_max; /* scratch sizes of one type's sweep (floats; r: rank) */
} fb_shared;

static void fb_shared_free(fb_shared *sh)
{
    size_t d = sh->ref ? sh->ref->shape.sites : 0;
    if (d >= 3)
        free(sh->p[d - 2]); /* still held when right_targets failed half way */
    mpoc_mpo_free(&sh->own_ref);
    mpoc_quant_target_free(sh->own);
    memset(sh, 0, sizeof *sh);
}

/* P_k for k = d−2..0 from T, one gemm per core (the P_0 of this chain is
 * what the first re-fit needs; every intermediate is a later P_k). With
 * three sites or more, P_{d−2} (|T|·r_{d−1}/s_{d−1} floats, about |W| when
 * the last bond is full) is only an input of P_{d−3} and is freed right
 * after it: its re-fit takes the other association (fb_core), so the sweep
 * never holds it next to L_{d−1}, which is as large. */
static mpoc_status right_targets(fb_shared *sh)
{
    const mpoc_mpo *m = sh->ref;
    size_t d = m->shape.sites, rows = m->shape.padded_rows * m->shape.padded_cols;
    for (size_t k = d - 1; k-- > 0;) {
        size_t cols = site_size(&m->shape, k + 1) * m->ranks[k + 2], r = m->ranks[k + 1], n;
        rows /= site_size(&m->shape, k + 1);
        if (!mpoc_mul_size(rows, r, &n))
            return MPOC_E_OVERFLOW;
        bool transient = d >= 3 && k == d - 2;
        sh->p[k] = transient ? mpoc_alloc_array(n, sizeof(float)) : target_buf(sh->tg, TB_P + (int)k, n);
        if (!sh->p[k])
            return MPOC_E_NOMEM;
        MPOC_TRY(mpoc_la_gemm(false, true, rows, r, cols, 1.0f, sh->p[k + 1], cols, m->cores[k + 1],
                              cols, 0.0f, sh->p[k], r));
        if (d >= 3 && k == d - 3) {
            free(sh->p[d - 2]);
            sh->p[d - 2] = NULL;
        }
    }
    return MPOC_OK;
}

/* Scratch sizes of one type's sweep: L_k (k ≥ 2), Z (a core), the product
 * scratch r_k × min(n_k, s_k r_{k+1}), and the largest rank. Checked. */
static mpoc_status scratch_sizes(fb_shared *sh)
{
    const mpoc_mpo *m = sh->ref;
    size_t n = 1;
    for (size_t k = 0; k < m->shape.sites; k++) {
        size_t r = m->ranks[k], c = site_size(&m->shape, k) * m->ranks[k + 1], l, z, t;
        size_t rr;
        bool ok = mpoc_mul_size(n, r, &l) && mpoc_mul_size(r, c, &z) &&
                  mpoc_mul_size(r, n < c ? n : c, &t) && mpoc_mul_size(r, r, &rr);
        if (!ok)
            return MPOC_E_OVERFLOW;
        if (k >= 2 && l > sh->l_max)
            sh->l_max = l;
        sh->z_max = z > sh->z_max ? z : sh->z_max;
        sh->t_max = t > sh->t_max ? t : sh->t_max;
        sh->r_max = r > sh->r_max ? r : sh->r_max;
        if (!mpoc_mul_size(n, site_size(&m->shape, k), &n))
            return MPOC_E_OVERFLOW;
    }
    return MPOC_OK;
}

/* Where T holds entries of W (the MPO module's own index map) and ‖W‖², so
 * errors measured on T are cropped like mpoc_mpo_rel_error's. */
static mpoc_status real_entries(mpoc_quant_target *tg)
{
    const mpoc_shape *s = &tg->shape;
    size_t n = s->padded_rows * s->padded_cols;
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) /* zero on padding */
        sum += (double)tg->t[i] * (double)tg->t[i];
    tg->norm_sq = sum;
    if (s->padded_rows == s->rows && s->padded_cols == s->cols)
        return MPOC_OK;
    return mpoc_mpo_real_mask(s, &tg->real);
}

void mpoc_quant_target_free(mpoc_quant_target *t)
{
    if (!t)
        return;
    free(t->t);
    free(t->real);
    for (int i = 0; i < TB_COUNT; i++)
        free(t->buf[i]);
    free(t);
}

mpoc_status mpoc_quant_target_new(mpoc_mat_view w, const mpoc_shape *shape, mpoc_quant_target **out)
{
    *out = NULL;
    if (!shape || shape->sites == 0 || shape->sites > MPOC_MAX_SITES || !w.data ||
        w.rows != shape->rows || w.cols != shape->cols)
        MPOC_FAIL(MPOC_E_SHAPE, "quantize target: %zu x %zu matrix for another shape", w.rows,
                  w.cols);
    mpoc_quant_target *t = calloc(1, sizeof *t);
    if (!t)
        return MPOC_E_NOMEM;
    t->shape = *shape;
    mpoc_status st = mpoc_mpo_permuted_copy(w, shape, &t->t);
    if (st == MPOC_OK)
        st = real_entries(t);
    if (st != MPOC_OK) {
        mpoc_quant_target_free(t);
        return st;
    }
    *out = t;
    return MPOC_OK;
}

static bool same_shape(const mpoc_shape *a, const mpoc_shape *b)
{
    bool same = a->sites == b->sites && a->rows == b->rows && a->cols == b->cols &&
                a->padded_rows == b->padded_rows && a->padded_cols == b->padded_cols;
    for (size_t k = 0; same && k < a->sites; k++)
        same = a->row_dims[k] == b->row_dims[k] && a->col_dims[k] == b->col_dims[k];
    return same;
}

/* The type-independent part: canonical copy, T, the P_k, and core 0 re-fitted
 * (Z_0 = P_0; its orthonormal factor when d > 1 and it is tall). */
static mpoc_status fb_shared_build(const mpoc_mpo *mpo, mpoc_mat_view w, mpoc_quant_target *tg,
                                   mpoc_workspace *ws, fb_shared *sh)
{
    memset(sh, 0, sizeof *sh);
    if (tg && !same_shape(&tg->shape, &mpo->shape))
        MPOC_FAIL(MPOC_E_SHAPE, "quantize: the prepared target is for another MPO shape");
    if (!tg) {
        MPOC_TRY(mpoc_quant_target_new(w, &mpo->shape, &sh->own));
        tg = sh->own;
    }
    sh->tg = tg;
    /* cores 1..d−1 right-orthonormal: the right environment of every re-fit
     * (an MPO already centred on core 0, as a sweep hands over, is read in
     * place: canonicalizing it would change nothing) */
    sh->ref = mpo;
    if (mpo->centre != 0) {
        MPOC_TRY(mpoc_mpo_copy(&sh->own_ref, mpo));
        MPOC_TRY(mpoc_mpo_canonicalize(&sh->own_ref, 0, ws));
        sh->ref = &sh->own_ref;
    }
    size_t d = sh->ref->shape.sites, s0 = site_size(&sh->ref->shape, 0), r1 = sh->ref->ranks[1];
    sh->p[d - 1] = tg->t; /* read only */
    MPOC_TRY(right_targets(sh));
    MPOC_TRY(scratch_sizes(sh));
    sh->core0 = sh->p[0];
    if (d > 1 && s0 >= r1)
        MPOC_TRY(mpoc_la_qr(sh->core0, s0, r1, r1, NULL, ws));
    return MPOC_OK;
}

/* Floats of Ŵ formed at a time for the error (4 MiB): enough rows for an
 * efficient gemm, and no |W|-sized buffer next to T and the P_k. */
#define FB_ERROR_BLOCK ((size_t)1 << 20)

/* One type's scratch, sized from fb_shared and reused by every type; all
 * but the two r × r matrices are the target's buffers. */
typedef struct fb_scratch {
    float *l[2], *z, *t, *m, *inv;
    float *dense; /* a block of rows of the stored MPO contracted, for its error */
} fb_scratch;

static void fb_scratch_free(fb_scratch *f)
{
    free(f->m);
    free(f->inv);
    memset(f, 0, sizeof *f);
}

static mpoc_status fb_scratch_new(const fb_shared *sh, fb_scratch *f)
{
    memset(f, 0, sizeof *f);
    const mpoc_shape *s = &sh->ref->shape;
    /* L_{k+1} is written to l[k & 1] while L_k is read: with 3 sites only
     * L_2 exists (L_1 is core 0), so l[0] is only needed from 4 sites on */
    f->l[0] = s->sites > 3 ? target_buf(sh->tg, TB_L0, sh->l_max) : NULL;
    f->l[1] = target_buf(sh->tg, TB_L1, sh->l_max);
    f->z = target_buf(sh->tg, TB_Z, sh->z_max);
    f->t = target_buf(sh->tg, TB_T, sh->t_max);
    size_t last = site_size(s, s->sites - 1), block = FB_ERROR_BLOCK > last ? FB_ERROR_BLOCK : last;
    f->dense = target_buf(sh->tg, TB_DENSE, block);
    f->m = mpoc_alloc_array(sh->r_max, sh->r_max * sizeof(float));
    f->inv = mpoc_alloc_array(sh->r_max, sh->r_max * sizeof(float));
    if (f->dense && (f->l[0] || s->sites <= 3) && f->l[1] && f->z && f->t && f->m && f->inv)
        return MPOC_OK;
    fb_scratch_free(f);
    return MPOC_E_NOMEM;
}

/* z (r × c) = M⁻¹·Lᵀ·P with L n × r and P n × c: the cheaper association
 * first (M⁻¹Lᵀ when n ≤ c, else Lᵀ·P), t holding the intermediate. */
static mpoc_status refit_product(const float *inv, size_t r, const float *l, size_t n, const float *p,
                                 size_t c, float *t, float *z)
{
    if (n <= c) {
        MPOC_TRY(mpoc_la_gemm(false, true, r, n, r, 1.0f, inv, r, l, r, 0.0f, t, n));
        return mpoc_la_gemm(false, false, r, c, n, 1.0f, t, n, p, c, 0.0f, z, c);
    }
    MPOC_TRY(mpoc_la_gemm(true, false, r, c, n, 1.0f, l, r, p, c, 0.0f, t, c));
    return mpoc_la_gemm(false, false, r, c, r, 1.0f, inv, r, t, c, 0.0f, z, c);
}

/* z = M⁻¹·Lᵀ·P_{d−2} without P_{d−2} = T·G_{d−1}ᵀ: (Lᵀ·T)·G_{d−1}ᵀ, Lᵀ·T
 * being r × s_{d−2}s_{d−1} (small: the row count n is gone). */
static mpoc_status refit_before_last(const fb_shared *sh, const float *inv, size_t r,
                                     const float *l, size_t n, size_t s, size_t r2, float *z)
{
    const mpoc_mpo *ref = sh->ref;
    size_t d = ref->shape.sites, sl = site_size(&ref->shape, d - 1), rs = r * s, ys, xs;
    if (!mpoc_mul_size(rs, sl, &ys) || !mpoc_mul_size(rs, r2, &xs))
        return MPOC_E_OVERFLOW;
    float *y = mpoc_alloc_array(ys, sizeof(float)), *x = mpoc_alloc_array(xs, sizeof(float));
    mpoc_status st = y && x ? MPOC_OK : MPOC_E_NOMEM;
    if (st == MPOC_OK) /* Y = Lᵀ·T: (n × r)ᵀ (n × s·s_{d−1}) */
        st = mpoc_la_gemm(true, false, r, s * sl, n, 1.0f, l, r, sh->p[d - 1], s * sl, 0.0f, y,
                          s * sl);
    if (st == MPOC_OK) /* X = Y·G_{d−1}ᵀ as (r s) × s_{d−1} times s_{d−1} × r_{d−1} */
        st = mpoc_la_gemm(false, true, rs, r2, sl, 1.0f, y, sl, ref->cores[d - 1], sl, 0.0f, x,
                          r2);
    if (st == MPOC_OK) /* z = M⁻¹·X as r × (s r_{d−1}) */
        st = mpoc_la_gemm(false, false, r, s * r2, r, 1.0f, inv, r, x, s * r2, 0.0f, z, s * r2);
    free(y);
    free(x);
    return st;
}

/* Re-fit core k ≥ 1 of q against P_k with the stored cores on its left
 * (L = l, n × r_k, Gram f->m), keep its orthonormal factor when k < d−1 and
 * the core is tall (the R is absorbed by the next re-fit; Q has the
 * near-uniform magnitudes block quantizers handle well), and store it. */
static mpoc_status fb_core(const fb_shared *sh, mpoc_qmpo *q, size_t k, const float *l, size_t n,
                           fb_scratch *f, mpoc_quant_type t, mpoc_workspace *ws, double *eta)
{
    mpoc_mpo *m = &q->mpo;
    size_t d = m->shape.sites, r = m->ranks[k], r2 = m->ranks[k + 1], s = site_size(&m->shape, k);
    MPOC_TRY(gram_inverse(f->m, r, f->inv));
    if (sh->p[k])
        MPOC_TRY(refit_product(f->inv, r, l, n, sh->p[k], s * r2, f->t, f->z));
    else /* k = d−2, whose P_k was freed */
        MPOC_TRY(refit_before_last(sh, f->inv, r, l, n, s, r2, f->z));
    if (k + 1 < d && r * s >= r2)
        MPOC_TRY(mpoc_la_qr(f->z, r * s, r2, r2, NULL, ws));
    memcpy(m->cores[k], f->z, r * s * r2 * sizeof(float));
    return store_core(q, k, t, m->cores[k], r * s * r2, eta);
}

/* Σ (t − ŵ)² over the entries real marks (all when real is NULL), double. */
static double sum_sq_diff(const float *t, const float *what, const uint8_t *real, size_t len)
{
    double diff = 0.0;
    if (real) {
#pragma omp simd reduction(+ : diff)
        for (size_t i = 0; i < len; i++) {
            double e = (double)t[i] - (double)what[i];
            diff += real[i] ? e * e : 0.0; /* padding never counts, even if not finite */
        }
    } else {
#pragma omp simd reduction(+ : diff)
        for (size_t i = 0; i < len; i++) {
            double e = (double)t[i] - (double)what[i];
            diff += e * e;
        }
    }
    return diff;
}

/* ‖W − Ŵ‖/‖W‖ with Ŵ = L_{d−1}·G_{d−1} (l: n × r, the last core r × s),
 * over W's entries only: the contraction mpoc_mpo_rel_error would redo from
 * core 0, finished from the left environment the sweep already holds. Ŵ is
 * formed a block of rows at a time (`dense` holds FB_ERROR_BLOCK floats):
 * the same products as one gemm, without a second |W| buffer. */
static mpoc_status fb_error(const fb_shared *sh, const mpoc_mpo *m, const float *l, size_t n,
                            float *dense, double *rel_error)
{
    size_t d = m->shape.sites, r = m->ranks[d - 1], s = site_size(&m->shape, d - 1);
    const float *t = sh->p[d - 1];
    const uint8_t *real = sh->tg->real;
    double diff = 0.0;
    if (d == 1) { /* one site: Ŵ is core 0 itself */
        diff = sum_sq_diff(t, m->cores[0], real, s);
    } else {
        size_t rows = FB_ERROR_BLOCK / s ? FB_ERROR_BLOCK / s : 1;
        for (size_t i = 0; i < n; i += rows) {
            size_t b = n - i < rows ? n - i : rows;
            MPOC_TRY(mpoc_la_gemm(false, false, b, s, r, 1.0f, l + i * r, r, m->cores[d - 1], s,
                                  0.0f, dense, s));
            diff += sum_sq_diff(t + i * s, dense, real ? real + i * s : NULL, b * s);
        }
    }
    double norm = sh->tg->norm_sq;
    *rel_error = norm > 0.0 ? sqrt(diff / norm) : (diff > 0.0 ? (double)INFINITY : 0.0);
    return MPOC_OK;
}

/* One core type with feedback: q->mpo is shaped like sh->ref (mpo_shell). */
static mpoc_status fb_run(const fb_shared *sh, mpoc_qmpo *q, const mpoc_quant_options *opt,
                          fb_scratch *f, mpoc_workspace *ws, mpoc_quant_report *rep)
{
    mpoc_mpo *m = &q->mpo;
    size_t d = m->shape.sites, n = site_size(&m->shape, 0);
    memcpy(m->cores[0], sh->core0, mpoc_mpo_core_size(m, 0) * sizeof(float));
    MPOC_TRY(store_core(q, 0, d > 1 ? opt->core : opt->centre, m->cores[0],
                        mpoc_mpo_core_size(m, 0), &rep->core_rel_error[0]));
    const float *l = m->cores[0]; /* L_1 = G_0 */
    for (size_t k = 1; k < d; k++) {
        MPOC_TRY(mpoc_la_gram(n, m->ranks[k], l, m->ranks[k], f->m));
        MPOC_TRY(fb_core(sh, q, k, l, n, f, k + 1 < d ? opt->core : opt->centre, ws,
                         &rep->core_rel_error[k]));
        if (k + 1 < d) { /* L_{k+1} = L_k·G_k, n_{k+1} × r_{k+1} */
            size_t c = site_size(&m->shape, k) * m->ranks[k + 1];
            float *next = f->l[k & 1];
            MPOC_TRY(mpoc_la_gemm(false, false, n, c, m->ranks[k], 1.0f, l, m->ranks[k],
                                  m->cores[k], c, 0.0f, next, c));
            l = next;
            n *= site_size(&m->shape, k);
        }
    }
    return fb_error(sh, m, l, n, f->dense, &rep->rel_error);
}

/* W must be given unless a prepared target stands in for it (then only its
 * dimensions are read). */
static mpoc_status check_target(const mpoc_mpo *mpo, mpoc_mat_view w, bool prepared)
{
    if (!mpo || mpo->shape.sites == 0 || mpo->shape.sites > MPOC_MAX_SITES)
        MPOC_FAIL(MPOC_E_INVAL, "quantize: invalid MPO");
    if (w.rows != mpo->shape.rows || w.cols != mpo->shape.cols || (!w.data && !prepared))
        MPOC_FAIL(MPOC_E_SHAPE, "quantize: target is %zu x %zu but the MPO is %zu x %zu", w.rows,
                  w.cols, mpo->shape.rows, mpo->shape.cols);
    for (size_t k = 0; k < mpo->shape.sites; k++)
        if (!mpo->cores[k])
            MPOC_FAIL(MPOC_E_INVAL, "quantize: core %zu missing", k);
    return MPOC_OK;
}

static mpoc_status quant_independent(mpoc_qmpo *q, const mpoc_quant_options *opt,
                                     mpoc_workspace *ws, mpoc_quant_report *rep)
{
    mpoc_mpo *m = &q->mpo;
    size_t d = m->shape.sites;
    MPOC_TRY(mpoc_mpo_canonicalize(m, d - 1, ws));
    for (size_t k = 0; k < d; k++)
        MPOC_TRY(store_core(q, k, k + 1 < d ? opt->core : opt->centre, m->cores[k],
                            mpoc_mpo_core_size(m, k), &rep->core_rel_error[k]));
    return MPOC_OK;
}

/* dst: src's shape, ranks, gauge and discarded weights with cores allocated
 * but not copied — the feedback sweep writes every core — and no spectra
 * (quantization makes them stale). */
static mpoc_status mpo_shell(mpoc_mpo *dst, const mpoc_mpo *src)
{
    mpoc_mpo_frame(dst, src);
    for (size_t k = 0; k < src->shape.sites; k++) {
        size_t n = mpoc_mpo_core_size(src, k);
        dst->cores[k] = mpoc_alloc_array(n ? n : 1, sizeof(float));
        if (!dst->cores[k]) {
            mpoc_mpo_free(dst);
            return MPOC_E_NOMEM;
        }
    }
    return MPOC_OK;
}

/* One core type: its copy of the MPO quantized (with feedback from sh, or
 * independently), then what every result carries: no gauge, no stale
 * spectra, its bytes and the measured error. */
static mpoc_status quant_one(const mpoc_mpo *mpo, const fb_shared *sh, fb_scratch *f,
                             mpoc_mat_view w, const mpoc_quant_options *opt, mpoc_workspace *ws,
                             mpoc_qmpo *out, mpoc_quant_report *rep)
{
    mpoc_status st = opt->no_feedback ? mpoc_mpo_copy(&out->mpo, mpo) : mpo_shell(&out->mpo, sh->ref);
    if (st == MPOC_OK)
        st = opt->no_feedback ? quant_independent(out, opt, ws, rep) : fb_run(sh, out, opt, f, ws, rep);
    if (st == MPOC_OK) {
        out->mpo.centre = MPOC_NO_CENTRE; /* quantization broke the gauge */
        for (size_t k = 0; k + 1 < out->mpo.shape.sites; k++) {
            free(out->mpo.spectra[k]); /* stale */
            out->mpo.spectra[k] = NULL;
        }
        rep->bytes = mpoc_qmpo_bytes(out);
        if (opt->no_feedback) /* the feedback sweep measured it already */
            st = mpoc_mpo_rel_error(&out->mpo, w, ws, &rep->rel_error);
    }
    return st;
}

static mpoc_status check_options(const mpoc_quant_options *opts, size_t n)
{
    if (n == 0 || !opts)
        MPOC_FAIL(MPOC_E_INVAL, "quantize: no core types given");
    for (size_t i = 0; i < n; i++)
        if ((unsigned)opts[i].core >= MPOC_QUANT_COUNT_ || (unsigned)opts[i].centre >= MPOC_QUANT_COUNT_)
            MPOC_FAIL(MPOC_E_INVAL, "quantize: invalid core type");
    return MPOC_OK;
}

/* Every type in turn; the shared part is built once when any uses feedback. */
static mpoc_status quant_all(const mpoc_mpo *mpo, mpoc_mat_view w, mpoc_quant_target *tg,
                             const mpoc_quant_options *opts, size_t n, mpoc_workspace *ws,
                             mpoc_qmpo *out, mpoc_quant_report *rep)
{
    bool feedback = false;
    for (size_t i = 0; i < n; i++)
        feedback |= !opts[i].no_feedback;
    fb_shared sh;
    fb_scratch f;
    memset(&sh, 0, sizeof sh);
    memset(&f, 0, sizeof f);
    mpoc_status st = MPOC_OK;
    if (feedback) {
        st = fb_shared_build(mpo, w, tg, ws, &sh);
        if (st == MPOC_OK)
            st = fb_scratch_new(&sh, &f);
    }
    for (size_t i = 0; st == MPOC_OK && i < n; i++)
        st = quant_one(mpo, &sh, &f, w, &opts[i], ws, &out[i], &rep[i]);
    fb_scratch_free(&f);
    fb_shared_free(&sh);
    return st;
}

mpoc_status mpoc_quant_mpo_multi(const mpoc_mpo *mpo, mpoc_mat_view w, mpoc_quant_target *target,
                                 const mpoc_quant_options *opts, size_t n, mpoc_workspace *ws,
                                 mpoc_qmpo *out, mpoc_quant_report *rep)
{
    mpoc_quant_report local;
    for (size_t i = 0; i < n; i++) {
        memset(&out[i], 0, sizeof out[i]);
        if (rep) {
            memset(&rep[i], 0, sizeof rep[i]);
            rep[i].rel_error = NAN;
        }
    }
    if (!rep && n > 1)
        MPOC_FAIL(MPOC_E_INVAL, "quantize: several core types need reports");
    MPOC_TRY(check_options(opts, n));
    bool all_feedback = true;
    for (size_t i = 0; i < n; i++)
        all_feedback &= !opts[i].no_feedback;
    MPOC_TRY(check_target(mpo, w, target && all_feedback));
    if (!rep) {
        memset(&local, 0, sizeof local);
        rep = &local;
    }
    mpoc_workspace *owned = NULL;
    if (!ws) {
        MPOC_TRY(mpoc_workspace_new(&owned));
        ws = owned;
    }
    mpoc_status st = quant_all(mpo, w, target, opts, n, ws, out, rep);
    if (st != MPOC_OK)
        for (size_t i = 0; i < n; i++)
            mpoc_qmpo_free(&out[i]);
    mpoc_workspace_free(owned);
    return st;
}

mpoc_status mpoc_quant_mpo(const mpoc_mpo *mpo, mpoc_mat_view w, const mpoc_quant_options *opt,
                           mpoc_workspace *ws, mpoc_qmpo *out, mpoc_quant_report *rep)
{
    return mpoc_quant_mpo_multi(mpo, w, NULL, opt, 1, ws, out, rep);
}
