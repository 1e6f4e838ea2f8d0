#include "options.h"

#include "cmdline.h"
#include "mem.h"
#include "printf.h"

#define DEFAULT_GOAL (1ull << 26)

static int starts_with(const char *word, size_t len, const char *key)
{
    size_t klen = strlen(key);
    return len >= klen && strncmp(word, key, klen) == 0;
}

static int parse_modes(const char *s, size_t len, struct options *o)
{
    o->measure_cpl3 = o->measure_cpl0 = 0;
    o->cpl0_first = 0;
    size_t i = 0;
    while (i < len) {
        size_t j = i;
        while (j < len && s[j] != ',')
            j++;
        if (j - i == 4 && strncmp(s + i, "cpl3", 4) == 0) {
            o->measure_cpl3 = 1;
        } else if (j - i == 4 && strncmp(s + i, "cpl0", 4) == 0) {
            o->cpl0_first = !o->measure_cpl3;
            o->measure_cpl0 = 1;
        } else {
            return -1;
        }
        i = j + 1;
    }
    return 0;
}

static int parse_kinds(const char *s, size_t len, struct options *o)
{
    size_t i = 0;
    o->n_kind_patterns = 0;
    while (i < len) {
        size_t j = i;
        while (j < len && s[j] != ',')
            j++;
        if (j - i == 0 || j - i >= OPTION_WORD_MAX || o->n_kind_patterns == OPTION_LIST_MAX)
            return -1;
        char *dst = o->kind_patterns[o->n_kind_patterns++];
        memcpy(dst, s + i, j - i);
        dst[j - i] = 0;
        i = j + 1;
    }
    return 0;
}

static int parse_word(const char *w, size_t len, struct options *o)
{
    if (starts_with(w, len, "goal="))
        return cmdline_u64(w + 5, len - 5, &o->goal);
    if (starts_with(w, len, "cpl0_goal="))
        return cmdline_u64(w + 10, len - 10, &o->cpl0_goal);
    if (starts_with(w, len, "iterations=")) {
        o->fixed_iterations = 1;
        return cmdline_u64(w + 11, len - 11, &o->iterations);
    }
    if (starts_with(w, len, "modes="))
        return parse_modes(w + 6, len - 6, o);
    if (starts_with(w, len, "kinds="))
        return parse_kinds(w + 6, len - 6, o);
    if (len == 5 && strncmp(w, "quiet", 5) == 0) {
        o->quiet = 1;
        return 0;
    }
    if (len == 7 && strncmp(w, "markers", 7) == 0) {
        o->markers = 1;
        return 0;
    }
    return 1; /* not ours: ignored, so a shared command line does not break the bench */
}

int options_parse(const char *cmdline, struct options *o)
{
    memset(o, 0, sizeof(*o));
    o->goal = DEFAULT_GOAL;
    o->measure_cpl3 = o->measure_cpl0 = 1;
    const char *p = cmdline ? cmdline : "";
    while (*p) {
        while (*p == ' ')
            p++;
        size_t len = 0;
        while (p[len] && p[len] != ' ')
            len++;
        if (len && parse_word(p, len, o) < 0) {
            kprintf("exits: bad option \"%s\"\n", p);
            return -1;
        }
        p += len;
    }
    if (o->goal == 0)
        o->goal = 1;
    if (o->cpl0_goal == 0)
        o->cpl0_goal = o->goal / 8 ? o->goal / 8 : 1;
    return 0;
}

int options_want_kind(const struct options *o, const char *kind)
{
    if (o->n_kind_patterns == 0)
        return 1;
    for (int i = 0; i < o->n_kind_patterns; i++) {
        const char *pat = o->kind_patterns[i];
        size_t len = strlen(pat);
        if (len && pat[len - 1] == '*') {
            if (strncmp(kind, pat, len - 1) == 0)
                return 1;
        } else if (strlen(kind) == len && strncmp(kind, pat, len) == 0) {
            return 1;
        }
    }
    return 0;
}
