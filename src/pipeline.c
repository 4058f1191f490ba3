/* pipeline.c: whole-model compress / decompress / prune (mpoc_pipeline.h).
 * The layer that joins the numeric modules (mpo, quant) and the I/O
 * modules (model, container, fileio). */
#include "mpoc_pipeline.h"

#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bytes.h"
#include "fileio.h"
#include "internal.h"
#include "json.h"
#include "mpoc_container.h"
#include "mpoc.h"
#include "parallel.h"
#include "util.h"
#include "workspace.h"

#define CKPT_MAGIC "MPOCCK01"

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ------------------------------------------------------------ options */

mpoc_compress_options mpoc_compress_options_default(void)
{
    mpoc_compress_options o;
    memset(&o, 0, sizeof o);
    o.mpo = mpoc_mpo_options_default();
    o.mpo.eps = 0.1;
    o.mpo.svd.seed = 1;
    o.quant = mpoc_quant_options_default();
    o.min_size = 1024;
    return o;
}

mpoc_decompress_options mpoc_decompress_options_default(void)
{
    mpoc_decompress_options o;
    memset(&o, 0, sizeof o);
    o.dtype = MPOC_DTYPE_COUNT_;
    return o;
}

mpoc_prune_options mpoc_prune_options_default(void)
{
    mpoc_prune_options o;
    memset(&o, 0, sizeof o);
    o.mpo = mpoc_mpo_options_default();
    o.quant = mpoc_quant_options_default();
    o.keep_types = true;
    return o;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

bool mpoc_pipeline_default_select(const char *name)
{
    static const char *const hf[] = {".q_proj.weight", ".k_proj.weight", ".v_proj.weight",
                                     ".o_proj.weight", ".gate_proj.weight", ".up_proj.weight",
                                     ".down_proj.weight"};
    static const char *const gg[] = {".attn_q.weight", ".attn_k.weight", ".attn_v.weight",
                                     ".attn_output.weight", ".ffn_gate.weight", ".ffn_up.weight",
                                     ".ffn_down.weight"};
    for (size_t i = 0; i < sizeof hf / sizeof hf[0]; i++)
        if (ends_with(name, hf[i]) || ends_with(name, gg[i]))
            return true;
    return false;
}

static bool any_glob(const char *name, const char *const *g, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (fnmatch(g[i], name, 0) == 0)
            return true;
    return false;
}

static bool selected(const mpoc_tensor *t, const mpoc_compress_options *o, const char **why)
{
    bool by_name = o->n_include ? any_glob(t->name, o->include, o->n_include)
                                : mpoc_pipeline_default_select(t->name);
    *why = NULL;
    if (!by_name)
        return false;
    if (any_glob(t->name, o->exclude, o->n_exclude)) {
        *why = "excluded";
        return false;
    }
    if (t->n_dims != 2) {
        *why = "not 2-D";
        return false;
    }
    if (!mpoc_tensor_can_read(t)) {
        *why = "dtype cannot be read";
        return false;
    }
    if (t->n_elems < o->min_size || t->shape[0] < 2 || t->shape[1] < 2) {
        *why = "below --min-size";
        return false;
    }
    return true;
}

/* Everything that changes the output bytes, as one line (resume checks it). */
static char *fingerprint(const mpoc_model *m, const mpoc_compress_options *o)
{
    mpoc_sbuf b = {0};
    const mpoc_trunc *t = &o->mpo.svd.trunc;
    mpoc_sbuf_printf(&b, "mpoc %s container %s; chi %zu eps %.17g cutoff %.17g dw %.17g "
                         "abs %.17g sites %zu pad %d svd %s p %zu q %u seed %llu; core %s centre %s "
                         "feedback %d; min %llu skip_bad %d",
                     MPOC_VERSION_STRING, MPOC_CONTAINER_VERSION, t->max_rank, o->mpo.eps,
                     t->rel_cutoff, t->discarded_weight, t->abs_tail, o->mpo.sites, (int)o->mpo.pad,
                     mpoc_svd_method_name(o->mpo.svd.method), o->mpo.svd.oversample,
                     o->mpo.svd.power_iters, (unsigned long long)o->mpo.svd.seed,
                     mpoc_quant_name(o->quant.core), mpoc_quant_name(o->quant.centre),
                     !o->quant.no_feedback, (unsigned long long)o->min_size, (int)o->skip_bad);
    for (size_t i = 0; i < o->n_include; i++)
        mpoc_sbuf_printf(&b, "; include %s", o->include[i]);
    for (size_t i = 0; i < o->n_exclude; i++)
        mpoc_sbuf_printf(&b, "; exclude %s", o->exclude[i]);
    if (m) {
        mpoc_sbuf_printf(&b, "; input %s", mpoc_format_name(mpoc_model_format(m)));
        for (size_t i = 0; i < mpoc_model_file_count(m); i++)
            mpoc_sbuf_printf(&b, " %llu", (unsigned long long)mpoc_model_file_size(m, i));
        mpoc_sbuf_printf(&b, " tensors %zu", mpoc_model_tensor_count(m));
    }
    if (b.failed) {
        mpoc_sbuf_free(&b);
        return NULL;
    }
    return b.data;
}

/* ------------------------------------------------------------ checkpoints */

typedef struct ckpt {
    mpoc_encoded enc;
    mpoc_tensor_record rec;
    bool bad;          /* passed through (not finite) */
    char note[160];
} ckpt;

static void ckpt_free(ckpt *c)
{
    mpoc_encoded_free(&c->enc);
}

static void put_u32(mpoc_sbuf *b, uint32_t v)
{
    uint8_t x[4];
    mpoc_store_le32(x, v);
    mpoc_sbuf_put(b, (const char *)x, 4);
}

static void put_u64(mpoc_sbuf *b, uint64_t v)
{
    uint8_t x[8];
    mpoc_store_le64(x, v);
    mpoc_sbuf_put(b, (const char *)x, 8);
}

static void put_f64(mpoc_sbuf *b, double v)
{
    uint64_t u;
    memcpy(&u, &v, 8);
    put_u64(b, u);
}

static void put_blob(mpoc_sbuf *b, const void *p, uint64_t n)
{
    put_u64(b, n);
    if (n)
        mpoc_sbuf_put(b, (const char *)p, (size_t)n);
}

static void put_str(mpoc_sbuf *b, const char *s)
{
    put_blob(b, s ? s : "", s ? strlen(s) : 0);
}

static char *ckpt_path(const char *dir, size_t index)
{
    size_t n = strlen(dir) + 40;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/t%06zu.ckpt", dir, index);
    return p;
}

static mpoc_status write_file(const char *path, const void *data, size_t n)
{
    mpoc_write_policy pol = {true, NULL, 0};
    mpoc_outfile f;
    MPOC_TRY(mpoc_out_open(path, &pol, &f));
    mpoc_status st = mpoc_out_write(&f, data, n);
    if (st == MPOC_OK)
        return mpoc_out_commit(&f);
    mpoc_out_abort(&f);
    return st;
}

static mpoc_status ckpt_write(const char *dir, const ckpt *c)
{
    const mpoc_tensor_record *r = &c->rec;
    mpoc_sbuf b = {0};
    mpoc_sbuf_put(&b, CKPT_MAGIC, 8);
    put_u32(&b, c->bad);
    put_u32(&b, (uint32_t)c->enc.n);
    put_f64(&b, r->rel_error);
    put_f64(&b, r->rel_error_trunc);
    put_f64(&b, r->seconds);
    put_u32(&b, (uint32_t)r->sites);
    for (size_t k = 0; k <= r->sites && r->sites; k++)
        put_u64(&b, r->ranks[k]);
    put_u32(&b, (uint32_t)r->core);
    put_u32(&b, (uint32_t)r->centre);
    put_str(&b, c->note);
    put_str(&b, c->enc.meta_key);
    put_str(&b, c->enc.meta_value);
    for (size_t i = 0; i < c->enc.n; i++) {
        const mpoc_enc_tensor *t = &c->enc.t[i];
        put_str(&b, t->name);
        put_u32(&b, (uint32_t)t->dtype);
        put_u32(&b, t->n_dims);
        for (uint32_t j = 0; j < t->n_dims; j++)
            put_u64(&b, t->shape[j]);
        put_blob(&b, t->data, t->nbytes);
    }
    if (b.failed) {
        mpoc_sbuf_free(&b);
        return MPOC_E_NOMEM;
    }
    char *path = ckpt_path(dir, r->index);
    mpoc_status st = path ? write_file(path, b.data, b.len) : MPOC_E_NOMEM;
    free(path);
    mpoc_sbuf_free(&b);
    return st;
}

static mpoc_status read_whole(const char *path, uint8_t **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return MPOC_E_NOTFOUND;
    uint8_t *buf = NULL;
    size_t cap = 0, n = 0;
    mpoc_status st = MPOC_OK;
    for (;;) {
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 65536;
            uint8_t *nb = nc > cap ? realloc(buf, nc) : NULL;
            if (!nb) {
                st = MPOC_E_NOMEM;
                break;
            }
            buf = nb;
            cap = nc;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) {
            if (ferror(f))
                st = MPOC_E_IO;
            break;
        }
    }
    fclose(f);
    if (st != MPOC_OK) {
        free(buf);
        return st;
    }
    *out = buf;
    *len = n;
    return MPOC_OK;
}

