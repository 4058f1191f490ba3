/* fileio.c: atomic output. POSIX only. */
#define _POSIX_C_SOURCE 200809L
#include "fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

int mpoc_same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    if (stat(a, &sa) != 0 || stat(b, &sb) != 0)
        return 0;
    return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

static mpoc_status check_policy(const char *path, const mpoc_write_policy *pol)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return MPOC_OK; /* nothing there: nothing to protect */
    if (pol)
        for (size_t i = 0; i < pol->n_inputs; i++)
            if (pol->inputs[i] && mpoc_same_file(path, pol->inputs[i]))
                MPOC_FAIL(MPOC_E_EXISTS, "'%s': output is the input '%s'; refusing to overwrite it",
                          path, pol->inputs[i]);
    if (!pol || !pol->overwrite)
        MPOC_FAIL(MPOC_E_EXISTS, "'%s': file exists (use --force to replace it)", path);
    if (!S_ISREG(st.st_mode))
        MPOC_FAIL(MPOC_E_EXISTS, "'%s': exists and is not a regular file", path);
    return MPOC_OK;
}

/* Mode for a new output: 0666 minus the process umask, as open(O_CREAT)
 * would give (mkstemp makes 0600). umask(2) can only be read by setting
 * it, which races with other threads creating files, so read it from
 * /proc/self/status (Linux >= 4.7); elsewhere assume the common 022. A
 * fixed 0644 used to make outputs world-readable under umask 077. */
static mode_t output_mode(void)
{
    unsigned um = 022;
    char line[128];
    FILE *f = fopen("/proc/self/status", "re");
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "Umask: %o", &um) == 1)
            break;
    if (f)
        fclose(f);
    return (mode_t)(0666u & ~um);
}

static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return strdup(".");
    if (slash == path)
        return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

mpoc_status mpoc_out_open(const char *path, const mpoc_write_policy *policy, mpoc_outfile *out)
{
    memset(out, 0, sizeof *out);
    out->fd = -1;
    if (!path || !*path)
        MPOC_FAIL(MPOC_E_INVAL, "empty output path");
    MPOC_TRY(check_policy(path, policy));
    size_t n = strlen(path);
    out->path = strdup(path);
    out->tmp_path = malloc(n + 32);
    if (!out->path || !out->tmp_path) {
        mpoc_out_abort(out);
        return MPOC_E_NOMEM;
    }
    snprintf(out->tmp_path, n + 32, "%s.tmp.XXXXXX", path);
    out->fd = mkstemp(out->tmp_path);
    if (out->fd < 0) {
        int e = errno;
        free(out->tmp_path);
        out->tmp_path = NULL; /* nothing was created */
        mpoc_out_abort(out);
        MPOC_FAIL(MPOC_E_IO, "'%s': cannot create a temporary file beside it: %s", path, strerror(e));
    }
    (void)fchmod(out->fd, output_mode());
    return MPOC_OK;
}

mpoc_status mpoc_out_write(mpoc_outfile *f, const void *data, size_t n)
{
    const char *p = data;
    while (n > 0) {
        ssize_t w = write(f->fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            MPOC_FAIL(MPOC_E_IO, "'%s': write failed: %s", f->path, strerror(errno));
        }
        p += w;
        n -= (size_t)w;
        f->written += (uint64_t)w;
    }
    return MPOC_OK;
}

mpoc_status mpoc_out_zeros(mpoc_outfile *f, size_t n)
{
    static const char zeros[4096];
    while (n > 0) {
        size_t k = n < sizeof zeros ? n : sizeof zeros;
        MPOC_TRY(mpoc_out_write(f, zeros, k));
        n -= k;
    }
    return MPOC_OK;
}

static void fsync_dir(const char *path)
{
    char *dir = dir_of(path);
    if (!dir)
        return;
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    free(dir);
}

mpoc_status mpoc_out_finish(mpoc_outfile *f)
{
    mpoc_status st = MPOC_OK;
    if (fsync(f->fd) != 0) {
        mpoc_log_("'%s': fsync failed: %s", f->path, strerror(errno));
        st = MPOC_E_IO;
    }
    if (close(f->fd) != 0 && st == MPOC_OK) {
        mpoc_log_("'%s': close failed: %s", f->path, strerror(errno));
        st = MPOC_E_IO;
    }
    f->fd = -1;
    return st;
}

mpoc_status mpoc_out_commit(mpoc_outfile *f)
{
    mpoc_status st = f->fd >= 0 ? mpoc_out_finish(f) : MPOC_OK;
    if (st == MPOC_OK && rename(f->tmp_path, f->path) != 0) {
        mpoc_log_("'%s': rename into place failed: %s", f->path, strerror(errno));
        st = MPOC_E_IO;
    }
    if (st == MPOC_OK) {
        fsync_dir(f->path);
        free(f->tmp_path);
        f->tmp_path = NULL;
    }
    mpoc_out_abort(f);
    return st;
}

void mpoc_out_abort(mpoc_outfile *f)
{
    if (f->fd >= 0)
        close(f->fd);
    f->fd = -1;
    if (f->tmp_path)
        unlink(f->tmp_path);
    free(f->tmp_path);
    free(f->path);
    f->tmp_path = NULL;
    f->path = NULL;
}
