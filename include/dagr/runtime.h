/* dagr — context: initialisation, configuration, finalisation.
 *
 * Each function is labelled Collective, Logically collective or Local: see dagr/task.h. */
#ifndef DAGR_RUNTIME_H
#define DAGR_RUNTIME_H

#include <mpi.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <dagr/status.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dagr_ctx dagr_ctx_t;

/* Run-time configuration. Fill it with dagr_config_init() and then change the fields you
 * care about, so that fields added later keep their defaults. Environment variables
 * override the struct (see README, "Configuration"). */
/* dagr_config_t.progress (environment DAGR_PROGRESS = 0, 1, tty or log). Under mpiexec a
 * rank's stderr is a pipe to the launcher even when the launcher writes to a terminal, so
 * AUTO cannot tell: TTY asks for the in-place line there. */
enum {
    DAGR_PROGRESS_OFF = 0,
    DAGR_PROGRESS_AUTO = 1, /* rewritten in place if rank 0's stderr is a terminal, else LOG */
    DAGR_PROGRESS_TTY = 2,  /* one line rewritten in place ('\r') at most every 0.5 s */
    DAGR_PROGRESS_LOG = 3,  /* a plain line every 5 s (batch logs) */
};

typedef struct dagr_config {
    MPI_Comm comm;      /* ranks taking part; default MPI_COMM_WORLD (dagr duplicates it) */
    int threads;        /* worker threads per rank; 0 = cores on the node / ranks on it */
    size_t comm_arena;  /* bytes of receive arena per rank (MPI window); 0 = default */
    size_t max_pending; /* local tasks in flight before dagr_spawn waits; 0 = default */
    int verbose;        /* 1 = print the chosen configuration on rank 0 at init */

    /* Observability (README, "Seeing what dagr did"). Paths are written by rank 0 at
     * dagr_finalize and opened (created or truncated) at dagr_init, so that a path that
     * cannot be written fails dagr_init on every rank rather than lose the run's record.
     * The strings are copied at dagr_init. */
    const char *trace_path; /* Chrome Trace Event JSON of every rank's tasks, transfers, waits,
                               idle periods and I/O (opens in Perfetto); NULL = no trace */
    const char *dot_path;   /* Graphviz DOT of the task graph; NULL = none */
    int summary;            /* 1 = rank 0 prints a table per kernel and per rank at finalize */
    int progress;           /* DAGR_PROGRESS_*: rank 0's progress line on stderr */
    size_t trace_events;    /* events kept per thread, and graph nodes per rank, while
                               tracing (memory bound: ~40 bytes an event); 0 = 1M */

    /* Out of core (README, "Running out of core"). With a limit, the data dagr allocates on
     * this rank (array tiles, dagr_data_create buffers, copies of other ranks' data) is kept
     * under memory_limit bytes by writing the least recently used buffers that no task is
     * using to a file in spill_dir, and reading them back when a task needs them. Buffers
     * the caller attached are never moved. The limit is soft: the buffers of the tasks
     * running at one time stay in memory even if they exceed it. */
    size_t memory_limit;   /* bytes per rank; 0 = no limit, nothing is spilled */
    const char *spill_dir; /* where the spill file goes; NULL = $TMPDIR, else /tmp */

    /* Called once on each worker thread as it starts, before it runs any task, with the
     * worker's index (0 .. threads-1 for the host's workers, threads + d for device d's, as
     * in dagr_task_view_t.worker) and worker_init_arg: per-thread state of other
     * libraries (pinning the thread to a core, a BLAS's per-thread setting, binding a
     * device). NULL = none. It must not call dagr. */
    void (*worker_init)(int worker, void *arg);
    void *worker_init_arg;

    /* Signals that ask the job to stop (README, "Slurm"): "USR1,TERM" catches SIGUSR1 and
     * SIGTERM from dagr_init to dagr_finalize, and dagr_stop_requested turns true once any
     * rank got one. Names with or without SIG, or numbers; NULL or "" = none (the signals
     * keep their actions). Copied at dagr_init. */
    const char *stop_signals;
} dagr_config_t;

/* Fills *cfg with the defaults. Local. */
DAGR_API void dagr_config_init(dagr_config_t *cfg);

