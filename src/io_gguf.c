/* io_gguf.c: parse and validate GGUF v2/v3 (formats.md 3.1–3.5, ggml's order
 * and rules), and write GGUF v3. */
#include "io_gguf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bytes.h"
#include "fileio.h"
#include "internal.h"
#include "json.h"
#include "util.h"

#define KV_MIN_BYTES 14u     /* key len 8 + 1 byte + type 4 + smallest value 1 */
#define TENSOR_MIN_BYTES 25u /* name len 8 + 1 + n_dims 4 + type 4 + offset 8 */

typedef struct gg_ctx {
    mpoc_model *m;
    uint32_t fi;
    const char *label;
    mpoc_cursor c;
    uint64_t alignment;
} gg_ctx;

uint64_t mpoc_gguf_scalar_size(mpoc_meta_type t)
{
    switch (t) {
    case MPOC_META_U8: case MPOC_META_I8: case MPOC_META_BOOL: return 1;
    case MPOC_META_U16: case MPOC_META_I16: return 2;
    case MPOC_META_U32: case MPOC_META_I32: case MPOC_META_F32: return 4;
    case MPOC_META_U64: case MPOC_META_I64: case MPOC_META_F64: return 8;
    default: return 0;
    }
}

static int64_t sign_extend(uint64_t v, unsigned bytes)
{
    unsigned shift = 64 - 8 * bytes;
    return (int64_t)(v << shift) >> shift;
}

static void decode_number(mpoc_meta_type t, const uint8_t *p, mpoc_meta_value *v)
{
    uint64_t size = mpoc_gguf_scalar_size(t);
    uint64_t u = size == 1 ? p[0] : size == 2 ? mpoc_load_le16(p)
               : size == 4 ? mpoc_load_le32(p) : mpoc_load_le64(p);
    v->u = u;
    v->i = (t == MPOC_META_I8 || t == MPOC_META_I16 || t == MPOC_META_I32 || t == MPOC_META_I64)
               ? sign_extend(u, (unsigned)size) : (int64_t)u;
    if (t == MPOC_META_F32) {
        uint32_t b = (uint32_t)u;
        float f;
        memcpy(&f, &b, 4);
        v->f = (double)f;
    } else if (t == MPOC_META_F64) {
        memcpy(&v->f, &u, 8);
    } else {
        v->f = (double)v->i;
    }
}

bool mpoc_gguf_decode_scalar(mpoc_meta_type t, const uint8_t *p, uint64_t avail,
                             mpoc_meta_value *v, uint64_t *used)
{
    memset(v, 0, sizeof *v);
    v->type = t;
    if (t == MPOC_META_STRING) {
        if (avail < 8)
            return false;
        uint64_t n = mpoc_load_le64(p);
        if (n > avail - 8)
            return false;
        v->str = (const char *)p + 8;
        v->str_len = (size_t)n;
        *used = 8 + n;
        return true;
    }
    uint64_t size = mpoc_gguf_scalar_size(t);
    if (size == 0 || size > avail)
        return false;
    decode_number(t, p, v);
    if (t == MPOC_META_BOOL && v->u > 1)
        return false;
    *used = size;
    return true;
}

bool mpoc_gguf_value_valid(mpoc_meta_type type, mpoc_meta_type elem_type, uint64_t count,
                           const uint8_t *raw, uint64_t len)
{
    mpoc_meta_type t = type == MPOC_META_ARRAY ? elem_type : type;
    uint64_t n = type == MPOC_META_ARRAY ? count : 1, pos = 0;
    if (t == MPOC_META_ARRAY || (t != MPOC_META_STRING && mpoc_gguf_scalar_size(t) == 0))
        return false;
    for (uint64_t i = 0; i < n; i++) {
        mpoc_meta_value v;
        uint64_t used;
        if (!mpoc_gguf_decode_scalar(t, raw + pos, len - pos, &v, &used))
            return false;
        pos += used;
    }
    return pos == len;
}

/* ---- reader ------------------------------------------------------------- */

