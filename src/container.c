/* container.c: quantized MPOs ⇄ tensors + metadata of a safetensors or GGUF
 * file (docs/format.md). Joins the numeric layer (quant, mpo) and the I/O
 * layer (model, json); all sizes from files go through checked arithmetic. */
#include "mpoc_container.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "json.h"
#include "mpoc.h"
#include "util.h"

/* ------------------------------------------------------------ helpers */

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

void mpoc_encoded_free(mpoc_encoded *e)
{
    if (!e)
        return;
    for (size_t i = 0; i < e->n; i++) {
        free(e->t[i].name);
        free(e->t[i].data);
    }
    free(e->t);
    free(e->meta_key);
    free(e->meta_value);
    memset(e, 0, sizeof *e);
}

bool mpoc_container_is_own_key(const char *key)
{
    return !strncmp(key, "mpo.", 4) || !strncmp(key, "mpoc.", 5);
}

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

/* Core names are <prefix>.<k>: <name>.mpo, or for GGUF names that would pass
 * 63 bytes, mpo.<16 hex digits of FNV-1a-64(name)>. */
static void core_prefix(mpoc_format f, const char *name, size_t sites, char *buf, size_t cap)
{
    size_t digits = sites > 10 ? 2 : 1;
    if (f != MPOC_FORMAT_GGUF || strlen(name) + 5 + digits <= MPOC_GGUF_MAX_NAME)
        snprintf(buf, cap, "%s.mpo", name);
    else
        snprintf(buf, cap, "mpo.%016llx", (unsigned long long)fnv1a(name));
}

/* ------------------------------------------------------------ encoding */

static void put_sizes(mpoc_sbuf *b, const char *key, const size_t *v, size_t n)
{
    mpoc_sbuf_printf(b, ",\"%s\":[", key);
    for (size_t i = 0; i < n; i++)
        mpoc_sbuf_printf(b, "%s%zu", i ? "," : "", v[i]);
    mpoc_sbuf_puts(b, "]");
}

static void put_real(mpoc_sbuf *b, const char *key, double v)
{
    if (isfinite(v))
        mpoc_sbuf_printf(b, "\"%s\":%.9g", key, v);
    else
        mpoc_sbuf_printf(b, "\"%s\":null", key);
}

static char *describe(mpoc_format f, const mpoc_encode_info *info, const mpoc_qmpo *q,
                      const char *prefix, uint64_t bytes)
{
    const mpoc_shape *s = &q->mpo.shape;
    mpoc_sbuf b = {0};
    mpoc_sbuf_printf(&b, "{\"sites\":%zu", s->sites);
    put_sizes(&b, "out_dims", s->row_dims, s->sites);
    put_sizes(&b, "in_dims", s->col_dims, s->sites);
    put_sizes(&b, "ranks", q->mpo.ranks, s->sites + 1);
    mpoc_sbuf_puts(&b, ",\"orig_shape\":[");
    for (uint32_t i = 0; i < info->orig_n_dims; i++)
        mpoc_sbuf_printf(&b, "%s%llu", i ? "," : "", (unsigned long long)info->orig_shape[i]);
    mpoc_sbuf_printf(&b, "],\"padded_shape\":[%zu,%zu]", s->padded_rows, s->padded_cols);
    mpoc_sbuf_printf(&b, ",\"orig_dtype\":\"%s\",\"core_prefix\":", mpoc_dtype_name(info->orig_dtype));
    mpoc_sbuf_json_string(&b, prefix, strlen(prefix));
    mpoc_sbuf_puts(&b, ",\"core_dtype\":[");
    for (size_t k = 0; k < s->sites; k++)
        mpoc_sbuf_printf(&b, "%s\"%s\"", k ? "," : "", mpoc_quant_name(q->types[k]));
    mpoc_sbuf_printf(&b, "],\"quant\":{\"core\":\"%s\",\"centre\":\"%s\",\"group\":%d,"
                         "\"scale_dtype\":\"F16\",\"feedback\":%s}",
                     mpoc_quant_name(info->quant.core), mpoc_quant_name(info->quant.centre),
                     MPOC_QUANT_BLOCK, info->quant.no_feedback ? "false" : "true");
    mpoc_sbuf_puts(&b, ",\"rel_err\":{");
    put_real(&b, "trunc", info->rel_error_trunc);
    mpoc_sbuf_puts(&b, ",");
    put_real(&b, "total", info->rel_error);
    if (isfinite(info->rel_error_base)) {
        mpoc_sbuf_puts(&b, ",");
        put_real(&b, "base", info->rel_error_base);
    }
    mpoc_sbuf_printf(&b, "},\"bytes\":%llu}", (unsigned long long)bytes);
    (void)f;
    if (b.failed) {
        mpoc_sbuf_free(&b);
        return NULL;
    }
    return b.data;
}

