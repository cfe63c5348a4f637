/* The communication engine: moves versions of data between ranks with MPI one-sided
 * communication, driven by one progress thread per rank.
 *
 * Protocol (push). Both ends of every transfer know it will happen, because both inserted
 * the same graph. When the receiving rank's RECV node becomes ready (the local buffer is no
 * longer used by anyone), the engine picks where the data should land and sends WANT(handle,
 * version, displacement) to the holder. When the holder's SEND node is ready (the version has
 * been written) and the WANT has arrived, the holder MPI_Puts the bytes straight from its
 * buffer into the receiver's window, flushes, and sends DATA; the receiver's RECV completes
 * when DATA arrives. The holder's buffer is free for the next write as soon as the flush
 * returns, with no acknowledgement round trip. Why push and not pull: a pull needs the
 * producer's buffer inside a window; tile buffers are ordinary memory (the owner's or the
 * caller's), and exposing them through MPI_Win_create_dynamic measured 8x slower here
 * (1.3 GB/s against 11 GB/s for MPI_Win_allocate memory on one node, MPICH ch4:ucx), while
 * the Put's origin may be any memory. So data lands in a receive arena carved out of this
 * rank's window, and only when the arena is full does a transfer fall back to a dynamic
 * window.
 *
 * Ranks on one node. The window memory comes from MPI_Win_allocate_shared on the node's
 * communicator, so a peer on the same node writes the rings, credits and arena directly:
 * a memcpy from the producer's buffer into the consumer's arena and a release store of the
 * sequence number, with no MPI call at all. This matters beyond speed: with MPICH ch4:ucx a
 * Put+flush completes only when the target process enters MPI (measured: 20 ms per flush
 * against a target busy outside MPI), so a rank computing a long task would stall its
 * neighbours. Peers on other nodes use MPI_Put through an MPI_Win_create window over the
 * same memory; then the progress thread polls MPI every few tens of microseconds.
 * DAGR_COMM_SHM=0 forces the MPI path for every peer (tests use it on one node).
 *
 * Messages. Each rank's window starts with one ring of MSG_SLOTS 64-byte slots per sender.
 * The sender Puts the body, flushes, then Puts the sequence number: the receiver polls its
 * own memory for the next sequence number and never calls MPI to learn that something
 * arrived. Flow control: the receiver Puts how many messages it consumed into the sender's
 * credit slot every half ring; a sender with no credit keeps messages in an outbox.
 *
 * The window is locked with MPI_Win_lock_all for the whole run (one passive-target epoch)
 * and only the progress thread issues RMA, so the rest of dagr never waits on MPI. */
#include "lib_impl.h"

#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>

#define MSG_SLOTS 64
#define PUT_CHUNK ((size_t)1 << 30) /* MPI counts are ints */

enum { MSG_WANT = 1, MSG_DATA = 2 };
/* FLAG_POISON: in DATA, the version is bad (its producer failed): no bytes came; in WANT, the
 * receive failed (it has nowhere to land them): send none. */
enum { FLAG_DYN = 1, FLAG_POISON = 2 };

typedef struct msg {
    uint64_t seq; /* written last: nonzero and in sequence = the slot is full */
    uint32_t type, flags;
    uint64_t hid, ver, disp, bytes;
    uint64_t pad[2];
} msg_t;
_Static_assert(sizeof(msg_t) == 64, "a message is one cache line");

/* A pending transfer, keyed by (handle, version, peer, direction). */
typedef struct entry {
    uint64_t hid, ver;
    int peer;
    int dir;      /* 0: outgoing (a SEND or an early WANT), 1: incoming (a RECV) */
    node_t *node; /* SEND or RECV node; NULL when only the WANT arrived yet */
    msg_t want;
    struct entry *next;
} entry_t;

typedef struct outbox {
    msg_t *q;
    size_t head, n, cap;
} outbox_t;

struct comm {
    dagr_ctx_t *ctx;
    MPI_Win shwin;    /* the node's shared segments (MPI_Win_allocate_shared) */
    MPI_Win win, dyn; /* the same memory for off-node peers; the dynamic fallback */
    MPI_Comm node;
    char **peer_base; /* per global rank: its segment mapped here, or NULL (use MPI) */
    int nremote;      /* peers reached through MPI RMA */
    MPI_Comm pcomm;   /* private communicator the progress thread pokes MPI progress on */
    char *base;
    size_t credit_off, arena_off;
    msg_t *inbox;
    uint64_t *credit;
    uint64_t *sent, *recvd, *credited;
    outbox_t *outbox;
    size_t outbox_total;

