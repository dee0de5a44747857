/* Runs model_tools/native/logscan.c over files, for tests/tools/test_log_differential.py, built
 * with AddressSanitizer and UBSan: each file is copied to a heap block of exactly its size (so a
 * read past its end is caught) and scanned whole, with record buffers of 1, 8, 64 and 512 records
 * (calls stopping at every line that does not fit) and line caps of 65536 and 100 bytes.
 * usage: logscan_driver PROGRAM FILE...   exit 0 when every scan finished */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

long ls_scan(const uint8_t *buf, long len, const uint8_t *prog, long line_cap, double *sums, int64_t *pos_out,
             int32_t *tmpl_out, double *slots_out, double *sums_out, long cap, long *done, long *long_lines);

static uint8_t *slurp(const char *path, long *n) {
    FILE *f = fopen(path, "rb");
    if (!f) exit(2);
    fseek(f, 0, SEEK_END);
    *n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *data = malloc(*n ? (size_t)*n : 1);
    if ((long)fread(data, 1, (size_t)*n, f) != *n) exit(2);
    fclose(f);
    return data;
}

int main(int argc, char **argv) {
    long program_len;
    uint8_t *program = slurp(argv[1], &program_len);
    for (int a = 2; a < argc; ++a) {
        long n;
        uint8_t *data = slurp(argv[a], &n);
        for (long cap = 1; cap <= 512; cap *= 8)
            for (int c = 0; c < 2; ++c) {
                double sums[11] = {0};
                long start = 0, long_lines = 0, room = cap;
                while (start < n) {
                    int64_t *pos = malloc((size_t)room * sizeof *pos);
                    int32_t *tmpl = malloc((size_t)room * sizeof *tmpl);
                    double *slots = malloc((size_t)room * 8 * sizeof *slots);
                    double *closed = calloc((size_t)room * 11, sizeof *closed);
                    long done;
                    long got = ls_scan(data + start, n - start, program, c ? 100 : 65536, sums, pos, tmpl, slots,
                                       closed, room, &done, &long_lines);
                    free(pos), free(tmpl), free(slots), free(closed);
                    if (got < 0) return 3;
                    if (done == 0 && got == 0) room *= 4;
                    start += done;
                }
            }
        free(data);
    }
    free(program);
    return 0;
}
