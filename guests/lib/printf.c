#include "printf.h"
#include "serial.h"
#include <stdint.h>

struct sink {
    kputc_fn out;
    void *ctx;
    int count;
};

static void emit(struct sink *s, char c)
{
    s->out(c, s->ctx);
    s->count++;
}

/* Digits of v into buf (reversed order avoided: filled left to right). Returns length. */
static int fmt_dec(char *buf, uint64_t v)
{
    static const uint64_t pow10[20] = {
        10000000000000000000ULL, 1000000000000000000ULL, 100000000000000000ULL,
        10000000000000000ULL, 1000000000000000ULL, 100000000000000ULL, 10000000000000ULL,
        1000000000000ULL, 100000000000ULL, 10000000000ULL, 1000000000ULL, 100000000ULL,
        10000000ULL, 1000000ULL, 100000ULL, 10000ULL, 1000ULL, 100ULL, 10ULL, 1ULL,
    };
    int n = 0;
    for (int i = 0; i < 20; i++) {
        char d = '0';
        while (v >= pow10[i]) { /* at most 9 rounds (1 for i == 0) */
            v -= pow10[i];
            d++;
        }
        if (n > 0 || d != '0' || i == 19)
            buf[n++] = d;
    }
    return n;
}

static int fmt_hex(char *buf, uint64_t v, int upper)
{
    const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    int n = 0;
    for (int shift = 60; shift >= 0; shift -= 4) {
        unsigned d = (unsigned)(v >> shift) & 0xF;
        if (n > 0 || d != 0 || shift == 0)
            buf[n++] = digits[d];
    }
    return n;
}

static void emit_field(struct sink *s, const char *prefix, const char *body, int len, int width,
                       int zero, int left)
{
    int plen = 0;
    while (prefix[plen])
        plen++;
    int pad = width > len + plen ? width - len - plen : 0;
    if (!left && !zero)
        for (; pad > 0; pad--)
            emit(s, ' ');
    for (int i = 0; i < plen; i++)
        emit(s, prefix[i]);
    if (!left && zero)
        for (; pad > 0; pad--)
            emit(s, '0');
    for (int i = 0; i < len; i++)
        emit(s, body[i]);
    for (; pad > 0; pad--)
        emit(s, ' ');
}

int kvformat(kputc_fn out, void *ctx, const char *fmt, va_list ap)
{
    struct sink s = { out, ctx, 0 };
    char buf[24];

    for (; *fmt; fmt++) {
        if (*fmt != '%') {
            emit(&s, *fmt);
            continue;
        }
        fmt++;
        int zero = 0, left = 0, width = 0, lng = 0;
        for (;; fmt++) {
            if (*fmt == '0')
                zero = 1;
            else if (*fmt == '-')
                left = 1;
            else
                break;
        }
        if (*fmt == '*') {
            width = va_arg(ap, int);
            fmt++;
        }
        while (*fmt >= '0' && *fmt <= '9')
            width = width * 10 + (*fmt++ - '0');
        while (*fmt == 'l') {
            lng++;
            fmt++;
        }
        if (*fmt == 'z') {
            lng = sizeof(size_t) == 8 ? 2 : 0;
            fmt++;
        }

        uint64_t u = 0;
        int64_t i = 0;
        switch (*fmt) {
        case 'd':
        case 'i':
            i = lng >= 2 ? va_arg(ap, long long) : lng == 1 ? va_arg(ap, long) : va_arg(ap, int);
            u = i < 0 ? (uint64_t)0 - (uint64_t)i : (uint64_t)i;
            emit_field(&s, i < 0 ? "-" : "", buf, fmt_dec(buf, u), width, zero, left);
            break;
        case 'u':
        case 'x':
        case 'X':
            u = lng >= 2 ? va_arg(ap, unsigned long long)
                : lng == 1 ? va_arg(ap, unsigned long) : va_arg(ap, unsigned int);
            emit_field(&s, "", buf, *fmt == 'u' ? fmt_dec(buf, u) : fmt_hex(buf, u, *fmt == 'X'),
                       width, zero, left);
            break;
        case 'p':
            u = (uintptr_t)va_arg(ap, void *);
            emit_field(&s, "0x", buf, fmt_hex(buf, u, 0), width, zero, left);
            break;
        case 'c':
            buf[0] = (char)va_arg(ap, int);
            emit_field(&s, "", buf, 1, width, 0, left);
            break;
        case 's': {
            const char *str = va_arg(ap, const char *);
            if (!str)
                str = "(null)";
            int len = 0;
            while (str[len])
                len++;
            emit_field(&s, "", str, len, width, 0, left);
            break;
        }
        case '%':
            emit(&s, '%');
            break;
        case '\0':
            return s.count; /* lone '%' at the end */
        default:            /* unknown conversion: show it verbatim */
            emit(&s, '%');
            emit(&s, *fmt);
            break;
        }
    }
    return s.count;
}

static void serial_sink(char c, void *ctx)
{
    (void)ctx;
    serial_putc(c);
}

int kvprintf(const char *fmt, va_list ap)
{
    return kvformat(serial_sink, NULL, fmt, ap);
}

int kprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = kvprintf(fmt, ap);
    va_end(ap);
    return n;
}

struct bufsink {
    char *buf;
    size_t size, pos;
};

static void buf_sink(char c, void *ctx)
{
    struct bufsink *b = ctx;
    if (b->pos + 1 < b->size)
        b->buf[b->pos++] = c;
}

int ksnprintf(char *buf, size_t size, const char *fmt, ...)
{
    struct bufsink b = { buf, size, 0 };
    va_list ap;
    va_start(ap, fmt);
    int n = kvformat(buf_sink, &b, fmt, ap);
    va_end(ap);
    if (size > 0)
        buf[b.pos] = '\0';
    return n;
}