    entry_t **table;
    size_t nbuckets, nentries;

    pthread_mutex_t lock; /* guards events, stop and sleeping */
    pthread_cond_t cond;
    node_t **events, **events_spare;
    size_t nevents, capevents, capspare;
    bool stop, sleeping;
    bool have_shwin, have_win, have_dyn, have_thread;
    long dyn_pending; /* receives landing through the dynamic window */
    pthread_t thread;
};

/* ------------------------------------------------------------------------------------------
 * The table of pending transfers (progress thread only)
 * ---------------------------------------------------------------------------------------- */

static size_t entry_hash(const comm_t *c, uint64_t hid, uint64_t ver, int peer, int dir) {
    uint64_t x = hid * 0x9e3779b97f4a7c15ull ^ ver * 0xc2b2ae3d27d4eb4full ^
                 ((uint64_t)(uint32_t)peer << 1 | (uint64_t)dir) * 0x165667b19e3779f9ull;
    x ^= x >> 29;
    return (size_t)x & (c->nbuckets - 1);
}

static entry_t **entry_find(comm_t *c, uint64_t hid, uint64_t ver, int peer, int dir) {
    entry_t **pp = &c->table[entry_hash(c, hid, ver, peer, dir)];
    while (*pp &&
           !((*pp)->hid == hid && (*pp)->ver == ver && (*pp)->peer == peer && (*pp)->dir == dir))
        pp = &(*pp)->next;
    return pp;
}

static void table_grow(comm_t *c) {
    size_t old = c->nbuckets;
    entry_t **t = calloc(2 * old, sizeof *t);
    if (!t) return; /* stay at the current size: longer chains, still correct */
    entry_t **ot = c->table;
    c->table = t;
    c->nbuckets = 2 * old;
    for (size_t i = 0; i < old; i++) {
        for (entry_t *e = ot[i], *next; e; e = next) {
            next = e->next;
            size_t b = entry_hash(c, e->hid, e->ver, e->peer, e->dir);
            e->next = t[b];
            t[b] = e;
        }
    }
    free(ot);
}

static entry_t *entry_add(comm_t *c, uint64_t hid, uint64_t ver, int peer, int dir) {
    if (c->nentries >= c->nbuckets) table_grow(c);
    entry_t *e = calloc(1, sizeof *e);
    if (!e) return NULL;
    *e = (entry_t){.hid = hid, .ver = ver, .peer = peer, .dir = dir};
    entry_t **head = &c->table[entry_hash(c, hid, ver, peer, dir)];
    e->next = *head;
    *head = e;
    c->nentries++;
    return e;
}

static void entry_remove(comm_t *c, entry_t **pp) {
    entry_t *e = *pp;
    *pp = e->next;
    free(e);
    c->nentries--;
}

/* ------------------------------------------------------------------------------------------
 * Messages
 * ---------------------------------------------------------------------------------------- */

static int put_msg(comm_t *c, int peer, msg_t *m) {
    int me = c->ctx->rank;
    m->seq = ++c->sent[peer];
    MPI_Aint disp = (MPI_Aint)(((size_t)me * MSG_SLOTS + (m->seq - 1) % MSG_SLOTS) * sizeof *m);
    if (c->peer_base[peer]) {
        msg_t *slot = (msg_t *)(c->peer_base[peer] + disp);
        memcpy((char *)slot + 8, (char *)m + 8, sizeof *m - 8);
        __atomic_store_n(&slot->seq, m->seq, __ATOMIC_RELEASE);
        return MPI_SUCCESS;
    }
    int e = MPI_Put((char *)m + 8, (int)sizeof *m - 8, MPI_BYTE, peer, disp + 8, (int)sizeof *m - 8,
                    MPI_BYTE, c->win);
    if (e == MPI_SUCCESS) e = MPI_Win_flush(peer, c->win);
    /* The sequence number goes last, after the body is complete at the target. */
    if (e == MPI_SUCCESS) e = MPI_Put(&m->seq, 8, MPI_BYTE, peer, disp, 8, MPI_BYTE, c->win);
    if (e == MPI_SUCCESS) e = MPI_Win_flush(peer, c->win);
    return e;
}

