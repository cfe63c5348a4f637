/* Results must not depend on where tasks run (tests/mpi/devices.c): the linear algebra routines,
 * DArray operations and checkpoint/resume give bitwise the same results with 0, 1 and 2 test
 * devices per rank, at 1-4 ranks on several grids, with a device memory budget small enough that
 * copies are evicted; the devices must have run tasks, copied both ways and evicted. */
#include <criterion/criterion.h>
#include <stdio.h>

#include "mpirun.h"

/* One run; returns rank 0's hash and checks every rank printed the same one. */
static long run(int nranks, const char *grid_args, int devices, const char *extra_env,
                const char *dir) {
    char env[256], args[512];
    snprintf(env, sizeof env,
             "DAGR_THREADS=1 DAGR_TEST_DEVICES=%d DAGR_TEST_DEVICE_MEMORY=256K "
             "DAGR_TEST_DEVICE_DELAY=20 %s",
             devices, extra_env);
    snprintf(args, sizeof args, "%s %s/ckpt-%d.h5", grid_args, dir, devices);
    mpirun_t r;
    mpirun(&r, nranks, env, 200, "devices", args);
    mpirun_assert_clean(&r);
    mpirun_assert_result(&r, "devices", 1);
    long hash0 = 0, tasks = 0, evictions = 0, cin = 0, cout = 0;
    for (int rank = 0; rank < nranks; rank++) {
        const char *line = mpirun_line(&r, rank, "RESULT devices", 0);
        long h = 0, t = 0, e = 0, i = 0, o = 0;
        cr_assert(mpirun_value(line, "hash", &h) && mpirun_value(line, "dev_tasks", &t) &&
                      mpirun_value(line, "evictions", &e) && mpirun_value(line, "copies_in", &i) &&
                      mpirun_value(line, "copies_out", &o),
                  "%s", mpirun_tail(&r));
        if (rank == 0) hash0 = h;
        cr_expect_eq(h, hash0, "rank %d's results differ from rank 0's", rank);
        tasks += t, evictions += e, cin += i, cout += o;
    }
    if (devices) {
        cr_expect(tasks > 0 && cin > 0 && cout > 0, "the devices did no work: %s", mpirun_tail(&r));
        cr_expect(evictions > 0, "nothing was evicted under the budget: %s", mpirun_tail(&r));
    } else {
        cr_expect_eq(tasks, 0);
    }
    mpirun_free(&r);
    return hash0;
}

static void same_everywhere(int nranks, const char *grid_args, const char *extra_env) {
    char dir[256];
    mpirun_tmpdir(dir, sizeof dir, "devices");
    long h0 = run(nranks, grid_args, 0, extra_env, dir);
    long h1 = run(nranks, grid_args, 1, extra_env, dir);
    long h2 = run(nranks, grid_args, 2, extra_env, dir);
    cr_expect_eq(h1, h0, "one device per rank changed the results");
    cr_expect_eq(h2, h0, "two devices per rank changed the results");
    mpirun_rmdir(dir);
}

Test(lib_devices, one_rank, .timeout = 300) {
    same_everywhere(1, "1 1 130 32", "");
}
Test(lib_devices, two_ranks_1x2, .timeout = 300) {
    same_everywhere(2, "1 2 150 32", "");
}
Test(lib_devices, three_ranks_3x1, .timeout = 300) {
    same_everywhere(3, "3 1 100 24", "");
}
Test(lib_devices, four_ranks_2x2, .timeout = 300) {
    same_everywhere(4, "2 2 150 32", "");
}
Test(lib_devices, two_ranks_offnode_out_of_core, .timeout = 300) {
    same_everywhere(2, "2 1 120 32", "MPIR_CVAR_NOLOCAL=1 DAGR_MEMORY_LIMIT=256K");
}

/* Lazy write-back (tests/mpi/writeback.c): device tasks' results reach every reader, checked
 * against a serial replay by every rank. Returns the sums of the ranks' device figures. */
