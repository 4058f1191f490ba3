/* modelgen.c: valid and defective safetensors / GGUF files in memory. */
#include "modelgen.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- buffer ---- */

void mg_free(mg_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

void mg_put(mg_buf *b, const void *p, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n)
            cap *= 2;
        uint8_t *d = realloc(b->data, cap);
        if (!d)
            abort(); /* test support: out of memory is fatal */
        b->data = d;
        b->cap = cap;
    }
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
}

void mg_u8(mg_buf *b, uint8_t v) { mg_put(b, &v, 1); }

void mg_u32(mg_buf *b, uint32_t v)
{
    uint8_t x[4];
    for (int i = 0; i < 4; i++)
        x[i] = (uint8_t)(v >> (8 * i));
    mg_put(b, x, 4);
}

void mg_u64(mg_buf *b, uint64_t v)
{
    uint8_t x[8];
    for (int i = 0; i < 8; i++)
        x[i] = (uint8_t)(v >> (8 * i));
    mg_put(b, x, 8);
}

void mg_gstr(mg_buf *b, const char *s)
{
    mg_u64(b, strlen(s));
    mg_put(b, s, strlen(s));
}

int mg_write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t w = len ? fwrite(data, 1, len, f) : 0;
    return (fclose(f) == 0 && w == len) ? 0 : -1;
}

/* ---- safetensors ---- */

static void st_raw(mg_buf *out, uint64_t n, const char *header, size_t hlen, size_t data_len)
{
    out->len = 0;
    mg_u64(out, n);
    mg_put(out, header, hlen);
    for (size_t k = 0; k < data_len; k++)
        mg_u8(out, (uint8_t)k);
}

void mg_st_from_header(mg_buf *out, const char *header, size_t data_len)
{
    st_raw(out, strlen(header), header, strlen(header), data_len);
}

#define META "\"__metadata__\":{\"format\":\"pt\"}"
#define TA "\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}"
#define TB "\"b\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[24,32]}"
#define BASE "{" META "," TA "," TB "}"
#define WITH_A(a) "{" META "," a "," TB "}"
#define WITH_B(b) "{" META "," TA "," b "}"

enum { SP_NONE, SP_TOO_SMALL, SP_N_HUGE, SP_N_MAX, SP_N_PAST_EOF, SP_NUL_AFTER, SP_DEEP,
       SP_PICKLE, SP_ZIP, SP_EMPTY_FILE };

typedef struct st_def {
    const char *name;
    mpoc_status expect;
    int special;
    const char *header;
    size_t data_len;
} st_def;