static bool ring_has_room(comm_t *c, int peer) {
    uint64_t consumed = __atomic_load_n(&c->credit[peer], __ATOMIC_ACQUIRE);
    return c->sent[peer] - consumed < MSG_SLOTS;
}

static bool outbox_push(outbox_t *o, const msg_t *m) {
    if (o->n == o->cap) {
        size_t cap = o->cap ? 2 * o->cap : 16;
        msg_t *q = malloc(cap * sizeof *q);
        if (!q) return false;
        for (size_t i = 0; i < o->n; i++)
            q[i] = o->q[(o->head + i) % o->cap];
        free(o->q);
        o->q = q;
        o->head = 0;
        o->cap = cap;
    }
    o->q[(o->head + o->n) % o->cap] = *m;
    o->n++;
    return true;
}

static void comm_fail(comm_t *c, int mpi_err, const char *what) {
    char text[MPI_MAX_ERROR_STRING] = "";
    int len = 0;
    MPI_Error_string(mpi_err, text, &len);
    char msg[DAGR_ERRMSG_MAX + MPI_MAX_ERROR_STRING]; /* ctx_record_failure keeps what fits */
    snprintf(msg, sizeof msg, "comm_rma.c: %s failed on rank %d: %s", what, c->ctx->rank, text);
    ctx_record_failure(c->ctx, DAGR_ERR_MPI, msg);
}

static void post(comm_t *c, int peer, msg_t *m) {
    outbox_t *o = &c->outbox[peer];
    if (o->n == 0 && ring_has_room(c, peer)) {
        int e = put_msg(c, peer, m);
        if (e != MPI_SUCCESS) comm_fail(c, e, "sending a notification");
        return;
    }
    if (outbox_push(o, m))
        c->outbox_total++;
    else
        ctx_record_failure(c->ctx, DAGR_ERR_NOMEM, "out of memory queueing a notification");
}

static bool drain_outboxes(comm_t *c) {
    bool any = false;
    for (int p = 0; p < c->ctx->size && c->outbox_total; p++) {
        outbox_t *o = &c->outbox[p];
        while (o->n && ring_has_room(c, p)) {
            msg_t m = o->q[o->head];
            o->head = (o->head + 1) % o->cap;
            o->n--;
            c->outbox_total--;
            int e = put_msg(c, p, &m);
            if (e != MPI_SUCCESS) comm_fail(c, e, "sending a notification");
            any = true;
        }
    }
    return any;
}

/* ------------------------------------------------------------------------------------------
 * Transfers
 * ---------------------------------------------------------------------------------------- */

static MPI_Aint arena_disp(comm_t *c, const void *p) {
    return (MPI_Aint)((const char *)p - c->base);
}

/* True when h's local buffer is the owner's strided home: it is packed on the way out. */
static bool buf_strided(const dagr_data_t *h) {
    return h->buf_kind == BUF_HOME && data_strided(h);
}