/* ggml Q8_0 blocks → I8 codes + F16 scales. */
static void split_q8(const uint8_t *blocks, size_t n, int8_t *codes, uint8_t *scales)
{
    for (size_t b = 0; b * 32 < n; b++) {
        const uint8_t *blk = blocks + 34 * b;
        memcpy(scales + 2 * b, blk, 2);
        for (size_t j = 0; j < 32 && b * 32 + j < n; j++)
            codes[b * 32 + j] = (int8_t)blk[2 + j];
    }
}

/* ggml Q4_0 blocks (qs[j]: element j low, j+16 high) → nibbles packed in
 * element order (element 2i low, 2i+1 high) + F16 scales. */
static void split_q4(const uint8_t *blocks, size_t n, uint8_t *packed, uint8_t *scales)
{
    memset(packed, 0, (n + 1) / 2);
    for (size_t b = 0; b * 32 < n; b++) {
        const uint8_t *blk = blocks + 18 * b;
        memcpy(scales + 2 * b, blk, 2);
        for (size_t j = 0; j < 32 && b * 32 + j < n; j++) {
            size_t e = b * 32 + j;
            uint8_t u = j < 16 ? (blk[2 + j] & 0xF) : (uint8_t)(blk[2 + j - 16] >> 4);
            packed[e / 2] |= (uint8_t)(e % 2 ? u << 4 : u);
        }
    }
}

static mpoc_status add_enc(mpoc_encoded *e, const char *name, mpoc_dtype dt, const uint64_t *shape,
                           uint32_t nd, size_t nbytes, uint8_t **data_out)
{
    mpoc_enc_tensor *t = &e->t[e->n];
    memset(t, 0, sizeof *t);
    t->name = dup_str(name);
    t->data = malloc(nbytes ? nbytes : 1);
    if (!t->name || !t->data) {
        free(t->name);
        free(t->data);
        return MPOC_E_NOMEM;
    }
    t->dtype = dt;
    t->n_dims = nd;
    memcpy(t->shape, shape, nd * sizeof *shape);
    t->nbytes = nbytes;
    e->bytes += nbytes;
    e->n++;
    *data_out = t->data;
    return MPOC_OK;
}

