/* Exception stubs, the CPL3 entry (iretq) and the CPL3 return path (ud2 -> #UD). */
#include "cpu_layout.h"

    .text
/* Stubs give every vector the same frame: CPU frame, error code (0 when the CPU pushes none),
 * vector number. 64-bit mode aligns RSP to 16 before pushing, and the stub + common code push
 * 17 more qwords, so exception_dispatch is called with a correctly aligned stack. */
.macro ISR vec, has_err
isr\vec:
    .if \has_err == 0
    pushq $0
    .endif
    pushq $\vec
    jmp isr_common
.endm

ISR 0,0;  ISR 1,0;  ISR 2,0;  ISR 3,0;  ISR 4,0;  ISR 5,0;  ISR 6,0;  ISR 7,0
ISR 8,1;  ISR 9,0;  ISR 10,1; ISR 11,1; ISR 12,1; ISR 13,1; ISR 14,1; ISR 15,0
ISR 16,0; ISR 17,1; ISR 18,0; ISR 19,0; ISR 20,0; ISR 21,1; ISR 22,0; ISR 23,0
ISR 24,0; ISR 25,0; ISR 26,0; ISR 27,0; ISR 28,0; ISR 29,1; ISR 30,1; ISR 31,0

isr_common:
    push %rax
    push %rbx
    push %rcx
    push %rdx
    push %rsi
    push %rdi
    push %rbp
    push %r8
    push %r9
    push %r10
    push %r11
    push %r12
    push %r13
    push %r14
    push %r15
    mov $SEL_KDATA, %eax             /* DS/ES may be null if we came from CPL3 */
    mov %eax, %ds
    mov %eax, %es
    mov %rsp, %rdi
    call exception_dispatch          /* reports and exits; does not return */
1:  cli
    hlt
    jmp 1b

    .section .rodata
    .p2align 3
    .globl isr_stub_table
isr_stub_table:
    .irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    .quad isr\v
    .endr

    .text
/* void run_at_cpl3(void (*fn)(void *), void *arg)
 * Saves the callee-saved registers and RSP, then iretq to fn at CPL3 with IOPL=3, IF=0, on the
 * user stack whose top holds the address of cpl3_exit_stub, where fn returns to.
 * (On kvm_pvm the IOPL does not survive into CPL3; port I/O still works there because the TSS
 * I/O bitmap allows every port, see cpu.c.) */
    .globl run_at_cpl3
run_at_cpl3:
    push %rbx
    push %rbp
    push %r12
    push %r13
    push %r14
    push %r15
    mov %rsp, saved_kernel_rsp(%rip)
    lea user_stack_top(%rip), %rax
    lea cpl3_exit_stub(%rip), %rcx
    mov %rcx, -8(%rax)               /* fn's return address */
    sub $8, %rax                     /* rsp % 16 == 8 at fn entry, as the ABI expects */
    pushq $SEL_UDATA                 /* SS */
    push %rax                        /* RSP */
    pushq $(RFLAGS_IOPL3 | RFLAGS_RESERVED1)
    pushq $SEL_UCODE                 /* CS */
    push %rdi                        /* RIP = fn */
    mov %rsi, %rdi                   /* fn's argument */
    xor %ebp, %ebp
    iretq

/* User code (the page is user-accessible like everything else). The way back to CPL0 is a
 * deliberate #UD at this exact address: exception_dispatch recognises it and calls
 * cpl3_resume_kernel. A DPL-3 `int $0x80` gate would be the classic way, but on kvm_pvm an
 * int n at CPL3 is itself turned into #UD, and exceptions are the one path that works. */
    .globl cpl3_exit_stub
cpl3_exit_stub:
    ud2

/* Resume the kernel context saved by run_at_cpl3, returning to its caller. Called (never
 * returns) from exception_dispatch on the TSS.rsp0 stack, whose frame is simply dropped. */
    .globl cpl3_resume_kernel
cpl3_resume_kernel:
    mov $SEL_KDATA, %eax
    mov %eax, %ds
    mov %eax, %es
    mov %eax, %ss
    mov saved_kernel_rsp(%rip), %rsp
    pop %r15
    pop %r14
    pop %r13
    pop %r12
    pop %rbp
    pop %rbx
    ret

    .section .bss
    .p2align 3
saved_kernel_rsp:
    .quad 0

    .section .stack, "aw", @nobits
    .p2align 4
user_stack:
    .skip 65536
user_stack_top:
    .skip 16384
    .globl intr_stack_top
intr_stack_top:

    .section .note.GNU-stack, "", @progbits
