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
