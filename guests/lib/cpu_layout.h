/* GDT selectors and interrupt vectors shared by C and assembly. */
#ifndef GUEST_CPU_LAYOUT_H
#define GUEST_CPU_LAYOUT_H

#define SEL_KCODE 0x08
#define SEL_KDATA 0x10
#define SEL_UDATA 0x1B /* 0x18 | RPL 3 */
#define SEL_UCODE 0x23 /* 0x20 | RPL 3 */
#define SEL_TSS 0x28

#define RFLAGS_IOPL3 0x3000
#define RFLAGS_RESERVED1 0x0002

#endif
