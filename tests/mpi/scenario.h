/* Helpers shared by the multi-rank scenario programs in tests/mpi.
 *
 * A scenario is a plain MPI program run by a Criterion test under mpiexec. Every rank prints
 * one line per result, "RANK <r> RESULT <name> ok <details>" or "RANK <r> RESULT <name> FAIL
 * <details>", and explanatory "RANK <r> FAIL file:line: ..." lines for each failed check; the
 * program exits non-zero when any check failed on that rank. Lines are written with a single
 * write and flushed, so that mpiexec does not interleave them. */
#ifndef DAGR_TESTS_SCENARIO_H
#define DAGR_TESTS_SCENARIO_H

#include <stddef.h>
#include <stdint.h>

#include <dagr/dagr.h>

/* Records the rank used to prefix every line (call once the rank is known). */
void sc_set_rank(int rank);

/* Number of failed checks on this rank so far. */
int sc_failures(void);

/* Prints "RANK r <text>" as one line. */
void sc_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Records a failed check and prints "RANK r FAIL file:line: <text>". */
void sc_fail_at(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prints "RANK r RESULT <name> ok|FAIL <details>"; ok is taken from `ok`. */
void sc_result(const char *name, int ok, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Checks a condition; on failure records it with the printf-style explanation. Evaluates to
 * the condition so callers can count. */
#define SC_CHECK(cond, ...)                                                                        \
    ((cond) ? 1 : (sc_fail_at(__FILE__, __LINE__, "check '" #cond "' failed: " __VA_ARGS__), 0))

/* Checks that a dagr call returned `want`; prints both names and dagr_last_error otherwise. */
#define SC_EXPECT_STATUS(call, want) sc_expect_status_at(__FILE__, __LINE__, #call, (call), (want))
int sc_expect_status_at(const char *file, int line, const char *what, dagr_status_t got,
                        dagr_status_t want);

/* Waits (dagr_wait_all) and checks that the wait returned `want` and, when `has` is not NULL,
 * that dagr_last_error() contains `has`; `what` names the case in the failure line. Evaluates
 * to 1 when both hold. */
#define SC_EXPECT_WAIT(ctx, want, has, what)                                                       \
    sc_expect_wait_at(__FILE__, __LINE__, (ctx), (want), (has), (what))
int sc_expect_wait_at(const char *file, int line, dagr_ctx_t *ctx, dagr_status_t want,
                      const char *has, const char *what);

/* Checks that a dagr call returned DAGR_OK; aborts the scenario (exit 2) otherwise, because
 * nothing after it would mean anything. */
#define SC_TRY(call) sc_try_at(__FILE__, __LINE__, #call, (call))
void sc_try_at(const char *file, int line, const char *what, dagr_status_t st);

/* Ends the scenario: prints "RANK r DONE failures=K" and returns the exit code. */
int sc_exit_code(void);

/* Deterministic pseudo-random numbers (splitmix64): the same seed gives the same stream on
 * every rank. */
typedef struct sc_rng {
    uint64_t s;
} sc_rng_t;

static inline uint64_t sc_mix(uint64_t z) {
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static inline uint64_t sc_next(sc_rng_t *r) {
    r->s += 0x9e3779b97f4a7c15ull;
    return sc_mix(r->s);
}

/* Uniform integer in [0, n). */
static inline int sc_below(sc_rng_t *r, int n) {
    return (int)(sc_next(r) % (uint64_t)n);
}

/* A task body shared by several scenarios: access 0 (RW) holds a uint64 x, the argument block
 * a uint64 j; x = 3 x + j (order-sensitive, so a wrong dependency order shows). */
dagr_task_result_t sc_k_rw(const dagr_task_view_t *t);

/* Monotonic wall clock in seconds (CLOCK_MONOTONIC: one clock for every process on a host). */
double sc_now(void);

/* Sleeps for ms milliseconds. */
void sc_sleep_ms(int ms);

/* Resident set size of this process in KiB (VmRSS), or -1. */
long sc_rss_kib(void);

/* Integer sum / max over a communicator (helpers for "did it run anywhere" flags). */
long sc_allreduce_sum(MPI_Comm comm, long v);
long sc_allreduce_max(MPI_Comm comm, long v);

/* ---- DArray helpers (sc_darray.c) for the darray and linalg scenarios ---- */

/* "float", "double" or "int64". */
const char *sc_dtype_name(dagr_dtype_t t);
/* Unit roundoff as LAPACK's dlamch('E'): 2^-24 for float, 2^-53 for double. */
double sc_eps(dagr_dtype_t t);
/* The leading dimension of a gathered m-row matrix: max(1, m). */
static inline int64_t sc_ld(int64_t m) {
    return m > 1 ? m : 1;
}
/* A's contents on every rank as doubles, column-major with ld = sc_ld(m) (free it). */
double *sc_gather(const dagr_darray_t *A);
/* A = x (column-major doubles, ld = sc_ld(m), the same on every rank), converted to A's
 * dtype. Waits. */
void sc_scatter(dagr_darray_t *A, const double *x);
/* Largest column sum of |a| of the m x n matrix a (leading dimension ld); NaN if any entry is
 * NaN. */
double sc_norm1(const double *a, int64_t m, int64_t n, int64_t ld);

#endif
