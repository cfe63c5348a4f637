/* Whether a pull (MPI_Rget from MPI_Win_allocate memory) completes while the target computes:
 * the question behind the off-node design in lib/comm_rma.c. Plain MPI, no dagr.
 *
 *   MPIR_CVAR_NOLOCAL=1 mpiexec.mpich -n 2 build/benchmarks/rma_pull [--bytes N] [--total N]
 *
 * Rank 0 reads `total` bytes (default 2 GB) from rank 1's window in MPI_Rget calls of `bytes`
 * (default 16 MiB; from four places in turn, so that caches do not hold them), each waited for
 * with MPI_Test, three times: while rank 1 waits in
 * MPI_Barrier ("idle"), while it computes for 3 s calling nothing ("busy"), and while it
 * computes calling MPI_Test on a pending receive every ~50 us, as dagr's progress thread polls
 * ("busy_polling"). One JSON line per case on rank 0: GB/s. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { IDLE, BUSY, BUSY_POLLING };
static const char *const names[] = {"idle", "busy", "busy_polling"};

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* About 3 s of arithmetic, polling MPI every ~50 us when asked. */
static void compute(int mode) {
    MPI_Request req = MPI_REQUEST_NULL;
    char byte;
    if (mode == BUSY_POLLING) MPI_Irecv(&byte, 1, MPI_BYTE, 0, 77, MPI_COMM_WORLD, &req);
    volatile double x = 0;
    for (double t0 = now(); now() - t0 < 3.0;) {
        for (int i = 0; i < 20000; i++)
            x += i * 1e-9;
        int flag;
        if (mode == BUSY_POLLING) MPI_Test(&req, &flag, MPI_STATUS_IGNORE);
    }
    if (mode == BUSY_POLLING) {
        MPI_Cancel(&req);
        MPI_Wait(&req, MPI_STATUS_IGNORE);
    }
}

int main(int argc, char **argv) {
    int got, rank, size;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &got);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    long bytes = 16L << 20, total = 2000000000L;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--bytes")) bytes = atol(argv[i + 1]);
        if (!strcmp(argv[i], "--total")) total = atol(argv[i + 1]);
    }
    if (size != 2 || bytes < 1 || bytes > (1L << 30) || total < bytes) {
        if (rank == 0) fprintf(stderr, "rma_pull: 2 ranks, 1 <= --bytes <= 1 GiB <= --total\n");
        MPI_Finalize();
        return 2;
    }
    int places = bytes <= (64L << 20) ? 4 : 1;
    char *base, *dst = malloc((size_t)bytes);
    MPI_Win win;
    MPI_Win_allocate((MPI_Aint)bytes * places, 1, MPI_INFO_NULL, MPI_COMM_WORLD, &base, &win);
    memset(base, rank + 1, (size_t)bytes * (size_t)places);
    memset(dst, 0, (size_t)bytes);
    MPI_Win_lock_all(MPI_MODE_NOCHECK, win);
    for (int mode = IDLE; mode <= BUSY_POLLING; mode++) {
        MPI_Barrier(MPI_COMM_WORLD);
        if (rank == 0) {
            long n = total / bytes;
            double t0 = now();
            for (long i = 0; i < n; i++) {
                MPI_Request q;
                MPI_Rget(dst, (int)bytes, MPI_BYTE, 1, (MPI_Aint)(i % places) * bytes, (int)bytes,
                         MPI_BYTE, win, &q);
                for (int flag = 0; !flag;)
                    MPI_Test(&q, &flag, MPI_STATUS_IGNORE);
            }
            double t = now() - t0;
            printf("{\"bench\":\"rma_pull\",\"target\":\"%s\",\"bytes\":%ld,\"gb_per_s\":%.2f,"
                   "\"ok\":%s}\n",
                   names[mode], bytes, (double)bytes * (double)n / t / 1e9,
                   dst[0] == 2 ? "true" : "false");
            fflush(stdout);
        } else if (mode != IDLE) {
            compute(mode);
        }
        MPI_Barrier(MPI_COMM_WORLD);
    }
    MPI_Win_unlock_all(win);
    MPI_Win_free(&win);
    free(dst);
    MPI_Finalize();
    return 0;
}
