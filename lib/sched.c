/* The per-rank scheduler: worker threads taking ready tasks from a priority heap (higher
 * priority first, then first-ready first), running their bodies and completing them. There
 * is one ready queue per worker class: the host workers' here, and one per device (device.c),
 * which a ready task joins when the device is where it should run. One lock guards the host
 * heap; a worker sleeps only when the heap is empty, and a push signals only when someone
 * sleeps, so a busy rank makes no futex calls per task. */
#include "lib_impl.h"

#include <cblas.h>

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------------------------
 * The heap
 * ---------------------------------------------------------------------------------------- */

/* Retried tasks go after every other ready task ("not now"), first-retried first. */
static bool before(const node_t *a, const node_t *b) {
    if (a->retried != b->retried) return !a->retried;
    if (a->priority != b->priority) return a->priority > b->priority;
    return a->order < b->order;
}

static void heap_up(node_t **h, size_t i) {
    node_t *x = h[i];
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!before(x, h[p])) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = x;
}

static void heap_down(node_t **h, size_t n, size_t i) {
    node_t *x = h[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && before(h[c + 1], h[c])) c++;
        if (!before(h[c], x)) break;
        h[i] = h[c];
        i = c;
    }
    h[i] = x;
}

bool rq_push(rq_t *q, node_t *n) {
    if (q->n == q->cap) {
        size_t cap = q->cap ? 2 * q->cap : 1024;
        node_t **h = realloc(q->heap, cap * sizeof *h);
        if (!h) return false;
        q->heap = h;
        q->cap = cap;
    }
    n->order = q->next_order++;
    q->heap[q->n] = n;
    heap_up(q->heap, q->n++);
    return true;
}

node_t *rq_pop(rq_t *q) {
    if (!q->n) return NULL;
    node_t *n = q->heap[0];
    q->heap[0] = q->heap[--q->n];
    if (q->n) heap_down(q->heap, q->n, 0);
    return n;
}

void rq_free(rq_t *q) {
    free(q->heap);
    memset(q, 0, sizeof *q);
}

/* A ready node the queue cannot take fails rather than be lost (and hang the wait). */
void sched_push_failed(dagr_ctx_t *ctx, node_t *n) {
    n->failed = true;
    ctx_record_failure(ctx, DAGR_ERR_NOMEM, "out of memory growing a ready queue");
    node_complete(ctx, n);
}

void sched_push_host(dagr_ctx_t *ctx, node_t *n) {
    sched_t *s = &ctx->sched;
    if (n->est_ns) atomic_fetch_add_explicit(&ctx->host_queued_ns, n->est_ns, memory_order_relaxed);
    pthread_mutex_lock(&s->lock);
    bool ok = rq_push(&s->rq, n);
    if (ok && s->nsleeping) pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->lock);
    if (!ok) sched_push_failed(ctx, n);
}

void sched_push(dagr_ctx_t *ctx, node_t *n) {
    if (ctx->ndev && device_place(ctx, n)) return;
    sched_push_host(ctx, n);
}

size_t sched_host_load(const dagr_ctx_t *ctx) {
    return __atomic_load_n(&ctx->sched.rq.n, __ATOMIC_RELAXED);
}

bool sched_all_idle(const dagr_ctx_t *ctx) {
    const sched_t *s = &ctx->sched;
    return __atomic_load_n(&s->nsleeping, __ATOMIC_RELAXED) == s->nworkers;
}

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* An idle worker first watches the heap for a short while without the lock: the main thread
 * usually inserts the next task within a microsecond, and waking a sleeper costs a futex
 * call on both sides. */
static void spin_for_work(sched_t *s) {
    for (int i = 0; i < 2000; i++) {
        if (__atomic_load_n(&s->rq.n, __ATOMIC_RELAXED) ||
            __atomic_load_n(&s->stop, __ATOMIC_RELAXED))
            return;
        cpu_relax();
    }
}

static node_t *sched_pop(dagr_ctx_t *ctx) {
    sched_t *s = &ctx->sched;
    if (!__atomic_load_n(&s->rq.n, __ATOMIC_RELAXED)) spin_for_work(s);
    pthread_mutex_lock(&s->lock);
    while (s->rq.n == 0 && !s->stop) {
        /* The last worker to go idle tells the engine, which polls MPI faster then. */
        if (++s->nsleeping == s->nworkers) comm_workers_idle(ctx);
        pthread_cond_wait(&s->cond, &s->lock);
        s->nsleeping--;
    }
    node_t *n = rq_pop(&s->rq);
    pthread_mutex_unlock(&s->lock);
    return n;
}

