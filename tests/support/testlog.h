/* testlog.h: capture the library's log for assertions, and temp folders. */
#ifndef MPOC_TEST_TESTLOG_H
#define MPOC_TEST_TESTLOG_H

#include <stddef.h>

/* Install a capturing logger (messages kept, last one retrievable). Set
 * MPOC_TEST_VERBOSE=1 to also print them. */
void tl_install(void);
void tl_reset(void);
size_t tl_count(void);
const char *tl_last(void); /* "" when nothing was logged */
/* True when any captured message contains `needle`. */
int tl_contains(const char *needle);

/* mkdtemp under $TMPDIR (or /tmp); returns a static-free malloc'd path. */
char *tl_tempdir(void);
/* rm -r of a folder made by tl_tempdir (files only, one level deep). */
void tl_rmdir(char *dir);
/* Join dir and name into a malloc'd path. */
char *tl_path(const char *dir, const char *name);
/* Read a whole file into a malloc'd buffer; NULL on failure. */
unsigned char *tl_read_file(const char *path, size_t *len);

#endif
