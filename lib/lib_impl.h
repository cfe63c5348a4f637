/* Internal declarations shared by the files of lib/. Public headers never include this.
 *
 * The model, in one paragraph: every rank inserts the same tasks in the same order. For each
 * data handle every rank keeps the same bookkeeping (how many writes were inserted = the
 * version, which rank holds the latest version = the holder). A rank instantiates only
 * the nodes it executes: its own tasks, plus a SEND node for each version it holds that
 * another rank's task reads, plus a RECV node for each version its own tasks read that
 * another rank holds. Local dependencies between these nodes follow per handle from
 * insertion order (last writer + readers since), so a rank never asks anyone what to do.
 * Each rank keeps at most one local buffer per handle ("buf"): the owner's home buffer, or a
 * transient copy on other ranks that is freed once a newer version exists elsewhere and
 * its last local user has finished. */
#ifndef DAGR_LIB_IMPL_H
#define DAGR_LIB_IMPL_H

#include <dagr/dagr.h>

#include <mpi.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>
#if defined(__x86_64__)
#include <x86intrin.h>
#endif

#include "module.h" /* what the modules see of lib/, errors included */

/* ---------------------------------------------------------------------------------------
 * Nodes (node.c): the unit the scheduler and the communication engine execute
 * ------------------------------------------------------------------------------------- */

typedef enum node_kind { NODE_TASK, NODE_SEND, NODE_RECV } node_kind_t;

typedef struct node node_t;

typedef struct node_access {
    struct dagr_data *h;
    uint8_t mode; /* DAGR_READ / DAGR_WRITE / DAGR_RW, merged over duplicates */
} node_access_t;

#define NODE_INLINE_SUCC 4
#define NODE_INLINE_ARGS 64
/* Accesses a task holds without an allocation (more are on the heap: any number works). */
#define NODE_INLINE_ACC 8

struct node {
    atomic_int npred; /* unfinished predecessors, +1 while the node is being inserted */
    atomic_int refs;  /* 1 until completion + 1 per handle slot (last_writer/readers) */
    atomic_bool done;
    atomic_bool poisoned; /* a predecessor failed: do not run, pass the failure on */
    bool failed;          /* the node itself failed */
    bool retried;         /* the body asked to run again later */
    uint8_t kind;
    uint8_t where; /* NODE_TASK: dagr_where_t */
    int priority;
    uint64_t order; /* ready-queue tie-break: FIFO among equal priorities */
    uint64_t seq;   /* insertion number of the task (or of the task that caused the transfer) */
    pthread_mutex_t lock; /* guards done/succ */
    node_t **succ;
    int nsucc, capsucc;
    node_t *succ_inline[NODE_INLINE_SUCC];

    /* NODE_TASK */
    dagr_cpu_fn_t fn;        /* the body to run: fn, then more[0 ..] after DAGR_TASK_NEXT */
    atomic_long *done_count; /* ctx_spawn_counted: one more when the node completes */
    dagr_cpu_fn_t more[DAGR_KERNEL_MORE_CPU];
    dagr_device_fn_t dev_fn; /* the device body, run first on a device (NULL: none) */
    const char *name;
    int nacc;  /* unique handles (incl. the queue's) */
    int nuser; /* accesses as the user gave them */
    /* What the trace records of the task (trace.c, set only while ctx->trace is on), on the
     * cache line run_task reads anyway: a line of their own cost the worker a miss per task. */
    uint32_t tr_node;   /* the node's record in the rank's graph, or TRACE_NONE */
    uint32_t tr_kernel; /* interned kernel name */
    double flops;       /* declared by the task (dagr_task_opts_t.flops) */
    uint64_t khash;     /* its kernel name's hash (perfmodel.c) */
    uint64_t pm_key;    /* its performance model's key (kernel and size), 0 until needed */
    int64_t est_ns;     /* the run time expected where it was queued (device_place), or 0 */
    node_access_t *acc; /* nacc of them: acc_inline, or a heap block that also holds map */
    int *map;           /* user access i -> acc[map[i]]: map_inline, or in acc's heap block */
    void *args;
    size_t args_size;
    unsigned char args_inline[NODE_INLINE_ARGS];

    /* NODE_SEND / NODE_RECV: acc[0] is the handle */
    uint64_t version;
    int peer;
    void *staging;     /* RECV: block the data lands in before the copy to buf; SEND: packed copy */
    bool staging_heap; /* RECV: staging is a malloc'ed block, not an arena block */
    bool pinned;       /* the handle's buffer is pinned until the data is in / out (store.c) */
    uint8_t p2p_left;  /* MPI requests of the transfer not yet complete (comm_rma.c) */
    bool asked;        /* RECV of a handle whose size tasks decide: waiting for the holder to
                          say the version's size before choosing where the bytes land */

    /* When the engine asked for the data (RECV) or started sending it (SEND); trace.c, only
     * while ctx->trace is on. */
    int64_t tr_t0;

    node_t *next_free; /* in the context's node pool, once the node is dead */

