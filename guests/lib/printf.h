/* A small printf for guests. Conversions: %s %c %d %i %u %x %X %p %%, length modifiers
 * l, ll, z; flags '0' and '-'; a field width (digits or *). Works in 32- and 64-bit guests
 * without libgcc: 64-bit decimal is formatted by subtracting powers of ten, never dividing. */
#ifndef GUEST_PRINTF_H
#define GUEST_PRINTF_H

#include <stdarg.h>
#include <stddef.h>

typedef void (*kputc_fn)(char c, void *ctx);

int kvformat(kputc_fn out, void *ctx, const char *fmt, va_list ap);
/* To the serial console. Returns the number of characters written. */
int kprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int kvprintf(const char *fmt, va_list ap);
/* Always NUL-terminates when size > 0; returns the length the full output would have. */
int ksnprintf(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
