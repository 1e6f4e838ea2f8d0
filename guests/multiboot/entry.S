/* Multiboot v1 entry: the loader enters in 32-bit protected mode, paging off, EAX=0x2BADB002,
 * EBX = struct multiboot_info. We stay in 32-bit mode: set a stack, clear .bss, call mb_main. */
#include "multiboot.h"

    .section .multiboot, "a"
    .p2align 2
    .long MULTIBOOT_HEADER_MAGIC
    .long MULTIBOOT_HEADER_FLAGS
    .long -(MULTIBOOT_HEADER_MAGIC + MULTIBOOT_HEADER_FLAGS)

    .text
    .globl _start
_start:
    cli
    cld
    mov $stack_top, %esp
    mov %eax, %esi
    mov %ebx, %edx
    mov $__bss_start, %edi
    mov $__bss_end, %ecx
    sub %edi, %ecx
    xor %eax, %eax
    rep stosb
    push %edx                        /* info */
    push %esi                        /* magic */
    call mb_main
    push $0
    call debug_exit

    .section .stack, "aw", @nobits
    .p2align 4
    .skip 16384
stack_top:

    .section .note.GNU-stack, "", @progbits
