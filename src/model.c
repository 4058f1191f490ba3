/* model.c: format detection by validation, file mappings, the neutral tensor
 * and metadata accessors, float32 reads; the writer front end. */
#define _POSIX_C_SOURCE 200809L
#include "model_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bytes.h"
#include "fileio.h"
#include "internal.h"
#include "io_gguf.h"
#include "io_safetensors.h"
#include "json.h"
#include "util.h"

const char *mpoc_format_name(mpoc_format f)
{
    switch (f) {
    case MPOC_FORMAT_SAFETENSORS: return "safetensors";
    case MPOC_FORMAT_SAFETENSORS_SHARDED: return "safetensors-sharded";
    case MPOC_FORMAT_GGUF: return "gguf";
    default: return "unknown";
    }
}

const char *mpoc_meta_type_name(mpoc_meta_type t)
{
    static const char *const names[] = {"u8",  "i8",   "u16",    "i16",   "u32", "i32", "f32",
                                        "bool", "string", "array", "u64", "i64", "f64"};
    return (unsigned)t < sizeof names / sizeof names[0] ? names[t] : "?";
}

char *mpoc_strndup_(const void *s, size_t n)
{
    size_t sz;
    if (!mpoc_add_size(n, 1, &sz))
        return NULL;
    char *p = malloc(sz);
    if (p) {
        if (n)
            memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

bool mpoc_grow_(void **arr, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return true;
    size_t c = *cap ? *cap : 16, bytes;
    while (c < need)
        if (!mpoc_mul_size(c, 2, &c))
            return false;
    if (!mpoc_mul_size(c, size, &bytes))
        return false;
    void *p = realloc(*arr, bytes);
    if (!p)
        return false;
    *arr = p;
    *cap = c;
    return true;
}

mpoc_status mpoc_model_push_tensor_(mpoc_model *m, const mpoc_tensor *t)
{
    if (!t->name || !mpoc_grow_((void **)&m->tensors, &m->cap_tensors, m->n_tensors + 1,
                                sizeof *t)) {
        free((void *)(uintptr_t)t->name);
        MPOC_FAIL(MPOC_E_NOMEM, "no memory for tensor records");
    }
    m->tensors[m->n_tensors++] = *t;
    return MPOC_OK;
}

mpoc_status mpoc_model_push_meta_(mpoc_model *m, const mpoc_meta *kv)
{
    bool str_ok = kv->type != MPOC_META_STRING || kv->value.str;
    if (!kv->key || !str_ok ||
        !mpoc_grow_((void **)&m->meta, &m->cap_meta, m->n_meta + 1, sizeof *kv)) {
        free((void *)(uintptr_t)kv->key);
        if (kv->type == MPOC_META_STRING)
            free((void *)(uintptr_t)kv->value.str);
        MPOC_FAIL(MPOC_E_NOMEM, "no memory for metadata records");
    }
    m->meta[m->n_meta++] = *kv;
    return MPOC_OK;
}

/* ---- files -------------------------------------------------------------- */

mpoc_status mpoc_model_map_file_(mpoc_model *m, const char *path)
{
    if (!mpoc_grow_((void **)&m->files, &m->cap_files, m->n_files + 1, sizeof *m->files))
        return MPOC_E_NOMEM;
    mpoc_model_file *f = &m->files[m->n_files];
    memset(f, 0, sizeof *f);
    /* O_NONBLOCK: opening a FIFO (say, a shard name planted in a model
     * folder) would otherwise block until a writer appears; the S_ISREG
     * check below then refuses it. No effect on regular files. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0)
        MPOC_FAIL(errno == ENOENT ? MPOC_E_NOTFOUND : MPOC_E_IO, "%s: cannot open: %s", path,
                  strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        MPOC_FAIL(MPOC_E_IO, "%s: not a regular file", path);
    }
    f->path = mpoc_strndup_(path, strlen(path));
    f->len = (uint64_t)st.st_size;
    if (f->path && f->len > 0) {
        void *p = mmap(NULL, (size_t)f->len, PROT_READ, MAP_PRIVATE, fd, 0);
        f->base = p == MAP_FAILED ? NULL : p;
        f->mapped = f->base != NULL;
    }
    int e = errno;
    close(fd);
    m->n_files++; /* closed by mpoc_model_close whatever happened */
    if (!f->path)
        return MPOC_E_NOMEM;
    if (f->len > 0 && !f->base)
        MPOC_FAIL(MPOC_E_IO, "%s: cannot map %llu bytes: %s", path, (unsigned long long)f->len,
                  strerror(e));
    return MPOC_OK;
}

static mpoc_model *model_new(void)
{
    mpoc_model *m = calloc(1, sizeof *m);
    if (m)
        m->alignment = 8;
    return m;
}

void mpoc_model_close(mpoc_model *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n_files; i++) {
        if (m->files[i].mapped)
            munmap((void *)(uintptr_t)m->files[i].base, (size_t)m->files[i].len);
        free(m->files[i].path);
    }
    for (size_t i = 0; i < m->n_tensors; i++)
        free((void *)(uintptr_t)m->tensors[i].name);
    for (size_t i = 0; i < m->n_meta; i++) {
        free((void *)(uintptr_t)m->meta[i].key);
        if (m->meta[i].type == MPOC_META_STRING)
            free((void *)(uintptr_t)m->meta[i].value.str);
    }
    free(m->files);
    free(m->tensors);
    free(m->by_name);
    free(m->meta);
    free(m);
}

/* ---- detection ---------------------------------------------------------- */

static bool is_pickle_or_zip(const uint8_t *b, uint64_t len, const char **what)
{
    if (len >= 4 && b[0] == 0x50 && b[1] == 0x4B && b[2] == 0x03 && b[3] == 0x04) {
        *what = "a zip container (PyTorch zip checkpoint or .npz)";
        return true;
    }
    if (len >= 2 && b[0] == 0x80 && b[1] >= 2 && b[1] <= 5) {
        *what = "a Python pickle (PyTorch .bin/.pt checkpoint)";
        return true;
    }
    return false;
}

static bool starts_like_json(const uint8_t *b, uint64_t len)
{
    for (uint64_t i = 0; i < len; i++) {
        if (b[i] == '{')
            return true;
        if (b[i] != ' ' && b[i] != '\t' && b[i] != '\r' && b[i] != '\n')
            return false;
    }
    return false;
}

static char *dir_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return mpoc_strndup_(".", 1);
    return mpoc_strndup_(path, slash == path ? 1 : (size_t)(slash - path));
}

