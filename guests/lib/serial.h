/* Polled 16550 UART at COM1 (0x3F8), 115200 8N1. No interrupts, no state: usable from
 * CPL0 and CPL3 (IOPL=3), from any CPU. Lines end in a bare '\n' (no CR) so logs compare
 * byte-for-byte between VMMs. */
#ifndef GUEST_SERIAL_H
#define GUEST_SERIAL_H

#define SERIAL_COM1 0x3F8

void serial_init(void);
void serial_putc(char c);
void serial_puts(const char *s);

#endif
