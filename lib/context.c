/* The context: configuration (struct, then environment), MPI start-up and shut-down,
 * and the worker and progress threads' lifetime. */
#include "lib_impl.h"

#include "gpu.h"

#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_MAX_PENDING ((size_t)1 << 16)
#define MAX_THREADS 4096
#define MAX_TRACE_EVENTS ((size_t)1 << 31) /* graph node indices are 32-bit */

void dagr_config_init(dagr_config_t *cfg) {
    if (!cfg) return;
    memset(cfg, 0, sizeof *cfg);
    cfg->comm = MPI_COMM_WORLD;
    cfg->threads = 0;
    cfg->comm_arena = 0;
    cfg->max_pending = 0;
    cfg->verbose = 0;
    cfg->trace_path = NULL;
    cfg->dot_path = NULL;
    cfg->summary = 0;
    cfg->progress = 0;
    cfg->trace_events = 0;
    cfg->memory_limit = 0;
    cfg->spill_dir = NULL;
}

/* Parses a non-negative integer with an optional K/M/G (binary) suffix. */
static bool parse_size(const char *s, size_t *out) {
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || s[0] == '-') return false;
    unsigned shift = 0;
    switch (*end) {
    case 'k':
    case 'K':
        shift = 10;
        end++;
        break;
    case 'm':
    case 'M':
        shift = 20;
        end++;
        break;
    case 'g':
    case 'G':
        shift = 30;
        end++;
        break;
    default:
        break;
    }
    if (*end == 'i' && shift) end++;
    if (*end == 'B' || *end == 'b') end++;
    if (*end) return false;
    if (shift && v > (~0ull >> shift)) return false;
    *out = (size_t)(v << shift);
    return true;
}

/* Keeps freed memory for reuse instead of handing it back to the system at once (for what
 * malloc still serves: data buffers and tables' arrays of POOL_MIN bytes and more come from
 * the data pool, pool.c, which gives unused pages back itself). glibc maps every buffer
 * above a threshold (128 KB, rising to at most 32 MB) afresh and unmaps it when
 * freed, so each new partition, bucket or receive buffer of tens of MB is first touched page
 * by page, and a page fault costs 20-40 us in a virtual machine: tables spent half their
 * time faulting. With buffers up to 32 MB taken from the heap and up to 1 GB of free heap
 * kept, they are reused. One arena for every thread: memory a worker frees is then there
 * for the progress thread's next receive buffer and the other way round, where one arena per
 * thread kept each thread's free memory to itself (a 10M-row table benchmark at 2 ranks,
 * 2026-12-03: peak resident set 1.17-1.20 GB per rank with one arena, 1.36-1.42 GB with
 * glibc's default, and every operation faster; dagr's threads malloc a few times per task, so
 * the one lock is not contended). Process-wide (it is malloc's setting); skipped when the user
 * tunes malloc through the environment, or with DAGR_MALLOC_KEEP=0. Local, idempotent. */
static void tune_malloc(void) {
    const char *v = getenv("DAGR_MALLOC_KEEP");
    if (v && strcmp(v, "0") == 0) return;
    if (getenv("GLIBC_TUNABLES") || getenv("MALLOC_MMAP_THRESHOLD_") ||
        getenv("MALLOC_TRIM_THRESHOLD_") || getenv("MALLOC_TOP_PAD_") || getenv("MALLOC_ARENA_MAX"))
        return;
#ifdef __GLIBC__
    mallopt(M_ARENA_MAX, 1);
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
    mallopt(M_TOP_PAD, 64 << 20);
#endif
}

/* DAGR_POOL (1, 0 = big data buffers from malloc) and DAGR_POOL_KEEP (bytes of free memory
 * the pool keeps in memory for reuse; default 64 MiB): the data pool's settings (pool.c).
 * Process-wide, like tune_malloc; local. */
static dagr_status_t pool_env_apply(void) {
    const char *v;
    size_t on = 1, keep = (size_t)64 << 20;
    if ((v = getenv("DAGR_POOL")) && *v)
        DAGR_CHECK(parse_size(v, &on) && on <= 1 && !strpbrk(v, "kKmMgG"), DAGR_ERR_ARG,
                   "DAGR_POOL='%s' must be 0 or 1", v);
    if ((v = getenv("DAGR_POOL_KEEP")) && *v)
        DAGR_CHECK(parse_size(v, &keep), DAGR_ERR_ARG,
                   "DAGR_POOL_KEEP='%s' must be a size in bytes (suffix K, M or G allowed)", v);
    pool_configure(on == 1, keep);
    return DAGR_OK;
}