static bool take_str(mpoc_cursor *cur, char **out)
{
    uint64_t n;
    const uint8_t *p;
    if (!mpoc_cursor_u64(cur, &n) || n > mpoc_cursor_left(cur) || !mpoc_cursor_take(cur, n, &p))
        return false;
    *out = malloc((size_t)n + 1);
    if (!*out)
        return false;
    memcpy(*out, p, (size_t)n);
    (*out)[n] = '\0';
    return true;
}

static bool take_f64(mpoc_cursor *cur, double *v)
{
    uint64_t u;
    if (!mpoc_cursor_u64(cur, &u))
        return false;
    memcpy(v, &u, 8);
    return true;
}

/* Parse a checkpoint body into c (rec.index and name are set by the caller). */
static bool ckpt_parse(mpoc_cursor *cur, ckpt *c)
{
    const uint8_t *magic;
    uint32_t bad, n, sites, core, centre;
    if (!mpoc_cursor_take(cur, 8, &magic) || memcmp(magic, CKPT_MAGIC, 8) ||
        !mpoc_cursor_u32(cur, &bad) || !mpoc_cursor_u32(cur, &n) || n > 2 * MPOC_MAX_SITES ||
        !take_f64(cur, &c->rec.rel_error) || !take_f64(cur, &c->rec.rel_error_trunc) ||
        !take_f64(cur, &c->rec.seconds) || !mpoc_cursor_u32(cur, &sites) || sites > MPOC_MAX_SITES)
        return false;
    c->bad = bad != 0;
    c->rec.sites = sites;
    for (size_t k = 0; sites && k <= sites; k++) {
        uint64_t r;
        if (!mpoc_cursor_u64(cur, &r))
            return false;
        c->rec.ranks[k] = (size_t)r;
    }
    if (!mpoc_cursor_u32(cur, &core) || !mpoc_cursor_u32(cur, &centre) ||
        core >= MPOC_QUANT_COUNT_ || centre >= MPOC_QUANT_COUNT_)
        return false;
    c->rec.core = (mpoc_quant_type)core;
    c->rec.centre = (mpoc_quant_type)centre;
    char *note = NULL;
    if (!take_str(cur, &note))
        return false;
    snprintf(c->note, sizeof c->note, "%s", note);
    free(note);
    if (!take_str(cur, &c->enc.meta_key) || !take_str(cur, &c->enc.meta_value))
        return false;
    c->enc.t = calloc(n ? n : 1, sizeof *c->enc.t);
    if (!c->enc.t)
        return false;
    for (uint32_t i = 0; i < n; i++) {
        mpoc_enc_tensor *t = &c->enc.t[i];
        uint32_t dt, nd;
        uint64_t nb;
        const uint8_t *p;
        c->enc.n = i + 1;
        if (!take_str(cur, &t->name) || !mpoc_cursor_u32(cur, &dt) || dt >= MPOC_DTYPE_COUNT_ ||
            !mpoc_cursor_u32(cur, &nd) || nd == 0 || nd > 4)
            return false;
        t->dtype = (mpoc_dtype)dt;
        t->n_dims = nd;
        for (uint32_t j = 0; j < nd; j++)
            if (!mpoc_cursor_u64(cur, &t->shape[j]))
                return false;
        if (!mpoc_cursor_u64(cur, &nb) || nb > mpoc_cursor_left(cur) || !mpoc_cursor_take(cur, nb, &p))
            return false;
        t->data = malloc(nb ? (size_t)nb : 1);
        if (!t->data)
            return false;
        memcpy(t->data, p, (size_t)nb);
        t->nbytes = nb;
        c->enc.bytes += nb;
    }
    return mpoc_cursor_left(cur) == 0;
}

