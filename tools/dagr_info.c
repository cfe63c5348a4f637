/* dagr-info: what a dagr job launched this way would get, and whether it is launched right.
 *
 *   mpiexec.mpich -n 4 dagr-info            # or: srun --mpi=pmi2 dagr-info
 *   srun --mpi=pmi2 dagr-info --json        # one JSON object, for scripts
 *
 * Rank 0 prints the ranks, nodes, ranks per node, worker threads, GPUs (rank 0's, or why it
 * has none) and devices (GPUs and test devices) per rank, the
 * MPI library and its thread level, the launcher and its process management interface, the
 * Slurm job's task count (with a note when the ranks use fewer), the memory limit, node memory,
 * spill folder, receive arena and stop signals: everything comes from dagr_init with the same
 * environment (DAGR_THREADS, DAGR_MEMORY_LIMIT, ...) the program will see. Exit status 0 when dagr
 * starts; on a mislaunch (DAGR_ERR_LAUNCH, e.g. `srun
 * --mpi=pmix` with MPICH) every process prints why and the fix and exits 2; any other failure
 * of dagr_init exits 1. It is the first line of every batch script in slurm/. */
#include <dagr/dagr.h>

#include <stdio.h>
#include <string.h>

static void usage(FILE *f) {
    fprintf(f, "usage: dagr-info [--json] [--help]\n"
               "Prints what a dagr job launched this way gets (run it under the same launcher\n"
               "and environment as the program); exits 2 when the job is mislaunched.\n");
}

/* s as a JSON string (the strings here are short and printable, but quote anyway). */
static void json_str(const char *s) {
    putchar('"');
    for (; s && *s; s++) {
        if (*s == '"' || *s == '\\')
            printf("\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            printf("\\u%04x", *s);
        else
            putchar(*s);
    }
    putchar('"');
}

static void print_json(const dagr_job_info_t *j) {
    printf("{\"ok\": true, \"ranks\": %d, \"nodes\": %d, \"ranks_per_node\": %d, "
           "\"threads_per_rank\": %d, \"threads_total\": %d, \"devices_per_rank\": %d, "
           "\"mpi_library\": ",
           j->ranks, j->nodes, j->max_ranks_per_node, j->threads, j->total_threads, j->devices);
    json_str(j->mpi_library);
    printf(", \"thread_level\": ");
    json_str(j->thread_level);
    printf(", \"launcher\": ");
    json_str(j->launcher);
    printf(", \"pmi\": ");
    json_str(j->pmi);
    printf(", \"slurm_tasks\": %d", j->slurm_tasks);
    printf(", \"memory_limit\": %zu, \"node_memory\": %zu, \"spill_dir\": ", j->memory_limit,
           j->node_memory);
    if (j->spill_dir)
        json_str(j->spill_dir);
    else
        printf("null");
    printf(", \"comm_arena\": %zu, \"stop_signals\": ", j->comm_arena);
    json_str(j->stop_signals);
    printf(", \"gpus_per_rank\": %d, \"gpu_note\": ", j->gpus);
    json_str(j->gpu_note);
    printf("}\n");
}

static void print_text(const dagr_job_info_t *j) {
    double gib = 1024.0 * 1024.0 * 1024.0;
    printf("ranks             %d\n", j->ranks);
    printf("nodes             %d\n", j->nodes);
    printf("ranks per node    %d (at most; %d on rank 0's node)\n", j->max_ranks_per_node,
           j->ranks_on_node);
    printf("worker threads    %d per rank, %d in all\n", j->threads, j->total_threads);
    if (j->gpus)
        printf("GPUs              %d per rank (rank 0's)\n", j->gpus);
    else
        printf("GPUs              none: %s\n", j->gpu_note);
    printf("devices           %d per rank (its GPUs and test devices)\n", j->devices);
    printf("MPI               %s, %s\n", j->mpi_library, j->thread_level);
    printf("launcher          %s, PMI %s\n", j->launcher, j->pmi);
    if (j->slurm_tasks)
        printf("Slurm job         %d tasks%s\n", j->slurm_tasks,
               j->slurm_tasks > j->ranks ? " (more than the ranks: start the program with "
                                           "srun --mpi=pmi2 or mpiexec.mpich -n $SLURM_NTASKS "
                                           "to use them all)"
                                         : "");
    if (j->memory_limit)
        printf("memory limit      %.2f GiB of data per rank\n", j->memory_limit / gib);
    else
        printf("memory limit      none (DAGR_MEMORY_LIMIT)\n");
    printf("node memory       %.2f GiB\n", j->node_memory / gib);
    printf("spill folder      %s\n", j->spill_dir ? j->spill_dir : "none (no memory limit)");
    printf("receive arena     %.1f MiB per rank\n", j->comm_arena / (1024.0 * 1024.0));
    printf("stop signals      %s\n",
           *j->stop_signals ? j->stop_signals : "none (DAGR_STOP_SIGNALS)");
}

int main(int argc, char **argv) {
    int json = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) {
            json = 1;
        } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "dagr-info: unknown option '%s'\n", argv[i]);
            usage(stderr);
            return 1;
        }
    }
    dagr_ctx_t *ctx = NULL;
    dagr_status_t s = dagr_init(&argc, &argv, NULL, &ctx);
    if (s != DAGR_OK) {
        /* dagr_init printed a mislaunch itself; the JSON line says it for scripts. */
        if (json) {
            printf("{\"ok\": false, \"status\": ");
            json_str(dagr_status_str(s));
            printf(", \"error\": ");
            json_str(dagr_last_error());
            printf("}\n");
        } else if (s != DAGR_ERR_LAUNCH) {
            fprintf(stderr, "dagr-info: dagr_init failed: %s\n", dagr_last_error());
        }
        return s == DAGR_ERR_LAUNCH ? 2 : 1;
    }
    dagr_job_info_t j;
    s = dagr_job_info(ctx, &j);
    if (s == DAGR_OK && dagr_rank(ctx) == 0) {
        if (json)
            print_json(&j);
        else
            print_text(&j);
        fflush(stdout);
    }
    dagr_status_t f = dagr_finalize(&ctx);
    return s == DAGR_OK && f == DAGR_OK ? 0 : 1;
}