/* DAGR_VERBOSE: one line per rank, its GPUs or why it has none. Local. */
static void print_gpus(const dagr_ctx_t *ctx) {
    const gpu_info_t *g = ctx->gpu;
    char line[GPU_MAX * 96 + 64];
    int n = snprintf(line, sizeof line, "dagr: rank %d: ", ctx->rank);
    if (!g->count) snprintf(line + n, sizeof line - (size_t)n, "%s", g->why);
    for (int i = 0; i < g->count && n < (int)sizeof line; i++)
        n += snprintf(line + n, sizeof line - (size_t)n, "%sGPU %d (%s, %.1f GiB for dagr)",
                      i ? ", " : "", g->ids[i], g->names[i], g->budget[i] / 1073741824.0);
    fprintf(stderr, "%s\n", line);
}

/* DAGR_GPUS and DAGR_GPU_MEMORY (gpu/gpu.h). Local. */
static dagr_status_t gpu_env_parse(gpu_env_t *e) {
    *e = (gpu_env_t){.gpus = -1, .memory = 0};
    const char *v;
    size_t n;
    if ((v = getenv("DAGR_GPUS")) && *v) {
        DAGR_CHECK(parse_size(v, &n) && n <= GPU_MAX && !strpbrk(v, "kKmMgG"), DAGR_ERR_ARG,
                   "DAGR_GPUS='%s' must be an integer in [0, %d] (GPUs per rank, 0 = none)", v,
                   GPU_MAX);
        e->gpus = (int)n;
    }
    if ((v = getenv("DAGR_GPU_MEMORY")) && *v) {
        DAGR_CHECK(parse_size(v, &n) && n > 0, DAGR_ERR_ARG,
                   "DAGR_GPU_MEMORY='%s' must be a positive size in bytes (suffix K, M or G "
                   "allowed)",
                   v);
        e->memory = n;
    }
    return DAGR_OK;
}

/* Applies the environment over cfg and checks the result. Local. */
static dagr_status_t apply_env(dagr_config_t *cfg) {
    const char *v;
    size_t n;
    if ((v = getenv("DAGR_THREADS")) && *v) {
        DAGR_CHECK(parse_size(v, &n) && n >= 1 && n <= MAX_THREADS && !strpbrk(v, "kKmMgG"),
                   DAGR_ERR_ARG, "DAGR_THREADS='%s' must be an integer in [1, %d]", v, MAX_THREADS);
        cfg->threads = (int)n;
    }
    if ((v = getenv("DAGR_COMM_ARENA")) && *v) {
        DAGR_CHECK(parse_size(v, &n), DAGR_ERR_ARG,
                   "DAGR_COMM_ARENA='%s' must be a size in bytes (suffix K, M or G allowed)", v);
        cfg->comm_arena = n;
    }
    if ((v = getenv("DAGR_MAX_PENDING")) && *v) {
        DAGR_CHECK(parse_size(v, &n) && n >= 1, DAGR_ERR_ARG,
                   "DAGR_MAX_PENDING='%s' must be a positive integer", v);
        cfg->max_pending = n;
    }
    if ((v = getenv("DAGR_VERBOSE")) && *v) {
        DAGR_CHECK(parse_size(v, &n) && n <= 1, DAGR_ERR_ARG, "DAGR_VERBOSE='%s' must be 0 or 1",
                   v);
        cfg->verbose = (int)n;
    }
    if ((v = getenv("DAGR_TRACE")) && *v) cfg->trace_path = v;
    if ((v = getenv("DAGR_DOT")) && *v) cfg->dot_path = v;
    if ((v = getenv("DAGR_SUMMARY")) && *v) {
        DAGR_CHECK(parse_size(v, &n) && n <= 1 && !strpbrk(v, "kKmMgG"), DAGR_ERR_ARG,
                   "DAGR_SUMMARY='%s' must be 0 or 1", v);
        cfg->summary = (int)n;
    }
    if ((v = getenv("DAGR_PROGRESS")) && *v) {
        if (!strcmp(v, "tty"))
            cfg->progress = DAGR_PROGRESS_TTY;
        else if (!strcmp(v, "log"))
            cfg->progress = DAGR_PROGRESS_LOG;
        else {
            DAGR_CHECK(parse_size(v, &n) && n <= 1 && !strpbrk(v, "kKmMgG"), DAGR_ERR_ARG,
                       "DAGR_PROGRESS='%s' must be 0, 1, tty or log", v);
            cfg->progress = (int)n;
        }
    }
    if ((v = getenv("DAGR_TRACE_EVENTS")) && *v) {
        DAGR_CHECK(parse_size(v, &n) && n >= 1 && n <= MAX_TRACE_EVENTS, DAGR_ERR_ARG,
                   "DAGR_TRACE_EVENTS='%s' must be an integer in [1, %zu] (suffix K, M, G allowed)",
                   v, MAX_TRACE_EVENTS);
        cfg->trace_events = n;
    }
    if ((v = getenv("DAGR_MEMORY_LIMIT")) && *v) {
        DAGR_CHECK(parse_size(v, &n), DAGR_ERR_ARG,
                   "DAGR_MEMORY_LIMIT='%s' must be a size in bytes (suffix K, M or G allowed; 0 = "
                   "no limit)",
                   v);
        cfg->memory_limit = n;
    }
    if ((v = getenv("DAGR_SPILL_DIR")) && *v) cfg->spill_dir = v;
    if ((v = getenv("DAGR_STOP_SIGNALS"))) cfg->stop_signals = v; /* "" turns them off */
    DAGR_CHECK(cfg->summary == 0 || cfg->summary == 1, DAGR_ERR_ARG, "summary %d must be 0 or 1",
               cfg->summary);
    DAGR_CHECK(
        cfg->progress >= DAGR_PROGRESS_OFF && cfg->progress <= DAGR_PROGRESS_LOG, DAGR_ERR_ARG,
        "progress %d must be one of DAGR_PROGRESS_OFF, _AUTO, _TTY, _LOG (0-3)", cfg->progress);
    DAGR_CHECK(cfg->trace_events <= MAX_TRACE_EVENTS, DAGR_ERR_ARG, "trace_events %zu exceeds %zu",
               cfg->trace_events, MAX_TRACE_EVENTS);
    DAGR_CHECK(cfg->threads >= 0 && cfg->threads <= MAX_THREADS, DAGR_ERR_ARG,
               "threads %d out of range [0, %d]", cfg->threads, MAX_THREADS);
    DAGR_CHECK(cfg->verbose == 0 || cfg->verbose == 1, DAGR_ERR_ARG, "verbose %d must be 0 or 1",
               cfg->verbose);
    return DAGR_OK;
}

