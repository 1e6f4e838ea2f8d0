#include "loops.h"

/* Every loop: the access, then `dec n; jnz`. Clobbering "memory" keeps the compiler from moving guest
 * memory accesses across a device access (the device may observe them). */

void loop_empty(uintptr_t addr, uint32_t value, uint64_t n)
{
    (void)addr, (void)value;
    __asm__ volatile("1: dec %0\n\tjnz 1b" : "+r"(n) : : "cc", "memory");
}

void loop_cpuid0(uintptr_t addr, uint32_t value, uint64_t n)
{
    (void)addr, (void)value;
    /* cpuid overwrites eax/ecx, so the leaf (0) and subleaf are set again every time. */
    __asm__ volatile("1: xor %%eax, %%eax\n\txor %%ecx, %%ecx\n\tcpuid\n\tdec %0\n\tjnz 1b"
                     : "+r"(n) : : "rax", "rbx", "rcx", "rdx", "cc", "memory");
}

void loop_pio_read8(uintptr_t port, uint32_t value, uint64_t n)
{
    (void)value;
    __asm__ volatile("1: inb %%dx, %%al\n\tdec %0\n\tjnz 1b"
                     : "+r"(n) : "d"((uint16_t)port) : "rax", "cc", "memory");
}

void loop_pio_write8(uintptr_t port, uint32_t value, uint64_t n)
{
    __asm__ volatile("1: outb %%al, %%dx\n\tdec %0\n\tjnz 1b"
                     : "+r"(n) : "a"(value), "d"((uint16_t)port) : "cc", "memory");
}

void loop_pio_write16(uintptr_t port, uint32_t value, uint64_t n)
{
    __asm__ volatile("1: outw %%ax, %%dx\n\tdec %0\n\tjnz 1b"
                     : "+r"(n) : "a"(value), "d"((uint16_t)port) : "cc", "memory");
}

void loop_pio_write32(uintptr_t port, uint32_t value, uint64_t n)
{
    __asm__ volatile("1: outl %%eax, %%dx\n\tdec %0\n\tjnz 1b"
                     : "+r"(n) : "a"(value), "d"((uint16_t)port) : "cc", "memory");
}

void loop_mmio_read32(uintptr_t addr, uint32_t value, uint64_t n)
{
    (void)value;
    __asm__ volatile("1: movl (%1), %%eax\n\tdec %0\n\tjnz 1b"
                     : "+r"(n) : "r"(addr) : "rax", "cc", "memory");
}

void loop_mmio_write8(uintptr_t addr, uint32_t value, uint64_t n)
{
    __asm__ volatile("1: movb %b2, (%1)\n\tdec %0\n\tjnz 1b"
                     : "+r"(n) : "r"(addr), "q"(value) : "cc", "memory");
}

void loop_mmio_write16(uintptr_t addr, uint32_t value, uint64_t n)
{
    __asm__ volatile("1: movw %w2, (%1)\n\tdec %0\n\tjnz 1b"
                     : "+r"(n) : "r"(addr), "r"(value) : "cc", "memory");
}

void loop_mmio_write32(uintptr_t addr, uint32_t value, uint64_t n)
{
    __asm__ volatile("1: movl %2, (%1)\n\tdec %0\n\tjnz 1b"
                     : "+r"(n) : "r"(addr), "r"(value) : "cc", "memory");
}

uint64_t loop_hypercall_mmio_write(uintptr_t addr, uint32_t value, unsigned width, uint64_t n)
{
    uint64_t status;
    uint64_t flags = width | HYPERCALL_FLAG_WRITE;
    /* The VMM returns the status in rcx and may touch rax on reads, so both are loaded every time. */
    __asm__ volatile("1: mov %[flags], %%rcx\n\t"
                     "mov %[value], %%rax\n\t"
                     "outb %%al, %%dx\n\t"
                     "dec %[n]\n\t"
                     "jnz 1b"
                     : [n] "+r"(n), "=&c"(status)
                     : [flags] "r"(flags), [value] "r"((uint64_t)value), "b"((uint64_t)addr),
                       "d"((uint16_t)HYPERCALL_PORT)
                     : "rax", "cc", "memory");
    return status;
}
