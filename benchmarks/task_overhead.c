/* task_overhead: how many empty tasks per second one rank inserts, schedules and runs.
 *
 * Every task body only bumps its worker's private counter (so that the benchmark can check
 * that each rank ran exactly the tasks it should) and returns DAGR_TASK_DONE; with
 * --task-ns NS it first spins for NS nanoseconds, to see the runtime's (or the trace's)
 * cost against tasks of a given grain. Three shapes,
 * each spread evenly over the ranks so that every task runs where its data lives (no
 * communication):
 *
 *   independent  task i WRITEs handle i / ranks % pool of rank i % ranks (a pool of handles
 *                per rank, reused cyclically: only write-after-write on the reuse)
 *   chain        task i RWs the one handle of rank i % ranks: one dependency chain per rank
 *   fanout       on one handle per rank, repeated: one WRITE, `fan` READs, one RW collector
 *                (fan-out, then fan-in through write-after-read)
 *
 * Every rank inserts all `n` tasks of a case (SPMD) and runs about n / ranks of them. The
 * time is taken from the first dagr_spawn to the return of dagr_wait_all (the slowest rank's),
 * best of `repeat` runs after one untimed warm-up; the rate that matters is
 * local_tasks_per_s: tasks this rank ran, per second (the smallest over ranks).
 *
 * Prints one JSON object per case on rank 0.
 *
 *   mpiexec.mpich -n 2 build/benchmarks/task_overhead [--n N] [--repeat R] [--pool P]
 *       [--fan K] [--bytes B] [--threads T] [--max-pending M] [--case independent|chain|fanout]
 *       [--task-ns NS] [--trace PATH [--rounds K] [--trace-events E]]
 *
 * With --trace, the whole set of cases runs K times with tracing off and K times with it on
 * (dagr_config_t.trace_path = PATH), alternating, each phase in its own dagr_init/finalize
 * under one MPI_Init; one more line per case then gives the best time of each, the overhead
 * of tracing from those, and the median over rounds of each round's own on/off ratio. The traced
 * phases record every task (trace_events per thread, default 8M, so that none is dropped and the
 * cost measured is the full one).
 */
#include <dagr/dagr.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#if defined(__x86_64__)
#include <x86intrin.h>
#endif

typedef struct bench_opts {
    long n;
    int repeat;
    int pool;
    int fan;
    size_t bytes;
    int threads;
    size_t max_pending;
    const char *only;
    long task_ns;        /* --task-ns: each body spins this long */
    const char *trace;   /* --trace PATH: also run with tracing on, alternating */
    int rounds;          /* off/on pairs with --trace */
    size_t trace_events; /* dagr_config_t.trace_events in the traced phases */
} bench_opts_t;

/* One counter per worker thread, each on its own cache line: a plain increment, no atomics,
 * since a worker index belongs to one thread. */
typedef struct worker_count {
    long n;
    char pad[64 - sizeof(long)];
} worker_count_t;

static worker_count_t *counts;
static int ncounts;
static long task_ns;
static long case_local[3]; /* run_phase: the smallest local task count over ranks, per case */

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static dagr_task_result_t empty_task(const dagr_task_view_t *t) {
    if (task_ns > 0) {
        int64_t end = now_ns() + task_ns;
        while (now_ns() < end) {
        }
    }
    if (t->worker >= 0 && t->worker < ncounts) counts[t->worker].n++;
    return DAGR_TASK_DONE;
}

static const dagr_kernel_t empty_k = {.name = "bench_empty", .cpu = empty_task};

static long local_count(void) {
    long s = 0;
    for (int i = 0; i < ncounts; i++)
        s += counts[i].n;
    return s;
}

/* The handles of one case: `per_rank` handles owned by each rank; h[r * per_rank + j]. */
typedef struct handles {
    dagr_data_t **h;
    int per_rank;
} handles_t;

static dagr_status_t handles_create(dagr_ctx_t *ctx, int per_rank, size_t bytes, handles_t *hs) {
    int nranks = dagr_size(ctx);
    hs->per_rank = per_rank;
    hs->h = calloc((size_t)nranks * per_rank, sizeof *hs->h);
    if (!hs->h) return DAGR_ERR_NOMEM;
    for (int r = 0; r < nranks; r++)
        for (int j = 0; j < per_rank; j++) {
            dagr_status_t s = dagr_data_create(ctx, bytes, r, &hs->h[r * per_rank + j]);
            if (s != DAGR_OK) return s;
        }
    return DAGR_OK;
}

