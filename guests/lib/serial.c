#include "serial.h"
#include "io.h"

enum { RBR_THR = 0, IER = 1, FCR = 2, LCR = 3, MCR = 4, LSR = 5 };
#define LSR_THRE 0x20

void serial_init(void)
{
    outb(SERIAL_COM1 + IER, 0x00);     /* no interrupts: we poll */
    outb(SERIAL_COM1 + LCR, 0x80);     /* DLAB=1 to reach the divisor latch */
    outb(SERIAL_COM1 + RBR_THR, 0x01); /* divisor 1 = 115200 baud */
    outb(SERIAL_COM1 + IER, 0x00);
    outb(SERIAL_COM1 + LCR, 0x03);     /* DLAB=0, 8 data bits, no parity, 1 stop */
    outb(SERIAL_COM1 + FCR, 0xC7);     /* FIFO on, cleared, 14-byte trigger */
    outb(SERIAL_COM1 + MCR, 0x03);     /* DTR|RTS; OUT2 left off since we never use IRQs */
}

void serial_putc(char c)
{
    /* Bounded wait: a VMM whose LSR never shows THRE must not hang the guest. */
    for (int spins = 0; spins < 100000; spins++) {
        if (inb(SERIAL_COM1 + LSR) & LSR_THRE)
            break;
        cpu_pause();
    }
    outb(SERIAL_COM1 + RBR_THR, (uint8_t)c);
}

void serial_puts(const char *s)
{
    while (*s)
        serial_putc(*s++);
}