static mpoc_status encode_core(mpoc_format f, const mpoc_qmpo *q, size_t k, const char *prefix,
                               mpoc_encoded *e)
{
    const mpoc_mpo *m = &q->mpo;
    size_t n = mpoc_mpo_core_size(m, k), blocks = (n + 31) / 32;
    uint64_t shape4[4] = {m->ranks[k], m->shape.row_dims[k], m->shape.col_dims[k], m->ranks[k + 1]};
    char name[640], sname[660];
    snprintf(name, sizeof name, "%s.%zu", prefix, k);
    snprintf(sname, sizeof sname, "%s.scale", name);
    mpoc_quant_type t = q->types[k];
    uint8_t *dst, *sc;
    if (t == MPOC_QUANT_F32 || t == MPOC_QUANT_F16 || t == MPOC_QUANT_BF16) {
        MPOC_TRY(add_enc(e, name, mpoc_quant_dtype(t), shape4, 4, q->nbytes[k], &dst));
        memcpy(dst, q->data[k], q->nbytes[k]);
        return MPOC_OK;
    }
    if (f == MPOC_FORMAT_GGUF) { /* native blocks: 4-D when rows are whole blocks, else flat */
        uint64_t flat = blocks * 32;
        bool native = shape4[3] % 32 == 0;
        MPOC_TRY(add_enc(e, name, mpoc_quant_dtype(t), native ? shape4 : &flat, native ? 4 : 1,
                         q->nbytes[k], &dst));
        memcpy(dst, q->data[k], q->nbytes[k]);
        return MPOC_OK;
    }
    uint64_t sshape = blocks;
    if (t == MPOC_QUANT_Q8_0) {
        MPOC_TRY(add_enc(e, name, MPOC_DTYPE_I8, shape4, 4, n, &dst));
        MPOC_TRY(add_enc(e, sname, MPOC_DTYPE_F16, &sshape, 1, 2 * blocks, &sc));
        split_q8(q->data[k], n, (int8_t *)dst, sc);
    } else {
        uint64_t pshape = (n + 1) / 2;
        MPOC_TRY(add_enc(e, name, MPOC_DTYPE_U8, &pshape, 1, (n + 1) / 2, &dst));
        MPOC_TRY(add_enc(e, sname, MPOC_DTYPE_F16, &sshape, 1, 2 * blocks, &sc));
        split_q4(q->data[k], n, dst, sc);
    }
    return MPOC_OK;
}

mpoc_status mpoc_container_encode(mpoc_format format, const mpoc_encode_info *info,
                                  const mpoc_qmpo *q, mpoc_encoded *out)
{
    memset(out, 0, sizeof *out);
    size_t d = q->mpo.shape.sites;
    if (d == 0 || d > MPOC_MAX_SITES || !info->name || strlen(info->name) > 512)
        MPOC_FAIL(MPOC_E_INVAL, "encode: bad MPO or name");
    char prefix[600];
    core_prefix(format, info->name, d, prefix, sizeof prefix);
    out->t = calloc(2 * d, sizeof *out->t);
    size_t klen = strlen(info->name) + 5;
    out->meta_key = malloc(klen);
    if (!out->t || !out->meta_key) {
        mpoc_encoded_free(out);
        return MPOC_E_NOMEM;
    }
    snprintf(out->meta_key, klen, "mpo.%s", info->name);
    mpoc_status st = MPOC_OK;
    for (size_t k = 0; st == MPOC_OK && k < d; k++)
        st = encode_core(format, q, k, prefix, out);
    if (st == MPOC_OK) {
        out->meta_value = describe(format, info, q, prefix, out->bytes);
        if (!out->meta_value)
            st = MPOC_E_NOMEM;
    }
    if (st != MPOC_OK)
        mpoc_encoded_free(out);
    return st;
}

mpoc_status mpoc_container_emit(mpoc_writer *w, const mpoc_encoded *e)
{
    for (size_t i = 0; i < e->n; i++) {
        const mpoc_enc_tensor *t = &e->t[i];
        MPOC_TRY(mpoc_writer_add_raw(w, t->name, t->dtype, t->shape, t->n_dims, t->data, t->nbytes));
    }
    return mpoc_writer_set_meta_string(w, e->meta_key, e->meta_value);
}

mpoc_status mpoc_container_emit_header(mpoc_writer *w)
{
    MPOC_TRY(mpoc_writer_set_meta_string(w, "mpoc.format_version", MPOC_CONTAINER_VERSION));
    MPOC_TRY(mpoc_writer_set_meta_string(w, "mpoc.core_layout", "r_left,m_out,n_in,r_right"));
    return mpoc_writer_set_meta_string(w, "mpoc.version", MPOC_VERSION_STRING);
}

/* ------------------------------------------------------------ decoding */

struct mpoc_container {
    const mpoc_model *model;
    size_t n;
    mpoc_container_entry *e;
    char **names;  /* owned copies of the entries' names */
    long *owner;   /* [tensor count] */
};

