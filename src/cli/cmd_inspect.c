/* cmd_inspect.c: `mpoc inspect FILE... [--json] [--tensor NAME --npy OUT.npy [--force]]`.
 * Lists the format, metadata and tensors of model files with totals, as text
 * or one JSON document, or extracts one tensor as a float32 .npy. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define ARRAY_HEAD 8   /* array elements shown */
#define STRING_SHOW 96 /* string bytes shown in text mode */

typedef struct inspect_args {
    const char **files;
    size_t n_files;
    bool json, force;
    const char *tensor, *npy;
} inspect_args;

static void inspect_usage(FILE *f)
{
    fprintf(f, "usage: mpoc inspect FILE... [--json]\n"
               "       mpoc inspect FILE --tensor NAME --npy OUT.npy [--force]\n\n"
               "FILE is a .safetensors or .gguf file, a sharded checkpoint's index.json or its\n"
               "folder. Lists format, metadata and every tensor (name, dtype, shape, bytes)\n"
               "with totals; --json prints one JSON document; --tensor extracts one tensor as a\n"
               "float32 .npy (1-D as 1×n, k-D as [product of leading dims, last dim]).\n");
}

static int parse_args(int argc, char **argv, inspect_args *a)
{
    memset(a, 0, sizeof *a);
    a->files = calloc((size_t)argc, sizeof *a->files);
    if (!a->files)
        return CLI_FAIL;
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (!strcmp(s, "--help") || !strcmp(s, "-h")) {
            inspect_usage(stdout);
            return -1;
        } else if (!strcmp(s, "--json")) {
            a->json = true;
        } else if (!strcmp(s, "--force")) {
            a->force = true;
        } else if ((!strcmp(s, "--tensor") || !strcmp(s, "--npy")) && i + 1 < argc) {
            *(s[2] == 't' ? &a->tensor : &a->npy) = argv[++i];
        } else if (s[0] == '-' && s[1] != '\0') {
            cli_error("inspect", "unknown or incomplete option '%s'", s);
            return CLI_USAGE;
        } else {
            a->files[a->n_files++] = s;
        }
    }
    if (a->n_files == 0 || (!a->tensor != !a->npy) || (a->tensor && (a->n_files != 1 || a->json))) {
        inspect_usage(stderr);
        return CLI_USAGE;
    }
    return CLI_OK;
}

/* ---- values ---- */

/* Length of the valid UTF-8 sequence at p (at most n bytes), 0 if there is
 * none or it encodes a C1 control (U+0080..U+009F). */
static size_t utf8_printable_len(const unsigned char *p, size_t n)
{
    size_t k = p[0] < 0xC2 ? 0 : p[0] < 0xE0 ? 2 : p[0] < 0xF0 ? 3 : p[0] < 0xF5 ? 4 : 0;
    if (k == 0 || k > n)
        return 0;
    for (size_t i = 1; i < k; i++)
        if ((p[i] & 0xC0) != 0x80)
            return 0;
    if ((k == 2 && p[0] == 0xC2 && p[1] < 0xA0) || (k == 3 && p[0] == 0xE0 && p[1] < 0xA0) ||
        (k == 3 && p[0] == 0xED && p[1] >= 0xA0) || (k == 4 && p[0] == 0xF0 && p[1] < 0x90) ||
        (k == 4 && p[0] == 0xF4 && p[1] >= 0x90))
        return 0;
    return k;
}

/* Print s (n bytes, from the file) so that it cannot drive the terminal:
 * C0/C1 controls, DEL and bytes that are not valid UTF-8 become \xNN (and
 * `"`, `\` become \", \\ when `quote`). Stops after `max` bytes; returns
 * the characters printed, for padding. */
static size_t print_escaped(const char *s, size_t n, size_t max, bool quote)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t cols = 0;
    for (size_t i = 0; i < n && i < max;) {
        unsigned char c = u[i];
        size_t k = c >= 0x80 ? utf8_printable_len(u + i, n - i) : 1;
        if (quote && (c == '"' || c == '\\')) {
            printf("\\%c", c);
            cols += 2;
        } else if (c < 0x20 || c == 0x7f || k == 0) {
            printf("\\x%02x", c);
            cols += 4;
            k = 1;
        } else {
            fwrite(u + i, 1, k, stdout);
            cols++;
        }
        i += k;
    }
    return cols;
}

