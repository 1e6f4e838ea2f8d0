/* Pieces for parsing a guest's kernel command line ("key=value key=value ..."), shared by the bench guests'
 * option parsers. Words are (pointer, length) pairs: the command line is never modified or copied. */
#ifndef GUEST_CMDLINE_H
#define GUEST_CMDLINE_H

#include <stddef.h>
#include <stdint.h>

/* Decimal digits only; 0 on success, -1 on anything else (empty, a non-digit, overflow). */
int cmdline_u64(const char *s, size_t len, uint64_t *out);
/* Whether the word [s, s+len) is exactly `word`. */
int cmdline_is(const char *s, size_t len, const char *word);

#endif
