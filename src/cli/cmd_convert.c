/* cmd_convert.c: `mpoc convert IN OUT [--dtype T] [--force] [--shard-size BYTES]`.
 * Rewrites a model in the format OUT names (.gguf, .safetensors, a folder or
 * an index.json for a sharded checkpoint), keeping tensor names and all the
 * metadata the target format can hold. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

typedef struct convert_args {
    const char *in, *out;
    bool force, has_dtype;
    mpoc_dtype dtype;
    uint64_t shard_size;
    mpoc_format format;
    char *writer_path; /* owned */
} convert_args;

typedef struct convert_notes {
    size_t kept_1d, to_f32;
} convert_notes;

static void convert_usage(FILE *f)
{
    fprintf(f, "usage: mpoc convert IN OUT [--dtype f32|f16|bf16|q8_0|q4_0] [--force]\n"
               "                           [--shard-size BYTES]\n\n"
               "OUT's name picks the format: NAME.gguf (GGUF v3), NAME.safetensors, or a\n"
               "folder or NAME.safetensors.index.json for a sharded checkpoint (also\n"
               "NAME.safetensors with --shard-size). --dtype converts floating-point tensors\n"
               "(q8_0/q4_0: GGUF only; 1-D tensors stay F32, rows that are not a multiple of\n"
               "32 become F16). Without --force an existing OUT is never replaced; an input\n"
               "never is.\n");
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

static bool is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int pick_format(convert_args *a)
{
    const char *o = a->out;
    size_t n = strlen(o);
    a->writer_path = malloc(n + 16);
    if (!a->writer_path)
        return CLI_FAIL;
    strcpy(a->writer_path, o);
    if (ends_with(o, ".gguf")) {
        a->format = MPOC_FORMAT_GGUF;
        if (a->shard_size) {
            cli_error("convert", "--shard-size applies to safetensors output, not GGUF");
            return CLI_USAGE;
        }
    } else if (ends_with(o, ".index.json") || ends_with(o, "/") || is_dir(o) ||
               (a->shard_size && !strchr(strrchr(o, '/') ? strrchr(o, '/') : o, '.'))) {
        a->format = MPOC_FORMAT_SAFETENSORS_SHARDED;
    } else if (ends_with(o, ".safetensors")) {
        a->format = a->shard_size ? MPOC_FORMAT_SAFETENSORS_SHARDED : MPOC_FORMAT_SAFETENSORS;
        if (a->shard_size)
            strcat(a->writer_path, ".index.json");
    } else {
        cli_error("convert", "cannot tell the output format from '%s' (use .gguf, .safetensors, "
                  "a folder or an .index.json)", o);
        return CLI_USAGE;
    }
    bool quant = a->has_dtype && (a->dtype == MPOC_DTYPE_Q8_0 || a->dtype == MPOC_DTYPE_Q4_0);
    if (quant && a->format != MPOC_FORMAT_GGUF) {
        cli_error("convert", "--dtype %s needs a .gguf output (safetensors has no such dtype)",
                  mpoc_dtype_name(a->dtype));
        return CLI_USAGE;
    }
    return CLI_OK;
}

static int parse_dtype(const char *s, convert_args *a)
{
    static const mpoc_dtype ok[] = {MPOC_DTYPE_F32, MPOC_DTYPE_F16, MPOC_DTYPE_BF16,
                                    MPOC_DTYPE_Q8_0, MPOC_DTYPE_Q4_0};
    if (mpoc_dtype_from_name(s, &a->dtype) == MPOC_OK)
        for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
            if (ok[i] == a->dtype) {
                a->has_dtype = true;
                return CLI_OK;
            }
    cli_error("convert", "--dtype '%s' is not one of f32, f16, bf16, q8_0, q4_0", s);
    return CLI_USAGE;
}

static int parse_args(int argc, char **argv, convert_args *a)
{
    memset(a, 0, sizeof *a);
    int npos = 0;
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (!strcmp(s, "--help") || !strcmp(s, "-h")) {
            convert_usage(stdout);
            return -1;
        } else if (!strcmp(s, "--force")) {
            a->force = true;
        } else if (!strcmp(s, "--dtype") && i + 1 < argc) {
            if (parse_dtype(argv[++i], a) != CLI_OK)
                return CLI_USAGE;
        } else if (!strcmp(s, "--shard-size") && i + 1 < argc) {
            if (!cli_parse_u64(argv[++i], &a->shard_size) || a->shard_size == 0) {
                cli_error("convert", "--shard-size '%s' is not a positive byte count", argv[i]);
                return CLI_USAGE;
            }
        } else if (s[0] == '-' && s[1] != '\0') {
            cli_error("convert", "unknown or incomplete option '%s'", s);
            return CLI_USAGE;
        } else if (npos < 2) {
            *(npos++ ? &a->out : &a->in) = s;
        } else {
            cli_error("convert", "unexpected argument '%s'", s);
            return CLI_USAGE;
        }
    }
    if (npos != 2) {
        convert_usage(stderr);
        return CLI_USAGE;
    }
    return pick_format(a);
}

