/* Whole small text files (configs, templates): read into memory, written
 * atomically. */
#ifndef VL_IO_FILE_H
#define VL_IO_FILE_H

#include <stddef.h>

/* The file's bytes, NUL-terminated, malloc'd (caller frees); NULL + vl_error
 * when it cannot be opened or read, or is larger than max_bytes. */
char *vl_read_text_file(const char *path, size_t max_bytes);
/* text into path through path.tmp and a rename: readers see the old file or
 * the whole new one. */
int vl_write_text_file(const char *path, const char *text);

#endif