static mpoc_status ckpt_read(const char *dir, size_t index, ckpt *c)
{
    memset(c, 0, sizeof *c);
    char *path = ckpt_path(dir, index);
    if (!path)
        return MPOC_E_NOMEM;
    uint8_t *buf;
    size_t len;
    mpoc_status st = read_whole(path, &buf, &len);
    if (st == MPOC_OK) {
        mpoc_cursor cur = mpoc_cursor_make(buf, len);
        if (!ckpt_parse(&cur, c)) {
            ckpt_free(c);
            mpoc_log_("%s: damaged checkpoint; remove it (or the folder) and resume", path);
            st = MPOC_E_FORMAT;
        }
        free(buf);
    }
    free(path);
    return st;
}

/* The checkpoint folder: created, or (resume) checked against the options. */
static mpoc_status partial_prepare(const char *dir, const char *fp, bool resume)
{
    size_t n = strlen(dir) + 16;
    char *opt_path = malloc(n);
    if (!opt_path)
        return MPOC_E_NOMEM;
    snprintf(opt_path, n, "%s/options", dir);
    mpoc_status st = MPOC_OK;
    struct stat sb;
    if (stat(dir, &sb) == 0 && resume) {
        uint8_t *buf;
        size_t len;
        st = read_whole(opt_path, &buf, &len);
        if (st == MPOC_OK) {
            if (len != strlen(fp) || memcmp(buf, fp, len)) {
                mpoc_log_("%s: checkpoints were made from another input or with other options; "
                          "remove the folder or run without --resume", dir);
                st = MPOC_E_INVAL;
            }
            free(buf);
        } else {
            st = MPOC_OK; /* no options file yet: nothing usable, start over */
        }
        if (st == MPOC_OK)
            st = write_file(opt_path, fp, strlen(fp));
        free(opt_path);
        return st;
    }
    if (stat(dir, &sb) == 0) { /* a stale run without --resume: start over */
        DIR *d = opendir(dir);
        struct dirent *de;
        while (d && (de = readdir(d)) != NULL) {
            if (!ends_with(de->d_name, ".ckpt") && strcmp(de->d_name, "options") &&
                !strstr(de->d_name, ".tmp."))
                continue;
            size_t pn = strlen(dir) + strlen(de->d_name) + 2;
            char *p = malloc(pn);
            if (p) {
                snprintf(p, pn, "%s/%s", dir, de->d_name);
                unlink(p);
                free(p);
            }
        }
        if (d)
            closedir(d);
    } else if (mkdir(dir, 0777) != 0) {
        mpoc_log_("%s: cannot create the checkpoint folder: %s", dir, strerror(errno));
        st = MPOC_E_IO;
    }
    if (st == MPOC_OK)
        st = write_file(opt_path, fp, strlen(fp));
    free(opt_path);
    return st;
}

static void partial_remove(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL) {
        if (!ends_with(de->d_name, ".ckpt") && strcmp(de->d_name, "options"))
            continue;
        size_t pn = strlen(dir) + strlen(de->d_name) + 2;
        char *p = malloc(pn);
        if (p) {
            snprintf(p, pn, "%s/%s", dir, de->d_name);
            unlink(p);
            free(p);
        }
    }
    if (d)
        closedir(d);
    rmdir(dir);
}

/* ------------------------------------------------------------ one tensor */

/* Drop the resident pages of a tensor of a model opened from a file
 * (a read-only private mapping: the pages are clean and are read again
 * from the file if touched), so that RSS follows the tensors in flight,
 * not the model. Only for models this module opened with mpoc_model_open. */
static void release_pages(const mpoc_tensor *t)
{
    long page = sysconf(_SC_PAGESIZE);
    if (page <= 0 || t->nbytes < (uint64_t)page)
        return;
    uintptr_t a = (uintptr_t)t->data, b = a + (uintptr_t)t->nbytes;
    a -= a % (uintptr_t)page;
    b -= b % (uintptr_t)page; /* the partial last page stays */
    if (b > a)
        madvise((void *)a, b - a, MADV_DONTNEED);
}

static void record_base(const mpoc_tensor *t, size_t index, mpoc_tensor_record *r)
{
    memset(r, 0, sizeof *r);
    r->name = t->name;
    r->index = index;
    r->n_dims = t->n_dims;
    memcpy(r->shape, t->shape, sizeof r->shape);
    r->dtype = t->dtype;
    r->original_bytes = t->nbytes;
    r->bytes = t->nbytes;
    r->elems = t->n_elems;
}