static void handles_destroy(dagr_ctx_t *ctx, handles_t *hs) {
    if (!hs->h) return;
    for (int i = 0; i < dagr_size(ctx) * hs->per_rank; i++)
        dagr_data_destroy(&hs->h[i]);
    free(hs->h);
    hs->h = NULL;
}

enum bench_case { CASE_INDEPENDENT, CASE_CHAIN, CASE_FANOUT, NCASES };
static const char *case_names[NCASES] = {"independent", "chain", "fanout"};

/* Inserts the n tasks of case c; *local is set to how many of them this rank should run. */
static dagr_status_t insert_case(dagr_ctx_t *ctx, enum bench_case c, long n, int fan,
                                 const handles_t *hs, long *local) {
    int nranks = dagr_size(ctx), me = dagr_rank(ctx);
    long mine = 0;
    dagr_status_t s = DAGR_OK;
    if (c == CASE_INDEPENDENT || c == CASE_CHAIN) {
        for (long i = 0; i < n && s == DAGR_OK; i++) {
            int r = (int)(i % nranks);
            int j = c == CASE_CHAIN ? 0 : (int)(i / nranks % hs->per_rank);
            dagr_access_t a = {hs->h[r * hs->per_rank + j], c == CASE_CHAIN ? DAGR_RW : DAGR_WRITE};
            mine += r == me;
            s = dagr_spawn(ctx, &empty_k, NULL, 0, 1, &a, NULL);
        }
    } else {
        long groups = n / (fan + 2);
        for (long g = 0; g < groups && s == DAGR_OK; g++) {
            int r = (int)(g % nranks);
            dagr_data_t *x = hs->h[r * hs->per_rank];
            mine += r == me ? fan + 2 : 0;
            s = dagr_spawn(ctx, &empty_k, NULL, 0, 1, &(dagr_access_t){x, DAGR_WRITE}, NULL);
            for (int k = 0; k < fan && s == DAGR_OK; k++)
                s = dagr_spawn(ctx, &empty_k, NULL, 0, 1, &(dagr_access_t){x, DAGR_READ}, NULL);
            if (s == DAGR_OK)
                s = dagr_spawn(ctx, &empty_k, NULL, 0, 1, &(dagr_access_t){x, DAGR_RW}, NULL);
        }
    }
    *local = mine;
    return s;
}

/* Runs case c once: returns the slowest rank's seconds from first spawn to dagr_wait_all,
 * or a negative value on error (reported on stderr). Checks the tasks this rank ran. */
static double run_once(dagr_ctx_t *ctx, enum bench_case c, long n, int fan, const handles_t *hs,
                       long *local, int *count_ok) {
    MPI_Comm comm = dagr_comm(ctx);
    dagr_status_t s = dagr_wait_all(ctx);
    long before = local_count();
    MPI_Barrier(comm);
    double t0 = MPI_Wtime();
    if (s == DAGR_OK) s = insert_case(ctx, c, n, fan, hs, local);
    dagr_status_t w = dagr_wait_all(ctx);
    double t = MPI_Wtime() - t0, tmax = 0.0;
    s = s != DAGR_OK ? s : w;
    if (s != DAGR_OK) {
        fprintf(stderr, "task_overhead: rank %d: %s: %s (%s)\n", dagr_rank(ctx), case_names[c],
                dagr_status_str(s), dagr_last_error());
        t = -1e300;
    }
    int ran_ok = local_count() - before == *local, all_ok = 0;
    MPI_Allreduce(&ran_ok, &all_ok, 1, MPI_INT, MPI_LAND, comm);
    *count_ok = all_ok;
    MPI_Allreduce(&t, &tmax, 1, MPI_DOUBLE, MPI_MAX, comm);
    int bad = t < 0, any_bad = 0;
    MPI_Allreduce(&bad, &any_bad, 1, MPI_INT, MPI_LOR, comm);
    return any_bad ? -1.0 : tmax;
}