    node_access_t acc_inline[NODE_INLINE_ACC + 1]; /* + 1: an in-order queue's handle */
    int map_inline[NODE_INLINE_ACC];
};

/* Dead nodes kept for reuse (node.c). Any thread frees a node (pushes onto `returned`, a
 * lock-free stack); only the inserting thread allocates, taking the whole stack at once when
 * its private list runs dry, so neither side can see the ABA problem. A task costs a few
 * hundred nanoseconds, and malloc/free of its ~0.8 KB record, across threads, was a large
 * share of it (the heap lock, and page faults each time glibc gave the memory back). The pool
 * keeps at most NODE_POOL_MAX records (about 6.5 MB); beyond that dead nodes are freed, so a
 * burst of tasks in flight does not leave its peak memory behind. */
#define NODE_POOL_MAX 8192
typedef struct node_pool {
    _Atomic(node_t *) returned;
    atomic_long pooled; /* records in `returned` and `spare` (approximately, while in use) */
    node_t *spare;      /* the inserting thread's */
} node_pool_t;

/* Frees every pooled node (at finalize, once no thread runs). */
void node_pool_fini(node_pool_t *p);

node_t *node_new(struct dagr_ctx *ctx, node_kind_t kind);
/* Room for nacc unique accesses and nuser user accesses (before filling acc and map); false
 * when out of memory. */
bool node_reserve(node_t *n, int nacc, int nuser);
void node_ref(node_t *n);
void node_unref(struct dagr_ctx *ctx, node_t *n);
/* Adds the edge pred -> succ unless pred has finished (then poison passes at once). */
void node_edge(struct dagr_ctx *ctx, node_t *pred, node_t *succ);
/* Drops the insertion guard; the node is handed to its executor when nothing is pending. */
void node_release_guard(struct dagr_ctx *ctx, node_t *n);
/* Marks the node finished (failed or not), releases its handles, wakes its successors. */
void node_complete(struct dagr_ctx *ctx, node_t *n);

/* ---------------------------------------------------------------------------------------
 * Data handles (data.c)
 * ------------------------------------------------------------------------------------- */

typedef enum buf_kind { BUF_NONE, BUF_HOME, BUF_ARENA, BUF_HEAP } buf_kind_t;

struct dagr_data {
    struct dagr_ctx *ctx;
    uint64_t id; /* creation number, identical on every rank */
    /* The local copy's size. Fixed at creation, except for a handle whose size tasks decide
     * (`dynamic`): then it is the size of the version the local copy holds, set under lock
     * by the task writing it or the receive bringing it (data_set_size), and it may differ
     * from rank to rank until a wait brings the latest version home. */
    size_t bytes;
    /* Shape: a column-major rows x cols matrix of elsize-byte elements. Only the owner's
     * home buffer may be strided (home_ld > rows); every other copy, and every transfer, is
     * packed. Plain handles are bytes x 1 of 1-byte elements. */
    size_t rows, cols, elsize, home_ld;
    int owner;
    bool attached;
    bool is_queue;
    bool dynamic; /* dagr_data_create_dynamic: each version's writer sets its size */
    void *home;   /* owner only: the persistent buffer (ours or the caller's) */
    atomic_int refs;

    /* Graph bookkeeping, touched only by the inserting (main) thread. */
    int holder;          /* rank holding the latest version */
    uint64_t *have;      /* on the holder: bitset of ranks holding the latest version */
    node_t *last_writer; /* last local node writing buf */
    node_t **readers;    /* local nodes reading buf since last_writer */
    int nreaders, capreaders;
    struct dagr_data *prev, *next; /* the context's live list */

    /* Local storage, guarded by lock (workers and the comm thread touch it too). */
    pthread_mutex_t lock;
    uint64_t version;      /* writes inserted so far: the latest version's number */
    int64_t local_version; /* version buf holds or will hold after pending nodes; -1 none */
    void *buf;
    uint8_t buf_kind;
    int pending; /* local nodes not finished that use buf */

    /* Devices (device.c). wgen counts changes of the local host copy's contents (guarded by
     * lock): a device copy is valid while it holds the same generation. dev: one copy per
     * device, allocated at the first use on a device. */
    uint64_t wgen;
    struct dev_copy *dev;
    /* Lazy write-back: 1 + the device whose copy holds generation wgen while the host copy
     * holds an older one (what a task on that device wrote, not yet copied back); 0 when the
     * host copy is current. Guarded by lock. */
    int8_t dirty;

    /* Out of core (store.c; only with a memory limit, ctx->store): the handle's copy on the
     * spill node below host memory. Guarded by lock. */
    bool spilled;            /* buf (of buf_kind) is not in memory: it is in the spill file at slot,
                                or all zeros when slot is NULL (a home never touched yet) */
    bool disk_clean;         /* the slot holds what buf holds: dropping buf needs no write */
    int pins;                /* threads using buf right now (a task body, a transfer, a fetch) */
    struct spill_slot *slot; /* its copy's place on the spill node (spill.c), NULL none */
    /* Guarded by the store's lock: the LRU list of resident buffers that may be spilled. */
    bool tracked;
    struct dagr_data *lru_prev, *lru_next;
};

