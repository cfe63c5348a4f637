/* Divergence detection. Each rank mixes everything it inserts (kernel names, accesses,
 * options, handle creation) into a running hash and logs the hash after each task. At a
 * collective call the ranks compare (count, hash) with one allreduce; on a mismatch they
 * binary-search the logs with a few more allreduces to name the first task that differs.
 * The log is bounded: past LOG_CAP entries it keeps every other one (the stride doubles), so
 * memory stays flat in long runs and the answer becomes a short range instead of one task.
 *
 * A rank that never reaches the collective. A rank that inserted tasks the others did not may
 * block in dagr_spawn, waiting for room in its backlog (DAGR_MAX_PENDING) that never comes:
 * its extra tasks wait for data no rank will send. Its peers, meanwhile, wait in the next
 * collective call for it. So every collective call publishes, in a one-word window slot,
 * which collective it is (the k-th since dagr_init) and how many tasks its rank had
 * inserted then; a rank waiting for backlog room reads its peers' slots now and then. A peer
 * inside the collective this rank has not reached yet, having inserted fewer tasks than this
 * rank already has, proves that the graphs differ (every rank inserts the same number of
 * tasks before the k-th collective), and this rank joins that collective's check at once:
 * every rank gets DAGR_ERR_DIVERGED instead of a hang. The slot is one 64-bit word read and
 * written with MPI_Fetch_and_op, so that it is never seen half-written.
 *
 * Every rank waiting for backlog room. When each rank inserted extra tasks of its own, all
 * may wait in dagr_spawn with none in a collective. A graph every rank inserted alike always
 * makes progress, so a second word per rank says whether its rank is stalled (waiting for
 * backlog room with every worker idle, no device working and no bytes moving) and how many
 * nodes it has finished. A waiting rank that sees every rank stalled, with nothing finished
 * anywhere, for STALL_SECONDS enters the collective check with its word marked STALL_ENTRY;
 * every other stalled rank sees that mark and joins, and all get DAGR_ERR_DIVERGED. */
#include "lib_impl.h"

#include <stdlib.h>
#include <string.h>

#define LOG_CAP 65536
/* The published word: the collective's number (mod 2^16) and the task count (mod 2^48). */
#define SLOT_COUNT_BITS 48
#define SLOT_COUNT_MASK ((UINT64_C(1) << SLOT_COUNT_BITS) - 1)
/* The second word: STALLED, STALL_ENTRY, and the count of finished nodes below them. */
#define STALLED (UINT64_C(1) << 63)
#define STALL_ENTRY (UINT64_C(1) << 62)
#define FINISHED_MASK (STALL_ENTRY - 1)
#define STALL_SECONDS 2.0

void divergence_init(divergence_t *d) {
    memset(d, 0, sizeof *d);
    d->hash = 0x6a09e667f3bcc908ull;
    d->stride = 1;
    d->win = MPI_WIN_NULL;
}

void divergence_fini(divergence_t *d) {
    free(d->log);
    d->log = NULL;
}

void divergence_mix(divergence_t *d, uint64_t w) {
    uint64_t h = (d->hash ^ w) * 0x9e3779b97f4a7c15ull;
    d->hash = h ^ (h >> 31);
}

uint64_t divergence_hash_str(const char *s) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return h;
}

void divergence_task_end(divergence_t *d) {
    d->count++;
    if ((d->count - d->base) % d->stride) return;
    if (d->nlog == d->caplog) {
        if (d->caplog == LOG_CAP) {
            /* Keep the entries at even multiples of the stride: new[j] = old[2j + 1]. */
            for (size_t j = 0; j < d->nlog / 2; j++)
                d->log[j] = d->log[2 * j + 1];
            d->nlog /= 2;
            d->stride *= 2;
            if ((d->count - d->base) % d->stride) return;
        } else {
            size_t cap = d->caplog ? 2 * d->caplog : 1024;
            uint64_t *log = realloc(d->log, cap * sizeof *log);
            if (!log) { /* fall back to a coarser log rather than fail the insertion */
                d->caplog = d->nlog;
                return;
            }
            d->log = log;
            d->caplog = cap;
        }
    }
    d->log[d->nlog++] = d->hash;
}