static const st_def st_defs[] = {
    {"valid", MPOC_OK, SP_NONE, BASE, 32},
    {"empty-file", MPOC_E_FORMAT, SP_EMPTY_FILE, NULL, 0},
    {"too-small", MPOC_E_FORMAT, SP_TOO_SMALL, NULL, 0},
    {"header-too-large", MPOC_E_FORMAT, SP_N_HUGE, BASE, 32},
    {"header-len-u64-max", MPOC_E_FORMAT, SP_N_MAX, BASE, 32},
    {"header-past-eof", MPOC_E_FORMAT, SP_N_PAST_EOF, BASE, 0},
    {"bad-utf8", MPOC_E_FORMAT, SP_NONE,
     "{\"__metadata__\":{\"format\":\"p\xff\"}," TA "," TB "}", 32},
    {"overlong-utf8", MPOC_E_FORMAT, SP_NONE,
     "{\"__metadata__\":{\"format\":\"\xc0\xaf\"}," TA "," TB "}", 32},
    {"not-json", MPOC_E_FORMAT, SP_NONE, "{\"a\":{\"dtype\"}", 32},
    {"not-object", MPOC_E_FORMAT, SP_NONE, "[1,2,3]    ", 0},
    {"bom", MPOC_E_FORMAT, SP_NONE, "\xef\xbb\xbf" BASE, 32},
    {"nul-after-object", MPOC_E_FORMAT, SP_NUL_AFTER, BASE, 32},
    {"garbage-after-object", MPOC_E_FORMAT, SP_NONE, BASE "x", 32},
    {"metadata-not-string", MPOC_E_FORMAT, SP_NONE,
     "{\"__metadata__\":{\"format\":1}," TA "," TB "}", 32},
    {"metadata-not-object", MPOC_E_FORMAT, SP_NONE, "{\"__metadata__\":\"pt\"," TA "," TB "}", 32},
    {"unknown-dtype", MPOC_E_FORMAT, SP_NONE,
     WITH_A("\"a\":{\"dtype\":\"F31\",\"shape\":[2,3],\"data_offsets\":[0,24]}"), 32},
    {"lowercase-dtype", MPOC_E_FORMAT, SP_NONE,
     WITH_A("\"a\":{\"dtype\":\"f32\",\"shape\":[2,3],\"data_offsets\":[0,24]}"), 32},
    {"dtype-not-string", MPOC_E_FORMAT, SP_NONE,
     WITH_A("\"a\":{\"dtype\":7,\"shape\":[2,3],\"data_offsets\":[0,24]}"), 32},
    {"shape-fraction", MPOC_E_FORMAT, SP_NONE,
     WITH_A("\"a\":{\"dtype\":\"F32\",\"shape\":[2.5,3],\"data_offsets\":[0,24]}"), 32},
    {"shape-exponent", MPOC_E_FORMAT, SP_NONE,
     WITH_A("\"a\":{\"dtype\":\"F32\",\"shape\":[2e0,3],\"data_offsets\":[0,24]}"), 32},
    {"shape-negative", MPOC_E_FORMAT, SP_NONE,
     WITH_A("\"a\":{\"dtype\":\"F32\",\"shape\":[-2,-3],\"data_offsets\":[0,24]}"), 32},
    {"shape-string", MPOC_E_FORMAT, SP_NONE,
     WITH_A("\"a\":{\"dtype\":\"F32\",\"shape\":[\"2\",3],\"data_offsets\":[0,24]}"), 32},
    {"shape-not-array", MPOC_E_FORMAT, SP_NONE,
     WITH_A("\"a\":{\"dtype\":\"F32\",\"shape\":6,\"data_offsets\":[0,24]}"), 32},
    {"shape-2^64", MPOC_E_FORMAT, SP_NONE,
     WITH_A("\"a\":{\"dtype\":\"F32\",\"shape\":[18446744073709551616],\"data_offsets\":[0,24]}"),
     32},
    {"shape-9-dims", MPOC_E_UNSUPPORTED, SP_NONE,
     WITH_A("\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,2,3],\"data_offsets\":[0,24]}"), 32},
    {"offset-negative", MPOC_E_FORMAT, SP_NONE,
     WITH_A("\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[-24,0]}"), 32},
    /* jansson reads -0 as the integer 0, serde (the reference) as -0.0: refused */
    {"offset-minus-zero", MPOC_E_FORMAT, SP_NONE,
     WITH_A("\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[-0,24]}"), 32},
    {"offset-fraction", MPOC_E_FORMAT, SP_NONE,
     WITH_A("\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24.0]}"), 32},
    {"offsets-three", MPOC_E_FORMAT, SP_NONE,
     WITH_A("\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24,24]}"), 32},
    {"offsets-one", MPOC_E_FORMAT, SP_NONE,
     WITH_A("\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[24]}"), 32},
    {"missing-dtype", MPOC_E_FORMAT, SP_NONE,
     WITH_A("\"a\":{\"shape\":[2,3],\"data_offsets\":[0,24]}"), 32},
    {"missing-shape", MPOC_E_FORMAT, SP_NONE,
     WITH_A("\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,24]}"), 32},
    {"missing-offsets", MPOC_E_FORMAT, SP_NONE,
     WITH_A("\"a\":{\"dtype\":\"F32\",\"shape\":[2,3]}"), 32},
    {"entry-not-object", MPOC_E_FORMAT, SP_NONE, WITH_A("\"a\":5"), 32},
    {"hole-at-front", MPOC_E_FORMAT, SP_NONE,
     "{" META ",\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[4,28]},"
     "\"b\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[28,36]}}", 36},
    {"gap", MPOC_E_FORMAT, SP_NONE,
     WITH_B("\"b\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[28,36]}"), 36},
    {"overlap", MPOC_E_FORMAT, SP_NONE,
     WITH_B("\"b\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[20,28]}"), 28},
    {"aliasing", MPOC_E_FORMAT, SP_NONE,
     WITH_B("\"b\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[0,8]}"), 24},
    {"end-before-begin", MPOC_E_FORMAT, SP_NONE,
     WITH_B("\"b\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[24,16]}"), 32},
    {"elements-overflow", MPOC_E_OVERFLOW, SP_NONE,
     WITH_B("\"b\":{\"dtype\":\"F16\",\"shape\":[4294967296,4294967296,16],"
            "\"data_offsets\":[24,32]}"), 32},
    {"bits-overflow", MPOC_E_OVERFLOW, SP_NONE,
     WITH_B("\"b\":{\"dtype\":\"F16\",\"shape\":[2305843009213693952],"
            "\"data_offsets\":[24,32]}"), 32},
    {"size-mismatch", MPOC_E_FORMAT, SP_NONE,
     WITH_A("\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,24]}"), 32},
    {"sub-byte-misaligned", MPOC_E_FORMAT, SP_NONE,
     WITH_B("\"b\":{\"dtype\":\"F4\",\"shape\":[3],\"data_offsets\":[24,26]}"), 26},
    {"missing-bytes", MPOC_E_FORMAT, SP_NONE, BASE, 31},
    {"trailing-bytes", MPOC_E_FORMAT, SP_NONE, BASE, 33},
    {"duplicate-key", MPOC_E_FORMAT, SP_NONE, "{" META "," TA "," TA "," TB "}", 32},
    {"duplicate-metadata-key", MPOC_E_FORMAT, SP_NONE,
     "{\"__metadata__\":{\"format\":\"pt\",\"format\":\"pt\"}," TA "," TB "}", 32},
    {"nul-escape-in-name", MPOC_E_FORMAT, SP_NONE,
     WITH_A("\"a\\u0000b\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}"), 32},
    {"deep-nesting", MPOC_E_FORMAT, SP_DEEP, NULL, 32},
    {"pickle", MPOC_E_UNSUPPORTED, SP_PICKLE, NULL, 0},
    {"zip", MPOC_E_UNSUPPORTED, SP_ZIP, NULL, 0},
    /* accepted variants */
    {"json-whitespace-around", MPOC_OK, SP_NONE, " \t\r\n" BASE " \n\t\r ", 32},
    {"extra-fields-ignored", MPOC_OK, SP_NONE,
     WITH_A("\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24],\"x\":[1]}"), 32},
    {"minus-zero-real-or-text-ignored", MPOC_OK, SP_NONE,
     WITH_A("\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24],"
            "\"x\":[-0.0,-0e1,\"-0\"]}"), 32},
    {"key-order-irrelevant", MPOC_OK, SP_NONE, "{" TB "," TA "," META "}", 32},
    {"no-metadata", MPOC_OK, SP_NONE, "{" TA "," TB "}", 32},
    {"metadata-null", MPOC_OK, SP_NONE, "{\"__metadata__\":null," TA "," TB "}", 32},
    {"empty-tensor-dim-0", MPOC_OK, SP_NONE,
     "{" TA "," TB ",\"z\":{\"dtype\":\"F32\",\"shape\":[0,4294967296],\"data_offsets\":[32,32]}}",
     32},
    {"scalar", MPOC_OK, SP_NONE,
     "{" TA "," TB ",\"s\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[32,36]}}", 36},
    {"no-tensors", MPOC_OK, SP_NONE, "{}", 0},
    {"sub-byte-even", MPOC_OK, SP_NONE,
     WITH_B("\"b\":{\"dtype\":\"F4\",\"shape\":[4],\"data_offsets\":[24,26]}"), 26},
};

