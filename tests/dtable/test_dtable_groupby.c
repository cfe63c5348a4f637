/* DTable group-by at 1-4 ranks and several partition counts (tests/dtable/dtable_groupby.c
 * compares each result with sqlite3's GROUP BY on the same file). */
#include <criterion/criterion.h>

#include "mpirun.h"

static void run(int nranks, const char *args) {
    mpirun_t r;
    mpirun(&r, nranks, NULL, 300, "dtable_groupby", args);
    mpirun_assert_clean(&r);
    const char *names[] = {"one_key",
                           "two_keys",
                           "string_key",
                           "bool_key",
                           "timestamp_key",
                           "float_key",
                           "three_keys_and_key_aggregated",
                           "null_groups",
                           "empty_table",
                           "empty_partitions",
                           "no_aggregates",
                           "names_and_chain",
                           "int64_overflow",
                           "input_error",
                           "call_errors"};
    for (size_t k = 0; k < sizeof names / sizeof *names; k++)
        mpirun_assert_result(&r, names[k], 1);
    mpirun_free(&r);
}

Test(dtable_groupby, one_rank, .timeout = 300) {
    run(1, "1500 0");
    run(1, "800 3");
}

Test(dtable_groupby, two_ranks, .timeout = 300) {
    run(2, "2000 0");
    run(2, "700 7"); /* more partitions than ranks */
}

Test(dtable_groupby, three_ranks, .timeout = 300) {
    run(3, "1500 1"); /* one partition: the other ranks hold none */
    run(3, "900 4");
}

Test(dtable_groupby, four_ranks, .timeout = 300) {
    run(4, "2500 0");
    run(4, "300 7");
}