/* Starts dagr on every rank of cfg->comm. Collective over cfg->comm.
 * It first checks that MPI_COMM_WORLD is the job the launcher started: a program started by a
 * launcher that its MPI does not speak to (with MPICH: `srun --mpi=pmix`, `srun --mpi=none`,
 * OpenMPI's mpiexec) would otherwise run as many one-rank copies of itself; every process then
 * fails with DAGR_ERR_LAUNCH, whose message names the launcher, the sizes and the fix.
 * If MPI is not initialised yet, dagr initialises it with MPI_THREAD_MULTIPLE (passing
 * argc/argv, which may be NULL) and finalises it in dagr_finalize. If the application
 * initialised MPI itself, it must have asked for MPI_THREAD_MULTIPLE; dagr then leaves MPI
 * initialised at dagr_finalize. cfg may be NULL for the defaults.
 * On success *ctx_out is the new context. Errors: DAGR_ERR_ARG (ctx_out NULL, a bad field or
 * environment value), DAGR_ERR_LAUNCH (above), DAGR_ERR_MPI (MPI finalised already, thread level
 * too low, a window could not be created), DAGR_ERR_NOMEM. */
DAGR_API dagr_status_t dagr_init(int *argc, char ***argv, const dagr_config_t *cfg,
                                 dagr_ctx_t **ctx_out);

/* Waits for every task (as dagr_wait_all), stops the workers, frees every handle still alive
 * and the context, and finalises MPI if dagr_init initialised it. Collective. Sets *ctx to
 * NULL; tolerates NULL and *ctx == NULL. Returns the status of the final wait; the context is
 * released whatever it is. */
DAGR_API dagr_status_t dagr_finalize(dagr_ctx_t **ctx);

/* This rank and the number of ranks in the context's communicator. Local. */
DAGR_API int dagr_rank(const dagr_ctx_t *ctx);
DAGR_API int dagr_size(const dagr_ctx_t *ctx);

/* This rank's data memory and spill file (dagr_memory_stats). Bytes. */
typedef struct dagr_memory_stats {
    size_t limit;              /* the memory limit; 0 = none */
    size_t resident;           /* dagr-allocated data in memory now */
    size_t peak;               /* the most there was at once since dagr_init */
    uint64_t spill_writes;     /* buffers written to the spill file */
    uint64_t spill_bytes;      /* bytes written to it */
    uint64_t reads;            /* buffers read back */
    uint64_t read_bytes;       /* bytes read back */
    uint64_t over_limit;       /* times the buffers in use left no room under the limit */
    uint64_t spill_failures;   /* writes to the spill file that failed (the data stayed) */
    double io_seconds;         /* time spent writing and reading the spill file */
    uint64_t spill_file_bytes; /* the spill file's size now (its freed space is reused, and
                                  given back to the file system once half of it is free) */
    /* The data pool (README "Memory"), with or without a limit; process-wide. */
    size_t pool_in_use;        /* bytes of the pool's buffers now */
    size_t pool_resident;      /* bytes of its pages in memory now (in use, kept, shared) */
    size_t pool_peak_resident; /* the most there was at once */
    uint64_t pool_given_back;  /* bytes of free pages given back to the system so far */
} dagr_memory_stats_t;

/* Fills *out with this rank's figures. The fields up to spill_file_bytes are counted only
 * with a memory limit (0 without one); the pool's always. Local; call from the main thread.
 * Errors: DAGR_ERR_ARG (ctx or out NULL). */
DAGR_API dagr_status_t dagr_memory_stats(const dagr_ctx_t *ctx, dagr_memory_stats_t *out);

/* This rank's devices (memory nodes with a worker of their own: today the test devices that
 * DAGR_TEST_DEVICES asks for, see README "Devices"). Local. */
DAGR_API int dagr_devices(const dagr_ctx_t *ctx);

/* One device's figures since dagr_init. */
typedef struct dagr_device_stats {
    const char *kind;   /* "test device" or "cuda" (a GPU) */
    size_t memory;      /* its memory budget, bytes */
    size_t used, peak;  /* bytes of copies on it now, and at most */
    uint64_t tasks;     /* tasks it ran */
    uint64_t copies_in; /* host-to-device copies, and their bytes (prefetches included) */
    uint64_t bytes_in;
    uint64_t copies_out; /* device-to-host copies (what its tasks wrote), and their bytes */
    uint64_t bytes_out;
    uint64_t evictions;  /* copies dropped to make room */
    uint64_t writebacks; /* of which copies newer than the host's, written back first */
    uint64_t prefetches; /* copies in started for queued tasks ahead of their turn */
    double copy_seconds; /* time its copies took, both ways (the test device: its memcpys) */
    double busy_seconds; /* time its worker spent in task bodies (on a GPU: until the task's
                            work on the GPU ended) */
} dagr_device_stats_t;

