/* darknet's do_nms_sort suppression for candidates in groups (one class of one frame each),
 * for evaluation's thousands of candidates at threshold 0.005, where the numpy version
 * (edge_app.decode._iou_matrix + _greedy) spends its time building each group's IoU matrix and
 * walking it from Python.
 *
 * boxes: n rows of x1, y1, x2, y2 (double, as region_candidates makes them), the groups one after the other, each best first;
 * starts: groups + 1 row offsets. keep (n bytes) receives 1 for a kept row, 0 for a suppressed
 * one. Within a group, a kept row suppresses every later row whose IoU with it is above the
 * threshold; a suppressed row suppresses nothing. Rows never meet across groups.
 *
 * The IoU is _iou_matrix's, operation for operation in double (-ffp-contract=off: no fused
 * multiply-add), with numpy's minimum and maximum (a NaN operand gives NaN), so each comparison
 * and therefore each kept row is the numpy version's. Pure arithmetic; no allocation.
 */
#include <stdint.h>

static inline double np_min(double a, double b) { return (a < b || a != a) ? a : b; }
static inline double np_max(double a, double b) { return (a > b || a != a) ? a : b; }

static int over(const double *p, const double *q, double area_p, double threshold) {
    double iw = np_min(p[2], q[2]) - np_max(p[0], q[0]);
    double ih = np_min(p[3], q[3]) - np_max(p[1], q[1]);
    double inter = np_max(iw, 0.0) * np_max(ih, 0.0);
    double area_q = (q[2] - q[0]) * (q[3] - q[1]);
    /* a box whose exp(tw) underflowed has no area: max() turns its 0/0 into 0 */
    double iou = inter / np_max(area_p + area_q - inter, 1e-30);
    return iou > threshold;
}

void dk_nms_groups(const double *boxes, const int64_t *starts, int groups, double threshold, uint8_t *keep) {
    for (int g = 0; g < groups; g++) {
        int64_t first = starts[g], end = starts[g + 1];
        for (int64_t i = first; i < end; i++)
            keep[i] = 1;
        for (int64_t i = first; i < end; i++) {
            if (!keep[i])
                continue;
            const double *p = boxes + 4 * i;
            double area_p = (p[2] - p[0]) * (p[3] - p[1]);
            for (int64_t j = i + 1; j < end; j++)
                if (keep[j] && over(p, boxes + 4 * j, area_p, threshold))
                    keep[j] = 0;
        }
    }
}
