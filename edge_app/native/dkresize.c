/* darknet's resize_image arithmetic (image.c), for the device's hot path and evaluate's
 * reference mode. Pure arithmetic: the sampling taps (input indices and float weights) are
 * computed once per size by edge_app.preprocess.darknet_taps and passed in.
 *
 * For every output pixel, in darknet's order and in C float, with no FMA contraction (built with
 * -ffp-contract=off, so each product and sum is rounded as darknet rounds it):
 *   part(row)  = a0[c] * in[row][x0[c]] + a1[c] * in[row][x1[c]]     horizontal pass
 *   out[r][c]  = b0[r] * part(y0[r]) + b1[r] * part(y1[r])           vertical pass
 * darknet's special cases (the last column copies the last input column, the last row keeps only
 * its (1-dy) term) are taps with a zero second weight: adding 0*x changes no value.
 *
 * Only the input rows the vertical pass reads get a horizontal pass, each once for the pair of
 * consecutive output rows that share it (two row buffers, swapped as the rows advance).
 * Images are rows of `in_w * ch` interleaved channels, `in_stride` elements apart.
 * The loops are written so compilers vectorize them; on x86 an AVX2 clone is picked at run
 * time when the CPU has it (the same operations, so the same values).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define LITTLE_ENDIAN_CPU 1
#else
#define LITTLE_ENDIAN_CPU 0
#endif

/* Three levels, picked at run time from what the CPU has, or by dk_set_simd:
 *   0 plain C: the gather in scalar code, the loops vectorized by the compiler for the target's
 *     baseline (SSE2 on x86-64; nothing on Raspberry Pi OS's armhf, whose baseline has no NEON,
 *     and GCC does not vectorize float loops with ARMv7 NEON, which flushes denormals);
 *   1 128-bit byte shuffles for the gather, 128-bit loops: x86-64 SSSE3, ARM NEON (vtbl; the Pi
 *     3B+'s Cortex-A53 has it, a Pi 1 or Zero does not);
 *   2 256-bit (x86-64: AVX2) shuffles and loops.
 * The same float operations in the same order at every level, so the same values. NEON flushes
 * denormals to zero and rounds to nearest: no value here is denormal (weights are 0 or at least
 * a float ulp of the sampling position, pixels 0 or at least 1), so its results are the same. */
#if defined(__GNUC__) && defined(__x86_64__)
#define HAVE_X86_CLONES 1
#include <immintrin.h>
#else
#define HAVE_X86_CLONES 0
#endif
#if defined(__GNUC__) && (defined(__aarch64__) || (defined(__arm__) && defined(__ARM_FP)))
#define HAVE_NEON_CLONE 1
#include <arm_neon.h> /* usable without -mfpu=neon (GCC >= 8): the functions below ask for it */
#if defined(__aarch64__)
#define NEON_ATTR
#else
#include <sys/auxv.h>
#define NEON_ATTR __attribute__((target("fpu=neon")))
#define HWCAP_NEON_BIT (1UL << 12) /* HWCAP_NEON of the kernel's asm/hwcap.h */
#endif
#else
#define HAVE_NEON_CLONE 0
#endif

/* floats of scratch the caller provides */
long dk_scratch_floats(int in_w, int ch, int out_w) {
    (void)in_w;
    /* part0/1, w0/1, o0/1, g0/1 (the byte gathers write two bytes past their n), and the
     * shuffle plan: a window offset per group of 4 elements, 128 bytes per pair of groups
     * (32 floats), 64 bytes to align them */
    long n = (long)out_w * ch;
    return 8L * n + 2 + (n / 4 + 1) + 32 * (n / 8) + 16;
}

/* per output element j = c * ch + k: its two input elements and weights */
static void expand_taps(int ch, int out_w, const int32_t *x0, const int32_t *x1, const float *a0,
                        const float *a1, int32_t *o0, int32_t *o1, float *w0, float *w1) {
    for (int c = 0; c < out_w; ++c)
        for (int k = 0; k < ch; ++k) {
            int j = c * ch + k;
            o0[j] = x0[c] * ch + k;
            o1[j] = x1[c] * ch + k;
            w0[j] = a0[c];
            w1[j] = a1[c];
        }
}

