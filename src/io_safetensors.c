/* io_safetensors.c: parse and validate safetensors files (formats.md 1.2, in
 * the reference reader's order), sharded indexes (1.5), and write them (1.4). */
#define _POSIX_C_SOURCE 200809L
#include "io_safetensors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bytes.h"
#include "fileio.h"
#include "internal.h"
#include "json.h"
#include "util.h"

/* One tensor entry of the header, before validation of its extent. */
typedef struct st_entry {
    const char *name; /* borrowed from the JSON document */
    mpoc_dtype dtype;
    uint32_t n_dims;
    uint64_t shape[MPOC_MAX_DIMS];
    uint64_t begin, end;
} st_entry;

bool mpoc_st_sniff(const uint8_t *buf, uint64_t len)
{
    if (len < 9)
        return false;
    uint64_t n = mpoc_load_le64(buf), end;
    if (n == 0 || n > MPOC_ST_MAX_HEADER || !mpoc_add_u64(8, n, &end) || end > len)
        return false;
    for (uint64_t i = 8; i < end; i++) {
        uint8_t c = buf[i];
        if (c == '{')
            return true;
        if (c != ' ' && c != '\t' && c != '\r' && c != '\n')
            return false;
    }
    return false;
}

/* Rule 4 (types): an array of non-negative integers of length <= max. */
static mpoc_status read_u64_array(const char *label, const char *tname, const char *field,
                                  const mpoc_jv *arr, uint64_t *out, size_t max, size_t *n)
{
    if (!arr)
        MPOC_FAIL(MPOC_E_FORMAT, "%s: tensor '%s': missing \"%s\"", label, tname, field);
    if (mpoc_json_kind_of(arr) != MPOC_JSON_ARRAY)
        MPOC_FAIL(MPOC_E_FORMAT, "%s: tensor '%s': \"%s\" is not an array (found %s)", label, tname,
                  field, mpoc_json_kind_name(mpoc_json_kind_of(arr)));
    size_t k = mpoc_json_size(arr);
    if (k > max)
        MPOC_FAIL(max == 2 ? MPOC_E_FORMAT : MPOC_E_UNSUPPORTED,
                  "%s: tensor '%s': \"%s\" has %zu entries (at most %zu)", label, tname, field, k,
                  max);
    for (size_t i = 0; i < k; i++) {
        const mpoc_jv *v = mpoc_json_at(arr, i);
        if (!mpoc_json_u64(v, &out[i]))
            MPOC_FAIL(MPOC_E_FORMAT,
                      "%s: tensor '%s': %s[%zu] is not a non-negative integer (found %s)", label,
                      tname, field, i, mpoc_json_kind_name(mpoc_json_kind_of(v)));
    }
    *n = k;
    return MPOC_OK;
}

static mpoc_status parse_entry(const char *label, const char *name, const mpoc_jv *v, st_entry *e)
{
    memset(e, 0, sizeof *e);
    e->name = name;
    if (mpoc_json_kind_of(v) != MPOC_JSON_OBJECT)
        MPOC_FAIL(MPOC_E_FORMAT, "%s: tensor '%s': entry is not an object (found %s)", label, name,
                  mpoc_json_kind_name(mpoc_json_kind_of(v)));
    size_t dlen;
    const char *ds = mpoc_json_str(mpoc_json_get(v, "dtype"), &dlen);
    if (!ds)
        MPOC_FAIL(MPOC_E_FORMAT, "%s: tensor '%s': missing or non-string \"dtype\"", label, name);
    if (mpoc_dtype_from_st_name(ds, dlen, &e->dtype) != MPOC_OK)
        MPOC_FAIL(MPOC_E_FORMAT, "%s: tensor '%s': unknown dtype '%s'", label, name, ds);
    size_t nd = 0, no = 0;
    uint64_t off[2];
    MPOC_TRY(read_u64_array(label, name, "shape", mpoc_json_get(v, "shape"), e->shape,
                            MPOC_MAX_DIMS, &nd));
    MPOC_TRY(read_u64_array(label, name, "data_offsets", mpoc_json_get(v, "data_offsets"), off, 2,
                            &no));
    if (no != 2)
        MPOC_FAIL(MPOC_E_FORMAT, "%s: tensor '%s': \"data_offsets\" has %zu entries, not 2", label,
                  name, no);
    e->n_dims = (uint32_t)nd;
    e->begin = off[0];
    e->end = off[1];
    return MPOC_OK;
}