/* A name or key from the file, escaped, padded to `width` columns. */
static void print_name(const char *s, int width)
{
    size_t cols = print_escaped(s, strlen(s), SIZE_MAX, false);
    for (; cols < (size_t)width; cols++)
        putchar(' ');
}

/* Print s (n bytes) quoted and escaped, cut at `max`. */
static void print_quoted(const char *s, size_t n, size_t max)
{
    putchar('"');
    print_escaped(s, n, max, true);
    putchar('"');
    if (n > max)
        printf("… (%zu bytes)", n);
}

static void print_scalar(const mpoc_meta_value *v)
{
    switch (v->type) {
    case MPOC_META_STRING: print_quoted(v->str, v->str_len, STRING_SHOW); break;
    case MPOC_META_BOOL: printf("%s", v->u ? "true" : "false"); break;
    case MPOC_META_F32: printf("%.9g", v->f); break;
    case MPOC_META_F64: printf("%.17g", v->f); break;
    case MPOC_META_I8: case MPOC_META_I16: case MPOC_META_I32: case MPOC_META_I64:
        printf("%lld", (long long)v->i);
        break;
    default: printf("%llu", (unsigned long long)v->u); break;
    }
}

static void print_meta(const mpoc_meta *kv)
{
    if (kv->type != MPOC_META_ARRAY) {
        printf("  ");
        print_name(kv->key, 0);
        printf(" (%s) = ", mpoc_meta_type_name(kv->type));
        print_scalar(&kv->value);
        putchar('\n');
        return;
    }
    printf("  ");
    print_name(kv->key, 0);
    printf(" (array of %llu %s) = [", (unsigned long long)kv->count,
           mpoc_meta_type_name(kv->elem_type));
    for (uint64_t i = 0; i < kv->count && i < ARRAY_HEAD; i++) {
        mpoc_meta_value v;
        if (mpoc_meta_array_get(kv, i, &v) != MPOC_OK)
            break;
        printf(i ? ", " : "");
        print_scalar(&v);
    }
    printf("%s]\n", kv->count > ARRAY_HEAD ? ", …" : "");
}

static void shape_text(const mpoc_tensor *t, char *buf, size_t cap)
{
    size_t used = (size_t)snprintf(buf, cap, "[");
    for (uint32_t d = 0; d < t->n_dims && used < cap; d++)
        used += (size_t)snprintf(buf + used, cap - used, d ? ", %llu" : "%llu",
                                 (unsigned long long)t->shape[d]);
    if (used < cap)
        snprintf(buf + used, cap - used, "]");
}

typedef struct totals {
    uint64_t params, bytes;
} totals;

static totals sum_tensors(const mpoc_model *m)
{
    totals t = {0, 0};
    for (size_t i = 0; i < mpoc_model_tensor_count(m); i++) {
        t.params += mpoc_model_tensor(m, i)->n_elems;
        t.bytes += mpoc_model_tensor(m, i)->nbytes;
    }
    return t;
}

static double bits_per_weight(totals t)
{
    return t.params ? 8.0 * (double)t.bytes / (double)t.params : 0.0;
}

/* ---- text ---- */

static void print_container(const mpoc_model *m);

