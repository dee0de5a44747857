/* The scanner of model_tools.darknet_log: runs the line templates of model_tools/log_grammar.py
 * (compiled there to the program read here) over a block of log text, line by line, and writes
 * one record per match: where it starts, which template, and its slots (numbers as float()
 * reads them, NaN where the match set none). What the formats are lives in Python; this file
 * only knows the grammar's parts (see log_grammar.py for what each means and why the result is
 * the regex's).
 *
 * Work is linear in the block: each line is read once to find its end; a template is tried once
 * at a line start (when the line's first byte can begin it) and, for templates matched anywhere,
 * once per occurrence of its first literal; one attempt reads a bounded number of bytes.
 */
#define _GNU_SOURCE
#include <locale.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define LS_ABI_VERSION 3
#define LS_SLOTS 8
#define LS_STATS 5                    /* weighted values per match: slots 0..4, weight in slot 5 */
#define LS_SUMS (2 * LS_STATS + 1)    /* sums of value * weight, sums of weights, sum of weights */
#define LS_MAX_TEMPLATES 32

/* what a match of a template does (log_grammar.RECORD, CLOSE, WEIGHTED) */
enum { KIND_RECORD, KIND_CLOSE, KIND_WEIGHTED };

enum { OP_END, OP_LIT, OP_RUN, OP_NUM, OP_INT, OP_OPT, OP_ALT, OP_FIELDS, OP_FLAG };

typedef struct {
    const uint8_t *ops;
    const uint8_t *starts; /* 32-byte set of first bytes */
    int anywhere, group, kind, may_be_empty;
    unsigned key; /* anywhere: the byte of the first literal searched for (a rare one) */
} Template;

typedef struct Cont {
    const uint8_t *pc;
    const struct Cont *next;
} Cont;

typedef struct {
    const uint8_t *buf;
    long end; /* of the line */
    double slots[LS_SLOTS];
} Ctx;

int ls_abi_version(void) { return LS_ABI_VERSION; }

static int in_set(const uint8_t *set, uint8_t c) { return (set[c >> 3] >> (c & 7)) & 1; }
static unsigned u16(const uint8_t *p) { return p[0] | (unsigned)p[1] << 8; }
static int is_digit(uint8_t c) { return c >= '0' && c <= '9'; }

static const double POW10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* float() of the n bytes of a number NUM matched, when the fast path below does not apply:
 * strtod in the C locale (correctly rounded, as float() is). */
static double slow_double(const uint8_t *s, long n) {
    static locale_t c_locale;
    if (!c_locale) c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
    char tmp[128];
    memcpy(tmp, s, (size_t)n);
    tmp[n] = 0;
    return strtod_l(tmp, NULL, c_locale);
}

/* NUM (log_grammar.NUM) at pos: its end, or -1; its value, as float() reads it, in *out.
 * Exact: a mantissa below 2^53 times or divided by a power of ten up to 1e22 (both exact doubles)
 * is one correctly rounded operation (Clinger's fast path), which is what darknet's %f and %g
 * numbers give; anything else goes to strtod. */
static long number(const uint8_t *b, long pos, long end, double *out) {
    long i = pos;
    int neg = 0;
    if (pos >= end) return -1;
    if (b[i] == '-' || b[i] == '+') neg = b[i] == '-', ++i;
    if (b[pos] != '+' && end - i >= 3 && ((b[i] == 'n' && b[i + 1] == 'a' && b[i + 2] == 'n') ||
                                          (b[i] == 'i' && b[i + 1] == 'n' && b[i + 2] == 'f'))) {
        *out = b[i] == 'n' ? (neg ? -NAN : NAN) : (neg ? -INFINITY : INFINITY);
        i += 3;
    } else {
        uint64_t mant = 0;
        int digits = 0, exp10 = 0; /* digits: significant ones, from the first non-zero */
        long d = i;
        for (; i < end && i - d < 40 && is_digit(b[i]); ++i) {
            digits += mant != 0 || b[i] != '0';
            mant = mant * 10 + (uint64_t)(b[i] - '0');
            if (digits > 19) mant = 0, digits = 100; /* too many for the fast path */
        }
        if (i == d) return -1;
        if (i < end && b[i] == '.') {
            long f = ++i;
            for (; i < end && i - f < 40 && is_digit(b[i]); ++i) {
                digits += mant != 0 || b[i] != '0';
                mant = mant * 10 + (uint64_t)(b[i] - '0');
                --exp10;
                if (digits > 19) mant = 0, digits = 100;
            }
        }
        if (i < end && (b[i] == 'e' || b[i] == 'E')) {
            long e = i + 1;
            int eneg = 0, x = 0;
            if (e < end && (b[e] == '-' || b[e] == '+')) eneg = b[e++] == '-';
            long first = e;
            for (; e < end && e - first < 3 && is_digit(b[e]); ++e) x = x * 10 + (b[e] - '0');
            if (e > first) i = e, exp10 += eneg ? -x : x;
        }
        if (digits == 0)
            *out = neg ? -0.0 : 0.0;
        else if (digits <= 19 && mant < (1ULL << 53) && exp10 >= -22 && exp10 <= 22)
            *out = (neg ? -1.0 : 1.0) * (exp10 < 0 ? (double)mant / POW10[-exp10] : (double)mant * POW10[exp10]);
        else
            *out = slow_double(b + pos, i - pos);
    }
    if (i < end && b[i] == '(') { /* MSVC's -nan(ind) */
        long j = i + 1;
        while (j < end && j - i <= 8 && b[j] >= 'a' && b[j] <= 'z') ++j;
        if (j > i + 1 && j < end && b[j] == ')') i = j + 1;
    }
    return i;
}

