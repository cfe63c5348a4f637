/* dagr_checkpoint / dagr_resume at 1-4 ranks (tests/darray/darray_checkpoint.c): a simulation
 * that crashes after a checkpoint, with a torn .tmp left behind, and is started again (on the
 * same grid or another number of ranks) must end with exactly the state of a run that went
 * straight through, having resumed at the last checkpoint; and every error with its status. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mpirun.h"

#include <sys/vfs.h>
#include <unistd.h>

#define N "37"
#define NB "8"
#define STEPS 12
#define EVERY 5

/* The environment of the simulation's runs. */
static const char *sim_env = "DAGR_THREADS=2";

/* Runs the simulation in dir on nranks ranks, grid "P Q"; returns the final hash (0 when the
 * run crashed as asked) and checks the step it resumed at. */
static unsigned long long sim(const char *dir, int nranks, const char *grid, int crash_at,
                              long resumed_at, bool async) {
    char args[512];
    snprintf(args, sizeof args, "run %s %s %s %s %d %d %d%s", grid, N, NB, dir, STEPS, EVERY,
             crash_at, async ? " async" : "");
    mpirun_t r;
    mpirun(&r, nranks, sim_env, 240, "darray_checkpoint", args);
    for (int k = 0; k < nranks; k++) {
        const char *line = mpirun_line(&r, k, "RESUMED", 0);
        long step = -1;
        cr_assert(line && mpirun_value(line, "step", &step) && step == resumed_at,
                  "rank %d resumed at %ld, expected %ld\n%s", k, step, resumed_at, mpirun_tail(&r));
    }
    unsigned long long h = 0;
    if (crash_at) {
        /* The launch fails with 42, or with what mpiexec makes of the ranks still running
         * when the first one is gone: every rank must have said it crashes on purpose. */
        cr_assert(r.status != 0, "the crashing run exited with 0\n%s", mpirun_tail(&r));
        for (int k = 0; k < nranks; k++)
            cr_assert_eq(mpirun_count(&r, k, "CRASH after step"), 1,
                         "rank %d did not crash on purpose\n%s", k, mpirun_tail(&r));
        cr_assert_eq(mpirun_count(&r, 0, "RESULT final"), 0, "%s", mpirun_tail(&r));
    } else {
        mpirun_assert_clean(&r);
        mpirun_assert_result(&r, "final", 1);
        for (int k = nranks - 1; k >= 0; k--) {
            const char *line = mpirun_line(&r, k, "RESULT final", 0);
            const char *p = strstr(line, "hash=");
            unsigned long long hk = 0;
            cr_assert(p && sscanf(p, "hash=%llx", &hk) == 1, "%s", line);
            cr_assert(k == nranks - 1 || hk == h, "rank %d's hash %016llx differs from rank %d's",
                      k, hk, k + 1);
            h = hk;
        }
    }
    mpirun_free(&r);
    return h;
}

/* Straight through on (nranks, grid); crashed after step crash_at on (n1, g1) and started
 * again on (n2, g2): the same final state, resumed at the last checkpoint before the crash.
 * Asynchronous, a crash at a checkpoint step comes while that checkpoint writes: the run
 * resumes at the one before, and ends the same as a synchronous run. */