/* Allreduce of x giving its maximum and minimum over the ranks. */
static int minmax(MPI_Comm comm, const uint64_t *x, int n, uint64_t *max, uint64_t *min,
                  int (*wait)(MPI_Request *)) {
    uint64_t in[8], out[8];
    for (int i = 0; i < n; i++) {
        in[i] = x[i];
        in[n + i] = ~x[i];
    }
    MPI_Request req;
    int e = MPI_Iallreduce(in, out, 2 * n, MPI_UINT64_T, MPI_MAX, comm, &req);
    if (e == MPI_SUCCESS) e = wait(&req);
    for (int i = 0; i < n; i++) {
        max[i] = out[i];
        min[i] = ~out[n + i];
    }
    return e;
}

dagr_status_t divergence_check(dagr_ctx_t *ctx, int bad, int *first_bad,
                               int (*wait)(MPI_Request *)) {
    divergence_t *d = &ctx->div;
    uint64_t mine[3] = {d->count, d->hash, (uint64_t)bad}, max[3], min[3];
    DAGR_TRY_MPI(minmax(ctx->comm, mine, 3, max, min, wait));
    *first_bad = (int)min[2];
    if (max[0] == min[0] && max[1] == min[1]) {
        d->base = d->count;
        d->nlog = 0;
        d->stride = 1;
        return DAGR_OK;
    }

    /* Compare logged hashes at multiples of the coarsest stride any rank uses. */
    uint64_t stride = d->stride, smax, smin;
    DAGR_TRY_MPI(minmax(ctx->comm, &stride, 1, &smax, &smin, wait));
    uint64_t m = (min[0] - d->base) / smax, lo = 0, hi = m;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        uint64_t v = d->log[((mid + 1) * smax) / d->stride - 1], vmax, vmin;
        DAGR_TRY_MPI(minmax(ctx->comm, &v, 1, &vmax, &vmin, wait));
        if (vmax != vmin)
            hi = mid;
        else
            lo = mid + 1;
    }
    char what[256];
    if (lo < m && smax == 1)
        snprintf(what, sizeof what, "the first differing task is #%llu",
                 (unsigned long long)(d->base + lo));
    else if (lo < m)
        snprintf(what, sizeof what, "the first differing task is between #%llu and #%llu",
                 (unsigned long long)(d->base + lo * smax),
                 (unsigned long long)(d->base + (lo + 1) * smax - 1));
    else if (min[0] != max[0])
        snprintf(what, sizeof what,
                 "the first differing task is #%llu: some ranks inserted %llu tasks, others %llu",
                 (unsigned long long)(d->base + m * smax), (unsigned long long)min[0],
                 (unsigned long long)max[0]);
    else
        snprintf(what, sizeof what,
                 "all %llu tasks match, but data handles or queues were created or destroyed "
                 "differently after task #%llu",
                 (unsigned long long)min[0], (unsigned long long)(min[0] ? min[0] - 1 : 0));
    snprintf(ctx->broken_msg, sizeof ctx->broken_msg,
             "ranks inserted different task graphs (kernel, accesses, options or order "
             "differ): %s (counting from 0 since dagr_init)",
             what);
    ctx->broken = true;
    return DAGR_ERR(DAGR_ERR_DIVERGED, "%s", ctx->broken_msg);
}

/* ------------------------------------------------------------------------------------------
 * Collective entry and the backlog's look at it
 * ---------------------------------------------------------------------------------------- */

dagr_status_t divergence_start(dagr_ctx_t *ctx) {
    divergence_t *d = &ctx->div;
    d->win = MPI_WIN_NULL;
    uint64_t *slot = NULL;
    DAGR_TRY_MPI(MPI_Win_allocate(2 * sizeof(uint64_t), sizeof(uint64_t), MPI_INFO_NULL, ctx->comm,
                                  &slot, &d->win));
    slot[0] = slot[1] = 0;
    DAGR_TRY_MPI(MPI_Win_lock_all(MPI_MODE_NOCHECK, d->win));
    /* Every slot is zero before anyone reads one. */
    DAGR_TRY_MPI(MPI_Barrier(ctx->comm));
    d->ncoll = 0;
    return DAGR_OK;
}

