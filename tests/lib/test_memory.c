/* A loop of 10^6 tiny tasks with no wait inside must keep memory flat: tests/mpi/flatmem.c
 * at 1 and 2 ranks, one worker thread. VmRSS growth after the first 200,000 tasks is checked
 * with a small DAGR_MAX_PENDING (so that the task backlog, which VmRSS remembers at its peak,
 * cannot account for 16 MiB); with the default backlog bound the live heap is checked instead
 * (see flatmem.c). */
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
