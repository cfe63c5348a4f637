/* How long dagr_init takes, against MPI_Init_thread alone in a separate run (a job pays
 * dagr_init once; a ScaLAPACK program through libdagr-scalapack pays it at its first call).
 *
 *   mpiexec.mpich -n 4 build/benchmarks/init_time          dagr_init (it starts MPI)
 *   mpiexec.mpich -n 4 build/benchmarks/init_time --mpi    MPI_Init_thread alone
 *
 * Prints one JSON line on rank 0: the slowest rank's seconds from the start of the call until
 * every rank is through it (a barrier after it), and dagr_finalize's / MPI_Finalize's time on
 * rank 0. */
#include <dagr/dagr.h>

#include <mpi.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
    bool mpi_only = argc > 1 && strcmp(argv[1], "--mpi") == 0;
    double t0 = now();
    dagr_ctx_t *ctx = NULL;
    MPI_Comm comm = MPI_COMM_WORLD;
    if (mpi_only) {
        int got;
        MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &got);
    } else {
        if (dagr_init(&argc, &argv, NULL, &ctx) != DAGR_OK) {
            fprintf(stderr, "dagr_init: %s\n", dagr_last_error());
            return 1;
        }
        comm = dagr_comm(ctx);
    }
    MPI_Barrier(comm);
    double mine = now() - t0, worst = 0;
    int rank, size;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    MPI_Reduce(&mine, &worst, 1, MPI_DOUBLE, MPI_MAX, 0, comm);
    double f0 = now();
    if (mpi_only)
        MPI_Finalize();
    else
        (void)dagr_finalize(&ctx);
    if (rank == 0)
        printf("{\"bench\":\"init_time\",\"what\":\"%s\",\"ranks\":%d,\"init_s\":%.3f,"
               "\"finalize_s\":%.3f}\n",
               mpi_only ? "mpi" : "dagr", size, worst, now() - f0);
    return 0;
}