/* Minor page faults of this process so far: fresh memory touched (a cost tracing could add). */
static long minor_faults(void) {
    struct rusage ru;
    return getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_minflt : 0;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* What one read of a clock costs here, in ns (back to back, 2M reads): the trace takes two
 * per task, so on empty tasks these reads alone set a floor under tracing's overhead. dagr
 * reads the TSC where the kernel keeps time with it (x86), CLOCK_MONOTONIC elsewhere. */
static double clock_read_ns(int tsc) {
    const long reads = 2000000;
    volatile uint64_t sink = 0;
    int64_t t0 = now_ns();
    for (long i = 0; i < reads; i++) {
#if defined(__x86_64__)
        if (tsc) {
            sink += __rdtsc();
            continue;
        }
#endif
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        sink += (uint64_t)ts.tv_nsec;
    }
    (void)sink;
    (void)tsc;
    return (double)(now_ns() - t0) / (double)reads;
}

static int parse_opts(int argc, char **argv, bench_opts_t *o) {
    *o = (bench_opts_t){.n = 200000,
                        .repeat = 3,
                        .pool = 1024,
                        .fan = 16,
                        .bytes = 8,
                        .rounds = 2,
                        .trace_events = (size_t)1 << 23};
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) return -1;
        if (!strcmp(argv[i], "--n"))
            o->n = atol(v);
        else if (!strcmp(argv[i], "--repeat"))
            o->repeat = atoi(v);
        else if (!strcmp(argv[i], "--pool"))
            o->pool = atoi(v);
        else if (!strcmp(argv[i], "--fan"))
            o->fan = atoi(v);
        else if (!strcmp(argv[i], "--bytes"))
            o->bytes = (size_t)atoll(v);
        else if (!strcmp(argv[i], "--threads"))
            o->threads = atoi(v);
        else if (!strcmp(argv[i], "--max-pending"))
            o->max_pending = (size_t)atoll(v);
        else if (!strcmp(argv[i], "--case"))
            o->only = v;
        else if (!strcmp(argv[i], "--task-ns"))
            o->task_ns = atol(v);
        else if (!strcmp(argv[i], "--trace"))
            o->trace = v;
        else if (!strcmp(argv[i], "--rounds"))
            o->rounds = atoi(v);
        else if (!strcmp(argv[i], "--trace-events"))
            o->trace_events = (size_t)atoll(v);
        else
            return -1;
        i++;
    }
    return o->n < 1 || o->repeat < 1 || o->pool < 1 || o->fan < 0 || o->threads < 0 ||
                   o->rounds < 1 || o->task_ns < 0
               ? -1
               : 0;
}

/* One phase: dagr_init with tracing to `trace` (NULL: off), every case, dagr_finalize.
 * best[c] gets the case's best time (or stays negative when it did not run). */
