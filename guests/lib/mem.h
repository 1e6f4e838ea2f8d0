/* The few libc memory/string routines a freestanding guest needs (gcc may also emit calls to
 * memcpy/memset/memcmp for struct copies, so these names must exist). */
#ifndef GUEST_MEM_H
#define GUEST_MEM_H

#include <stddef.h>

void *memcpy(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
void *memmove(void *dst, const void *src, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strncmp(const char *a, const char *b, size_t n);
const char *strstr_simple(const char *hay, const char *needle);

#endif
