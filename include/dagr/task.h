/* dagr — data handles and tasks.
 *
 * Every rank runs the same program and so inserts the same data handles and the same tasks
 * in the same order. Dependencies follow from insertion order and access modes (sequential
 * semantics); each task runs on one rank (by default the owner of the first handle it
 * writes) and the runtime moves the data it needs. All the calls below except the Local ones
 * (accessors and task-body helpers) must be made by every rank of the context, in the same
 * order, with the same arguments (pointers to local memory excepted); dagr checks this at each
 * Collective call and reports DAGR_ERR_DIVERGED rather than hang.
 *
 * Contract labels. The comment of every function in the public headers names one of these:
 *  - Collective: every rank of the context calls it, in the same order, and it synchronises
 *    the ranks (it waits for tasks, or communicates with every rank): it returns on no rank
 *    before every rank has reached it.
 *  - Logically collective: every rank calls it in the same order with the same arguments, but
 *    it only inserts tasks or handles into the graph and returns without waiting for others.
 *  - Local: any rank may call it alone; it does not communicate. */
#ifndef DAGR_TASK_H
#define DAGR_TASK_H

#include <stddef.h>
#include <stdint.h>

#include <dagr/runtime.h>
#include <dagr/status.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Largest by-value argument block of a task, in bytes. */
#define DAGR_MAX_ARGS 4096

typedef struct dagr_data dagr_data_t;
typedef struct dagr_queue dagr_queue_t;

/* ------------------------------------------------------------------------------------------
 * Data handles
 * ---------------------------------------------------------------------------------------- */

/* Creates a handle for `bytes` bytes of data owned by rank `owner`; the runtime allocates
 * (64-byte aligned, zero-filled) on the owner. bytes may be 0 (a pure synchronisation
 * object). Logically collective. Errors: DAGR_ERR_ARG (ctx or out NULL, owner outside
 * [0, size)), DAGR_ERR_NOMEM. */
DAGR_API dagr_status_t dagr_data_create(dagr_ctx_t *ctx, size_t bytes, int owner,
                                        dagr_data_t **out);

/* Creates a handle over the caller's buffer `ptr` on rank `owner` (attach: dagr never frees
 * it; it must outlive the handle). ptr is ignored on the other ranks and may be NULL there.
 * After dagr_wait_all (or dagr_data_destroy followed by dagr_wait_all) the buffer holds the
 * handle's final contents. Logically collective. Errors: DAGR_ERR_ARG (ctx or out NULL,
 * owner out of range, ptr NULL on the owner while bytes > 0). */
DAGR_API dagr_status_t dagr_data_attach(dagr_ctx_t *ctx, void *ptr, size_t bytes, int owner,
                                        dagr_data_t **out);

/* Like dagr_data_create for a column-major rows x cols matrix of elsize-byte elements: tasks
 * see task->ld[i] = rows. Logically collective. Errors: those of dagr_data_create, elsize 0,
 * a size overflowing size_t. */
DAGR_API dagr_status_t dagr_data_create_2d(dagr_ctx_t *ctx, size_t rows, size_t cols, size_t elsize,
                                           int owner, dagr_data_t **out);

/* Creates a handle over a column-major rows x cols matrix of elsize-byte elements that the
 * caller keeps at ptr on rank `owner` with leading dimension ld >= rows (in elements), e.g. a
 * tile of a ScaLAPACK local array. Nothing is copied: tasks on the owner see ptr itself (with
 * task->ld[i] = ld), except a task whose options send it to a device (DAGR_WHERE_DEVICE),
 * which works on a packed copy there; copies on other ranks are packed (ld = rows); transfers
 * pack and unpack.
 * dagr_data_bytes() is rows * cols * elsize. Like dagr_data_attach otherwise: dagr never frees
 * ptr, and after dagr_wait_all it holds the final contents. Logically collective; ptr and ld
 * are read on the owner only. Errors: DAGR_ERR_ARG (ctx or out NULL, owner out of range,
 * elsize 0, ld < rows on the owner, ptr NULL on the owner while the matrix is not empty, a
 * size that overflows size_t). */
DAGR_API dagr_status_t dagr_data_attach_2d(dagr_ctx_t *ctx, void *ptr, size_t rows, size_t cols,
                                           size_t ld, size_t elsize, int owner, dagr_data_t **out);

