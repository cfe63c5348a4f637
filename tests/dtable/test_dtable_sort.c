/* dagr_dtable_sort at 1-4 ranks and several partition counts (tests/dtable/dtable_sort.c
 * compares each sort with sqlite3's ORDER BY ... NULLS LAST on the same file). */
#include <criterion/criterion.h>

#include "mpirun.h"

static void run(int nranks, const char *args) {
    mpirun_t r;
    mpirun(&r, nranks, NULL, 300, "dtable_sort", args);
    mpirun_assert_clean(&r);
    const char *names[] = {"float_asc",
                           "float_desc",
                           "int_skewed_stable",
                           "string",
                           "timestamp",
                           "bool",
                           "negative_zero_and_unique",
                           "multi_key",
                           "sort_of_sort",
                           "skewed_balanced",
                           "nan_inf_order",
                           "long_strings",
                           "empty_table",
                           "empty_partitions",
                           "one_partition",
                           "more_partitions_than_rows",
                           "call_errors"};
    for (size_t k = 0; k < sizeof names / sizeof *names; k++)
        mpirun_assert_result(&r, names[k], 1);
    mpirun_free(&r);
}

Test(dtable_sort, one_rank, .timeout = 300) {
    run(1, "1500 1"); /* one partition: a local sort */
    run(1, "1500 3");
}

Test(dtable_sort, two_ranks, .timeout = 300) {
    run(2, "2000 0");
    run(2, "1200 7"); /* more partitions than ranks */
}

Test(dtable_sort, three_ranks, .timeout = 300) {
    run(3, "2500 3"); /* more than 256 rows per partition: sampled splitters */
    run(3, "900 7");
}

Test(dtable_sort, four_ranks, .timeout = 300) {
    run(4, "1600 5");
    run(4, "12 9"); /* partitions with no row */
}