/* A 64-byte aligned buffer of `bytes`, zeroed when `zero`, from the data pool (pool.c) from
 * POOL_MIN bytes on, else from malloc; data_buf_free (module.h) releases it. */
void *data_alloc_zeroed(size_t bytes, bool zero);

/* ------------------------------------------------------------------------------------------
 * The data pool (pool.c): big data buffers in chunks of huge pages whose unused pages go back
 * to the system beyond what it keeps. Process-wide; thread-safe.
 * ---------------------------------------------------------------------------------------- */
#define POOL_MIN ((size_t)64 << 10)
typedef struct pool_stats {
    size_t resident;      /* bytes of pages touched and not given back */
    size_t free_resident; /* of those, bytes no block uses (what keep bounds) */
    size_t in_use;        /* bytes of live blocks, headers included */
    size_t peak_resident;
    size_t given_back; /* bytes of pages given back so far */
} pool_stats_t;
/* keep: bytes of free memory in resident pages the pool keeps for reuse (it applies from the
 * next free on); on false, new buffers come from malloc (those of the pool stay valid).
 * Callable any time. */
void pool_configure(bool on, size_t keep);
/* Keeps bytes more of free memory resident than DAGR_POOL_KEEP says (0: no more), for
 * buffers that will be asked for again (data_buf_hold). */
void pool_hold(size_t bytes);
/* A 64-byte aligned block of bytes, NULL when the pool is off or out of memory. */
void *pool_alloc(size_t bytes);
/* Frees a block of pool_alloc (aborts, naming it, on anything else). */
void pool_free(void *p);
/* The bytes a block of pool_alloc can hold (at least what was asked). */
size_t pool_block_bytes(const void *p);
bool pool_owns(const void *p);
void pool_stats(pool_stats_t *out);
/* True when the owner's home buffer is strided, so that copying it needs data_pack. */
static inline bool data_strided(const struct dagr_data *h) {
    return h->home_ld != h->rows && h->bytes > 0;
}
/* Copies the home buffer into dst packed / dst packed into the home buffer. */
void data_pack(const struct dagr_data *h, void *dst);
void data_unpack(struct dagr_data *h, const void *src);
/* Leading dimension (elements) of the buffer a task sees. */
size_t data_ld(const struct dagr_data *h);
/* Takes a reference / drops one; the last drop frees the handle. */
void data_ref(struct dagr_data *h);
void data_unref(struct dagr_data *h);
/* A reference on h unless it is dying (its last reference already dropped: it only waits for
 * a lock to forget it); for threads that find h in a cache (the store's, a device's). */
bool data_ref_if_alive(struct dagr_data *h);
/* A handle whose size tasks decide: sets its local copy's size. SIZE_KEEP: the first
 * min(old, new) bytes stay and the rest are zeros (a task resizing what it writes);
 * SIZE_KEEP_RAW: the same but the new bytes are left unset (a body that writes them all);
 * SIZE_DROP: the contents go, unset (a receive overwrites them). The owner's home stays its
 * home. The caller has the handle to itself (the task writing it, or the receive of its next
 * version). Any thread, h->lock not held. Errors: DAGR_ERR_NOMEM. */
typedef enum size_mode { SIZE_DROP, SIZE_KEEP, SIZE_KEEP_RAW } size_mode_t;
dagr_status_t data_set_size(struct dagr_data *h, size_t bytes, size_mode_t mode);
/* The host copy of h changed (a write, a receive, a resize, a new buffer): copies of it on
 * devices are stale. h->lock held / not held. */
static inline void data_written_locked(struct dagr_data *h) {
    h->wgen++;
    h->dirty = 0; /* a newer version than any device's */
}
void data_written(struct dagr_data *h);
/* A host task is about to write: data_written for each handle it writes. */
void data_host_writing(node_t *n);
/* Gives h a local buffer if it has none (for a write on a rank that holds no copy). */
dagr_status_t data_ensure_buf(struct dagr_data *h);
/* Local node bookkeeping: one more / one fewer pending user of buf. */
void data_pending_add(struct dagr_data *h);
void data_pending_done(struct dagr_data *h);
/* Marks that a newer version was written on another rank; frees an idle copy. */
void data_superseded(struct dagr_data *h, int new_holder);
/* The zero-byte handle behind an in-order queue. */
struct dagr_data *queue_handle(dagr_queue_t *q);
/* After a global wait: forget copies on ranks other than the owner. */
void data_flush_copies(struct dagr_data *h);
/* have-bitset helpers (on the holder). */
bool data_have_test(struct dagr_data *h, int rank);
void data_have_set(struct dagr_data *h, int rank);
void data_have_reset(struct dagr_data *h, int only_rank);