static mpoc_status parse_metadata(mpoc_model *m, const char *label, const mpoc_jv *v)
{
    if (mpoc_json_kind_of(v) == MPOC_JSON_NULL)
        return MPOC_OK;
    if (mpoc_json_kind_of(v) != MPOC_JSON_OBJECT)
        MPOC_FAIL(MPOC_E_FORMAT, "%s: __metadata__ is not an object of strings (found %s)", label,
                  mpoc_json_kind_name(mpoc_json_kind_of(v)));
    for (void *it = mpoc_json_iter(v); it; it = mpoc_json_next(v, it)) {
        const char *key = mpoc_json_iter_key(it);
        size_t len;
        const char *s = mpoc_json_str(mpoc_json_iter_value(it), &len);
        if (!s)
            MPOC_FAIL(MPOC_E_FORMAT, "%s: __metadata__ key '%s': value is not a string (found %s)",
                      label, key, mpoc_json_kind_name(mpoc_json_kind_of(mpoc_json_iter_value(it))));
        mpoc_meta kv = {0};
        kv.key = mpoc_strndup_(key, strlen(key));
        kv.type = MPOC_META_STRING;
        kv.count = 1;
        kv.value.type = MPOC_META_STRING;
        kv.value.str = mpoc_strndup_(s, len);
        kv.value.str_len = len;
        MPOC_TRY(mpoc_model_push_meta_(m, &kv));
    }
    return MPOC_OK;
}

static int cmp_offsets(const void *a, const void *b)
{
    const st_entry *x = a, *y = b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return strcmp(x->name, y->name);
}

static void fmt_shape(char *buf, size_t cap, const uint64_t *shape, uint32_t n)
{
    size_t used = (size_t)snprintf(buf, cap, "[");
    for (uint32_t i = 0; i < n && used < cap; i++)
        used += (size_t)snprintf(buf + used, cap - used, i ? ", %llu" : "%llu",
                                 (unsigned long long)shape[i]);
    if (used < cap)
        snprintf(buf + used, cap - used, "]");
}

/* Rules 5–7 for one entry, walked in offset order. */
static mpoc_status check_entry(const char *label, const st_entry *e, uint64_t start)
{
    if (e->begin != start || e->end < e->begin)
        MPOC_FAIL(MPOC_E_FORMAT,
                  "%s: tensor '%s': data_offsets [%llu, %llu] do not continue the buffer at %llu "
                  "(hole, overlap or aliasing)",
                  label, e->name, (unsigned long long)e->begin, (unsigned long long)e->end,
                  (unsigned long long)start);
    const mpoc_dtype_traits *tr = mpoc_dtype_info(e->dtype);
    uint64_t elems, bits;
    char sh[160];
    fmt_shape(sh, sizeof sh, e->shape, e->n_dims);
    if (!tr || tr->block_elems == 0 || !mpoc_product_u64(e->shape, e->n_dims, &elems) ||
        !mpoc_mul_u64(elems / tr->block_elems, tr->block_bits, &bits))
        MPOC_FAIL(MPOC_E_OVERFLOW, "%s: tensor '%s': shape %s overflows 64-bit size arithmetic",
                  label, e->name, sh);
    if (elems % tr->block_elems != 0 || bits % 8 != 0)
        MPOC_FAIL(MPOC_E_FORMAT, "%s: tensor '%s': %s shape %s is not a whole number of bytes",
                  label, e->name, tr->st_name ? tr->st_name : tr->name, sh);
    if (bits / 8 != e->end - e->begin)
        MPOC_FAIL(MPOC_E_FORMAT,
                  "%s: tensor '%s': %s shape %s needs %llu bytes but data_offsets [%llu, %llu] "
                  "span %llu",
                  label, e->name, tr->st_name ? tr->st_name : tr->name, sh,
                  (unsigned long long)(bits / 8), (unsigned long long)e->begin,
                  (unsigned long long)e->end, (unsigned long long)(e->end - e->begin));
    return MPOC_OK;
}