bool mpoc_container_detect(const mpoc_model *m)
{
    const mpoc_meta *kv;
    return mpoc_model_meta_find(m, "mpoc.format_version", &kv) == MPOC_OK;
}

void mpoc_container_close(mpoc_container *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++)
        free(c->names[i]);
    free(c->names);
    free(c->e);
    free(c->owner);
    free(c);
}

size_t mpoc_container_count(const mpoc_container *c) { return c->n; }

const mpoc_container_entry *mpoc_container_entry_at(const mpoc_container *c, size_t i)
{
    return i < c->n ? &c->e[i] : NULL;
}

long mpoc_container_owner(const mpoc_container *c, size_t tensor_index)
{
    return tensor_index < mpoc_model_tensor_count(c->model) ? c->owner[tensor_index] : -1;
}

/* String value of a metadata entry (safetensors: always; GGUF: STRING). */
static const char *meta_string(const mpoc_meta *kv, size_t *len)
{
    if (kv->type != MPOC_META_STRING || !kv->value.str)
        return NULL;
    *len = kv->value.str_len;
    return kv->value.str;
}

#define BAD(...) MPOC_FAIL(MPOC_E_FORMAT, __VA_ARGS__)

/* A JSON array of n (1..max) positive integers into v. */
static mpoc_status get_sizes(const mpoc_jv *o, const char *key, const char *tn, size_t *v,
                             size_t n_want, size_t *n_out)
{
    const mpoc_jv *a = mpoc_json_get(o, key);
    if (!a || mpoc_json_kind_of(a) != MPOC_JSON_ARRAY)
        BAD("container tensor '%s': \"%s\" missing or not an array", tn, key);
    size_t n = mpoc_json_size(a);
    if (n == 0 || n > MPOC_MAX_SITES + 1 || (n_want && n != n_want))
        BAD("container tensor '%s': \"%s\" has %zu entries%s", tn, key, n,
            n_want ? " (does not match sites)" : "");
    for (size_t i = 0; i < n; i++) {
        uint64_t u;
        if (!mpoc_json_u64(mpoc_json_at(a, i), &u) || u == 0 || u > ((uint64_t)1 << 40))
            BAD("container tensor '%s': \"%s\"[%zu] is not a positive integer", tn, key, i);
        v[i] = (size_t)u;
    }
    if (n_out)
        *n_out = n;
    return MPOC_OK;
}

static mpoc_status get_quant(const mpoc_jv *o, const char *key, const char *tn, mpoc_quant_type *t)
{
    const char *s = mpoc_json_str(mpoc_json_get(o, key), NULL);
    if (!s || mpoc_quant_parse(s, t) != MPOC_OK)
        BAD("container tensor '%s': \"%s\" is not a core type", tn, key);
    return MPOC_OK;
}