static mpoc_status read_header(gg_ctx *g, uint64_t *n_tensors, uint64_t *n_kv)
{
    const uint8_t *magic;
    uint32_t version;
    if (!mpoc_cursor_take(&g->c, 4, &magic) || memcmp(magic, MPOC_GGUF_MAGIC, 4))
        MPOC_FAIL(MPOC_E_FORMAT, "%s: bad GGUF magic", g->label);
    if (!mpoc_cursor_u32(&g->c, &version))
        MPOC_FAIL(MPOC_E_FORMAT, "%s: GGUF header truncated before the version", g->label);
    if (version != 0 && (version & 0xFFFFu) == 0)
        MPOC_FAIL(MPOC_E_UNSUPPORTED, "%s: big-endian GGUF not supported (version field 0x%08x)",
                  g->label, version);
    if (version == 0 || version > 3)
        MPOC_FAIL(MPOC_E_FORMAT, "%s: GGUF version %u is not 2 or 3", g->label, version);
    if (version == 1)
        MPOC_FAIL(MPOC_E_UNSUPPORTED, "%s: GGUF version 1 (32-bit counts) not supported; "
                  "convert it to v3", g->label);
    g->m->gguf_version = version;
    if (!mpoc_cursor_u64(&g->c, n_tensors) || !mpoc_cursor_u64(&g->c, n_kv))
        MPOC_FAIL(MPOC_E_FORMAT, "%s: GGUF header truncated before the counts", g->label);
    uint64_t need;
    if (*n_kv > MPOC_GGUF_MAX_KV || !mpoc_mul_u64(*n_kv, KV_MIN_BYTES, &need) ||
        need > mpoc_cursor_left(&g->c))
        MPOC_FAIL(MPOC_E_FORMAT, "%s: metadata_kv_count %llu does not fit in the %llu bytes left",
                  g->label, (unsigned long long)*n_kv,
                  (unsigned long long)mpoc_cursor_left(&g->c));
    if (*n_tensors > MPOC_GGUF_MAX_TENSORS || !mpoc_mul_u64(*n_tensors, TENSOR_MIN_BYTES, &need) ||
        need > mpoc_cursor_left(&g->c))
        MPOC_FAIL(MPOC_E_FORMAT, "%s: tensor_count %llu does not fit in the %llu bytes left",
                  g->label, (unsigned long long)*n_tensors,
                  (unsigned long long)mpoc_cursor_left(&g->c));
    return MPOC_OK;
}

/* A GGUF string: u64 length then bytes, length checked against what is left. */
static mpoc_status read_str(gg_ctx *g, const char *what, uint64_t max, const uint8_t **p,
                            uint64_t *len)
{
    uint64_t at = g->c.pos;
    if (!mpoc_cursor_u64(&g->c, len))
        MPOC_FAIL(MPOC_E_FORMAT, "%s: %s truncated at offset %llu", g->label, what,
                  (unsigned long long)at);
    if (*len > mpoc_cursor_left(&g->c))
        MPOC_FAIL(MPOC_E_FORMAT, "%s: %s at offset %llu has length %llu, past the end of the "
                  "file", g->label, what, (unsigned long long)at, (unsigned long long)*len);
    if (*len > max)
        MPOC_FAIL(MPOC_E_FORMAT, "%s: %s at offset %llu has length %llu (at most %llu)", g->label,
                  what, (unsigned long long)at, (unsigned long long)*len,
                  (unsigned long long)max);
    if (!mpoc_cursor_take(&g->c, *len, p))
        return MPOC_E_FORMAT; /* unreachable: length checked */
    return MPOC_OK;
}