static mpoc_status push_entries(mpoc_model *m, uint32_t fi, const st_entry *ents, size_t n,
                                uint64_t data_start)
{
    const mpoc_model_file *f = &m->files[fi];
    for (size_t i = 0; i < n; i++) {
        mpoc_tensor t = {0};
        t.name = mpoc_strndup_(ents[i].name, strlen(ents[i].name));
        t.dtype = ents[i].dtype;
        t.n_dims = ents[i].n_dims;
        memcpy(t.shape, ents[i].shape, sizeof t.shape);
        (void)mpoc_product_u64(t.shape, t.n_dims, &t.n_elems); /* checked before */
        t.nbytes = ents[i].end - ents[i].begin;
        t.file_index = fi;
        t.file_offset = data_start + ents[i].begin;
        t.data = f->base ? f->base + t.file_offset : NULL;
        MPOC_TRY(mpoc_model_push_tensor_(m, &t));
    }
    return MPOC_OK;
}

/* Rule 4 (shape of the document) and the per-entry parse. The entry array
 * grows with the entries that parse (96 bytes each) rather than being sized
 * from the member count up front (230 MB reserved for a header of 2.4
 * million `"k":0` members before its first entry was refused). On failure
 * *ents is still owned by the caller. */
static mpoc_status collect_entries(mpoc_model *m, const char *label, const mpoc_jv *root,
                                   st_entry **ents, size_t *n)
{
    size_t k = 0, cap = 0;
    for (void *it = mpoc_json_iter(root); it; it = mpoc_json_next(root, it)) {
        const char *key = mpoc_json_iter_key(it);
        if (!strcmp(key, "__metadata__")) {
            MPOC_TRY(parse_metadata(m, label, mpoc_json_iter_value(it)));
            continue;
        }
        if (!mpoc_grow_((void **)ents, &cap, k + 1, sizeof **ents))
            MPOC_FAIL(MPOC_E_NOMEM, "%s: no memory for %zu header entries", label, k + 1);
        MPOC_TRY(parse_entry(label, key, mpoc_json_iter_value(it), &(*ents)[k]));
        *n = ++k;
    }
    return MPOC_OK;
}

/* Rules 1–3: the length prefix. */
static mpoc_status check_prefix(const mpoc_model_file *f, uint64_t *hlen)
{
    if (f->len < 8)
        MPOC_FAIL(MPOC_E_FORMAT, "%s: safetensors header too small: the file has %llu bytes, "
                  "the length prefix alone needs 8", f->path, (unsigned long long)f->len);
    uint64_t n = mpoc_load_le64(f->base), end;
    if (n > MPOC_ST_MAX_HEADER)
        MPOC_FAIL(MPOC_E_FORMAT, "%s: safetensors header too large: %llu bytes (limit %u)",
                  f->path, (unsigned long long)n, MPOC_ST_MAX_HEADER);
    if (!mpoc_add_u64(8, n, &end) || end > f->len)
        MPOC_FAIL(MPOC_E_FORMAT,
                  "%s: invalid safetensors header length %llu: the file has only %llu bytes",
                  f->path, (unsigned long long)n, (unsigned long long)f->len);
    *hlen = n;
    return MPOC_OK;
}

