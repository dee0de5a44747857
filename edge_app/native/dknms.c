/* darknet's do_nms_sort suppression for candidates in groups (one class of one frame each),
 * for evaluation's thousands of candidates at threshold 0.005, where the numpy version
 * (edge_app.decode._iou_matrix + _greedy) spends its time building each group's IoU matrix and
 * walking it from Python.
 *
 * x1, y1, x2, y2: the n rows' box corners (double, as region_candidates makes them), one array
 * each; the groups one after the other, each best first; starts: groups + 1 row offsets. keep
 * (n bytes) receives 1 for a kept row, 0 for a suppressed one. Within a group, a kept row
 * suppresses every later row whose IoU with it is above the threshold; a suppressed row
 * suppresses nothing. Rows never meet across groups.
 *
 * The IoU is _iou_matrix's, operation for operation in double (-ffp-contract=off: no fused
 * multiply-add), with numpy's minimum and maximum (a NaN operand gives NaN), so each comparison
 * and therefore each kept row is the numpy version's. A kept row's overlaps with the rows after
 * it are computed in blocks without branches, which compilers vectorize; whether a row was
 * already suppressed only matters for the rows it suppresses in turn.
 */
#include <stdint.h>

#define BLOCK 256

static inline double np_min(double a, double b) { return (a < b || a != a) ? a : b; }
static inline double np_max(double a, double b) { return (a > b || a != a) ? a : b; }

void dk_nms_groups(const double *x1, const double *y1, const double *x2, const double *y2,
                   const int64_t *starts, int groups, double threshold, uint8_t *keep) {
    double iou[BLOCK];
    for (int g = 0; g < groups; g++) {
        int64_t first = starts[g], end = starts[g + 1];
        for (int64_t i = first; i < end; i++)
            keep[i] = 1;
        for (int64_t i = first; i < end; i++) {
            if (!keep[i])
                continue;
            const double px1 = x1[i], py1 = y1[i], px2 = x2[i], py2 = y2[i];
            const double area_p = (px2 - px1) * (py2 - py1);
            for (int64_t from = i + 1; from < end; from += BLOCK) {
                const int m = (int)(end - from < BLOCK ? end - from : BLOCK);
                const double *qx1 = x1 + from, *qy1 = y1 + from, *qx2 = x2 + from, *qy2 = y2 + from;
                for (int k = 0; k < m; k++) {
                    double iw = np_min(px2, qx2[k]) - np_max(px1, qx1[k]);
                    double ih = np_min(py2, qy2[k]) - np_max(py1, qy1[k]);
                    double inter = np_max(iw, 0.0) * np_max(ih, 0.0);
                    double area_q = (qx2[k] - qx1[k]) * (qy2[k] - qy1[k]);
                    /* a box whose exp(tw) underflowed has no area: max() turns its 0/0 into 0 */
                    iou[k] = inter / np_max(area_p + area_q - inter, 1e-30);
                }
                for (int k = 0; k < m; k++)
                    keep[from + k] &= (uint8_t)!(iou[k] > threshold);
            }
        }
    }
}

/* decode.nms for every frame of a batch in one call: what evaluation's decode_batch otherwise
 * does frame by frame from Python (200 frames of an untrained model's 600 candidates each: the
 * sorts and the calls cost more than the suppression).
 *
 * Rows: the batch's candidates, frame by frame (frame_starts: frames + 1 row offsets); corners
 * x1..y2 (double), score (float32), class_id (int64). out (room for every row) receives the
 * kept rows, frame by frame, each frame's best first, exactly as decode.nms orders them: ties
 * by row, except in a frame of more than `ties_by_class_above` rows (decode._SINGLE_MATRIX_MAX),
 * where tied rows come class by class. Returns how many rows were kept. threshold <= 0 keeps
 * every row in score order, ties by row. Suppression: within one class of one frame, in score order (ties by row), as
 * dk_nms_groups. Returns -1 if scratch memory could not be had.
 */
#include <stdlib.h>
#include <string.h>

typedef struct {
    float score;
    int64_t cls;
    int64_t row;
} cand_t;

/* Orders of candidates (each a strict total order: rows are unique), and a merge sort
 * specialised for each: qsort's calls through a comparator pointer were half of this file's time
 * on an untrained model's frames. */
static inline int score_first(const cand_t *a, const cand_t *b) {  /* best first, ties by row */
    return a->score > b->score || (a->score == b->score && a->row < b->row);
}

static inline int score_then_class(const cand_t *a, const cand_t *b) {  /* ties by class, then row */
    if (a->score != b->score)
        return a->score > b->score;
    return a->cls < b->cls || (a->cls == b->cls && a->row < b->row);
}

static inline int class_then_score(const cand_t *a, const cand_t *b) {  /* per class, best first */
    if (a->cls != b->cls)
        return a->cls < b->cls;
    return score_first(a, b);
}

