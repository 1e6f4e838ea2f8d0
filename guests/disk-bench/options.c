#include "options.h"

#include "cmdline.h"
#include "mem.h"
#include "printf.h"

#define MAX_BLOCK_SIZE (1u << 20)

static int parse_bool(const char *s, size_t len, int *out)
{
    if (cmdline_is(s, len, "on") || cmdline_is(s, len, "1") || cmdline_is(s, len, "yes"))
        *out = 1;
    else if (cmdline_is(s, len, "off") || cmdline_is(s, len, "0") || cmdline_is(s, len, "no"))
        *out = 0;
    else
        return -1;
    return 0;
}

/* Comma-separated list of positive integers no larger than max. */
static int parse_list(const char *s, size_t len, uint32_t *out, int *n, uint64_t max)
{
    *n = 0;
    size_t i = 0;
    while (i < len) {
        size_t j = i;
        while (j < len && s[j] != ',')
            j++;
        uint64_t v;
        if (*n == OPT_LIST_MAX || cmdline_u64(s + i, j - i, &v) || v == 0 || v > max)
            return -1;
        out[(*n)++] = (uint32_t)v;
        i = j + 1;
    }
    return *n ? 0 : -1;
}

static int starts(const char *w, size_t len, const char *key)
{
    size_t k = strlen(key);
    return len >= k && strncmp(w, key, k) == 0;
}

static int parse_word(const char *w, size_t len, struct options *o)
{
#define VALUE(key) (w + strlen(key)), (len - strlen(key))
    if (starts(w, len, "transport=")) {
        const char *v = w + 10;
        size_t n = len - 10;
        if (cmdline_is(v, n, "auto"))
            o->transport = VBLK_AUTO;
        else if (cmdline_is(v, n, "mmio"))
            o->transport = VBLK_MMIO;
        else if (cmdline_is(v, n, "pci"))
            o->transport = VBLK_PCI;
        else if (cmdline_is(v, n, "pci-legacy"))
            o->transport = VBLK_PCI_LEGACY;
        else
            return -1;
        return 0;
    }
    if (starts(w, len, "completion=")) {
        const char *v = w + 11;
        size_t n = len - 11;
        if (cmdline_is(v, n, "poll"))
            o->use_irq = 0;
        else if (cmdline_is(v, n, "irq"))
            o->use_irq = 1;
        else
            return -1;
        return 0;
    }
    if (starts(w, len, "bs=")) {
        if (parse_list(VALUE("bs="), o->bs, &o->n_bs, MAX_BLOCK_SIZE))
            return -1;
        for (int i = 0; i < o->n_bs; i++)
            if (o->bs[i] % VBLK_SECTOR_SIZE)
                return -1;
        return 0;
    }
    if (starts(w, len, "qd="))
        return parse_list(VALUE("qd="), o->qd, &o->n_qd, VBLK_MAX_SLOTS);
    if (starts(w, len, "requests="))
        return cmdline_u64(VALUE("requests="), &o->requests);
    if (starts(w, len, "seconds="))
        return cmdline_u64(VALUE("seconds="), &o->seconds);
    if (starts(w, len, "pattern="))
        return parse_bool(VALUE("pattern="), &o->pattern);
    if (starts(w, len, "pattern_start="))
        return cmdline_u64(VALUE("pattern_start="), &o->pattern_start);
    if (starts(w, len, "pattern_sectors="))
        return cmdline_u64(VALUE("pattern_sectors="), &o->pattern_sectors);
    if (starts(w, len, "seed="))
        return cmdline_u64(VALUE("seed="), &o->seed);
    if (starts(w, len, "verify_only="))
        return parse_bool(VALUE("verify_only="), &o->verify_only);
    if (starts(w, len, "bench="))
        return parse_bool(VALUE("bench="), &o->bench);
    if (starts(w, len, "flush_and_wait="))
        return parse_bool(VALUE("flush_and_wait="), &o->flush_and_wait);
    if (starts(w, len, "event_idx="))
        return parse_bool(VALUE("event_idx="), &o->event_idx);
    if (starts(w, len, "mmio_trigger=")) {
        const char *v = w + 13;
        size_t n = len - 13;
        if (cmdline_is(v, n, "level"))
            o->mmio_level = 1;
        else if (cmdline_is(v, n, "edge"))
            o->mmio_level = 0;
        else
            return -1;
        return 0;
    }
    if (starts(w, len, "tsc_khz="))
        return cmdline_u64(VALUE("tsc_khz="), &o->tsc_khz);
    if (starts(w, len, "queue_size=")) {
        uint64_t v;
        if (cmdline_u64(VALUE("queue_size="), &v) || v == 0 || v > VIRTIO_MAX_QUEUE_SIZE)
            return -1;
        o->queue_size = (uint32_t)v;
        return 0;
    }
#undef VALUE
    return 1; /* not ours */
}

int options_parse(const char *cmdline, struct options *o)
{
    memset(o, 0, sizeof(*o));
    o->bs[0] = 4096;
    o->bs[1] = 65536;
    o->n_bs = 2;
    o->qd[0] = 1;
    o->qd[1] = 32;
    o->n_qd = 2;
    o->requests = 2000;
    o->pattern = 1;
    o->pattern_sectors = 2048;
    o->seed = 90;
    o->bench = 1;
    o->queue_size = 256;
    const char *p = cmdline ? cmdline : "";
    while (*p) {
        while (*p == ' ')
            p++;
        size_t len = 0;
        while (p[len] && p[len] != ' ')
            len++;
        if (len && parse_word(p, len, o) < 0) {
            char word[64];
            size_t n = len < sizeof(word) - 1 ? len : sizeof(word) - 1;
            memcpy(word, p, n);
            word[n] = 0;
            kprintf("disk: FAIL bad-option %s\n", word);
            return -1;
        }
        p += len;
    }
    return 0;
}