/* Walk `count` elements of type t (validated), advancing the cursor. */
static mpoc_status walk_elems(gg_ctx *g, const char *key, mpoc_meta_type t, uint64_t count)
{
    uint64_t size = mpoc_gguf_scalar_size(t), bytes;
    if (t != MPOC_META_STRING && t != MPOC_META_BOOL) {
        if (!mpoc_mul_u64(count, size, &bytes) || !mpoc_cursor_skip(&g->c, bytes))
            MPOC_FAIL(MPOC_E_FORMAT, "%s: key '%s': %llu elements of %s run past the end of the "
                      "file", g->label, key, (unsigned long long)count, mpoc_meta_type_name(t));
        return MPOC_OK;
    }
    for (uint64_t i = 0; i < count; i++) {
        mpoc_meta_value v;
        uint64_t used, at = g->c.pos;
        if (!mpoc_gguf_decode_scalar(t, g->c.base + at, mpoc_cursor_left(&g->c), &v, &used))
            MPOC_FAIL(MPOC_E_FORMAT, "%s: key '%s': element %llu at offset %llu: %s", g->label,
                      key, (unsigned long long)i, (unsigned long long)at,
                      t == MPOC_META_BOOL && mpoc_cursor_left(&g->c) > 0
                          ? "BOOL byte is neither 0 nor 1" : "runs past the end of the file");
        g->c.pos += used;
    }
    return MPOC_OK;
}

static mpoc_status read_type(gg_ctx *g, const char *key, const char *what, mpoc_meta_type *t)
{
    uint32_t v;
    if (!mpoc_cursor_u32(&g->c, &v))
        MPOC_FAIL(MPOC_E_FORMAT, "%s: key '%s': %s truncated", g->label, key, what);
    if (v > MPOC_META_F64)
        MPOC_FAIL(MPOC_E_FORMAT, "%s: key '%s': unknown %s %u", g->label, key, what, v);
    *t = (mpoc_meta_type)v;
    return MPOC_OK;
}

static mpoc_status read_value(gg_ctx *g, mpoc_meta *kv)
{
    MPOC_TRY(read_type(g, kv->key, "value type", &kv->type));
    kv->count = 1;
    if (kv->type == MPOC_META_ARRAY) {
        MPOC_TRY(read_type(g, kv->key, "array element type", &kv->elem_type));
        if (kv->elem_type == MPOC_META_ARRAY)
            MPOC_FAIL(MPOC_E_FORMAT, "%s: key '%s': nested arrays are not supported", g->label,
                      kv->key);
        uint64_t need, min = kv->elem_type == MPOC_META_STRING ? 8
                                                               : mpoc_gguf_scalar_size(kv->elem_type);
        if (!mpoc_cursor_u64(&g->c, &kv->count))
            MPOC_FAIL(MPOC_E_FORMAT, "%s: key '%s': array count truncated", g->label, kv->key);
        if (!mpoc_mul_u64(kv->count, min, &need) || need > mpoc_cursor_left(&g->c))
            MPOC_FAIL(MPOC_E_FORMAT, "%s: key '%s': array of %llu %s elements does not fit in the "
                      "%llu bytes left", g->label, kv->key, (unsigned long long)kv->count,
                      mpoc_meta_type_name(kv->elem_type),
                      (unsigned long long)mpoc_cursor_left(&g->c));
    }
    uint64_t start = g->c.pos;
    if (kv->type == MPOC_META_ARRAY)
        MPOC_TRY(walk_elems(g, kv->key, kv->elem_type, kv->count));
    else
        MPOC_TRY(walk_elems(g, kv->key, kv->type, 1));
    kv->raw = g->c.base + start;
    kv->raw_len = g->c.pos - start;
    if (kv->type != MPOC_META_ARRAY) {
        uint64_t used;
        (void)mpoc_gguf_decode_scalar(kv->type, kv->raw, kv->raw_len, &kv->value, &used);
        if (kv->type == MPOC_META_STRING) {
            kv->value.str = mpoc_strndup_(kv->value.str, kv->value.str_len);
            if (!kv->value.str)
                return MPOC_E_NOMEM;
        }
    }
    return MPOC_OK;
}