static int run_phase(int *argc, char ***argv, const bench_opts_t *o, const char *trace,
                     double best_out[NCASES], double *finalize_s) {
    dagr_config_t cfg;
    dagr_config_init(&cfg);
    cfg.threads = o->threads;
    cfg.max_pending = o->max_pending;
    if (trace) {
        cfg.trace_path = trace;
        cfg.trace_events = o->trace_events;
    }
    dagr_ctx_t *ctx = NULL;
    dagr_status_t s = dagr_init(argc, argv, &cfg, &ctx);
    if (s != DAGR_OK) {
        fprintf(stderr, "task_overhead: dagr_init: %s (%s)\n", dagr_status_str(s),
                dagr_last_error());
        return 1;
    }
    const int me = dagr_rank(ctx), nranks = dagr_size(ctx);
    int failures = 0;
    free(counts);
    ncounts = dagr_threads(ctx);
    counts = calloc((size_t)ncounts, sizeof *counts);
    double *times = calloc((size_t)o->repeat, sizeof *times);
    if (!counts || !times) {
        fprintf(stderr, "task_overhead: out of memory\n");
        dagr_finalize(&ctx);
        free(times);
        return 1;
    }

    for (int c = 0; c < NCASES; c++) {
        best_out[c] = -1.0;
        if (o->only && strcmp(o->only, case_names[c])) continue;
        handles_t hs = {0};
        s = handles_create(ctx, c == CASE_INDEPENDENT ? o->pool : 1, o->bytes, &hs);
        if (s != DAGR_OK) {
            fprintf(stderr, "task_overhead: creating handles: %s (%s)\n", dagr_status_str(s),
                    dagr_last_error());
            failures++;
            handles_destroy(ctx, &hs);
            break;
        }
        long local = 0, warm_n = o->n / 10 > 1000 ? o->n / 10 : (o->n < 1000 ? o->n : 1000);
        int count_ok = 1, all_counts_ok = 1;
        double t = run_once(ctx, c, warm_n, o->fan, &hs, &local, &count_ok); /* warm-up */
        long faults0 = minor_faults();
        for (int r = 0; r < o->repeat && t >= 0; r++) {
            t = run_once(ctx, c, o->n, o->fan, &hs, &local, &count_ok);
            times[r] = t;
            all_counts_ok &= count_ok;
        }
        long faults = (minor_faults() - faults0) / o->repeat;
        handles_destroy(ctx, &hs);
        if (t < 0) {
            failures++;
            continue;
        }
        qsort(times, (size_t)o->repeat, sizeof *times, cmp_double);
        double best = times[0], median = times[o->repeat / 2];
        best_out[c] = best;
        long total = c == CASE_FANOUT ? o->n / (o->fan + 2) * (o->fan + 2) : o->n;
        long min_local = 0;
        MPI_Allreduce(&local, &min_local, 1, MPI_LONG, MPI_MIN, dagr_comm(ctx));
        case_local[c] = min_local;
        if (!all_counts_ok) failures++;
        if (me == 0) {
            printf("{\"bench\":\"task_overhead\",\"case\":\"%s\",\"ranks\":%d,\"threads\":%d,"
                   "\"tasks\":%ld,\"local_tasks\":%ld,\"repeat\":%d,\"seconds\":%.6f,"
                   "\"seconds_median\":%.6f,\"tasks_per_s\":%.0f,\"local_tasks_per_s\":%.0f,"
                   "\"us_per_local_task\":%.3f",
                   case_names[c], nranks, dagr_threads(ctx), total, min_local, o->repeat, best,
                   median, (double)total / best, (double)min_local / best,
                   best * 1e6 / (double)(min_local > 0 ? min_local : 1));
            if (c == CASE_INDEPENDENT) printf(",\"pool_per_rank\":%d", o->pool);
            if (c == CASE_FANOUT) printf(",\"fan\":%d", o->fan);
            if (o->trace) printf(",\"trace\":\"%s\"", trace ? "on" : "off");
            printf(",\"minor_faults_per_run\":%ld", faults);
            if (o->task_ns) printf(",\"task_ns\":%ld", o->task_ns);
            printf(",\"bytes\":%zu,\"check\":\"%s\"}\n", o->bytes,
                   all_counts_ok ? "ok" : "wrong local task count");
            fflush(stdout);
        }
    }

    /* Not MPI_Wtime: without --trace, dagr_finalize finalises MPI. */
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    s = dagr_finalize(&ctx);
    clock_gettime(CLOCK_MONOTONIC, &b);
    *finalize_s = (double)(b.tv_sec - a.tv_sec) + 1e-9 * (double)(b.tv_nsec - a.tv_nsec);
    if (s != DAGR_OK) {
        fprintf(stderr, "task_overhead: dagr_finalize: %s (%s)\n", dagr_status_str(s),
                dagr_last_error());
        failures++;
    }
    free(times);
    return failures;
}

