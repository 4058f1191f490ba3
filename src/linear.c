/* linear.c: linear operators y = W·x, dense or MPO (mpoc_llama.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "linalg.h"
#include "mpoc_llama.h"
#include "util.h"

struct mpoc_linear {
    mpoc_linear_kind kind;
    size_t rows, cols; /* W is rows × cols = [out, in] */
    mpoc_mat dense;    /* DENSE float32: rows × cols, owned */
    mpoc_dtype dtype;  /* DENSE: storage dtype (F32: `dense`; others: `raw`) */
    unsigned char *raw; /* DENSE non-F32: rows × row_bytes as stored, owned */
    size_t row_bytes;
    mpoc_mpo mpo;      /* MPO: owned cores (gather, params) */
    mpoc_mpo_plan *plan; /* MPO: the cores permuted once, cheaper order (apply) */
    mpoc_mpo_plan *batch_plan; /* MPO, batches of ≥ MERGE_BATCH rows: sites merged for
                                  fewer multiply-adds (NULL when merging does not pay) */
};

mpoc_status mpoc_linear_new_dense(mpoc_mat *w, mpoc_linear **out)
{
    *out = NULL;
    if (!w || !w->data || w->rows == 0 || w->cols == 0)
        MPOC_FAIL(MPOC_E_INVAL, "linear: empty dense matrix");
    mpoc_linear *l = calloc(1, sizeof *l);
    if (!l)
        return MPOC_E_NOMEM;
    l->kind = MPOC_LINEAR_DENSE;
    l->dtype = MPOC_DTYPE_F32;
    l->rows = w->rows;
    l->cols = w->cols;
    l->dense = *w;
    memset(w, 0, sizeof *w);
    *out = l;
    return MPOC_OK;
}

/* Bytes of one row of t in its storage dtype, when t can stay in it: a
 * readable non-F32 dtype whose blocks do not straddle rows. 0 otherwise. */
static size_t stored_row_bytes(const mpoc_tensor *t)
{
    const mpoc_dtype_traits *tr = mpoc_dtype_info(t->dtype);
    uint64_t row, total;
    /* whole blocks per row first: mpoc_dtype_nbytes would log the refusal */
    if (t->dtype == MPOC_DTYPE_F32 || !tr || !tr->can_read || t->shape[1] == 0 ||
        tr->block_elems == 0 || t->shape[1] % tr->block_elems != 0 || tr->block_bits % 8 != 0 ||
        mpoc_dtype_nbytes(t->dtype, t->shape[1], &row) != MPOC_OK || row == 0 ||
        !mpoc_mul_u64(row, t->shape[0], &total) || total != t->nbytes || total > SIZE_MAX)
        return 0;
    return (size_t)row;
}

/* A dense operator that keeps t's bytes as stored (1–2 bytes per weight for
 * F16/BF16, ~0.5 for 4-bit ggml types) and dequantizes rows at each apply:
 * a 7B model in Q4_K stays ~4 GB instead of 28 GB of float32, and decoding,
 * which is bound by memory traffic, reads fewer bytes per token. */
static mpoc_status linear_stored(const mpoc_tensor *t, size_t row_bytes, mpoc_linear **out)
{
    mpoc_linear *l = calloc(1, sizeof *l);
    if (!l)
        return MPOC_E_NOMEM;
    l->raw = mpoc_alloc_array((size_t)t->nbytes, 1);
    if (!l->raw) {
        free(l);
        return MPOC_E_NOMEM;
    }
    memcpy(l->raw, t->data, (size_t)t->nbytes);
    l->kind = MPOC_LINEAR_DENSE;
    l->dtype = t->dtype;
    l->rows = (size_t)t->shape[0];
    l->cols = (size_t)t->shape[1];
    l->row_bytes = row_bytes;
    *out = l;
    return MPOC_OK;
}

mpoc_status mpoc_linear_from_tensor(const mpoc_tensor *t, mpoc_linear **out)
{
    *out = NULL;
    if (t->n_dims != 2)
        MPOC_FAIL(MPOC_E_SHAPE, "tensor '%s': a linear layer needs 2 dims, it has %u", t->name,
                  (unsigned)t->n_dims);
    if (t->shape[0] == 0 || t->shape[1] == 0 || t->shape[0] > SIZE_MAX || t->shape[1] > SIZE_MAX)
        MPOC_FAIL(MPOC_E_SHAPE, "tensor '%s': a linear layer cannot be %llu x %llu", t->name,
                  (unsigned long long)t->shape[0], (unsigned long long)t->shape[1]);
    size_t row_bytes = stored_row_bytes(t);
    if (row_bytes)
        return linear_stored(t, row_bytes, out);
    mpoc_mat w = {0};
    MPOC_TRY(mpoc_tensor_read_f32(t, &w));
    mpoc_status st = mpoc_linear_new_dense(&w, out);
    mpoc_mat_free(&w);
    return st;
}