/* ---------------------------------------------------------------------------------------
 * Memory nodes. A rank's data lives in host memory, on its devices (device.c: a test device,
 * testdev.c; GPUs to come) and, out of core, in the spill file below host memory (spill.c).
 * Each node is reached through the same small interface: allocate, free, copy in and out.
 * ------------------------------------------------------------------------------------- */

/* One copy between host memory and a node's: height rows of width bytes, row r at
 * dst + r * dpitch and src + r * spitch (a column-major matrix with a leading dimension: rows
 * are its columns; a contiguous block is one row). to_node: dst is the node's memory, src the
 * host's; else the other way round. */
typedef struct mem_copy {
    void *dst;
    const void *src;
    size_t dpitch, spitch, width, height;
    bool to_node;
} mem_copy_t;

/* How dagr moves data to and from one kind of memory node. */
typedef struct mem_ops {
    const char *kind;
    void *(*alloc)(void *impl, size_t bytes); /* NULL: no memory */
    void (*free)(void *impl, void *p, size_t bytes);
    /* Starts a copy; *done turns true when it is made (at once, or later from another thread,
     * which then calls device_copy_done(dev)). The caller may hold the device's lock. Returns
     * false when it failed at once (errno says why; *done is set): the spill file's can, a
     * disk being full; the test device's never do. */
    bool (*copy)(void *impl, const mem_copy_t *c, atomic_bool *done);
    double (*busy)(void *impl); /* seconds its copies took so far (delays left out) */
    void (*stop)(void *impl);   /* joins its threads, frees itself */
    /* A GPU's only (NULL otherwise: its bodies run on host memory, CPU bodies included).
     * stream: selects the GPU on the calling thread and gives the queue device bodies use
     * (task->stream); sync: waits until that queue is empty, NULL or CUDA's error. */
    void *(*stream)(void *impl);
    const char *(*sync)(void *impl);
} mem_ops_t;

/* The spill file's node (spill.c): allocations are slots of a file created in dir and
 * unlinked at once; copies are synchronous file I/O. NULL with errno set when the file cannot
 * be created. */
typedef struct spill_slot spill_slot_t;
void *spill_start(const char *dir);
extern const mem_ops_t spill_ops;
/* How long the file is now (its end is cut off as slots at its end are freed). */
uint64_t spill_file_bytes(void *impl);

/* ---------------------------------------------------------------------------------------
 * Out-of-core tile store (store.c). With a memory limit (DAGR_MEMORY_LIMIT), the buffers
 * dagr allocates itself (owners' homes, copies on the heap) count against it, and buffers
 * no thread is using (those no inserted task needs first, then the least recently used) are
 * written to a spill file and read back on demand. Buffers the caller attached and receive-arena
 * blocks never move. Without a limit ctx->store is NULL and none of this runs.
 * ------------------------------------------------------------------------------------- */

typedef struct store store_t;

/* Collective: opens the spill file when cfg.memory_limit is set; same status everywhere. */
dagr_status_t store_start(struct dagr_ctx *ctx);
void store_stop(struct dagr_ctx *ctx);
/* The spill directory ("" without a limit). */
const char *store_dir(const struct dagr_ctx *ctx);
typedef enum pin_mode {
    PIN_READ,     /* the contents are read */
    PIN_WRITE,    /* read and written */
    PIN_OVERWRITE /* every byte is overwritten: a spilled copy need not be read back */
} pin_mode_t;
/* Makes h's local buffer resident (reading it back, or allocating a zeroed one when the rank
 * holds none) and keeps it in memory until data_unpin. Any thread, no lock held. Errors:
 * DAGR_ERR_NOMEM, DAGR_ERR_IO (the spill file could not be read). */
dagr_status_t data_pin(struct dagr_data *h, pin_mode_t mode);
void data_unpin(struct dagr_data *h);
/* h->lock held (or h is dying: no other reference): h's copy is about to be freed, or h
 * itself: the store forgets its buffer and its slot in the spill file. */
void store_forget_locked(struct dagr_data *h);
/* h->lock held: h's buffer changed size (data_set_size: h->bytes and h->buf are the new
 * ones; old_bytes the size before). Moves the store's count of h from old to new, and gives
 * up its slot in the spill file, which holds an older version. */
void store_resized_locked(struct dagr_data *h, size_t old_bytes);

/* ---------------------------------------------------------------------------------------
 * Graph insertion (graph.c)
 * ------------------------------------------------------------------------------------- */

/* A task's access to one handle, merged over the accesses naming it (task.c). */
typedef struct uniq {
    struct dagr_data *h;
    uint8_t mode;
} uniq_t;
/* The local task n: RECVs for the versions it reads that this rank lacks, its local
 * dependencies, then it may run (the insertion guard dropped). */
dagr_status_t graph_add_task(struct dagr_ctx *ctx, node_t *n, const uniq_t *u, int nu, uint64_t seq,
                             int priority);
/* Another rank's task: SENDs of the versions it reads that this rank holds and the runner
 * lacks; the handles it writes move on to it. */