static bool is_float(mpoc_dtype t)
{
    const mpoc_dtype_traits *tr = mpoc_dtype_info(t);
    return t == MPOC_DTYPE_F32 || t == MPOC_DTYPE_F16 || t == MPOC_DTYPE_BF16 ||
           t == MPOC_DTYPE_F64 || (tr && tr->block_elems > 1);
}

static bool format_holds(mpoc_format f, mpoc_dtype t)
{
    const mpoc_dtype_traits *tr = mpoc_dtype_info(t);
    return tr && (f == MPOC_FORMAT_GGUF ? tr->ggml_type >= 0 : tr->st_name != NULL);
}

/* The dtype tensor t is written in. */
static mpoc_dtype target_dtype(const convert_args *a, const mpoc_tensor *t, convert_notes *n)
{
    uint64_t row = t->n_dims ? t->shape[t->n_dims - 1] : 1;
    if (a->has_dtype && is_float(t->dtype)) {
        const mpoc_dtype_traits *tr = mpoc_dtype_info(a->dtype);
        if (tr->block_elems == 1)
            return a->dtype;
        if (t->n_dims < 2) {
            n->kept_1d++;
            return MPOC_DTYPE_F32;
        }
        if (row % tr->block_elems != 0) {
            fprintf(stderr, "mpoc convert: '%s': row length %llu is not a multiple of %u; kept "
                    "as F16 instead of %s\n", t->name, (unsigned long long)row, tr->block_elems,
                    tr->name);
            return MPOC_DTYPE_F16;
        }
        return a->dtype;
    }
    if (format_holds(a->format, t->dtype))
        return t->dtype;
    n->to_f32++;
    return MPOC_DTYPE_F32;
}

static mpoc_status add_converted(mpoc_writer *w, const mpoc_tensor *t, mpoc_dtype dt)
{
    if (t->n_elems == 0)
        return mpoc_writer_add_raw(w, t->name, dt, t->shape, t->n_dims, NULL, 0);
    float *buf = t->n_elems <= SIZE_MAX / sizeof(float) ? malloc((size_t)t->n_elems * sizeof *buf)
                                                       : NULL;
    if (!buf) {
        cli_error("convert", "'%s': no memory for %llu floats", t->name,
                  (unsigned long long)t->n_elems);
        return MPOC_E_NOMEM;
    }
    mpoc_status st = mpoc_tensor_to_f32(t, buf, (size_t)t->n_elems);
    if (st == MPOC_OK)
        st = mpoc_writer_add_f32(w, t->name, dt, t->shape, t->n_dims, buf);
    free(buf);
    return st;
}