static void do_send(comm_t *c, node_t *s, const msg_t *want) {
    int64_t t0 = c->ctx->trace ? trace_ticks() : 0;
    dagr_data_t *h = s->acc[0].h;
    msg_t m = {.type = MSG_DATA, .hid = h->id, .ver = s->version, .bytes = h->bytes};
    /* Out of core the buffer may be on disk: read back (on this thread) and held until the
     * bytes are out. */
    bool pinned = false, unwanted = want->flags & FLAG_POISON; /* the receive failed */
    if (!atomic_load(&s->poisoned) && !unwanted && c->ctx->store) {
        dagr_status_t st = data_pin(h, PIN_READ);
        pinned = st == DAGR_OK;
        if (!pinned) {
            char msg[DAGR_ERRMSG_MAX + 96];
            snprintf(msg, sizeof msg, "rank %d could not send data #%llu to rank %d: %s",
                     c->ctx->rank, (unsigned long long)h->id, s->peer, dagr_last_error());
            ctx_record_failure(c->ctx, st, msg);
            s->failed = true;
        }
    }
    if (atomic_load(&s->poisoned) || s->failed || unwanted) {
        m.flags = FLAG_POISON;
    } else if (h->bytes && c->peer_base[s->peer] && !(want->flags & FLAG_DYN)) {
        /* Same node: copy straight into the consumer's arena; the DATA message's release
         * store publishes it. */
        char *dst = c->peer_base[s->peer] + want->disp;
        if (buf_strided(h))
            data_pack(h, dst);
        else
            memcpy(dst, h->buf, h->bytes);
        atomic_fetch_add_explicit(&c->ctx->bytes_sent, h->bytes, memory_order_relaxed);
    } else if (h->bytes) {
        MPI_Win win = (want->flags & FLAG_DYN) ? c->dyn : c->win;
        char *packed = buf_strided(h) ? malloc(h->bytes) : NULL;
        if (packed) data_pack(h, packed);
        const char *src = packed ? packed : h->buf;
        int e = buf_strided(h) && !packed ? MPI_ERR_NO_MEM : MPI_SUCCESS;
        for (size_t off = 0; off < h->bytes && e == MPI_SUCCESS; off += PUT_CHUNK) {
            size_t n = h->bytes - off < PUT_CHUNK ? h->bytes - off : PUT_CHUNK;
            e = MPI_Put(src + off, (int)n, MPI_BYTE, s->peer, (MPI_Aint)(want->disp + off), (int)n,
                        MPI_BYTE, win);
        }
        if (e == MPI_SUCCESS) e = MPI_Win_flush(s->peer, win);
        free(packed);
        if (e != MPI_SUCCESS) {
            comm_fail(c, e, "MPI_Put of a tile");
            s->failed = true;
            m.flags = FLAG_POISON;
        } else {
            atomic_fetch_add_explicit(&c->ctx->bytes_sent, h->bytes, memory_order_relaxed);
        }
    }
    if (pinned) data_unpin(h);
    post(c, s->peer, &m);
    if (c->ctx->trace) trace_send(c->ctx, s, t0, m.flags & FLAG_POISON ? 0 : h->bytes);
    node_complete(c->ctx, s);
}

static void send_ready(comm_t *c, node_t *s) {
    dagr_data_t *h = s->acc[0].h;
    entry_t **pp = entry_find(c, h->id, s->version, s->peer, 0);
    if (*pp) { /* the WANT came first */
        msg_t want = (*pp)->want;
        entry_remove(c, pp);
        do_send(c, s, &want);
        return;
    }
    entry_t *e = entry_add(c, h->id, s->version, s->peer, 0);
    if (!e) {
        s->failed = true;
        ctx_record_failure(c->ctx, DAGR_ERR_NOMEM, "out of memory tracking a transfer");
        do_send(c, s, &(msg_t){0});
        return;
    }
    e->node = s;
}

static void recv_unpin(node_t *r) {
    if (r->pinned) data_unpin(r->acc[0].h);
    r->pinned = false;
}

static void recv_failed(dagr_ctx_t *ctx, node_t *r, dagr_status_t st) {
    char msg[DAGR_ERRMSG_MAX + 96];
    snprintf(msg, sizeof msg, "rank %d could not receive data #%llu from rank %d: %s", ctx->rank,
             (unsigned long long)r->acc[0].h->id, r->peer, dagr_last_error());
    r->failed = true;
    ctx_record_failure(ctx, st, msg);
}

/* Out of core, a home or a heap copy is pinned while the data lands in it (the arrival
 * overwrites it, so a spilled one is not read back). */
static bool recv_pin(dagr_ctx_t *ctx, node_t *r) {
    dagr_status_t st = data_pin(r->acc[0].h, PIN_OVERWRITE);
    r->pinned = st == DAGR_OK;
    if (st != DAGR_OK) recv_failed(ctx, r, st);
    return r->pinned;
}

/* Where the data may land, sent to the sender with the request: the handle's own arena
 * block, else a staging block of the arena (copied on arrival), else the buffer itself
 * through the dynamic window. Out of core, a home or heap copy that can be staged takes
 * memory only when the data arrives (on_data): a receive waiting for a slow sender holds no
 * room under the limit, and one that ends poisoned leaves the older contents in place. A
 * receive with nowhere to land asks for no bytes (FLAG_POISON): its failure is recorded,
 * and the sender's SEND still completes. */
