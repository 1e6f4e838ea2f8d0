#include "ata.h"

#include "io.h"
#include "pci.h"

#define PCI_COMMAND 0x04
#define PCI_COMMAND_IO 0x1
#define PCI_COMMAND_MASTER 0x4
#define PCI_BAR4 0x20
#define PIIX_IDETIM_PRIMARY 0x40      /* IDE Timing register, primary channel (PIIX3 datasheet 2.3.9) */
#define PIIX_IDETIM_DECODE 0x8000     /* IDE Decode Enable: the legacy 0x1F0/0x3F6 ports answer */

#define DEFAULT_TIMEOUT_CYCLES 10000000000ull /* ~4 s at 2.6 GHz: a device that never answers */
/* SRST timing (ATA8-APT 11.2): SRST held >= 5 us, first status read >= 2 ms after it is cleared. Counted
 * in TSC cycles at a generous 5 GHz, since the TSC rate is not known here. */
#define SRST_HOLD_CYCLES 25000ull
#define SRST_SETTLE_CYCLES 10000000ull
#define LBA28_LIMIT (1ull << 28)
#define WORDS_PER_SECTOR (ATA_SECTOR_SIZE / 2)
#define PRD_PIECE_MAX 0x10000u

/* ---- counted port accesses ---- */

static uint8_t read_status(struct ata_channel *ch)
{
    ch->count.status_reads++;
    ch->last_status = inb((uint16_t)(ch->cmd + ATA_REG_STATUS));
    return ch->last_status;
}

static uint8_t read_error(struct ata_channel *ch)
{
    ch->count.status_reads++;
    ch->last_error = inb((uint16_t)(ch->cmd + ATA_REG_ERROR));
    return ch->last_error;
}

static void tf_write(struct ata_channel *ch, unsigned reg, uint8_t v)
{
    ch->count.taskfile_writes++;
    outb((uint16_t)(ch->cmd + reg), v);
}

static void ctl_write(struct ata_channel *ch, uint8_t v)
{
    ch->count.taskfile_writes++;
    outb(ch->ctl, v);
}

static uint8_t bm_read_status(struct ata_channel *ch)
{
    ch->count.bm_accesses++;
    ch->last_bm_status = inb((uint16_t)(ch->bm + BM_REG_STATUS));
    return ch->last_bm_status;
}

static void bm_write8(struct ata_channel *ch, unsigned reg, uint8_t v)
{
    ch->count.bm_accesses++;
    outb((uint16_t)(ch->bm + reg), v);
}

static void bm_write32(struct ata_channel *ch, unsigned reg, uint32_t v)
{
    ch->count.bm_accesses++;
    outl((uint16_t)(ch->bm + reg), v);
}

static int fail(struct ata_channel *ch, const char *why)
{
    ch->error = why;
    return -1;
}

/* ---- waiting ---- */

static void tsc_delay(uint64_t cycles)
{
    uint64_t start = rdtsc();
    while (rdtsc() - start < cycles)
        cpu_pause();
}

/* Polls Status until BSY clears. */
static int poll_not_busy(struct ata_channel *ch)
{
    uint64_t start = rdtsc();
    while (read_status(ch) & ATA_SR_BSY) {
        if (rdtsc() - start > ch->timeout_cycles)
            return fail(ch, "timeout waiting for !BSY");
    }
    return 0;
}

/* The end of one protocol step: in interrupt mode wait for INTRQ and read Status once (the
 * acknowledgement); in polled mode (or if the device is still busy after its interrupt) poll. */
static int wait_step(struct ata_channel *ch)
{
    if (ch->irq_wait) {
        if (ch->irq_wait(ch->irq_ctx) != 0)
            return fail(ch, "timeout waiting for IRQ 14");
        ch->count.interrupts++;
        if (!(read_status(ch) & ATA_SR_BSY))
            return 0;
    }
    return poll_not_busy(ch);
}

static int check_error(struct ata_channel *ch)
{
    if (ch->last_status & (ATA_SR_ERR | ATA_SR_DF)) {
        read_error(ch);
        return fail(ch, "device reported an error");
    }
    return 0;
}

/* After !BSY: the device must ask for (or offer) the next data block. */
static int expect_drq(struct ata_channel *ch)
{
    if (check_error(ch))
        return -1;
    if (!(ch->last_status & ATA_SR_DRQ))
        return fail(ch, "DRQ not set for a data block");
    return 0;
}