static mpoc_status read_kv(gg_ctx *g, uint64_t i)
{
    const uint8_t *p;
    uint64_t len;
    char what[48];
    snprintf(what, sizeof what, "key of KV %llu", (unsigned long long)i);
    MPOC_TRY(read_str(g, what, MPOC_GGUF_MAX_KEY, &p, &len));
    if (len == 0)
        MPOC_FAIL(MPOC_E_FORMAT, "%s: KV %llu has an empty key", g->label, (unsigned long long)i);
    if (memchr(p, '\0', (size_t)len))
        MPOC_FAIL(MPOC_E_FORMAT, "%s: key of KV %llu contains a NUL byte", g->label,
                  (unsigned long long)i);
    mpoc_meta kv = {0};
    kv.key = mpoc_strndup_(p, (size_t)len);
    if (!kv.key)
        return MPOC_E_NOMEM;
    mpoc_status st = read_value(g, &kv);
    if (st != MPOC_OK) {
        free((void *)(uintptr_t)kv.key);
        if (kv.type == MPOC_META_STRING)
            free((void *)(uintptr_t)kv.value.str);
        return st;
    }
    return mpoc_model_push_meta_(g->m, &kv); /* takes ownership either way */
}

static int cmp_meta_key(const void *a, const void *b)
{
    return strcmp((*(const mpoc_meta *const *)a)->key, (*(const mpoc_meta *const *)b)->key);
}

static mpoc_status check_dup_keys(gg_ctx *g)
{
    size_t n = g->m->n_meta;
    if (n < 2)
        return MPOC_OK;
    const mpoc_meta **s = mpoc_alloc_array(n, sizeof *s);
    if (!s)
        return MPOC_E_NOMEM;
    for (size_t i = 0; i < n; i++)
        s[i] = &g->m->meta[i];
    qsort(s, n, sizeof *s, cmp_meta_key);
    for (size_t i = 1; i < n; i++)
        if (!strcmp(s[i - 1]->key, s[i]->key)) {
            mpoc_log_("%s: duplicate key '%s'", g->label, s[i]->key);
            free(s);
            return MPOC_E_FORMAT;
        }
    free(s);
    return MPOC_OK;
}

static mpoc_status read_alignment(gg_ctx *g)
{
    g->alignment = MPOC_GGUF_DEFAULT_ALIGN;
    for (size_t i = 0; i < g->m->n_meta; i++) {
        const mpoc_meta *kv = &g->m->meta[i];
        if (strcmp(kv->key, "general.alignment"))
            continue;
        if (kv->type != MPOC_META_U32)
            MPOC_FAIL(MPOC_E_FORMAT, "%s: key 'general.alignment' has type %s, must be u32",
                      g->label, mpoc_meta_type_name(kv->type));
        uint64_t a = kv->value.u;
        if (a == 0 || (a & (a - 1)) != 0 || a > MPOC_GGUF_MAX_ALIGN)
            MPOC_FAIL(MPOC_E_FORMAT, "%s: general.alignment %llu is not a power of two in "
                      "[1, %u]", g->label, (unsigned long long)a, MPOC_GGUF_MAX_ALIGN);
        g->alignment = a;
    }
    g->m->alignment = g->alignment;
    return MPOC_OK;
}

/* n_dims, ne[], type: shape reversed into row-major order. */
static mpoc_status read_dims_type(gg_ctx *g, mpoc_tensor *t)
{
    if (!mpoc_cursor_u32(&g->c, &t->n_dims))
        MPOC_FAIL(MPOC_E_FORMAT, "%s: tensor '%s': n_dims truncated", g->label, t->name);
    if (t->n_dims > 4)
        MPOC_FAIL(MPOC_E_FORMAT, "%s: tensor '%s': n_dims %u (at most 4)", g->label, t->name,
                  t->n_dims);
    for (uint32_t d = 0; d < t->n_dims; d++) {
        uint64_t ne;
        if (!mpoc_cursor_u64(&g->c, &ne))
            MPOC_FAIL(MPOC_E_FORMAT, "%s: tensor '%s': ne[%u] truncated", g->label, t->name, d);
        if (ne > (uint64_t)INT64_MAX)
            MPOC_FAIL(MPOC_E_FORMAT, "%s: tensor '%s': ne[%u] = %llu is negative as int64",
                      g->label, t->name, d, (unsigned long long)ne);
        t->shape[t->n_dims - 1 - d] = ne;
    }
    uint32_t type;
    if (!mpoc_cursor_u32(&g->c, &type))
        MPOC_FAIL(MPOC_E_FORMAT, "%s: tensor '%s': type truncated", g->label, t->name);
    if (mpoc_dtype_from_ggml(type, &t->dtype) != MPOC_OK)
        MPOC_FAIL(MPOC_E_FORMAT, "%s: tensor '%s': unknown ggml type id %u", g->label, t->name,
                  type);
    return MPOC_OK;
}