static void recv_ready(comm_t *c, node_t *r) {
    dagr_ctx_t *ctx = c->ctx;
    dagr_data_t *h = r->acc[0].h;
    msg_t m = {.type = MSG_WANT, .hid = h->id, .ver = r->version, .bytes = h->bytes};
    if (ctx->trace) r->tr_t0 = trace_ticks();
    if (h->bytes) {
        pthread_mutex_lock(&h->lock);
        if (!h->buf && !h->spilled) {
            h->buf = arena_alloc(&ctx->arena, h->bytes);
            h->buf_kind = h->buf ? BUF_ARENA : BUF_NONE;
        }
        pthread_mutex_unlock(&h->lock);
        bool stored = ctx->store && h->buf_kind != BUF_ARENA;
        dagr_status_t st = stored || h->buf ? DAGR_OK : data_ensure_buf(h);
        if (st != DAGR_OK) {
            recv_failed(ctx, r, st);
        } else if (h->buf_kind == BUF_ARENA) {
            m.disp = (uint64_t)arena_disp(c, h->buf);
        } else if ((r->staging = arena_alloc(&ctx->arena, h->bytes))) {
            m.disp = (uint64_t)arena_disp(c, r->staging);
        } else if (stored && !recv_pin(ctx, r)) {
            /* The failure is recorded; nothing to attach. */
        } else if (h->buf) {
            /* Arena full: let the data land through the dynamic window, in place, or in a
             * heap block when the buffer is strided (it is unpacked on arrival). */
            void *land = h->buf;
            if (buf_strided(h)) land = r->staging = malloc(h->bytes);
            r->staging_heap = r->staging != NULL;
            MPI_Aint addr = 0;
            int e = land ? MPI_Win_attach(c->dyn, land, (MPI_Aint)h->bytes) : MPI_ERR_NO_MEM;
            if (e == MPI_SUCCESS) e = MPI_Get_address(land, &addr);
            if (e != MPI_SUCCESS) {
                comm_fail(c, e, "attaching a buffer to the dynamic window");
                r->failed = true;
            }
            r->dyn_attached = e == MPI_SUCCESS;
            c->dyn_pending += r->dyn_attached;
            m.disp = (uint64_t)addr;
            m.flags = FLAG_DYN;
        }
        if (r->failed) m.flags = FLAG_POISON;
    }
    /* Even a failed receive asks for its data: the sender's SEND must complete too. */
    entry_t *e = entry_add(c, h->id, r->version, r->peer, 1);
    if (!e) {
        ctx_record_failure(ctx, DAGR_ERR_NOMEM, "out of memory tracking a transfer");
        r->failed = true;
        recv_unpin(r);
        node_complete(ctx, r);
        return;
    }
    e->node = r;
    post(c, r->peer, &m);
}

static void on_want(comm_t *c, int from, const msg_t *m) {
    entry_t **pp = entry_find(c, m->hid, m->ver, from, 0);
    if (*pp && (*pp)->node) {
        node_t *s = (*pp)->node;
        entry_remove(c, pp);
        do_send(c, s, m);
        return;
    }
    entry_t *e = entry_add(c, m->hid, m->ver, from, 0);
    if (!e) {
        ctx_record_failure(c->ctx, DAGR_ERR_NOMEM, "out of memory tracking a transfer");
        return;
    }
    e->want = *m;
}

static void on_data(comm_t *c, int from, const msg_t *m) {
    entry_t **pp = entry_find(c, m->hid, m->ver, from, 1);
    if (!*pp) {
        ctx_record_failure(c->ctx, DAGR_ERR_INTERNAL, "comm_rma.c: data for no pending receive");
        return;
    }
    node_t *r = (*pp)->node;
    entry_remove(c, pp);
    dagr_data_t *h = r->acc[0].h;
    if (m->flags & FLAG_POISON) {
        atomic_store(&r->poisoned, true);
    } else if (c->ctx->store && r->staging && !r->pinned && !recv_pin(c->ctx, r)) {
        /* Staged out of core: the buffer had to come into memory now, and could not (the
         * failure is recorded). */
    } else if (r->staging && buf_strided(h)) {
        data_unpack(h, r->staging);
    } else if (r->staging && h->buf) {
        memcpy(h->buf, r->staging, h->bytes);
    }
    if (r->dyn_attached) {
        MPI_Win_detach(c->dyn, r->staging_heap ? r->staging : h->buf);
        c->dyn_pending--;
    }
    r->dyn_attached = false;
    if (r->staging_heap)
        free(r->staging);
    else if (r->staging)
        arena_free(&c->ctx->arena, r->staging, h->bytes);
    r->staging = NULL;
    r->staging_heap = false;
    recv_unpin(r);
    atomic_fetch_add_explicit(&c->ctx->bytes_received, h->bytes, memory_order_relaxed);
    if (c->ctx->trace) trace_recv(c->ctx, r, m->flags & FLAG_POISON ? 0 : h->bytes);
    node_complete(c->ctx, r);
}

