/* Out of core (tests/linalg/linalg_spill.c): posv, gemm, a float copy and plain handles
 * moving between ranks, under memory limits from far below one tile to above the data, at
 * 1-4 ranks; every run must give the hash of the same work without a limit, and a failed
 * read-back of the spill file must fail the run with DAGR_ERR_IO on every rank. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mpirun.h"

/* Runs the work once; checks every rank's result line and returns rank 0's hash. */
static unsigned long long spill(int nranks, const char *env, const char *args, long *writes) {
    mpirun_t r;
    mpirun(&r, nranks, env, 240, "linalg_spill", args);
    mpirun_assert_clean(&r);
    mpirun_assert_result(&r, "spill", 1);
    unsigned long long h = 0;
    *writes = 0;
    for (int k = nranks - 1; k >= 0; k--) {
        const char *line = mpirun_line(&r, k, "RESULT spill", 0);
        const char *p = strstr(line, "hash=");
        unsigned long long hk = 0;
        long w = 0;
        cr_assert(p && sscanf(p, "hash=%llx", &hk) == 1 && mpirun_value(line, "writes", &w), "%s",
                  line);
        cr_assert(k == nranks - 1 || hk == h, "rank %d's hash %016llx differs from rank %d's", k,
                  hk, k + 1);
        h = hk;
        *writes += w;
    }
    mpirun_free(&r);
    return h;
}

/* The same work (args "P Q N NB") without a limit and with each limit: the same hash, and a
 * limit below the data spills. */
static void same_under_limits(int nranks, const char *grid, const char *const *limits, int n) {
    char args[256], dir[256], env[512];
    mpirun_tmpdir(dir, sizeof dir, "spill");
    long writes;
    snprintf(args, sizeof args, "%s 0 run", grid);
    unsigned long long want = spill(nranks, "DAGR_THREADS=2", args, &writes);
    cr_assert_eq(writes, 0, "spilled without a limit");
    for (int k = 0; k < n; k++) {
        snprintf(args, sizeof args, "%s %s run", grid, limits[k]);
        snprintf(env, sizeof env, "DAGR_THREADS=2 DAGR_SPILL_DIR=%s", dir);
        unsigned long long got = spill(nranks, env, args, &writes);
        cr_assert_eq(got, want, "limit %s: hash %016llx, without a limit %016llx", limits[k], got,
                     want);
        cr_assert_gt(writes, 0, "limit %s: nothing was spilled", limits[k]);
        char out[64] = "";
        char cmd[300];
        snprintf(cmd, sizeof cmd, "ls -A %s | wc -l", dir);
        mpirun_sh(cmd, out, sizeof out);
        cr_assert_eq(atoi(out), 0, "limit %s: the spill directory is not empty after the run",
                     limits[k]);
    }
    mpirun_rmdir(dir);
}

/* args: P Q N NB; 1 byte is below every tile (every buffer goes out as soon as it is free);
 * 40K holds a few 8x8.. tiles. */
Test(linalg_spill, one_rank, .timeout = 600) {
    const char *lim[] = {"1", "40K"};
    same_under_limits(1, "1 1 45 8", lim, 2);
}

Test(linalg_spill, two_ranks, .timeout = 600) {
    const char *lim[] = {"1", "24K"};
    same_under_limits(2, "1 2 50 7", lim, 2);
}

Test(linalg_spill, three_ranks, .timeout = 600) {
    const char *lim[] = {"16K"};
    same_under_limits(3, "3 1 37 5", lim, 1);
}

Test(linalg_spill, four_ranks_limit_from_environment, .timeout = 600) {
    char dir[256], env[512];
    mpirun_tmpdir(dir, sizeof dir, "spill-env");
    long w0, w1;
    unsigned long long want = spill(4, "DAGR_THREADS=1", "2 2 33 6 0 run", &w0);
    snprintf(env, sizeof env, "DAGR_THREADS=1 DAGR_MEMORY_LIMIT=8K DAGR_SPILL_DIR=%s", dir);
    unsigned long long got = spill(4, env, "2 2 33 6 env run", &w1);
    cr_assert_eq(got, want, "hash %016llx, without a limit %016llx", got, want);
    cr_assert_gt(w1, 0, "nothing was spilled");
    mpirun_rmdir(dir);
}

/* A traced run: one "spill write" / "spill read" event (cat io, on the rank's pid) per
 * write and read dagr_memory_stats counted, with the same bytes, checked with Python's JSON
 * parser; the summary's file I/O line reports them too. */