/* ------------------------------------------------------------------------------------------
 * Running a task
 * ---------------------------------------------------------------------------------------- */

void dagr_task_fail(const dagr_task_view_t *task, dagr_status_t status, const char *fmt, ...) {
    if (!task || !task->internal_) return;
    task_note_t *note = task->internal_;
    note->status = status < 0 ? status : DAGR_ERR_TASK;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(note->msg, sizeof note->msg, fmt ? fmt : "", ap);
    va_end(ap);
}

static dagr_status_t task_resize(const dagr_task_view_t *task, int i, size_t bytes,
                                 size_mode_t mode) {
    DAGR_CHECK(task && task->internal_, DAGR_ERR_ARG,
               "task is NULL or not the view of a running task");
    task_note_t *note = task->internal_;
    node_t *n = note->node;
    dagr_status_t s;
    void *p = NULL; /* the resized copy the body sees */
    if (i < 0 || i >= n->nuser) {
        s = DAGR_ERR(DAGR_ERR_ARG, "dagr_task_resize: access %d out of range [0, %d)", i, n->nuser);
    } else {
        const node_access_t *a = &n->acc[n->map[i]];
        dagr_data_t *h = a->h;
        if (!h->dynamic)
            s = DAGR_ERR(DAGR_ERR_ARG,
                         "dagr_task_resize: access %d (data #%llu) has a fixed size of %zu "
                         "bytes; only a handle made by dagr_data_create_dynamic takes the size "
                         "its writer sets",
                         i, (unsigned long long)h->id, h->bytes);
        else if (!(a->mode & DAGR_WRITE))
            s = DAGR_ERR(DAGR_ERR_ARG,
                         "dagr_task_resize: access %d (data #%llu) is read only; only a task "
                         "writing a handle sets its size",
                         i, (unsigned long long)h->id);
        else if (note->device >= 0)
            s = device_resize(h, note->device, bytes, &p);
        else if ((s = data_set_size(h, bytes, mode)) == DAGR_OK)
            p = h->buf;
        for (int j = 0; s == DAGR_OK && j < n->nuser; j++) {
            if (n->map[j] != n->map[i]) continue;
            note->buf[j] = p;
            note->bytes[j] = h->bytes;
            note->ld[j] = data_ld(h);
        }
    }
    if (s != DAGR_OK && !note->forced) {
        note->forced = true;
        note->status = s;
        snprintf(note->msg, sizeof note->msg, "%s", dagr_last_error());
    }
    return s;
}

dagr_status_t dagr_task_resize(const dagr_task_view_t *task, int i, size_t bytes) {
    return task_resize(task, i, bytes, SIZE_KEEP);
}

dagr_status_t task_resize_raw(const dagr_task_view_t *task, int i, size_t bytes) {
    return task_resize(task, i, bytes, SIZE_KEEP_RAW);
}

/* A deferred task. Its body's return and dagr_task_complete may come in either order, on
 * different threads: the second of the two to arrive finishes the task. */
struct dagr_task_token {
    node_t *node;
    dagr_ctx_t *ctx;
    atomic_int gate;      /* 2, minus one at the body's return and one at completion */
    int device;           /* the device the task ran on (device.c finishes it), -1 none */
    int pinned;           /* accesses pinned out of core, released at the end */
    dagr_status_t status; /* dagr_task_complete's */
    char msg[DAGR_ERRMSG_MAX];
};

dagr_task_token_t *dagr_task_defer(const dagr_task_view_t *task) {
    if (!task || !task->internal_) return NULL;
    task_note_t *note = task->internal_;
    if (!note->token) {
        note->token = calloc(1, sizeof *note->token);
        if (!note->token) return NULL;
        note->token->node = note->node;
        note->token->ctx = note->node->acc[0].h->ctx; /* a task has at least one access */
        note->token->device = note->device;
        atomic_init(&note->token->gate, 2);
    }
    return note->token;
}