static bool poll_inbox(comm_t *c) {
    bool any = false;
    int me = c->ctx->rank;
    if (c->nremote) MPI_Win_sync(c->win);
    for (int p = 0; p < c->ctx->size; p++) {
        if (p == me) continue;
        for (;;) {
            msg_t *slot = &c->inbox[(size_t)p * MSG_SLOTS + c->recvd[p] % MSG_SLOTS];
            if (__atomic_load_n(&slot->seq, __ATOMIC_ACQUIRE) != c->recvd[p] + 1) break;
            msg_t m = *slot;
            c->recvd[p]++;
            any = true;
            if (m.type == MSG_WANT)
                on_want(c, p, &m);
            else
                on_data(c, p, &m);
        }
        if (c->recvd[p] - c->credited[p] >= MSG_SLOTS / 2) {
            c->credited[p] = c->recvd[p];
            MPI_Aint disp = (MPI_Aint)(c->credit_off + (size_t)me * sizeof(uint64_t));
            if (c->peer_base[p]) {
                __atomic_store_n((uint64_t *)(c->peer_base[p] + disp), c->recvd[p],
                                 __ATOMIC_RELEASE);
                continue;
            }
            int e = MPI_Put(&c->credited[p], 8, MPI_BYTE, p, disp, 8, MPI_BYTE, c->win);
            if (e == MPI_SUCCESS) e = MPI_Win_flush(p, c->win);
            if (e != MPI_SUCCESS) comm_fail(c, e, "returning message credit");
        }
    }
    return any;
}

/* ------------------------------------------------------------------------------------------
 * The progress thread
 * ---------------------------------------------------------------------------------------- */

void comm_push(dagr_ctx_t *ctx, node_t *n) {
    comm_t *c = ctx->comm_engine;
    pthread_mutex_lock(&c->lock);
    if (c->nevents == c->capevents) {
        size_t cap = c->capevents ? 2 * c->capevents : 256;
        node_t **ev = realloc(c->events, cap * sizeof *ev);
        if (!ev) {
            pthread_mutex_unlock(&c->lock);
            ctx_record_failure(ctx, DAGR_ERR_NOMEM, "out of memory queueing a transfer");
            n->failed = true;
            node_complete(ctx, n); /* the peer's half will wait; the user is told at the wait */
            return;
        }
        c->events = ev;
        c->capevents = cap;
    }
    c->events[c->nevents++] = n;
    if (c->sleeping) pthread_cond_signal(&c->cond);
    pthread_mutex_unlock(&c->lock);
}

static bool take_events(comm_t *c) {
    /* Swap the two arrays so that pushers never wait while we process. */
    pthread_mutex_lock(&c->lock);
    size_t n = c->nevents, cap = c->capevents;
    node_t **ev = c->events;
    c->events = c->events_spare;
    c->capevents = c->capspare;
    c->events_spare = ev;
    c->capspare = cap;
    c->nevents = 0;
    pthread_mutex_unlock(&c->lock);
    for (size_t i = 0; i < n; i++) {
        node_t *node = ev[i];
        if (node->kind == NODE_SEND)
            send_ready(c, node);
        else
            recv_ready(c, node);
    }
    return n > 0;
}

static void *progress_main(void *p) {
    comm_t *c = p;
    unsigned idle = 0;
    for (;;) {
        bool busy = take_events(c);
        busy |= poll_inbox(c);
        if (c->outbox_total) busy |= drain_outboxes(c);
        if (busy) {
            idle = 0;
            continue;
        }
        bool mpi_active = c->nremote > 0 || c->dyn_pending > 0;
        if (mpi_active || ++idle % 64 == 0) {
            /* Drive MPI's progress engine: Puts aimed at this rank complete only when it
             * enters MPI (see the top of this file). */
            int flag;
            MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, c->pcomm, &flag, MPI_STATUS_IGNORE);
        }
        if (mpi_active) idle++; /* counted above otherwise */
        if (idle < 32) {
            sched_yield();
            continue;
        }
        pthread_mutex_lock(&c->lock);
        if (c->stop) {
            pthread_mutex_unlock(&c->lock);
            break;
        }
        if (c->nevents == 0) {
            /* Nothing to do locally. Transfers in flight may complete by a message we must
             * poll for, so sleep briefly; with nothing in flight, sleep longer (a new event
             * wakes us at once). */
            long ns = mpi_active ? 20000 : c->nentries || c->outbox_total ? 50000 : 2000000;
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            ts.tv_nsec += ns;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            c->sleeping = true;
            pthread_cond_timedwait(&c->cond, &c->lock, &ts);
            c->sleeping = false;
        }
        pthread_mutex_unlock(&c->lock);
    }
    return NULL;
}

