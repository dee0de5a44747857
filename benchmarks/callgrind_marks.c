/* Callgrind client requests for Python (via ctypes): zero the counters before a measured step,
 * dump them after it, so one valgrind run yields one instruction count per step.
 * Built at benchmark time by bench_pi_estimate.py; needs valgrind's headers (package valgrind). */
#include <valgrind/callgrind.h>

int marks_running_on_valgrind(void) { return RUNNING_ON_VALGRIND; }
void marks_zero(void) { CALLGRIND_ZERO_STATS; }
void marks_dump(const char *name) { CALLGRIND_DUMP_STATS_AT(name); }