static void print_text(const char *path, const mpoc_model *m)
{
    mpoc_format f = mpoc_model_format(m);
    printf("file: %s\nformat: %s", path, mpoc_format_name(f));
    if (f == MPOC_FORMAT_GGUF)
        printf(" v%u, alignment %llu", mpoc_model_gguf_version(m),
               (unsigned long long)mpoc_model_alignment(m));
    if (f == MPOC_FORMAT_SAFETENSORS_SHARDED)
        printf(", %zu shards", mpoc_model_file_count(m) - 1);
    printf("\nmetadata: %zu\n", mpoc_model_meta_count(m));
    for (size_t i = 0; i < mpoc_model_meta_count(m); i++)
        print_meta(mpoc_model_meta(m, i));
    printf("tensors: %zu\n", mpoc_model_tensor_count(m));
    for (size_t i = 0; i < mpoc_model_tensor_count(m); i++) {
        const mpoc_tensor *t = mpoc_model_tensor(m, i);
        char shape[160];
        shape_text(t, shape, sizeof shape);
        printf("  ");
        print_name(t->name, 48);
        printf(" %-8s %-20s %12llu%s\n", mpoc_dtype_name(t->dtype), shape,
               (unsigned long long)t->nbytes, mpoc_tensor_can_read(t) ? "" : "  (no float32 reader)");
    }
    totals tt = sum_tensors(m);
    printf("totals: %zu tensors, %llu parameters, %llu bytes, %.4f bits/weight\n",
           mpoc_model_tensor_count(m), (unsigned long long)tt.params,
           (unsigned long long)tt.bytes, bits_per_weight(tt));
    print_container(m);
}

/* ---- JSON ---- */

/* A JSON string of arbitrary bytes (invalid UTF-8 replaced by '?'). */
static json_t *jstr(const char *s, size_t n)
{
    json_t *j = json_stringn(s, n);
    if (j)
        return j;
    char *copy = malloc(n + 1);
    if (!copy)
        return json_null();
    for (size_t i = 0; i < n; i++)
        copy[i] = (unsigned char)s[i] < 0x80 && s[i] ? s[i] : '?';
    j = json_stringn(copy, n);
    free(copy);
    return j ? j : json_null();
}

static json_t *jscalar(const mpoc_meta_value *v)
{
    switch (v->type) {
    case MPOC_META_STRING: return jstr(v->str, v->str_len);
    case MPOC_META_BOOL: return json_boolean(v->u);
    case MPOC_META_F32: case MPOC_META_F64: return json_real(v->f);
    case MPOC_META_I8: case MPOC_META_I16: case MPOC_META_I32: case MPOC_META_I64:
        return json_integer((json_int_t)v->i);
    default:
        return v->u <= (uint64_t)INT64_MAX ? json_integer((json_int_t)v->u) : json_real((double)v->u);
    }
}

static json_t *jmeta(const mpoc_meta *kv)
{
    json_t *o = json_object();
    json_object_set_new(o, "key", jstr(kv->key, strlen(kv->key)));
    json_object_set_new(o, "type", json_string(mpoc_meta_type_name(kv->type)));
    if (kv->type != MPOC_META_ARRAY) {
        json_object_set_new(o, "value", jscalar(&kv->value));
        return o;
    }
    json_object_set_new(o, "elem_type", json_string(mpoc_meta_type_name(kv->elem_type)));
    json_object_set_new(o, "count", json_integer((json_int_t)kv->count));
    json_t *head = json_array();
    for (uint64_t i = 0; i < kv->count && i < ARRAY_HEAD; i++) {
        mpoc_meta_value v;
        if (mpoc_meta_array_get(kv, i, &v) == MPOC_OK)
            json_array_append_new(head, jscalar(&v));
    }
    json_object_set_new(o, "head", head);
    return o;
}

static json_t *jtensor(const mpoc_tensor *t)
{
    json_t *o = json_object(), *shape = json_array();
    for (uint32_t d = 0; d < t->n_dims; d++)
        json_array_append_new(shape, json_integer((json_int_t)t->shape[d]));
    json_object_set_new(o, "name", jstr(t->name, strlen(t->name)));
    json_object_set_new(o, "dtype", json_string(mpoc_dtype_name(t->dtype)));
    json_object_set_new(o, "shape", shape);
    json_object_set_new(o, "n_elems", json_integer((json_int_t)t->n_elems));
    json_object_set_new(o, "bytes", json_integer((json_int_t)t->nbytes));
    json_object_set_new(o, "file", json_integer((json_int_t)t->file_index));
    json_object_set_new(o, "offset", json_integer((json_int_t)t->file_offset));
    json_object_set_new(o, "readable", json_boolean(mpoc_tensor_can_read(t)));
    return o;
}

/* ---- mpoc containers: per-tensor ranks, core types, bytes, bits/weight ---- */