/* The horizontal pass in two steps: the gather (scalar loads: no SIMD gather is fast on
 * bytes), then the arithmetic over contiguous arrays (vectorized). */
static void gather_u8(const uint8_t *restrict row, int in_w, int ch, int out_w,
                      const int32_t *restrict x0, const int32_t *restrict x1,
                      uint8_t *restrict g0, uint8_t *restrict g1) {
    int c = 0;
    if (ch == 3 && LITTLE_ENDIAN_CPU) {
        /* BGR, the two taps side by side (x1 = x0 + 1, all but the last columns): one 8-byte
         * read holds both pixels of a column; two columns' pixels are packed into one 8-byte
         * write to each of g0 and g1 (its last two bytes are overwritten by the next write).
         * x0 grows with c, so the columns whose read stays inside the row (3 * x0 + 8 <=
         * 3 * in_w) come first. */
        int fast = 0;
        while (fast < out_w && x1[fast] == x0[fast] + 1 && x0[fast] <= in_w - 3) ++fast;
        const uint64_t pixel = 0xffffff;
        for (; c + 1 < fast; c += 2) {
            uint64_t first, second;
            memcpy(&first, row + 3 * x0[c], 8);
            memcpy(&second, row + 3 * x0[c + 1], 8);
            uint64_t left = (first & pixel) | ((second & pixel) << 24);
            uint64_t right = ((first >> 24) & pixel) | (((second >> 24) & pixel) << 24);
            memcpy(g0 + 3 * c, &left, 8);
            memcpy(g1 + 3 * c, &right, 8);
        }
    }
    for (; c < out_w; ++c) {
        memcpy(g0 + c * ch, row + (ptrdiff_t)x0[c] * ch, (size_t)ch);
        memcpy(g1 + c * ch, row + (ptrdiff_t)x1[c] * ch, (size_t)ch);
    }
}

static void weigh_u8(const uint8_t *restrict g0, const uint8_t *restrict g1, int n,
                     const float *restrict w0, const float *restrict w1,
                     float *restrict part) {
    for (int j = 0; j < n; ++j) {
        float left = w0[j] * (float)g0[j];
        float right = w1[j] * (float)g1[j];
        part[j] = left + right;
    }
}

static void horizontal_f32(const float *restrict row, int n, const int32_t *restrict o0,
                           const int32_t *restrict o1, const float *restrict w0,
                           const float *restrict w1, float *restrict part) {
    for (int j = 0; j < n; ++j) {
        float left = w0[j] * row[o0[j]];
        float right = w1[j] * row[o1[j]];
        part[j] = left + right;
    }
}


#define ATTR
#define NAME(f) f##_base
#include "dkresize_kernels.h"
#undef ATTR
#undef NAME
#if HAVE_X86_CLONES
#define ATTR __attribute__((target("avx2")))
#define NAME(f) f##_avx2
#include "dkresize_kernels.h"
#undef ATTR
#undef NAME
#endif

/* The shuffle plan of the horizontal pass on bytes, for pairs of groups of 4 consecutive output
 * elements (8 elements a pair). Per group, `base`: the offset in the row of a 16-byte window
 * holding all 8 input bytes the group reads (-1 when they span more than 16 bytes, e.g. a strong
 * downscale: that pair takes the scalar path; a window never reaches past the row's last byte).
 * Per pair, one 64-byte-aligned record, read front to back by every level: each group's two
 * shuffles, picking each element's first (mask0) and second (mask1) input byte from its window,
 * zero-extended to 32 bits (index 0x80: a zero byte; on NEON's vtbl any index past the table
 * gives a zero too), then the 8 elements' weights. */
struct pair_plan {
    uint8_t mask0[2][16];
    uint8_t mask1[2][16];
    float w0[8];
    float w1[8];
};