dagr_status_t graph_plan_remote(struct dagr_ctx *ctx, const uniq_t *u, int nu, int runner,
                                uint64_t seq);
/* Makes the owner's home buffer hold the latest version (inserts RECV/SEND as needed). */
dagr_status_t graph_migrate_home(struct dagr_ctx *ctx, struct dagr_data *h);
/* Drops the handle's references to finished nodes (last_writer/readers). */
void graph_forget_nodes(struct dagr_ctx *ctx, struct dagr_data *h);

/* ---------------------------------------------------------------------------------------
 * Scheduler (sched.c)
 * ------------------------------------------------------------------------------------- */

/* A ready queue: a priority heap (higher priority first, then first-ready first; retried
 * tasks after the others). The caller holds whatever lock guards it. */
typedef struct rq {
    node_t **heap;
    size_t n, cap;
    uint64_t next_order;
} rq_t;
bool rq_push(rq_t *q, node_t *n); /* false: out of memory */
node_t *rq_pop(rq_t *q);          /* NULL when empty */
void rq_free(rq_t *q);

typedef struct sched {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    rq_t rq; /* the host workers' ready queue */
    int nsleeping;
    bool stop;
    int nworkers;
    pthread_t *workers;
} sched_t;

/* Where a running task's bodies leave why they failed, and what dagr_task_resize and
 * dagr_task_defer need (view->internal_ points here). */
typedef struct task_note {
    dagr_status_t status;
    bool forced;                   /* dagr_task_resize failed: the task fails whatever the
                                      body returns */
    int device;                    /* the device running it, -1 a host worker */
    bool gpu;                      /* that device is a GPU: only the device body can run */
    void *stream;                  /* the GPU's queue for device bodies (task->stream) */
    struct dagr_task_token *token; /* dagr_task_defer's, or NULL */
    /* The running task and its view's arrays (dagr_task_resize updates them). */
    node_t *node;
    void **buf;
    size_t *bytes, *ld;
    char msg[DAGR_ERRMSG_MAX];
} task_note_t;
void task_note_init(task_note_t *note, node_t *n, int device);
/* Calls n's bodies on this thread (one answering DAGR_TASK_NEXT hands it to the next) over
 * accbuf[j], accld[j] for its unique accesses j (NULL: each handle's local buffer and leading
 * dimension). A body answering DAGR_TASK_ASYNC leaves note->token (hand it to token_arrive
 * once the pins are recorded); errors are in the note. */
dagr_task_result_t task_call(struct dagr_ctx *ctx, node_t *n, int worker, void *const *accbuf,
                             const size_t *accld, task_note_t *note);
/* Records a task's failure once, "task 'name' (#seq) failed on rank r: why". */
void task_failed(struct dagr_ctx *ctx, node_t *n, dagr_status_t status, const char *why);
/* A task's end: the failure (status != DAGR_OK) recorded, the first `pinned` accesses
 * unpinned (out of core), completion. */
void task_finish(struct dagr_ctx *ctx, node_t *n, dagr_status_t status, const char *why,
                 int pinned);
/* The body's return of a deferred task (after token_set_pinned); the second of it and
 * dagr_task_complete finishes the task. */
void token_set_pinned(struct dagr_task_token *t, int pinned);
void token_arrive(struct dagr_task_token *t);

dagr_status_t sched_start(struct dagr_ctx *ctx);
void sched_stop(struct dagr_ctx *ctx);
/* A ready task: to a device's queue when it should run there (device.c), else the host's. */
void sched_push(struct dagr_ctx *ctx, node_t *n);
void sched_push_host(struct dagr_ctx *ctx, node_t *n);
/* Fails a ready node no queue could take (out of memory). */
void sched_push_failed(struct dagr_ctx *ctx, node_t *n);
/* Tasks waiting in the host queue (a hint, read without the lock). */
size_t sched_host_load(const struct dagr_ctx *ctx);
/* Any thread, no lock: whether every worker sleeps for want of a task (a hint; racy). */
bool sched_all_idle(const struct dagr_ctx *ctx);

/* ---------------------------------------------------------------------------------------
 * Devices (device.c, testdev.c). A device is a memory node with its own worker: a ready task
 * placed there gets a copy of each of its handles in the device's memory (copied in
 * asynchronously, several tasks ahead) and runs there. What it writes stays on the device until
 * the host copy is needed (lazy write-back, h->dirty; device.c says when), except for handles
 * that are written through. Copies no task uses are evicted least recently used first when the
 * device's memory budget is full, a copy newer than the host's written back first.
 * ------------------------------------------------------------------------------------- */

typedef struct device device_t;

/* What the environment asks for (DAGR_TEST_DEVICES, DAGR_TEST_DEVICE_MEMORY,
 * DAGR_TEST_DEVICE_DELAY). */