static mpoc_status scan_finite(const mpoc_tensor *t, const mpoc_mat *w, bool skip_bad, ckpt *c)
{
    mpoc_mat_stats s;
    memset(&s, 0, sizeof s);
    /* mpoc_mat_scan logs the position itself; the reason naming the tensor follows */
    if (mpoc_mat_scan(mpoc_mat_view_of(w), &s) == MPOC_OK)
        return MPOC_OK;
    snprintf(c->note, sizeof c->note, "%zu NaN and %zu Inf values (first at [%zu, %zu])", s.n_nan,
             s.n_inf, s.first_bad_row, s.first_bad_col);
    if (skip_bad) {
        c->bad = true;
        return MPOC_OK;
    }
    MPOC_FAIL(MPOC_E_NUMERIC, "tensor '%s': %s: cannot be factorized (--skip-bad passes such "
              "tensors through unchanged)", t->name, c->note);
}

/* Quantize the decomposed MPO. With feedback the quantizer works on W
 * permuted to site order (its target) and on the MPO centred on core 0;
 * both are prepared here so that W and the MPO are not copied again: the
 * MPO is canonicalized in place and W is freed once the target holds it
 * (the quantizer then reads only its dimensions). The result is the same,
 * bit for bit, as mpoc_quant_mpo on the untouched MPO and W. */
static mpoc_status quantize(mpoc_mpo *mpo, mpoc_mat *w, const mpoc_quant_options *opt,
                            mpoc_workspace *ws, mpoc_qmpo *q, mpoc_quant_report *qr)
{
    if (opt->no_feedback)
        return mpoc_quant_mpo(mpo, mpoc_mat_view_of(w), opt, ws, q, qr);
    mpoc_quant_target *tg;
    MPOC_TRY(mpoc_mpo_canonicalize(mpo, 0, ws));
    MPOC_TRY(mpoc_quant_target_new(mpoc_mat_view_of(w), &mpo->shape, &tg));
    mpoc_mat_view dims = {w->rows, w->cols, w->cols, NULL};
    mpoc_mat_free(w);
    mpoc_status st = mpoc_quant_mpo_multi(mpo, dims, tg, opt, 1, ws, q, qr);
    mpoc_quant_target_free(tg);
    return st;
}

static mpoc_status compress_one(const mpoc_tensor *t, mpoc_format fmt,
                                const mpoc_compress_options *o, mpoc_workspace *ws, ckpt *c)
{
    double t0 = now_seconds();
    mpoc_mat w;
    mpoc_status st = mpoc_tensor_read_f32(t, &w);
    if (st != MPOC_OK)
        MPOC_FAIL(st, "tensor '%s': cannot be read as float32", t->name);
    release_pages(t);
    st = scan_finite(t, &w, o->skip_bad, c);
    if (st != MPOC_OK || c->bad) {
        mpoc_mat_free(&w);
        return st;
    }
    mpoc_mpo mpo;
    mpoc_mpo_report rep;
    mpoc_qmpo q;
    mpoc_quant_report qr;
    memset(&mpo, 0, sizeof mpo);
    memset(&q, 0, sizeof q);
    st = mpoc_mpo_decompose_ex(mpoc_mat_view_of(&w), &o->mpo, ws, &mpo, &rep);
    if (st == MPOC_OK)
        st = quantize(&mpo, &w, &o->quant, ws, &q, &qr);
    /* encoding needs only the stored cores: W and the float cores go first */
    mpoc_mpo_free(&mpo);
    mpoc_mat_free(&w);
    if (st == MPOC_OK) {
        mpoc_encode_info info = {t->name, t->dtype, t->n_dims, t->shape, rep.rel_error,
                                 qr.rel_error, NAN, o->quant};
        st = mpoc_container_encode(fmt, &info, &q, &c->enc);
    }
    if (st == MPOC_OK) {
        mpoc_tensor_record *r = &c->rec;
        r->compressed = true;
        r->sites = q.mpo.shape.sites;
        memcpy(r->ranks, q.mpo.ranks, (r->sites + 1) * sizeof(size_t));
        r->core = o->quant.core;
        r->centre = o->quant.centre;
        r->rel_error = qr.rel_error;
        r->rel_error_trunc = rep.rel_error;
        r->bytes = c->enc.bytes;
        r->seconds = now_seconds() - t0;
    } else {
        mpoc_log_("tensor '%s': compression failed: %s", t->name, mpoc_strerror(st));
    }
    mpoc_qmpo_free(&q);
    return st;
}

/* ------------------------------------------------------------ summary */

static void summary_add(mpoc_summary *s, const mpoc_tensor_record *r, double *err_acc)
{
    s->tensors++;
    s->bytes += r->bytes;
    s->original_bytes += r->original_bytes;
    s->elems += r->elems;
    if (r->resumed)
        s->resumed++;
    if (!r->compressed) {
        s->passthrough++;
        return;
    }
    s->compressed++;
    s->compressed_bytes += r->bytes;
    s->compressed_original_bytes += r->original_bytes;
    s->compressed_elems += r->elems;
    *err_acc += (double)r->elems * r->rel_error * r->rel_error;
}

static void summary_finish(mpoc_summary *s, double err_acc, double t0)
{
    s->rel_error = s->compressed_elems ? sqrt(err_acc / (double)s->compressed_elems) : 0.0;
    s->seconds = now_seconds() - t0;
}

/* ------------------------------------------------------------ compress */

typedef struct run {
    const mpoc_model *m;
    const mpoc_compress_options *o;
    mpoc_format fmt;
    const char *dir;
    size_t *sel;       /* selected tensor indices */
    size_t n_sel;
    size_t done;
    size_t total;
    uint64_t bytes_done, bytes_total;
    size_t new_ckpts;
    size_t resumed;
    mpoc_par_state par;
} run;

static void progress(run *r, const mpoc_tensor_record *rec)
{
#pragma omp critical(mpoc_pipeline_progress)
    {
        r->done++;
        if (rec->compressed || rec->note)
            r->bytes_done += rec->original_bytes;
        if (r->o->progress)
            r->o->progress(r->o->progress_user, rec, r->done, r->total, r->bytes_done,
                           r->bytes_total);
    }
}

