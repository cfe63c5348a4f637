/* A loop of 10^6 tiny tasks with no wait inside must keep memory flat: tests/mpi/flatmem.c
 * at 1 and 2 ranks, one worker thread. */
#include <criterion/criterion.h>
#include <stdio.h>

#include "mpirun.h"

static void flatmem(int nranks) {
    mpirun_t r;
    mpirun(&r, nranks, "DAGR_THREADS=1", 150, "flatmem", "1000000 200000");
    mpirun_assert_clean(&r);
    mpirun_assert_result(&r, "flatmem", 1);
    for (int rank = 0; rank < nranks; rank++) {
        const char *line = mpirun_line(&r, rank, "RESULT flatmem", 0);
        long growth = -1, tasks = -1;
        cr_assert(mpirun_value(line, "growth_kib", &growth) && mpirun_value(line, "tasks", &tasks),
                  "%s", mpirun_tail(&r));
        cr_expect_lt(growth, 16 * 1024, "rank %d: VmRSS grew %ld KiB", rank, growth);
        cr_expect_eq(tasks, 1000000);
    }
    mpirun_free(&r);
}

Test(lib_memory, million_tasks_one_rank, .timeout = 300) {
    flatmem(1);
}
Test(lib_memory, million_tasks_two_ranks, .timeout = 300) {
    flatmem(2);
}
