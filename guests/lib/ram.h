/* Free RAM above the guest image for large buffers (rings, I/O buffers) that must not live in .bss
 * (which the entry code clears in KVM's emulator) nor in the loaded image. A bump allocator over the
 * PVH memory-map RAM range that follows __image_end, kept clear of the start info, command line,
 * memory map and modules the loader placed. Memory is identity-mapped (address == guest physical) and
 * NOT zeroed. Nothing is ever freed. */
#ifndef GUEST_RAM_H
#define GUEST_RAM_H

#include <stddef.h>
#include <stdint.h>
#include "pvh.h"

/* Returns 0, or -1 when no usable RAM range follows the image. Without a memory map (start info
 * version 0) it assumes RAM up to 16 MiB. */
int ram_init(const struct hvm_start_info *si);

/* align: a power of two. Returns 0 when the range is exhausted. */
void *ram_alloc(size_t size, size_t align);

/* Bytes still available (for messages). */
uint64_t ram_available(void);

#endif