static mpoc_status compute_one(void *user, size_t i, mpoc_workspace *ws)
{
    run *r = user;
    size_t idx = r->sel[i];
    const mpoc_tensor *t = mpoc_model_tensor(r->m, idx);
    ckpt c;
    memset(&c, 0, sizeof c);
    mpoc_status st = MPOC_E_NOTFOUND;
    if (r->o->resume) {
        st = ckpt_read(r->dir, idx, &c);
        if (st == MPOC_OK) {
            c.rec.resumed = true;
            c.rec.seconds = 0.0;
#pragma omp atomic
            r->resumed++;
        } else if (st != MPOC_E_NOTFOUND) {
            return st;
        }
    }
    if (st != MPOC_OK) {
        record_base(t, idx, &c.rec);
        st = compress_one(t, r->fmt, r->o, ws, &c);
        if (st == MPOC_OK)
            st = ckpt_write(r->dir, &c);
        if (st != MPOC_OK) {
            ckpt_free(&c);
            return st;
        }
#pragma omp critical(mpoc_pipeline_ckpt)
        {
            r->new_ckpts++;
            if (r->o->stop_after && r->new_ckpts >= r->o->stop_after)
                mpoc_par_stop(&r->par); /* the test hook: behave as if killed here */
        }
    }
    mpoc_tensor_record rec = c.rec;
    const mpoc_tensor_record base = rec;
    record_base(t, idx, &rec);
    rec.compressed = !c.bad;
    rec.resumed = base.resumed;
    rec.seconds = base.seconds;
    if (!c.bad) {
        rec.sites = base.sites;
        memcpy(rec.ranks, base.ranks, sizeof rec.ranks);
        rec.core = base.core;
        rec.centre = base.centre;
        rec.rel_error = base.rel_error;
        rec.rel_error_trunc = base.rel_error_trunc;
        rec.bytes = c.enc.bytes;
    } else {
        rec.note = c.note;
    }
    progress(r, &rec);
    ckpt_free(&c);
    return MPOC_OK;
}

static mpoc_status compute_all(run *r)
{
    MPOC_TRY(mpoc_par_for(r->n_sel, r->o->threads, compute_one, r, &r->par));
    if (r->par.stop)
        MPOC_FAIL(MPOC_E_IO, "stopped after %zu new checkpoints (test hook); --resume continues",
                  r->new_ckpts);
    return MPOC_OK;
}

static mpoc_status make_policy(const mpoc_model *m, const mpoc_write_policy *user,
                               mpoc_write_policy *out, const char ***inputs)
{
    size_t nf = mpoc_model_file_count(m), nu = user ? user->n_inputs : 0;
    *inputs = calloc(nf + nu + 1, sizeof **inputs);
    if (!*inputs)
        return MPOC_E_NOMEM;
    for (size_t i = 0; i < nf; i++)
        (*inputs)[i] = mpoc_model_file_path(m, i);
    for (size_t i = 0; i < nu; i++)
        (*inputs)[nf + i] = user->inputs[i];
    out->overwrite = user ? user->overwrite : false;
    out->inputs = *inputs;
    out->n_inputs = nf + nu;
    return MPOC_OK;
}

/* Writer of the same family as m; sharded outputs keep related tensors
 * together and use the input's (or recorded) shard size. */
static mpoc_status open_writer(const mpoc_model *m, const char *out, const mpoc_write_policy *pol,
                               mpoc_writer **w)
{
    mpoc_writer_options wo = mpoc_writer_options_default();
    wo.format = mpoc_model_format(m);
    wo.policy = *pol;
    if (wo.format == MPOC_FORMAT_SAFETENSORS_SHARDED) {
        wo.group_sep = ".mpo.";
        const mpoc_meta *kv;
        uint64_t v = 0;
        if (mpoc_model_meta_find(m, "mpoc.source_shard_size", &kv) == MPOC_OK && kv->value.str)
            v = strtoull(kv->value.str, NULL, 10);
        for (size_t i = 1; v == 0 && i < mpoc_model_file_count(m); i++)
            if (mpoc_model_file_size(m, i) > wo.shard_size)
                wo.shard_size = mpoc_model_file_size(m, i);
        if (v)
            wo.shard_size = v;
    }
    return mpoc_writer_create(out, &wo, w);
}

/* The GGUF writer adds general.quantization_version when a file holds
 * quantized tensors; a container records whether its source had the key so
 * decompression does not invent it. */
#define QV_KEY "general.quantization_version"
#define QV_ADDED "mpoc.added_quantization_version"

/* Which of m's metadata an output keeps (general.alignment never: the
 * writer sets its own). */
typedef enum meta_keep {
    META_ALL,        /* compress: everything the input has */
    META_NOT_OWN,    /* decompress: not the container's keys (mpo.*, mpoc.*), nor a
                        quantization version the container added */
    META_NOT_TENSORS /* prune: not the per-tensor descriptions (mpo.*), rewritten */
} meta_keep;

static bool meta_dropped(const char *key, meta_keep keep, bool drop_qv)
{
    if (!strcmp(key, "general.alignment"))
        return true;
    if (keep == META_NOT_OWN)
        return mpoc_container_is_own_key(key) || (drop_qv && !strcmp(key, QV_KEY));
    return keep == META_NOT_TENSORS && !strncmp(key, "mpo.", 4);
}

static mpoc_status copy_meta_filtered(mpoc_writer *w, const mpoc_model *m, meta_keep keep)
{
    bool gguf = mpoc_model_format(m) == MPOC_FORMAT_GGUF;
    const mpoc_meta *added;
    bool drop_qv = keep == META_NOT_OWN && mpoc_model_meta_find(m, QV_ADDED, &added) == MPOC_OK;
    for (size_t i = 0; i < mpoc_model_meta_count(m); i++) {
        const mpoc_meta *kv = mpoc_model_meta(m, i);
        if (meta_dropped(kv->key, keep, drop_qv))
            continue;
        if (gguf)
            MPOC_TRY(mpoc_writer_set_meta(w, kv));
        else if (kv->value.str)
            MPOC_TRY(mpoc_writer_set_meta_string(w, kv->key, kv->value.str));
    }
    return MPOC_OK;
}