static mpoc_status parse_header(mpoc_model *m, uint32_t fi, const mpoc_jv *root, uint64_t hlen)
{
    const mpoc_model_file *f = &m->files[fi];
    const char *label = f->path;
    if (mpoc_json_kind_of(root) != MPOC_JSON_OBJECT)
        MPOC_FAIL(MPOC_E_FORMAT, "%s: safetensors header is not a JSON object (found %s)", label,
                  mpoc_json_kind_name(mpoc_json_kind_of(root)));
    size_t n = 0;
    st_entry *ents = NULL;
    mpoc_status st = collect_entries(m, label, root, &ents, &n);
    if (st == MPOC_OK && n)
        qsort(ents, n, sizeof *ents, cmp_offsets);
    uint64_t start = 0;
    for (size_t i = 0; st == MPOC_OK && i < n; i++) {
        st = check_entry(label, &ents[i], start);
        start = ents[i].end;
    }
    uint64_t total = 8 + hlen; /* no overflow: checked by check_prefix */
    if (st == MPOC_OK && (!mpoc_add_u64(total, start, &total) || total != f->len)) {
        mpoc_log_("%s: the tensors cover %llu data bytes but the file holds %llu after the "
                  "header (%s)", label, (unsigned long long)start,
                  (unsigned long long)(f->len - 8 - hlen),
                  start < f->len - 8 - hlen ? "trailing bytes" : "missing bytes");
        st = MPOC_E_FORMAT;
    }
    if (st == MPOC_OK)
        st = push_entries(m, fi, ents, n, 8 + hlen);
    free(ents);
    return st;
}

mpoc_status mpoc_st_parse(mpoc_model *m, uint32_t fi)
{
    const mpoc_model_file *f = &m->files[fi];
    uint64_t hlen;
    MPOC_TRY(check_prefix(f, &hlen));
    const uint8_t *h = f->base + 8;
    size_t bad;
    if (!mpoc_utf8_valid(h, (size_t)hlen, &bad))
        MPOC_FAIL(MPOC_E_FORMAT, "%s: safetensors header is not valid UTF-8 (byte 0x%02x at "
                  "header offset %zu)", f->path, h[bad], bad);
    mpoc_jv *root;
    MPOC_TRY(mpoc_json_parse((const char *)h, (size_t)hlen, MPOC_JSON_MAX_DEPTH, f->path, &root));
    mpoc_status st = parse_header(m, fi, root, hlen);
    mpoc_json_free(root);
    return st;
}

/* ---- sharded checkpoints ------------------------------------------------ */

bool mpoc_st_shard_name_safe(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > 255 || !strcmp(name, ".") || strstr(name, ".."))
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c == '/' || c == '\\' || c == '%' || c < 0x20 || c == 0x7f)
            return false;
    }
    return true;
}

typedef struct map_pair {
    const char *tensor; /* borrowed from the index document */
    const char *shard;
} map_pair;