typedef struct device_env {
    int test_devices;
    size_t test_memory;
    long test_delay_us;
} device_env_t;
/* Reads the environment; DAGR_ERR_ARG naming a bad value. Local. */
dagr_status_t device_env_parse(device_env_t *e);
/* The test device's memory node (testdev.c): host memory under a budget, copies made by a
 * thread of its own after an optional delay (recorded in ctx's trace as device `index`'s).
 * Returns its impl for ops, or NULL. alloc and free are called under the device's lock only. */
void *testdev_start(struct dagr_ctx *ctx, device_t *dev, int index, size_t budget, long delay_us);
extern const mem_ops_t testdev_ops;
#ifdef DAGR_HAVE_CUDA
/* A GPU's memory node and streams (gpu/cuda_node.c), for CUDA device `id`; NULL when its
 * streams cannot be made. */
void *cuda_node_start(struct dagr_ctx *ctx, device_t *dev, int id);
extern const mem_ops_t cuda_ops;
#endif

/* The devices device_start will start: the test devices, then the GPUs the rank found (the
 * trace sizes its rows by it before they start). */
int device_planned(const struct dagr_ctx *ctx);
/* Starts the devices ctx->denv asks for, their workers included (after sched_start). */
dagr_status_t device_start(struct dagr_ctx *ctx);
void device_stop(struct dagr_ctx *ctx);
/* A ready task: queues it on a device and returns true when it should run there. */
bool device_place(struct dagr_ctx *ctx, node_t *n);
/* ---------------------------------------------------------------------------------------
 * Performance models (perfmodel.c): each kernel's expected run time on each class of worker,
 * learned from the tasks that ran; device_place chooses with them.
 * ------------------------------------------------------------------------------------- */

typedef enum pm_class { PM_HOST, PM_TEST, PM_GPU, PM_CLASSES } pm_class_t;
typedef struct perfmodel perfmodel_t;
/* Tasks each class runs of each (kernel, size) before placement trusts its model there. */
#define PM_CALIB 3

typedef struct pm_estimate {
    double seconds[PM_CLASSES]; /* expected run time, or -1 unknown */
    uint32_t tried[PM_CLASSES]; /* tasks measured or being measured there */
} pm_estimate_t;

dagr_status_t pm_start(struct dagr_ctx *ctx);
void pm_stop(struct dagr_ctx *ctx);
/* Any thread: n's expected run times. */
void pm_estimate(struct dagr_ctx *ctx, node_t *n, pm_estimate_t *out);
/* n was placed on class c to be measured there. */
void pm_calibrating(struct dagr_ctx *ctx, node_t *n, pm_class_t c);
/* Any thread: n's bodies ran `seconds` on class c. No-op without models. */
void pm_record(struct dagr_ctx *ctx, node_t *n, pm_class_t c, double seconds);

/* A copy finished (any thread): wakes the device's worker. */
void device_copy_done(device_t *dev);
/* A deferred task that ran on device d was completed (dagr_task_complete). */
void device_task_done(struct dagr_ctx *ctx, node_t *n, int d, dagr_status_t status,
                      const char *why);
/* Any thread, no lock: whether a device has a task in its queue or in flight (a hint). */
bool device_busy(const struct dagr_ctx *ctx);
/* h is dying: frees its device copies. */
void device_forget(struct dagr_data *h);
/* Makes h's host copy current: a device's newer copy (h->dirty) is copied back, into a host
 * buffer made (out of core: pinned) for it. Any thread, no lock held. Errors: those of
 * data_pin and data_ensure_buf. */
dagr_status_t device_writeback(struct dagr_data *h);
/* Collective-free, main thread, nothing in flight (dagr_wait_all): every live handle's host
 * copy made current, so that the caller's buffers, fetches and checkpoints see the latest
 * versions. Returns the first error. */
dagr_status_t device_writeback_all(struct dagr_ctx *ctx);
/* dagr_task_resize from a body running on device di: h's host copy and its copy on the device
 * take the new size (the first min(old, new) bytes the body sees stay, zeros after); *buf is
 * the device copy's new buffer. Errors: DAGR_ERR_NOMEM. */
dagr_status_t device_resize(struct dagr_data *h, int di, size_t bytes, void **buf);
/* Any thread, no lock: whether h's newest copy is on a device (a hint; device_writeback
 * checks under the lock). */
static inline bool data_dirty_hint(const struct dagr_data *h) {
    return __atomic_load_n(&h->dirty, __ATOMIC_RELAXED) != 0;
}

/* ---------------------------------------------------------------------------------------
 * Receive arena (arena.c): a first-fit allocator over a region of the RMA window
 * ------------------------------------------------------------------------------------- */

typedef struct arena_block arena_block_t;
typedef struct arena {
    pthread_mutex_t lock;
    char *base;
    size_t size;
    arena_block_t *free_list; /* sorted by offset, coalesced */
    size_t used;
} arena_t;

dagr_status_t arena_init(arena_t *a, void *base, size_t size);
void arena_fini(arena_t *a);
/* Returns a 64-byte aligned block of `bytes`, or NULL when no free block is large enough. */
void *arena_alloc(arena_t *a, size_t bytes);
void arena_free(arena_t *a, void *p, size_t bytes);
bool arena_contains(const arena_t *a, const void *p);