/* Parse the shape part of one description into e. */
static mpoc_status parse_shape(const mpoc_jv *o, mpoc_container_entry *e)
{
    const char *tn = e->name;
    uint64_t sites;
    if (!mpoc_json_u64(mpoc_json_get(o, "sites"), &sites) || sites == 0 || sites > MPOC_MAX_SITES)
        BAD("container tensor '%s': \"sites\" missing or not in 1..%d", tn, MPOC_MAX_SITES);
    size_t d = (size_t)sites, out_d[MPOC_MAX_SITES + 1], in_d[MPOC_MAX_SITES + 1], pad[2], no;
    MPOC_TRY(get_sizes(o, "out_dims", tn, out_d, d, NULL));
    MPOC_TRY(get_sizes(o, "in_dims", tn, in_d, d, NULL));
    MPOC_TRY(get_sizes(o, "ranks", tn, e->ranks, d + 1, NULL));
    MPOC_TRY(get_sizes(o, "padded_shape", tn, pad, 2, NULL));
    size_t oshape[MPOC_MAX_SITES + 1];
    MPOC_TRY(get_sizes(o, "orig_shape", tn, oshape, 0, &no));
    if (no > MPOC_MAX_DIMS)
        BAD("container tensor '%s': \"orig_shape\" has %zu dims", tn, no);
    e->orig_n_dims = (uint32_t)no;
    uint64_t rows = 1, cols = oshape[no - 1];
    for (size_t i = 0; i < no; i++)
        e->orig_shape[i] = oshape[i];
    for (size_t i = 0; i + 1 < no; i++)
        if (!mpoc_mul_u64(rows, oshape[i], &rows))
            BAD("container tensor '%s': \"orig_shape\" overflows", tn);
    if (no == 1) {
        rows = 1;
        cols = oshape[0];
    }
    if (rows > SIZE_MAX || cols > SIZE_MAX)
        BAD("container tensor '%s': \"orig_shape\" too large", tn);
    if (mpoc_shape_explicit((size_t)rows, (size_t)cols, d, out_d, in_d, &e->shape) != MPOC_OK)
        BAD("container tensor '%s': dims do not cover the shape %llu x %llu", tn,
            (unsigned long long)rows, (unsigned long long)cols);
    if (e->shape.padded_rows != pad[0] || e->shape.padded_cols != pad[1])
        BAD("container tensor '%s': \"padded_shape\" is not the product of the dims", tn);
    if (e->ranks[0] != 1 || e->ranks[d] != 1)
        BAD("container tensor '%s': boundary ranks must be 1", tn);
    for (size_t k = 0; k + 1 < d; k++)
        if (e->ranks[k + 1] > mpoc_shape_max_rank(&e->shape, k))
            BAD("container tensor '%s': rank %zu of bond %zu exceeds its largest useful rank %zu",
                tn, e->ranks[k + 1], k, mpoc_shape_max_rank(&e->shape, k));
    return MPOC_OK;
}

/* Find a tensor, check dtype and shape, claim it for entry idx. */
static mpoc_status claim(mpoc_container *c, long idx, const char *name, mpoc_dtype dt,
                         const uint64_t *shape, uint32_t nd, const mpoc_tensor **out)
{
    const char *tn = c->e[idx].name;
    const mpoc_tensor *t;
    if (mpoc_model_find(c->model, name, &t) != MPOC_OK)
        BAD("container tensor '%s': core tensor '%s' is missing", tn, name);
    if (t->dtype != dt)
        BAD("container tensor '%s': core tensor '%s' is %s, expected %s", tn, name,
            mpoc_dtype_name(t->dtype), mpoc_dtype_name(dt));
    bool same = t->n_dims == nd;
    for (uint32_t i = 0; same && i < nd; i++)
        same = t->shape[i] == shape[i];
    if (!same)
        BAD("container tensor '%s': core tensor '%s' has the wrong shape", tn, name);
    size_t ti = (size_t)(t - mpoc_model_tensor(c->model, 0));
    if (c->owner[ti] != -1)
        BAD("container tensor '%s': core tensor '%s' is claimed twice", tn, name);
    c->owner[ti] = idx;
    if (ti < c->e[idx].first_tensor)
        c->e[idx].first_tensor = ti;
    c->e[idx].bytes += t->nbytes;
    *out = t;
    return MPOC_OK;
}