#define RUN 16
#define DEFINE_SORT(NAME, BEFORE)                                                              \
    static void NAME(cand_t *a, cand_t *tmp, int64_t n) {                                        \
        for (int64_t lo = 0; lo < n; lo += RUN) { /* insertion sort of runs of RUN */          \
            const int64_t hi = lo + RUN < n ? lo + RUN : n;                                      \
            for (int64_t i = lo + 1; i < hi; i++) {                                              \
                const cand_t v = a[i];                                                           \
                int64_t j = i;                                                                   \
                for (; j > lo && BEFORE(&v, &a[j - 1]); j--)                                     \
                    a[j] = a[j - 1];                                                             \
                a[j] = v;                                                                        \
            }                                                                                    \
        }                                                                                        \
        cand_t *src = a, *dst = tmp;                                                             \
        for (int64_t width = RUN; width < n; width *= 2) { /* then merges, bottom up */          \
            for (int64_t lo = 0; lo < n; lo += 2 * width) {                                      \
                const int64_t mid = lo + width < n ? lo + width : n;                             \
                const int64_t hi = lo + 2 * width < n ? lo + 2 * width : n;                      \
                int64_t i = lo, j = mid, k = lo;                                                 \
                while (i < mid && j < hi)                                                        \
                    dst[k++] = BEFORE(&src[j], &src[i]) ? src[j++] : src[i++];                   \
                while (i < mid)                                                                  \
                    dst[k++] = src[i++];                                                         \
                while (j < hi)                                                                   \
                    dst[k++] = src[j++];                                                         \
            }                                                                                    \
            cand_t *swap = src;                                                                  \
            src = dst;                                                                           \
            dst = swap;                                                                          \
        }                                                                                        \
        if (src != a)                                                                            \
            memcpy(a, src, (size_t)n * sizeof(cand_t));                                          \
    }

DEFINE_SORT(sort_score_first, score_first)
DEFINE_SORT(sort_score_then_class, score_then_class)
DEFINE_SORT(sort_class_then_score, class_then_score)

int64_t dk_nms_frames(const double *x1, const double *y1, const double *x2, const double *y2,
                      const float *score, const int64_t *class_id, const int64_t *frame_starts,
                      int frames, double threshold, int64_t ties_by_class_above, int64_t *out) {
    int64_t largest = 0, kept_total = 0;
    for (int f = 0; f < frames; f++)
        if (frame_starts[f + 1] - frame_starts[f] > largest)
            largest = frame_starts[f + 1] - frame_starts[f];
    if (largest == 0)
        return 0;
    cand_t *cands = malloc((size_t)largest * sizeof(cand_t));
    cand_t *scratch = malloc((size_t)largest * sizeof(cand_t));
    double *corners = malloc((size_t)largest * 4 * sizeof(double));
    int64_t *starts = malloc((size_t)(largest + 1) * sizeof(int64_t));
    uint8_t *keep = malloc((size_t)largest);
    if (!cands || !scratch || !corners || !starts || !keep) {
        free(cands); free(scratch); free(corners); free(starts); free(keep);
        return -1;
    }
    double *gx1 = corners, *gy1 = corners + largest, *gx2 = corners + 2 * largest, *gy2 = corners + 3 * largest;
    for (int f = 0; f < frames; f++) {
        const int64_t first = frame_starts[f], n = frame_starts[f + 1] - first;
        if (n == 0)
            continue;
        for (int64_t k = 0; k < n; k++) {
            cands[k].score = score[first + k];
            cands[k].cls = class_id[first + k];
            cands[k].row = first + k;
        }
        if (n < 2 || threshold <= 0) {  /* as nms(): a NaN threshold suppresses nothing, below */
            sort_score_first(cands, scratch, n);
            for (int64_t k = 0; k < n; k++)
                out[kept_total++] = cands[k].row;
            continue;
        }
        sort_class_then_score(cands, scratch, n);
        int groups = 0;
        for (int64_t k = 0; k < n; k++) {
            const int64_t r = cands[k].row;
            gx1[k] = x1[r]; gy1[k] = y1[r]; gx2[k] = x2[r]; gy2[k] = y2[r];
            if (k == 0 || cands[k].cls != cands[k - 1].cls)
                starts[groups++] = k;
        }
        starts[groups] = n;
        dk_nms_groups(gx1, gy1, gx2, gy2, starts, groups, threshold, keep);
        int64_t m = 0;
        for (int64_t k = 0; k < n; k++)
            if (keep[k])
                cands[m++] = cands[k];
        if (n > ties_by_class_above)
            sort_score_then_class(cands, scratch, m);
        else
            sort_score_first(cands, scratch, m);
        for (int64_t k = 0; k < m; k++)
            out[kept_total++] = cands[k].row;
    }
    free(cands); free(scratch); free(corners); free(starts); free(keep);
    return kept_total;
}