size_t mg_st_case_count(void)
{
    return sizeof st_defs / sizeof st_defs[0];
}

static void st_deep(mg_buf *out)
{
    char h[1024];
    size_t k = (size_t)snprintf(h, sizeof h, "{\"x\":");
    for (int i = 0; i < 200; i++)
        h[k++] = '[';
    for (int i = 0; i < 200; i++)
        h[k++] = ']';
    h[k] = '\0';
    snprintf(h + k, sizeof h - k, "," TA "," TB "}");
    mg_st_from_header(out, h, 32);
}

mg_case mg_st_case(size_t i, mg_buf *out)
{
    const st_def *d = &st_defs[i];
    static const uint8_t pickle[] = {0x80, 0x02, 0x7d, 0x71, 0x00, 0x58, 0x01, 0x00, 0x00,
                                     0x00, 0x61, 0x71, 0x01, 0x4b, 0x01, 0x73, 0x2e};
    static const uint8_t zip[] = {0x50, 0x4b, 0x03, 0x04, 0x14, 0x00, 0x00, 0x00, 0x08, 0x00,
                                  0x00, 0x00, 0x21, 0x00, 'a', 'r', 'c', 'h', 'i', 'v', 'e'};
    out->len = 0;
    switch (d->special) {
    case SP_EMPTY_FILE: break;
    case SP_TOO_SMALL: mg_put(out, "\x10\0\0\0\0\0\0", 7); break;
    case SP_N_HUGE: st_raw(out, 100000001u, d->header, strlen(d->header), 32); break;
    case SP_N_MAX: st_raw(out, UINT64_MAX, d->header, strlen(d->header), 32); break;
    case SP_N_PAST_EOF: st_raw(out, strlen(d->header) + 100, d->header, strlen(d->header), 0); break;
    case SP_NUL_AFTER: {
        size_t n = strlen(d->header);
        st_raw(out, n + 1, d->header, n + 1, 32); /* includes the terminating NUL */
        break;
    }
    case SP_DEEP: st_deep(out); break;
    case SP_PICKLE: mg_put(out, pickle, sizeof pickle); break;
    case SP_ZIP: mg_put(out, zip, sizeof zip); break;
    default: mg_st_from_header(out, d->header, d->data_len); break;
    }
    return (mg_case){d->name, d->expect};
}