/* Single buffer: GGUF by magic; safetensors by a plausible prefix (full
 * validation decides); pickle/zip refused; a JSON object is an index when
 * `allow_index`; anything else gets the safetensors reader's reason. */
static mpoc_status parse_single(mpoc_model *m, bool allow_index)
{
    const mpoc_model_file *f = &m->files[0];
    const char *what;
    if (f->len >= 4 && !memcmp(f->base, MPOC_GGUF_MAGIC, 4)) {
        m->format = MPOC_FORMAT_GGUF;
        return mpoc_gguf_parse(m, 0);
    }
    if (mpoc_st_sniff(f->base, f->len)) {
        m->format = MPOC_FORMAT_SAFETENSORS;
        return mpoc_st_parse(m, 0);
    }
    if (is_pickle_or_zip(f->base, f->len, &what))
        MPOC_FAIL(MPOC_E_UNSUPPORTED, "%s: this is %s, which can execute code when loaded; mpoc "
                  "never parses it. Convert it to safetensors with the tools that made it "
                  "(e.g. transformers' save_pretrained(safe_serialization=True))", f->path, what);
    if (allow_index && starts_like_json(f->base, f->len)) {
        m->format = MPOC_FORMAT_SAFETENSORS_SHARDED;
        char *dir = dir_name(f->path);
        if (!dir)
            return MPOC_E_NOMEM;
        mpoc_status st = mpoc_st_parse_index(m, dir);
        free(dir);
        return st;
    }
    m->format = MPOC_FORMAT_SAFETENSORS;
    return mpoc_st_parse(m, 0);
}

static int cmp_tensor_ptr(const void *a, const void *b)
{
    const mpoc_tensor *x = *(const mpoc_tensor *const *)a, *y = *(const mpoc_tensor *const *)b;
    int c = strcmp(x->name, y->name);
    return c ? c : (x < y ? -1 : x > y); /* pointers into one array: file order */
}

/* Name index for find, and the duplicate check across files. */
static mpoc_status index_names(mpoc_model *m)
{
    if (m->n_tensors == 0)
        return MPOC_OK;
    m->by_name = mpoc_alloc_array(m->n_tensors, sizeof *m->by_name);
    if (!m->by_name)
        return MPOC_E_NOMEM;
    for (size_t i = 0; i < m->n_tensors; i++)
        m->by_name[i] = &m->tensors[i];
    qsort(m->by_name, m->n_tensors, sizeof *m->by_name, cmp_tensor_ptr);
    for (size_t i = 1; i < m->n_tensors; i++) {
        const mpoc_tensor *a = m->by_name[i - 1], *b = m->by_name[i];
        if (!strcmp(a->name, b->name))
            MPOC_FAIL(MPOC_E_FORMAT, "%s: duplicate tensor name '%s' (also in %s)",
                      m->files[b->file_index].path, b->name, m->files[a->file_index].path);
    }
    return MPOC_OK;
}

typedef struct meta_ref {
    const char *key;
    size_t idx;
} meta_ref;

static int cmp_meta_ref(const void *a, const void *b)
{
    const meta_ref *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c ? c : (x->idx < y->idx ? -1 : x->idx > y->idx);
}

/* Sort metadata by key; sharded: the first occurrence of a key wins. */
static mpoc_status sort_meta(mpoc_model *m)
{
    size_t n = m->n_meta, k = 0;
    if (n < 2)
        return MPOC_OK;
    meta_ref *r = mpoc_alloc_array(n, sizeof *r);
    mpoc_meta *out = mpoc_alloc_array(n, sizeof *out);
    if (!r || !out) {
        free(r);
        free(out);
        return MPOC_E_NOMEM;
    }
    for (size_t i = 0; i < n; i++)
        r[i] = (meta_ref){m->meta[i].key, i};
    qsort(r, n, sizeof *r, cmp_meta_ref);
    for (size_t i = 0; i < n; i++) {
        mpoc_meta *kv = &m->meta[r[i].idx];
        if (k > 0 && !strcmp(out[k - 1].key, kv->key)) {
            free((void *)(uintptr_t)kv->key);
            free((void *)(uintptr_t)kv->value.str);
        } else {
            out[k++] = *kv;
        }
    }
    free(r);
    free(m->meta);
    m->meta = out;
    m->n_meta = k;
    m->cap_meta = n;
    return MPOC_OK;
}

static mpoc_status finish_open(mpoc_model *m, mpoc_status st, mpoc_model **out)
{
    if (st == MPOC_OK)
        st = index_names(m);
    if (st == MPOC_OK && m->format != MPOC_FORMAT_GGUF)
        st = sort_meta(m); /* GGUF keeps file order (keys already unique) */
    if (st != MPOC_OK) {
        mpoc_model_close(m);
        return st;
    }
    *out = m;
    return MPOC_OK;
}

static mpoc_status resolve_dir(const char *path, char **file)
{
    static const char *const names[] = {"model.safetensors.index.json", "model.safetensors"};
    for (size_t i = 0; i < 2; i++) {
        size_t len = strlen(path) + strlen(names[i]) + 2;
        char *p = malloc(len);
        if (!p)
            return MPOC_E_NOMEM;
        snprintf(p, len, "%s/%s", path, names[i]);
        struct stat st;
        if (stat(p, &st) == 0 && S_ISREG(st.st_mode)) {
            *file = p;
            return MPOC_OK;
        }
        free(p);
    }
    MPOC_FAIL(MPOC_E_NOTFOUND, "%s: folder holds neither model.safetensors.index.json nor "
              "model.safetensors", path);
}

mpoc_status mpoc_model_open(const char *path, mpoc_model **out)
{
    *out = NULL;
    if (!path || !*path)
        MPOC_FAIL(MPOC_E_INVAL, "empty model path");
    struct stat st;
    char *file = NULL;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        MPOC_TRY(resolve_dir(path, &file));
    mpoc_model *m = model_new();
    if (!m) {
        free(file);
        return MPOC_E_NOMEM;
    }
    mpoc_status s = mpoc_model_map_file_(m, file ? file : path);
    free(file);
    if (s == MPOC_OK)
        s = parse_single(m, true);
    return finish_open(m, s, out);
}

mpoc_status mpoc_model_open_memory(const void *data, size_t len, const char *label,
                                   mpoc_model **out)
{
    *out = NULL;
    if (!data && len)
        MPOC_FAIL(MPOC_E_INVAL, "NULL model buffer");
    mpoc_model *m = model_new();
    if (!m || !mpoc_grow_((void **)&m->files, &m->cap_files, 1, sizeof *m->files)) {
        mpoc_model_close(m);
        return MPOC_E_NOMEM;
    }
    mpoc_model_file *f = &m->files[0];
    memset(f, 0, sizeof *f);
    label = label ? label : "(memory)";
    f->path = mpoc_strndup_(label, strlen(label));
    f->base = data;
    f->len = len;
    m->n_files = 1;
    if (!f->path)
        return finish_open(m, MPOC_E_NOMEM, out);
    return finish_open(m, parse_single(m, false), out);
}