static mpoc_status emit_all(run *r, mpoc_writer *w, const bool *is_sel, mpoc_summary *s)
{
    double acc = 0.0, t0 = now_seconds();
    size_t nt = mpoc_model_tensor_count(r->m);
    for (size_t i = 0; i < nt; i++) {
        const mpoc_tensor *t = mpoc_model_tensor(r->m, i);
        mpoc_tensor_record rec;
        record_base(t, i, &rec);
        if (!is_sel[i]) {
            MPOC_TRY(mpoc_writer_add_tensor(w, t, NULL));
            release_pages(t);
            summary_add(s, &rec, &acc);
            continue;
        }
        ckpt c;
        MPOC_TRY(ckpt_read(r->dir, i, &c));
        mpoc_status st;
        if (c.bad) {
            st = mpoc_writer_add_tensor(w, t, NULL);
            release_pages(t);
            s->bad_passed++;
        } else {
            st = mpoc_container_emit(w, &c.enc);
            rec.compressed = true;
            rec.bytes = c.enc.bytes;
            rec.rel_error = c.rec.rel_error;
            rec.resumed = c.rec.resumed;
        }
        ckpt_free(&c);
        MPOC_TRY(st);
        summary_add(s, &rec, &acc);
    }
    summary_finish(s, acc, t0);
    s->resumed = r->resumed;
    return MPOC_OK;
}

typedef struct sel_key {
    uint64_t nbytes;
    size_t index;
} sel_key;