/* After the last step of a command: not busy, no data pending, no error. */
static int expect_done(struct ata_channel *ch)
{
    if (check_error(ch))
        return -1;
    if (ch->last_status & ATA_SR_DRQ)
        return fail(ch, "DRQ still set after the last block");
    return 0;
}

/* ---- commands ---- */

static int use_lba48(const struct ata_channel *ch, uint64_t lba, uint32_t count)
{
    if (ch->lba == ATA_LBA_48)
        return 1;
    if (ch->lba == ATA_LBA_28)
        return 0;
    return lba + count > LBA28_LIMIT || count > 256;
}

/* Loads the task file for a transfer and writes the command: LBA28 is 6 writes, LBA48 10 (each
 * register written twice, "previous" contents first, as ATA8-APT 7.1.2 describes). */
static int issue_rw(struct ata_channel *ch, uint64_t lba, uint32_t count, uint8_t cmd28, uint8_t cmd48)
{
    if (count == 0 || lba + count > ch->id.sectors || lba + count < lba)
        return fail(ch, "request outside the device");
    if (use_lba48(ch, lba, count)) {
        if (!ch->id.lba48)
            return fail(ch, "LBA48 not supported by the device");
        if (count > 65536)
            return fail(ch, "more than 65536 sectors");
        tf_write(ch, ATA_REG_NSECT, (uint8_t)(count >> 8));
        tf_write(ch, ATA_REG_LBAL, (uint8_t)(lba >> 24));
        tf_write(ch, ATA_REG_LBAM, (uint8_t)(lba >> 32));
        tf_write(ch, ATA_REG_LBAH, (uint8_t)(lba >> 40));
        tf_write(ch, ATA_REG_NSECT, (uint8_t)count);
        tf_write(ch, ATA_REG_LBAL, (uint8_t)lba);
        tf_write(ch, ATA_REG_LBAM, (uint8_t)(lba >> 8));
        tf_write(ch, ATA_REG_LBAH, (uint8_t)(lba >> 16));
        tf_write(ch, ATA_REG_DEVICE, ATA_DEV_OBS | ATA_DEV_LBA);
        tf_write(ch, ATA_REG_COMMAND, cmd48);
        return 0;
    }
    if (count > 256 || lba + count > LBA28_LIMIT)
        return fail(ch, "request not addressable with LBA28");
    tf_write(ch, ATA_REG_NSECT, (uint8_t)count); /* 256 is written as 0 */
    tf_write(ch, ATA_REG_LBAL, (uint8_t)lba);
    tf_write(ch, ATA_REG_LBAM, (uint8_t)(lba >> 8));
    tf_write(ch, ATA_REG_LBAH, (uint8_t)(lba >> 16));
    tf_write(ch, ATA_REG_DEVICE, (uint8_t)(ATA_DEV_OBS | ATA_DEV_LBA | ((lba >> 24) & 0x0F)));
    tf_write(ch, ATA_REG_COMMAND, cmd28);
    return 0;
}

/* PIO data-in (ATA8-APT 11.5): for each DRQ block, wait, then one rep insw for the whole block. After
 * the last block the device raises no further interrupt; Status is read once to see it finished. */
static int pio_in(struct ata_channel *ch, uint32_t count, unsigned block, uint8_t *buf)
{
    while (count) {
        uint32_t n = count < block ? count : block;
        if (wait_step(ch) || expect_drq(ch))
            return -1;
        ch->count.data_chunks++;
        rep_insw((uint16_t)(ch->cmd + ATA_REG_DATA), buf, (size_t)n * WORDS_PER_SECTOR);
        buf += (size_t)n * ATA_SECTOR_SIZE;
        count -= n;
    }
    read_status(ch);
    if (ch->last_status & ATA_SR_BSY)
        return fail(ch, "busy after the last block of a read");
    return expect_done(ch);
}

/* PIO data-out (ATA8-APT 11.6): the first block is asked for without an interrupt, so it is always
 * polled; every later block, and the end of the command, is announced by an interrupt. */
static int pio_out(struct ata_channel *ch, uint32_t count, unsigned block, const uint8_t *buf)
{
    if (poll_not_busy(ch) || expect_drq(ch))
        return -1;
    while (count) {
        uint32_t n = count < block ? count : block;
        ch->count.data_chunks++;
        rep_outsw((uint16_t)(ch->cmd + ATA_REG_DATA), buf, (size_t)n * WORDS_PER_SECTOR);
        buf += (size_t)n * ATA_SECTOR_SIZE;
        count -= n;
        if (wait_step(ch))
            return -1;
        if (count && expect_drq(ch))
            return -1;
    }
    return expect_done(ch);
}