Test(linalg_spill, trace_records_spill_io, .timeout = 300) {
    char dir[256], env[600], cmd[1200], out[4096] = "";
    mpirun_tmpdir(dir, sizeof dir, "spill-trace");
    snprintf(env, sizeof env,
             "DAGR_THREADS=2 DAGR_SPILL_DIR=%s DAGR_TRACE=%s/t.json DAGR_SUMMARY=1", dir, dir);
    mpirun_t r;
    mpirun(&r, 2, env, 240, "linalg_spill", "1 2 40 8 8K run");
    mpirun_assert_clean(&r);
    mpirun_assert_result(&r, "spill", 1);
    snprintf(cmd, sizeof cmd,
             "python3 -c \"import json,sys\n"
             "d=json.load(open(sys.argv[1]))\n"
             "ev=d['traceEvents'] if isinstance(d,dict) else d\n"
             "for p in (0,1):\n"
             "  w=[e for e in ev if e.get('pid')==p and e.get('cat')=='io' and e['name']=='spill "
             "write']\n"
             "  rd=[e for e in ev if e.get('pid')==p and e.get('cat')=='io' and e['name']=='spill "
             "read']\n"
             "  print('RANK',p,'writes=%%d reads=%%d wbytes=%%d rbytes=%%d' %% (len(w),len(rd),"
             "sum(e['args']['bytes'] for e in w),sum(e['args']['bytes'] for e in rd)))\" %s/t.json",
             dir);
    cr_assert_eq(mpirun_sh(cmd, out, sizeof out), 0, "%s\n%s", cmd, out);
    for (int k = 0; k < 2; k++) {
        const char *line = mpirun_line(&r, k, "RESULT spill", 0);
        char want[64];
        snprintf(want, sizeof want, "RANK %d ", k);
        const char *got = strstr(out, want);
        cr_assert_not_null(got, "%s", out);
        const char *keys[] = {"writes", "reads", "wbytes", "rbytes"};
        for (int i = 0; i < 4; i++) {
            long a = -1, b = -2;
            cr_assert(mpirun_value(line, keys[i], &a) && mpirun_value(got, keys[i], &b), "%s\n%s",
                      line, got);
            cr_expect_eq(a, b, "rank %d: %s %ld counted, %ld in the trace", k, keys[i], a, b);
            if (i < 2) cr_expect_gt(a, 0, "rank %d: no %s", k, keys[i]);
        }
    }
    cr_expect(strstr(r.output, "file I/O: spill write ") && strstr(r.output, "spill read "),
              "the summary has no spill I/O\n%s", mpirun_tail(&r));
    cr_expect(strstr(r.output, "memory: peak ") && strstr(r.output, "under a 0.008 MB limit"),
              "the summary has no memory line\n%s", mpirun_tail(&r));
    /* dagr-trace prints the same per-rank lines from the file. */
    char tool[8192] = "";
    snprintf(cmd, sizeof cmd, "python3 %s/tools/dagr-trace %s/t.json 2>&1", SOURCE_ROOT, dir);
    cr_assert_eq(mpirun_sh(cmd, tool, sizeof tool), 0, "%s\n%s", cmd, tool);
    for (const char *l = strstr(r.output, "  memory: peak "); l;
         l = strstr(l + 1, "  memory: peak ")) {
        char line[256];
        size_t n = strcspn(l, "\n");
        snprintf(line, sizeof line, "%.*s", (int)(n < 255 ? n : 255), l);
        cr_expect(strstr(tool, line), "dagr-trace lacks \"%s\"\n%s", line, tool);
    }
    mpirun_free(&r);
    mpirun_rmdir(dir);
}

/* The 2nd write to the spill file fails as on a full disk: the buffer stays in memory, the
 * rank says once that it goes over the limit, and the results are those of the run without
 * a limit. */
Test(linalg_spill, write_failure_goes_over_the_limit, .timeout = 300) {
    long w;
    unsigned long long want = spill(1, "DAGR_THREADS=2", "1 1 45 8 0 run", &w);
    mpirun_t r;
    mpirun(&r, 1, "DAGR_THREADS=2 DAGR_SPILL_TEST_FAIL_WRITE=2", 240, "linalg_spill",
           "1 1 45 8 40K run");
    mpirun_assert_clean(&r);
    mpirun_assert_result(&r, "spill", 1);
    const char *line = mpirun_line(&r, 0, "RESULT spill", 0);
    const char *p = strstr(line, "hash=");
    unsigned long long got = 0;
    long failures = -1, writes = -1;
    cr_assert(p && sscanf(p, "hash=%llx", &got) == 1 && mpirun_value(line, "failures", &failures) &&
                  mpirun_value(line, "writes", &writes),
              "%s", line);
    cr_expect_eq(got, want, "hash %016llx, without a limit %016llx", got, want);
    cr_expect_eq(failures, 1, "%s", line);
    cr_expect_gt(writes, 1, "nothing spilled after the failure: %s", line);
    cr_expect(strstr(r.output, "dagr: rank 0: cannot write to the spill file in ") &&
                  strstr(r.output, "No space left on device; going over DAGR_MEMORY_LIMIT"),
              "no warning\n%s", mpirun_tail(&r));
    mpirun_free(&r);
}

/* The 3rd read-back on each rank fails as a disk error would. */
static void readfail(int nranks, const char *args) {
    mpirun_t r;
    mpirun(&r, nranks, "DAGR_THREADS=2 DAGR_SPILL_TEST_FAIL_READ=3", 240, "linalg_spill", args);
    mpirun_assert_clean(&r);
    mpirun_assert_result(&r, "readfail", 1);
    mpirun_free(&r);
}

Test(linalg_spill, read_failure_is_an_io_error, .timeout = 300) {
    readfail(1, "1 1 30 6 1 readfail");
    readfail(2, "2 1 30 6 1 readfail");
}