static mpoc_status claim_cores(mpoc_container *c, long idx, const char *prefix)
{
    mpoc_container_entry *e = &c->e[idx];
    mpoc_format f = mpoc_model_format(c->model);
    e->first_tensor = SIZE_MAX;
    for (size_t k = 0; k < e->shape.sites; k++) {
        size_t n;
        if (!mpoc_mul_size(e->ranks[k], e->shape.row_dims[k], &n) ||
            !mpoc_mul_size(n, e->shape.col_dims[k], &n) || !mpoc_mul_size(n, e->ranks[k + 1], &n) ||
            n > ((size_t)1 << 40))
            BAD("container tensor '%s': core %zu size overflows", e->name, k);
        uint64_t shape4[4] = {e->ranks[k], e->shape.row_dims[k], e->shape.col_dims[k], e->ranks[k + 1]};
        uint64_t blocks = (n + 31) / 32, flat = blocks * 32, packed = (n + 1) / 2;
        char name[700], sname[720];
        snprintf(name, sizeof name, "%s.%zu", prefix, k);
        snprintf(sname, sizeof sname, "%s.scale", name);
        mpoc_quant_type t = e->types[k];
        mpoc_dtype dt = mpoc_quant_dtype(t);
        e->scales[k] = NULL;
        if (t == MPOC_QUANT_F32 || t == MPOC_QUANT_F16 || t == MPOC_QUANT_BF16) {
            MPOC_TRY(claim(c, idx, name, dt, shape4, 4, &e->cores[k]));
        } else if (f == MPOC_FORMAT_GGUF) {
            bool native = shape4[3] % 32 == 0;
            MPOC_TRY(claim(c, idx, name, dt, native ? shape4 : &flat, native ? 4 : 1, &e->cores[k]));
        } else {
            if (t == MPOC_QUANT_Q8_0)
                MPOC_TRY(claim(c, idx, name, MPOC_DTYPE_I8, shape4, 4, &e->cores[k]));
            else
                MPOC_TRY(claim(c, idx, name, MPOC_DTYPE_U8, &packed, 1, &e->cores[k]));
            MPOC_TRY(claim(c, idx, sname, MPOC_DTYPE_F16, &blocks, 1, &e->scales[k]));
        }
    }
    return MPOC_OK;
}

/* rel_err values are reals; the JSON adapter exposes integers and strings
 * only, so they are read from the text by key (informational: nothing
 * depends on them). */
static double scan_real(const char *text, const char *key)
{
    char pat[32];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(text, pat);
    if (!p)
        return NAN;
    p += strlen(pat);
    char *end;
    double v = strtod(p, &end);
    return end == p ? (double)NAN : v;
}

static mpoc_status parse_entry(mpoc_container *c, long idx, const char *text, size_t len)
{
    mpoc_container_entry *e = &c->e[idx];
    mpoc_jv *root;
    char label[600];
    snprintf(label, sizeof label, "metadata 'mpo.%.500s'", e->name);
    MPOC_TRY(mpoc_json_parse(text, len, 8, label, &root));
    mpoc_status st = MPOC_OK;
    if (mpoc_json_kind_of(root) != MPOC_JSON_OBJECT) {
        mpoc_log_("container tensor '%s': description is not a JSON object", e->name);
        st = MPOC_E_FORMAT;
    }
    if (st == MPOC_OK)
        st = parse_shape(root, e);
    const mpoc_jv *types = mpoc_json_get(root, "core_dtype");
    if (st == MPOC_OK && (!types || mpoc_json_size(types) != e->shape.sites ||
                          mpoc_json_kind_of(types) != MPOC_JSON_ARRAY)) {
        mpoc_log_("container tensor '%s': \"core_dtype\" must list one type per site", e->name);
        st = MPOC_E_FORMAT;
    }
    for (size_t k = 0; st == MPOC_OK && k < e->shape.sites; k++) {
        const char *s = mpoc_json_str(mpoc_json_at(types, k), NULL);
        if (!s || mpoc_quant_parse(s, &e->types[k]) != MPOC_OK) {
            mpoc_log_("container tensor '%s': core_dtype[%zu] is not a core type", e->name, k);
            st = MPOC_E_FORMAT;
        }
    }
    const mpoc_jv *quant = mpoc_json_get(root, "quant");
    e->quant = mpoc_quant_options_default();
    if (st == MPOC_OK && quant) {
        st = get_quant(quant, "core", e->name, &e->quant.core);
        if (st == MPOC_OK)
            st = get_quant(quant, "centre", e->name, &e->quant.centre);
        const mpoc_jv *fb = mpoc_json_get(quant, "feedback");
        e->quant.no_feedback = fb && mpoc_json_kind_of(fb) == MPOC_JSON_FALSE;
    }
    const char *dts = mpoc_json_str(mpoc_json_get(root, "orig_dtype"), NULL);
    if (st == MPOC_OK && (!dts || mpoc_dtype_from_name(dts, &e->orig_dtype) != MPOC_OK)) {
        mpoc_log_("container tensor '%s': \"orig_dtype\" missing or unknown", e->name);
        st = MPOC_E_FORMAT;
    }
    const char *prefix = mpoc_json_str(mpoc_json_get(root, "core_prefix"), NULL);
    if (st == MPOC_OK && (!prefix || strlen(prefix) == 0 || strlen(prefix) > 600)) {
        mpoc_log_("container tensor '%s': \"core_prefix\" missing", e->name);
        st = MPOC_E_FORMAT;
    }
    if (st == MPOC_OK)
        st = claim_cores(c, idx, prefix);
    e->rel_error = scan_real(text, "total");
    e->rel_error_trunc = scan_real(text, "trunc");
    mpoc_json_free(root);
    return st;
}