static int nondata(struct ata_channel *ch, uint8_t cmd, uint8_t nsect)
{
    tf_write(ch, ATA_REG_NSECT, nsect);
    tf_write(ch, ATA_REG_DEVICE, ATA_DEV_OBS | ATA_DEV_LBA);
    tf_write(ch, ATA_REG_COMMAND, cmd);
    if (wait_step(ch))
        return -1;
    return expect_done(ch);
}

int ata_build_prdt(struct ata_prd *prdt, int max, uintptr_t buf, uint32_t bytes)
{
    int n = 0;
    if (buf & 1 || bytes & 1 || bytes == 0 || buf + bytes > 0x100000000ull)
        return 0;
    while (bytes) {
        uint32_t to_boundary = PRD_PIECE_MAX - (uint32_t)(buf & (PRD_PIECE_MAX - 1));
        uint32_t piece = bytes < to_boundary ? bytes : to_boundary;
        if (n == max)
            return 0;
        prdt[n].addr = (uint32_t)buf;
        prdt[n].byte_count = (uint16_t)piece; /* 64 KiB is encoded as 0 */
        prdt[n].flags = 0;
        n++;
        buf += piece;
        bytes -= piece;
    }
    prdt[n - 1].flags = PRD_EOT;
    return n;
}

/* Bus-master DMA (ATA8-APT 11.7, PIIX3 5.2): PRD table and direction, command, start; then the
 * interrupt (or, polled, the bus master going inactive), stop, Status, clear the bus master bits. */
static int dma(struct ata_channel *ch, uint64_t lba, uint32_t count, uintptr_t buf, int to_device)
{
    if (!ch->bm)
        return fail(ch, "no bus master");
    if (!ata_build_prdt(ch->prdt, ATA_PRD_MAX, buf, count * ATA_SECTOR_SIZE))
        return fail(ch, "buffer does not fit the PRD table");
    uint8_t dir = to_device ? 0 : BM_CMD_TO_MEMORY;
    compiler_barrier(); /* the PRD table is in memory before the device may read it */
    bm_write32(ch, BM_REG_PRDT, (uint32_t)(uintptr_t)ch->prdt);
    bm_write8(ch, BM_REG_COMMAND, dir);
    if (issue_rw(ch, lba, count, to_device ? ATA_CMD_WRITE_DMA : ATA_CMD_READ_DMA,
                 to_device ? ATA_CMD_WRITE_DMA_EXT : ATA_CMD_READ_DMA_EXT))
        return -1;
    bm_write8(ch, BM_REG_COMMAND, (uint8_t)(dir | BM_CMD_START));

    uint8_t bms;
    if (ch->irq_wait) {
        if (ch->irq_wait(ch->irq_ctx) != 0) {
            bm_write8(ch, BM_REG_COMMAND, dir);
            return fail(ch, "timeout waiting for IRQ 14 (DMA)");
        }
        ch->count.interrupts++;
        bms = bm_read_status(ch);
    } else {
        uint64_t start = rdtsc();
        for (;;) {
            bms = bm_read_status(ch);
            if ((bms & (BM_ST_INTERRUPT | BM_ST_ERROR)) || !(bms & BM_ST_ACTIVE))
                break;
            if (rdtsc() - start > ch->timeout_cycles) {
                bm_write8(ch, BM_REG_COMMAND, dir);
                return fail(ch, "timeout waiting for the bus master");
            }
        }
    }
    bm_write8(ch, BM_REG_COMMAND, dir); /* stop */
    int rc = ch->irq_wait ? (read_status(ch) & ATA_SR_BSY ? poll_not_busy(ch) : 0) : poll_not_busy(ch);
    bm_write8(ch, BM_REG_STATUS, BM_ST_INTERRUPT | BM_ST_ERROR); /* write-1-to-clear */
    if (rc)
        return -1;
    if (bms & BM_ST_ERROR)
        return fail(ch, "bus master error");
    if (bms & BM_ST_ACTIVE)
        return fail(ch, "bus master still active: the device moved fewer bytes than the PRD table");
    return expect_done(ch);
}