/* ------------------------------------------------------------------------------------------
 * Setup and teardown (collective)
 * ---------------------------------------------------------------------------------------- */

void *comm_arena_alloc(dagr_ctx_t *ctx, size_t bytes) {
    return arena_alloc(&ctx->arena, bytes);
}
void comm_arena_free(dagr_ctx_t *ctx, void *p, size_t bytes) {
    arena_free(&ctx->arena, p, bytes);
}

/* Default arena: 256 MiB per rank, less if the node's shared-memory file system (where MPICH
 * puts MPI_Win_allocate memory for ranks of a node) is small; pages are touched only when a
 * transfer uses them. */
static size_t default_arena(const dagr_ctx_t *ctx) {
    size_t want = (size_t)256 << 20;
    struct statvfs st;
    if (statvfs("/dev/shm", &st) == 0) {
        size_t avail = (size_t)st.f_bavail * st.f_frsize;
        size_t share = avail / (4 * (size_t)(ctx->local_size > 0 ? ctx->local_size : 1));
        if (share < want) want = share;
    }
    if (want < ((size_t)4 << 20)) want = (size_t)4 << 20;
    return want;
}

/* Finds which ranks share this node and maps their segments. */
static dagr_status_t map_node_peers(comm_t *c) {
    dagr_ctx_t *ctx = c->ctx;
    c->peer_base = calloc((size_t)ctx->size, sizeof *c->peer_base);
    DAGR_CHECK(c->peer_base, DAGR_ERR_NOMEM, "cannot allocate the peer table");
    const char *env = getenv("DAGR_COMM_SHM");
    bool use_shm = !(env && strcmp(env, "0") == 0);
    int nlocal;
    MPI_Comm_size(c->node, &nlocal);
    MPI_Group gnode, gall;
    MPI_Comm_group(c->node, &gnode);
    MPI_Comm_group(ctx->comm, &gall);
    for (int l = 0; l < nlocal && use_shm; l++) {
        int g;
        MPI_Group_translate_ranks(gnode, 1, &l, gall, &g);
        MPI_Aint size;
        int unit;
        void *ptr = NULL;
        DAGR_TRY_MPI(MPI_Win_shared_query(c->shwin, l, &size, &unit, &ptr));
        if (g != ctx->rank) c->peer_base[g] = ptr;
    }
    MPI_Group_free(&gnode);
    MPI_Group_free(&gall);
    for (int p = 0; p < ctx->size; p++)
        c->nremote += p != ctx->rank && !c->peer_base[p];
    return DAGR_OK;
}

