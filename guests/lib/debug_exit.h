/* Leave the VM with a status: QEMU isa-debug-exit semantics (iobase 0xf4), the VMM exits with
 * status (code << 1) | 1. So debug_exit(0) -> exit status 1 means success. */
#ifndef GUEST_DEBUG_EXIT_H
#define GUEST_DEBUG_EXIT_H

#include <stdint.h>

#define DEBUG_EXIT_PORT 0xF4
#define DEBUG_EXIT_OK 0
#define DEBUG_EXIT_FAIL 1
#define DEBUG_EXIT_EXCEPTION 3 /* an unexpected CPU exception; see the serial log */

__attribute__((noreturn)) void debug_exit(uint8_t code);

#endif