static int pio_block(const struct ata_channel *ch, enum ata_mode mode)
{
    return mode == ATA_MODE_MULTIPLE ? (int)ch->multiple : 1;
}

int ata_read(struct ata_channel *ch, enum ata_mode mode, uint64_t lba, uint32_t count, void *buf)
{
    switch (mode) {
    case ATA_MODE_DMA:
        return dma(ch, lba, count, (uintptr_t)buf, 0);
    case ATA_MODE_MULTIPLE:
        if (!ch->multiple)
            return fail(ch, "multiple mode not set");
        if (issue_rw(ch, lba, count, ATA_CMD_READ_MULTIPLE, ATA_CMD_READ_MULTIPLE_EXT))
            return -1;
        break;
    case ATA_MODE_PIO:
        if (issue_rw(ch, lba, count, ATA_CMD_READ_SECTORS, ATA_CMD_READ_SECTORS_EXT))
            return -1;
        break;
    default:
        return fail(ch, "bad mode");
    }
    return pio_in(ch, count, (unsigned)pio_block(ch, mode), buf);
}

int ata_write(struct ata_channel *ch, enum ata_mode mode, uint64_t lba, uint32_t count, const void *buf)
{
    switch (mode) {
    case ATA_MODE_DMA:
        return dma(ch, lba, count, (uintptr_t)buf, 1);
    case ATA_MODE_MULTIPLE:
        if (!ch->multiple)
            return fail(ch, "multiple mode not set");
        if (issue_rw(ch, lba, count, ATA_CMD_WRITE_MULTIPLE, ATA_CMD_WRITE_MULTIPLE_EXT))
            return -1;
        break;
    case ATA_MODE_PIO:
        if (issue_rw(ch, lba, count, ATA_CMD_WRITE_SECTORS, ATA_CMD_WRITE_SECTORS_EXT))
            return -1;
        break;
    default:
        return fail(ch, "bad mode");
    }
    return pio_out(ch, count, (unsigned)pio_block(ch, mode), buf);
}

int ata_flush(struct ata_channel *ch)
{
    return nondata(ch, ch->id.lba48 ? ATA_CMD_FLUSH_CACHE_EXT : ATA_CMD_FLUSH_CACHE, 0);
}

int ata_set_multiple(struct ata_channel *ch, unsigned sectors)
{
    if (sectors == 0 || sectors > ch->id.multiple_max || (sectors & (sectors - 1)))
        return fail(ch, "unsupported multiple count");
    if (nondata(ch, ATA_CMD_SET_MULTIPLE, (uint8_t)sectors))
        return -1;
    ch->multiple = sectors;
    return 0;
}

void ata_set_completion(struct ata_channel *ch, ata_irq_wait_fn wait, void *ctx)
{
    ch->irq_wait = wait;
    ch->irq_ctx = ctx;
    ctl_write(ch, wait ? 0 : ATA_DC_NIEN);
}

/* ---- setup ---- */

int ata_channel_init(struct ata_channel *ch, struct ata_prd *prdt, uint16_t bm_default)
{
    struct pci_func f;
    ch->cmd = ATA_PRIMARY_CMD;
    ch->ctl = ATA_PRIMARY_CTL;
    ch->prdt = prdt;
    ch->timeout_cycles = DEFAULT_TIMEOUT_CYCLES;
    if ((uintptr_t)prdt & 7 || ((uintptr_t)prdt & 0xFFF) + ATA_PRD_MAX * sizeof(*prdt) > 0x1000)
        return fail(ch, "PRD table misaligned or crossing a page");
    if (pci_find_device(PIIX_VENDOR, PIIX3_IDE_DEVICE, &f) != 0)
        return fail(ch, "no PIIX3 IDE function (8086:7010) on bus 0");
    ch->pci_bus = f.bus;
    ch->pci_dev = f.dev;
    ch->pci_fn = f.fn;
    uint32_t bar4 = pci_read32(f.bus, f.dev, f.fn, PCI_BAR4);
    if (!(bar4 & 1))
        return fail(ch, "BAR4 is not an I/O BAR");
    if ((bar4 & 0xFFF0) == 0) {
        pci_write32(f.bus, f.dev, f.fn, PCI_BAR4, bm_default);
        bar4 = pci_read32(f.bus, f.dev, f.fn, PCI_BAR4);
    }
    ch->bm = (uint16_t)(bar4 & 0xFFF0);
    /* Firmware normally enables the legacy decode; without firmware (a VMM loading us directly) it may
     * not have happened, and the ports would float. */
    uint16_t idetim = pci_read16(f.bus, f.dev, f.fn, PIIX_IDETIM_PRIMARY);
    if (!(idetim & PIIX_IDETIM_DECODE))
        pci_write16(f.bus, f.dev, f.fn, PIIX_IDETIM_PRIMARY, (uint16_t)(idetim | PIIX_IDETIM_DECODE));
    uint16_t cmd = pci_read16(f.bus, f.dev, f.fn, PCI_COMMAND);
    pci_write16(f.bus, f.dev, f.fn, PCI_COMMAND, (uint16_t)(cmd | PCI_COMMAND_IO | PCI_COMMAND_MASTER));
    if (!ch->bm)
        return fail(ch, "BAR4 could not be assigned");
    return 0;
}