static void crash_and_resume_as(int nranks, const char *grid, int crash_at, int n1, const char *g1,
                                int n2, const char *g2, bool async) {
    char a[256], b[256], ckpt[300], tmp[320];
    mpirun_tmpdir(a, sizeof a, "ckpt-straight");
    mpirun_tmpdir(b, sizeof b, "ckpt-crash");
    unsigned long long want = sim(a, nranks, grid, 0, 0, false);
    if (async) {
        char c[256];
        mpirun_tmpdir(c, sizeof c, "ckpt-async");
        unsigned long long got = sim(c, nranks, grid, 0, 0, true);
        cr_assert_eq(got, want, "asynchronous checkpoints: hash %016llx, synchronous %016llx", got,
                     want);
        mpirun_rmdir(c);
    }
    sim(b, n1, g1, crash_at, 0, async);
    snprintf(tmp, sizeof tmp, "%s/run.ckpt.tmp", b);
    FILE *f = fopen(tmp, "r");
    cr_assert_not_null(f, "the crash did not leave its torn %s", tmp);
    fclose(f);
    long resumed = crash_at / EVERY * EVERY;
    if (async && crash_at % EVERY == 0) resumed -= EVERY;
    unsigned long long got = sim(b, n2, g2, 0, resumed, async);
    cr_assert_eq(got, want, "resumed run ends with hash %016llx, straight run %016llx", got, want);
    snprintf(ckpt, sizeof ckpt, "%s/run.ckpt", b);
    f = fopen(ckpt, "r");
    cr_assert_not_null(f, "no %s after the run", ckpt);
    fclose(f);
    /* A later checkpoint replaces the torn .tmp (resume itself leaves it alone). */
    f = fopen(tmp, "r");
    if (resumed + EVERY <= STEPS)
        cr_assert_null(f, "%s is still there after a later checkpoint", tmp);
    else
        cr_assert_not_null(f, "%s went away without a later checkpoint", tmp);
    if (f) fclose(f);
    mpirun_rmdir(a);
    mpirun_rmdir(b);
}

static void crash_and_resume(int nranks, const char *grid, int crash_at, int n1, const char *g1,
                             int n2, const char *g2) {
    crash_and_resume_as(nranks, grid, crash_at, n1, g1, n2, g2, false);
}

/* Asynchronous, killed while the checkpoint of step 10 writes: resumed at step 5, on
 * another number of ranks. */
Test(darray_checkpoint, async_killed_while_writing, .timeout = 300) {
    crash_and_resume_as(3, "3 1", 10, 3, "3 1", 2, "1 2", true);
}
/* Asynchronous under a memory limit, where nothing is staged: every write task waits for
 * the thread to open the file and writes its handle itself; killed while writing. */
Test(darray_checkpoint, async_unstaged, .timeout = 300) {
    sim_env = "DAGR_THREADS=2 DAGR_MEMORY_LIMIT=1G";
    crash_and_resume_as(2, "1 2", 10, 2, "1 2", 3, "3 1", true);
}
/* Asynchronous, crashed after step 8 (the checkpoint of step 5 ended): resumed at 5. */
Test(darray_checkpoint, async_crash_between, .timeout = 300) {
    crash_and_resume_as(2, "1 2", 8, 2, "1 2", 4, "2 2", true);
}

Test(darray_checkpoint, one_rank, .timeout = 300) {
    crash_and_resume(1, "1 1", 7, 1, "1 1", 1, "1 1");
}
Test(darray_checkpoint, two_ranks_same_grid, .timeout = 300) {
    crash_and_resume(2, "1 2", 8, 2, "1 2", 2, "1 2");
}
/* Written by 2 ranks on 2 x 1, resumed by 3 ranks on 1 x 3. */
Test(darray_checkpoint, two_to_three_ranks, .timeout = 300) {
    crash_and_resume(2, "2 1", 11, 2, "2 1", 3, "1 3");
}
/* Written by 4 ranks on 2 x 2, resumed by 1 rank. */
Test(darray_checkpoint, four_to_one_rank, .timeout = 300) {
    crash_and_resume(4, "2 2", 6, 4, "2 2", 1, "1 1");
}

/* An asynchronous checkpoint written past the page cache where the file system of dir takes
 * O_DIRECT, through it otherwise or with DAGR_CKPT_DIRECT=0 (env); on tmpfs the page cache
 * is the file either way. shape "N NB": "301 96" gives tiles of 96 x 96 doubles and floats,
 * extents of 9-72 KiB starting anywhere in the file's blocks (all copied before they are
 * written); "1100 256" full double tiles of 512 KiB that start on 4 KiB boundaries in memory
 * and in the file, which the tasks lend to the thread without a copy, until the first extent
 * that is not a whole number of file blocks (the 76 x 76 corner), and copies of the edge
 * tiles (under 256 KiB: not on a 4 KiB boundary in memory) and of everything after it. */
