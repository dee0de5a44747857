/* The vectorizable loops of dkresize.c, included once per instruction set with ATTR (the
 * target attribute) and NAME (the suffixed function name) defined by the includer. */
static ATTR void NAME(vertical_u8)(const float *restrict part0, const float *restrict part1, float b0,
                               float b1, uint8_t *restrict out, int n) {
    for (int j = 0; j < n; ++j) {
        float top = b0 * part0[j];
        float bottom = b1 * part1[j];
        float v = top + bottom;
        /* round half to even, as cv2.convertScaleAbs does: adding and removing 1.5 * 2^23
         * leaves the float rounded to an integer in the default rounding mode. No clamp needed:
         * from u8 pixels and weights >= 0 summing to 1 (to an ulp) v lies in [0, 255.0001]. */
        out[j] = (uint8_t)(int)((v + 12582912.0f) - 12582912.0f);
    }
}

static ATTR void NAME(vertical_f32)(const float *restrict part0, const float *restrict part1, float b0,
                                float b1, float *restrict out, int n) {
    for (int j = 0; j < n; ++j) {
        float top = b0 * part0[j];
        float bottom = b1 * part1[j];
        out[j] = top + bottom;
    }
}

