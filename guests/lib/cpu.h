/* CPU modes for 64-bit guests: TSS, IDT with exception reporting, and CPL3 excursions.
 *
 * Why CPL3: on kvm_pvm only 64-bit CPL3 code runs natively; CPL0 code is emulated. Hot loops
 * therefore run through run_at_cpl3(). Port I/O is allowed at CPL3 twice over: RFLAGS.IOPL=3
 * (what hardware and QEMU TCG honour) and a TSS I/O bitmap allowing every port (what kvm_pvm
 * honours: it does not keep IOPL for CPL3 code but emulates trapped I/O the bitmap allows).
 * The identity map has the User bit everywhere, so RAM and MMIO are reachable from CPL3. */
#ifndef GUEST_CPU_H
#define GUEST_CPU_H

#include <stdint.h>
#include "cpu_layout.h"

/* Saved by the exception stubs (cpu_asm.S); the order matches the pushes. */
struct trap_frame {
    uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
    uint64_t rbp, rdi, rsi, rdx, rcx, rbx, rax;
    uint64_t vector, error_code;
    uint64_t rip, cs, rflags, rsp, ss; /* pushed by the CPU */
};

/* Installs the TSS (rsp0 = a dedicated interrupt stack) and the IDT. Called by the PVH entry
 * before guest_main, so guests need not call it. */
void cpu_init(void);

/* Runs fn(arg) at CPL3 with IOPL=3 and interrupts off, on the library's 64 KiB user stack;
 * returns when fn returns (fn's return address is a ud2 stub that the #UD handler recognises
 * as "back to the kernel"; see cpu_asm.S for why not int $0x80). Not reentrant: call it from CPL0 only, one CPU at a time. An exception at CPL3 is
 * reported on the serial port and ends the VM with debug_exit(DEBUG_EXIT_EXCEPTION). */
void run_at_cpl3(void (*fn)(void *), void *arg);

/* Current privilege level (CS.RPL): 0 or 3. */
static inline int current_cpl(void)
{
    uint16_t cs;
    __asm__ volatile("mov %%cs, %0" : "=r"(cs));
    return cs & 3;
}

/* RFLAGS.IOPL (0..3) as the code sees it. At CPL3 on kvm_pvm this is 0 even though
 * run_at_cpl3 asked for 3; port I/O works there anyway (TSS I/O bitmap allows all ports). */
static inline int current_iopl(void)
{
    uint64_t f;
    __asm__ volatile("pushfq; popq %0" : "=r"(f));
    return (int)((f >> 12) & 3);
}

/* "cpl3" or "cpl0": for benchmark reports that say in which mode they measured. */
static inline const char *cpl_name(void)
{
    return current_cpl() == 3 ? "cpl3" : "cpl0";
}

#endif
