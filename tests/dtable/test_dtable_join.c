/* DTable joins at 1-4 ranks and several partition counts (tests/dtable/dtable_join.c compares
 * each with sqlite3 on the same files). */
#include <criterion/criterion.h>

#include "mpirun.h"

/* args: NTRIPS NDIMS NKEYS LPARTS RPARTS */
static void run(int nranks, const char *args) {
    mpirun_t r;
    mpirun(&r, nranks, NULL, 300, "dtable_join", args);
    mpirun_assert_clean(&r);
    const char *names[] = {"join_inner",
                           "join_left",
                           "join_right",
                           "join_full",
                           "join_semi",
                           "join_anti",
                           "join_schema",
                           "join_two_keys",
                           "join_string_key_suffix",
                           "join_bool_float_keys",
                           "join_filtered",
                           "join_empty_right",
                           "join_empty_left",
                           "join_call_errors",
                           "broadcast_forced",
                           "broadcast_auto"};
    for (size_t k = 0; k < sizeof names / sizeof *names; k++)
        mpirun_assert_result(&r, names[k], 1);
    mpirun_free(&r);
}

Test(dtable_join, one_rank, .timeout = 300) {
    run(1, "800 120 60 0 0");
    run(1, "500 90 40 1 3");
}

Test(dtable_join, two_ranks, .timeout = 300) {
    run(2, "1000 150 70 0 0");
    run(2, "600 80 50 7 3"); /* more partitions than ranks, left and right differ */
}

Test(dtable_join, three_ranks, .timeout = 300) {
    run(3, "900 100 60 3 7");
}

Test(dtable_join, four_ranks, .timeout = 300) {
    run(4, "1200 200 90 0 0");
    run(4, "40 5 30 9 1"); /* partitions with no record, few dims */
}