/* ---------------------------------------------------------------------------------------
 * Communication engine (comm_rma.c)
 * ------------------------------------------------------------------------------------- */

typedef struct comm comm_t;

dagr_status_t comm_start(struct dagr_ctx *ctx);
void comm_stop(struct dagr_ctx *ctx);
/* Hands a SEND or RECV node whose local dependencies are met to the engine. */
void comm_push(struct dagr_ctx *ctx, node_t *n);
/* Allocates a local copy buffer for h in the receive arena, or NULL if it is full. */
void *comm_arena_alloc(struct dagr_ctx *ctx, size_t bytes);
void comm_arena_free(struct dagr_ctx *ctx, void *p, size_t bytes);
/* Called by the last worker going idle: the progress thread then polls MPI at its idle pace. */
void comm_workers_idle(struct dagr_ctx *ctx);
/* Any thread, no lock: whether bytes of a transfer are moving through MPI now (a hint). */
bool comm_moving(const struct dagr_ctx *ctx);

/* ---------------------------------------------------------------------------------------
 * Divergence detection (divergence.c)
 * ------------------------------------------------------------------------------------- */

typedef struct divergence {
    uint64_t hash;  /* running hash of everything inserted */
    uint64_t count; /* tasks inserted since init */
    uint64_t base;  /* count at the last successful check */
    uint64_t *log;  /* log[k] = hash after task base + (k+1)*stride - 1 */
    size_t nlog, caplog;
    uint64_t stride;
    uint64_t ncoll; /* collective calls entered since dagr_init (ctx_sync) */
    MPI_Win win;    /* two published words per rank: see divergence.c */
    /* The main thread's view of a stall of every rank (divergence_all_stalled). */
    bool stall_seen;
    uint64_t stall_sig;
    double stall_since;
} divergence_t;

void divergence_init(divergence_t *d);
void divergence_fini(divergence_t *d);
void divergence_mix(divergence_t *d, uint64_t word);
/* Closes the current task's record (call once per spawned task). */
void divergence_task_end(divergence_t *d);
/* Collective: DAGR_OK if every rank inserted the same; else DAGR_ERR_DIVERGED everywhere. The
 * same allreduce finds the lowest rank passing bad < size (*first_bad, size if none). Its
 * requests complete through wait (ctx_wait_request or ctx_wait_patient). */
dagr_status_t divergence_check(struct dagr_ctx *ctx, int bad, int *first_bad,
                               int (*wait)(MPI_Request *));
/* Collective: the window of published words (at the end of dagr_init / in dagr_finalize). */
dagr_status_t divergence_start(struct dagr_ctx *ctx);
void divergence_stop(struct dagr_ctx *ctx);
/* Main thread, at the start of every collective call: publishes its number and the count. */
void divergence_enter(struct dagr_ctx *ctx);
/* Main thread, waiting for backlog room: true when a peer waits in the collective call this
 * rank has not reached, having inserted fewer tasks than this rank has (the graphs differ). */
bool divergence_peer_behind(struct dagr_ctx *ctx);
/* Main thread, waiting for backlog room: publishes whether this rank is stalled (idle, nothing
 * moving) and how many nodes it finished; true once every rank has stayed stalled, with
 * nothing finished anywhere, for a while: the graphs differ. */
bool divergence_all_stalled(struct dagr_ctx *ctx, bool stalled, uint64_t finished);
/* Marks this rank's entry into the check that a stall of every rank caused (peers join it),
 * and clears the mark after. */
void divergence_stall_entry(struct dagr_ctx *ctx, bool entering);

/* ---------------------------------------------------------------------------------------
 * Observability: trace, DOT and summary (trace_impl.h), progress (progress.c)
 * ------------------------------------------------------------------------------------- */

#include "trace_impl.h"

/* Collective: starts / stops the progress line (ctx->cfg.progress). */
dagr_status_t progress_start(struct dagr_ctx *ctx);
void progress_stop(struct dagr_ctx *ctx);

/* ---------------------------------------------------------------------------------------
 * The launch check (launch.c) and stop signals (stop.c)
 * ------------------------------------------------------------------------------------- */

/* Who started this process, and how many processes it says it started. */
typedef struct launch_info {
    char launcher[48]; /* "mpiexec (MPICH's Hydra)", "srun", "OpenMPI's mpiexec", "none" */
    char pmi[24];      /* "PMI-1 (Hydra)", "PMI-2", "PMIx", "none" */
    long expected;     /* processes started; -1: unknown (no check) */
    long allocation;   /* tasks of the Slurm job this process runs in (SLURM_NTASKS); 0: none */
    char source[32];   /* where expected came from ("PMI_SIZE", ...) */
} launch_info_t;
/* Local: reads the environment (and asks PMIx when built with it). */
void launch_detect(launch_info_t *l);
/* Local: DAGR_ERR_LAUNCH naming the launcher, the sizes and the fix when MPI_COMM_WORLD's
 * size is not what the launcher started. */