static const char *thread_level_name(int level) {
    switch (level) {
    case MPI_THREAD_SINGLE:
        return "MPI_THREAD_SINGLE";
    case MPI_THREAD_FUNNELED:
        return "MPI_THREAD_FUNNELED";
    case MPI_THREAD_SERIALIZED:
        return "MPI_THREAD_SERIALIZED";
    default:
        return "MPI_THREAD_MULTIPLE";
    }
}

static dagr_status_t start_mpi(int *argc, char ***argv, bool *own) {
    int inited = 0, finalized = 0, provided = MPI_THREAD_SINGLE;
    MPI_Finalized(&finalized);
    DAGR_CHECK(!finalized, DAGR_ERR_MPI,
               "MPI is already finalized (dagr_init cannot run after MPI_Finalize or after a "
               "dagr_finalize that finalized MPI)");
    MPI_Initialized(&inited);
    if (!inited) {
        DAGR_TRY_MPI(MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &provided));
        *own = true;
    } else {
        MPI_Query_thread(&provided);
        *own = false;
    }
    if (provided < MPI_THREAD_MULTIPLE) {
        if (*own) MPI_Finalize();
        return DAGR_ERR(DAGR_ERR_MPI,
                        "MPI was initialised with %s; dagr needs MPI_THREAD_MULTIPLE (call "
                        "MPI_Init_thread with MPI_THREAD_MULTIPLE, or let dagr_init do it)",
                        thread_level_name(provided));
    }
    return DAGR_OK;
}

static void ctx_free(dagr_ctx_t *ctx) {
    /* Left by a wait that never came to it (a divergence): stopped without MPI. */
    if (ctx->pending.drop) ctx->pending.drop(ctx->pending.arg);
    pool_hold(0); /* an asynchronous checkpoint's staging room (data_buf_hold) */
    trace_discard(ctx);
    node_pool_fini(&ctx->nodes);
    divergence_fini(&ctx->div);
    store_stop(ctx); /* after the nodes: dropping them may free handles */
    stop_fini(ctx);
    free(ctx->gpu);
    if (ctx->user_comm != MPI_COMM_NULL) MPI_Comm_free(&ctx->user_comm);
    if (ctx->comm != MPI_COMM_NULL) MPI_Comm_free(&ctx->comm);
    pthread_mutex_destroy(&ctx->wait_lock);
    pthread_cond_destroy(&ctx->wait_cond);
    pthread_mutex_destroy(&ctx->err_lock);
    free(ctx);
}