/* ---- GGUF ---- */

enum {
    G_VALID, G_V2, G_NO_ALIGN_KEY, G_ALIGN_64, G_DIM_ZERO, G_NO_TENSORS, G_SCALAR,
    G_FIRST_DEFECT,
    G_BAD_MAGIC = G_FIRST_DEFECT, G_VERSION_0, G_VERSION_1, G_VERSION_4, G_BIG_ENDIAN,
    G_NT_HUGE, G_NT_MUL_OVERFLOW, G_NKV_HUGE, G_KEY_LEN_HUGE, G_KEY_PAST_EOF, G_KEY_EMPTY,
    G_KEY_NUL, G_KEY_DUP, G_KV_TYPE_UNKNOWN, G_ARRAY_NESTED, G_ARRAY_COUNT_HUGE,
    G_ARRAY_ELEM_UNKNOWN, G_STRING_PAST_EOF, G_STRING_ELEM_PAST_EOF, G_BOOL_BAD,
    G_BOOL_ARRAY_BAD, G_ALIGN_U64, G_ALIGN_ZERO, G_ALIGN_NOT_POW2, G_ALIGN_HUGE,
    G_NAME_TOO_LONG, G_NAME_EMPTY, G_NAME_NUL, G_NAME_DUP, G_NDIMS_5, G_TYPE_REMOVED,
    G_TYPE_HUGE, G_NE_NEGATIVE, G_NE_PRODUCT_OVERFLOW, G_NE_PAD_WRAP, G_BLOCK_MISALIGNED,
    G_OFFSET_WRONG, G_OFFSET_UNALIGNED, G_DATA_TRUNCATED, G_TRAILING_BYTE,
    G_PADDING_NONZERO, G_COUNT
};

