/* Memory that must stay bounded. A loop of 10^6 tiny tasks with no wait inside must keep memory
 * flat: tests/mpi/flatmem.c at 1 and 2 ranks, one worker thread. VmRSS growth after the first
 * 200,000 tasks is checked with a small DAGR_MAX_PENDING (so that the task backlog, which VmRSS
 * remembers at its peak, cannot account for 16 MiB); with the default backlog bound the live heap
 * is checked instead (see flatmem.c). */
#include <criterion/criterion.h>
#include <stdio.h>

#include "mpirun.h"

static void flatmem(int nranks, const char *env, const char *what) {
    mpirun_t r;
    char args[64];
    snprintf(args, sizeof args, "1000000 200000 %s", what);
    mpirun(&r, nranks, env, 150, "flatmem", args);
    mpirun_assert_clean(&r);
    mpirun_assert_result(&r, "flatmem", 1);
    for (int rank = 0; rank < nranks; rank++) {
        const char *line = mpirun_line(&r, rank, "RESULT flatmem", 0);
        long growth = -1, heap = -1, tasks = -1;
        cr_assert(mpirun_value(line, "growth_kib", &growth) &&
                      mpirun_value(line, "heap_growth_kib", &heap) &&
                      mpirun_value(line, "tasks", &tasks),
                  "%s", mpirun_tail(&r));
        cr_expect_lt(heap, 16 * 1024, "rank %d: live heap grew %ld KiB", rank, heap);
        if (what[0] == 'r')
            cr_expect_lt(growth, 16 * 1024, "rank %d: VmRSS grew %ld KiB", rank, growth);
        cr_expect_eq(tasks, 1000000);
    }
    mpirun_free(&r);
}

Test(lib_memory, million_tasks_one_rank, .timeout = 300) {
    flatmem(1, "DAGR_THREADS=1 DAGR_MAX_PENDING=4096", "rss");
}
Test(lib_memory, million_tasks_two_ranks, .timeout = 300) {
    flatmem(2, "DAGR_THREADS=1 DAGR_MAX_PENDING=4096", "rss");
}
Test(lib_memory, million_tasks_two_ranks_default_backlog, .timeout = 300) {
    flatmem(2, "DAGR_THREADS=1", "heap");
}

/* The spill file over a long run (tests/mpi/spillfile.c): handles of sizes that change from
 * cycle to cycle come and go under a 512 KiB limit. The file must stay within 1.5 times what
 * one cycle's handles take in slots (without merging freed slots it grew to 4 times that at
 * 1 rank, 1.6 times at 2), every byte must survive, and once the last handle is gone the file must
 * have given its space back. */
static void spill_file_bounded(int nranks, const char *threads) {
    char dir[256], env[512];
    mpirun_tmpdir(dir, sizeof dir, "spillfile");
    snprintf(env, sizeof env, "DAGR_THREADS=%s DAGR_MEMORY_LIMIT=512K DAGR_SPILL_DIR=%s", threads,
             dir);
    mpirun_t r;
    mpirun(&r, nranks, env, 240, "spillfile", "churn 30");
    mpirun_assert_clean(&r);
    mpirun_assert_result(&r, "spillfile", 1);
    for (int rank = 0; rank < nranks; rank++) {
        const char *line = mpirun_line(&r, rank, "RESULT spillfile", 0);
        long file_max = -1, cycle_max = -1, file_full = -1, file_end = -1, writes = -1;
        cr_assert(mpirun_value(line, "file_max", &file_max) &&
                      mpirun_value(line, "file_full", &file_full) &&
                      mpirun_value(line, "cycle_max", &cycle_max) &&
                      mpirun_value(line, "file_end", &file_end) &&
                      mpirun_value(line, "writes", &writes),
                  "%s", mpirun_tail(&r));
        cr_expect_geq(writes, 10, "rank %d spilled only %ld buffers: the test tests nothing", rank,
                      writes);
        cr_expect_leq(file_max, cycle_max / 2 * 3 + 65536,
                      "rank %d: the spill file reached %ld bytes; one cycle's handles take %ld",
                      rank, file_max, cycle_max);
        cr_expect_geq(file_full, 3 << 20, "rank %d: 4 MiB of data left only %ld bytes in the file",
                      rank, file_full);
        cr_expect_lt(file_end, 1 << 20, "rank %d: the spill file still holds %ld bytes at the end",
                     rank, file_end);
    }
    mpirun_free(&r);
    mpirun_rmdir(dir);
}

Test(lib_memory, spill_file_bounded_one_rank, .timeout = 300) {
    spill_file_bounded(1, "1");
}
Test(lib_memory, spill_file_bounded_two_ranks, .timeout = 300) {
    spill_file_bounded(2, "2");
}
Test(lib_memory, spill_file_bounded_three_ranks, .timeout = 300) {
    spill_file_bounded(3, "1");
}

/* Out of core, a DAGR_WRITE task does not read the spilled buffer it overwrites; a DAGR_RW
 * task does. */
Test(lib_memory, write_access_skips_read_back, .timeout = 120) {
    char dir[256], env[512];
    mpirun_tmpdir(dir, sizeof dir, "spillfile");
    snprintf(env, sizeof env, "DAGR_THREADS=1 DAGR_MEMORY_LIMIT=1536K DAGR_SPILL_DIR=%s", dir);
    mpirun_t r;
    mpirun(&r, 1, env, 60, "spillfile", "overwrite");
    mpirun_assert_clean(&r);
    mpirun_assert_result(&r, "spillfile", 1);
    mpirun_free(&r);
    mpirun_rmdir(dir);
}