static int default_threads(const dagr_ctx_t *ctx) {
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    long t = (cores > 0 ? cores : 1) / (ctx->local_size > 0 ? ctx->local_size : 1);
    return t >= 1 ? (int)t : 1;
}

dagr_status_t dagr_init(int *argc, char ***argv, const dagr_config_t *cfg, dagr_ctx_t **ctx_out) {
    DAGR_CHECK(ctx_out, DAGR_ERR_ARG, "ctx_out is NULL");
    dagr_config_t conf;
    if (cfg)
        conf = *cfg;
    else
        dagr_config_init(&conf);
    DAGR_CHECK(conf.comm != MPI_COMM_NULL, DAGR_ERR_ARG, "cfg->comm is MPI_COMM_NULL");
    /* Before MPI starts: its threads (UCX's, for one) would otherwise make arenas of their
     * own first, and dagr's threads could be given one of those. */
    tune_malloc();
    bool own = false;
    DAGR_TRY(start_mpi(argc, argv, &own));

    /* Configuration errors must be the same on every rank, or some would go on into the
     * collectives below and wait forever. */
    launch_info_t launch;
    launch_detect(&launch);
    int world = 0;
    MPI_Comm_size(MPI_COMM_WORLD, &world);
    dagr_status_t s = launch_check(&launch, world);
    /* Printed here too: a mislaunched job must say so even if the program prints nothing. */
    if (s != DAGR_OK) fprintf(stderr, "dagr: %s\n", dagr_last_error());
    if (s == DAGR_OK) s = apply_env(&conf);
    device_env_t denv;
    stop_signals_t stop;
    if (s == DAGR_OK) s = device_env_parse(&denv);
    gpu_env_t genv = {.gpus = -1};
    if (s == DAGR_OK) s = gpu_env_parse(&genv);
    if (s == DAGR_OK) s = pool_env_apply();
    if (s == DAGR_OK && stop_parse(conf.stop_signals, &stop) != DAGR_OK) {
        char why[DAGR_ERRMSG_MAX];
        snprintf(why, sizeof why, "%s", dagr_last_error());
        s = DAGR_ERR(DAGR_ERR_ARG, "%s: %s",
                     getenv("DAGR_STOP_SIGNALS") ? "DAGR_STOP_SIGNALS" : "cfg->stop_signals", why);
    }
    char msg[DAGR_ERRMSG_MAX];
    snprintf(msg, sizeof msg, "%s", s == DAGR_OK ? "" : dagr_last_error());
    s = ctx_agree(conf.comm, s, msg);
    if (s != DAGR_OK) {
        if (own) MPI_Finalize();
        return s;
    }

    dagr_ctx_t *ctx = calloc(1, sizeof *ctx);
    if (!ctx) {
        if (own) MPI_Finalize();
        return DAGR_ERR(DAGR_ERR_NOMEM, "cannot allocate the context");
    }
    ctx->comm = ctx->user_comm = ctx->stop_comm = MPI_COMM_NULL;
    ctx->stop_req = MPI_REQUEST_NULL;
    atomic_init(&ctx->nodes.returned, NULL);
    atomic_init(&ctx->nodes.pooled, 0);
    ctx->own_mpi = own;
    ctx->cfg = conf;
    ctx->denv = denv;
    ctx->launch = launch;
    divergence_init(&ctx->div);
    pthread_mutex_init(&ctx->wait_lock, NULL);
    pthread_cond_init(&ctx->wait_cond, NULL);
    pthread_mutex_init(&ctx->err_lock, NULL);
    atomic_init(&ctx->inflight, 0);
    atomic_init(&ctx->waiter, false);

    int e = MPI_Comm_dup(conf.comm, &ctx->comm);
    if (e == MPI_SUCCESS) e = MPI_Comm_dup(conf.comm, &ctx->user_comm);
    if (e == MPI_SUCCESS) e = MPI_Comm_dup(conf.comm, &ctx->stop_comm);
    if (e == MPI_SUCCESS) e = MPI_Comm_set_errhandler(ctx->comm, MPI_ERRORS_RETURN);
    MPI_Comm node = MPI_COMM_NULL;
    if (e == MPI_SUCCESS)
        e = MPI_Comm_split_type(ctx->comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
    if (e == MPI_SUCCESS) {
        MPI_Comm_rank(ctx->comm, &ctx->rank);
        MPI_Comm_size(ctx->comm, &ctx->size);
        MPI_Comm_rank(node, &ctx->local_rank);
        MPI_Comm_size(node, &ctx->local_size);
        MPI_Comm_free(&node);
        int mine[2] = {ctx->local_rank == 0, ctx->local_size}, sum[2];
        e = MPI_Allreduce(&mine[0], &sum[0], 1, MPI_INT, MPI_SUM, ctx->comm);
        if (e == MPI_SUCCESS) e = MPI_Allreduce(&mine[1], &sum[1], 1, MPI_INT, MPI_MAX, ctx->comm);
        ctx->nnodes = sum[0];
        ctx->max_local = sum[1];
    }
    if (e != MPI_SUCCESS) {
        s = dagr_error_mpi(e, __FILE__, __LINE__, "setting up the context's communicators");
        goto undo_ctx;
    }
    if (ctx->cfg.threads == 0) ctx->cfg.threads = default_threads(ctx);
    if (ctx->cfg.max_pending == 0) ctx->cfg.max_pending = DEFAULT_MAX_PENDING;
    if (!(ctx->gpu = calloc(1, sizeof *ctx->gpu))) {
        s = DAGR_ERR(DAGR_ERR_NOMEM, "cannot allocate the context");
        goto undo_ctx;
    }
    gpu_discover(&genv, ctx->local_rank, ctx->local_size, ctx->gpu);
    e = MPI_Allreduce(&ctx->cfg.threads, &ctx->total_threads, 1, MPI_INT, MPI_SUM, ctx->comm);
    if (e != MPI_SUCCESS) {
        s = dagr_error_mpi(e, __FILE__, __LINE__, "counting the worker threads of all ranks");
        goto undo_ctx;
    }

    if ((s = store_start(ctx)) != DAGR_OK) goto undo_ctx;
    if ((s = trace_start(ctx)) != DAGR_OK) goto undo_ctx;
    if ((s = comm_start(ctx)) != DAGR_OK) goto undo_comm;
    if ((s = sched_start(ctx)) != DAGR_OK) goto undo_comm;
    if ((s = device_start(ctx)) != DAGR_OK) goto undo_sched;
    if ((s = progress_start(ctx)) != DAGR_OK) goto undo_sched;
    if ((s = divergence_start(ctx)) != DAGR_OK) goto undo_progress;
    /* Last: a failure above leaves the signals' actions as they were. Every rank parsed the
     * same list, and sigaction fails only for a signal the parser refused. */
    ctx->stop = stop;
    if ((s = stop_install(&ctx->stop)) != DAGR_OK) goto undo_progress;
    if (ctx->cfg.verbose && ctx->rank == 0) {
        fprintf(stderr,
                "dagr: %d ranks on %d node%s (%d on this node), %d worker threads per rank; "
                "launched by %s (%s)\n",
                ctx->size, ctx->nnodes, ctx->nnodes == 1 ? "" : "s", ctx->local_size,
                ctx->cfg.threads, ctx->launch.launcher, ctx->launch.pmi);
        if (ctx->stop.n) {
            char names[64];
            stop_names(&ctx->stop, names, sizeof names);
            fprintf(stderr, "dagr: stop signals %s\n", names);
        }
        if (ctx->ndev)
            fprintf(stderr,
                    "dagr: %d test devices per rank, %zu bytes of memory each, copies delayed "
                    "%ld us\n",
                    ctx->ndev, ctx->denv.test_memory, ctx->denv.test_delay_us);
        if (ctx->store)
            fprintf(stderr, "dagr: memory limit %zu bytes of data per rank, spilling to %s\n",
                    ctx->cfg.memory_limit, store_dir(ctx));
    }
    if (ctx->cfg.verbose) print_gpus(ctx);
    *ctx_out = ctx;
    return DAGR_OK;

undo_progress:
    divergence_stop(ctx);
    progress_stop(ctx);
undo_sched:
    sched_stop(ctx);
    device_stop(ctx);
undo_comm:
    comm_stop(ctx);
undo_ctx:
    ctx_free(ctx);
    if (own) MPI_Finalize();
    return s;
}

dagr_status_t dagr_finalize(dagr_ctx_t **pctx) {
    if (!pctx || !*pctx) return DAGR_OK;
    dagr_ctx_t *ctx = *pctx;
    *pctx = NULL;
    dagr_status_t s = dagr_wait_all(ctx);
    char msg[DAGR_ERRMSG_MAX];
    snprintf(msg, sizeof msg, "%s", dagr_last_error());

    /* After a divergence some nodes will never run; their handles stay allocated rather
     * than be freed under them. Otherwise every handle is idle now. */
    while (ctx->live)
        data_retire(ctx->live);
    stop_restore(&ctx->stop);
    divergence_stop(ctx);
    progress_stop(ctx);
    sched_stop(ctx);
    device_stop(ctx);
    comm_stop(ctx);
    /* With every thread joined, the trace buffers are complete and no longer written. */
    dagr_status_t ts = trace_finish(ctx);
    if (s == DAGR_OK && ts != DAGR_OK) {
        s = ts;
        snprintf(msg, sizeof msg, "%s", dagr_last_error());
    }
    bool own = ctx->own_mpi;
    ctx_free(ctx);
    if (own) MPI_Finalize();
    if (s != DAGR_OK) dagr_error_set_raw(msg);
    return s;
}

int dagr_rank(const dagr_ctx_t *ctx) {
    return ctx ? ctx->rank : -1;
}
int dagr_size(const dagr_ctx_t *ctx) {
    return ctx ? ctx->size : 0;
}
/* This node's memory: the physical memory, or the job's cgroup limit when lower (cgroup v2
 * memory.max, or v1 memory.limit_in_bytes). */
static size_t node_memory(void) {
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    size_t mem = pages > 0 && page > 0 ? (size_t)pages * (size_t)page : 0;
    static const char *const limits[] = {"/sys/fs/cgroup/memory.max",
                                         "/sys/fs/cgroup/memory/memory.limit_in_bytes"};
    for (size_t i = 0; i < sizeof limits / sizeof *limits; i++) {
        FILE *f = fopen(limits[i], "r");
        unsigned long long v;
        if (!f) continue;
        if (fscanf(f, "%llu", &v) == 1 && v > 0 && (size_t)v < mem) mem = (size_t)v;
        fclose(f); /* "max": no limit */
    }
    return mem;
}

dagr_status_t dagr_job_info(const dagr_ctx_t *ctx, dagr_job_info_t *out) {
    DAGR_CHECK(ctx && out, DAGR_ERR_ARG, "%s is NULL", ctx ? "out" : "ctx");
    dagr_ctx_t *c = (dagr_ctx_t *)ctx; /* the strings are filled once, here */
    if (!c->mpi_library[0]) {
        launch_library_name(c->mpi_library, sizeof c->mpi_library);
        stop_names(&c->stop, c->stop_names, sizeof c->stop_names);
    }
    *out = (dagr_job_info_t){
        .ranks = ctx->size,
        .nodes = ctx->nnodes,
        .ranks_on_node = ctx->local_size,
        .max_ranks_per_node = ctx->max_local,
        .threads = ctx->cfg.threads,
        .total_threads = ctx->total_threads,
        .devices = ctx->ndev,
        .mpi_library = c->mpi_library,
        .thread_level = thread_level_name(MPI_THREAD_MULTIPLE),
        .launcher = ctx->launch.launcher,
        .pmi = ctx->launch.pmi,
        .slurm_tasks = (int)ctx->launch.allocation,
        .memory_limit = ctx->cfg.memory_limit,
        .node_memory = node_memory(),
        .spill_dir = ctx->store ? store_dir(ctx) : NULL,
        .comm_arena = ctx->arena.size,
        .stop_signals = c->stop_names,
        .gpus = ctx->gpu->count,
        .gpu_note = ctx->gpu->count ? "" : ctx->gpu->why,
    };
    return DAGR_OK;
}

int dagr_threads(const dagr_ctx_t *ctx) {
    return ctx ? ctx->cfg.threads : 0;
}
MPI_Comm dagr_comm(const dagr_ctx_t *ctx) {
    return ctx ? ctx->user_comm : MPI_COMM_NULL;
}

/* ------------------------------------------------------------------------------------------
 * What the modules see of the context (module.h)
 * ---------------------------------------------------------------------------------------- */

MPI_Comm ctx_comm(const dagr_ctx_t *ctx) {
    return ctx->comm;
}

dagr_status_t ctx_usable(const dagr_ctx_t *ctx) {
    DAGR_CHECK(!ctx->broken, DAGR_ERR_DIVERGED, "%s", ctx->broken_msg);
    return DAGR_OK;
}

uint64_t ctx_tasks_inserted(const dagr_ctx_t *ctx) {
    return ctx->div.count;
}

/* ------------------------------------------------------------------------------------------
 * Agreeing across ranks, failures, and the main thread's waits
 * ---------------------------------------------------------------------------------------- */

/* Tests req in a loop for up to spin_s seconds, then sleeps between tests, longer and longer
 * up to max_ns. */
static int wait_request(MPI_Request *req, double spin_s, long max_ns) {
    double until = dagr_now() + spin_s;
    long ns = 0;
    for (int spins = 1;; spins++) {
        int done = 0;
        int e = MPI_Test(req, &done, MPI_STATUS_IGNORE);
        if (e != MPI_SUCCESS || done) return e;
        /* A few tests first; then, while spinning, the clock only every 256. */
        if (ns == 0 && (spins < 64 || (spin_s > 0 && spins % 256) || dagr_now() < until)) continue;
        ns = ns ? (2 * ns < max_ns ? 2 * ns : max_ns) : 20000;
        struct timespec ts = {0, ns};
        nanosleep(&ts, NULL);
    }
}

int ctx_wait_request(MPI_Request *req) {
    /* Waiting ranks used to spin inside MPI_Allreduce for as long as the slowest rank
     * computed: a core taken from the workers, and MPICH's lock from the progress thread
     * (whose transfers then stalled; a 2-rank gemm in MPICH's network mode ran at half
     * speed). Test in a loop for up to 20 ms, which covers ranks arriving nearly together at
     * full speed (sleeping sooner cost a short wait_all up to 2x), then sleep between tests. */
    return wait_request(req, 20e-3, 200000);
}

int ctx_wait_patient(MPI_Request *req) {
    /* A background thread's wait delays no one, and every test in a loop is taken from the
     * workers computing on the same cores: an asynchronous checkpoint's thread spent up to
     * 170 ms of CPU a checkpoint spinning 20 ms in each of its agreements while the other
     * rank flushed (2 ranks on 2 cores, 2026-12-04). Up to 1 ms between tests. */
    return wait_request(req, 0, 1000000);
}

/* The lowest failing rank `first` (< size) sends its status and message to every rank. */
static dagr_status_t share_failure(MPI_Comm comm, int first, dagr_status_t mine, const char *msg,
                                   int (*wait)(MPI_Request *)) {
    int rank;
    MPI_Comm_rank(comm, &rank);
    struct {
        int status;
        char msg[DAGR_ERRMSG_MAX];
    } note = {.status = mine};
    if (rank == first) snprintf(note.msg, sizeof note.msg, "%s", msg ? msg : "");
    MPI_Request req;
    DAGR_TRY_MPI(MPI_Ibcast(&note, (int)sizeof note, MPI_BYTE, first, comm, &req));
    DAGR_TRY_MPI(wait(&req));
    dagr_error_set_raw(note.msg);
    return (dagr_status_t)note.status;
}

/* Collective: every rank passes its own status and message; all return the status of the
 * lowest-numbered failing rank, with its message, or DAGR_OK. */
static dagr_status_t agree(MPI_Comm comm, dagr_status_t mine, const char *msg,
                           int (*wait)(MPI_Request *)) {
    int rank, size;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    int bad = mine != DAGR_OK ? rank : size, first = size;
    MPI_Request req;
    DAGR_TRY_MPI(MPI_Iallreduce(&bad, &first, 1, MPI_INT, MPI_MIN, comm, &req));
    DAGR_TRY_MPI(wait(&req));
    if (first == size) return DAGR_OK;
    return share_failure(comm, first, mine, msg, wait);
}

dagr_status_t ctx_agree(MPI_Comm comm, dagr_status_t mine, const char *msg) {
    return agree(comm, mine, msg, ctx_wait_request);
}

dagr_status_t ctx_agree_patient(MPI_Comm comm, dagr_status_t mine, const char *msg) {
    return agree(comm, mine, msg, ctx_wait_patient);
}

static dagr_status_t sync_with(dagr_ctx_t *ctx, dagr_status_t mine, const char *msg,
                               int (*wait)(MPI_Request *)) {
    if (ctx->broken) {
        dagr_error_set_raw(ctx->broken_msg);
        return DAGR_ERR_DIVERGED;
    }
    divergence_enter(ctx);
    int first = ctx->size;
    DAGR_TRY(divergence_check(ctx, mine != DAGR_OK ? ctx->rank : ctx->size, &first, wait));
    if (first == ctx->size) return DAGR_OK;
    return share_failure(ctx->comm, first, mine, msg, wait);
}

dagr_status_t ctx_sync(dagr_ctx_t *ctx, dagr_status_t mine, const char *msg) {
    return sync_with(ctx, mine, msg, ctx_wait_request);
}

dagr_status_t ctx_sync_patient(dagr_ctx_t *ctx, dagr_status_t mine, const char *msg) {
    return sync_with(ctx, mine, msg, ctx_wait_patient);
}

void ctx_set_pending(dagr_ctx_t *ctx, const ctx_pending_t *p) {
    ctx->pending = p ? *p : (ctx_pending_t){0};
}

bool ctx_has_pending(const dagr_ctx_t *ctx) {
    return ctx->pending.finish != NULL;
}

dagr_status_t ctx_run_pending(dagr_ctx_t *ctx, dagr_status_t waited) {
    ctx_pending_t p = ctx->pending;
    if (!p.finish) return waited;
    ctx->pending = (ctx_pending_t){0}; /* taken first: the action may wait itself */
    char msg[DAGR_ERRMSG_MAX];
    snprintf(msg, sizeof msg, "%s", dagr_last_error());
    dagr_status_t s = p.finish(ctx, p.arg, waited);
    if (waited == DAGR_OK) return s;
    dagr_error_set_raw(msg);
    return waited;
}

dagr_status_t ctx_spawn_counted(dagr_ctx_t *ctx, const dagr_kernel_t *k, const void *args,
                                size_t args_size, int naccess, const dagr_access_t *access,
                                const dagr_task_opts_t *opts, atomic_long *done) {
    if (ctx) ctx->spawn_done = done;
    dagr_status_t s = dagr_spawn(ctx, k, args, args_size, naccess, access, opts);
    if (ctx) ctx->spawn_done = NULL;
    return s;
}

void ctx_record_failure(dagr_ctx_t *ctx, dagr_status_t s, const char *msg) {
    pthread_mutex_lock(&ctx->err_lock);
    if (ctx->err_status == DAGR_OK) {
        ctx->err_status = s;
        snprintf(ctx->err_msg, sizeof ctx->err_msg, "%s", msg);
    }
    pthread_mutex_unlock(&ctx->err_lock);
}

/* Waits until at most target nodes are in flight, or until ms milliseconds have passed (ms <
 * 0: no limit). Returns whether the target was reached. */
static bool wait_inflight(dagr_ctx_t *ctx, long target, long ms) {
    if (atomic_load(&ctx->inflight) <= target) return true;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&ctx->wait_lock);
    ctx->wait_target = target;
    atomic_store(&ctx->waiter, true);
    int e = 0;
    while (atomic_load(&ctx->inflight) > target && e != ETIMEDOUT) {
        if (ms < 0)
            pthread_cond_wait(&ctx->wait_cond, &ctx->wait_lock);
        else
            e = pthread_cond_timedwait(&ctx->wait_cond, &ctx->wait_lock, &until);
    }
    atomic_store(&ctx->waiter, false);
    pthread_mutex_unlock(&ctx->wait_lock);
    return atomic_load(&ctx->inflight) <= target;
}