static const mg_case gg_cases[G_COUNT] = {
    [G_VALID] = {"valid", MPOC_OK},
    [G_V2] = {"version-2", MPOC_OK},
    [G_NO_ALIGN_KEY] = {"no-alignment-key", MPOC_OK},
    [G_ALIGN_64] = {"alignment-64", MPOC_OK},
    [G_DIM_ZERO] = {"dim-0-empty-tensor", MPOC_OK},
    [G_NO_TENSORS] = {"no-tensors", MPOC_OK},
    [G_SCALAR] = {"scalar-n_dims-0", MPOC_OK},
    [G_BAD_MAGIC] = {"bad-magic", MPOC_E_FORMAT},
    [G_VERSION_0] = {"version-0", MPOC_E_FORMAT},
    [G_VERSION_1] = {"version-1", MPOC_E_UNSUPPORTED},
    [G_VERSION_4] = {"version-4", MPOC_E_FORMAT},
    [G_BIG_ENDIAN] = {"big-endian", MPOC_E_UNSUPPORTED},
    [G_NT_HUGE] = {"tensor-count-past-eof", MPOC_E_FORMAT},
    [G_NT_MUL_OVERFLOW] = {"tensor-count-mul-overflow", MPOC_E_FORMAT},
    [G_NKV_HUGE] = {"kv-count-past-eof", MPOC_E_FORMAT},
    [G_KEY_LEN_HUGE] = {"key-length-2^63", MPOC_E_FORMAT},
    [G_KEY_PAST_EOF] = {"key-length-past-eof", MPOC_E_FORMAT},
    [G_KEY_EMPTY] = {"key-empty", MPOC_E_FORMAT},
    [G_KEY_NUL] = {"key-with-nul", MPOC_E_FORMAT},
    [G_KEY_DUP] = {"key-duplicate", MPOC_E_FORMAT},
    [G_KV_TYPE_UNKNOWN] = {"kv-type-13", MPOC_E_FORMAT},
    [G_ARRAY_NESTED] = {"array-nested", MPOC_E_FORMAT},
    [G_ARRAY_COUNT_HUGE] = {"array-count-2^62", MPOC_E_FORMAT},
    [G_ARRAY_ELEM_UNKNOWN] = {"array-elem-type-13", MPOC_E_FORMAT},
    [G_STRING_PAST_EOF] = {"string-length-past-eof", MPOC_E_FORMAT},
    [G_STRING_ELEM_PAST_EOF] = {"string-array-element-past-eof", MPOC_E_FORMAT},
    [G_BOOL_BAD] = {"bool-2", MPOC_E_FORMAT},
    [G_BOOL_ARRAY_BAD] = {"bool-array-element-7", MPOC_E_FORMAT},
    [G_ALIGN_U64] = {"alignment-not-u32", MPOC_E_FORMAT},
    [G_ALIGN_ZERO] = {"alignment-0", MPOC_E_FORMAT},
    [G_ALIGN_NOT_POW2] = {"alignment-48", MPOC_E_FORMAT},
    [G_ALIGN_HUGE] = {"alignment-2^30", MPOC_E_FORMAT},
    [G_NAME_TOO_LONG] = {"name-64-bytes", MPOC_E_FORMAT},
    [G_NAME_EMPTY] = {"name-empty", MPOC_E_FORMAT},
    [G_NAME_NUL] = {"name-with-nul", MPOC_E_FORMAT},
    [G_NAME_DUP] = {"name-duplicate", MPOC_E_FORMAT},
    [G_NDIMS_5] = {"n_dims-5", MPOC_E_FORMAT},
    [G_TYPE_REMOVED] = {"type-id-4-removed", MPOC_E_FORMAT},
    [G_TYPE_HUGE] = {"type-id-0xffffffff", MPOC_E_FORMAT},
    [G_NE_NEGATIVE] = {"ne-above-int64-max", MPOC_E_FORMAT},
    [G_NE_PRODUCT_OVERFLOW] = {"ne-product-overflow", MPOC_E_OVERFLOW},
    [G_NE_PAD_WRAP] = {"padding-round-up-wraps", MPOC_E_OVERFLOW},
    [G_BLOCK_MISALIGNED] = {"q8_0-row-33", MPOC_E_FORMAT},
    [G_OFFSET_WRONG] = {"offset-not-running-sum", MPOC_E_FORMAT},
    [G_OFFSET_UNALIGNED] = {"offset-unaligned", MPOC_E_FORMAT},
    [G_DATA_TRUNCATED] = {"data-truncated", MPOC_E_FORMAT},
    [G_TRAILING_BYTE] = {"trailing-byte", MPOC_E_FORMAT},
    [G_PADDING_NONZERO] = {"padding-non-zero", MPOC_E_FORMAT},
};

size_t mg_gguf_case_count(void)
{
    return G_COUNT;
}

static void kv_head(mg_buf *b, int k, const char *key, uint32_t type)
{
    if (k == G_KEY_LEN_HUGE && !strcmp(key, "general.architecture"))
        mg_u64(b, 1ull << 63);
    else if (k == G_KEY_PAST_EOF && !strcmp(key, "general.architecture"))
        mg_u64(b, 1ull << 20);
    else if (k == G_KEY_EMPTY && !strcmp(key, "test.flag"))
        mg_gstr(b, "");
    else if (k == G_KEY_NUL && !strcmp(key, "test.flag"))
        mg_put(b, "\x09\0\0\0\0\0\0\0test\0flag", 17);
    else
        mg_gstr(b, key);
    mg_u32(b, k == G_KV_TYPE_UNKNOWN && !strcmp(key, "test.flag") ? 13 : type);
}

