/* Running a scenario program (tests/mpi) under mpiexec from a Criterion test.
 *
 * A Criterion test binary cannot itself run under mpiexec (its worker processes break the PMI
 * connection), so multi-rank tests launch a scenario program and judge what it printed:
 * scenario lines look like "RANK r RESULT <name> ok <details>" (see tests/mpi/scenario.h).
 * SCENARIO_DIR and MPIEXEC are set by tests/lib/meson.build. */
#ifndef DAGR_TESTS_MPIRUN_H
#define DAGR_TESTS_MPIRUN_H

#include <stddef.h>

typedef struct mpirun {
    int nranks;
    int status;     /* exit status of the launch; 124/137 when the time limit killed it */
    char *output;   /* stdout and stderr together, NUL-terminated */
    double seconds; /* wall time of the run */
    char cmd[1024];
} mpirun_t;

/* Runs `env ENV timeout LIMIT MPIEXEC -n N SCENARIO_DIR/PROG ARGS` with stdin from /dev/null
 * and captures its output. env is a space-separated list of VAR=value (may be NULL); args may
 * be NULL. The child's environment has the DAGR_* variables (DAGR_THREADS, DAGR_COMM_ARENA,
 * DAGR_MAX_PENDING, DAGR_VERBOSE, DAGR_COMM_SHM) removed unless env sets them. Fills *r;
 * release it with mpirun_free. */
void mpirun(mpirun_t *r, int nranks, const char *env, int limit_s, const char *prog,
            const char *args);

void mpirun_free(mpirun_t *r);

/* The nth line (from 0) of the output that starts with "RANK <rank> <prefix>", or NULL. The
 * pointer points into r->output; the line ends at the next '\n'. */
const char *mpirun_line(const mpirun_t *r, int rank, const char *prefix, int n);

/* Number of lines starting with "RANK <rank> <prefix>". */
int mpirun_count(const mpirun_t *r, int rank, const char *prefix);

/* Reads the integer value of "key=" in the line (e.g. key "mismatches"); returns 1 and sets
 * *v when found. */
int mpirun_value(const char *line, const char *key, long *v);

/* The last part of the output (for assertion messages). */
const char *mpirun_tail(const mpirun_t *r);

/* A fresh directory /tmp/dagr-<tag>-XXXXXX for one test's files (asserts it was made). */
void mpirun_tmpdir(char *dir, size_t n, const char *tag);
/* Removes such a directory and everything in it (asserts it went). */
void mpirun_rmdir(const char *dir);

/* Runs a shell command; returns its exit status and appends its output to out (NUL-terminated,
 * at most n bytes in all; out may be NULL). */
int mpirun_sh(const char *cmd, char *out, size_t n);

/* Criterion assertions on a finished run, with the command and the tail of the output in
 * the failure message:
 *   mpirun_assert_exit(r, code)  the launch exited with `code`;
 *   mpirun_assert_clean(r)       exit 0, every rank 0..n-1 printed "DONE failures=0", no rank
 *                                >= n printed anything, and no line says FAIL;
 *   mpirun_assert_result(r, name, times)  every rank printed "RESULT <name> ok ..." exactly
 *                                `times` times. */
void mpirun_assert_exit(const mpirun_t *r, int code);
void mpirun_assert_clean(const mpirun_t *r);
void mpirun_assert_result(const mpirun_t *r, const char *name, int times);

#endif
