/* test_fuzz_replay.c: the fuzz targets' plain-main replay driver.
 *
 * Runs every file of tests/fuzz/corpus/<target>/ through the four libFuzzer
 * entry points (and every case of the generated catalogues, plus their
 * truncations, through the three reader targets), compiled here under renamed symbols, so `make test` and
 * `make asan` replay the corpus under the sanitizers without libFuzzer.
 * `test_fuzz_replay --write-corpus DIR` writes the generated seed files
 * (DIR/<target>/<case>) that tests/fuzz/corpus holds. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#define LLVMFuzzerTestOneInput fuzz_safetensors_one
#define check_model st_check_model
#include "fuzz/fuzz_safetensors.c"
#undef LLVMFuzzerTestOneInput
#undef check_model
#define LLVMFuzzerTestOneInput fuzz_gguf_one
#define check_model gg_check_model
#define check_meta gg_check_meta
#include "fuzz/fuzz_gguf.c"
#undef LLVMFuzzerTestOneInput
#undef check_model
#undef check_meta
#define LLVMFuzzerTestOneInput fuzz_model_one
#include "fuzz/fuzz_model.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_writer_one
#define walk writer_walk
#define next writer_next
#define text writer_text
#define script writer_script
#include "fuzz/fuzz_writer.c"
#undef LLVMFuzzerTestOneInput
#undef walk
#undef next
#undef text
#undef script

#include "support/modelgen.h"
#include "support/testlog.h"

typedef int (*fuzz_fn)(const uint8_t *, size_t);

static const struct target {
    const char *name;
    fuzz_fn fn;
    bool catalogue; /* also fed the generated model files (readers only) */
} targets[] = {
    {"safetensors", fuzz_safetensors_one, true},
    {"gguf", fuzz_gguf_one, true},
    {"model", fuzz_model_one, true},
    {"writer", fuzz_writer_one, false},
};

static const char *corpus_root(void)
{
    const char *r = getenv("MPOC_FUZZ_CORPUS");
    return r && *r ? r : "tests/fuzz/corpus";
}

/* Replay every regular file of root/<target>; returns how many ran. */
static size_t replay_dir(const struct target *t)
{
    char *dir = tl_path(corpus_root(), t->name);
    DIR *d = dir ? opendir(dir) : NULL;
    size_t n = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char *p = tl_path(dir, e->d_name);
        size_t len;
        unsigned char *buf = p ? tl_read_file(p, &len) : NULL;
        if (buf) {
            t->fn(buf, len);
            n++;
        }
        free(buf);
        free(p);
    }
    if (d)
        closedir(d);
    free(dir);
    return n;
}

static void test_corpus(void **state)
{
    (void)state;
    size_t total = 0;
    for (size_t i = 0; i < sizeof targets / sizeof targets[0]; i++) {
        size_t n = replay_dir(&targets[i]);
        printf("replayed %zu corpus files through fuzz_%s\n", n, targets[i].name);
        total += n;
    }
    if (total == 0)
        printf("note: no corpus under %s (run from the project root)\n", corpus_root());
}

/* Generated catalogues and every prefix of them through every target. */
static void test_generated(void **state)
{
    (void)state;
    mg_buf b = {0};
    size_t ns = mg_st_case_count(), ng = mg_gguf_case_count();
    for (size_t i = 0; i < ns + ng; i++) {
        if (i < ns)
            mg_st_case(i, &b);
        else
            mg_gguf_case(i - ns, &b);
        for (size_t t = 0; t < sizeof targets / sizeof targets[0]; t++)
            for (size_t len = i == 0 || i == ns ? 0 : b.len; len <= b.len && targets[t].catalogue;
                 len++)
                targets[t].fn(b.data, len);
    }
    mg_free(&b);
}

static int write_corpus(const char *root)
{
    mg_buf b = {0};
    mkdir(root, 0755);
    for (size_t t = 0; t < sizeof targets / sizeof targets[0] && targets[t].catalogue; t++) {
        char *dir = tl_path(root, targets[t].name);
        mkdir(dir, 0755);
        size_t ns = mg_st_case_count(), ng = mg_gguf_case_count();
        for (size_t i = 0; i < ns + ng; i++) {
            bool st = i < ns;
            if ((t == 0 && !st) || (t == 1 && st))
                continue; /* header targets get their own format only */
            mg_case c = st ? mg_st_case(i, &b) : mg_gguf_case(i - ns, &b);
            char name[96];
            snprintf(name, sizeof name, "%s-%s", st ? "st" : "gguf", c.name);
            char *p = tl_path(dir, name);
            if (!p || mg_write_file(p, b.data, b.len) != 0)
                return 1;
            free(p);
        }
        free(dir);
    }
    mg_free(&b);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "--write-corpus"))
        return write_corpus(argv[2]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_corpus),
        cmocka_unit_test(test_generated),
    };
    return cmocka_run_group_tests_name("fuzz_replay", tests, NULL, NULL);
}