/* The key/value section; returns the number of KVs written. */
static uint64_t gg_kvs(mg_buf *b, int k)
{
    uint64_t n = 0;
    kv_head(b, k, "general.architecture", 8);
    mg_u64(b, k == G_STRING_PAST_EOF ? 1ull << 40 : 5);
    mg_put(b, "llama", 5);
    n++;
    if (k != G_NO_ALIGN_KEY) {
        kv_head(b, k, "general.alignment", k == G_ALIGN_U64 ? 10 : 4);
        uint32_t a = k == G_ALIGN_64 ? 64 : k == G_ALIGN_ZERO ? 0 : k == G_ALIGN_NOT_POW2 ? 48
                   : k == G_ALIGN_HUGE ? (1u << 30) : 32;
        if (k == G_ALIGN_U64)
            mg_u64(b, 32);
        else
            mg_u32(b, a);
        n++;
    }
    kv_head(b, k, "test.array", 9);
    mg_u32(b, k == G_ARRAY_NESTED ? 9 : k == G_ARRAY_ELEM_UNKNOWN ? 13 : k == G_BOOL_ARRAY_BAD ? 7 : 0);
    mg_u64(b, k == G_ARRAY_COUNT_HUGE ? 1ull << 62 : 3);
    mg_put(b, k == G_BOOL_ARRAY_BAD ? "\1\7\0" : "\1\2\3", 3);
    n++;
    kv_head(b, k, "test.flag", 7);
    mg_u8(b, k == G_BOOL_BAD ? 2 : 1);
    n++;
    kv_head(b, k, "test.names", 9);
    mg_u32(b, 8);
    mg_u64(b, 2);
    mg_gstr(b, "x");
    mg_u64(b, k == G_STRING_ELEM_PAST_EOF ? 1ull << 40 : 2);
    mg_put(b, "yz", 2);
    n++;
    if (k == G_KEY_DUP) {
        mg_gstr(b, "test.flag");
        mg_u32(b, 7);
        mg_u8(b, 0);
        n++;
    }
    return n;
}

static void tensor_name(mg_buf *b, int k, const char *name)
{
    if (k == G_NAME_TOO_LONG && !strcmp(name, "q")) {
        char longname[65];
        memset(longname, 'q', 64);
        longname[64] = '\0';
        mg_gstr(b, longname);
    } else if (k == G_NAME_EMPTY && !strcmp(name, "q")) {
        mg_gstr(b, "");
    } else if (k == G_NAME_NUL && !strcmp(name, "q")) {
        mg_put(b, "\3\0\0\0\0\0\0\0q\0q", 11);
    } else {
        mg_gstr(b, k == G_NAME_DUP && !strcmp(name, "w") ? "q" : name);
    }
}

/* Tensor infos: q (Q8_0, ne [32, 1]) at 0, w (F32, ne [8, 2]) at PAD(34) = 64.
 * Returns the number of infos. */
static uint64_t gg_infos(mg_buf *b, int k)
{
    if (k == G_NO_TENSORS)
        return 0;
    tensor_name(b, k, "q");
    if (k == G_NDIMS_5) {
        mg_u32(b, 5);
        for (int d = 0; d < 5; d++)
            mg_u64(b, d ? 1 : 32);
    } else if (k == G_NE_PRODUCT_OVERFLOW) {
        mg_u32(b, 3);
        mg_u64(b, 32);
        mg_u64(b, 1ull << 32);
        mg_u64(b, 1ull << 32);
    } else {
        mg_u32(b, 2);
        mg_u64(b, k == G_BLOCK_MISALIGNED ? 33 : 32);
        mg_u64(b, k == G_NE_NEGATIVE ? 1ull << 63 : 1);
    }
    mg_u32(b, k == G_TYPE_REMOVED ? 4 : k == G_TYPE_HUGE ? 0xFFFFFFFFu : 8);
    mg_u64(b, 0);
    tensor_name(b, k, "w");
    if (k == G_SCALAR) {
        mg_u32(b, 0);
    } else if (k == G_NE_PAD_WRAP) {
        mg_u32(b, 1);
        mg_u64(b, 0x3FFFFFFFFFFFFFFFull);
    } else {
        mg_u32(b, 2);
        mg_u64(b, 8);
        mg_u64(b, 2);
    }
    mg_u32(b, 0);
    mg_u64(b, k == G_OFFSET_WRONG ? 32 : k == G_OFFSET_UNALIGNED ? 65 : 64);
    if (k != G_DIM_ZERO)
        return 2;
    mg_gstr(b, "z");
    mg_u32(b, 2);
    mg_u64(b, 8);
    mg_u64(b, 0);
    mg_u32(b, 0);
    mg_u64(b, 128);
    return 3;
}