/* Creates a handle whose size the tasks writing it decide (the partitions of a filter, a
 * join or a shuffle): each version has the size its writer set with dagr_task_resize, from 0
 * bytes up, growing or shrinking from one version to the next. It starts empty (0 bytes) on
 * `owner`. A task writing it with DAGR_WRITE sees it empty and sets the size it writes; one
 * writing it with DAGR_RW sees the previous version and may resize it (the first bytes stay).
 * Readers, on any rank, see exactly the bytes of the version they read. dagr_fetch,
 * dagr_checkpoint, dagr_resume and the out-of-core store handle it like any other; its size
 * after a wait is dagr_data_bytes on the owner, or dagr_data_bytes_fetch on every rank.
 * Logically collective. Errors: DAGR_ERR_ARG (ctx or out NULL, owner out of range),
 * DAGR_ERR_NOMEM. */
DAGR_API dagr_status_t dagr_data_create_dynamic(dagr_ctx_t *ctx, int owner, dagr_data_t **out);

/* Releases a handle: tasks already inserted still run, and the latest contents are brought
 * back to the owner's buffer; the memory dagr allocated is freed once they have finished.
 * Logically collective. Sets *data to NULL; tolerates NULL. */
DAGR_API dagr_status_t dagr_data_destroy(dagr_data_t **data);

/* Size in bytes, and owner rank, of a handle. Local. For a handle made by
 * dagr_data_create_dynamic, dagr_data_bytes is the size of this rank's copy: after
 * dagr_wait_all the owner's is the latest version's (dagr_data_bytes_fetch tells every rank). */
DAGR_API size_t dagr_data_bytes(const dagr_data_t *data);
DAGR_API int dagr_data_owner(const dagr_data_t *data);

/* ------------------------------------------------------------------------------------------
 * Kernels and tasks
 * ---------------------------------------------------------------------------------------- */

/* What a task body returns to the scheduler (distinct from dagr_status_t). */
typedef enum dagr_task_result {
    DAGR_TASK_DONE = 0,   /* finished; its outputs are valid */
    DAGR_TASK_RETRY = 1,  /* not now: run the body again later (after other ready tasks) */
    DAGR_TASK_NEXT = 2,   /* this body cannot do this task: run the kernel's next body on it
                             (PaRSEC's NEXT); with none left the task fails. The body must
                             not have changed its outputs. */
    DAGR_TASK_ASYNC = 3,  /* the body queued the work elsewhere (a device, a thread of its
                             own) after dagr_task_defer: the task completes when
                             dagr_task_complete is called with the token */
    DAGR_TASK_ERROR = -1, /* failed: poison every task depending on it (see dagr_task_fail) */
} dagr_task_result_t;

/* Access modes. */
typedef enum dagr_mode {
    DAGR_READ = 1,
    DAGR_WRITE = 2, /* the previous contents are not read: no transfer is made for them, and
                       out of core a spilled buffer is not read back (it comes as zeros); the
                       body must write every byte it wants kept */
    DAGR_RW = 3,
} dagr_mode_t;

typedef struct dagr_access {
    dagr_data_t *data;
    dagr_mode_t mode;
} dagr_access_t;

/* What a task body sees. buf[i], bytes[i] and ld[i] belong to access i as given to
 * dagr_spawn (the same handle named twice gives the same pointer twice). ld[i] is the leading
 * dimension of buf[i] in elements for a handle made by dagr_data_create_2d or
 * dagr_data_attach_2d (the caller's ld on the owner of an attached one, rows elsewhere), and
 * bytes[i] for any other handle. Valid during the call only. */
typedef struct dagr_task_view {
    void *const *buf;
    const size_t *bytes;
    const size_t *ld;
    int nbuf;
    const void *args; /* the task's copy of the argument block (NULL if args_size is 0) */
    size_t args_size;
    int rank;     /* rank running the task */
    int worker;   /* worker thread index on that rank: 0 .. dagr_threads()-1 for the host's
                     workers, dagr_threads() + d for device d's */
    int device;   /* the device whose memory buf[] points into, -1 host memory */
    uint64_t seq; /* the task's insertion number, counted from 0 on every rank alike */
    void *stream; /* a device body's queue on a GPU (its cudaStream_t); NULL on the host and on
                     test devices */
    void *internal_;
} dagr_task_view_t;

typedef dagr_task_result_t (*dagr_cpu_fn_t)(const dagr_task_view_t *task);
/* A device body: the same view, whose buffers are the device's copies (task->device >= 0). */
typedef dagr_task_result_t (*dagr_device_fn_t)(const dagr_task_view_t *task);

