#include "options.h"

#include "cmdline.h"
#include "mem.h"
#include "printf.h"

static int parse_on_off(const char *s, size_t len, int *out)
{
    if (cmdline_is(s, len, "on"))
        *out = 1;
    else if (cmdline_is(s, len, "off"))
        *out = 0;
    else
        return -1;
    return 0;
}

/* Calls item(s, len, o) for each comma-separated element; empty elements are errors. */
static int for_each_item(const char *s, size_t len, struct options *o,
                         int (*item)(const char *, size_t, struct options *))
{
    size_t i = 0;
    if (len == 0)
        return -1;
    while (i <= len) {
        size_t j = i;
        while (j < len && s[j] != ',')
            j++;
        if (j == i || item(s + i, j - i, o))
            return -1;
        i = j + 1;
    }
    return 0;
}

static int mode_item(const char *s, size_t len, struct options *o)
{
    enum ata_mode m;
    if (cmdline_is(s, len, "pio"))
        m = ATA_MODE_PIO;
    else if (cmdline_is(s, len, "multiple"))
        m = ATA_MODE_MULTIPLE;
    else if (cmdline_is(s, len, "dma"))
        m = ATA_MODE_DMA;
    else
        return -1;
    if (o->n_modes == OPT_MAX_MODES)
        return -1;
    o->modes[o->n_modes++] = m;
    return 0;
}

static int completion_item(const char *s, size_t len, struct options *o)
{
    enum completion c;
    if (cmdline_is(s, len, "poll"))
        c = COMPLETION_POLL;
    else if (cmdline_is(s, len, "irq"))
        c = COMPLETION_IRQ;
    else
        return -1;
    if (o->n_completions == OPT_MAX_COMPLETIONS)
        return -1;
    o->completions[o->n_completions++] = c;
    return 0;
}

static int bs_item(const char *s, size_t len, struct options *o)
{
    uint64_t v;
    if (cmdline_u64(s, len, &v) || v == 0 || v % ATA_SECTOR_SIZE || v > OPT_BS_MAX || o->n_bs == OPT_MAX_BS)
        return -1;
    o->bs[o->n_bs++] = (uint32_t)v;
    return 0;
}

static int parse_word(const char *w, size_t len, struct options *o)
{
#define VALUE(key) (len > sizeof(key) - 1 && strncmp(w, key, sizeof(key) - 1) == 0 ? (w + sizeof(key) - 1) : 0)
#define VLEN(key) (len - (sizeof(key) - 1))
    const char *v;
    if ((v = VALUE("mode="))) {
        o->n_modes = 0;
        return for_each_item(v, VLEN("mode="), o, mode_item);
    }
    if ((v = VALUE("completion="))) {
        o->n_completions = 0;
        return for_each_item(v, VLEN("completion="), o, completion_item);
    }
    if ((v = VALUE("bs="))) {
        o->n_bs = 0;
        return for_each_item(v, VLEN("bs="), o, bs_item);
    }
    if ((v = VALUE("requests=")))
        return cmdline_u64(v, VLEN("requests="), &o->requests);
    if ((v = VALUE("pattern=")))
        return parse_on_off(v, VLEN("pattern="), &o->pattern);
    if ((v = VALUE("pattern_start=")))
        return cmdline_u64(v, VLEN("pattern_start="), &o->pattern_start);
    if ((v = VALUE("pattern_sectors=")))
        return cmdline_u64(v, VLEN("pattern_sectors="), &o->pattern_sectors);
    if ((v = VALUE("seed=")))
        return cmdline_u64(v, VLEN("seed="), &o->seed);
    if ((v = VALUE("verify_only="))) {
        int on;
        if (parse_on_off(v, VLEN("verify_only="), &on))
            return -1;
        if (on) {
            o->bench = 0;
            o->pattern = 1;
        }
        return 0;
    }
    if ((v = VALUE("bench=")))
        return parse_on_off(v, VLEN("bench="), &o->bench);
    if ((v = VALUE("multiple="))) {
        uint64_t n;
        if (cmdline_u64(v, VLEN("multiple="), &n) || n == 0 || n > 128 || (n & (n - 1)))
            return -1;
        o->multiple = (unsigned)n;
        return 0;
    }
    if ((v = VALUE("lba="))) {
        size_t n = VLEN("lba=");
        if (cmdline_is(v, n, "auto"))
            o->lba = ATA_LBA_AUTO;
        else if (cmdline_is(v, n, "28"))
            o->lba = ATA_LBA_28;
        else if (cmdline_is(v, n, "48"))
            o->lba = ATA_LBA_48;
        else
            return -1;
        return 0;
    }
    return 0; /* not ours */
#undef VALUE
#undef VLEN
}

int options_parse(const char *cmdline, struct options *o)
{
    memset(o, 0, sizeof(*o));
    o->modes[0] = ATA_MODE_PIO;
    o->modes[1] = ATA_MODE_MULTIPLE;
    o->modes[2] = ATA_MODE_DMA;
    o->n_modes = 3;
    o->completions[0] = COMPLETION_POLL;
    o->n_completions = 1;
    o->bs[0] = 4096;
    o->bs[1] = 65536;
    o->n_bs = 2;
    o->requests = 1000;
    o->pattern = 1;
    o->pattern_sectors = 512;
    o->seed = 90;
    o->bench = 1;
    o->multiple = 16;
    o->lba = ATA_LBA_AUTO;
    const char *p = cmdline ? cmdline : "";
    while (*p) {
        while (*p == ' ')
            p++;
        size_t len = 0;
        while (p[len] && p[len] != ' ')
            len++;
        if (len && parse_word(p, len, o) != 0) {
            char word[64];
            size_t n = len < sizeof(word) - 1 ? len : sizeof(word) - 1;
            memcpy(word, p, n);
            word[n] = 0;
            kprintf("ide: FAIL bad option \"%s\"\n", word);
            return -1;
        }
        p += len;
    }
    return 0;
}

int options_want_irq(const struct options *o)
{
    for (int i = 0; i < o->n_completions; i++)
        if (o->completions[i] == COMPLETION_IRQ)
            return 1;
    return 0;
}