static void pad_to(mg_buf *b, uint64_t align)
{
    while (b->len % align)
        mg_u8(b, 0);
}

static void gg_data(mg_buf *b, int k, uint64_t align)
{
    if (k == G_NO_TENSORS)
        return;
    mg_u8(b, 0x00); /* Q8_0 block: d = f16 1.0, q = -16..15 */
    mg_u8(b, 0x3C);
    for (int j = 0; j < 32; j++)
        mg_u8(b, (uint8_t)(int8_t)(j - 16));
    pad_to(b, align);
    int nw = k == G_SCALAR ? 1 : 16;
    for (int j = 0; j < nw; j++) {
        float f = (float)j;
        mg_put(b, &f, 4);
    }
    if (k == G_SCALAR || k == G_DIM_ZERO)
        pad_to(b, align);
}

static void gg_header(mg_buf *b, int k, uint64_t nt, uint64_t nkv)
{
    mg_put(b, k == G_BAD_MAGIC ? "GGUG" : "GGUF", 4);
    uint32_t v = k == G_V2 ? 2 : k == G_VERSION_0 ? 0 : k == G_VERSION_1 ? 1
               : k == G_VERSION_4 ? 4 : k == G_BIG_ENDIAN ? 0x03000000u : 3;
    mg_u32(b, v);
    mg_u64(b, k == G_NT_HUGE ? 1ull << 40 : k == G_NT_MUL_OVERFLOW ? 1ull << 62 : nt);
    mg_u64(b, k == G_NKV_HUGE ? 1ull << 40 : nkv);
}

mg_case mg_gguf_case(size_t i, mg_buf *out)
{
    int k = (int)i;
    uint64_t align = k == G_ALIGN_64 ? 64 : 32;
    mg_buf kvs = {0}, infos = {0};
    uint64_t nkv = gg_kvs(&kvs, k), nt = gg_infos(&infos, k);
    out->len = 0;
    gg_header(out, k, nt, nkv);
    mg_put(out, kvs.data, kvs.len);
    mg_put(out, infos.data, infos.len);
    if (nt)
        pad_to(out, align);
    size_t data_start = out->len;
    gg_data(out, k, align);
    if (k == G_DATA_TRUNCATED)
        out->len -= 10;
    if (k == G_TRAILING_BYTE)
        mg_u8(out, 0);
    if (k == G_PADDING_NONZERO)
        out->data[data_start + 40] = 1;
    mg_free(&kvs);
    mg_free(&infos);
    return gg_cases[k];
}

void mg_gguf_one(mg_buf *out, const char *name, size_t nlen, const char *key, const char *val,
                 size_t vlen)
{
    out->len = 0;
    mg_put(out, "GGUF", 4);
    mg_u32(out, 3);
    mg_u64(out, 1); /* tensors */
    mg_u64(out, 1); /* KVs */
    mg_gstr(out, key);
    mg_u32(out, 8); /* STRING */
    mg_u64(out, vlen);
    mg_put(out, val, vlen);
    mg_u64(out, nlen);
    mg_put(out, name, nlen);
    mg_u32(out, 1);  /* n_dims */
    mg_u64(out, 1);  /* ne[0] */
    mg_u32(out, 0);  /* F32 */
    mg_u64(out, 0);  /* offset */
    while (out->len % 32)
        mg_u8(out, 0);
    mg_put(out, "\x00\x00\x80\x3f", 4); /* 1.0f */
    while (out->len % 32)
        mg_u8(out, 0);
}