typedef struct wb_figures {
    long tasks, cin, cout, writebacks, evictions;
} wb_figures_t;

static wb_figures_t writeback_run(int nranks, const char *env, const char *args) {
    mpirun_t r;
    mpirun(&r, nranks, env, 120, "writeback", args);
    mpirun_assert_clean(&r);
    mpirun_assert_result(&r, "writeback", 1);
    wb_figures_t f = {0};
    for (int rank = 0; rank < nranks; rank++) {
        const char *line = mpirun_line(&r, rank, "RESULT writeback", 0);
        long t = 0, i = 0, o = 0, w = 0, e = 0;
        cr_assert(mpirun_value(line, "dev_tasks", &t) && mpirun_value(line, "copies_in", &i) &&
                      mpirun_value(line, "copies_out", &o) &&
                      mpirun_value(line, "writebacks", &w) && mpirun_value(line, "evictions", &e),
                  "%s", mpirun_tail(&r));
        f.tasks += t, f.cin += i, f.cout += o, f.writebacks += w, f.evictions += e;
    }
    mpirun_free(&r);
    return f;
}

/* A chain of device updates crosses to the host once per tile (at the wait), not once per
 * task as write-through would: 16 tiles x 10 updates, 160 tasks, 16 copies each way. */
Test(lib_devices, writeback_chain_crosses_once, .timeout = 120) {
    wb_figures_t f = writeback_run(1, "DAGR_THREADS=1 DAGR_TEST_DEVICES=1", "16 10 0 1");
    cr_expect_eq(f.tasks, 160);
    cr_expect_eq(f.cin, 16);
    cr_expect_eq(f.cout, 16, "copies out: %ld, expected one per tile", f.cout);
    cr_expect_eq(f.writebacks, 0);
}

/* Host readers, readers on other ranks and host writers between device updates, under a budget
 * that evicts copies newer than the host's (written back first). */
Test(lib_devices, writeback_mixed_one_rank_evicting, .timeout = 120) {
    wb_figures_t f = writeback_run(
        1, "DAGR_THREADS=1 DAGR_TEST_DEVICES=1 DAGR_TEST_DEVICE_MEMORY=48K", "20 12 1 7");
    cr_expect(f.writebacks > 0, "no copy was written back at its eviction");
}
Test(lib_devices, writeback_mixed_two_ranks_two_devices, .timeout = 120) {
    wb_figures_t f = writeback_run(
        2, "DAGR_THREADS=1 DAGR_TEST_DEVICES=2 DAGR_TEST_DEVICE_MEMORY=48K", "20 12 1 7");
    cr_expect(f.tasks > 0 && f.cout > 0);
}
Test(lib_devices, writeback_mixed_three_ranks, .timeout = 120) {
    (void)writeback_run(3, "DAGR_THREADS=1 DAGR_TEST_DEVICES=2 DAGR_TEST_DEVICE_DELAY=20",
                        "17 9 1 3");
}
Test(lib_devices, writeback_offnode_out_of_core, .timeout = 120) {
    (void)writeback_run(2,
                        "DAGR_THREADS=1 DAGR_TEST_DEVICES=2 DAGR_TEST_DEVICE_MEMORY=48K "
                        "DAGR_MEMORY_LIMIT=64K MPIR_CVAR_NOLOCAL=1",
                        "20 12 1 9");
}

/* Strided homes (a ScaLAPACK tile's layout) on devices: packed copies, 2-D copies in and out,
 * the caller's array right and its padding untouched. */
Test(lib_devices, writeback_strided_homes, .timeout = 120) {
    wb_figures_t f = writeback_run(
        3, "DAGR_THREADS=1 DAGR_TEST_DEVICES=2 DAGR_TEST_DEVICE_MEMORY=4K", "0 15 2 5");
    cr_expect(f.tasks > 0, "no task ran on a device");
}