static void async_direct(int nranks, const char *grid, const char *shape, const char *base,
                         const char *env) {
    char dir[256], probe[300], args[512];
    snprintf(dir, sizeof dir, "%s/dagr-ckpt-direct-XXXXXX", base);
    cr_assert_not_null(mkdtemp(dir), "mkdtemp(%s) failed", dir);
    snprintf(probe, sizeof probe, "%s/probe", dir);
    int fd = open(probe, O_CREAT | O_WRONLY | O_DIRECT, 0600);
    struct statfs fs;
    bool tmpfs = statfs(dir, &fs) == 0 && fs.f_type == 0x01021994; /* TMPFS_MAGIC */
    const char *expect = tmpfs ? "any" : fd >= 0 && !env ? "direct" : "cached";
    if (fd >= 0) close(fd);
    unlink(probe);
    snprintf(args, sizeof args, "direct %s %s %s %s", grid, shape, dir, expect);
    char envs[128];
    snprintf(envs, sizeof envs, "DAGR_THREADS=2%s%s", env ? " " : "", env ? env : "");
    mpirun_t r;
    mpirun(&r, nranks, envs, 240, "darray_checkpoint", args);
    mpirun_assert_clean(&r);
    mpirun_assert_result(&r, "ckpt_direct", 1);
    mpirun_free(&r);
    mpirun_rmdir(dir);
}

Test(darray_checkpoint, async_direct_three_ranks, .timeout = 300) {
    async_direct(3, "3 1", "301 96", "/tmp", NULL);
}
/* 1 x 2: a column of tiles is one rank's, adjacent in the file, so the thread writes runs of
 * them in one direct write (96 x 96 doubles are 18 file blocks; the last tile of a column,
 * 13 rows, ends inside a block). */
Test(darray_checkpoint, async_direct_runs_two_ranks, .timeout = 300) {
    async_direct(2, "1 2", "301 96", "/tmp", NULL);
}
/* Lent tiles: the arrays are overwritten right after the call, so a task that completed
 * before the thread wrote its tile would leave the new values in the file. */
Test(darray_checkpoint, async_direct_lent_two_ranks, .timeout = 300) {
    async_direct(2, "1 2", "1100 256", "/tmp", NULL);
}
Test(darray_checkpoint, async_direct_lent_three_ranks, .timeout = 300) {
    async_direct(3, "3 1", "1100 256", "/tmp", NULL);
}
Test(darray_checkpoint, async_direct_off_two_ranks, .timeout = 300) {
    async_direct(2, "1 2", "301 96", "/tmp", "DAGR_CKPT_DIRECT=0");
}
Test(darray_checkpoint, async_direct_tmpfs, .timeout = 300) {
    if (access("/dev/shm", W_OK) != 0) cr_skip_test("no /dev/shm here");
    async_direct(2, "2 1", "301 96", "/dev/shm", NULL);
}

static void errors(int nranks, const char *grid, const char *shape) {
    char dir[256], args[512];
    mpirun_tmpdir(dir, sizeof dir, "ckpt-errors");
    snprintf(args, sizeof args, "errors %s %s %s", grid, shape, dir);
    mpirun_t r;
    mpirun(&r, nranks, "DAGR_THREADS=2", 240, "darray_checkpoint", args);
    mpirun_assert_clean(&r);
    mpirun_assert_result(&r, "ckpt_errors", 1);
    mpirun_free(&r);
    mpirun_rmdir(dir);
}

Test(darray_checkpoint, errors_one_rank, .timeout = 300) {
    errors(1, "1 1", "29 6");
}
Test(darray_checkpoint, errors_three_ranks, .timeout = 300) {
    errors(3, "3 1", "29 6");
}