/* Records the task's failure (once: later ones are dropped). */
void task_failed(dagr_ctx_t *ctx, node_t *n, dagr_status_t status, const char *why) {
    if (n->failed) return;
    char msg[DAGR_ERRMSG_MAX + 160]; /* ctx_record_failure keeps what fits */
    snprintf(msg, sizeof msg, "task '%s' (#%llu) failed on rank %d: %s", n->name,
             (unsigned long long)n->seq, ctx->rank,
             why && why[0] ? why : "the body returned an error without a message");
    ctx_record_failure(ctx, status, msg);
    n->failed = true;
}

/* A task's end: its failure recorded (status and message, unless it already failed), the
 * out-of-core pins of its accesses released, completion. */
void task_finish(dagr_ctx_t *ctx, node_t *n, dagr_status_t status, const char *why, int pinned) {
    if (status != DAGR_OK) task_failed(ctx, n, status, why);
    for (int j = 0; j < pinned; j++)
        data_unpin(n->acc[j].h);
    atomic_fetch_add_explicit(&ctx->tasks_run, 1, memory_order_relaxed);
    node_complete(ctx, n);
}

void token_arrive(dagr_task_token_t *t) {
    if (atomic_fetch_sub_explicit(&t->gate, 1, memory_order_acq_rel) != 1) return;
    if (t->device >= 0)
        device_task_done(t->ctx, t->node, t->device, t->status, t->msg);
    else
        task_finish(t->ctx, t->node, t->status, t->msg, t->pinned);
    free(t);
}

void token_set_pinned(dagr_task_token_t *t, int pinned) {
    t->pinned = pinned;
}

void dagr_task_complete(dagr_task_token_t *token, dagr_status_t status, const char *fmt, ...) {
    if (!token) return;
    token->status = status == DAGR_OK ? DAGR_OK : status < 0 ? status : DAGR_ERR_TASK;
    token->msg[0] = 0;
    if (status != DAGR_OK && fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(token->msg, sizeof token->msg, fmt, ap);
        va_end(ap);
    }
    token_arrive(token);
}

dagr_task_result_t task_call(dagr_ctx_t *ctx, node_t *n, int worker, void *const *accbuf,
                             const size_t *accld, task_note_t *note) {
    /* The view's arrays: on the stack for the common few accesses, else on the heap. */
    enum { STACK_ACC = 16 };
    void *buf_stack[STACK_ACC], **buf = buf_stack;
    size_t bytes_stack[STACK_ACC], ld_stack[STACK_ACC], *bytes = bytes_stack, *ld = ld_stack;
    if (n->nuser > STACK_ACC) {
        buf = malloc((size_t)n->nuser * sizeof *buf);
        bytes = malloc(2 * (size_t)n->nuser * sizeof *bytes);
        ld = bytes ? bytes + n->nuser : NULL;
        if (!buf || !bytes) {
            if (buf != buf_stack) free(buf);
            free(bytes);
            note->status = DAGR_ERR_NOMEM;
            snprintf(note->msg, sizeof note->msg, "cannot allocate the view of %d accesses",
                     n->nuser);
            return DAGR_TASK_ERROR;
        }
    }
    note->buf = buf;
    note->bytes = bytes;
    note->ld = ld;
    for (int i = 0; i < n->nuser; i++) {
        int j = n->map[i];
        dagr_data_t *h = n->acc[j].h;
        buf[i] = accbuf ? accbuf[j] : h->buf;
        bytes[i] = h->bytes;
        ld[i] = accld ? accld[j] : data_ld(h);
    }
    dagr_task_view_t view = {
        .buf = buf,
        .bytes = bytes,
        .ld = ld,
        .nbuf = n->nuser,
        .args = n->args,
        .args_size = n->args_size,
        .rank = ctx->rank,
        .worker = worker,
        .seq = n->seq,
        .device = note->device,
        .stream = note->stream,
        .internal_ = note,
    };
    /* A body answering NEXT hands the task to the kernel's next body, on this worker now (its
     * inputs are here and pinned). On a device the device body comes first; the CPU bodies
     * after it run on a test device's copies, which are host memory, never on a GPU's. */
    dagr_task_result_t r = DAGR_TASK_NEXT;
    if (note->device >= 0 && n->dev_fn) r = n->dev_fn(&view);
    if (r == DAGR_TASK_NEXT && !note->gpu) r = n->fn(&view);
    for (int b = 0; r == DAGR_TASK_NEXT && !note->gpu && b < DAGR_KERNEL_MORE_CPU && n->more[b];
         b++)
        r = n->more[b](&view);
    if (r == DAGR_TASK_ASYNC && !note->token) {
        r = DAGR_TASK_ERROR;
        note->status = DAGR_ERR_TASK;
        snprintf(note->msg, sizeof note->msg,
                 "the body returned DAGR_TASK_ASYNC without calling dagr_task_defer");
    }
    if (note->forced && r != DAGR_TASK_ASYNC) r = DAGR_TASK_ERROR; /* the note says why */
    if (r == DAGR_TASK_NEXT && note->status == DAGR_OK) {
        note->status = DAGR_ERR_TASK;
        snprintf(note->msg, sizeof note->msg,
                 "every body of the kernel answered DAGR_TASK_NEXT: none can run it");
    }
    if (r != DAGR_TASK_ASYNC) {
        free(note->token); /* deferred, but the body answered otherwise: the token is void */
        note->token = NULL;
    }
    if (buf != buf_stack) free(buf);
    if (bytes != bytes_stack) free(bytes);
    return r;
}