/* Descending size, then ascending index (a total order: qsort is not stable). */
static int cmp_sel_key(const void *a, const void *b)
{
    const sel_key *x = a, *y = b;
    if (x->nbytes != y->nbytes)
        return x->nbytes > y->nbytes ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

static char *partial_dir_of(const char *out)
{
    size_t n = strlen(out);
    while (n > 1 && out[n - 1] == '/')
        n--;
    char *d = malloc(n + 16);
    if (d)
        snprintf(d, n + 16, "%.*s.partial", (int)n, out);
    return d;
}

static mpoc_status compress_model(const mpoc_model *m, const char *out,
                                  const mpoc_compress_options *o, mpoc_summary *s)
{
    if (mpoc_container_detect(m))
        MPOC_FAIL(MPOC_E_INVAL, "%s is already an mpoc container; use mpoc prune to shrink it",
                  mpoc_model_file_path(m, 0));
    size_t nt = mpoc_model_tensor_count(m);
    run r;
    memset(&r, 0, sizeof r);
    r.m = m;
    r.o = o;
    r.fmt = mpoc_model_format(m);
    r.total = nt;
    bool *is_sel = calloc(nt ? nt : 1, sizeof *is_sel);
    r.sel = calloc(nt ? nt : 1, sizeof *r.sel);
    char *dir = partial_dir_of(out), *fp = fingerprint(m, o);
    const char **inputs = NULL;
    mpoc_write_policy pol;
    mpoc_writer *w = NULL;
    double t0 = now_seconds();
    mpoc_status st = (is_sel && r.sel && dir && fp) ? MPOC_OK : MPOC_E_NOMEM;
    if (st == MPOC_OK)
        st = make_policy(m, &o->policy, &pol, &inputs);
    /* fail early (before hours of work) when the output exists */
    if (st == MPOC_OK && !pol.overwrite && access(out, F_OK) == 0)
        MPOC_CHECK_GOTO(st, MPOC_E_EXISTS, done);
    if (st == MPOC_OK) {
        r.dir = dir;
        st = partial_prepare(dir, fp, o->resume);
    }
    for (size_t i = 0; st == MPOC_OK && i < nt; i++) {
        const mpoc_tensor *t = mpoc_model_tensor(m, i);
        const char *why;
        is_sel[i] = selected(t, o, &why);
        if (is_sel[i]) {
            r.sel[r.n_sel++] = i;
            r.bytes_total += t->nbytes;
        }
    }
    /* largest first: better balance across threads (the output order is fixed anyway) */
    if (st == MPOC_OK && r.n_sel > 1) {
        sel_key *keys = mpoc_alloc_array(r.n_sel, sizeof *keys);
        if (keys) {
            for (size_t i = 0; i < r.n_sel; i++)
                keys[i] = (sel_key){mpoc_model_tensor(m, r.sel[i])->nbytes, r.sel[i]};
            qsort(keys, r.n_sel, sizeof *keys, cmp_sel_key);
            for (size_t i = 0; i < r.n_sel; i++)
                r.sel[i] = keys[i].index;
            free(keys);
        }
    }
    for (size_t i = 0; st == MPOC_OK && i < nt; i++) /* passthrough lines come first */
        if (!is_sel[i]) {
            mpoc_tensor_record rec;
            record_base(mpoc_model_tensor(m, i), i, &rec);
            progress(&r, &rec);
        }
    if (st == MPOC_OK)
        st = compute_all(&r);
    if (st == MPOC_OK)
        st = open_writer(m, out, &pol, &w);
    if (st == MPOC_OK)
        st = copy_meta_filtered(w, m, META_ALL);
    if (st == MPOC_OK)
        st = mpoc_container_emit_header(w);
    const mpoc_meta *qv;
    if (st == MPOC_OK && r.fmt == MPOC_FORMAT_GGUF && mpoc_model_meta_find(m, QV_KEY, &qv) != MPOC_OK)
        st = mpoc_writer_set_meta_string(w, QV_ADDED, "1");
    if (st == MPOC_OK && r.fmt == MPOC_FORMAT_SAFETENSORS_SHARDED) {
        char v[32];
        uint64_t mx = 0;
        for (size_t i = 1; i < mpoc_model_file_count(m); i++)
            if (mpoc_model_file_size(m, i) > mx)
                mx = mpoc_model_file_size(m, i);
        snprintf(v, sizeof v, "%llu", (unsigned long long)mx);
        st = mpoc_writer_set_meta_string(w, "mpoc.source_shard_size", v);
    }
    if (st == MPOC_OK) {
        char *opts = fingerprint(NULL, o);
        st = opts ? mpoc_writer_set_meta_string(w, "mpoc.options", opts) : MPOC_E_NOMEM;
        free(opts);
    }
    if (st == MPOC_OK)
        st = emit_all(&r, w, is_sel, s);
    if (st == MPOC_OK) {
        st = mpoc_writer_commit(w);
        w = NULL;
        if (st == MPOC_OK)
            partial_remove(dir);
    }
done:
    if (st == MPOC_E_EXISTS && w == NULL && !pol.overwrite)
        mpoc_log_("%s exists (use --force to replace it)", out);
    mpoc_writer_abort(w);
    s->seconds = now_seconds() - t0;
    free(inputs);
    free(is_sel);
    free(r.sel);
    free(dir);
    free(fp);
    return st;
}

mpoc_status mpoc_compress(const char *in, const char *out, const mpoc_compress_options *opt,
                          mpoc_summary *summary)
{
    mpoc_summary local;
    if (!summary)
        summary = &local;
    memset(summary, 0, sizeof *summary);
    if (!in || !out || !opt)
        MPOC_FAIL(MPOC_E_INVAL, "compress: missing input, output or options");
    if ((unsigned)opt->quant.core >= MPOC_QUANT_COUNT_ ||
        (unsigned)opt->quant.centre >= MPOC_QUANT_COUNT_)
        MPOC_FAIL(MPOC_E_INVAL, "compress: invalid core type");
    mpoc_model *m;
    MPOC_TRY(mpoc_model_open(in, &m));
    mpoc_status st = compress_model(m, out, opt, summary);
    mpoc_model_close(m);
    return st;
}

/* ------------------------------------------------------------ decompress */

static mpoc_status dense_of(const mpoc_container *c, size_t e_idx, mpoc_mat *dense)
{
    mpoc_qmpo q;
    MPOC_TRY(mpoc_container_load(c, e_idx, &q));
    mpoc_status st = mpoc_mpo_to_dense(&q.mpo, dense, NULL);
    mpoc_qmpo_free(&q);
    return st;
}

/* A finished tensor of decompress or prune: into the summary, then reported. */
static void output_done(mpoc_summary *s, const mpoc_tensor_record *rec, double *acc,
                        mpoc_progress_fn report, void *user, size_t total)
{
    summary_add(s, rec, acc);
    if (report)
        report(user, rec, s->tensors, total, 0, 0);
}

/* The output committed when st is OK (else abandoned), the summary closed. */
static mpoc_status finish_output(mpoc_status st, mpoc_writer *w, mpoc_summary *s, double acc,
                                 double t0)
{
    if (st == MPOC_OK)
        st = mpoc_writer_commit(w);
    else
        mpoc_writer_abort(w);
    summary_finish(s, acc, t0);
    return st;
}

static mpoc_status decompress_model(const mpoc_model *m, const char *out,
                                    const mpoc_decompress_options *o, mpoc_summary *s)
{
    mpoc_container *c;
    MPOC_TRY(mpoc_container_open(m, &c));
    const char **inputs = NULL;
    mpoc_write_policy pol;
    mpoc_writer *w = NULL;
    double acc = 0.0, t0 = now_seconds();
    mpoc_status st = make_policy(m, &o->policy, &pol, &inputs);
    if (st == MPOC_OK)
        st = open_writer(m, out, &pol, &w);
    if (st == MPOC_OK)
        st = copy_meta_filtered(w, m, META_NOT_OWN);
    size_t nt = mpoc_model_tensor_count(m);
    for (size_t i = 0; st == MPOC_OK && i < nt; i++) {
        const mpoc_tensor *t = mpoc_model_tensor(m, i);
        long owner = mpoc_container_owner(c, i);
        mpoc_tensor_record rec;
        record_base(t, i, &rec);
        if (owner < 0) {
            st = mpoc_writer_add_tensor(w, t, NULL);
            release_pages(t);
        } else {
            const mpoc_container_entry *e = mpoc_container_entry_at(c, (size_t)owner);
            if (e->first_tensor != i)
                continue;
            mpoc_dtype dt = o->dtype < MPOC_DTYPE_COUNT_ ? o->dtype : e->orig_dtype;
            const mpoc_dtype_traits *tr = mpoc_dtype_info(dt);
            if (!tr || !tr->can_write)
                dt = MPOC_DTYPE_F32;
            mpoc_mat dense;
            st = dense_of(c, (size_t)owner, &dense);
            if (st == MPOC_OK) {
                st = mpoc_writer_add_f32(w, e->name, dt, e->orig_shape, e->orig_n_dims, dense.data);
                mpoc_mat_free(&dense);
            }
            rec.name = e->name;
            rec.n_dims = e->orig_n_dims;
            memcpy(rec.shape, e->orig_shape, sizeof rec.shape);
            rec.compressed = true;
            rec.original_bytes = e->bytes;
            rec.elems = e->shape.rows * e->shape.cols;
            uint64_t nb = 0;
            if (st == MPOC_OK)
                st = mpoc_dtype_nbytes(dt, rec.elems, &nb);
            rec.bytes = nb;
            rec.sites = e->shape.sites;
            memcpy(rec.ranks, e->ranks, sizeof rec.ranks);
            rec.rel_error = e->rel_error;
            if (st != MPOC_OK)
                mpoc_log_("tensor '%s': cannot be reconstructed", e->name);
        }
        if (st == MPOC_OK)
            output_done(s, &rec, &acc, o->progress, o->progress_user, nt);
    }
    st = finish_output(st, w, s, acc, t0);
    free(inputs);
    mpoc_container_close(c);
    return st;
}

mpoc_status mpoc_decompress(const char *in, const char *out, const mpoc_decompress_options *opt,
                            mpoc_summary *summary)
{
    mpoc_summary local;
    if (!summary)
        summary = &local;
    memset(summary, 0, sizeof *summary);
    if (!in || !out || !opt)
        MPOC_FAIL(MPOC_E_INVAL, "decompress: missing input, output or options");
    mpoc_model *m;
    MPOC_TRY(mpoc_model_open(in, &m));
    mpoc_status st = decompress_model(m, out, opt, summary);
    mpoc_model_close(m);
    return st;
}

/* ------------------------------------------------------------ prune */

static mpoc_status prune_entry(const mpoc_container *c, size_t idx, mpoc_format fmt,
                               const mpoc_prune_options *o, mpoc_workspace *ws,
                               mpoc_encoded *enc, mpoc_tensor_record *rec)
{
    const mpoc_container_entry *e = mpoc_container_entry_at(c, idx);
    mpoc_qmpo q, q2;
    mpoc_mpo m;
    mpoc_mat target;
    memset(&m, 0, sizeof m);
    memset(&q2, 0, sizeof q2);
    memset(&target, 0, sizeof target);
    MPOC_TRY(mpoc_container_load(c, idx, &q));
    mpoc_quant_options qo = o->keep_types ? e->quant : o->quant;
    if (!o->keep_types)
        qo.no_feedback = o->quant.no_feedback;
    mpoc_quant_report qr;
    mpoc_status st = mpoc_mpo_to_dense(&q.mpo, &target, ws);
    if (st == MPOC_OK)
        st = mpoc_mpo_copy(&m, &q.mpo);
    if (st == MPOC_OK)
        st = mpoc_mpo_round(&m, &o->mpo, ws);
    mpoc_ws_trim(ws, WS_KEEP_BYTES, 0); /* the rounding's core SVDs */
    if (st == MPOC_OK)
        st = mpoc_quant_mpo(&m, mpoc_mat_view_of(&target), &qo, ws, &q2, &qr);
    mpoc_ws_trim(ws, WS_KEEP_BYTES, 0); /* nothing carries to the next tensor */
    if (st == MPOC_OK) {
        mpoc_encode_info info = {e->name, e->orig_dtype, e->orig_n_dims, e->orig_shape,
                                 NAN, qr.rel_error, e->rel_error, qo};
        st = mpoc_container_encode(fmt, &info, &q2, enc);
    }
    if (st == MPOC_OK) {
        rec->name = e->name;
        rec->n_dims = e->orig_n_dims;
        memcpy(rec->shape, e->orig_shape, sizeof rec->shape);
        rec->compressed = true;
        rec->sites = e->shape.sites;
        memcpy(rec->ranks, q2.mpo.ranks, sizeof rec->ranks);
        rec->core = qo.core;
        rec->centre = qo.centre;
        rec->bytes = enc->bytes;
        rec->original_bytes = e->bytes;
        rec->elems = e->shape.rows * e->shape.cols;
        rec->rel_error = qr.rel_error;
        rec->rel_error_trunc = e->rel_error;
    } else {
        mpoc_log_("tensor '%s': pruning failed: %s", e->name, mpoc_strerror(st));
    }
    mpoc_mat_free(&target);
    mpoc_mpo_free(&m);
    mpoc_qmpo_free(&q2);
    mpoc_qmpo_free(&q);
    return st;
}

static mpoc_status prune_model(const mpoc_model *m, const char *out, const mpoc_prune_options *o,
                               mpoc_summary *s)
{
    mpoc_container *c;
    MPOC_TRY(mpoc_container_open(m, &c));
    const char **inputs = NULL;
    mpoc_write_policy pol;
    mpoc_writer *w = NULL;
    mpoc_workspace *ws = NULL;
    double acc = 0.0, t0 = now_seconds();
    mpoc_status st = make_policy(m, &o->policy, &pol, &inputs);
    if (st == MPOC_OK)
        st = mpoc_workspace_new(&ws);
    if (st == MPOC_OK)
        st = open_writer(m, out, &pol, &w);
    if (st == MPOC_OK)
        st = copy_meta_filtered(w, m, META_NOT_TENSORS);
    size_t nt = mpoc_model_tensor_count(m);
    for (size_t i = 0; st == MPOC_OK && i < nt; i++) {
        const mpoc_tensor *t = mpoc_model_tensor(m, i);
        long owner = mpoc_container_owner(c, i);
        mpoc_tensor_record rec;
        record_base(t, i, &rec);
        if (owner < 0) {
            st = mpoc_writer_add_tensor(w, t, NULL);
            release_pages(t);
        } else {
            if (mpoc_container_entry_at(c, (size_t)owner)->first_tensor != i)
                continue;
            double t1 = now_seconds();
            mpoc_encoded enc;
            st = prune_entry(c, (size_t)owner, mpoc_model_format(m), o, ws, &enc, &rec);
            if (st == MPOC_OK) {
                st = mpoc_container_emit(w, &enc);
                mpoc_encoded_free(&enc);
            }
            rec.seconds = now_seconds() - t1;
        }
        if (st == MPOC_OK)
            output_done(s, &rec, &acc, o->progress, o->progress_user, nt);
    }
    st = finish_output(st, w, s, acc, t0);
    mpoc_workspace_free(ws);
    free(inputs);
    mpoc_container_close(c);
    return st;
}

mpoc_status mpoc_prune(const char *in, const char *out, const mpoc_prune_options *opt,
                       mpoc_summary *summary)
{
    mpoc_summary local;
    if (!summary)
        summary = &local;
    memset(summary, 0, sizeof *summary);
    if (!in || !out || !opt)
        MPOC_FAIL(MPOC_E_INVAL, "prune: missing input, output or options");
    mpoc_model *m;
    MPOC_TRY(mpoc_model_open(in, &m));
    mpoc_status st = prune_model(m, out, opt, summary);
    mpoc_model_close(m);
    return st;
}