/* ---- accessors ---------------------------------------------------------- */

mpoc_format mpoc_model_format(const mpoc_model *m) { return m->format; }
uint32_t mpoc_model_gguf_version(const mpoc_model *m) { return m->gguf_version; }
uint64_t mpoc_model_alignment(const mpoc_model *m) { return m->alignment; }
size_t mpoc_model_file_count(const mpoc_model *m) { return m->n_files; }
size_t mpoc_model_tensor_count(const mpoc_model *m) { return m->n_tensors; }
size_t mpoc_model_meta_count(const mpoc_model *m) { return m->n_meta; }

const char *mpoc_model_file_path(const mpoc_model *m, size_t i)
{
    return i < m->n_files ? m->files[i].path : NULL;
}

uint64_t mpoc_model_file_size(const mpoc_model *m, size_t i)
{
    return i < m->n_files ? m->files[i].len : 0;
}

const mpoc_tensor *mpoc_model_tensor(const mpoc_model *m, size_t i)
{
    return i < m->n_tensors ? &m->tensors[i] : NULL;
}

const mpoc_meta *mpoc_model_meta(const mpoc_model *m, size_t i)
{
    return i < m->n_meta ? &m->meta[i] : NULL;
}

mpoc_status mpoc_model_find(const mpoc_model *m, const char *name, const mpoc_tensor **out)
{
    size_t lo = 0, hi = m->n_tensors;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const mpoc_tensor *t = m->by_name[mid];
        int c = strcmp(t->name, name);
        if (c == 0) {
            *out = t;
            return MPOC_OK;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    MPOC_FAIL(MPOC_E_NOTFOUND, "%s: no tensor named '%s'", m->files[0].path, name);
}

mpoc_status mpoc_model_meta_find(const mpoc_model *m, const char *key, const mpoc_meta **out)
{
    for (size_t i = 0; i < m->n_meta; i++)
        if (!strcmp(m->meta[i].key, key)) {
            *out = &m->meta[i];
            return MPOC_OK;
        }
    return MPOC_E_NOTFOUND;
}

mpoc_status mpoc_meta_array_get(const mpoc_meta *kv, uint64_t i, mpoc_meta_value *out)
{
    if (kv->type != MPOC_META_ARRAY || i >= kv->count)
        return MPOC_E_INVAL;
    uint64_t pos = 0, used = 0, size = mpoc_gguf_scalar_size(kv->elem_type);
    if (!kv->raw)
        return MPOC_E_INVAL;
    if (kv->elem_type != MPOC_META_STRING) {
        /* count * size == raw_len for a parsed entry; checked anyway, since
         * a caller may hand in a record it built itself */
        if (!mpoc_mul_u64(i, size, &pos) || pos > kv->raw_len)
            return MPOC_E_INVAL;
    } else {
        for (uint64_t k = 0; k < i; k++) {
            if (!mpoc_gguf_decode_scalar(kv->elem_type, kv->raw + pos, kv->raw_len - pos, out,
                                         &used))
                return MPOC_E_FORMAT;
            pos += used;
        }
    }
    return mpoc_gguf_decode_scalar(kv->elem_type, kv->raw + pos, kv->raw_len - pos, out, &used)
               ? MPOC_OK : MPOC_E_FORMAT;
}

/* ---- float32 reads ------------------------------------------------------ */

mpoc_status mpoc_tensor_matrix_shape(const mpoc_tensor *t, size_t *rows, size_t *cols)
{
    uint64_t r = 1, c = t->n_dims ? t->shape[t->n_dims - 1] : 1;
    if (t->n_dims > 1 && !mpoc_product_u64(t->shape, t->n_dims - 1, &r))
        MPOC_FAIL(MPOC_E_OVERFLOW, "tensor '%s': row count overflows", t->name);
    if (r > SIZE_MAX || c > SIZE_MAX)
        MPOC_FAIL(MPOC_E_OVERFLOW, "tensor '%s': matrix shape does not fit in size_t", t->name);
    *rows = (size_t)r;
    *cols = (size_t)c;
    return MPOC_OK;
}

bool mpoc_tensor_can_read(const mpoc_tensor *t)
{
    const mpoc_dtype_traits *tr = mpoc_dtype_info(t->dtype);
    return tr && tr->can_read;
}

/* Rows per conversion call: keeps each call's span moderate. */
#define CONVERT_CHUNK_ELEMS (1u << 20)

mpoc_status mpoc_tensor_to_f32(const mpoc_tensor *t, float *dst, size_t n)
{
    const mpoc_dtype_traits *tr = mpoc_dtype_info(t->dtype);
    if (!tr || !tr->can_read)
        MPOC_FAIL(MPOC_E_UNSUPPORTED, "tensor '%s': dtype %s cannot be converted to float32",
                  t->name, mpoc_dtype_name(t->dtype));
    if (n != t->n_elems)
        MPOC_FAIL(MPOC_E_INVAL, "tensor '%s': %zu floats requested, it has %llu", t->name, n,
                  (unsigned long long)t->n_elems);
    uint64_t block = tr->block_elems, chunk = CONVERT_CHUNK_ELEMS - CONVERT_CHUNK_ELEMS % block;
    const uint8_t *src = t->data;
    for (uint64_t done = 0; done < n;) {
        uint64_t k = n - done < chunk ? n - done : chunk, bytes;
        MPOC_TRY(mpoc_dtype_nbytes(t->dtype, done, &bytes));
        mpoc_status st = mpoc_dtype_to_f32(t->dtype, src + bytes, (size_t)k, dst + done);
        if (st != MPOC_OK)
            MPOC_FAIL(st, "tensor '%s': %s → float32 conversion failed: %s", t->name, tr->name,
                      mpoc_strerror(st));
        done += k;
    }
    return MPOC_OK;
}

mpoc_status mpoc_tensor_read_f32(const mpoc_tensor *t, mpoc_mat *out)
{
    size_t rows, cols;
    if (!mpoc_tensor_can_read(t))
        MPOC_FAIL(MPOC_E_UNSUPPORTED, "tensor '%s': dtype %s cannot be converted to float32",
                  t->name, mpoc_dtype_name(t->dtype));
    MPOC_TRY(mpoc_tensor_matrix_shape(t, &rows, &cols));
    if (rows == 0 || cols == 0)
        MPOC_FAIL(MPOC_E_SHAPE, "tensor '%s' has no elements", t->name);
    MPOC_TRY(mpoc_mat_alloc(out, rows, cols));
    mpoc_status st = mpoc_tensor_to_f32(t, out->data, (size_t)t->n_elems);
    if (st != MPOC_OK)
        mpoc_mat_free(out);
    return st;
}

/* ---- writer ------------------------------------------------------------- */

#define SPOOL_CHUNK (1u << 20)
#define DEFAULT_SHARD_SIZE 5000000000ull

mpoc_writer_options mpoc_writer_options_default(void)
{
    mpoc_writer_options o;
    memset(&o, 0, sizeof o);
    o.format = MPOC_FORMAT_SAFETENSORS;
    return o;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

/* The folder outputs go to (created for a sharded folder destination). */
static mpoc_status out_dir(const char *path, mpoc_format f, char **dir)
{
    if (f == MPOC_FORMAT_SAFETENSORS_SHARDED && !ends_with(path, ".index.json")) {
        if (mkdir(path, 0755) != 0 && errno != EEXIST)
            MPOC_FAIL(MPOC_E_IO, "%s: cannot create the output folder: %s", path, strerror(errno));
        *dir = mpoc_strndup_(path, strlen(path));
    } else {
        *dir = dir_name(path);
    }
    return *dir ? MPOC_OK : MPOC_E_NOMEM;
}

static mpoc_status open_spool(mpoc_writer *w)
{
    char *dir;
    MPOC_TRY(out_dir(w->path, w->opt.format, &dir));
    size_t len = strlen(dir) + 32;
    char *tmpl = malloc(len);
    if (!tmpl) {
        free(dir);
        return MPOC_E_NOMEM;
    }
    snprintf(tmpl, len, "%s/.mpoc-spool-XXXXXX", dir);
    w->spool_fd = mkstemp(tmpl);
    int e = errno;
    if (w->spool_fd >= 0)
        unlink(tmpl); /* anonymous from now on: nothing can be left behind */
    free(tmpl);
    if (w->spool_fd < 0) {
        mpoc_log_("%s: cannot create a spool file in '%s': %s", w->path, dir, strerror(e));
        free(dir);
        return MPOC_E_IO;
    }
    free(dir);
    return MPOC_OK;
}

mpoc_status mpoc_writer_create(const char *path, const mpoc_writer_options *opt,
                               mpoc_writer **out)
{
    *out = NULL;
    mpoc_writer_options o = opt ? *opt : mpoc_writer_options_default();
    if (!path || !*path)
        MPOC_FAIL(MPOC_E_INVAL, "empty output path");
    if (o.format != MPOC_FORMAT_SAFETENSORS && o.format != MPOC_FORMAT_GGUF &&
        o.format != MPOC_FORMAT_SAFETENSORS_SHARDED)
        MPOC_FAIL(MPOC_E_INVAL, "%s: cannot write format %d", path, (int)o.format);
    if (o.format == MPOC_FORMAT_SAFETENSORS_SHARDED && o.shard_size == 0)
        o.shard_size = DEFAULT_SHARD_SIZE;
    mpoc_writer *w = calloc(1, sizeof *w);
    if (!w)
        return MPOC_E_NOMEM;
    w->opt = o;
    w->spool_fd = -1;
    w->path = mpoc_strndup_(path, strlen(path));
    mpoc_status st = w->path ? open_spool(w) : MPOC_E_NOMEM;
    if (st != MPOC_OK) {
        mpoc_writer_abort(w);
        return st;
    }
    *out = w;
    return MPOC_OK;
}

void mpoc_writer_abort(mpoc_writer *w)
{
    if (!w)
        return;
    if (w->spool_fd >= 0)
        close(w->spool_fd);
    for (size_t i = 0; i < w->n_t; i++)
        free(w->t[i].name);
    for (size_t i = 0; i < w->n_kv; i++) {
        free(w->kv[i].key);
        free(w->kv[i].raw);
    }
    free(w->t);
    free(w->kv);
    free(w->hash);
    free(w->path);
    free(w);
}

size_t mpoc_writer_tensor_count(const mpoc_writer *w)
{
    return w->n_t;
}

/* ---- metadata ---- */

static mpoc_wmeta *find_wmeta(mpoc_writer *w, const char *key)
{
    for (size_t i = 0; i < w->n_kv; i++)
        if (!strcmp(w->kv[i].key, key))
            return &w->kv[i];
    return NULL;
}

/* Store a validated entry (copies key and raw; replaces an existing key). */
static mpoc_status store_meta(mpoc_writer *w, const char *key, mpoc_meta_type type,
                              mpoc_meta_type elem_type, uint64_t count, const uint8_t *raw,
                              uint64_t raw_len)
{
    uint8_t *copy = malloc(raw_len ? (size_t)raw_len : 1);
    if (!copy)
        return MPOC_E_NOMEM;
    if (raw_len)
        memcpy(copy, raw, (size_t)raw_len);
    mpoc_wmeta *kv = find_wmeta(w, key);
    if (!kv) {
        if (!mpoc_grow_((void **)&w->kv, &w->cap_kv, w->n_kv + 1, sizeof *w->kv)) {
            free(copy);
            return MPOC_E_NOMEM;
        }
        kv = &w->kv[w->n_kv];
        memset(kv, 0, sizeof *kv);
        kv->key = mpoc_strndup_(key, strlen(key));
        if (!kv->key) {
            free(copy);
            return MPOC_E_NOMEM;
        }
        w->n_kv++;
    }
    free(kv->raw);
    kv->type = type;
    kv->elem_type = elem_type;
    kv->count = count;
    kv->raw = copy;
    kv->raw_len = raw_len;
    return MPOC_OK;
}

/* A safetensors header is UTF-8 JSON, and readers (ours, jansson) refuse a
 * "\u0000" escape: names, keys and string values written into it must be
 * valid UTF-8 without NUL bytes, or the output could not be read back. GGUF
 * sources do not guarantee either. */
static bool st_text_ok(const char *s, size_t n)
{
    return !memchr(s, '\0', n) && mpoc_utf8_valid((const uint8_t *)s, n, NULL);
}

static bool writes_st(const mpoc_writer *w)
{
    return w->opt.format != MPOC_FORMAT_GGUF;
}

static mpoc_status set_string(mpoc_writer *w, const char *key, const char *s, size_t n)
{
    if (writes_st(w) && !st_text_ok(s, n))
        MPOC_FAIL(MPOC_E_UNSUPPORTED, "%s: metadata key '%s': the value is not UTF-8 text "
                  "without NUL bytes; a safetensors header cannot hold it", w->path, key);
    if (n > SIZE_MAX - 8)
        return MPOC_E_NOMEM;
    uint8_t *raw = malloc(n + 8);
    if (!raw)
        return MPOC_E_NOMEM;
    mpoc_store_le64(raw, n);
    if (n)
        memcpy(raw + 8, s, n);
    mpoc_status st = store_meta(w, key, MPOC_META_STRING, MPOC_META_STRING, 1, raw, n + 8);
    free(raw);
    return st;
}

static mpoc_status check_key(const mpoc_writer *w, const char *key)
{
    if (!key || !*key)
        MPOC_FAIL(MPOC_E_INVAL, "%s: empty metadata key", w->path);
    if (strlen(key) > MPOC_GGUF_MAX_KEY)
        MPOC_FAIL(MPOC_E_INVAL, "%s: metadata key of %zu bytes is too long", w->path, strlen(key));
    if (writes_st(w) && !st_text_ok(key, strlen(key)))
        MPOC_FAIL(MPOC_E_UNSUPPORTED, "%s: metadata key is not valid UTF-8; a safetensors header "
                  "cannot hold it", w->path);
    return MPOC_OK;
}

mpoc_status mpoc_writer_set_meta_string(mpoc_writer *w, const char *key, const char *value)
{
    MPOC_TRY(check_key(w, key));
    if (!value)
        MPOC_FAIL(MPOC_E_INVAL, "%s: metadata key '%s': NULL value", w->path, key);
    return set_string(w, key, value, strlen(value));
}

mpoc_status mpoc_writer_set_meta_u32(mpoc_writer *w, const char *key, uint32_t v)
{
    MPOC_TRY(check_key(w, key));
    if (w->opt.format != MPOC_FORMAT_GGUF) {
        char text[16];
        snprintf(text, sizeof text, "%u", v);
        return set_string(w, key, text, strlen(text));
    }
    uint8_t raw[4];
    mpoc_store_le32(raw, v);
    return store_meta(w, key, MPOC_META_U32, MPOC_META_U32, 1, raw, 4);
}

mpoc_status mpoc_writer_set_meta(mpoc_writer *w, const mpoc_meta *kv)
{
    MPOC_TRY(check_key(w, kv->key));
    if (kv->type == MPOC_META_STRING && !kv->raw)
        return set_string(w, kv->key, kv->value.str ? kv->value.str : "", kv->value.str_len);
    if (w->opt.format != MPOC_FORMAT_GGUF && kv->type != MPOC_META_STRING)
        MPOC_FAIL(MPOC_E_UNSUPPORTED, "%s: metadata key '%s': safetensors holds strings only, "
                  "not %s", w->path, kv->key, mpoc_meta_type_name(kv->type));
    uint64_t count = kv->type == MPOC_META_ARRAY ? kv->count : 1;
    if (!kv->raw || !mpoc_gguf_value_valid(kv->type, kv->elem_type, count, kv->raw, kv->raw_len))
        MPOC_FAIL(MPOC_E_INVAL, "%s: metadata key '%s': invalid %s value encoding", w->path,
                  kv->key, mpoc_meta_type_name(kv->type));
    if (kv->type == MPOC_META_STRING)
        return set_string(w, kv->key, (const char *)kv->raw + 8, (size_t)(kv->raw_len - 8));
    return store_meta(w, kv->key, kv->type, kv->elem_type, count, kv->raw, kv->raw_len);
}

/* A scalar as text, for safetensors targets. */
static void scalar_text(const mpoc_meta_value *v, char *buf, size_t cap)
{
    switch (v->type) {
    case MPOC_META_BOOL: snprintf(buf, cap, "%s", v->u ? "true" : "false"); break;
    case MPOC_META_F32: snprintf(buf, cap, "%.9g", v->f); break;
    case MPOC_META_F64: snprintf(buf, cap, "%.17g", v->f); break;
    case MPOC_META_I8: case MPOC_META_I16: case MPOC_META_I32: case MPOC_META_I64:
        snprintf(buf, cap, "%lld", (long long)v->i);
        break;
    default: snprintf(buf, cap, "%llu", (unsigned long long)v->u); break;
    }
}

static mpoc_status copy_one(mpoc_writer *w, const mpoc_meta *kv, size_t *skipped)
{
    if (!strcmp(kv->key, "general.alignment"))
        return MPOC_OK; /* the writer owns the layout */
    if (w->opt.format == MPOC_FORMAT_GGUF)
        return mpoc_writer_set_meta(w, kv);
    bool text_ok = st_text_ok(kv->key, strlen(kv->key));
    if (kv->type == MPOC_META_STRING) {
        if (text_ok && kv->value.str && st_text_ok(kv->value.str, kv->value.str_len))
            return mpoc_writer_set_meta(w, kv);
        (*skipped)++; /* not UTF-8 (a GGUF source): safetensors cannot hold it */
        return MPOC_OK;
    }
    if (kv->type == MPOC_META_ARRAY || !text_ok) {
        (*skipped)++;
        return MPOC_OK;
    }
    char text[64];
    scalar_text(&kv->value, text, sizeof text);
    return set_string(w, kv->key, text, strlen(text));
}

mpoc_status mpoc_writer_copy_meta(mpoc_writer *w, const mpoc_model *m, size_t *n_skipped)
{
    size_t skipped = 0;
    for (size_t i = 0; i < m->n_meta; i++)
        MPOC_TRY(copy_one(w, &m->meta[i], &skipped));
    if (n_skipped)
        *n_skipped = skipped;
    return MPOC_OK;
}

/* ---- tensors ---- */

static uint64_t hash_name(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

/* Slot of `name` in the open-addressing table (empty slot if absent). */
static size_t hash_slot(const mpoc_writer *w, const char *name)
{
    size_t mask = w->hash_cap - 1, i = (size_t)hash_name(name) & mask;
    while (w->hash[i] && strcmp(w->t[w->hash[i] - 1].name, name))
        i = (i + 1) & mask;
    return i;
}

static mpoc_status hash_grow(mpoc_writer *w)
{
    if (w->hash_cap && (w->n_t + 1) * 2 <= w->hash_cap)
        return MPOC_OK;
    size_t cap = w->hash_cap ? w->hash_cap * 2 : 64;
    uint64_t *old = w->hash;
    w->hash = calloc(cap, sizeof *w->hash);
    if (!w->hash) {
        w->hash = old;
        return MPOC_E_NOMEM;
    }
    w->hash_cap = cap;
    free(old);
    for (size_t k = 0; k < w->n_t; k++)
        w->hash[hash_slot(w, w->t[k].name)] = k + 1;
    return MPOC_OK;
}

static mpoc_status check_dtype_for_format(const mpoc_writer *w, const char *name,
                                          mpoc_dtype dtype, const uint64_t *shape, uint32_t nd)
{
    const mpoc_dtype_traits *tr = mpoc_dtype_info(dtype);
    if (!tr)
        MPOC_FAIL(MPOC_E_INVAL, "%s: tensor '%s': invalid dtype %d", w->path, name, (int)dtype);
    if (w->opt.format == MPOC_FORMAT_GGUF) {
        if (tr->ggml_type < 0)
            MPOC_FAIL(MPOC_E_UNSUPPORTED, "%s: tensor '%s': GGUF has no type for %s", w->path,
                      name, tr->name);
        if (nd > 4)
            MPOC_FAIL(MPOC_E_UNSUPPORTED, "%s: tensor '%s': GGUF holds at most 4 dims, not %u",
                      w->path, name, nd);
        uint64_t row = nd ? shape[nd - 1] : 1;
        if (row % tr->block_elems != 0)
            MPOC_FAIL(MPOC_E_SHAPE, "%s: tensor '%s': row length %llu is not a multiple of the "
                      "%s block of %u", w->path, name, (unsigned long long)row, tr->name,
                      tr->block_elems);
    } else if (!tr->st_name) {
        MPOC_FAIL(MPOC_E_UNSUPPORTED, "%s: tensor '%s': safetensors has no dtype for %s",
                  w->path, name, tr->name);
    }
    return MPOC_OK;
}

static mpoc_status check_add(mpoc_writer *w, const char *name, mpoc_dtype dtype,
                             const uint64_t *shape, uint32_t nd, uint64_t *nbytes)
{
    if (!name || !*name)
        MPOC_FAIL(MPOC_E_INVAL, "%s: empty tensor name", w->path);
    if (nd > MPOC_MAX_DIMS || (nd && !shape))
        MPOC_FAIL(MPOC_E_INVAL, "%s: tensor '%s': %u dims (at most %d)", w->path, name, nd,
                  MPOC_MAX_DIMS);
    if (w->opt.format == MPOC_FORMAT_GGUF && strlen(name) > MPOC_GGUF_MAX_NAME)
        MPOC_FAIL(MPOC_E_INVAL, "%s: tensor '%s': name of %zu bytes (GGUF allows %d)", w->path,
                  name, strlen(name), MPOC_GGUF_MAX_NAME);
    if (writes_st(w) && (!st_text_ok(name, strlen(name)) || !strcmp(name, "__metadata__")))
        MPOC_FAIL(MPOC_E_UNSUPPORTED, "%s: tensor '%s': a safetensors tensor name must be valid "
                  "UTF-8 and not \"__metadata__\"", w->path, name);
    /* Both readers (ours, ggml, serde's u64 JSON numbers) stop at 2^63 - 1;
     * a larger dim is only possible beside a 0 and would not read back. */
    for (uint32_t d = 0; d < nd; d++)
        if (shape[d] > (uint64_t)INT64_MAX)
            MPOC_FAIL(MPOC_E_UNSUPPORTED, "%s: tensor '%s': dim %u = %llu exceeds 2^63 - 1",
                      w->path, name, d, (unsigned long long)shape[d]);
    MPOC_TRY(check_dtype_for_format(w, name, dtype, shape, nd));
    uint64_t n;
    if (!mpoc_product_u64(shape, nd, &n))
        MPOC_FAIL(MPOC_E_OVERFLOW, "%s: tensor '%s': element count overflows", w->path, name);
    mpoc_status st = mpoc_dtype_nbytes(dtype, n, nbytes);
    if (st != MPOC_OK)
        MPOC_FAIL(st, "%s: tensor '%s': %llu elements of %s have no byte size", w->path, name,
                  (unsigned long long)n, mpoc_dtype_name(dtype));
    MPOC_TRY(hash_grow(w));
    if (w->hash[hash_slot(w, name)])
        MPOC_FAIL(MPOC_E_INVAL, "%s: tensor '%s' added twice", w->path, name);
    return MPOC_OK;
}

static mpoc_status spool_write(mpoc_writer *w, const void *data, uint64_t n)
{
    const uint8_t *p = data;
    while (n > 0) {
        size_t k = n > SPOOL_CHUNK ? SPOOL_CHUNK : (size_t)n;
        ssize_t r = write(w->spool_fd, p, k);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            MPOC_FAIL(MPOC_E_IO, "%s: writing the spool file failed: %s", w->path,
                      r < 0 ? strerror(errno) : "no progress");
        p += r;
        n -= (uint64_t)r;
        w->spool_len += (uint64_t)r;
    }
    return MPOC_OK;
}

static mpoc_status record(mpoc_writer *w, const char *name, mpoc_dtype dtype,
                          const uint64_t *shape, uint32_t nd, uint64_t nbytes, uint64_t off)
{
    if (!mpoc_grow_((void **)&w->t, &w->cap_t, w->n_t + 1, sizeof *w->t))
        return MPOC_E_NOMEM;
    mpoc_wtensor *t = &w->t[w->n_t];
    memset(t, 0, sizeof *t);
    t->name = mpoc_strndup_(name, strlen(name));
    if (!t->name)
        return MPOC_E_NOMEM;
    t->dtype = dtype;
    t->n_dims = nd;
    if (nd)
        memcpy(t->shape, shape, nd * sizeof *shape);
    t->nbytes = nbytes;
    t->spool_off = off;
    w->hash[hash_slot(w, name)] = w->n_t + 1;
    w->n_t++;
    return MPOC_OK;
}

mpoc_status mpoc_writer_add_raw(mpoc_writer *w, const char *name, mpoc_dtype dtype,
                                const uint64_t *shape, uint32_t n_dims, const void *data,
                                uint64_t nbytes)
{
    uint64_t need, off = w->spool_len;
    MPOC_TRY(check_add(w, name, dtype, shape, n_dims, &need));
    if (need != nbytes)
        MPOC_FAIL(MPOC_E_SHAPE, "%s: tensor '%s': %llu bytes given, its %s shape needs %llu",
                  w->path, name, (unsigned long long)nbytes, mpoc_dtype_name(dtype),
                  (unsigned long long)need);
    if (nbytes && !data)
        MPOC_FAIL(MPOC_E_INVAL, "%s: tensor '%s': NULL data", w->path, name);
    MPOC_TRY(spool_write(w, data, nbytes));
    return record(w, name, dtype, shape, n_dims, nbytes, off);
}

mpoc_status mpoc_writer_add_f32(mpoc_writer *w, const char *name, mpoc_dtype dtype,
                                const uint64_t *shape, uint32_t n_dims, const float *data)
{
    uint64_t nbytes, n;
    MPOC_TRY(check_add(w, name, dtype, shape, n_dims, &nbytes));
    (void)mpoc_product_u64(shape, n_dims, &n); /* checked by check_add */
    if (n > SIZE_MAX || nbytes > SIZE_MAX || (n && !data))
        MPOC_FAIL(MPOC_E_INVAL, "%s: tensor '%s': no data or too large", w->path, name);
    void *buf = nbytes ? malloc((size_t)nbytes) : NULL;
    if (nbytes && !buf)
        MPOC_FAIL(MPOC_E_NOMEM, "%s: tensor '%s': no memory for %llu bytes", w->path, name,
                  (unsigned long long)nbytes);
    mpoc_status st = n ? mpoc_dtype_from_f32(dtype, data, (size_t)n, buf) : MPOC_OK;
    if (st != MPOC_OK)
        mpoc_log_("%s: tensor '%s': float32 → %s conversion failed: %s", w->path, name,
                  mpoc_dtype_name(dtype), mpoc_strerror(st));
    if (st == MPOC_OK)
        st = mpoc_writer_add_raw(w, name, dtype, shape, n_dims, buf, nbytes);
    free(buf);
    return st;
}

mpoc_status mpoc_writer_add_tensor(mpoc_writer *w, const mpoc_tensor *t, const char *name)
{
    return mpoc_writer_add_raw(w, name ? name : t->name, t->dtype, t->shape, t->n_dims, t->data,
                               t->nbytes);
}

mpoc_status mpoc_spool_copy_(int spool_fd, uint64_t off, uint64_t n, struct mpoc_outfile *out)
{
    size_t cap = n < SPOOL_CHUNK ? (size_t)n : SPOOL_CHUNK;
    if (n == 0)
        return MPOC_OK;
    uint8_t *buf = malloc(cap);
    if (!buf)
        return MPOC_E_NOMEM;
    mpoc_status st = MPOC_OK;
    while (n > 0 && st == MPOC_OK) {
        size_t k = n < cap ? (size_t)n : cap;
        ssize_t r = pread(spool_fd, buf, k, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            mpoc_log_("%s: reading back the spool file failed: %s", out->path,
                      r < 0 ? strerror(errno) : "unexpected end");
            st = MPOC_E_IO;
            break;
        }
        st = mpoc_out_write(out, buf, (size_t)r);
        off += (uint64_t)r;
        n -= (uint64_t)r;
    }
    free(buf);
    return st;
}

/* ---- commit ---- */

/* Length of the group key of a name: up to the first group_sep. */
static size_t group_len(const char *name, const char *sep)
{
    const char *p = sep && *sep ? strstr(name, sep) : NULL;
    return p ? (size_t)(p - name) : strlen(name);
}

typedef struct group_ref {
    const mpoc_wtensor *t;
    size_t glen; /* length of its group key */
} group_ref;

static int cmp_group(const void *a, const void *b)
{
    const group_ref *x = a, *y = b;
    int c = memcmp(x->t->name, y->t->name, x->glen < y->glen ? x->glen : y->glen);
    if (c == 0 && x->glen != y->glen)
        c = x->glen < y->glen ? -1 : 1;
    return c ? c : strcmp(x->t->name, y->t->name);
}

/* Sort list by (group key, name) so that each group is contiguous. */
static mpoc_status sort_groups(const mpoc_wtensor **list, size_t n, const char *sep)
{
    if (n < 2)
        return MPOC_OK;
    group_ref *r = mpoc_alloc_array(n, sizeof *r);
    if (!r)
        return MPOC_E_NOMEM;
    for (size_t i = 0; i < n; i++)
        r[i] = (group_ref){list[i], group_len(list[i]->name, sep)};
    qsort(r, n, sizeof *r, cmp_group);
    for (size_t i = 0; i < n; i++)
        list[i] = r[i].t;
    free(r);
    return MPOC_OK;
}

typedef struct name_shard {
    const char *name;
    size_t shard;
} name_shard;

static int cmp_name_shard(const void *a, const void *b)
{
    return strcmp(((const name_shard *)a)->name, ((const name_shard *)b)->name);
}

static bool same_group(const mpoc_wtensor *a, const mpoc_wtensor *b, const char *sep)
{
    size_t la = group_len(a->name, sep), lb = group_len(b->name, sep);
    return la == lb && !memcmp(a->name, b->name, la);
}

/* shard[i] = shard number of list[i]; returns the shard count. */
static size_t assign_shards(const mpoc_wtensor **list, size_t n, const mpoc_writer_options *o,
                            size_t *shard)
{
    size_t cur = 0;
    uint64_t used = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i + 1;
        uint64_t bytes = list[i]->nbytes;
        while (j < n && same_group(list[i], list[j], o->group_sep))
            bytes += list[j++]->nbytes; /* bounded by the spool size: no overflow */
        if (used > 0 && used + bytes > o->shard_size) {
            cur++;
            used = 0;
        }
        used += bytes;
        for (; i < j; i++)
            shard[i] = cur;
    }
    return n ? cur + 1 : 1;
}

static mpoc_status shard_paths(const mpoc_writer *w, char **dir, char **stem, char **index)
{
    if (ends_with(w->path, ".index.json")) {
        const char *base = strrchr(w->path, '/');
        base = base ? base + 1 : w->path;
        size_t n = strlen(base) - strlen(".index.json");
        if (n > strlen(".safetensors") && !strncmp(base + n - 12, ".safetensors", 12))
            n -= 12;
        *dir = dir_name(w->path);
        *stem = mpoc_strndup_(base, n);
        *index = mpoc_strndup_(w->path, strlen(w->path));
    } else {
        *dir = mpoc_strndup_(w->path, strlen(w->path));
        *stem = mpoc_strndup_("model", 5);
        size_t len = strlen(w->path) + 40;
        *index = malloc(len);
        if (*index)
            snprintf(*index, len, "%s/model.safetensors.index.json", w->path);
    }
    return *dir && *stem && *index ? MPOC_OK : MPOC_E_NOMEM;
}

/* Write the index into *pending (synced, not yet renamed into place). */
static mpoc_status write_index(const mpoc_writer *w, const char *index,
                               const mpoc_wtensor **list, const size_t *shard, size_t n,
                               char **names, mpoc_outfile *pending)
{
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += list[i]->nbytes; /* bounded by the spool size */
    mpoc_sbuf b = {0};
    mpoc_sbuf_printf(&b, "{\n  \"metadata\": {\n    \"total_size\": %llu\n  },\n"
                     "  \"weight_map\": {", (unsigned long long)total);
    /* list is sorted by group then name; the map is emitted in name order. */
    name_shard *s = mpoc_alloc_array(n ? n : 1, sizeof *s);
    mpoc_status st = s ? MPOC_OK : MPOC_E_NOMEM;
    for (size_t i = 0; s && i < n; i++)
        s[i] = (name_shard){list[i]->name, shard[i]};
    if (s && n)
        qsort(s, n, sizeof *s, cmp_name_shard);
    for (size_t i = 0; st == MPOC_OK && i < n; i++) {
        mpoc_sbuf_puts(&b, i ? ",\n    " : "\n    ");
        mpoc_sbuf_json_string(&b, s[i].name, strlen(s[i].name));
        mpoc_sbuf_puts(&b, ": ");
        mpoc_sbuf_json_string(&b, names[s[i].shard], strlen(names[s[i].shard]));
    }
    mpoc_sbuf_puts(&b, "\n  }\n}\n");
    free(s);
    if (st == MPOC_OK && b.failed)
        st = MPOC_E_NOMEM;
    if (st == MPOC_OK)
        st = mpoc_out_open(index, &w->opt.policy, pending);
    if (st == MPOC_OK)
        st = mpoc_out_write(pending, b.data, b.len);
    if (st == MPOC_OK)
        st = mpoc_out_finish(pending);
    mpoc_sbuf_free(&b);
    return st;
}

/* Write every shard into outs[s] (synced, not yet renamed into place). */
static mpoc_status write_shards(const mpoc_writer *w, const mpoc_wtensor **list, size_t n,
                                const size_t *shard, size_t n_shards, char **names,
                                const char *dir, const char *stem, mpoc_outfile *outs)
{
    for (size_t s = 0; s < n_shards; s++) {
        size_t len = strlen(dir) + strlen(stem) + 64;
        names[s] = malloc(len);
        if (!names[s])
            return MPOC_E_NOMEM;
        snprintf(names[s], len, "%s-%05zu-of-%05zu.safetensors", stem, s + 1, n_shards);
    }
    for (size_t s = 0, i = 0; s < n_shards; s++) {
        size_t j = i;
        while (j < n && shard[j] == s)
            j++;
        size_t len = strlen(dir) + strlen(names[s]) + 2;
        char *path = malloc(len);
        if (!path)
            return MPOC_E_NOMEM;
        snprintf(path, len, "%s/%s", dir, names[s]);
        /* the shard's slice of list is re-sorted in place: copy it first */
        const mpoc_wtensor **part = mpoc_alloc_array(j - i ? j - i : 1, sizeof *part);
        mpoc_status st = part ? MPOC_OK : MPOC_E_NOMEM;
        if (part && j > i)
            memcpy(part, list + i, (j - i) * sizeof *part);
        if (st == MPOC_OK)
            st = mpoc_st_write_file(path, &w->opt.policy, part, j - i, w->kv, w->n_kv,
                                    w->spool_fd, &outs[s]);
        free(part);
        free(path);
        MPOC_TRY(st);
        i = j;
    }
    return MPOC_OK;
}

/* Every shard and then the index is written and synced to its temp file;
 * only when all of them exist are they renamed into place (index last).
 * Committing shard by shard used to leave earlier shards replaced when a
 * later one failed (say its name was taken by a folder): with --force over
 * an existing checkpoint, new shards beside the old index. */
static mpoc_status write_then_rename(const mpoc_writer *w, const mpoc_wtensor **list, size_t n,
                                     const size_t *shard, size_t n_shards, char **names,
                                     const char *dir, const char *stem, const char *index)
{
    mpoc_outfile *outs = calloc(n_shards + 1, sizeof *outs); /* shards, then the index */
    if (!outs)
        return MPOC_E_NOMEM;
    for (size_t s = 0; s <= n_shards; s++)
        outs[s].fd = -1;
    mpoc_status st = write_shards(w, list, n, shard, n_shards, names, dir, stem, outs);
    if (st == MPOC_OK)
        st = write_index(w, index, list, shard, n, names, &outs[n_shards]);
    for (size_t s = 0; s <= n_shards; s++)
        if (st == MPOC_OK)
            st = mpoc_out_commit(&outs[s]); /* frees its strings whatever happens */
        else
            mpoc_out_abort(&outs[s]);
    free(outs);
    return st;
}

static mpoc_status commit_sharded(const mpoc_writer *w, const mpoc_wtensor **list)
{
    size_t n = w->n_t, n_shards;
    char *dir = NULL, *stem = NULL, *index = NULL, **names = NULL;
    size_t *shard = mpoc_alloc_array(n ? n : 1, sizeof *shard);
    mpoc_status st = shard ? shard_paths(w, &dir, &stem, &index) : MPOC_E_NOMEM;
    if (st == MPOC_OK) {
        st = sort_groups(list, n, w->opt.group_sep);
    }
    if (st == MPOC_OK) {
        n_shards = assign_shards(list, n, &w->opt, shard);
        names = calloc(n_shards, sizeof *names);
        st = names ? write_then_rename(w, list, n, shard, n_shards, names, dir, stem, index)
                   : MPOC_E_NOMEM;
        for (size_t s = 0; names && s < n_shards; s++)
            free(names[s]);
    }
    free(names);
    free(shard);
    free(dir);
    free(stem);
    free(index);
    return st;
}

mpoc_status mpoc_writer_commit(mpoc_writer *w)
{
    if (!w)
        return MPOC_E_INVAL;
    mpoc_status st;
    if (w->opt.format == MPOC_FORMAT_GGUF) {
        st = mpoc_gguf_write_file(w);
    } else {
        const mpoc_wtensor **list = mpoc_alloc_array(w->n_t ? w->n_t : 1, sizeof *list);
        st = list ? MPOC_OK : MPOC_E_NOMEM;
        for (size_t i = 0; list && i < w->n_t; i++)
            list[i] = &w->t[i];
        if (st == MPOC_OK && w->opt.format == MPOC_FORMAT_SAFETENSORS)
            st = mpoc_st_write_file(w->path, &w->opt.policy, list, w->n_t, w->kv, w->n_kv,
                                    w->spool_fd, NULL);
        else if (st == MPOC_OK)
            st = commit_sharded(w, list);
        free(list);
    }
    mpoc_writer_abort(w);
    return st;
}
