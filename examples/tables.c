/* tables: a trips report with DTable, and a least-squares fit of its numbers.
 *
 *   mpiexec.mpich -n 2 build/examples/tables [--rows N] [--dir DIR]
 *
 * Rank 0 writes a trips-like CSV of N rows (default 2,000,000) and a small zones table into
 * DIR (default a temporary directory); then every rank, in the same sequential-looking
 * code:
 *   1. reads both files (every rank parsing its own byte ranges),
 *   2. keeps the sensible trips (filter) and adds a tip percentage (with_column),
 *   3. groups them by pickup zone: trips, revenue, mean tip percentage (groupby_agg),
 *   4. joins the zones' names and boroughs (join), sorts by revenue (sort), writes the
 *      report as CSV (write_csv) and prints its first lines,
 *   5. fits fare = b0 + b1 * distance + b2 * passengers by least squares: the columns become
 *      a DArray (to_darray) and dagr_gels solves it; the coefficients must come out near the
 *      ones the generator used (2.5, 2.1, 0.3), or the program fails.
 * No step waits for the one before: the tasks of all of them are in one graph. */
#include <dagr/dagr.h>

#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int me;

#define TRY(call)                                                                                  \
    do {                                                                                           \
        dagr_status_t s_ = (call);                                                                 \
        if (s_ != DAGR_OK) {                                                                       \
            fprintf(stderr, "rank %d: %s: %s\n", me, #call, dagr_last_error());                    \
            MPI_Abort(MPI_COMM_WORLD, 1);                                                          \
        }                                                                                          \
    } while (0)

static uint64_t rng = 88172645463325252ull;
static double uniform(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0;
}

/* The files: trips with a fare that follows the model plus noise; 60 zones in 5 boroughs. */
static void generate(const char *dir, long rows) {
    char path[512];
    snprintf(path, sizeof path, "%s/zones.csv", dir);
    FILE *z = fopen(path, "w");
    const char *boroughs[5] = {"Manhattan", "Brooklyn", "Queens", "Bronx", "Staten Island"};
    fprintf(z, "zone,borough,name\n");
    for (int k = 0; k < 60; k++)
        fprintf(z, "%d,%s,\"Zone %d, %s\"\n", k, boroughs[k % 5], k, boroughs[k % 5]);
    fclose(z);
    snprintf(path, sizeof path, "%s/trips.csv", dir);
    FILE *f = fopen(path, "w");
    fprintf(f, "id,zone,passengers,distance,fare,tip,pickup\n");
    for (long i = 0; i < rows; i++) {
        int zone = (int)(uniform() * uniform() * 60); /* busy zones first */
        int pass = 1 + (int)(uniform() * 6);
        double dist = 0.2 + 15 * uniform() * uniform();
        double fare = 2.5 + 2.1 * dist + 0.3 * pass + (uniform() - 0.5);
        int day = (int)(uniform() * 28), sec = (int)(uniform() * 86400);
        fprintf(f, "%ld,%d,%d,%.3f,%.2f,", i, zone, pass, dist, fare);
        if (uniform() < 0.8) fprintf(f, "%.2f", fare * 0.2 * uniform());
        fprintf(f, ",2024-02-%02dT%02d:%02d:%02dZ\n", day + 1, sec / 3600, sec / 60 % 60, sec % 60);
    }
    fclose(f);
}

int main(int argc, char **argv) {
    long rows = 2000000;
    const char *dir_arg = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--rows") && i + 1 < argc)
            rows = atol(argv[++i]);
        else if (!strcmp(argv[i], "--dir") && i + 1 < argc)
            dir_arg = argv[++i];
    }
    dagr_ctx_t *ctx;
    if (dagr_init(&argc, &argv, NULL, &ctx) != DAGR_OK) return 1;
    me = dagr_rank(ctx);
    char dir[256] = "";
    if (me == 0) {
        if (dir_arg)
            snprintf(dir, sizeof dir, "%s", dir_arg);
        else if (!mkdtemp(strcpy(dir, "/tmp/dagr-tables-XXXXXX")))
            dir[0] = 0;
        if (dir[0]) generate(dir, rows);
    }
    MPI_Bcast(dir, sizeof dir, MPI_CHAR, 0, MPI_COMM_WORLD);
    if (!dir[0]) MPI_Abort(MPI_COMM_WORLD, 1);
    char trips_csv[512], zones_csv[512], report_csv[512];
    snprintf(trips_csv, sizeof trips_csv, "%s/trips.csv", dir);
    snprintf(zones_csv, sizeof zones_csv, "%s/zones.csv", dir);
    snprintf(report_csv, sizeof report_csv, "%s/report.csv", dir);
    double t0 = MPI_Wtime();

    /* 1-2. Read, clean, derive. */
    dagr_dtable_t *trips, *zones, *ok, *tipped;
    TRY(dagr_dtable_read_csv(ctx, trips_csv, NULL, &trips));
    TRY(dagr_dtable_read_csv(ctx, zones_csv, NULL, &zones));
    TRY(dagr_dtable_filter(trips, "fare > 0 and distance > 0 and passengers >= 1", &ok));
    TRY(dagr_dtable_with_column(ok, "tip_pct", "tip / fare * 100", &tipped));

    /* 3. Per zone. */
    const char *zone_key[1] = {"zone"};
    dagr_agg_t aggs[3] = {{DAGR_AGG_COUNT_ALL, NULL, "trips"},
                          {DAGR_AGG_SUM, "fare", "revenue"},
                          {DAGR_AGG_MEAN, "tip_pct", "mean_tip_pct"}};
    dagr_dtable_t *per_zone, *named, *report;
    TRY(dagr_dtable_groupby_agg(tipped, 1, zone_key, 3, aggs, &per_zone));

    /* 4. Names, order, out. */
    TRY(dagr_dtable_join(per_zone, zones, 1, zone_key, zone_key, NULL, &named));
    const char *by[1] = {"revenue"};
    bool desc[1] = {true};
    TRY(dagr_dtable_sort(named, 1, by, desc, &report));
    TRY(dagr_dtable_write_csv(report, report_csv, NULL));
    TRY(dagr_dtable_print(report, 8, stdout));

    /* 5. fare ~ 1 + distance + passengers. */
    dagr_dtable_t *with_one;
    TRY(dagr_dtable_with_column(ok, "one", "1.0", &with_one));
    const char *xcols[3] = {"one", "distance", "passengers"}, *ycol[1] = {"fare"};
    dagr_darray_t *A, *B;
    TRY(dagr_dtable_to_darray(with_one, 3, xcols, DAGR_DOUBLE, 512, 512, dagr_grid_row_cyclic(),
                              &A));
    TRY(dagr_dtable_to_darray(with_one, 1, ycol, DAGR_DOUBLE, 512, 512, dagr_grid_row_cyclic(),
                              &B));
    TRY(dagr_gels(A, B));
    double b[3];
    for (int k = 0; k < 3; k++)
        TRY(dagr_darray_fetch(B, k, 0, &b[k]));
    int64_t n_trips, n_ok;
    TRY(dagr_dtable_nrows(trips, &n_trips));
    TRY(dagr_dtable_nrows(ok, &n_ok));
    double secs = MPI_Wtime() - t0;
    bool good = fabs(b[0] - 2.5) < 0.1 && fabs(b[1] - 2.1) < 0.02 && fabs(b[2] - 0.3) < 0.05;
    if (me == 0) {
        printf("%lld trips read, %lld kept; report written to %s%s\n", (long long)n_trips,
               (long long)n_ok, report_csv, dir_arg ? "" : " (a temporary directory, removed)");
        printf("fare = %.4f + %.4f * distance + %.4f * passengers (generated with 2.5, 2.1, "
               "0.3): %s\n",
               b[0], b[1], b[2], good ? "ok" : "WRONG");
        printf("%.2f s on %d ranks\n", secs, dagr_size(ctx));
    }
    dagr_darray_destroy(&A);
    dagr_darray_destroy(&B);
    dagr_dtable_t *all[] = {trips, zones, ok, tipped, per_zone, named, report, with_one};
    for (size_t k = 0; k < sizeof all / sizeof *all; k++)
        dagr_dtable_destroy(&all[k]);
    TRY(dagr_finalize(&ctx));
    if (me == 0 && !dir_arg) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", dir);
    }
    return good ? 0 : 1;
}