static int same(const uint8_t *a, const uint8_t *b, unsigned n) {
    for (unsigned i = 0; i < n; ++i)
        if (a[i] != b[i]) return 0;
    return 1;
}

/* Match ops from pc at pos, then the continuations k: the end of the match, or -1. */
static long match(Ctx *c, const uint8_t *pc, long pos, const Cont *k) {
    const uint8_t *b = c->buf;
    for (;;) {
        switch (*pc) {
        case OP_END:
            if (!k) return pos;
            pc = k->pc;
            k = k->next;
            break;
        case OP_LIT: {
            unsigned n = pc[1];
            if (c->end - pos < (long)n || !same(b + pos, pc + 2, n)) return -1;
            pos += n;
            pc += 2 + n;
            break;
        }
        case OP_RUN: { /* whole: log_grammar.check() proves no shorter run can lead to a match */
            unsigned lo = u16(pc + 1), hi = u16(pc + 3);
            const uint8_t *set = pc + 5;
            long i = pos;
            while (i < c->end && (unsigned long)(i - pos) < hi && in_set(set, b[i])) ++i;
            if ((unsigned long)(i - pos) < lo) return -1;
            pos = i;
            pc += 5 + 32;
            break;
        }
        case OP_NUM: {
            double v;
            long e = number(b, pos, c->end, &v);
            if (e < 0) return -1;
            c->slots[pc[1]] = v;
            pos = e;
            pc += 2;
            break;
        }
        case OP_INT: {
            long i = pos;
            int64_t value = 0;
            int neg = 0;
            if (pc[3] && i < c->end && b[i] == '-') neg = 1, ++i;
            long d = i;
            while (i < c->end && i - d < pc[2] && is_digit(b[i])) value = value * 10 + (b[i++] - '0');
            if (i == d) return -1;
            c->slots[pc[1]] = (double)(neg ? -value : value);
            pos = i;
            pc += 4;
            break;
        }
        case OP_OPT: { /* greedy: the body then the rest; else the rest */
            unsigned len = u16(pc + 1);
            const uint8_t *body = pc + 3, *rest = body + len;
            double saved[LS_SLOTS];
            memcpy(saved, c->slots, sizeof saved);
            Cont then = {rest, k};
            long e = match(c, body, pos, &then);
            if (e >= 0) return e;
            memcpy(c->slots, saved, sizeof saved);
            pc = rest;
            break;
        }
        case OP_ALT: {
            unsigned n = pc[1];
            const uint8_t *p = pc + 2, *rest = p;
            for (unsigned i = 0; i < n; ++i) rest += 2 + u16(rest);
            double saved[LS_SLOTS];
            memcpy(saved, c->slots, sizeof saved);
            Cont then = {rest, k};
            for (unsigned i = 0; i < n; ++i) {
                long e = match(c, p + 2, pos, &then);
                if (e >= 0) return e;
                memcpy(c->slots, saved, sizeof saved);
                p += 2 + u16(p);
            }
            return -1;
        }
        case OP_FIELDS: { /* lazy: the rest after 0, 1, ... n fields; each field runs to the next ',' */
            unsigned n = pc[1], width = u16(pc + 2);
            const uint8_t *rest = pc + 4;
            double saved[LS_SLOTS];
            memcpy(saved, c->slots, sizeof saved);
            for (unsigned f = 0;; ++f) {
                long e = match(c, rest, pos, k);
                if (e >= 0) return e;
                memcpy(c->slots, saved, sizeof saved);
                if (f == n || c->end - pos < 2 || b[pos] != ',' || b[pos + 1] != ' ') return -1;
                long i = pos + 2;
                while (i < c->end && (unsigned long)(i - pos - 2) < width && b[i] != ',' && b[i] != '\n') ++i;
                pos = i;
            }
        }
        case OP_FLAG:
            c->slots[pc[1]] = 1.0;
            pc += 2;
            break;
        default:
            return -1;
        }
    }
}