static int cmp_pair_tensor(const void *a, const void *b)
{
    return strcmp(((const map_pair *)a)->tensor, ((const map_pair *)b)->tensor);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static mpoc_status read_weight_map(const char *label, const mpoc_jv *root, map_pair **pairs,
                                   size_t *n)
{
    if (mpoc_json_kind_of(root) != MPOC_JSON_OBJECT)
        MPOC_FAIL(MPOC_E_FORMAT, "%s: index is not a JSON object (found %s)", label,
                  mpoc_json_kind_name(mpoc_json_kind_of(root)));
    const mpoc_jv *wm = mpoc_json_get(root, "weight_map");
    if (!wm || mpoc_json_kind_of(wm) != MPOC_JSON_OBJECT)
        MPOC_FAIL(MPOC_E_FORMAT, "%s: index has no \"weight_map\" object", label);
    size_t k = mpoc_json_size(wm), i = 0;
    map_pair *p = k ? mpoc_alloc_array(k, sizeof *p) : NULL;
    if (k && !p)
        MPOC_FAIL(MPOC_E_NOMEM, "%s: no memory for a weight map of %zu entries", label, k);
    for (void *it = mpoc_json_iter(wm); it; it = mpoc_json_next(wm, it), i++) {
        p[i].tensor = mpoc_json_iter_key(it);
        p[i].shard = mpoc_json_str(mpoc_json_iter_value(it), NULL);
        if (!p[i].shard || !mpoc_st_shard_name_safe(p[i].shard)) {
            mpoc_log_("%s: tensor '%s': unsafe or invalid shard name %s%s%s (plain file names "
                      "only)", label, p[i].tensor, p[i].shard ? "'" : "",
                      p[i].shard ? p[i].shard : "(not a string)", p[i].shard ? "'" : "");
            free(p);
            return MPOC_E_FORMAT;
        }
    }
    if (k)
        qsort(p, k, sizeof *p, cmp_pair_tensor);
    *pairs = p;
    *n = k;
    return MPOC_OK;
}

/* Distinct shard names of the map, sorted. */
static mpoc_status shard_set(const char *label, const map_pair *p, size_t n, const char ***out,
                             size_t *n_out)
{
    const char **s = n ? mpoc_alloc_array(n, sizeof *s) : NULL;
    if (n && !s)
        MPOC_FAIL(MPOC_E_NOMEM, "%s: no memory for the shard list", label);
    for (size_t i = 0; i < n; i++)
        s[i] = p[i].shard;
    if (n)
        qsort(s, n, sizeof *s, cmp_str);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (k == 0 || strcmp(s[k - 1], s[i]))
            s[k++] = s[i];
    if (k > MPOC_MAX_SHARDS) {
        free(s);
        MPOC_FAIL(MPOC_E_FORMAT, "%s: %zu shards (at most %u)", label, k, MPOC_MAX_SHARDS);
    }
    *out = s;
    *n_out = k;
    return MPOC_OK;
}

/* Every tensor of shard file fi must be mapped to that shard. */
static mpoc_status check_shard_tensors(mpoc_model *m, const char *label, const map_pair *p,
                                       size_t n, size_t first, const char *shard)
{
    for (size_t i = first; i < m->n_tensors; i++) {
        map_pair key = {m->tensors[i].name, NULL};
        const map_pair *hit = n ? bsearch(&key, p, n, sizeof *p, cmp_pair_tensor) : NULL;
        if (!hit)
            MPOC_FAIL(MPOC_E_FORMAT, "%s: tensor '%s' in shard '%s' is not in the weight map",
                      label, key.tensor, shard);
        if (strcmp(hit->shard, shard))
            MPOC_FAIL(MPOC_E_FORMAT, "%s: tensor '%s' found in shard '%s' but the weight map "
                      "names '%s'", label, key.tensor, shard, hit->shard);
    }
    return MPOC_OK;
}

static mpoc_status open_shards(mpoc_model *m, const char *label, const char *dir,
                               const map_pair *p, size_t n, const char **shards, size_t ns)
{
    for (size_t s = 0; s < ns; s++) {
        size_t len = strlen(dir) + strlen(shards[s]) + 2;
        char *path = malloc(len);
        if (!path)
            return MPOC_E_NOMEM;
        snprintf(path, len, "%s/%s", dir, shards[s]);
        mpoc_status st = mpoc_model_map_file_(m, path);
        free(path);
        if (st != MPOC_OK)
            MPOC_FAIL(st, "%s: shard '%s' named by the weight map cannot be opened", label,
                      shards[s]);
        size_t first = m->n_tensors;
        MPOC_TRY(mpoc_st_parse(m, (uint32_t)(m->n_files - 1)));
        MPOC_TRY(check_shard_tensors(m, label, p, n, first, shards[s]));
    }
    return MPOC_OK;
}

/* Every weight-map entry must have been found (exactly once: duplicates
 * across shards are rejected when the model is finalised). Sorted names and
 * a binary search: a nested scan was quadratic, hours of CPU for an index
 * of a million entries whose last one is missing. */
static mpoc_status check_all_found(mpoc_model *m, const char *label, const map_pair *p, size_t n)
{
    if (m->n_tensors == n)
        return MPOC_OK;
    const char **names = m->n_tensors ? mpoc_alloc_array(m->n_tensors, sizeof *names) : NULL;
    if (m->n_tensors && !names)
        MPOC_FAIL(MPOC_E_NOMEM, "%s: no memory for the tensor name list", label);
    for (size_t j = 0; j < m->n_tensors; j++)
        names[j] = m->tensors[j].name;
    if (m->n_tensors)
        qsort(names, m->n_tensors, sizeof *names, cmp_str);
    for (size_t i = 0; i < n; i++) {
        const char *key = p[i].tensor;
        if (!m->n_tensors || !bsearch(&key, names, m->n_tensors, sizeof *names, cmp_str)) {
            free(names);
            MPOC_FAIL(MPOC_E_FORMAT, "%s: tensor '%s' of the weight map is missing from shard "
                      "'%s'", label, p[i].tensor, p[i].shard);
        }
    }
    free(names);
    MPOC_FAIL(MPOC_E_FORMAT, "%s: the shards hold %zu tensors, the weight map lists %zu", label,
              m->n_tensors, n);
}

mpoc_status mpoc_st_parse_index(mpoc_model *m, const char *dir)
{
    const mpoc_model_file *f = &m->files[0];
    const char *label = f->path;
    size_t bad;
    if (f->len > MPOC_ST_MAX_HEADER)
        MPOC_FAIL(MPOC_E_FORMAT, "%s: index of %llu bytes is too large", label,
                  (unsigned long long)f->len);
    if (!mpoc_utf8_valid(f->base, (size_t)f->len, &bad))
        MPOC_FAIL(MPOC_E_FORMAT, "%s: index is not valid UTF-8 (offset %zu)", label, bad);
    mpoc_jv *root;
    MPOC_TRY(mpoc_json_parse((const char *)f->base, (size_t)f->len, MPOC_JSON_MAX_DEPTH, label,
                             &root));
    map_pair *p = NULL;
    const char **shards = NULL;
    size_t n = 0, ns = 0;
    mpoc_status st;
    MPOC_CHECK_GOTO(st, read_weight_map(label, root, &p, &n), done);
    MPOC_CHECK_GOTO(st, shard_set(label, p, n, &shards, &ns), done);
    MPOC_CHECK_GOTO(st, open_shards(m, label, dir, p, n, shards, ns), done);
    st = check_all_found(m, label, p, n);
done:
    free(shards);
    free(p);
    mpoc_json_free(root);
    return st;
}

/* ---- writer ------------------------------------------------------------- */

uint64_t mpoc_st_dtype_align(mpoc_dtype t)
{
    const mpoc_dtype_traits *tr = mpoc_dtype_info(t);
    if (!tr || tr->block_elems != 1 || tr->block_bits < 8)
        return 1;
    uint64_t a = tr->block_bits / 8;
    return a > 8 ? 8 : a;
}

static int cmp_wtensor(const void *a, const void *b)
{
    const mpoc_wtensor *x = *(const mpoc_wtensor *const *)a, *y = *(const mpoc_wtensor *const *)b;
    uint64_t ax = mpoc_st_dtype_align(x->dtype), ay = mpoc_st_dtype_align(y->dtype);
    if (ax != ay)
        return ax > ay ? -1 : 1;
    return strcmp(x->name, y->name);
}

void mpoc_st_sort(const mpoc_wtensor **list, size_t n)
{
    if (n)
        qsort(list, n, sizeof *list, cmp_wtensor);
}

static int cmp_wmeta_ptr(const void *a, const void *b)
{
    return strcmp((*(const mpoc_wmeta *const *)a)->key, (*(const mpoc_wmeta *const *)b)->key);
}

/* `"__metadata__":{...}` with "format" (default "pt") and the string keys
 * sorted. */
static mpoc_status emit_metadata(mpoc_sbuf *b, const mpoc_wmeta *kv, size_t n_kv)
{
    const mpoc_wmeta **s = mpoc_alloc_array(n_kv + 1, sizeof *s);
    if (!s)
        return MPOC_E_NOMEM;
    size_t k = 0;
    bool has_format = false;
    for (size_t i = 0; i < n_kv; i++)
        if (kv[i].type == MPOC_META_STRING) {
            s[k++] = &kv[i];
            has_format |= !strcmp(kv[i].key, "format");
        }
    if (k)
        qsort(s, k, sizeof *s, cmp_wmeta_ptr);
    mpoc_sbuf_puts(b, "\"__metadata__\":{");
    if (!has_format)
        mpoc_sbuf_puts(b, k ? "\"format\":\"pt\"," : "\"format\":\"pt\"");
    for (size_t i = 0; i < k; i++) {
        mpoc_sbuf_json_string(b, s[i]->key, strlen(s[i]->key));
        mpoc_sbuf_put(b, ":", 1);
        mpoc_sbuf_json_string(b, (const char *)s[i]->raw + 8, (size_t)(s[i]->raw_len - 8));
        if (i + 1 < k)
            mpoc_sbuf_put(b, ",", 1);
    }
    mpoc_sbuf_put(b, "}", 1);
    free(s);
    return MPOC_OK;
}

static void emit_tensor(mpoc_sbuf *b, const mpoc_wtensor *t, uint64_t begin)
{
    mpoc_sbuf_put(b, ",", 1);
    mpoc_sbuf_json_string(b, t->name, strlen(t->name));
    mpoc_sbuf_printf(b, ":{\"dtype\":\"%s\",\"shape\":[", mpoc_dtype_info(t->dtype)->st_name);
    for (uint32_t d = 0; d < t->n_dims; d++)
        mpoc_sbuf_printf(b, d ? ",%llu" : "%llu", (unsigned long long)t->shape[d]);
    mpoc_sbuf_printf(b, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)begin,
                     (unsigned long long)(begin + t->nbytes));
}