/* Element count, block rule and byte size of t (shape and dtype known). */
static mpoc_status size_tensor(gg_ctx *g, mpoc_tensor *t)
{
    const mpoc_dtype_traits *tr = mpoc_dtype_info(t->dtype);
    uint64_t ne0 = t->n_dims ? t->shape[t->n_dims - 1] : 1;
    if (!tr || tr->block_elems == 0)
        MPOC_FAIL(MPOC_E_FORMAT, "%s: tensor '%s': no size for its type", g->label, t->name);
    if (ne0 % tr->block_elems != 0)
        MPOC_FAIL(MPOC_E_FORMAT, "%s: tensor '%s': row length ne[0] = %llu is not a multiple of "
                  "the %s block of %u", g->label, t->name, (unsigned long long)ne0, tr->name,
                  tr->block_elems);
    if (!mpoc_product_u64(t->shape, t->n_dims, &t->n_elems))
        MPOC_FAIL(MPOC_E_OVERFLOW, "%s: tensor '%s': element count overflows 64 bits", g->label,
                  t->name);
    mpoc_status st = mpoc_dtype_nbytes(t->dtype, t->n_elems, &t->nbytes);
    if (st != MPOC_OK)
        MPOC_FAIL(st == MPOC_E_OVERFLOW ? MPOC_E_OVERFLOW : MPOC_E_FORMAT,
                  "%s: tensor '%s': %llu elements of %s have no valid byte size", g->label,
                  t->name, (unsigned long long)t->n_elems, tr->name);
    return MPOC_OK;
}

static mpoc_status read_tensor_info(gg_ctx *g, uint64_t i, uint64_t *expect)
{
    const uint8_t *p;
    uint64_t len, padded;
    char what[48];
    snprintf(what, sizeof what, "name of tensor %llu", (unsigned long long)i);
    MPOC_TRY(read_str(g, what, MPOC_GGUF_MAX_NAME, &p, &len));
    if (len == 0 || memchr(p, '\0', (size_t)len))
        MPOC_FAIL(MPOC_E_FORMAT, "%s: tensor %llu: name is empty or contains a NUL byte",
                  g->label, (unsigned long long)i);
    mpoc_tensor t = {0};
    t.name = mpoc_strndup_(p, (size_t)len);
    if (!t.name)
        return MPOC_E_NOMEM;
    t.file_index = g->fi;
    mpoc_status st = read_dims_type(g, &t);
    if (st == MPOC_OK)
        st = size_tensor(g, &t);
    if (st == MPOC_OK && !mpoc_cursor_u64(&g->c, &t.file_offset)) {
        mpoc_log_("%s: tensor '%s': offset truncated", g->label, t.name);
        st = MPOC_E_FORMAT;
    }
    if (st == MPOC_OK && t.file_offset != *expect) {
        mpoc_log_("%s: tensor '%s': data offset %llu, expected %llu (data must follow tensor-info "
                  "order, each tensor padded to %llu bytes)", g->label, t.name,
                  (unsigned long long)t.file_offset, (unsigned long long)*expect,
                  (unsigned long long)g->alignment);
        st = MPOC_E_FORMAT;
    }
    if (st == MPOC_OK && (!mpoc_round_up_u64(t.nbytes, g->alignment, &padded) ||
                          !mpoc_add_u64(*expect, padded, expect))) {
        mpoc_log_("%s: tensor '%s': padded data size overflows 64 bits", g->label, t.name);
        st = MPOC_E_OVERFLOW;
    }
    mpoc_status st2 = mpoc_model_push_tensor_(g->m, &t); /* offset relative until fixed */
    return st != MPOC_OK ? st : st2;
}

