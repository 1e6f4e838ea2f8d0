/* Finding and driving a QEMU-compatible pci-testdev (vendor 0x1b36, device 0x0005).
 *
 * Both BARs (BAR0: memory, BAR1: I/O) start with the same header (QEMU docs/specs/pci-testdev.rst):
 *   0x00 u8  test     write: select test n (QEMU resets the test's count to 0)
 *   0x01 u8  width    the access width the test wants: 1, 2 or 4 (anything else: not on this BAR)
 *   0x04 u32 offset   where in the BAR the test's writes go
 *   0x08 u32 data     the value to write (QEMU stores a byte; the three bytes after it read 0)
 *   0x0C u32 count    writes the device saw since the test was selected (QEMU: only those that
 *                     reached it, so 0 for ioeventfd tests)
 *   0x10 char name[]  NUL-terminated, e.g. "mmio-no-eventfd"; empty when no such test
 * QEMU answers every header read byte by byte, so wider reads work too. */
#ifndef BENCH_EXITS_TESTDEV_H
#define BENCH_EXITS_TESTDEV_H

#include <stdint.h>

#define TESTDEV_VENDOR 0x1b36
#define TESTDEV_DEVICE 0x0005

#define TESTDEV_REG_TEST 0x00
#define TESTDEV_REG_WIDTH 0x01
#define TESTDEV_REG_OFFSET 0x04
#define TESTDEV_REG_DATA 0x08
#define TESTDEV_REG_COUNT 0x0C
#define TESTDEV_REG_NAME 0x10
#define TESTDEV_HEADER_SIZE 0x10

#define TESTDEV_MAX_TESTS 16
#define TESTDEV_NAME_MAX 40

struct testdev_test {
    uint8_t number;             /* what to write to the test register */
    uint8_t width;              /* 1, 2 or 4 (validated) */
    uint32_t offset;            /* inside the BAR, past the header (validated) */
    uint32_t data;
    char name[TESTDEV_NAME_MAX]; /* as the device reports it, e.g. "portio-no-eventfd" */
    const char *short_name;      /* name without its "mmio-"/"portio-" prefix: "no-eventfd" */
};

struct testdev_bar {
    int present;
    int is_io;
    uint64_t base;  /* port or guest-physical address */
    uint64_t size;
    int n_tests;
    struct testdev_test tests[TESTDEV_MAX_TESTS];
};

struct testdev {
    int present;
    struct testdev_bar mmio; /* BAR0 */
    struct testdev_bar pio;  /* BAR1 */
};

/* Finds the device on bus 0, enables its decoding, and lists each BAR's tests. Prints one
 * "exits: testdev ..." line per finding (and per test it had to skip as invalid). Port I/O only:
 * works at CPL3. Returns 0 when a device with at least one usable BAR was found. */
int testdev_probe(struct testdev *td);

void testdev_select(const struct testdev_bar *bar, uint8_t test_number);
uint32_t testdev_read_count(const struct testdev_bar *bar);

/* The first test whose short name is `short_name`, or 0. */
const struct testdev_test *testdev_find(const struct testdev_bar *bar, const char *short_name);

#endif
