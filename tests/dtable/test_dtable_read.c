/* DTable reading and row-wise operations at 1-4 ranks and several partition counts
 * (tests/dtable/dtable_read.c compares each with sqlite3 on the same files). */
#include <criterion/criterion.h>

#include "mpirun.h"

static void run_env(int nranks, const char *env, const char *args) {
    mpirun_t r;
    mpirun(&r, nranks, env, 300, "dtable_read", args);
    mpirun_assert_clean(&r);
    const char *names[] = {"read_all",
                           "fetch_all_ranks",
                           "filter_with_select",
                           "with_column",
                           "filter_empty_and_full",
                           "head",
                           "map_column",
                           "print",
                           "call_errors",
                           "many_files",
                           "empty_files",
                           "malformed"};
    for (size_t k = 0; k < sizeof names / sizeof *names; k++)
        mpirun_assert_result(&r, names[k], 1);
    mpirun_free(&r);
}

static void run(int nranks, const char *args) {
    run_env(nranks, NULL, args);
}

Test(dtable_read, one_rank, .timeout = 300) {
    run(1, "700 0");
    run(1, "300 1");
}

Test(dtable_read, two_ranks, .timeout = 300) {
    run(2, "1000 0");
    run(2, "500 7"); /* more partitions than ranks */
}

Test(dtable_read, three_ranks, .timeout = 300) {
    run(3, "900 4");
}

Test(dtable_read, four_ranks, .timeout = 300) {
    run(4, "1200 0");
    run(4, "10 9"); /* partitions with no record */
}

/* Tables bigger than the memory limit (about 3 MB against 1 MB): partitions spill to disk
 * and come back, and every result is the same. */
Test(dtable_read, memory_limit, .timeout = 300) {
    run_env(2, "DAGR_MEMORY_LIMIT=1M", "30000 8");
}