static int plan_shuffles(int row_len, int n, const int32_t *o0, const int32_t *o1, const float *w0,
                         const float *w1, int32_t *base, struct pair_plan *plan) {
    const int pairs = n / 8;
    for (int g = 0; g < 2 * pairs; ++g) {
        struct pair_plan *pp = plan + g / 2;
        int lo = o0[4 * g], hi = o0[4 * g];
        for (int e = 0; e < 4; ++e) {
            int a = o0[4 * g + e], b = o1[4 * g + e];
            lo = a < lo ? a : lo; lo = b < lo ? b : lo;
            hi = a > hi ? a : hi; hi = b > hi ? b : hi;
            pp->w0[4 * (g % 2) + e] = w0[4 * g + e];
            pp->w1[4 * (g % 2) + e] = w1[4 * g + e];
        }
        if (row_len < 16 || hi - lo > 15) {
            base[g] = -1;
            continue;
        }
        int at = lo < row_len - 16 ? lo : row_len - 16; /* hi <= row_len - 1, so hi - at <= 15 */
        base[g] = at;
        for (int e = 0; e < 4; ++e) {
            for (int z = 1; z < 4; ++z) pp->mask0[g % 2][4 * e + z] = pp->mask1[g % 2][4 * e + z] = 0x80;
            pp->mask0[g % 2][4 * e] = (uint8_t)(o0[4 * g + e] - at);
            pp->mask1[g % 2][4 * e] = (uint8_t)(o1[4 * g + e] - at);
        }
    }
    return pairs;
}

/* Everything a horizontal pass on bytes needs, computed once per resize. */
struct taps {
    int n;                            /* output elements per row: out_w * ch */
    const int32_t *o0, *o1;           /* each element's two input bytes */
    const float *w0, *w1;             /* and their weights */
    int in_w, ch, out_w;
    const int32_t *x0, *x1;           /* per output column (the plain gather) */
    uint8_t *g0, *g1;                 /* the plain gather's buffers */
    int pairs;                        /* the shuffle plan: n / 8 pairs of groups */
    const int32_t *base;
    const struct pair_plan *plan;
};

/* the elements [from, to) one by one: as the loops compute them, in scalar code */
static void horizontal_u8_scalar(const uint8_t *row, const struct taps *t, int from, int to,
                                 float *part) {
    for (int j = from; j < to; ++j) {
        float left = t->w0[j] * (float)row[t->o0[j]];
        float right = t->w1[j] * (float)row[t->o1[j]];
        part[j] = left + right;
    }
}

/* The loop every shuffle level shares: a pair of groups at a time, by PAIR (an expression of
 * base, pp and out, the pair's 8 output floats), or in scalar code when a group's window does not
 * fit; the elements after the last pair in scalar code. */
#define SHUFFLE_PASS(PAIR)                                                                     \
    do {                                                                                       \
        const int pairs = t->pairs; /* in locals: a vector store may alias *t */               \
        const int32_t *restrict base = t->base;                                                \
        const struct pair_plan *restrict pp = t->plan;                                         \
        for (int p = 0; p < pairs; ++p, base += 2, ++pp) {                                     \
            float *out = part + 8 * p;                                                         \
            if ((base[0] | base[1]) < 0)                                                       \
                horizontal_u8_scalar(row, t, 8 * p, 8 * p + 8, part);                          \
            else                                                                               \
                PAIR;                                                                          \
        }                                                                                      \
        horizontal_u8_scalar(row, t, 8 * pairs, t->n, part);                                   \
    } while (0)

#if HAVE_X86_CLONES
static __attribute__((target("ssse3"))) __m128 group_ssse3(const uint8_t *row, int32_t base,
                                                            const struct pair_plan *pp, int half) {
    __m128i window = _mm_loadu_si128((const __m128i *)(row + base));
    __m128 first = _mm_cvtepi32_ps(_mm_shuffle_epi8(window, _mm_load_si128((const __m128i *)pp->mask0[half])));
    __m128 second = _mm_cvtepi32_ps(_mm_shuffle_epi8(window, _mm_load_si128((const __m128i *)pp->mask1[half])));
    __m128 left = _mm_mul_ps(_mm_load_ps(pp->w0 + 4 * half), first);
    __m128 right = _mm_mul_ps(_mm_load_ps(pp->w1 + 4 * half), second);
    return _mm_add_ps(left, right);
}