/* Rows from which a batch runs on the merged plan: single rows (decoding)
 * are bound by reading the cores, so they keep the smaller original. */
#define MERGE_BATCH 8
/* A merged plan must save at least this factor of multiply-adds. */
#define MERGE_MIN_GAIN 1.25

/* The merged plan for batches: the grouping of sites with the fewest
 * multiply-adds whose cores hold at most 4× the MPO's parameters and a
 * quarter of the dense matrix's (so it stays a small MPO, never the dense
 * matrix, and the operator's memory stays well below dense). */
static mpoc_status batch_plan_new(const mpoc_mpo *mpo, mpoc_mpo_plan **out)
{
    *out = NULL;
    double dense = (double)mpo->shape.rows * (double)mpo->shape.cols;
    double cap = fmin(4.0 * (double)mpoc_mpo_params(mpo), 0.25 * dense), base, merged, params;
    size_t n, sizes[MPOC_MAX_SITES];
    MPOC_TRY(mpoc_mpo_apply_macs(mpo, false, MPOC_MPO_ORDER_AUTO, &base));
    MPOC_TRY(mpoc_mpo_merge_choose(mpo, false, cap, &n, sizes));
    if (n == mpo->shape.sites)
        return MPOC_OK;
    MPOC_TRY(mpoc_mpo_merge_cost(mpo, false, n, sizes, &merged, &params));
    if (merged * MERGE_MIN_GAIN > base)
        return MPOC_OK;
    mpoc_mpo m;
    MPOC_TRY(mpoc_mpo_merge_sites(mpo, n, sizes, &m));
    mpoc_status st = mpoc_mpo_plan_new(&m, false, MPOC_MPO_ORDER_AUTO, out);
    mpoc_mpo_free(&m);
    return st;
}

mpoc_status mpoc_linear_new_mpo(mpoc_mpo *mpo, mpoc_linear **out)
{
    *out = NULL;
    const mpoc_shape *s = &mpo->shape;
    if (s->sites == 0 || s->sites > MPOC_MAX_SITES || s->rows == 0 || s->cols == 0 ||
        mpo->ranks[0] != 1 || mpo->ranks[s->sites] != 1)
        MPOC_FAIL(MPOC_E_SHAPE, "linear: MPO has %zu sites, %zu x %zu, boundary ranks %zu/%zu",
                  s->sites, s->rows, s->cols, mpo->ranks[0], s->sites <= MPOC_MAX_SITES ?
                  mpo->ranks[s->sites] : 0);
    for (size_t k = 0; k < s->sites; k++)
        if (!mpo->cores[k])
            MPOC_FAIL(MPOC_E_SHAPE, "linear: MPO core %zu missing", k);
    mpoc_linear *l = calloc(1, sizeof *l);
    if (!l)
        return MPOC_E_NOMEM;
    mpoc_status st = mpoc_mpo_plan_new(mpo, false, MPOC_MPO_ORDER_AUTO, &l->plan);
    if (st == MPOC_OK && batch_plan_new(mpo, &l->batch_plan) != MPOC_OK)
        l->batch_plan = NULL; /* an optimization only: batches use the plan itself */
    if (st != MPOC_OK) {
        mpoc_mpo_plan_free(l->plan);
        free(l);
        return st;
    }
    l->kind = MPOC_LINEAR_MPO;
    l->rows = s->rows;
    l->cols = s->cols;
    l->mpo = *mpo;
    memset(mpo, 0, sizeof *mpo);
    *out = l;
    return MPOC_OK;
}

void mpoc_linear_free(mpoc_linear *l)
{
    if (!l)
        return;
    mpoc_mat_free(&l->dense);
    free(l->raw);
    mpoc_mpo_free(&l->mpo);
    mpoc_mpo_plan_free(l->plan);
    mpoc_mpo_plan_free(l->batch_plan);
    free(l);
}

mpoc_linear_kind mpoc_linear_kind_of(const mpoc_linear *l) { return l->kind; }
size_t mpoc_linear_rows(const mpoc_linear *l) { return l->rows; }
size_t mpoc_linear_cols(const mpoc_linear *l) { return l->cols; }

size_t mpoc_linear_params(const mpoc_linear *l)
{
    return l->kind == MPOC_LINEAR_DENSE ? l->rows * l->cols : mpoc_mpo_params(&l->mpo);
}

/* The plan a batch of b rows runs on. */
static const mpoc_mpo_plan *plan_for(const mpoc_linear *l, size_t b)
{
    return b >= MERGE_BATCH && l->batch_plan ? l->batch_plan : l->plan;
}

double mpoc_linear_macs(const mpoc_linear *l, size_t batch)
{
    return l->kind == MPOC_LINEAR_MPO ? mpoc_mpo_plan_macs(plan_for(l, batch))
                                      : (double)l->rows * (double)l->cols;
}