/* Further CPU bodies a kernel may carry besides `cpu`. */
#define DAGR_KERNEL_MORE_CPU 3

/* A kernel: a name (used in errors, traces and the divergence check) and its bodies. A task
 * runs `cpu` first; a body answering DAGR_TASK_NEXT hands the task to the next one of
 * cpu_more (in order, up to the first NULL), as StarPU's codelets carry several
 * implementations: a fast path that handles only some inputs, then a general one. A task a
 * device runs calls the device body `gpu` first when the kernel has one, then, on a test
 * device, the CPU bodies if it answers DAGR_TASK_NEXT (test devices keep their copies in host
 * memory); host workers never call it. The bodies are copied at dagr_spawn; the name must
 * outlive the task. */
typedef struct dagr_kernel {
    const char *name;
    dagr_cpu_fn_t cpu;    /* required */
    dagr_device_fn_t gpu; /* the device body, or NULL (README, "Devices") */
    /* Optional, NULL-terminated if fewer; last, so that {name, cpu, NULL} still reads. */
    dagr_cpu_fn_t cpu_more[DAGR_KERNEL_MORE_CPU];
} dagr_kernel_t;

/* Where a task may run (dagr_task_opts_t.where). */
typedef enum dagr_where {
    DAGR_WHERE_ANY = 0,    /* the host's workers or a device: where its data already is, else
                              the least busy */
    DAGR_WHERE_CPU = 1,    /* a CPU worker, even when the kernel has a device body */
    DAGR_WHERE_DEVICE = 2, /* a device's worker: refused (DAGR_ERR_ARG) on a rank with no
                              device that can run the kernel (a GPU runs only device bodies);
                              a task with more data than the device's memory runs on the host. On an owner's strided home (dagr_data_attach_2d) it
                              works on a packed copy, not on the caller's array: only this
                              option sends such a task to a device */
} dagr_where_t;

/* Options of one task. Fill with dagr_task_opts_init(). */
typedef struct dagr_task_opts {
    int priority;        /* higher runs first among ready tasks on a rank; default 0 */
    int rank;            /* rank to run on; -1 (default) = owner of the first written handle,
                            or of the first handle when none is written */
    dagr_queue_t *queue; /* if set, the task runs after every earlier task of this queue */
    double flops;        /* floating-point operations the task performs, if known (>= 0);
                            used only by the summary and the trace (GFLOP/s); default 0 */
    dagr_where_t where;  /* default DAGR_WHERE_ANY */
} dagr_task_opts_t;

/* Fills *opts with the defaults. Local. */
DAGR_API void dagr_task_opts_init(dagr_task_opts_t *opts);

/* Inserts a task running kernel k over the given accesses, with a private copy of
 * args[0 .. args_size). opts may be NULL. The task runs once its inputs are ready; errors it
 * returns surface at the next synchronising call. Logically collective.
 * A task may declare any number of accesses (naccess >= 1): a few cost nothing extra, many
 * (a shuffle's fan-in, a whole panel column) are kept on the heap.
 * Errors: DAGR_ERR_ARG (NULL ctx/kernel/body/data, naccess < 1,
 * unknown mode, handle of another context, args NULL with args_size > 0, a cpu_more body
 * after a NULL one, opts->where unknown or DAGR_WHERE_DEVICE for a kernel without a device
 * body on a rank without test devices, args_size > DAGR_MAX_ARGS, opts->rank out of range,
 * opts->flops negative or not finite), DAGR_ERR_NOMEM (no memory for many accesses),
 * DAGR_ERR_DIVERGED / DAGR_ERR_STATE if the context is unusable after an earlier divergence. With
 * tracing on (DAGR_TRACE, DAGR_DOT, DAGR_SUMMARY) the task is recorded under the kernel's name. */
DAGR_API dagr_status_t dagr_spawn(dagr_ctx_t *ctx, const dagr_kernel_t *k, const void *args,
                                  size_t args_size, int naccess, const dagr_access_t *access,
                                  const dagr_task_opts_t *opts);

/* Called from a task body: sets the size of the version it writes through access i, a
 * handle made by dagr_data_create_dynamic, to `bytes` (0 allowed). The first min(old, new)
 * bytes are kept and any new ones are zeros; task->buf[i] and task->bytes[i] (and those of
 * other accesses naming the same handle) then describe the new buffer: read them again after
 * the call. It may be called several times. Local. Errors, which also fail the task whatever
 * the body returns (the status and message reach every rank at the next synchronising call):
 * DAGR_ERR_ARG (task NULL, i out of range, access i does not write, or its handle has a fixed
 * size), DAGR_ERR_NOMEM. */