int main(int argc, char **argv) {
    bench_opts_t o;
    if (parse_opts(argc, argv, &o)) {
        fprintf(stderr,
                "usage: %s [--n TASKS] [--repeat R] [--pool P] [--fan K] [--bytes B] "
                "[--threads T] [--max-pending M] [--case independent|chain|fanout]\n"
                "       [--task-ns NS] [--trace PATH [--rounds K] [--trace-events E]]\n",
                argv[0]);
        return 2;
    }
    task_ns = o.task_ns;
    if (!o.trace) {
        double best[NCASES], fin;
        int failures = run_phase(&argc, &argv, &o, NULL, best, &fin);
        free(counts);
        return failures ? 1 : 0;
    }

    /* Tracing on and off in one run: MPI outlives the contexts, and the phases alternate
     * so that both see the same machine: off then on in even rounds, on then off in odd ones,
     * so that neither always runs right after the other (after the traced phase's finalize
     * has written its file, for instance). */
    int provided = 0, failures = 0, me = 0;
    if (MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided) != MPI_SUCCESS) return 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &me);
    double best[2][NCASES], fin_max[2] = {0, 0};
    double *ratio = calloc((size_t)o.rounds * NCASES, sizeof *ratio); /* on / off, per round */
    int nratio[NCASES] = {0};
    for (int m = 0; m < 2; m++)
        for (int c = 0; c < NCASES; c++)
            best[m][c] = -1.0;
    for (int round = 0; round < o.rounds && ratio; round++) {
        double b[2][NCASES];
        for (int k = 0; k < 2; k++) {
            int m = k ^ (round & 1);
            double fin = 0;
            failures += run_phase(&argc, &argv, &o, m ? o.trace : NULL, b[m], &fin);
            if (fin > fin_max[m]) fin_max[m] = fin;
            for (int c = 0; c < NCASES; c++)
                if (b[m][c] > 0 && (best[m][c] < 0 || b[m][c] < best[m][c])) best[m][c] = b[m][c];
        }
        for (int c = 0; c < NCASES; c++)
            if (b[0][c] > 0 && b[1][c] > 0) ratio[c * o.rounds + nratio[c]++] = b[1][c] / b[0][c];
    }
    /* The clock dagr's trace reads, chosen as dagr chooses it. */
    int tsc = 0;
#if defined(__x86_64__)
    FILE *cs = fopen("/sys/devices/system/clocksource/clocksource0/current_clocksource", "r");
    char csname[32] = "";
    if (cs) {
        tsc = fgets(csname, sizeof csname, cs) && strncmp(csname, "tsc\n", 4) == 0;
        fclose(cs);
    }
#endif
    double clock_ns = me == 0 ? clock_read_ns(tsc) : 0.0;
    if (me == 0)
        printf("{\"bench\":\"task_overhead_clock\",\"clock\":\"%s\",\"ns_per_read\":%.1f}\n",
               tsc ? "tsc" : "clock_gettime", clock_ns);

    /* Two estimates: the best times of each mode over all rounds, and the median over rounds
     * of each round's ratio (an off phase and the on phase right after it see about the same
     * machine, so the pairing cancels slow drifts of a shared machine). */
    for (int c = 0; c < NCASES && me == 0 && ratio; c++) {
        if (best[0][c] <= 0 || best[1][c] <= 0 || nratio[c] == 0) continue;
        double *rc = &ratio[c * o.rounds];
        qsort(rc, (size_t)nratio[c], sizeof *rc, cmp_double);
        double med =
            nratio[c] % 2 ? rc[nratio[c] / 2] : 0.5 * (rc[nratio[c] / 2 - 1] + rc[nratio[c] / 2]);
        double task_off_ns = best[0][c] * 1e9 / (double)(case_local[c] > 0 ? case_local[c] : 1);
        printf("{\"bench\":\"task_overhead_trace\",\"case\":\"%s\",\"rounds\":%d,"
               "\"seconds_off\":%.6f,\"seconds_on\":%.6f,\"overhead_pct\":%.2f,"
               "\"overhead_pct_median_of_rounds\":%.2f,"
               "\"finalize_s_off\":%.3f,\"finalize_s_on\":%.3f,"
               "\"ns_per_local_task_off\":%.0f,\"two_clock_reads_pct\":%.2f}\n",
               case_names[c], o.rounds, best[0][c], best[1][c],
               100.0 * (best[1][c] / best[0][c] - 1.0), 100.0 * (med - 1.0), fin_max[0], fin_max[1],
               task_off_ns, 100.0 * 2.0 * clock_ns / task_off_ns);
    }
    if (!ratio) failures++;
    free(ratio);
    fflush(stdout);
    free(counts);
    MPI_Finalize();
    return failures ? 1 : 0;
}