static __attribute__((target("ssse3"))) void pair_ssse3(const uint8_t *row, const int32_t *base,
                                                        const struct pair_plan *pp, float *out) {
    _mm_storeu_ps(out, group_ssse3(row, base[0], pp, 0));
    _mm_storeu_ps(out + 4, group_ssse3(row, base[1], pp, 1));
}

static __attribute__((target("ssse3"))) void horizontal_u8_ssse3(const uint8_t *row,
                                                                 const struct taps *t, float *part) {
    SHUFFLE_PASS(pair_ssse3(row, base, pp, out));
}

/* the vertical pass on 128-bit vectors: cvtps2dq rounds half to even (the default MXCSR mode),
 * as the plain loop's 1.5 * 2^23 trick does, for every value in [0, 256) */
static __attribute__((target("ssse3"))) void vertical_u8_ssse3(const float *part0, const float *part1,
                                                               float b0, float b1, uint8_t *out, int n) {
    const __m128 top = _mm_set1_ps(b0), bottom = _mm_set1_ps(b1);
    int j = 0;
    for (; j + 16 <= n; j += 16) {
        __m128i q[4];
        for (int k = 0; k < 4; ++k) {
            __m128 a = _mm_mul_ps(top, _mm_loadu_ps(part0 + j + 4 * k));
            __m128 b = _mm_mul_ps(bottom, _mm_loadu_ps(part1 + j + 4 * k));
            q[k] = _mm_cvtps_epi32(_mm_add_ps(a, b));
        }
        __m128i lo = _mm_packs_epi32(q[0], q[1]), hi = _mm_packs_epi32(q[2], q[3]);
        _mm_storeu_si128((__m128i *)(out + j), _mm_packus_epi16(lo, hi));
    }
    vertical_u8_base(part0 + j, part1 + j, b0, b1, out + j, n - j);
}

/* each 128-bit lane shuffles its own group's window */
static __attribute__((target("avx2"))) void pair_avx2(const uint8_t *row, const int32_t *base,
                                                      const struct pair_plan *pp, float *out) {
    __m256i window = _mm256_inserti128_si256(
        _mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(row + base[0]))),
        _mm_loadu_si128((const __m128i *)(row + base[1])), 1);
    __m256 first = _mm256_cvtepi32_ps(_mm256_shuffle_epi8(window, _mm256_load_si256((const __m256i *)pp->mask0)));
    __m256 second = _mm256_cvtepi32_ps(_mm256_shuffle_epi8(window, _mm256_load_si256((const __m256i *)pp->mask1)));
    __m256 left = _mm256_mul_ps(_mm256_load_ps(pp->w0), first);
    __m256 right = _mm256_mul_ps(_mm256_load_ps(pp->w1), second);
    _mm256_storeu_ps(out, _mm256_add_ps(left, right));
}

static __attribute__((target("avx2"))) void horizontal_u8_avx2(const uint8_t *row,
                                                               const struct taps *t, float *part) {
    SHUFFLE_PASS(pair_avx2(row, base, pp, out));
}
#endif


#if HAVE_NEON_CLONE
static NEON_ATTR uint8x16_t shuffle_neon(uint8x16_t window, const uint8_t *mask) {
    uint8x16_t m = vld1q_u8(mask);
#if defined(__aarch64__)
    return vqtbl1q_u8(window, m);
#else
    uint8x8x2_t table = {{vget_low_u8(window), vget_high_u8(window)}};
    return vcombine_u8(vtbl2_u8(table, vget_low_u8(m)), vtbl2_u8(table, vget_high_u8(m)));
#endif
}