DAGR_API dagr_status_t dagr_task_resize(const dagr_task_view_t *task, int i, size_t bytes);

/* Asynchronous completion. A body that hands its work to something that finishes later (a
 * device stream, an I/O thread) calls dagr_task_defer, passes the token on, and returns
 * DAGR_TASK_ASYNC; the worker goes on with other tasks. The task's buffers (the pointers in
 * task->buf) and its argument block stay valid, and stay the task's, until
 * dagr_task_complete(token, status, ...) is called once, from any thread: DAGR_OK completes it
 * (its successors may run), an error fails it as DAGR_TASK_ERROR would, with the message.
 * The view's arrays themselves are valid during the body's call only: copy what is needed.
 * A task never completed keeps dagr_wait_all waiting. A body that calls dagr_task_defer but
 * returns anything else has not deferred: the token must then not be completed.
 * dagr_task_defer returns NULL when task is NULL or not the view of a running task. Both
 * calls are Local. */
typedef struct dagr_task_token dagr_task_token_t;
DAGR_API dagr_task_token_t *dagr_task_defer(const dagr_task_view_t *task);
DAGR_API void dagr_task_complete(dagr_task_token_t *token, dagr_status_t status, const char *fmt,
                                 ...) __attribute__((format(printf, 3, 4)));

/* Called from a task body before returning DAGR_TASK_ERROR: records why (status and a
 * printf-style message). The status and message reach every rank at the next synchronising
 * call, prefixed with the kernel name, task number and rank. Local. */
DAGR_API void dagr_task_fail(const dagr_task_view_t *task, dagr_status_t status, const char *fmt,
                             ...) __attribute__((format(printf, 3, 4)));

/* ------------------------------------------------------------------------------------------
 * In-order queues
 * ---------------------------------------------------------------------------------------- */

/* Creates an in-order queue: tasks spawned with opts.queue = q run one after another in
 * insertion order (like a CUDA stream), on whatever ranks they run. Logically collective.
 * Errors: DAGR_ERR_ARG, DAGR_ERR_NOMEM. */
DAGR_API dagr_status_t dagr_queue_create(dagr_ctx_t *ctx, dagr_queue_t **out);

/* Releases a queue (tasks already in it still run in order). Logically collective. Sets *q
 * to NULL; tolerates NULL. */
DAGR_API dagr_status_t dagr_queue_destroy(dagr_queue_t **q);

/* ------------------------------------------------------------------------------------------
 * Waiting and reading results
 * ---------------------------------------------------------------------------------------- */

/* Waits until every task inserted so far has finished on every rank and each handle's latest
 * contents are back in its owner's buffer. Collective. Returns DAGR_OK, or the same error on
 * every rank: the first failed task's status (DAGR_ERR_TASK unless the body chose one) with
 * its kernel, number and rank in dagr_last_error(); DAGR_ERR_DIVERGED if the ranks inserted
 * different graphs, naming the first differing task. After DAGR_ERR_DIVERGED the context can
 * only be finalised. */
DAGR_API dagr_status_t dagr_wait_all(dagr_ctx_t *ctx);

/* The size of a handle's latest version, on every rank: for a handle made by
 * dagr_data_create_dynamic, the size its last writer set; for any other, its fixed size.
 * Implies dagr_wait_all. Collective. Errors: those of dagr_wait_all, DAGR_ERR_ARG (data or
 * bytes NULL). */
DAGR_API dagr_status_t dagr_data_bytes_fetch(dagr_data_t *data, size_t *bytes);

/* Copies the latest contents of a handle into dst on rank `root`, or on every rank when root
 * is -1 (dst is ignored, and may be NULL, on other ranks). Implies dagr_wait_all. Collective.
 * Errors: those of dagr_wait_all, DAGR_ERR_ARG (data NULL, root out of range, dst NULL on a
 * receiving rank while bytes > 0). For a handle made by dagr_data_create_dynamic dst must
 * hold the latest version's size (dagr_data_bytes_fetch). */
DAGR_API dagr_status_t dagr_fetch(dagr_data_t *data, void *dst, int root);

#ifdef __cplusplus
}
#endif
#endif