static int parse_program(const uint8_t *prog, Template *t) {
    int n = prog[0];
    if (n > LS_MAX_TEMPLATES) return -1;
    const uint8_t *p = prog + 1;
    for (int i = 0; i < n; ++i) {
        t[i].anywhere = p[0];
        t[i].group = p[1];
        t[i].kind = p[2];
        t[i].may_be_empty = p[3];
        t[i].starts = p + 4;
        unsigned len = u16(p + 36);
        t[i].ops = p + 38;
        p += 38 + len;
        /* punctuation other than ',' and ':' is rarer in logs than letters, digits and spaces */
        t[i].key = 0;
        if (t[i].anywhere)
            for (unsigned j = 0; j < t[i].ops[1]; ++j) {
                uint8_t ch = t[i].ops[2 + j];
                if (!(ch == ' ' || ch == ',' || ch == ':' || is_digit(ch) || ((ch | 32) >= 'a' && (ch | 32) <= 'z'))) {
                    t[i].key = j;
                    break;
                }
            }
    }
    return n;
}

static void clear(Ctx *c) {
    for (int i = 0; i < LS_SLOTS; ++i) c->slots[i] = NAN;
}

/* A weighted match adds to the sums since the last closing match: each value that is finite,
 * when the weight is above 0, as value * weight (and the weight to its sum of weights); the
 * weight to the last sum whatever the values. In line order, so each sum is added up as a
 * line-by-line reader adds it. */
static void add(double *sums, const double *slots) {
    double w = slots[LS_STATS];
    for (int i = 0; i < LS_STATS; ++i)
        if (isfinite(slots[i]) && w > 0) {
            sums[i] += slots[i] * w;
            sums[LS_STATS + i] += w;
        }
    sums[2 * LS_STATS] += w;
}

/* Scans buf[0:len) line by line: '\n' and '\r' end a line, and a line is read up to its first
 * line_cap bytes (*long_lines counts those longer).
 * A match of a RECORD or CLOSE template writes a record: pos[i] (byte offset of the match),
 * tmpl[i], slots[i * LS_SLOTS + s]; a CLOSE record also takes the sums (sums_out[i * LS_SUMS + s],
 * from `sums`, which then start again from 0). A WEIGHTED match adds to `sums` (see add()).
 * `sums` carries over from one call to the next. Returns the number of records (at most cap);
 * *done is where scanning stopped: len, or the start of the first line whose records did not
 * fit (`sums` and *long_lines are then as they were before that line: call again from there). */
long ls_scan(const uint8_t *buf, long len, const uint8_t *prog, long line_cap, double *sums, int64_t *pos_out,
             int32_t *tmpl_out, double *slots_out, double *sums_out, long cap, long *done, long *long_lines) {
    Template t[LS_MAX_TEMPLATES];
    int nt = parse_program(prog, t);
    long n = 0, line = 0;
    Ctx c;
    c.buf = buf;
    *done = 0;
    if (nt < 0) return -1;
    int has_cr = memchr(buf, '\r', (size_t)len) != NULL;
    while (line < len) {
        const uint8_t *nl = memchr(buf + line, '\n', (size_t)(len - line));
        long next = nl ? nl - buf : len; /* this line's end */
        if (has_cr) {
            const uint8_t *cr = memchr(buf + line, '\r', (size_t)(next - line));
            if (cr) next = cr - buf;
        }
        long end = next - line > line_cap ? line + line_cap : next; /* what is read of it */
        long first_record = n;
        double saved[LS_SUMS];
        memcpy(saved, sums, sizeof saved);
        uint32_t groups_done = 0;
        c.end = end;
        for (int i = 0; i < nt; ++i) {
            long at = line, p = line;
            for (;;) { /* once at the line start; for a template matched anywhere, at each occurrence */
                if (t[i].anywhere) {
                    const uint8_t *lit = t[i].ops + 2;
                    unsigned lit_len = t[i].ops[1], key = t[i].key;
                    if (end - p < (long)lit_len) break;
                    const uint8_t *hit = memchr(buf + p + key, lit[key], (size_t)(end - p - key));
                    if (!hit) break;
                    at = hit - buf - key;
                    p = at + 1;
                    if (end - at < (long)lit_len || !same(buf + at, lit, lit_len)) continue;
                } else {
                    if (groups_done & (1u << t[i].group)) break;
                    if (!t[i].may_be_empty && (line == end || !in_set(t[i].starts, buf[line]))) break;
                }
                clear(&c);
                long e = match(&c, t[i].ops, at, NULL);
                if (e >= 0) {
                    if (t[i].kind == KIND_WEIGHTED) {
                        add(sums, c.slots);
                    } else {
                        if (n == cap) {
                            memcpy(sums, saved, sizeof saved);
                            *done = line;
                            return first_record;
                        }
                        pos_out[n] = at;
                        tmpl_out[n] = i;
                        memcpy(slots_out + n * LS_SLOTS, c.slots, sizeof c.slots);
                        if (t[i].kind == KIND_CLOSE) {
                            memcpy(sums_out + n * LS_SUMS, sums, LS_SUMS * sizeof *sums);
                            memset(sums, 0, LS_SUMS * sizeof *sums);
                        }
                        ++n;
                    }
                    groups_done |= 1u << t[i].group;
                    if (e > at) p = e;
                }
                if (!t[i].anywhere) break;
            }
        }
        *long_lines += next - line > line_cap;
        line = next + 1;
    }
    *done = len;
    return n;
}