/* llama.cpp's general.file_type for a whole-model dtype. */
static int file_type_of(mpoc_dtype t)
{
    switch (t) {
    case MPOC_DTYPE_F32: return 0;
    case MPOC_DTYPE_F16: return 1;
    case MPOC_DTYPE_Q4_0: return 2;
    case MPOC_DTYPE_Q8_0: return 7;
    case MPOC_DTYPE_BF16: return 32;
    default: return -1;
    }
}

static mpoc_status copy_meta(const convert_args *a, mpoc_writer *w, const mpoc_model *m)
{
    size_t skipped = 0;
    mpoc_status st = mpoc_writer_copy_meta(w, m, &skipped);
    if (st == MPOC_OK && skipped)
        fprintf(stderr, "mpoc convert: %zu metadata entries (arrays such as the tokenizer, or "
                "text that is not UTF-8) cannot be stored in safetensors metadata; dropped\n",
                skipped);
    const mpoc_meta *kv;
    if (st == MPOC_OK && a->has_dtype && a->format == MPOC_FORMAT_GGUF &&
        mpoc_model_meta_find(m, "general.file_type", &kv) == MPOC_OK)
        st = mpoc_writer_set_meta_u32(w, "general.file_type", (uint32_t)file_type_of(a->dtype));
    return st;
}

static mpoc_status convert_model(const convert_args *a, const mpoc_model *m, convert_notes *n)
{
    size_t nin = mpoc_model_file_count(m);
    const char **inputs = calloc(nin + 1, sizeof *inputs);
    if (!inputs)
        return MPOC_E_NOMEM;
    for (size_t i = 0; i < nin; i++)
        inputs[i] = mpoc_model_file_path(m, i);
    inputs[nin] = a->in;
    mpoc_writer_options o = mpoc_writer_options_default();
    o.format = a->format;
    o.shard_size = a->shard_size;
    o.group_sep = ".mpo.";
    o.policy = (mpoc_write_policy){a->force, inputs, nin + 1};
    mpoc_writer *w;
    mpoc_status st = mpoc_writer_create(a->writer_path, &o, &w);
    if (st == MPOC_OK)
        st = copy_meta(a, w, m);
    for (size_t i = 0; st == MPOC_OK && i < mpoc_model_tensor_count(m); i++) {
        const mpoc_tensor *t = mpoc_model_tensor(m, i);
        mpoc_dtype dt = target_dtype(a, t, n);
        st = dt == t->dtype ? mpoc_writer_add_tensor(w, t, NULL) : add_converted(w, t, dt);
    }
    if (st == MPOC_OK)
        st = mpoc_writer_commit(w);
    else if (w)
        mpoc_writer_abort(w);
    free(inputs);
    return st;
}

int cli_cmd_convert(int argc, char **argv)
{
    convert_args a;
    int rc = parse_args(argc, argv, &a);
    if (rc != CLI_OK) {
        free(a.writer_path);
        return rc < 0 ? CLI_OK : rc;
    }
    mpoc_model *m;
    mpoc_status st = mpoc_model_open(a.in, &m);
    if (st != MPOC_OK) {
        free(a.writer_path);
        return cli_fail("convert", st, a.in);
    }
    convert_notes notes = {0, 0};
    st = convert_model(&a, m, &notes);
    if (st == MPOC_OK) {
        if (notes.kept_1d)
            fprintf(stderr, "mpoc convert: %zu 1-D tensors (norms, biases) kept as F32\n",
                    notes.kept_1d);
        if (notes.to_f32)
            fprintf(stderr, "mpoc convert: %zu tensors whose dtype the target cannot hold were "
                    "converted to F32\n", notes.to_f32);
        printf("wrote %s: %s, %zu tensors\n", a.out, mpoc_format_name(a.format),
               mpoc_model_tensor_count(m));
    }
    mpoc_model_close(m);
    free(a.writer_path);
    return st == MPOC_OK ? CLI_OK : cli_fail("convert", st, a.out);
}