mpoc_dtype mpoc_linear_dtype(const mpoc_linear *l)
{
    return l->kind == MPOC_LINEAR_DENSE ? l->dtype : MPOC_DTYPE_F32;
}

/* Rows of a stored operator dequantized per block: enough to keep the gemm
 * efficient, few enough (~1 MiB of float32) to stay in cache. */
static size_t block_rows(const mpoc_linear *l)
{
    size_t r = ((size_t)1 << 18) / l->cols;
    r = r < 16 ? 16 : r;
    return r < l->rows ? r : l->rows;
}

/* Y[:, i..i+R) = X · W[i..i+R, :]ᵀ, W's rows dequantized block by block
 * (batches; one row goes to apply_stored_row). Converting each block with
 * OpenMP threads before the gemm was tried and lost badly here: OpenMP
 * threads waiting between regions and the BLAS threads compete for the
 * 2 cores. */
static mpoc_status apply_stored(const mpoc_linear *l, mpoc_mat_view x, mpoc_mat_view y)
{
    size_t br = block_rows(l), n;
    if (!mpoc_mul_size(br, l->cols, &n))
        return MPOC_E_OVERFLOW;
    float *w = mpoc_alloc_array(n, sizeof(float));
    if (!w)
        return MPOC_E_NOMEM;
    mpoc_status st = MPOC_OK;
    for (size_t i = 0; st == MPOC_OK && i < l->rows; i += br) {
        size_t r = l->rows - i < br ? l->rows - i : br;
        st = mpoc_dtype_to_f32(l->dtype, l->raw + i * l->row_bytes, r * l->cols, w);
        if (st == MPOC_OK)
            st = mpoc_la_gemm(false, true, x.rows, r, l->cols, 1.0f, x.data, x.ld, w, l->cols,
                              0.0f, y.data + i, y.ld);
    }
    free(w);
    return st;
}

/* Rows per chunk of the decoding path (converted into a thread's buffer). */
#define DOT_ROWS 32

/* Σ a_j·b_j: float partial sums over runs of DOT_RUN (vectorized, short
 * enough to stay accurate) added in double, so a long row (11008 or 14336
 * for MLP layers) is not one long serial float sum per SIMD lane. */
#define DOT_RUN 64
static float dot(const float *a, const float *b, size_t n)
{
    double acc = 0.0;
    for (size_t j0 = 0; j0 < n; j0 += DOT_RUN) {
        size_t je = n - j0 < DOT_RUN ? n : j0 + DOT_RUN;
        float part = 0.0f;
#pragma omp simd reduction(+ : part)
        for (size_t j = j0; j < je; j++)
            part += a[j] * b[j];
        acc += (double)part;
    }
    return (float)acc;
}

/* One input row (decoding): bound by reading W, so each OpenMP thread
 * converts its own chunks of rows and takes the dot products itself, no
 * BLAS call in between. Each output is one thread's fixed-order sum: the
 * result does not depend on the thread count. */
static mpoc_status apply_stored_row(const mpoc_linear *l, const float *x, float *y)
{
    size_t chunks = (l->rows + DOT_ROWS - 1) / DOT_ROWS, n;
    if (!mpoc_mul_size(DOT_ROWS, l->cols, &n))
        return MPOC_E_OVERFLOW;
    mpoc_status status = MPOC_OK;
#pragma omp parallel
    {
        float *w = mpoc_alloc_array(n, sizeof(float));
#pragma omp for schedule(static)
        for (size_t c = 0; c < chunks; c++) {
            size_t i = c * DOT_ROWS, r = l->rows - i < DOT_ROWS ? l->rows - i : DOT_ROWS;
            /* the stored dtype converts whole rows (checked when built), so
             * only the allocation can fail; nothing here logs from a thread */
            mpoc_status st = w ? mpoc_dtype_to_f32(l->dtype, l->raw + i * l->row_bytes,
                                                   r * l->cols, w)
                               : MPOC_E_NOMEM;
            if (st != MPOC_OK) {
#pragma omp critical(mpoc_linear_status)
                status = status == MPOC_OK ? st : status;
                continue;
            }
            for (size_t k = 0; k < r; k++)
                y[i + k] = dot(w + k * l->cols, x, l->cols);
        }
        free(w);
    }
    return status;
}