static uint64_t entry_elems(const mpoc_container_entry *e)
{
    return (uint64_t)e->shape.rows * e->shape.cols;
}

static void print_container(const mpoc_model *m)
{
    if (!mpoc_container_detect(m))
        return;
    mpoc_container *c;
    if (mpoc_container_open(m, &c) != MPOC_OK) {
        printf("mpo tensors: invalid container (reason above)\n");
        return;
    }
    size_t n = mpoc_container_count(c);
    uint64_t bytes = 0, elems = 0;
    printf("mpo tensors: %zu (name, shape, ranks, core types, bytes, bits/weight, error)\n", n);
    for (size_t i = 0; i < n; i++) {
        const mpoc_container_entry *e = mpoc_container_entry_at(c, i);
        printf("  ");
        print_name(e->name, 48);
        printf(" %zux%zu ranks ", e->shape.rows, e->shape.cols);
        for (size_t k = 0; k <= e->shape.sites; k++)
            printf("%s%zu", k ? "-" : "", e->ranks[k]);
        printf(" ");
        for (size_t k = 0; k < e->shape.sites; k++)
            printf("%s%s", k ? "," : "", mpoc_quant_name(e->types[k]));
        printf(" %llu bytes %.3f bits/weight", (unsigned long long)e->bytes,
               8.0 * (double)e->bytes / (double)entry_elems(e));
        if (e->rel_error == e->rel_error)
            printf(" err %.4g", e->rel_error);
        printf("\n");
        bytes += e->bytes;
        elems += entry_elems(e);
    }
    if (elems)
        printf("mpo totals: %llu bytes for %llu weights, %.3f bits/weight\n",
               (unsigned long long)bytes, (unsigned long long)elems, 8.0 * (double)bytes / (double)elems);
    mpoc_container_close(c);
}

static json_t *jcontainer(const mpoc_model *m)
{
    mpoc_container *c;
    if (!mpoc_container_detect(m) || mpoc_container_open(m, &c) != MPOC_OK)
        return NULL;
    json_t *arr = json_array();
    for (size_t i = 0; i < mpoc_container_count(c); i++) {
        const mpoc_container_entry *e = mpoc_container_entry_at(c, i);
        json_t *o = json_object(), *ranks = json_array(), *types = json_array();
        for (size_t k = 0; k <= e->shape.sites; k++)
            json_array_append_new(ranks, json_integer((json_int_t)e->ranks[k]));
        for (size_t k = 0; k < e->shape.sites; k++)
            json_array_append_new(types, json_string(mpoc_quant_name(e->types[k])));
        json_object_set_new(o, "name", jstr(e->name, strlen(e->name)));
        json_object_set_new(o, "rows", json_integer((json_int_t)e->shape.rows));
        json_object_set_new(o, "cols", json_integer((json_int_t)e->shape.cols));
        json_object_set_new(o, "ranks", ranks);
        json_object_set_new(o, "core_types", types);
        json_object_set_new(o, "bytes", json_integer((json_int_t)e->bytes));
        json_object_set_new(o, "bits_per_weight", json_real(8.0 * (double)e->bytes / (double)entry_elems(e)));
        if (e->rel_error == e->rel_error)
            json_object_set_new(o, "rel_error", json_real(e->rel_error));
        json_array_append_new(arr, o);
    }
    mpoc_container_close(c);
    return arr;
}