static mpoc_status check_zero(gg_ctx *g, uint64_t from, uint64_t to)
{
    for (uint64_t k = from; k < to; k++)
        if (g->c.base[k] != 0)
            MPOC_FAIL(MPOC_E_FORMAT, "%s: non-zero padding byte 0x%02x at offset %llu", g->label,
                      g->c.base[k], (unsigned long long)k);
    return MPOC_OK;
}

/* Data section: every tensor inside the file, zero padding, no trailing
 * bytes past the padded total (the final padding itself may be missing). */
static mpoc_status place_data(gg_ctx *g, size_t first, uint64_t padded_total)
{
    uint64_t info_end = g->c.pos, data_start, total, pos;
    if (!mpoc_round_up_u64(info_end, g->alignment, &data_start) ||
        !mpoc_add_u64(data_start, padded_total, &total))
        MPOC_FAIL(MPOC_E_OVERFLOW, "%s: data section size overflows 64 bits", g->label);
    if (g->m->n_tensors == first) /* no tensors: padding after the infos optional */
        data_start = g->c.len <= info_end ? info_end : data_start;
    if (data_start > g->c.len)
        MPOC_FAIL(MPOC_E_FORMAT, "%s: data section starts at %llu, past the end of the file (%llu "
                  "bytes)", g->label, (unsigned long long)data_start,
                  (unsigned long long)g->c.len);
    MPOC_TRY(check_zero(g, info_end, data_start));
    pos = data_start;
    for (size_t i = first; i < g->m->n_tensors; i++) {
        mpoc_tensor *t = &g->m->tensors[i];
        uint64_t at = data_start + t->file_offset, end; /* no overflow: <= total */
        if (!mpoc_add_u64(at, t->nbytes, &end) || end > g->c.len)
            MPOC_FAIL(MPOC_E_FORMAT, "%s: tensor '%s': data [%llu, %llu) runs past the end of the "
                      "file (%llu bytes)", g->label, t->name, (unsigned long long)at,
                      (unsigned long long)end, (unsigned long long)g->c.len);
        MPOC_TRY(check_zero(g, pos, at));
        t->file_offset = at;
        t->data = g->c.base + at;
        pos = end;
    }
    if (g->c.len > total && g->m->n_tensors > first)
        MPOC_FAIL(MPOC_E_FORMAT, "%s: %llu trailing bytes after the data section", g->label,
                  (unsigned long long)(g->c.len - total));
    if (g->c.len > data_start && g->m->n_tensors == first)
        MPOC_FAIL(MPOC_E_FORMAT, "%s: %llu trailing bytes after the header of a file without "
                  "tensors", g->label, (unsigned long long)(g->c.len - data_start));
    return check_zero(g, pos, g->c.len);
}

mpoc_status mpoc_gguf_parse(mpoc_model *m, uint32_t fi)
{
    gg_ctx g = {m, fi, m->files[fi].path, mpoc_cursor_make(m->files[fi].base, m->files[fi].len),
                MPOC_GGUF_DEFAULT_ALIGN};
    uint64_t n_tensors, n_kv, expect = 0;
    MPOC_TRY(read_header(&g, &n_tensors, &n_kv));
    for (uint64_t i = 0; i < n_kv; i++)
        MPOC_TRY(read_kv(&g, i));
    MPOC_TRY(check_dup_keys(&g));
    MPOC_TRY(read_alignment(&g));
    size_t first = m->n_tensors;
    for (uint64_t i = 0; i < n_tensors; i++)
        MPOC_TRY(read_tensor_info(&g, i, &expect));
    return place_data(&g, first, expect);
}

/* ---- writer ------------------------------------------------------------- */

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

static void put_str(mpoc_sbuf *b, const char *s)
{
    size_t n = strlen(s);
    put_u64(b, n);
    mpoc_sbuf_put(b, s, n);
}