void divergence_stop(dagr_ctx_t *ctx) {
    divergence_t *d = &ctx->div;
    if (d->win == MPI_WIN_NULL) return;
    MPI_Win_unlock_all(d->win);
    MPI_Win_free(&d->win);
}

void divergence_enter(dagr_ctx_t *ctx) {
    divergence_t *d = &ctx->div;
    d->ncoll++;
    if (d->win == MPI_WIN_NULL) return;
    uint64_t word = (d->ncoll << SLOT_COUNT_BITS) | (d->count & SLOT_COUNT_MASK), old;
    MPI_Fetch_and_op(&word, &old, MPI_UINT64_T, ctx->rank, 0, MPI_REPLACE, d->win);
    MPI_Win_flush(ctx->rank, d->win);
}

bool divergence_peer_behind(dagr_ctx_t *ctx) {
    divergence_t *d = &ctx->div;
    if (d->win == MPI_WIN_NULL) return false;
    uint64_t next = (d->ncoll + 1) & (UINT64_MAX >> SLOT_COUNT_BITS);
    for (int p = 0; p < ctx->size; p++) {
        if (p == ctx->rank) continue;
        uint64_t word = 0, none = 0;
        if (MPI_Fetch_and_op(&none, &word, MPI_UINT64_T, p, 0, MPI_NO_OP, d->win) != MPI_SUCCESS ||
            MPI_Win_flush(p, d->win) != MPI_SUCCESS)
            continue;
        if (word >> SLOT_COUNT_BITS != next) continue;
        if ((word & SLOT_COUNT_MASK) < d->count) return true;
        /* Entered because every rank stalled: join it, whatever the counts. */
        if (MPI_Fetch_and_op(&none, &word, MPI_UINT64_T, p, 1, MPI_NO_OP, d->win) == MPI_SUCCESS &&
            MPI_Win_flush(p, d->win) == MPI_SUCCESS && (word & STALL_ENTRY))
            return true;
    }
    return false;
}

static void publish_stall(dagr_ctx_t *ctx, uint64_t word) {
    uint64_t old;
    MPI_Fetch_and_op(&word, &old, MPI_UINT64_T, ctx->rank, 1, MPI_REPLACE, ctx->div.win);
    MPI_Win_flush(ctx->rank, ctx->div.win);
}

bool divergence_all_stalled(dagr_ctx_t *ctx, bool stalled, uint64_t finished) {
    divergence_t *d = &ctx->div;
    if (d->win == MPI_WIN_NULL) return false;
    uint64_t mine = (stalled ? STALLED : 0) | (finished & FINISHED_MASK);
    publish_stall(ctx, mine);
    uint64_t sig = mine * 0x9e3779b97f4a7c15ull;
    bool all = stalled;
    for (int p = 0; p < ctx->size && all; p++) {
        if (p == ctx->rank) continue;
        uint64_t word = 0, none = 0;
        if (MPI_Fetch_and_op(&none, &word, MPI_UINT64_T, p, 1, MPI_NO_OP, d->win) != MPI_SUCCESS ||
            MPI_Win_flush(p, d->win) != MPI_SUCCESS || !(word & STALLED)) {
            all = false;
            break;
        }
        sig = (sig ^ word) * 0xc2b2ae3d27d4eb4full + (uint64_t)p;
    }
    double now = dagr_now();
    if (!all || !d->stall_seen || sig != d->stall_sig) {
        d->stall_seen = all;
        d->stall_sig = sig;
        d->stall_since = now;
        return false;
    }
    return now - d->stall_since >= STALL_SECONDS;
}

void divergence_stall_entry(dagr_ctx_t *ctx, bool entering) {
    divergence_t *d = &ctx->div;
    if (d->win == MPI_WIN_NULL) return;
    publish_stall(ctx, entering ? STALLED | STALL_ENTRY : 0);
    d->stall_seen = false;
}
