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

/* The vectorizable loops are compiled twice on x86-64: for the baseline (SSE2, 128-bit like the
 * Pi's NEON) and for AVX2, picked at run time when the CPU has it, or by dk_set_simd (the Pi
 * estimate counts baseline instructions). Same operations, so the same values. */
#if defined(__GNUC__) && defined(__x86_64__)
#define HAVE_AVX2_CLONE 1
#else
#define HAVE_AVX2_CLONE 0
#endif

/* floats of scratch the caller provides */
long dk_scratch_floats(int in_w, int ch, int out_w) {
    (void)in_w;
    return 8L * out_w * ch + 2; /* the byte gathers write two bytes past their out_w * ch */
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
#if HAVE_AVX2_CLONE
#define ATTR __attribute__((target("avx2")))
#define NAME(f) f##_avx2
#include "dkresize_kernels.h"
#undef ATTR
#undef NAME
#endif

struct kernels {
    void (*weigh_u8)(const uint8_t *, const uint8_t *, int, const float *, const float *, float *);
    void (*vertical_u8)(const float *, const float *, float, float, uint8_t *, int);
    void (*vertical_f32)(const float *, const float *, float, float, float *, int);
};
static const struct kernels base = {weigh_u8_base, vertical_u8_base, vertical_f32_base};
#if HAVE_AVX2_CLONE
static const struct kernels avx2 = {weigh_u8_avx2, vertical_u8_avx2, vertical_f32_avx2};
#endif
static const struct kernels *kernels = NULL;

/* level: 0 the baseline loops, 1 AVX2 when the CPU has it (the default). Returns the level in use. */
int dk_set_simd(int level) {
    kernels = &base;
#if HAVE_AVX2_CLONE
    __builtin_cpu_init();
    if (level > 0 && __builtin_cpu_supports("avx2")) kernels = &avx2;
#endif
    return kernels == &base ? 0 : 1;
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
    if (!kernels) dk_set_simd(1);
    const struct kernels *k = kernels;
    expand_taps(ch, out_w, x0, x1, a0, a1, o0, o1, w0, w1);
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
                gather_u8((const uint8_t *)in + (ptrdiff_t)want * in_stride, in_w, ch, out_w, x0, x1,
                          g0, g1);
                k->weigh_u8(g0, g1, n, w0, w1, part);
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

int dk_abi_version(void) { return 5; }