void task_note_init(task_note_t *note, node_t *n, int device) {
    /* Not zeroed whole: 512 bytes of memset per task, for an empty msg. */
    note->status = DAGR_OK;
    note->forced = false;
    note->token = NULL;
    note->node = n;
    note->device = device;
    note->gpu = false;
    note->stream = NULL;
    note->msg[0] = 0;
}

/* The host's expected work loses what n was expected to take (device_place). */
static void host_dequeue(dagr_ctx_t *ctx, const node_t *n) {
    if (n->est_ns) atomic_fetch_sub_explicit(&ctx->host_queued_ns, n->est_ns, memory_order_relaxed);
}

static void run_task(dagr_ctx_t *ctx, node_t *n, int worker) {
    if (atomic_load(&n->poisoned)) {
        host_dequeue(ctx, n);
        node_complete(ctx, n);
        return;
    }
    task_note_t note;
    task_note_init(&note, n, -1);
    /* A handle whose size tasks decide starts a version written with DAGR_WRITE empty: its
     * body sets the size it writes (dagr_task_resize). Never fails: it only frees. */
    for (int j = 0; note.status == DAGR_OK && j < n->nacc; j++)
        if (n->acc[j].mode == DAGR_WRITE && n->acc[j].h->dynamic)
            (void)data_set_size(n->acc[j].h, 0, SIZE_DROP);

    /* A rank writing a handle it holds no copy of gets a fresh buffer now. Out of core,
     * every buffer is pinned for the body's duration: read back if it was spilled, except for
     * DAGR_WRITE, whose body does not read the old contents (it gets zeros). */
    int pinned = 0;
    if (note.status != DAGR_OK) {
        /* The view could not be made: the task fails below. */
    } else if (ctx->store) {
        for (; pinned < n->nacc && note.status == DAGR_OK; pinned++) {
            dagr_data_t *h = n->acc[pinned].h;
            dagr_mode_t m = n->acc[pinned].mode;
            dagr_status_t s = data_pin(h, m == DAGR_READ    ? PIN_READ
                                          : m == DAGR_WRITE ? PIN_OVERWRITE
                                                            : PIN_WRITE);
            if (s != DAGR_OK) {
                note.status = s;
                snprintf(note.msg, sizeof note.msg, "%s", dagr_last_error());
                break;
            }
        }
    } else {
        for (int j = 0; j < n->nacc; j++) {
            if (n->acc[j].mode == DAGR_WRITE && data_ensure_buf(n->acc[j].h) != DAGR_OK) {
                note.status = DAGR_ERR_NOMEM;
                snprintf(note.msg, sizeof note.msg, "%s", dagr_last_error());
            }
        }
    }
    dagr_task_result_t r = DAGR_TASK_ERROR;
    int64_t t0 = ctx->trace ? trace_ticks() : 0;
    if (note.status == DAGR_OK && ctx->ndev) {
        /* What it reads may be newer on a device (lazy write-back): back to the host first.
         * Then the host copies change: copies on devices are stale from now on. */
        for (int j = 0; j < n->nacc && note.status == DAGR_OK; j++) {
            dagr_data_t *h = n->acc[j].h;
            if ((n->acc[j].mode & DAGR_READ) && data_dirty_hint(h) &&
                (note.status = device_writeback(h)) != DAGR_OK)
                snprintf(note.msg, sizeof note.msg, "%s", dagr_last_error());
        }
        if (note.status == DAGR_OK) data_host_writing(n);
    }
    /* With devices, placement learns from every task's time (perfmodel.c). */
    double c0 = ctx->pm ? dagr_now() : 0.0;
    if (note.status == DAGR_OK) r = task_call(ctx, n, worker, NULL, NULL, &note);
    if (ctx->pm && r == DAGR_TASK_DONE) pm_record(ctx, n, PM_HOST, dagr_now() - c0);
    if (ctx->trace) trace_task(ctx, n, worker, t0, r != DAGR_TASK_RETRY);
    host_dequeue(ctx, n);
    if (r == DAGR_TASK_ASYNC) {
        /* A failed resize fails it now (nothing more is recorded at completion). */
        if (note.forced) task_failed(ctx, n, note.status, note.msg);
        note.token->pinned = pinned;
        token_arrive(note.token); /* n is not ours after this */
        return;
    }
    if (r == DAGR_TASK_RETRY) {
        for (int j = 0; j < pinned; j++)
            data_unpin(n->acc[j].h);
        n->retried = true;
        sched_push_host(ctx, n);
        return;
    }
    task_finish(ctx, n,
                r == DAGR_TASK_DONE      ? DAGR_OK
                : note.status != DAGR_OK ? note.status
                                         : DAGR_ERR_TASK,
                note.msg, pinned);
}

