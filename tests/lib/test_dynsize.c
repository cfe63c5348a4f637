/* Handles whose size tasks decide (tests/mpi/dynsize.c): a randomized graph whose tasks write
 * outputs of random sizes (0 bytes included) read on other ranks, against a serial replay, at
 * 1-4 ranks, on one node, between "nodes" (MPICH's network mode) and out of core; bad resizes;
 * checkpoint at one rank count and resume at others. */
#include <criterion/criterion.h>
#include <stdio.h>

#include "mpirun.h"

/* Runs `dynsize random SEED TASKS`; with spill, every rank that owns data must have spilled;
 * with devices, bodies running on test devices must have resized their outputs. */
static void random_graph_on(int nranks, const char *env, int seed, bool spill, bool devices) {
    char args[64];
    snprintf(args, sizeof args, "random %d 600", seed);
    mpirun_t r;
    mpirun(&r, nranks, env, 150, "dynsize", args);
    mpirun_assert_clean(&r);
    mpirun_assert_result(&r, "dynsize", 1);
    long spilled = 0, dev_resizes = 0;
    for (int rank = 0; rank < nranks; rank++) {
        const char *line = mpirun_line(&r, rank, "RESULT dynsize", 0);
        long bad = -1, writes = -1, tasks = -1, dr = -1;
        cr_assert(mpirun_value(line, "bad", &bad) && mpirun_value(line, "spill_writes", &writes) &&
                      mpirun_value(line, "tasks", &tasks) && mpirun_value(line, "dev_resizes", &dr),
                  "%s", mpirun_tail(&r));
        dev_resizes += dr;
        cr_expect_eq(bad, 0);
        cr_expect_eq(tasks, 600);
        spilled += writes;
        if (!spill) cr_expect_eq(writes, 0, "rank %d spilled without a memory limit", rank);
    }
    if (spill) cr_expect_gt(spilled, 0, "nothing was spilled under the limit: %s", mpirun_tail(&r));
    if (devices)
        cr_expect_gt(dev_resizes, 0, "no body resized its output on a device: %s", mpirun_tail(&r));
    mpirun_free(&r);
}

static void random_graph(int nranks, const char *env, int seed, bool spill) {
    random_graph_on(nranks, env, seed, spill, false);
}

/* On test devices (whose budget makes copies of every size come and go), off node and out of
 * core: the device copies follow each version's size. */
Test(lib_dynsize, two_ranks_devices, .timeout = 200) {
    random_graph_on(2, "DAGR_THREADS=1 DAGR_TEST_DEVICES=2 DAGR_TEST_DEVICE_MEMORY=64K", 8, false,
                    true);
}
Test(lib_dynsize, three_ranks_devices_offnode_out_of_core, .timeout = 200) {
    random_graph_on(3,
                    "DAGR_THREADS=1 DAGR_TEST_DEVICES=1 DAGR_TEST_DEVICE_MEMORY=64K "
                    "DAGR_MEMORY_LIMIT=64K MPIR_CVAR_NOLOCAL=1",
                    9, true, true);
}

Test(lib_dynsize, one_rank, .timeout = 200) {
    random_graph(1, "DAGR_THREADS=2", 1, false);
}
Test(lib_dynsize, two_ranks, .timeout = 200) {
    random_graph(2, "DAGR_THREADS=2", 2, false);
}
Test(lib_dynsize, three_ranks, .timeout = 200) {
    random_graph(3, "DAGR_THREADS=1", 3, false);
}
Test(lib_dynsize, four_ranks, .timeout = 200) {
    random_graph(4, "DAGR_THREADS=1", 4, false);
}
Test(lib_dynsize, three_ranks_mpi_path, .timeout = 200) {
    random_graph(3, "DAGR_THREADS=1 DAGR_COMM_SHM=0", 5, false);
}
Test(lib_dynsize, two_ranks_offnode, .timeout = 200) {
    random_graph(2, "DAGR_THREADS=1 MPIR_CVAR_NOLOCAL=1", 6, false);
}
Test(lib_dynsize, out_of_core_one_rank, .timeout = 200) {
    random_graph(1, "DAGR_THREADS=2 DAGR_MEMORY_LIMIT=30K", 7, true);
}
Test(lib_dynsize, out_of_core_three_ranks, .timeout = 200) {
    random_graph(3, "DAGR_THREADS=1 DAGR_MEMORY_LIMIT=30K", 8, true);
}

static void errors(int nranks) {
    mpirun_t r;
    mpirun(&r, nranks, "DAGR_THREADS=1", 90, "dynsize", "errors");
    mpirun_assert_clean(&r);
    mpirun_assert_result(&r, "dynsize", 1);
    mpirun_free(&r);
}

Test(lib_dynsize, bad_resizes_one_rank, .timeout = 200) {
    errors(1);
}
Test(lib_dynsize, bad_resizes_three_ranks, .timeout = 200) {
    errors(3);
}

/* Written at 3 ranks (out of core, so that versions come back from the spill file), read at 1,
 * 2 and 4. */
Test(lib_dynsize, checkpoint_resume_other_rank_counts, .timeout = 300) {
    char dir[256], args[512];
    mpirun_tmpdir(dir, sizeof dir, "dynsize");
    snprintf(args, sizeof args, "ckpt_write %s/dyn.h5", dir);
    mpirun_t r;
    mpirun(&r, 3, "DAGR_THREADS=1 DAGR_MEMORY_LIMIT=64K", 90, "dynsize", args);
    mpirun_assert_clean(&r);
    mpirun_assert_result(&r, "dynsize", 1);
    mpirun_free(&r);
    snprintf(args, sizeof args, "ckpt_read %s/dyn.h5", dir);
    for (int n = 1; n <= 4; n *= 2) {
        mpirun(&r, n, "DAGR_THREADS=1", 90, "dynsize", args);
        mpirun_assert_clean(&r);
        mpirun_assert_result(&r, "dynsize", 1);
        mpirun_free(&r);
    }
    mpirun_rmdir(dir);
}