/* SRST (ATA8-APT 11.2), then wait for the master to be ready. Status comes from the selected device,
 * and a device-select write is ignored while the selected device is busy (QEMU does exactly that): if
 * firmware left the absent slave selected, the first reads show 0x00 and the select must be repeated
 * once the reset has finished, so the loop re-selects the master until it reports DRDY. */
int ata_reset(struct ata_channel *ch)
{
    ch->irq_wait = 0;
    tf_write(ch, ATA_REG_DEVICE, ATA_DEV_OBS);
    ctl_write(ch, ATA_DC_SRST | ATA_DC_NIEN);
    tsc_delay(SRST_HOLD_CYCLES);
    ctl_write(ch, ATA_DC_NIEN);
    tsc_delay(SRST_SETTLE_CYCLES);
    uint64_t start = rdtsc();
    for (;;) {
        uint8_t st = read_status(ch);
        if (st == 0xFF)
            return fail(ch, "floating bus: no device on the primary channel");
        if (!(st & ATA_SR_BSY)) {
            if (st & ATA_SR_DRDY)
                break;
            tf_write(ch, ATA_REG_DEVICE, ATA_DEV_OBS);
        }
        if (rdtsc() - start > ch->timeout_cycles)
            return fail(ch, "primary master not ready after reset (no ATA disk?)");
    }
    ch->multiple = 0;
    return 0;
}

static uint32_t id_word(const uint16_t *id, int w) { return id[w]; }

int ata_identify(struct ata_channel *ch)
{
    static uint16_t id[256];
    tf_write(ch, ATA_REG_DEVICE, ATA_DEV_OBS);
    tf_write(ch, ATA_REG_COMMAND, ATA_CMD_IDENTIFY);
    if (pio_in(ch, 1, 1, (uint8_t *)id))
        return -1;
    struct ata_identity *d = &ch->id;
    d->lba48 = (id_word(id, 83) >> 10) & 1;
    d->dma = (id_word(id, 49) >> 8) & 1;
    d->multiple_max = id_word(id, 47) & 0xFF;
    uint64_t lba28 = id_word(id, 60) | id_word(id, 61) << 16;
    uint64_t lba48 = id_word(id, 100) | id_word(id, 101) << 16 | (uint64_t)id_word(id, 102) << 32 |
                     (uint64_t)id_word(id, 103) << 48;
    d->sectors = d->lba48 && lba48 ? lba48 : lba28;
    /* ATA strings hold two characters per word, the first in the high byte. */
    for (int i = 0; i < 20; i++) {
        d->model[2 * i] = (char)(id[27 + i] >> 8);
        d->model[2 * i + 1] = (char)id[27 + i];
    }
    int len = 40;
    while (len > 0 && (d->model[len - 1] == ' ' || d->model[len - 1] == 0))
        len--;
    d->model[len] = 0;
    for (int i = 0; i < len; i++)
        if (d->model[i] == ' ' || (unsigned char)d->model[i] < 0x21 || (unsigned char)d->model[i] > 0x7E)
            d->model[i] = '_'; /* one word on the host's parsed line */
    if (d->sectors == 0)
        return fail(ch, "IDENTIFY reports no addressable sectors (no LBA?)");
    return 0;
}

const char *ata_mode_name(enum ata_mode mode)
{
    return mode == ATA_MODE_PIO ? "pio" : mode == ATA_MODE_MULTIPLE ? "multiple" : mode == ATA_MODE_DMA ? "dma" : "?";
}
