/* tokens.c: token-id files shared by `mpoc eval --tokens` and
 * `mpoc sweep --eval-tokens`: raw little-endian int32 ids. A file that
 * starts with BOS holds sequences of `length` ids, each starting with BOS;
 * any other file is a stream cut into chunks of length − 1 ids, each placed
 * after a BOS. A trailing partial sequence is ignored with a note. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

/* All ids of the file (little-endian whatever the host). */
static int read_ids(const char *cmd, const char *path, int32_t **ids, size_t *n)
{
    FILE *f = fopen(path, "rb");
    struct stat st;
    if (!f || fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size % 4 != 0 ||
        st.st_size == 0) {
        cli_error(cmd, "%s: %s", path, f ? "not a non-empty list of int32 token ids" : strerror(errno));
        if (f)
            fclose(f);
        return CLI_FAIL;
    }
    *n = (size_t)st.st_size / 4;
    unsigned char *raw = malloc((size_t)st.st_size);
    *ids = malloc(*n * sizeof **ids);
    bool ok = raw && *ids && fread(raw, 1, (size_t)st.st_size, f) == (size_t)st.st_size;
    fclose(f);
    for (size_t i = 0; ok && i < *n; i++)
        (*ids)[i] = (int32_t)((uint32_t)raw[4 * i] | (uint32_t)raw[4 * i + 1] << 8 |
                              (uint32_t)raw[4 * i + 2] << 16 | (uint32_t)raw[4 * i + 3] << 24);
    free(raw);
    if (!ok) {
        cli_error(cmd, "%s: read failed", path);
        free(*ids);
        *ids = NULL;
        return CLI_FAIL;
    }
    return CLI_OK;
}

int cli_read_token_sequences(const char *cmd, const char *path, int32_t bos, size_t length,
                             int32_t **ids, size_t *n_seq)
{
    *ids = NULL;
    *n_seq = 0;
    int32_t *all;
    size_t n;
    if (length < 2) {
        cli_error(cmd, "sequences need at least 2 tokens");
        return CLI_USAGE;
    }
    if (read_ids(cmd, path, &all, &n) != CLI_OK)
        return CLI_FAIL;
    bool framed = all[0] == bos;
    size_t chunk = framed ? length : length - 1, count = n / chunk;
    if (count == 0) {
        cli_error(cmd, "%s: %zu ids are fewer than one sequence of %zu", path, n, length);
        free(all);
        return CLI_FAIL;
    }
    int32_t *out = malloc(count * length * sizeof *out);
    for (size_t s = 0; out && s < count; s++) {
        const int32_t *src = all + s * chunk;
        if (framed && src[0] != bos) {
            cli_error(cmd, "%s: sequence %zu (id index %zu) starts with %ld, not BOS %ld; the file "
                      "starts with BOS, so every %zu ids must", path, s, s * chunk, (long)src[0],
                      (long)bos, length);
            free(all);
            free(out);
            return CLI_FAIL;
        }
        out[s * length] = bos;
        memcpy(out + s * length + 1, framed ? src + 1 : src, (length - 1) * sizeof *out);
    }
    free(all);
    if (!out)
        return cli_fail(cmd, MPOC_E_NOMEM, path);
    if (n % chunk)
        fprintf(stderr, "mpoc %s: note: the last %zu ids of %s do not fill a sequence and are "
                "ignored\n", cmd, n % chunk, path);
    *ids = out;
    *n_seq = count;
    return CLI_OK;
}