static json_t *jmodel(const char *path, const mpoc_model *m)
{
    json_t *o = json_object(), *files = json_array(), *meta = json_array(), *ts = json_array();
    json_object_set_new(o, "path", jstr(path, strlen(path)));
    json_object_set_new(o, "format", json_string(mpoc_format_name(mpoc_model_format(m))));
    if (mpoc_model_format(m) == MPOC_FORMAT_GGUF)
        json_object_set_new(o, "gguf_version", json_integer(mpoc_model_gguf_version(m)));
    json_object_set_new(o, "alignment", json_integer((json_int_t)mpoc_model_alignment(m)));
    for (size_t i = 0; i < mpoc_model_file_count(m); i++) {
        json_t *f = json_object();
        const char *p = mpoc_model_file_path(m, i);
        json_object_set_new(f, "path", jstr(p, strlen(p)));
        json_object_set_new(f, "size", json_integer((json_int_t)mpoc_model_file_size(m, i)));
        json_array_append_new(files, f);
    }
    for (size_t i = 0; i < mpoc_model_meta_count(m); i++)
        json_array_append_new(meta, jmeta(mpoc_model_meta(m, i)));
    for (size_t i = 0; i < mpoc_model_tensor_count(m); i++)
        json_array_append_new(ts, jtensor(mpoc_model_tensor(m, i)));
    totals tt = sum_tensors(m);
    json_t *tot = json_object();
    json_object_set_new(tot, "tensors", json_integer((json_int_t)mpoc_model_tensor_count(m)));
    json_object_set_new(tot, "parameters", json_integer((json_int_t)tt.params));
    json_object_set_new(tot, "bytes", json_integer((json_int_t)tt.bytes));
    json_object_set_new(tot, "bits_per_weight", json_real(bits_per_weight(tt)));
    json_object_set_new(o, "files", files);
    json_object_set_new(o, "metadata", meta);
    json_object_set_new(o, "tensors", ts);
    json_object_set_new(o, "totals", tot);
    json_t *mpo = jcontainer(m);
    if (mpo)
        json_object_set_new(o, "mpo", mpo);
    return o;
}

/* ---- extraction ---- */

static int extract(const inspect_args *a, const mpoc_model *m)
{
    const mpoc_tensor *t;
    mpoc_status st = mpoc_model_find(m, a->tensor, &t);
    if (st != MPOC_OK)
        return cli_fail("inspect", st, a->tensor);
    mpoc_mat x = {0};
    st = mpoc_tensor_read_f32(t, &x);
    if (st != MPOC_OK)
        return cli_fail("inspect", st, a->tensor);
    /* never over the argument nor any file of the model (index, shards) */
    size_t nin = mpoc_model_file_count(m);
    const char **inputs = calloc(nin + 1, sizeof *inputs);
    if (!inputs) {
        mpoc_mat_free(&x);
        return cli_fail("inspect", MPOC_E_NOMEM, a->npy);
    }
    inputs[0] = a->files[0];
    for (size_t i = 0; i < nin; i++)
        inputs[i + 1] = mpoc_model_file_path(m, i);
    mpoc_write_policy pol = {a->force, inputs, nin + 1};
    st = mpoc_npy_write(a->npy, mpoc_mat_view_of(&x), &pol);
    free(inputs);
    if (st == MPOC_OK)
        printf("wrote %s: '%s' %s as float32 %zux%zu\n", a->npy, t->name,
               mpoc_dtype_name(t->dtype), x.rows, x.cols);
    mpoc_mat_free(&x);
    return st == MPOC_OK ? CLI_OK : cli_fail("inspect", st, a->npy);
}

static int inspect_files(const inspect_args *a)
{
    json_t *doc = a->json ? json_object() : NULL, *arr = a->json ? json_array() : NULL;
    int rc = CLI_OK;
    for (size_t i = 0; i < a->n_files && rc == CLI_OK; i++) {
        mpoc_model *m;
        mpoc_status st = mpoc_model_open(a->files[i], &m);
        if (st != MPOC_OK) {
            rc = cli_fail("inspect", st, a->files[i]);
            break;
        }
        if (a->tensor)
            rc = extract(a, m);
        else if (a->json)
            json_array_append_new(arr, jmodel(a->files[i], m));
        else
            print_text(a->files[i], m), printf(i + 1 < a->n_files ? "\n" : "");
        mpoc_model_close(m);
    }
    if (doc) {
        json_object_set_new(doc, "files", arr);
        if (rc == CLI_OK) {
            json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(9));
            putchar('\n');
        }
        json_decref(doc);
    }
    return rc;
}

int cli_cmd_inspect(int argc, char **argv)
{
    inspect_args a;
    int rc = parse_args(argc, argv, &a);
    if (rc == CLI_OK)
        rc = inspect_files(&a);
    free(a.files);
    return rc < 0 ? CLI_OK : rc;
}