typedef struct worker_arg {
    dagr_ctx_t *ctx;
    int index;
} worker_arg_t;

static _Thread_local int tls_worker = -1;

int sched_worker_index(void) {
    return tls_worker;
}

static void *worker_main(void *p) {
    worker_arg_t arg = *(worker_arg_t *)p;
    free(p);
    tls_worker = arg.index;
    if (arg.ctx->cfg.worker_init) arg.ctx->cfg.worker_init(arg.index, arg.ctx->cfg.worker_init_arg);
    node_t *n;
    while ((n = sched_pop(arg.ctx)))
        run_task(arg.ctx, n, arg.index);
    return NULL;
}

dagr_status_t sched_start(dagr_ctx_t *ctx) {
    /* The workers are the parallelism: a BLAS call in a task body must not start threads of
     * its own next to them (OpenBLAS's setting is process-wide, so once is enough). */
    openblas_set_num_threads(1);
    sched_t *s = &ctx->sched;
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->cond, NULL);
    s->workers = calloc((size_t)ctx->cfg.threads, sizeof *s->workers);
    DAGR_CHECK(s->workers, DAGR_ERR_NOMEM, "cannot allocate %d worker threads", ctx->cfg.threads);
    for (int i = 0; i < ctx->cfg.threads; i++) {
        worker_arg_t *arg = malloc(sizeof *arg);
        int err = arg ? 0 : 1;
        if (arg) {
            *arg = (worker_arg_t){ctx, i};
            err = pthread_create(&s->workers[i], NULL, worker_main, arg);
            if (err) free(arg);
        }
        if (err) {
            sched_stop(ctx);
            return DAGR_ERR(DAGR_ERR_NOMEM, "cannot start worker thread %d of %d", i,
                            ctx->cfg.threads);
        }
        s->nworkers++;
    }
    return DAGR_OK;
}

/* Stops the workers once the heap is empty; tasks still queued (after a divergence) are
 * dropped with the context. */
void sched_stop(dagr_ctx_t *ctx) {
    sched_t *s = &ctx->sched;
    pthread_mutex_lock(&s->lock);
    s->stop = true;
    s->rq.n = 0;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
    for (int i = 0; i < s->nworkers; i++)
        pthread_join(s->workers[i], NULL);
    s->nworkers = 0;
    free(s->workers);
    s->workers = NULL;
    rq_free(&s->rq);
    pthread_cond_destroy(&s->cond);
    pthread_mutex_destroy(&s->lock);
}