/* Names that look like cores: "<x>.mpo.<k>[.scale]" or "mpo.<hex>.<k>". */
static bool looks_like_core(const char *name)
{
    return strstr(name, ".mpo.") != NULL || !strncmp(name, "mpo.", 4);
}

static mpoc_status index_entries(mpoc_container *c)
{
    const mpoc_model *m = c->model;
    size_t nm = mpoc_model_meta_count(m);
    for (size_t i = 0; i < nm; i++) {
        const mpoc_meta *kv = mpoc_model_meta(m, i);
        if (strncmp(kv->key, "mpo.", 4))
            continue;
        size_t len;
        const char *text = meta_string(kv, &len);
        if (!text)
            BAD("container: metadata '%s' is not a string", kv->key);
        long idx = (long)c->n;
        c->names[c->n] = dup_str(kv->key + 4);
        if (!c->names[c->n])
            return MPOC_E_NOMEM;
        c->e[c->n].name = c->names[c->n];
        c->n++;
        MPOC_TRY(parse_entry(c, idx, text, len));
    }
    size_t nt = mpoc_model_tensor_count(m);
    for (size_t i = 0; i < nt; i++)
        if (c->owner[i] == -1 && looks_like_core(mpoc_model_tensor(m, i)->name))
            BAD("container: tensor '%s' looks like an MPO core but no mpo.* entry lists it",
                mpoc_model_tensor(m, i)->name);
    return MPOC_OK;
}

mpoc_status mpoc_container_open(const mpoc_model *m, mpoc_container **out)
{
    *out = NULL;
    const mpoc_meta *kv;
    if (mpoc_model_meta_find(m, "mpoc.format_version", &kv) != MPOC_OK)
        MPOC_FAIL(MPOC_E_NOTFOUND, "%s: not an mpoc container (no mpoc.format_version)",
                  mpoc_model_file_path(m, 0));
    size_t len;
    const char *v = meta_string(kv, &len);
    if (!v || len != strlen(MPOC_CONTAINER_VERSION) || memcmp(v, MPOC_CONTAINER_VERSION, len))
        MPOC_FAIL(MPOC_E_UNSUPPORTED, "%s: mpoc.format_version is not %s",
                  mpoc_model_file_path(m, 0), MPOC_CONTAINER_VERSION);
    mpoc_container *c = calloc(1, sizeof *c);
    size_t nm = mpoc_model_meta_count(m), nt = mpoc_model_tensor_count(m);
    if (!c)
        return MPOC_E_NOMEM;
    c->model = m;
    c->e = calloc(nm ? nm : 1, sizeof *c->e);
    c->names = calloc(nm ? nm : 1, sizeof *c->names);
    c->owner = mpoc_alloc_array(nt ? nt : 1, sizeof *c->owner);
    if (!c->e || !c->names || !c->owner) {
        mpoc_container_close(c);
        return MPOC_E_NOMEM;
    }
    for (size_t i = 0; i < nt; i++)
        c->owner[i] = -1;
    mpoc_status st = index_entries(c);
    if (st != MPOC_OK) {
        mpoc_container_close(c);
        return st;
    }
    *out = c;
    return MPOC_OK;
}

