/* The measured loops of the exits bench: each performs exactly n accesses of one kind and nothing else
 * but a decrement and a branch, so that (loop cycles - empty loop cycles) is the cost of the access.
 * They are written in inline assembly so that the compiler can neither drop nor merge an access. */
#ifndef BENCH_EXITS_LOOPS_H
#define BENCH_EXITS_LOOPS_H

#include <stdint.h>

/* addr: a port or a guest-physical address (identity-mapped); value: what a write stores;
 * n: the number of accesses, at least 1 (a zero count would wrap the decrement). */
typedef void (*access_loop)(uintptr_t addr, uint32_t value, uint64_t n);

void loop_empty(uintptr_t addr, uint32_t value, uint64_t n);
void loop_cpuid0(uintptr_t addr, uint32_t value, uint64_t n);
void loop_pio_read8(uintptr_t port, uint32_t value, uint64_t n);
void loop_pio_write8(uintptr_t port, uint32_t value, uint64_t n);
void loop_pio_write16(uintptr_t port, uint32_t value, uint64_t n);
void loop_pio_write32(uintptr_t port, uint32_t value, uint64_t n);
void loop_mmio_read32(uintptr_t addr, uint32_t value, uint64_t n);
void loop_mmio_write8(uintptr_t addr, uint32_t value, uint64_t n);
void loop_mmio_write16(uintptr_t addr, uint32_t value, uint64_t n);
void loop_mmio_write32(uintptr_t addr, uint32_t value, uint64_t n);

/* The iovmm hypercall port-I/O carrier (docs/HYPERCALL.md): n MMIO writes of `width` bytes at `addr`,
 * each one `outb` to port 0x0FF0 with rbx = address, rcx = width | write flag, rax = value.
 * Returns the status the VMM left in rcx after the last call (0 = done). */
uint64_t loop_hypercall_mmio_write(uintptr_t addr, uint32_t value, unsigned width, uint64_t n);

#define HYPERCALL_PORT 0x0FF0
#define HYPERCALL_SIGNATURE 0x31564f49u /* "IOV1", what inl(HYPERCALL_PORT) returns under iovmm */
#define HYPERCALL_FLAG_WRITE 0x100u

#endif