static NEON_ATTR float32x4_t group_neon(const uint8_t *row, int32_t base, const struct pair_plan *pp,
                                        int half) {
    uint8x16_t window = vld1q_u8(row + base);
    float32x4_t first = vcvtq_f32_u32(vreinterpretq_u32_u8(shuffle_neon(window, pp->mask0[half])));
    float32x4_t second = vcvtq_f32_u32(vreinterpretq_u32_u8(shuffle_neon(window, pp->mask1[half])));
    float32x4_t left = vmulq_f32(vld1q_f32(pp->w0 + 4 * half), first);
    float32x4_t right = vmulq_f32(vld1q_f32(pp->w1 + 4 * half), second);
    return vaddq_f32(left, right);
}

static NEON_ATTR void pair_neon(const uint8_t *row, const int32_t *base, const struct pair_plan *pp,
                                float *out) {
    vst1q_f32(out, group_neon(row, base[0], pp, 0));
    vst1q_f32(out + 4, group_neon(row, base[1], pp, 1));
}

static NEON_ATTR void horizontal_u8_neon(const uint8_t *row, const struct taps *t, float *part) {
    SHUFFLE_PASS(pair_neon(row, base, pp, out));
}

static NEON_ATTR uint32x4_t vertical4_neon(const float *part0, const float *part1, float b0, float b1) {
    const float32x4_t magic = vdupq_n_f32(12582912.0f);
    float32x4_t top = vmulq_n_f32(vld1q_f32(part0), b0);
    float32x4_t bottom = vmulq_n_f32(vld1q_f32(part1), b1);
    float32x4_t v = vsubq_f32(vaddq_f32(vaddq_f32(top, bottom), magic), magic);
    return vcvtq_u32_f32(v); /* an integer in [0, 255] already */
}

static NEON_ATTR void vertical_u8_neon(const float *part0, const float *part1, float b0, float b1,
                                       uint8_t *out, int n) {
    int j = 0;
    for (; j + 8 <= n; j += 8) {
        uint16x8_t both = vcombine_u16(vmovn_u32(vertical4_neon(part0 + j, part1 + j, b0, b1)),
                                       vmovn_u32(vertical4_neon(part0 + j + 4, part1 + j + 4, b0, b1)));
        vst1_u8(out + j, vmovn_u16(both));
    }
    vertical_u8_base(part0 + j, part1 + j, b0, b1, out + j, n - j);
}
#endif

/* the plain horizontal pass: scalar gather, then the compiler-vectorized arithmetic */
static void horizontal_u8_plain(const uint8_t *row, const struct taps *t, float *part) {
    gather_u8(row, t->in_w, t->ch, t->out_w, t->x0, t->x1, t->g0, t->g1);
    weigh_u8(t->g0, t->g1, t->n, t->w0, t->w1, part);
}

struct kernels {
    int level;
    void (*horizontal_u8)(const uint8_t *, const struct taps *, float *);
    void (*vertical_u8)(const float *, const float *, float, float, uint8_t *, int);
    void (*vertical_f32)(const float *, const float *, float, float, float *, int);
};
static const struct kernels plain = {0, horizontal_u8_plain, vertical_u8_base, vertical_f32_base};
#if HAVE_X86_CLONES
static const struct kernels ssse3 = {1, horizontal_u8_ssse3, vertical_u8_ssse3, vertical_f32_base};
static const struct kernels avx2 = {2, horizontal_u8_avx2, vertical_u8_avx2, vertical_f32_avx2};
#endif
#if HAVE_NEON_CLONE
static const struct kernels neon = {1, horizontal_u8_neon, vertical_u8_neon, vertical_f32_base};
#endif
static const struct kernels *kernels = NULL;

