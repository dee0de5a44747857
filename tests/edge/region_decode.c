/* A compiled reference for the YOLOv2 region decode and do_nms_sort, written from the algorithm
 * darknet's region layer and darkflow's Cython box constructor both follow (this is not their
 * code): every cell and anchor is decoded (logistic x, y, objectness; exp w, h times the anchor;
 * softmax or logistic class scores), prob = objectness * class probability kept where > thresh,
 * then per class, by falling prob, a kept box zeroes the prob of every later box of that class
 * whose IoU with it is > nms. A box whose prob was zeroed suppresses nothing.
 *
 * Built with cc at test/benchmark time (tests/edge/compiled_reference.py) and called through
 * ctypes: the peer a user who wanted speed would pick instead of a Python loop.
 *
 * raw layout: [num][coords + 1 + classes][h][w], float32 (the IR's output, batch 1).
 * work: n * (4 + 1 + classes) floats, order: n ints, where n = num * h * w; both caller-owned.
 * out: max_out rows of (class, prob, x1, y1, x2, y2), network-relative corners.
 * Returns the number of rows written (at most max_out).
 */
#include <math.h>
#include <stdlib.h>

static float logistic(float x) { return 1.0f / (1.0f + expf(-x)); }

static const float *sort_probs;
static int sort_class;
static int sort_stride;

static int by_prob_desc(const void *a, const void *b)
{
    float pa = sort_probs[*(const int *)a * sort_stride + sort_class];
    float pb = sort_probs[*(const int *)b * sort_stride + sort_class];
    if (pa > pb) return -1;
    if (pa < pb) return 1;
    return *(const int *)a - *(const int *)b;  /* stable: equal probs keep cell order */
}

static float overlap(float c1, float w1, float c2, float w2)
{
    float left = fmaxf(c1 - w1 / 2, c2 - w2 / 2);
    float right = fminf(c1 + w1 / 2, c2 + w2 / 2);
    return right - left;
}

static float box_iou(const float *a, const float *b)
{
    float w = overlap(a[0], a[2], b[0], b[2]);
    float h = overlap(a[1], a[3], b[1], b[3]);
    float inter = (w < 0 || h < 0) ? 0 : w * h;
    float uni = a[2] * a[3] + b[2] * b[3] - inter;
    return uni > 0 ? inter / uni : 0;
}

int region_decode(const float *raw, int num, int classes, int h, int w, const float *anchors,
                  int softmax, float thresh, float nms, float *work, int *order, float *out,
                  int max_out)
{
    const int cells = h * w, entries = 5 + classes, stride = 4 + 1 + classes;
    int kept = 0;
    for (int n = 0; n < num; ++n) {
        for (int i = 0; i < cells; ++i) {
            const float *p = raw + (size_t)n * entries * cells + i;
            float *d = work + (size_t)kept * stride;
            int row = i / w, col = i % w;
            float obj = logistic(p[4 * cells]);
            d[0] = (col + logistic(p[0])) / w;
            d[1] = (row + logistic(p[cells])) / h;
            d[2] = expf(p[2 * cells]) * anchors[2 * n] / w;
            d[3] = expf(p[3 * cells]) * anchors[2 * n + 1] / h;
            float *prob = d + 5;
            if (softmax) {
                float top = -INFINITY, total = 0;
                for (int k = 0; k < classes; ++k) top = fmaxf(top, p[(5 + k) * cells]);
                for (int k = 0; k < classes; ++k) total += prob[k] = expf(p[(5 + k) * cells] - top);
                for (int k = 0; k < classes; ++k) prob[k] /= total;
            } else {
                for (int k = 0; k < classes; ++k) prob[k] = logistic(p[(5 + k) * cells]);
            }
            if (!(obj > thresh)) continue;  /* objectness 0: darknet drops the box before NMS */
            d[4] = obj;
            for (int k = 0; k < classes; ++k) {
                float v = obj * prob[k];
                prob[k] = v > thresh ? v : 0;
            }
            order[kept] = kept;
            ++kept;
        }
    }
    sort_probs = work + 5;
    sort_stride = stride;
    for (int k = 0; k < classes; ++k) {
        sort_class = k;
        qsort(order, kept, sizeof(int), by_prob_desc);
        for (int a = 0; a < kept; ++a) {
            float *da = work + (size_t)order[a] * stride;
            if (da[5 + k] == 0) continue;
            for (int b = a + 1; b < kept; ++b) {
                float *db = work + (size_t)order[b] * stride;
                if (db[5 + k] != 0 && box_iou(da, db) > nms) db[5 + k] = 0;
            }
        }
    }
    int rows = 0;
    for (int j = 0; j < kept && rows < max_out; ++j) {
        const float *d = work + (size_t)j * stride;
        for (int k = 0; k < classes && rows < max_out; ++k) {
            if (d[5 + k] > 0) {
                float *o = out + (size_t)rows * 6;
                o[0] = (float)k;
                o[1] = d[5 + k];
                o[2] = d[0] - d[2] / 2;
                o[3] = d[1] - d[3] / 2;
                o[4] = d[0] + d[2] / 2;
                o[5] = d[1] + d[3] / 2;
                ++rows;
            }
        }
    }
    return rows;
}