dagr_status_t comm_start(dagr_ctx_t *ctx) {
    comm_t *c = calloc(1, sizeof *c);
    DAGR_CHECK(c, DAGR_ERR_NOMEM, "cannot allocate the communication engine");
    c->ctx = ctx;
    c->pcomm = c->node = MPI_COMM_NULL;
    int P = ctx->size;
    size_t inbox = (size_t)P * MSG_SLOTS * sizeof(msg_t);
    size_t credit = ((size_t)P * sizeof(uint64_t) + 63) & ~(size_t)63;
    size_t arena = ctx->cfg.comm_arena ? ctx->cfg.comm_arena : default_arena(ctx);
    arena = (arena + 63) & ~(size_t)63;
    c->credit_off = inbox;
    c->arena_off = inbox + credit;

    c->sent = calloc((size_t)P, sizeof *c->sent);
    c->recvd = calloc((size_t)P, sizeof *c->recvd);
    c->credited = calloc((size_t)P, sizeof *c->credited);
    c->outbox = calloc((size_t)P, sizeof *c->outbox);
    c->nbuckets = 1024;
    c->table = calloc(c->nbuckets, sizeof *c->table);
    if (!c->sent || !c->recvd || !c->credited || !c->outbox || !c->table) {
        free(c->sent), free(c->recvd), free(c->credited), free(c->outbox), free(c->table);
        free(c);
        return DAGR_ERR(DAGR_ERR_NOMEM, "cannot allocate the communication engine");
    }
    pthread_mutex_init(&c->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&c->cond, &ca);
    pthread_condattr_destroy(&ca);
    ctx->comm_engine = c;

    DAGR_TRY_MPI(MPI_Comm_dup(ctx->comm, &c->pcomm));
    DAGR_TRY_MPI(MPI_Comm_split_type(ctx->comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &c->node));
    MPI_Info info;
    DAGR_TRY_MPI(MPI_Info_create(&info));
    MPI_Info_set(info, "alloc_shared_noncontig", "true");
    MPI_Aint total = (MPI_Aint)(c->arena_off + arena);
    int e = MPI_Win_allocate_shared(total, 1, info, c->node, &c->base, &c->shwin);
    MPI_Info_free(&info);
    DAGR_TRY_MPI(e);
    c->have_shwin = true;
    DAGR_TRY_MPI(MPI_Win_create(c->base, total, 1, MPI_INFO_NULL, ctx->comm, &c->win));
    c->have_win = true;
    DAGR_TRY(map_node_peers(c));
    memset(c->base, 0, c->arena_off);
    c->inbox = (msg_t *)c->base;
    c->credit = (uint64_t *)(c->base + c->credit_off);
    DAGR_TRY_MPI(MPI_Win_create_dynamic(MPI_INFO_NULL, ctx->comm, &c->dyn));
    c->have_dyn = true;
    DAGR_TRY_MPI(MPI_Win_lock_all(MPI_MODE_NOCHECK, c->shwin));
    DAGR_TRY_MPI(MPI_Win_lock_all(MPI_MODE_NOCHECK, c->win));
    DAGR_TRY_MPI(MPI_Win_lock_all(MPI_MODE_NOCHECK, c->dyn));
    DAGR_TRY(arena_init(&ctx->arena, c->base + c->arena_off, arena));
    /* Every ring must be zeroed before anyone writes into it. */
    DAGR_TRY_MPI(MPI_Barrier(ctx->comm));
    DAGR_CHECK(pthread_create(&c->thread, NULL, progress_main, c) == 0, DAGR_ERR_NOMEM,
               "cannot start the progress thread");
    c->have_thread = true;
    return DAGR_OK;
}

/* Stops the progress thread and frees the windows. Collective (MPI_Win_free). */
void comm_stop(dagr_ctx_t *ctx) {
    comm_t *c = ctx->comm_engine;
    if (!c) return;
    if (c->have_thread) {
        pthread_mutex_lock(&c->lock);
        c->stop = true;
        pthread_cond_signal(&c->cond);
        pthread_mutex_unlock(&c->lock);
        pthread_join(c->thread, NULL);
        arena_fini(&ctx->arena);
    }
    /* lock_all is taken right after both windows exist, and init fails before the thread
     * starts only on MPI errors; unlocking an unlocked window is then harmless to skip. */
    if (c->have_thread) {
        MPI_Win_unlock_all(c->dyn);
        MPI_Win_unlock_all(c->win);
        MPI_Win_unlock_all(c->shwin);
    }
    if (c->have_dyn) MPI_Win_free(&c->dyn);
    if (c->have_win) MPI_Win_free(&c->win);
    if (c->have_shwin) MPI_Win_free(&c->shwin);
    if (c->node != MPI_COMM_NULL) MPI_Comm_free(&c->node);
    if (c->pcomm != MPI_COMM_NULL) MPI_Comm_free(&c->pcomm);
    free(c->peer_base);
    for (size_t i = 0; i < c->nbuckets; i++) {
        for (entry_t *e = c->table[i], *next; e; e = next) {
            next = e->next;
            free(e);
        }
    }
    for (int p = 0; p < ctx->size; p++)
        free(c->outbox[p].q);
    free(c->table), free(c->outbox), free(c->sent), free(c->recvd), free(c->credited);
    free(c->events), free(c->events_spare);
    pthread_cond_destroy(&c->cond);
    pthread_mutex_destroy(&c->lock);
    free(c);
    ctx->comm_engine = NULL;
}