mpoc_status mpoc_linear_apply(const mpoc_linear *l, mpoc_mat_view x, mpoc_mat_view y,
                              mpoc_workspace *ws)
{
    if (x.cols != l->cols || y.cols != l->rows || x.rows != y.rows || x.rows == 0 ||
        x.ld < x.cols || y.ld < y.cols)
        MPOC_FAIL(MPOC_E_SHAPE, "linear %zu x %zu: X is %zu x %zu and Y %zu x %zu", l->rows,
                  l->cols, x.rows, x.cols, y.rows, y.cols);
    if (l->kind == MPOC_LINEAR_MPO)
        return mpoc_mpo_plan_apply(plan_for(l, x.rows), x, y, ws);
    if (l->raw && x.rows == 1)
        return apply_stored_row(l, x.data, y.data);
    if (l->raw)
        return apply_stored(l, x, y);
    return mpoc_la_gemm(false, true, x.rows, l->rows, l->cols, 1.0f, x.data, x.ld,
                        l->dense.data, l->cols, 0.0f, y.data, y.ld);
}

/* Row `row` of an MPO without densifying: with row ↔ (i_1..i_d), contract
 * the slices G_k[:, i_k, :, :] left to right. T_k is (n_1···n_k) × r_{k+1}
 * (j_1 most significant); T_k = T_{k−1}·S_k with S_k the r_k × (n_k r_{k+1})
 * slice, read in place (row stride m_k n_k r_{k+1}). Cost Σ_k N_{k−1} r_k
 * n_k r_{k+1}; t0 and t1 hold padded_cols · max rank floats. */
static mpoc_status mpo_row(const mpoc_mpo *mpo, size_t row, float *t0, float *t1, float *dst,
                           size_t cols)
{
    const mpoc_shape *s = &mpo->shape;
    size_t digit[MPOC_MAX_SITES] = {0};
    for (size_t k = s->sites; k-- > 0;) {
        digit[k] = row % s->row_dims[k];
        row /= s->row_dims[k];
    }
    float *t = t0, *next = t1;
    size_t n_prev = 1;
    t[0] = 1.0f; /* T_{−1}: 1 × r_0 = 1 × 1 */
    for (size_t k = 0; k < s->sites; k++) {
        size_t r = mpo->ranks[k], r2 = mpo->ranks[k + 1], m = s->row_dims[k], n = s->col_dims[k];
        const float *slice = mpo->cores[k] + digit[k] * n * r2;
        MPOC_TRY(mpoc_la_gemm(false, false, n_prev, n * r2, r, 1.0f, t, r, slice, m * n * r2, 0.0f,
                              next, n * r2));
        n_prev *= n;
        float *swap = t;
        t = next;
        next = swap;
    }
    memcpy(dst, t, cols * sizeof(float)); /* r_d = 1: T is padded_cols × 1; crop */
    return MPOC_OK;
}

static mpoc_status gather_mpo(const mpoc_linear *l, const int32_t *ids, size_t n,
                              mpoc_mat_view out)
{
    const mpoc_mpo *mpo = &l->mpo;
    size_t rmax = 1, cap;
    for (size_t k = 0; k <= mpo->shape.sites; k++)
        rmax = mpo->ranks[k] > rmax ? mpo->ranks[k] : rmax;
    if (!mpoc_mul_size(mpo->shape.padded_cols, rmax, &cap))
        MPOC_FAIL(MPOC_E_OVERFLOW, "gather: MPO row scratch overflows");
    float *t0 = mpoc_alloc_array(cap, sizeof(float)), *t1 = mpoc_alloc_array(cap, sizeof(float));
    mpoc_status st = t0 && t1 ? MPOC_OK : MPOC_E_NOMEM;
    for (size_t i = 0; i < n && st == MPOC_OK; i++)
        st = mpo_row(mpo, (size_t)ids[i], t0, t1, out.data + i * out.ld, l->cols);
    free(t0);
    free(t1);
    return st;
}

mpoc_status mpoc_linear_gather_rows(const mpoc_linear *l, const int32_t *ids, size_t n,
                                    mpoc_mat_view out, mpoc_workspace *ws)
{
    if (out.rows != n || out.cols != l->cols || out.ld < out.cols || n == 0)
        MPOC_FAIL(MPOC_E_SHAPE, "gather: output %zu x %zu for %zu rows of width %zu", out.rows,
                  out.cols, n, l->cols);
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || (size_t)ids[i] >= l->rows)
            MPOC_FAIL(MPOC_E_INVAL, "token id %ld at position %zu is outside the vocabulary [0, %zu)",
                      (long)ids[i], i, l->rows);
    (void)ws;
    if (l->kind == MPOC_LINEAR_MPO)
        return gather_mpo(l, ids, n, out);
    for (size_t i = 0; l->raw && i < n; i++)
        MPOC_TRY(mpoc_dtype_to_f32(l->dtype, l->raw + (size_t)ids[i] * l->row_bytes, l->cols,
                                   out.data + i * out.ld));
    for (size_t i = 0; !l->raw && i < n; i++)
        memcpy(out.data + i * out.ld, l->dense.data + (size_t)ids[i] * l->cols,
               l->cols * sizeof(float));
    return MPOC_OK;
}