static void put_kv(mpoc_sbuf *b, const mpoc_wmeta *kv)
{
    put_str(b, kv->key);
    put_u32(b, (uint32_t)kv->type);
    if (kv->type == MPOC_META_ARRAY) {
        put_u32(b, (uint32_t)kv->elem_type);
        put_u64(b, kv->count);
    }
    mpoc_sbuf_put(b, (const char *)kv->raw, (size_t)kv->raw_len);
}

static bool has_key(const mpoc_writer *w, const char *key)
{
    for (size_t i = 0; i < w->n_kv; i++)
        if (!strcmp(w->kv[i].key, key))
            return true;
    return false;
}

static bool any_quantized(const mpoc_writer *w)
{
    for (size_t i = 0; i < w->n_t; i++)
        if (mpoc_dtype_info(w->t[i].dtype)->block_elems > 1)
            return true;
    return false;
}

/* Header, KVs (general.alignment first; general.quantization_version = 2
 * appended when a block type is present and the key was not set) and tensor
 * infos, padded to the alignment. */
static mpoc_status build_meta(const mpoc_writer *w, mpoc_sbuf *b)
{
    bool add_qv = any_quantized(w) && !has_key(w, "general.quantization_version");
    uint64_t n_kv = 1 + (add_qv ? 1 : 0), off = 0;
    for (size_t i = 0; i < w->n_kv; i++)
        n_kv += strcmp(w->kv[i].key, "general.alignment") != 0;
    mpoc_sbuf_put(b, MPOC_GGUF_MAGIC, 4);
    put_u32(b, 3);
    put_u64(b, w->n_t);
    put_u64(b, n_kv);
    put_str(b, "general.alignment");
    put_u32(b, MPOC_META_U32);
    put_u32(b, MPOC_GGUF_DEFAULT_ALIGN);
    for (size_t i = 0; i < w->n_kv; i++)
        if (strcmp(w->kv[i].key, "general.alignment"))
            put_kv(b, &w->kv[i]);
    if (add_qv) {
        put_str(b, "general.quantization_version");
        put_u32(b, MPOC_META_U32);
        put_u32(b, 2);
    }
    for (size_t i = 0; i < w->n_t; i++) {
        const mpoc_wtensor *t = &w->t[i];
        uint64_t padded;
        put_str(b, t->name);
        put_u32(b, t->n_dims);
        for (uint32_t d = 0; d < t->n_dims; d++)
            put_u64(b, t->shape[t->n_dims - 1 - d]);
        put_u32(b, (uint32_t)mpoc_dtype_info(t->dtype)->ggml_type);
        put_u64(b, off);
        if (!mpoc_round_up_u64(t->nbytes, MPOC_GGUF_DEFAULT_ALIGN, &padded) ||
            !mpoc_add_u64(off, padded, &off))
            MPOC_FAIL(MPOC_E_OVERFLOW, "%s: tensor data exceeds 2^64 bytes", w->path);
    }
    while (!b->failed && b->len % MPOC_GGUF_DEFAULT_ALIGN)
        mpoc_sbuf_put(b, "", 1);
    return b->failed ? MPOC_E_NOMEM : MPOC_OK;
}

mpoc_status mpoc_gguf_write_file(const mpoc_writer *w)
{
    mpoc_sbuf b = {0};
    mpoc_status st = build_meta(w, &b);
    mpoc_outfile out = {.fd = -1};
    if (st == MPOC_OK)
        st = mpoc_out_open(w->path, &w->opt.policy, &out);
    if (st == MPOC_OK)
        st = mpoc_out_write(&out, b.data, b.len);
    for (size_t i = 0; st == MPOC_OK && i < w->n_t; i++) {
        uint64_t padded;
        st = mpoc_spool_copy_(w->spool_fd, w->t[i].spool_off, w->t[i].nbytes, &out);
        (void)mpoc_round_up_u64(w->t[i].nbytes, MPOC_GGUF_DEFAULT_ALIGN, &padded);
        if (st == MPOC_OK)
            st = mpoc_out_zeros(&out, (size_t)(padded - w->t[i].nbytes));
    }
    mpoc_sbuf_free(&b);
    if (st == MPOC_OK)
        return mpoc_out_commit(&out);
    mpoc_out_abort(&out);
    return st;
}
