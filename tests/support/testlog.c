/* testlog.c: log capture and temp-folder helpers for the test suites. */
#define _POSIX_C_SOURCE 200809L
#include "testlog.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mpoc_status.h"

#define TL_KEEP 64

static char msgs[TL_KEEP][1024];
static size_t n_msgs;
static int verbose;

static void capture(void *user, const char *m)
{
    (void)user;
    snprintf(msgs[n_msgs % TL_KEEP], sizeof msgs[0], "%s", m);
    n_msgs++;
    if (verbose)
        fprintf(stderr, "  log: %s\n", m);
}

void tl_install(void)
{
    const char *v = getenv("MPOC_TEST_VERBOSE");
    verbose = v && *v == '1';
    mpoc_log_set(capture, NULL);
}

void tl_reset(void) { n_msgs = 0; }
size_t tl_count(void) { return n_msgs; }

const char *tl_last(void)
{
    return n_msgs ? msgs[(n_msgs - 1) % TL_KEEP] : "";
}

int tl_contains(const char *needle)
{
    size_t n = n_msgs < TL_KEEP ? n_msgs : TL_KEEP;
    for (size_t i = 0; i < n; i++)
        if (strstr(msgs[i], needle))
            return 1;
    return 0;
}

char *tl_tempdir(void)
{
    const char *t = getenv("TMPDIR");
    char *p = tl_path(t && *t ? t : "/tmp", "mpoc-test-XXXXXX");
    if (p && !mkdtemp(p)) {
        free(p);
        return NULL;
    }
    return p;
}

void tl_rmdir(char *dir)
{
    if (!dir)
        return;
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char *p = tl_path(dir, e->d_name);
        if (p && unlink(p) != 0)
            tl_rmdir(p), p = NULL; /* a sub-folder: tl_rmdir frees it */
        free(p);
    }
    if (d)
        closedir(d);
    rmdir(dir);
    free(dir);
}

char *tl_path(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", dir, name);
    return p;
}

unsigned char *tl_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(n > 0 ? (size_t)n : 1);
    if (b && n > 0 && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    *len = n > 0 ? (size_t)n : 0;
    return b;
}
