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
 *     baseline (SSE2 on x86-64);
 *   1 128-bit byte shuffles for the gather (x86-64: SSSE3; what NEON's vtbl does on the Pi, so
 *     the Pi estimate counts this level);
 *   2 256-bit (x86-64: AVX2) shuffles and loops.
 * The same float operations in the same order at every level, so the same values. */
#if defined(__GNUC__) && defined(__x86_64__)
#define HAVE_X86_CLONES 1
#include <immintrin.h>
#else
#define HAVE_X86_CLONES 0
#endif

/* floats of scratch the caller provides */
long dk_scratch_floats(int in_w, int ch, int out_w) {
    (void)in_w;
    /* part0/1, w0/1, o0/1, g0/1 (the byte gathers write two bytes past their n), and the
     * shuffle plan: a window offset per group of 4 elements and two 16-byte masks per group */
    long n = (long)out_w * ch;
    return 8L * n + 2 + (n / 4 + 1) + 2 * 4 * (n / 4 + 1);
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


/* The shuffle plan of the horizontal pass on bytes. Per group of 4 consecutive output elements:
 * `base`, the offset in the row of a 16-byte window holding all 8 input bytes the group reads
 * (-1 when they span more than 16 bytes, e.g. a strong downscale: that group takes the plain
 * path), and two shuffles that pick each element's first (mask0) and second (mask1) input byte
 * from the window, zero-extended to 32 bits (index 0x80: a zero byte; on NEON's vtbl any index
 * past the table gives a zero too). A window never reaches past the row's last byte. */
static int plan_shuffles(int row_len, int n, const int32_t *o0, const int32_t *o1, int32_t *base,
                         uint8_t *mask0, uint8_t *mask1) {
    const int groups = n / 4;
    for (int g = 0; g < groups; ++g) {
        int lo = o0[4 * g], hi = o0[4 * g];
        for (int e = 0; e < 4; ++e) {
            int a = o0[4 * g + e], b = o1[4 * g + e];
            lo = a < lo ? a : lo; lo = b < lo ? b : lo;
            hi = a > hi ? a : hi; hi = b > hi ? b : hi;
        }
        if (row_len < 16 || hi - lo > 15) {
            base[g] = -1;
            continue;
        }
        int at = lo < row_len - 16 ? lo : row_len - 16; /* hi <= row_len - 1, so hi - at <= 15 */
        base[g] = at;
        for (int e = 0; e < 4; ++e) {
            for (int z = 1; z < 4; ++z) mask0[16 * g + 4 * e + z] = mask1[16 * g + 4 * e + z] = 0x80;
            mask0[16 * g + 4 * e] = (uint8_t)(o0[4 * g + e] - at);
            mask1[16 * g + 4 * e] = (uint8_t)(o1[4 * g + e] - at);
        }
    }
    return groups;
}

/* Everything a horizontal pass on bytes needs, computed once per resize. */
struct taps {
    int n;                            /* output elements per row: out_w * ch */
    const int32_t *o0, *o1;           /* each element's two input bytes */
    const float *w0, *w1;             /* and their weights */
    int in_w, ch, out_w;
    const int32_t *x0, *x1;           /* per output column (the plain gather) */
    uint8_t *g0, *g1;                 /* the plain gather's buffers */
    int groups;                       /* n / 4 */
    const int32_t *base;              /* the shuffle plan */
    const uint8_t *mask0, *mask1;
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

#if HAVE_X86_CLONES
static __attribute__((target("ssse3"))) void horizontal_u8_ssse3(const uint8_t *row,
                                                                 const struct taps *t, float *part) {
    for (int g = 0; g < t->groups; ++g) {
        const int j = 4 * g;
        if (t->base[g] < 0) {
            horizontal_u8_scalar(row, t, j, j + 4, part);
            continue;
        }
        __m128i window = _mm_loadu_si128((const __m128i *)(row + t->base[g]));
        __m128 first = _mm_cvtepi32_ps(_mm_shuffle_epi8(window, _mm_loadu_si128((const __m128i *)(t->mask0 + 16 * g))));
        __m128 second = _mm_cvtepi32_ps(_mm_shuffle_epi8(window, _mm_loadu_si128((const __m128i *)(t->mask1 + 16 * g))));
        __m128 left = _mm_mul_ps(_mm_loadu_ps(t->w0 + j), first);
        __m128 right = _mm_mul_ps(_mm_loadu_ps(t->w1 + j), second);
        _mm_storeu_ps(part + j, _mm_add_ps(left, right));
    }
    horizontal_u8_scalar(row, t, 4 * t->groups, t->n, part);
}

/* two groups at a time: each 128-bit lane shuffles its own group's window */
static __attribute__((target("avx2"))) void horizontal_u8_avx2(const uint8_t *row,
                                                               const struct taps *t, float *part) {
    int g = 0;
    for (; g + 1 < t->groups; g += 2) {
        const int j = 4 * g;
        if (t->base[g] < 0 || t->base[g + 1] < 0) {
            horizontal_u8_scalar(row, t, j, j + 8, part);
            continue;
        }
        __m256i window = _mm256_inserti128_si256(
            _mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(row + t->base[g]))),
            _mm_loadu_si128((const __m128i *)(row + t->base[g + 1])), 1);
        __m256 first = _mm256_cvtepi32_ps(_mm256_shuffle_epi8(window, _mm256_loadu_si256((const __m256i *)(t->mask0 + 16 * g))));
        __m256 second = _mm256_cvtepi32_ps(_mm256_shuffle_epi8(window, _mm256_loadu_si256((const __m256i *)(t->mask1 + 16 * g))));
        __m256 left = _mm256_mul_ps(_mm256_loadu_ps(t->w0 + j), first);
        __m256 right = _mm256_mul_ps(_mm256_loadu_ps(t->w1 + j), second);
        _mm256_storeu_ps(part + j, _mm256_add_ps(left, right));
    }
    horizontal_u8_scalar(row, t, 4 * g, t->n, part);
}
#endif

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
static const struct kernels ssse3 = {1, horizontal_u8_ssse3, vertical_u8_base, vertical_f32_base};
static const struct kernels avx2 = {2, horizontal_u8_avx2, vertical_u8_avx2, vertical_f32_avx2};
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
    uint8_t *mask0 = (uint8_t *)(base + n / 4 + 1), *mask1 = mask0 + 16 * (n / 4 + 1);
    if (!kernels) dk_set_simd(2);
    const struct kernels *k = kernels;
    expand_taps(ch, out_w, x0, x1, a0, a1, o0, o1, w0, w1);
    struct taps t = {n, o0, o1, w0, w1, in_w, ch, out_w, x0, x1, g0, g1, 0, base, mask0, mask1};
    if (u8 && k->level > 0) t.groups = plan_shuffles(in_w * ch, n, o0, o1, base, mask0, mask1);
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

int dk_abi_version(void) { return 6; }