void ctx_wait_inflight(dagr_ctx_t *ctx, long target) {
    wait_inflight(ctx, target, -1);
}

dagr_status_t ctx_wait_backlog(dagr_ctx_t *ctx, long target) {
    /* The first look after 100 ms: a look reads every peer's words with MPI_Fetch_and_op,
     * whose flush spins until the peer's MPI progresses, about 8 ms of CPU a look with two
     * ranks on two cores. Looking after 10 ms, a stencil whose backlog (2000 tasks) drains
     * in 20-40 ms spent 3.3 s a rank in 412 looks over 4 runs, and each run took 20 % longer
     * (ckpt_bench --only none, 2026-12-05). A hang is still found within seconds. */
    long ms = 100;
    bool polled = false;
    while (!wait_inflight(ctx, target, ms)) {
        /* A peer's collective proves the graphs differ: join its check (every rank then gets
         * DAGR_ERR_DIVERGED). Otherwise look again later, less often. */
        if (divergence_peer_behind(ctx)) {
            dagr_status_t s = ctx_sync(ctx, DAGR_OK, NULL);
            if (s != DAGR_OK) return s;
        } else if (divergence_all_stalled(
                       ctx, sched_all_idle(ctx) && !device_busy(ctx) && !comm_moving(ctx),
                       atomic_load(&ctx->nodes_done))) {
            /* Every rank waits here with nothing moving anywhere: the graphs differ. */
            divergence_stall_entry(ctx, true);
            dagr_status_t s = ctx_sync(ctx, DAGR_OK, NULL);
            divergence_stall_entry(ctx, false);
            if (s != DAGR_OK) return s;
        }
        ms = ms < 500 ? 2 * ms : 1000;
        polled = true;
    }
    /* No longer waiting: a stale "stalled" must not make a peer think every rank is. */
    if (polled) divergence_stall_entry(ctx, false);
    return DAGR_OK;
}

void ctx_node_finished(dagr_ctx_t *ctx) {
    atomic_fetch_add_explicit(&ctx->nodes_done, 1, memory_order_relaxed);
    long left = atomic_fetch_sub(&ctx->inflight, 1) - 1;
    /* Pairs with the waiter's store-then-load: one of the two sees the other. */
    if (atomic_load(&ctx->waiter) && left <= ctx->wait_target) {
        pthread_mutex_lock(&ctx->wait_lock);
        pthread_cond_signal(&ctx->wait_cond);
        pthread_mutex_unlock(&ctx->wait_lock);
    }
}
