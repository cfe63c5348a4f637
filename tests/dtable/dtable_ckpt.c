/* A table through dagr_checkpoint and dagr_resume, at one rank count and then another.
 *
 * Usage: dtable_ckpt write|resume DIR PARTITIONS
 *
 * write:  reads DIR/trips.csv (rank 0 generates it first) into PARTITIONS partitions, keeps
 *         the rows with fare > 50 and a computed column, checks them against sqlite3 and
 *         writes a checkpoint DIR/tables.ckpt.
 * resume: (any rank count) makes the same handles in the same order, but with a filter that
 *         keeps no row, then resumes: the table must hold the checkpointed rows again, as
 *         sqlite3 computes them, and a further operation on it must work.
 * Prints RANK r RESULT <name> ok|FAIL lines. */
#include "scenario.h"
#include "sqlcmp.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static dagr_ctx_t *ctx;
static int me;

static int same_as_sql(dagr_dtable_t *t, const char *trips, const char *sql, const char *what) {
    const char *names[1] = {"trips"}, *files[1] = {trips};
    int ncols[1] = {8};
    const dagr_coltype_t *types[1] = {sq_trips_types};
    int ok = sq_check_table(t, 1, files, names, ncols, types, sql, false, 1e-12, what);
    MPI_Allreduce(MPI_IN_PLACE, &ok, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    return ok;
}

int main(int argc, char **argv) {
    SC_TRY(dagr_init(&argc, &argv, NULL, &ctx));
    me = dagr_rank(ctx);
    sc_set_rank(me);
    if (argc < 4) {
        sc_say("usage: dtable_ckpt write|resume DIR PARTITIONS");
        return 2;
    }
    bool write = strcmp(argv[1], "write") == 0;
    char trips[300], ckpt[300];
    snprintf(trips, sizeof trips, "%s/trips.csv", argv[2]);
    snprintf(ckpt, sizeof ckpt, "%s/tables.ckpt", argv[2]);
    if (write && me == 0 && sq_gen_trips(trips, 3000, 40, 5, false) != 0)
        sc_say("cannot write %s", trips);
    MPI_Barrier(MPI_COMM_WORLD);
    dagr_csv_opts_t o;
    dagr_csv_opts_init(&o);
    o.partitions = atoi(argv[3]);
    dagr_dtable_t *t = NULL, *f = NULL, *g = NULL;
    SC_TRY(dagr_dtable_read_csv(ctx, trips, &o, &t));
    SC_TRY(dagr_dtable_filter(t, write ? "fare > 50" : "false", &f));
    SC_TRY(dagr_dtable_with_column(f, "x", "fare * 2 + key", &g));
    dagr_dtable_destroy(&t);
    dagr_dtable_destroy(&f);
    const char *sql = "SELECT *, fare * 2 + key FROM trips WHERE fare > 50";
    if (write) {
        int ok = same_as_sql(g, trips, sql, "before");
        ok &= SC_EXPECT_STATUS(dagr_checkpoint(ctx, ckpt), DAGR_OK);
        sc_result("checkpoint", ok, "ranks=%d", dagr_size(ctx));
    } else {
        int ok = SC_EXPECT_STATUS(dagr_resume(ctx, ckpt), DAGR_OK);
        ok &= same_as_sql(g, trips, sql, "resumed");
        dagr_dtable_t *h = NULL;
        SC_TRY(dagr_dtable_filter(g, "x > 150", &h));
        ok &= same_as_sql(h, trips,
                          "SELECT *, fare * 2 + key FROM trips WHERE fare > 50 AND "
                          "fare * 2 + key > 150",
                          "after");
        dagr_dtable_destroy(&h);
        sc_result("resume", ok, "ranks=%d", dagr_size(ctx));
    }
    dagr_dtable_destroy(&g);
    SC_TRY(dagr_finalize(&ctx));
    return sc_exit_code();
}