/* The highest level up to `level` the CPU has (see the top of this file); returns it. */
int dk_set_simd(int level) {
    kernels = &plain;
#if HAVE_X86_CLONES
    __builtin_cpu_init();
    if (level >= 1 && __builtin_cpu_supports("ssse3")) kernels = &ssse3;
    if (level >= 2 && __builtin_cpu_supports("avx2")) kernels = &avx2;
#endif
#if HAVE_NEON_CLONE && defined(__aarch64__)
    if (level >= 1) kernels = &neon;
#elif HAVE_NEON_CLONE
    if (level >= 1 && (getauxval(AT_HWCAP) & HWCAP_NEON_BIT)) kernels = &neon;
#endif
    return kernels->level;
}
/* One resize; `u8` says whether `in` and `out` are uint8_t (else float). */
static void resize(const void *in, int in_stride, int in_w, int ch, void *out, int out_h, int out_w,
                   const int32_t *x0, const int32_t *x1, const float *a0, const float *a1,
                   const int32_t *y0, const int32_t *y1, const float *b0, const float *b1,
                   float *scratch, int u8) {
    const int n = out_w * ch;
    float *part0 = scratch, *part1 = scratch + n, *w0 = scratch + 2 * n, *w1 = scratch + 3 * n;
    int32_t *o0 = (int32_t *)(scratch + 4 * n), *o1 = (int32_t *)(scratch + 5 * n);
    uint8_t *g0 = (uint8_t *)(scratch + 6 * n), *g1 = (uint8_t *)(scratch + 7 * n + 1); /* n+4 bytes apart at least */
    int32_t *base = (int32_t *)(scratch + 8 * n + 2);
    struct pair_plan *plan = (struct pair_plan *)(((uintptr_t)(base + n / 4 + 1) + 63) & ~(uintptr_t)63);
    if (!kernels) dk_set_simd(2);
    const struct kernels *k = kernels;
    expand_taps(ch, out_w, x0, x1, a0, a1, o0, o1, w0, w1);
    struct taps t = {n, o0, o1, w0, w1, in_w, ch, out_w, x0, x1, g0, g1, 0, base, plan};
    if (u8 && k->level > 0) t.pairs = plan_shuffles(in_w * ch, n, o0, o1, w0, w1, base, plan);
    int held0 = -1, held1 = -1; /* which input row each part buffer holds */
    for (int r = 0; r < out_h; ++r) {
        for (int which = 0; which < 2; ++which) {
            int want = which ? y1[r] : y0[r];
            if (want == (which ? held1 : held0)) continue;
            if (!which && want == held1) { /* the last bottom row is this top row */
                float *t = part0; part0 = part1; part1 = t;
                held0 = held1; held1 = -1;
                continue;
            }
            float *part = which ? part1 : part0;
            if (u8) {
                k->horizontal_u8((const uint8_t *)in + (ptrdiff_t)want * in_stride, &t, part);
            } else {
                horizontal_f32((const float *)in + (ptrdiff_t)want * in_stride, n, o0, o1, w0, w1,
                               part);
            }
            if (which) held1 = want; else held0 = want;
        }
        if (u8)
            k->vertical_u8(part0, part1, b0[r], b1[r], (uint8_t *)out + (ptrdiff_t)r * n, n);
        else
            k->vertical_f32(part0, part1, b0[r], b1[r], (float *)out + (ptrdiff_t)r * n, n);
    }
}

/* u8 frame → u8 network input (the device) */
void dk_resize_u8(const uint8_t *in, int in_stride, int in_w, int ch, uint8_t *out, int out_h,
                  int out_w, const int32_t *x0, const int32_t *x1, const float *a0, const float *a1,
                  const int32_t *y0, const int32_t *y1, const float *b0, const float *b1,
                  float *scratch) {
    resize(in, in_stride, in_w, ch, out, out_h, out_w, x0, x1, a0, a1, y0, y1, b0, b1, scratch, 1);
}

/* float → float, bit for bit darknet's values (evaluate's reference mode) */
void dk_resize_f32(const float *in, int in_stride, int in_w, int ch, float *out, int out_h,
                   int out_w, const int32_t *x0, const int32_t *x1, const float *a0,
                   const float *a1, const int32_t *y0, const int32_t *y1, const float *b0,
                   const float *b1, float *scratch) {
    resize(in, in_stride, in_w, ch, out, out_h, out_w, x0, x1, a0, a1, y0, y1, b0, b1, scratch, 0);
}

int dk_abi_version(void) { return 10; }