dagr_status_t launch_check(const launch_info_t *l, int world);
/* "MPICH 4.0.2": the first line of MPI_Get_library_version, tidied. */
void launch_library_name(char *out, size_t size);

#define STOP_MAX_SIGNALS 8
typedef struct stop_signals {
    int n;
    int sig[STOP_MAX_SIGNALS];
    struct sigaction old[STOP_MAX_SIGNALS]; /* restored at finalize */
} stop_signals_t;
/* "USR1,TERM" (names with or without SIG, any case, or numbers; "" or NULL: none). */
dagr_status_t stop_parse(const char *spec, stop_signals_t *out);
/* "USR1,TERM" back from the numbers. */
void stop_names(const stop_signals_t *s, char *buf, size_t size);
dagr_status_t stop_install(stop_signals_t *s);
void stop_restore(stop_signals_t *s);
/* Completes dagr_stop_requested's last allreduce and frees its communicator. */
void stop_fini(struct dagr_ctx *ctx);

/* ---------------------------------------------------------------------------------------
 * The context (context.c)
 * ------------------------------------------------------------------------------------- */

struct dagr_ctx {
    MPI_Comm comm;      /* dagr's own collectives */
    MPI_Comm user_comm; /* the duplicate handed out by dagr_comm() */
    int rank, size;
    int local_rank, local_size; /* on this node */
    int nnodes, max_local;      /* nodes of the job, most ranks on one */
    int total_threads;          /* worker threads of all ranks together */
    bool own_mpi;
    launch_info_t launch;
    stop_signals_t stop;
    bool stop_seen;       /* dagr_stop_requested said true once: it stays true */
    MPI_Comm stop_comm;   /* dagr_stop_requested's allreduces (stop.c) */
    MPI_Request stop_req; /* the last one, answered at the next call */
    int stop_in, stop_out;
    ctx_pending_t pending;   /* pending.finish == NULL: none (module.h) */
    atomic_long *spawn_done; /* ctx_spawn_counted's counter for the task being inserted */
    char mpi_library[MPI_MAX_LIBRARY_VERSION_STRING]; /* dagr_job_info's strings */
    char stop_names[64];
    dagr_config_t cfg;

    /* Insertion state (main thread). */
    uint64_t next_data_id;
    struct dagr_data *live; /* live handles (for waits, migration, finalize) */
    divergence_t div;
    bool broken; /* divergence found: only finalize is allowed */
    char broken_msg[DAGR_ERRMSG_MAX];

    /* Local nodes in flight, and the main thread waiting for them. */
    atomic_long inflight;
    pthread_mutex_t wait_lock;
    pthread_cond_t wait_cond;
    atomic_bool waiter;
    long wait_target; /* wake the waiter when inflight <= wait_target */

    /* First failure seen on this rank since the last collective. */
    pthread_mutex_t err_lock;
    dagr_status_t err_status;
    char err_msg[DAGR_ERRMSG_MAX];

    sched_t sched;
    device_env_t denv;
    struct gpu_info *gpu; /* the GPUs this rank found (gpu/gpu.h), or NULL before init */
    int ndev;
    device_t **devs;
    struct perfmodel *pm;           /* with devices: the placement's models (perfmodel.c) */
    _Atomic int64_t host_queued_ns; /* expected run time of the host's queued and running tasks */
    pthread_mutex_t dev_wb_lock;    /* one write-back at a time (device.c) */
    node_pool_t nodes;
    comm_t *comm_engine;
    arena_t arena;

    /* Statistics since init (for benchmarks and traces). */
    atomic_ulong tasks_run;
    atomic_ulong nodes_done; /* every node finished (tasks and transfers) */
    atomic_ulong bytes_sent, bytes_received;

    store_t *store;       /* NULL unless a memory limit is set */
    trace_t *trace;       /* NULL unless tracing, DOT or summary is on */
    progress_t *progress; /* NULL unless the progress line is on */
};

/* Unlinks a handle from the live list, brings it home and drops the user's reference. */
dagr_status_t data_retire(struct dagr_data *h);
/* Records the first failure on this rank (later ones are dropped). */
void ctx_record_failure(struct dagr_ctx *ctx, dagr_status_t s, const char *msg);
/* Blocks the calling (main) thread until at most `target` local nodes are in flight. */
void ctx_wait_inflight(struct dagr_ctx *ctx, long target);
/* The same for dagr_spawn's backlog, which a divergence could make endless: returns
 * DAGR_ERR_DIVERGED (agreed with every rank) when a peer's collective call proves it. */
dagr_status_t ctx_wait_backlog(struct dagr_ctx *ctx, long target);
/* Called when a node finishes: wakes the main thread if it waits for this. */
void ctx_node_finished(struct dagr_ctx *ctx);

/* Monotonic time in seconds. */
double dagr_now(void);

#endif
