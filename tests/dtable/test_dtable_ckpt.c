/* A table checkpointed at one rank count and resumed at another (tests/dtable/dtable_ckpt.c),
 * compared with sqlite3 before and after. */
#include <criterion/criterion.h>
#include <stdio.h>

#include "mpirun.h"

static void round_trip(int write_ranks, int resume_ranks, const char *parts) {
    char dir[256], args[512];
    mpirun_tmpdir(dir, sizeof dir, "dtable-ckpt");
    mpirun_t r;
    snprintf(args, sizeof args, "write %s %s", dir, parts);
    mpirun(&r, write_ranks, NULL, 300, "dtable_ckpt", args);
    mpirun_assert_clean(&r);
    mpirun_assert_result(&r, "checkpoint", 1);
    mpirun_free(&r);
    snprintf(args, sizeof args, "resume %s %s", dir, parts);
    mpirun(&r, resume_ranks, NULL, 300, "dtable_ckpt", args);
    mpirun_assert_clean(&r);
    mpirun_assert_result(&r, "resume", 1);
    mpirun_free(&r);
    mpirun_rmdir(dir);
}

Test(dtable_ckpt, two_to_three_ranks, .timeout = 300) {
    round_trip(2, 3, "5");
}
Test(dtable_ckpt, four_to_one_rank, .timeout = 300) {
    round_trip(4, 1, "7");
}