/* Stored bytes of core k back in the ggml block form the quantizer uses. */
static mpoc_status gather_core(const mpoc_container_entry *e, size_t k, mpoc_format f,
                               uint8_t **out, size_t *nbytes)
{
    size_t count = e->ranks[k] * e->shape.row_dims[k] * e->shape.col_dims[k] * e->ranks[k + 1];
    mpoc_quant_type t = e->types[k];
    MPOC_TRY(mpoc_quant_nbytes(t, count, nbytes));
    uint8_t *buf = malloc(*nbytes ? *nbytes : 1);
    if (!buf)
        return MPOC_E_NOMEM;
    const uint8_t *src = e->cores[k]->data;
    if (!e->scales[k] || f == MPOC_FORMAT_GGUF) {
        if (e->cores[k]->nbytes != *nbytes) {
            free(buf);
            BAD("container tensor '%s': core %zu holds %llu bytes, expected %zu", e->name, k,
                (unsigned long long)e->cores[k]->nbytes, *nbytes);
        }
        memcpy(buf, src, *nbytes);
    } else {
        const uint8_t *sc = e->scales[k]->data;
        size_t bsz = t == MPOC_QUANT_Q8_0 ? 34 : 18;
        memset(buf, 0, *nbytes);
        for (size_t b = 0; b * 32 < count; b++) {
            uint8_t *blk = buf + bsz * b;
            memcpy(blk, sc + 2 * b, 2);
            for (size_t j = 0; j < 32 && b * 32 + j < count; j++) {
                size_t el = b * 32 + j;
                if (t == MPOC_QUANT_Q8_0) {
                    blk[2 + j] = src[el];
                } else {
                    uint8_t u = (uint8_t)(el % 2 ? src[el / 2] >> 4 : src[el / 2] & 0xF);
                    if (j < 16)
                        blk[2 + j] |= u;
                    else
                        blk[2 + j - 16] |= (uint8_t)(u << 4);
                }
            }
            if (t == MPOC_QUANT_Q4_0) /* padding elements of the last block: code 8 = 0 */
                for (size_t j = count - b * 32 < 32 ? count - b * 32 : 32; j < 32; j++) {
                    if (j < 16)
                        blk[2 + j] |= 8;
                    else
                        blk[2 + j - 16] |= (uint8_t)(8 << 4);
                }
        }
    }
    *out = buf;
    return MPOC_OK;
}

mpoc_status mpoc_container_load(const mpoc_container *c, size_t i, mpoc_qmpo *out)
{
    memset(out, 0, sizeof *out);
    if (i >= c->n)
        MPOC_FAIL(MPOC_E_INVAL, "container entry %zu out of range", i);
    const mpoc_container_entry *e = &c->e[i];
    mpoc_format f = mpoc_model_format(c->model);
    uint8_t *data[MPOC_MAX_SITES] = {0};
    size_t nbytes[MPOC_MAX_SITES] = {0};
    mpoc_status st = MPOC_OK;
    for (size_t k = 0; st == MPOC_OK && k < e->shape.sites; k++)
        st = gather_core(e, k, f, &data[k], &nbytes[k]);
    if (st == MPOC_OK)
        st = mpoc_qmpo_from_stored(&e->shape, e->ranks, e->types, (const uint8_t *const *)data,
                                   nbytes, out);
    for (size_t k = 0; k < e->shape.sites; k++)
        free(data[k]);
    if (st == MPOC_OK)
        for (size_t k = 0; k < e->shape.sites; k++) {
            size_t n = mpoc_mpo_core_size(&out->mpo, k);
            for (size_t j = 0; j < n; j++)
                if (!isfinite(out->mpo.cores[k][j])) {
                    mpoc_qmpo_free(out);
                    BAD("container tensor '%s': core %zu holds a non-finite value", e->name, k);
                }
        }
    return st;
}