/* Fills *out with device `device`'s figures. Local. Errors: DAGR_ERR_ARG (ctx or out NULL,
 * device out of range [0, dagr_devices(ctx))). */
DAGR_API dagr_status_t dagr_device_stats(const dagr_ctx_t *ctx, int device,
                                         dagr_device_stats_t *out);

/* Whether the job should stop: true once any rank caught one of the stop signals
 * (dagr_config_t.stop_signals, DAGR_STOP_SIGNALS) since dagr_init, and true from then on.
 * Logically collective: every rank gets the same answer from the same call, so that all of
 * them stop after the same step, checkpoint together and exit with DAGR_EXIT_STOPPED. It
 * never waits for tasks and costs one small nonblocking allreduce, whose answer the next call
 * reads: a signal caught before call k turns call k + 1 true (k + 2 if it came while call k
 * ran). Call it once per step. True when ctx is NULL or unusable (a divergence), so that a
 * loop ends; the checkpoint that follows then returns the error. */
DAGR_API bool dagr_stop_requested(dagr_ctx_t *ctx);

/* The exit status of a program that stopped early because it was asked to (it checkpointed
 * and will resume): slurm/chain.sbatch resubmits the job when the program exits with it.
 * 75 is EX_TEMPFAIL of <sysexits.h>: "try again later". */
#define DAGR_EXIT_STOPPED 75

/* What this job got (dagr_job_info; dagr-info prints it). Strings belong to the context. */
typedef struct dagr_job_info {
    int ranks;                /* in the context */
    int nodes;                /* nodes they run on (as MPI_COMM_TYPE_SHARED groups them) */
    int ranks_on_node;        /* ranks on this rank's node */
    int max_ranks_per_node;   /* on the most crowded node */
    int threads;              /* worker threads per rank */
    int total_threads;        /* worker threads of all ranks together */
    int devices;              /* devices per rank (dagr_devices) */
    const char *mpi_library;  /* the first line of MPI_Get_library_version */
    const char *thread_level; /* MPI's thread level ("MPI_THREAD_MULTIPLE") */
    const char *launcher;     /* "mpiexec (MPICH's Hydra)", "srun", "OpenMPI's mpiexec", "none" */
    const char *pmi;          /* "PMI-1 (Hydra)", "PMI-2", "PMIx", "none" */
    int slurm_tasks;          /* tasks of the Slurm job the ranks run in (SLURM_NTASKS); 0
                                 outside Slurm. More than ranks: part of the job is unused
                                 (a program run without a launcher in a batch script) */
    size_t memory_limit;      /* dagr's data limit per rank (DAGR_MEMORY_LIMIT); 0 = none */
    size_t node_memory;       /* this node's memory, or less when a cgroup limits the job */
    const char *spill_dir;    /* where data spills under the limit; NULL without one */
    size_t comm_arena;        /* bytes of receive arena per rank */
    const char *stop_signals; /* "USR1,TERM"; "" = none */
    int gpus;                 /* GPUs this rank uses (README, "GPUs"); devices counts them */
    const char *gpu_note;     /* with no GPU: why ("no GPU: cudaErrorInsufficientDriver ...") */
} dagr_job_info_t;

/* Fills *out; its strings live as long as ctx. Local. Errors: DAGR_ERR_ARG (ctx or out
 * NULL). */
DAGR_API dagr_status_t dagr_job_info(const dagr_ctx_t *ctx, dagr_job_info_t *out);

/* Worker threads running tasks on this rank. Local. */
DAGR_API int dagr_threads(const dagr_ctx_t *ctx);

/* The context's private duplicate of the communicator, for the caller's own MPI calls
 * (borrowed: do not free). Local. */
DAGR_API MPI_Comm dagr_comm(const dagr_ctx_t *ctx);

#ifdef __cplusplus
}
#endif
#endif