static mpoc_status build_header(mpoc_sbuf *b, const mpoc_wtensor **list, size_t n,
                                const mpoc_wmeta *kv, size_t n_kv)
{
    mpoc_sbuf_put(b, "{", 1);
    MPOC_TRY(emit_metadata(b, kv, n_kv));
    uint64_t off = 0;
    for (size_t i = 0; i < n; i++) {
        emit_tensor(b, list[i], off);
        if (!mpoc_add_u64(off, list[i]->nbytes, &off))
            MPOC_FAIL(MPOC_E_OVERFLOW, "safetensors output: tensor data exceeds 2^64 bytes");
    }
    mpoc_sbuf_put(b, "}", 1);
    while (!b->failed && b->len % 8 != 0)
        mpoc_sbuf_put(b, " ", 1);
    if (b->failed)
        return MPOC_E_NOMEM;
    if (b->len >= MPOC_ST_WRITE_MAX_HEADER)
        MPOC_FAIL(MPOC_E_UNSUPPORTED, "safetensors output: header of %zu bytes would exceed the "
                  "25 MB other readers accept", b->len);
    return MPOC_OK;
}

mpoc_status mpoc_st_write_file(const char *path, const mpoc_write_policy *pol,
                               const mpoc_wtensor **list, size_t n, const mpoc_wmeta *kv,
                               size_t n_kv, int spool_fd, struct mpoc_outfile *pending)
{
    mpoc_st_sort(list, n);
    mpoc_sbuf b = {0};
    mpoc_status st = build_header(&b, list, n, kv, n_kv);
    if (st != MPOC_OK) {
        mpoc_sbuf_free(&b);
        return st;
    }
    mpoc_outfile out;
    st = mpoc_out_open(path, pol, &out);
    uint8_t prefix[8];
    mpoc_store_le64(prefix, (uint64_t)b.len);
    if (st == MPOC_OK)
        st = mpoc_out_write(&out, prefix, 8);
    if (st == MPOC_OK)
        st = mpoc_out_write(&out, b.data, b.len);
    for (size_t i = 0; st == MPOC_OK && i < n; i++)
        st = mpoc_spool_copy_(spool_fd, list[i]->spool_off, list[i]->nbytes, &out);
    mpoc_sbuf_free(&b);
    if (st == MPOC_OK && !pending)
        return mpoc_out_commit(&out);
    if (st == MPOC_OK)
        st = mpoc_out_finish(&out);
    if (st == MPOC_OK) {
        *pending = out;
        return MPOC_OK;
    }
    if (out.path || out.tmp_path)
        mpoc_out_abort(&out);
    return st;
}
