/* The communication engine: moves versions of data between ranks, driven by one progress
 * thread per rank. Peers on this node share memory (one-sided, no MPI call); peers on other
 * nodes get their bytes through MPI two-sided messages that the progress thread drives with
 * MPI_Testsome.
 *
 * Protocol. Both ends of every transfer know it will happen, because both inserted the same
 * graph. When the receiving rank's RECV node becomes ready (the local buffer is no longer
 * used by anyone), the engine picks where the data should land and sends WANT(handle,
 * version, where) to the holder. When the holder's SEND node is ready (the version has been
 * written) and the WANT has arrived, the holder sends the bytes; the RECV completes when they
 * are in. The holder's buffer is free for the next write when its copy or send completes,
 * with no acknowledgement round trip. A poisoned version (its producer failed) goes as a
 * DATA message with no bytes.
 *
 * Ranks on one node. The window memory comes from MPI_Win_allocate_shared on the node's
 * communicator, so a peer on the same node writes the rings, credits and arena directly:
 * a memcpy from the producer's buffer into the consumer's arena and a release store of the
 * sequence number, with no MPI call at all; the DATA message that follows publishes it.
 * DAGR_COMM_SHM=0 sends every peer the other-node way (tests use it on one node).
 *
 * Ranks on other nodes: why two-sided. Until 2026-12 these went one-sided too: MPI_Put of the
 * bytes into the receiver's window, then a flush, and each message as two Puts and two
 * flushes. On MPICH ch4:ucx a flush returns only when the target process enters MPI (20 ms
 * per flush against a target computing outside MPI), and a progress thread blocked in a
 * flush does nothing else: in MPICH's network mode (MPIR_CVAR_NOLOCAL=1, two ranks on this
 * machine) that path moved 1 MiB tiles at 0.14 of a raw MPI_Get, and a 4-rank QR on two
 * cores, whose progress threads all sat in flushes waiting on each other, ran for more than
 * 14 minutes instead of 16 s. Requests that complete by themselves while the thread goes on
 * fix both: the receiver posts MPI_Irecv into the buffer itself (any memory; no window,
 * no arena) under a tag of its own and names the tag in its WANT (FLAG_P2P); the holder
 * answers with MPI_Isend; messages are 64-byte MPI_Isends to MPI_Irecvs posted in advance.
 * One MPI_Testsome per loop over every request in flight drives MPI's progress, so transfers
 * move while the workers compute. There is no MPI request-based flush to keep Puts
 * non-blocking, and a pull (MPI_Get) needs the producer's buffer in a window (dynamic
 * windows measured 8x slower than allocated memory here). Pulling was built and measured
 * (2026-12-04, branch pull-window: tiles of 64 KiB and more allocated in an MPI_Win_allocate
 * window, read by the receiver with MPI_Rget) and not kept: with this MPICH a Get advances
 * only while its target enters MPI (benchmarks/rma_pull: 17 GB/s for 16 MiB while the target
 * polls every ~50 us, 0.65 GB/s while it makes no call), so a pull needs the holder's thread
 * twice where a send needs it once. In network mode on two cores it moved 1-16 MiB tiles at
 * 0.36-0.98 of the best raw MPI (sending: 0.47-0.87) with every thread idle, but at
 * 0.35-0.72 (sending: 0.45-1.80) with another thread computing on each core, and the
 * factorizations did not change. Where Rget is RDMA (InfiniBand) it may win; that is
 * untested. Figures: benchmarks/RESULTS.md ("off node", "pulling from window memory").
 *
 * When a peer on this node finds no room in its arena, the transfer goes the two-sided way
 * too (it used to need a dynamic window).
 *
 * Messages on one node. Each rank's shared segment starts with one ring of MSG_SLOTS 64-byte
 * slots per sender on the node; the receiver polls its own memory for the next sequence
 * number. Flow control: the receiver stores how many messages it consumed into the sender's
 * credit slot every half ring; a sender with no credit keeps messages in an outbox. Messages
 * to other nodes are queued by MPI itself.
 *
 * The doorbell. A progress thread with nothing to do sleeps on a futex word in its own
 * segment (the bell), and whoever gives it work rings it: a peer on this node after writing
 * a message or a credit into its segment, a worker after queueing an event. Until 2026-12 it
 * slept 50 us at a time and polled its rings, because nothing told it a peer had written:
 * in an LU at n = 4096 on the 2-core VM that was some 20,000 wake-ups a second on cores the
 * workers were computing on, and the 256^3 gemm tiles ran at 32 GFLOP/s of wall time (37 of
 * CPU time) against 44 in a gemm with few transfers waiting. Only messages from other nodes
 * are still polled for (MPI gives no wake-up), at the intervals in progress_main.
 *
 * Only the progress thread calls MPI here, so the rest of dagr never waits on it. */
#include "lib_impl.h"

#include <limits.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>
#ifdef __linux__
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

#define MSG_SLOTS 64
#define MSG_RECVS 32               /* receives posted for messages from other nodes */
#define BIG_UNIT ((size_t)1 << 20) /* MPI counts are ints: over INT_MAX bytes go in MiB units */

enum { MSG_WANT = 1, MSG_DATA = 2, MSG_SIZE = 3 };
/* FLAG_POISON: in DATA, the version is bad (its producer failed): no bytes came; in WANT, the
 * receive failed (it has nowhere to land them): send none. FLAG_P2P: in WANT, send the bytes
 * with MPI_Isend under the tag in disp (the receive is posted); no DATA follows unless
 * poisoned. FLAG_ASK: in WANT, the receiver does not know the version's size (a handle whose
 * size tasks decide): the holder answers SIZE(bytes) and waits for a second WANT that says
 * where they land, or DATA at once when the version is empty or poisoned. */
enum { FLAG_P2P = 1, FLAG_POISON = 2, FLAG_ASK = 4 };
enum { TAG_MSG = 0 }; /* data tags are 1 .. tag_max, chosen by the receiver */

/* A request in flight on the progress thread's MPI path. */
enum { OP_FREE, OP_MSG_RECV, OP_MSG_SEND, OP_SEND, OP_RECV };
typedef struct op {
    uint8_t kind;
    bool pinned;  /* OP_SEND: the handle's buffer is pinned until the bytes are out */
    node_t *node; /* OP_SEND, OP_RECV */
    void *buf;    /* OP_MSG_*: the message; OP_SEND: a packed copy to free, or NULL */
    int64_t t0;   /* OP_SEND: when the send started (trace) */
} op_t;

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
    MPI_Win shwin; /* the node's shared segments (MPI_Win_allocate_shared) */
    MPI_Comm node;
    char **peer_base; /* per global rank: its segment mapped here, or NULL (use MPI) */
    int nremote;      /* peers reached through MPI messages */
    MPI_Comm pcomm;   /* the progress thread's private communicator */
    int tag_max, next_tag;
    MPI_Datatype big; /* BIG_UNIT bytes */
    int *idx;         /* MPI_Testsome's output, capops long */
    MPI_Status *statuses;
    /* Requests in flight: reqs[i] belongs to ops[i]; the first MSG_RECVS are the posted
     * message receives (only with remote peers). */
    MPI_Request *reqs;
    op_t *ops;
    int nops, capops, nmsgrecv;
    int nsends; /* OP_SEND requests in flight: bytes leaving (read by comm_moving) */
    msg_t msgrecv[MSG_RECVS];
    char *base;
    size_t credit_off, bell_off, arena_off;
    msg_t *inbox;
    uint64_t *credit;
    uint32_t *bell; /* this rank's doorbell: BELL_COUNT, BELL_SLEEPING */
    uint64_t *sent, *recvd, *credited;
    outbox_t *outbox;
    size_t outbox_total;

    entry_t **table;
    size_t nbuckets, nentries;

    pthread_mutex_t lock; /* guards events and stop */
    node_t **events, **events_spare;
    size_t nevents, capevents, capspare;
    bool stop;
    bool have_shwin, have_thread;
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

static int op_add(comm_t *c, uint8_t kind, node_t *node, void *buf, MPI_Request **req);

/* The doorbell's two words: a count that every ring bumps (the futex word) and a flag its
 * owner sets while it sleeps. Owner and ringers each store, fence, then load the other's
 * word, so either the owner sees the work before sleeping or the ringer sees the flag. */
enum { BELL_COUNT = 0, BELL_SLEEPING = 1, BELL_BYTES = 64 };

/* Wakes the progress thread sleeping on `bell` (this rank's or a peer's on this node), after
 * the caller published what it has to do. */
static void bell_ring(uint32_t *bell) {
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (!__atomic_load_n(&bell[BELL_SLEEPING], __ATOMIC_RELAXED) ||
        !__atomic_exchange_n(&bell[BELL_SLEEPING], 0, __ATOMIC_SEQ_CST))
        return;
    __atomic_fetch_add(&bell[BELL_COUNT], 1, __ATOMIC_SEQ_CST);
#ifdef __linux__
    /* Not FUTEX_PRIVATE: the word is in memory shared with the other ranks of the node. */
    syscall(SYS_futex, &bell[BELL_COUNT], FUTEX_WAKE, 1, NULL, NULL, 0);
#endif
}

static uint32_t *peer_bell(comm_t *c, int peer) {
    return (uint32_t *)(c->peer_base[peer] + c->bell_off);
}

static int put_msg(comm_t *c, int peer, msg_t *m) {
    int me = c->ctx->rank;
    m->seq = ++c->sent[peer];
    if (!c->peer_base[peer]) {
        msg_t *copy = malloc(sizeof *copy);
        MPI_Request *req;
        if (!copy || op_add(c, OP_MSG_SEND, NULL, copy, &req) != MPI_SUCCESS) {
            free(copy);
            return MPI_ERR_NO_MEM;
        }
        *copy = *m;
        int e = MPI_Isend(copy, (int)sizeof *copy, MPI_BYTE, peer, TAG_MSG, c->pcomm, req);
        if (e != MPI_SUCCESS) { /* the op just added: nothing will complete it */
            c->nops--;
            free(copy);
        }
        return e;
    }
    MPI_Aint disp = (MPI_Aint)(((size_t)me * MSG_SLOTS + (m->seq - 1) % MSG_SLOTS) * sizeof *m);
    msg_t *slot = (msg_t *)(c->peer_base[peer] + disp);
    memcpy((char *)slot + 8, (char *)m + 8, sizeof *m - 8);
    __atomic_store_n(&slot->seq, m->seq, __ATOMIC_RELEASE);
    bell_ring(peer_bell(c, peer));
    return MPI_SUCCESS;
}

/* MPI queues messages to other nodes itself; a ring on this node has room up to the credit
 * its reader returned. */
static bool ring_has_room(comm_t *c, int peer) {
    if (!c->peer_base[peer]) return true;
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
 * Requests on the MPI path (progress thread only): messages to and from other nodes, and the
 * bytes of transfers that go with MPI_Isend / MPI_Irecv
 * ---------------------------------------------------------------------------------------- */

/* Appends an op; *req is where its request goes, valid until the next op_add. */
static int op_add(comm_t *c, uint8_t kind, node_t *node, void *buf, MPI_Request **req) {
    if (c->nops == c->capops) {
        int cap = c->capops ? 2 * c->capops : 64;
        MPI_Request *r = realloc(c->reqs, (size_t)cap * sizeof *r);
        if (r) c->reqs = r;
        op_t *o = r ? realloc(c->ops, (size_t)cap * sizeof *o) : NULL;
        if (o) c->ops = o;
        int *ix = o ? realloc(c->idx, (size_t)cap * sizeof *ix) : NULL;
        if (ix) c->idx = ix;
        MPI_Status *st = ix ? realloc(c->statuses, (size_t)cap * sizeof *st) : NULL;
        if (!st) return MPI_ERR_NO_MEM;
        c->statuses = st;
        c->capops = cap;
    }
    c->ops[c->nops] = (op_t){.kind = kind, .node = node, .buf = buf};
    c->reqs[c->nops] = MPI_REQUEST_NULL;
    *req = &c->reqs[c->nops++];
    return MPI_SUCCESS;
}

/* Starts moving the bytes of transfer n (kind OP_SEND or OP_RECV) at p with the receiver's
 * tag: one request, or two when the count does not fit an int (MiB units, then the rest;
 * both ends split alike, and MPI matches messages of one tag in order). Returns false when
 * nothing could be started. */
static bool p2p_post(comm_t *c, uint8_t kind, node_t *n, char *p, size_t bytes, int tag) {
    size_t nbig = bytes > INT_MAX ? bytes / BIG_UNIT : 0, rest = bytes - nbig * BIG_UNIT;
    struct {
        size_t count, off;
        MPI_Datatype type;
    } part[2] = {{nbig, 0, c->big}, {rest, nbig * BIG_UNIT, MPI_BYTE}};
    n->p2p_left = 0;
    for (int i = 0; i < 2; i++) {
        if (!part[i].count) continue;
        MPI_Request *req;
        int e = op_add(c, kind, n, NULL, &req);
        if (e == MPI_SUCCESS && kind == OP_SEND)
            e = MPI_Isend(p + part[i].off, (int)part[i].count, part[i].type, n->peer, tag, c->pcomm,
                          req);
        else if (e == MPI_SUCCESS)
            e = MPI_Irecv(p + part[i].off, (int)part[i].count, part[i].type, n->peer, tag, c->pcomm,
                          req);
        if (e != MPI_SUCCESS) {
            if (e != MPI_ERR_NO_MEM) c->nops--; /* the op was added, its request not started */
            comm_fail(c, e, kind == OP_SEND ? "MPI_Isend of a tile" : "MPI_Irecv of a tile");
            n->failed = true;
            break;
        }
        n->p2p_left++;
        if (kind == OP_SEND) __atomic_add_fetch(&c->nsends, 1, __ATOMIC_RELAXED);
    }
    return n->p2p_left > 0;
}

/* A receive whose DATA says poisoned: no bytes will come for its posted requests. */
static void p2p_cancel(comm_t *c, node_t *r) {
    for (int i = c->nmsgrecv; i < c->nops; i++) {
        if (c->ops[i].node != r || c->ops[i].kind != OP_RECV) continue;
        MPI_Cancel(&c->reqs[i]);
        MPI_Wait(&c->reqs[i], MPI_STATUS_IGNORE);
        c->ops[i].kind = OP_FREE;
    }
    r->p2p_left = 0;
}

static int msgrecv_post(comm_t *c, int i) {
    return MPI_Irecv(&c->msgrecv[i], (int)sizeof(msg_t), MPI_BYTE, MPI_ANY_SOURCE, TAG_MSG,
                     c->pcomm, &c->reqs[i]);
}

static void on_msg(comm_t *c, int from, const msg_t *m);
static void send_finish(comm_t *c, node_t *s, bool sent);
static void p2p_recv_done(comm_t *c, node_t *r);
static void recv_finish(comm_t *c, node_t *r, bool poisoned);

/* Tests every request once; handles those that completed. Returns whether any did. */
static bool p2p_poll(comm_t *c) {
    if (c->nops == 0) return false;
    int n = 0;
    int e = MPI_Testsome(c->nops, c->reqs, &n, c->idx, c->statuses);
    if (e != MPI_SUCCESS && e != MPI_ERR_IN_STATUS) {
        comm_fail(c, e, "MPI_Testsome");
        return false;
    }
    if (n == MPI_UNDEFINED || n == 0) return false;
    /* Handling one may add ops (and move the arrays): work from indices, and copy what is
     * needed before anything else runs. */
    for (int k = 0; k < n; k++) {
        int i = c->idx[k];
        op_t op = c->ops[i];
        int err = e == MPI_ERR_IN_STATUS ? c->statuses[k].MPI_ERROR : MPI_SUCCESS;
        if (op.kind == OP_MSG_RECV) {
            msg_t m = c->msgrecv[i];
            int from = c->statuses[k].MPI_SOURCE;
            int pe = msgrecv_post(c, i);
            if (pe != MPI_SUCCESS) comm_fail(c, pe, "posting a receive for notifications");
            if (err != MPI_SUCCESS)
                comm_fail(c, err, "receiving a notification");
            else
                on_msg(c, from, &m);
            continue;
        }
        c->ops[i].kind = OP_FREE;
        if (op.kind == OP_MSG_SEND) {
            free(op.buf);
            if (err != MPI_SUCCESS) comm_fail(c, err, "sending a notification");
            continue;
        }
        if (err != MPI_SUCCESS) {
            comm_fail(c, err, op.kind == OP_SEND ? "MPI_Isend of a tile" : "MPI_Irecv of a tile");
            op.node->failed = true;
        }
        if (op.kind == OP_SEND) __atomic_sub_fetch(&c->nsends, 1, __ATOMIC_RELAXED);
        if (--op.node->p2p_left > 0) continue;
        if (op.kind == OP_SEND)
            send_finish(c, op.node, !op.node->failed);
        else
            p2p_recv_done(c, op.node);
    }
    int j = c->nmsgrecv;
    for (int i = c->nmsgrecv; i < c->nops; i++) {
        if (c->ops[i].kind == OP_FREE) continue;
        c->ops[j] = c->ops[i];
        c->reqs[j++] = c->reqs[i];
    }
    c->nops = j;
    return true;
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

/* The receiver posted its receive (FLAG_P2P): start the bytes with MPI_Isend; the SEND
 * completes when they are out (send_finish). A strided home goes out packed. Returns false
 * when nothing could be started. */
static bool send_p2p(comm_t *c, node_t *s, const msg_t *want) {
    dagr_data_t *h = s->acc[0].h;
    const char *src = h->buf;
    if (buf_strided(h)) {
        s->staging = malloc(h->bytes);
        if (!s->staging) {
            comm_fail(c, MPI_ERR_NO_MEM, "packing a tile to send");
            s->failed = true;
            return false;
        }
        data_pack(h, s->staging);
        src = s->staging;
    }
    if (p2p_post(c, OP_SEND, s, (char *)src, h->bytes, (int)want->disp)) return true;
    free(s->staging);
    s->staging = NULL;
    return false;
}

/* The SEND's end: sent = its bytes went out. */
static void send_finish(comm_t *c, node_t *s, bool sent) {
    dagr_data_t *h = s->acc[0].h;
    free(s->staging);
    s->staging = NULL;
    if (s->pinned) data_unpin(h);
    s->pinned = false;
    if (sent) atomic_fetch_add_explicit(&c->ctx->bytes_sent, h->bytes, memory_order_relaxed);
    if (c->ctx->trace) trace_send(c->ctx, s, s->tr_t0, sent ? h->bytes : 0);
    node_complete(c->ctx, s);
}

/* The receiver asked the size of a version that has bytes: tells it, and waits for where they
 * land (the second WANT finds the SEND in the table). The SEND is not complete meanwhile, so
 * no later write changes the size. */
static void send_size(comm_t *c, node_t *s, size_t bytes) {
    dagr_data_t *h = s->acc[0].h;
    entry_t *e = entry_add(c, h->id, s->version, s->peer, 0);
    if (!e) {
        s->failed = true;
        ctx_record_failure(c->ctx, DAGR_ERR_NOMEM, "out of memory tracking a transfer");
        msg_t m = {.type = MSG_DATA, .flags = FLAG_POISON, .hid = h->id, .ver = s->version};
        post(c, s->peer, &m);
        send_finish(c, s, false);
        return;
    }
    e->node = s;
    msg_t m = {.type = MSG_SIZE, .hid = h->id, .ver = s->version, .bytes = bytes};
    post(c, s->peer, &m);
}

static void do_send(comm_t *c, node_t *s, const msg_t *want) {
    s->tr_t0 = c->ctx->trace ? trace_ticks() : 0;
    dagr_data_t *h = s->acc[0].h;
    bool unwanted = want->flags & FLAG_POISON; /* the receive failed */
    /* The version may still be on a device (lazy write-back): back to the host copy first. */
    if (!unwanted && !atomic_load(&s->poisoned) && !s->failed && data_dirty_hint(h)) {
        dagr_status_t st = device_writeback(h);
        if (st != DAGR_OK) {
            char msg[DAGR_ERRMSG_MAX + 96];
            snprintf(msg, sizeof msg, "rank %d could not send data #%llu to rank %d: %s",
                     c->ctx->rank, (unsigned long long)h->id, s->peer, dagr_last_error());
            ctx_record_failure(c->ctx, st, msg);
            s->failed = true;
        }
    }
    if ((want->flags & FLAG_ASK) && !unwanted && !atomic_load(&s->poisoned) && !s->failed) {
        pthread_mutex_lock(&h->lock);
        size_t bytes = h->bytes;
        pthread_mutex_unlock(&h->lock);
        if (bytes) {
            send_size(c, s, bytes);
            return;
        }
        /* An empty version: the DATA below says so, with no bytes. */
    }
    msg_t m = {.type = MSG_DATA, .hid = h->id, .ver = s->version, .bytes = h->bytes};
    /* Out of core the buffer may be on disk: read back (on this thread) and held until the
     * bytes are out. */
    s->pinned = false;
    if (!atomic_load(&s->poisoned) && !unwanted && c->ctx->store) {
        dagr_status_t st = data_pin(h, PIN_READ);
        s->pinned = st == DAGR_OK;
        if (!s->pinned) {
            char msg[DAGR_ERRMSG_MAX + 96];
            snprintf(msg, sizeof msg, "rank %d could not send data #%llu to rank %d: %s",
                     c->ctx->rank, (unsigned long long)h->id, s->peer, dagr_last_error());
            ctx_record_failure(c->ctx, st, msg);
            s->failed = true;
        }
    }
    if (atomic_load(&s->poisoned) || s->failed || unwanted) {
        m.flags = FLAG_POISON;
    } else if (h->bytes && (want->flags & FLAG_P2P)) {
        if (send_p2p(c, s, want)) return; /* no DATA: the receive completes by itself */
        m.flags = FLAG_POISON;            /* the receiver cancels its receive */
    } else if (h->bytes) {
        /* Same node: copy straight into the consumer's arena; the DATA message's release
         * store publishes it. */
        char *dst = c->peer_base[s->peer] + want->disp;
        if (buf_strided(h))
            data_pack(h, dst);
        else
            memcpy(dst, h->buf, h->bytes);
    }
    post(c, s->peer, &m);
    send_finish(c, s, !(m.flags & FLAG_POISON));
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

/* Where the data may land, sent to the sender with the request. From a peer on this node:
 * the handle's own arena block, else a staging block of the arena (copied on arrival). From
 * another node, or when the arena is full: a receive posted for the sender's MPI_Isend, into
 * the buffer itself, or a heap block when the buffer is strided (unpacked on arrival). Out of
 * core, a home or heap copy that can be staged takes memory only when the data arrives
 * (on_data): a receive waiting for a slow sender holds no room under the limit, and one that
 * ends poisoned leaves the older contents in place. A receive with nowhere to land asks for
 * no bytes (FLAG_POISON): its failure is recorded, and the sender's SEND still completes. */
static void recv_post(comm_t *c, node_t *r) {
    dagr_ctx_t *ctx = c->ctx;
    dagr_data_t *h = r->acc[0].h;
    msg_t m = {.type = MSG_WANT, .hid = h->id, .ver = r->version, .bytes = h->bytes};
    bool near = c->peer_base[r->peer] != NULL;
    char *land = NULL; /* where a receive posted for MPI puts the bytes */
    if (h->bytes && !r->failed) {
        pthread_mutex_lock(&h->lock);
        /* A copy of another rank's data lives in the arena when it fits: memory that is
         * touched once and reused, where a fresh heap block would fault its pages in (and
         * be registered with the network again) at every transfer. */
        if (!h->buf && !h->spilled) {
            h->buf = arena_alloc(&ctx->arena, h->bytes);
            h->buf_kind = h->buf ? BUF_ARENA : BUF_NONE;
        }
        pthread_mutex_unlock(&h->lock);
        bool stored = ctx->store && h->buf_kind != BUF_ARENA;
        dagr_status_t st = stored || h->buf ? DAGR_OK : data_ensure_buf(h);
        if (st != DAGR_OK) {
            recv_failed(ctx, r, st);
        } else if (near && h->buf_kind == BUF_ARENA) {
            m.disp = (uint64_t)arena_disp(c, h->buf);
        } else if ((near || stored) && (r->staging = arena_alloc(&ctx->arena, h->bytes))) {
            /* Staged (out of core, the buffer is pinned only on arrival): in place for a
             * peer on the node, under MPI otherwise. */
            if (near)
                m.disp = (uint64_t)arena_disp(c, r->staging);
            else
                land = r->staging;
        } else if (stored && !recv_pin(ctx, r)) {
            /* The failure is recorded; nothing to post. */
        } else if (h->buf) {
            land = h->buf;
            if (buf_strided(h)) land = r->staging = malloc(h->bytes);
            r->staging_heap = r->staging != NULL;
            if (!land) {
                ctx_record_failure(ctx, DAGR_ERR_NOMEM, "out of memory staging a transfer");
                r->failed = true;
            }
        }
        if (land && !r->failed) {
            int tag = c->next_tag = c->next_tag < c->tag_max ? c->next_tag + 1 : 1;
            if (p2p_post(c, OP_RECV, r, land, h->bytes, tag)) {
                m.disp = (uint64_t)tag;
                m.flags = FLAG_P2P;
            }
        }
    }
    if (r->failed) {
        if (r->p2p_left) p2p_cancel(c, r);
        m.flags = FLAG_POISON;
    }
    /* Even a failed receive asks for its data: the sender's SEND must complete too. */
    post(c, r->peer, &m);
}

/* The RECV is ready: the table entry that the answers find, then the WANT. For a handle
 * whose size tasks decide the WANT asks the size first (FLAG_ASK); on_size posts the
 * receive. */
static void recv_ready(comm_t *c, node_t *r) {
    dagr_ctx_t *ctx = c->ctx;
    dagr_data_t *h = r->acc[0].h;
    if (ctx->trace) r->tr_t0 = trace_ticks();
    r->p2p_left = 0;
    r->asked = h->dynamic;
    entry_t *e = entry_add(c, h->id, r->version, r->peer, 1);
    if (!e) {
        ctx_record_failure(ctx, DAGR_ERR_NOMEM, "out of memory tracking a transfer");
        r->failed = true;
        recv_finish(c, r, true);
        return;
    }
    e->node = r;
    if (!r->asked) {
        recv_post(c, r);
        return;
    }
    msg_t m = {.type = MSG_WANT, .flags = FLAG_ASK, .hid = h->id, .ver = r->version};
    post(c, r->peer, &m);
}

/* SIZE: the holder's version has `bytes` bytes. The local copy takes that size (its old
 * contents go: the transfer overwrites them), then the receive is posted as for any handle. */
static void on_size(comm_t *c, int from, const msg_t *m) {
    entry_t **pp = entry_find(c, m->hid, m->ver, from, 1);
    if (!*pp || !(*pp)->node->asked) {
        ctx_record_failure(c->ctx, DAGR_ERR_INTERNAL, "comm_rma.c: a size for no pending receive");
        return;
    }
    node_t *r = (*pp)->node;
    r->asked = false;
    dagr_status_t st = data_set_size(r->acc[0].h, (size_t)m->bytes, SIZE_DROP);
    if (st != DAGR_OK) recv_failed(c->ctx, r, st);
    recv_post(c, r);
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

/* The bytes are in: copies them from a staging block into the buffer (out of core, bringing
 * the buffer into memory only now). */
static void recv_land(comm_t *c, node_t *r) {
    dagr_data_t *h = r->acc[0].h;
    if (c->ctx->store && r->staging && !r->pinned && !recv_pin(c->ctx, r)) {
        /* Staged out of core: the buffer had to come into memory now, and could not (the
         * failure is recorded). */
    } else if (r->staging && buf_strided(h)) {
        data_unpack(h, r->staging);
    } else if (r->staging && h->buf) {
        memcpy(h->buf, r->staging, h->bytes);
    }
}

/* The receive's end, with or without its bytes: frees its staging, unpins the buffer, counts,
 * and completes the RECV. */
static void recv_finish(comm_t *c, node_t *r, bool poisoned) {
    dagr_data_t *h = r->acc[0].h;
    if (poisoned) atomic_store(&r->poisoned, true);
    if (r->staging_heap)
        free(r->staging);
    else if (r->staging)
        arena_free(&c->ctx->arena, r->staging, h->bytes);
    r->staging = NULL;
    r->staging_heap = false;
    recv_unpin(r);
    if (!poisoned) {
        data_written(h); /* copies on devices are stale now */
        atomic_fetch_add_explicit(&c->ctx->bytes_received, h->bytes, memory_order_relaxed);
    }
    if (c->ctx->trace) trace_recv(c->ctx, r, poisoned ? 0 : h->bytes);
    node_complete(c->ctx, r);
}

/* DATA: the bytes are in the arena (a peer on this node), or the version is poisoned. A
 * receive posted for MPI gets DATA only when poisoned; otherwise its requests complete it. */
static void on_data(comm_t *c, int from, const msg_t *m) {
    entry_t **pp = entry_find(c, m->hid, m->ver, from, 1);
    if (!*pp) {
        ctx_record_failure(c->ctx, DAGR_ERR_INTERNAL, "comm_rma.c: data for no pending receive");
        return;
    }
    node_t *r = (*pp)->node;
    entry_remove(c, pp);
    bool poisoned = m->flags & FLAG_POISON;
    if (poisoned && r->p2p_left) p2p_cancel(c, r);
    if (!poisoned && r->asked) {
        /* An empty version, answered at once: the local copy becomes empty too (freeing
         * only, it cannot fail). */
        r->asked = false;
        (void)data_set_size(r->acc[0].h, 0, SIZE_DROP);
    }
    if (!poisoned) recv_land(c, r);
    recv_finish(c, r, poisoned);
}

/* The last request of a receive posted for MPI completed: the bytes are in. */
static void p2p_recv_done(comm_t *c, node_t *r) {
    dagr_data_t *h = r->acc[0].h;
    entry_t **pp = entry_find(c, h->id, r->version, r->peer, 1);
    if (*pp) entry_remove(c, pp);
    if (!r->failed) recv_land(c, r);
    recv_finish(c, r, r->failed);
}

static void on_msg(comm_t *c, int from, const msg_t *m) {
    if (m->type == MSG_WANT)
        on_want(c, from, m);
    else if (m->type == MSG_SIZE)
        on_size(c, from, m);
    else
        on_data(c, from, m);
}

/* Messages from peers on this node, in their rings. */
static bool poll_inbox(comm_t *c) {
    bool any = false;
    int me = c->ctx->rank;
    for (int p = 0; p < c->ctx->size; p++) {
        if (p == me || !c->peer_base[p]) continue;
        for (;;) {
            msg_t *slot = &c->inbox[(size_t)p * MSG_SLOTS + c->recvd[p] % MSG_SLOTS];
            if (__atomic_load_n(&slot->seq, __ATOMIC_ACQUIRE) != c->recvd[p] + 1) break;
            msg_t m = *slot;
            c->recvd[p]++;
            any = true;
            on_msg(c, p, &m);
        }
        if (c->recvd[p] - c->credited[p] >= MSG_SLOTS / 2) {
            c->credited[p] = c->recvd[p];
            MPI_Aint disp = (MPI_Aint)(c->credit_off + (size_t)me * sizeof(uint64_t));
            __atomic_store_n((uint64_t *)(c->peer_base[p] + disp), c->recvd[p], __ATOMIC_RELEASE);
            bell_ring(peer_bell(c, p)); /* its outbox may wait for this credit */
        }
    }
    return any;
}

/* Whether a peer on this node has written a message poll_inbox has not taken yet. */
static bool inbox_pending(comm_t *c) {
    for (int p = 0; p < c->ctx->size; p++) {
        if (p == c->ctx->rank || !c->peer_base[p]) continue;
        const msg_t *slot = &c->inbox[(size_t)p * MSG_SLOTS + c->recvd[p] % MSG_SLOTS];
        if (__atomic_load_n(&slot->seq, __ATOMIC_ACQUIRE) == c->recvd[p] + 1) return true;
    }
    return false;
}

/* Sleeps on this rank's doorbell for at most ns nanoseconds, unless work came meanwhile. */
static void bell_sleep(comm_t *c, long ns) {
    uint32_t *bell = c->bell;
    uint32_t count = __atomic_load_n(&bell[BELL_COUNT], __ATOMIC_SEQ_CST);
    __atomic_store_n(&bell[BELL_SLEEPING], 1, __ATOMIC_SEQ_CST);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    pthread_mutex_lock(&c->lock);
    bool work = c->nevents > 0 || c->stop;
    pthread_mutex_unlock(&c->lock);
    if (!work && !inbox_pending(c)) {
        struct timespec ts = {ns / 1000000000L, ns % 1000000000L};
#ifdef __linux__
        syscall(SYS_futex, &bell[BELL_COUNT], FUTEX_WAIT, count, &ts, NULL, 0);
#else
        (void)count;
        if (ts.tv_sec == 0 && ts.tv_nsec > 50000) ts.tv_nsec = 50000; /* poll without a bell */
        nanosleep(&ts, NULL);
#endif
    }
    __atomic_store_n(&bell[BELL_SLEEPING], 0, __ATOMIC_RELAXED);
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
    pthread_mutex_unlock(&c->lock);
    bell_ring(c->bell);
}

void comm_workers_idle(dagr_ctx_t *ctx) {
    comm_t *c = ctx->comm_engine;
    if (c && c->nremote) bell_ring(c->bell); /* peers on this node ring it themselves */
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
    double no_spin_until = 0; /* dagr_now() before which the thread does not poll-yield */
    for (;;) {
        bool busy = take_events(c);
        busy |= poll_inbox(c);
        busy |= p2p_poll(c); /* enters MPI: drives its progress too */
        if (c->outbox_total) busy |= drain_outboxes(c);
        if (busy) {
            idle = 0;
            continue;
        }
        bool mpi_active = c->nops > 0;
        if (!mpi_active && ++idle % 64 == 0) {
            /* Now and then drive MPI's progress engine even so: other windows (the progress
             * line's, divergence.c's) need this rank to enter MPI. */
            int flag;
            MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, c->pcomm, &flag, MPI_STATUS_IGNORE);
        }
        if (mpi_active) idle++; /* counted above otherwise */
        /* The cores are the workers' while they compute: a polling thread takes a good part
         * of one from them (sched_yield does not give it all back). So only with every
         * worker idle, and only for MPI (peers on this node ring the bell), poll a while
         * before sleeping, yielding between polls: there the sleeps and wake-ups would be
         * half of a small transfer's latency (4 KiB hops between two ranks: 51 us against
         * 90-100 us). Unless another program computes on this core: on Linux's EEVDF
         * scheduler a yield then returns only after that program's time slice (3-4 ms, and
         * the hops took 3.8 ms), so a yield that slow stops the polling for a while. */
        bool all_idle = sched_all_idle(c->ctx);
        bool moving = c->nops > c->nmsgrecv;
        bool waiting = c->nentries || c->outbox_total;
        unsigned spin = c->nremote && all_idle ? (waiting ? 1024u : 32u) : 0u;
        if (idle < spin) {
            double t0 = dagr_now();
            if (t0 >= no_spin_until) {
                sched_yield();
                if (dagr_now() - t0 > 200e-6) no_spin_until = t0 + 0.1;
                continue;
            }
        }
        pthread_mutex_lock(&c->lock);
        bool stop = c->stop;
        pthread_mutex_unlock(&c->lock);
        if (stop) break;
        /* Nothing to do. Work from this rank and from peers on this node rings the bell;
         * MPI does not, so with requests in flight we poll. Bytes moving through MPI advance
         * only while this thread enters MPI (a rendezvous needs both ends to answer), and
         * messages from other nodes may come at any time: with the workers idle, every 10 us
         * while bytes move and 100 us otherwise. With the workers computing, each wake-up
         * preempts one of them (some 20 us of its time on this VM: MPICH's network mode,
         * 2 ranks on 2 cores, gemm at n = 4096 ran at 76 GFLOP/s polling as when idle, 91 at
         * most every 100 us). Then every 100 us only while bytes move and no task waits in
         * the queue: with tasks queued, data that came sooner would wait behind them, and
         * polling every 100 us for receives posted long in advance took potrf from 87 to 70
         * GFLOP/s and geqrf from 73 to 61 (every 1 ms: 79-87 and 72-73; RESULTS.md, "off
         * node"). Otherwise every 1 ms. Without requests in flight only the bell wakes us;
         * the 2 ms bound MPI's own progress (the Iprobe above). */
        long ns = !mpi_active                              ? 2000000
                  : all_idle                               ? (moving ? 10000 : 100000)
                  : moving && sched_host_load(c->ctx) == 0 ? 100000
                                                           : 1000000;
        bell_sleep(c, ns);
    }
    return NULL;
}

/* ------------------------------------------------------------------------------------------
 * Setup and teardown (collective)
 * ---------------------------------------------------------------------------------------- */

/* Bytes leaving this rank: a receive posted for data that never comes (its sender diverged)
 * is waiting, not moving, so only sends count; a transfer arriving here is its sender's. */
bool comm_moving(const dagr_ctx_t *ctx) {
    const comm_t *c = ctx->comm_engine;
    return c && __atomic_load_n(&c->nsends, __ATOMIC_RELAXED) > 0;
}

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

/* The MPI path's setup: the tag range, the MiB type, and the message receives when some peer
 * is on another node. */
static dagr_status_t p2p_start(comm_t *c) {
    int *ub = NULL, flag = 0;
    DAGR_TRY_MPI(MPI_Comm_get_attr(c->pcomm, MPI_TAG_UB, &ub, &flag));
    c->tag_max = flag && ub && *ub > 1 ? *ub : 32767;
    DAGR_TRY_MPI(MPI_Type_contiguous((int)BIG_UNIT, MPI_BYTE, &c->big));
    DAGR_TRY_MPI(MPI_Type_commit(&c->big));
    for (int i = 0; c->nremote && i < MSG_RECVS; i++) {
        MPI_Request *req;
        DAGR_TRY_MPI(op_add(c, OP_MSG_RECV, NULL, NULL, &req));
        DAGR_TRY_MPI(msgrecv_post(c, i));
        c->nmsgrecv++;
    }
    return DAGR_OK;
}

/* After the progress thread stopped: nothing is in flight after a successful wait; after a
 * divergence receives may still be posted (cancelled here) and sends unmatched (let go). */
static void p2p_stop(comm_t *c) {
    for (int i = 0; i < c->nops; i++) {
        if (c->reqs[i] == MPI_REQUEST_NULL) continue;
        int done = 0;
        MPI_Test(&c->reqs[i], &done, MPI_STATUS_IGNORE);
        if (done) {
            if (c->ops[i].kind == OP_MSG_SEND) free(c->ops[i].buf);
        } else if (c->ops[i].kind == OP_MSG_RECV || c->ops[i].kind == OP_RECV) {
            MPI_Cancel(&c->reqs[i]);
            MPI_Wait(&c->reqs[i], MPI_STATUS_IGNORE);
        } else {
            MPI_Request_free(&c->reqs[i]); /* its buffer stays: MPI may still read it */
        }
    }
    if (c->big != MPI_DATATYPE_NULL) MPI_Type_free(&c->big);
    free(c->reqs), free(c->ops), free(c->idx), free(c->statuses);
}

dagr_status_t comm_start(dagr_ctx_t *ctx) {
    comm_t *c = calloc(1, sizeof *c);
    DAGR_CHECK(c, DAGR_ERR_NOMEM, "cannot allocate the communication engine");
    c->ctx = ctx;
    c->pcomm = c->node = MPI_COMM_NULL;
    c->big = MPI_DATATYPE_NULL;
    int P = ctx->size;
    size_t inbox = (size_t)P * MSG_SLOTS * sizeof(msg_t);
    size_t credit = ((size_t)P * sizeof(uint64_t) + 63) & ~(size_t)63;
    size_t arena = ctx->cfg.comm_arena ? ctx->cfg.comm_arena : default_arena(ctx);
    arena = (arena + 63) & ~(size_t)63;
    c->credit_off = inbox;
    c->bell_off = inbox + credit;
    c->arena_off = c->bell_off + BELL_BYTES;

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
    ctx->comm_engine = c;

    DAGR_TRY_MPI(MPI_Comm_dup(ctx->comm, &c->pcomm));
    DAGR_TRY_MPI(MPI_Comm_split_type(ctx->comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &c->node));
    /* Contiguous segments of a size that is not a whole number of pages: MPICH (ch4) then
     * skips its "symmetric heap", which looks for one free address range on every rank by
     * calling msync on each page of the node's whole segment (and retries at other random
     * addresses): with 4 ranks x 256 MiB that was 262,144 failing msyncs and 2.4 s of
     * dagr_init's 3.7 s. dagr finds its peers' segments with MPI_Win_shared_query and needs
     * no common address. Each rank's segment stays 64-byte aligned. */
    MPI_Info info;
    DAGR_TRY_MPI(MPI_Info_create(&info));
    MPI_Info_set(info, "alloc_shared_noncontig", "false");
    MPI_Aint total = (MPI_Aint)(c->arena_off + arena);
    total = (total + 63) / 64 * 64;
    if (total % 4096 == 0) total += 64;
    int e = MPI_Win_allocate_shared(total, 1, info, c->node, &c->base, &c->shwin);
    MPI_Info_free(&info);
    DAGR_TRY_MPI(e);
    c->have_shwin = true;
    DAGR_TRY(map_node_peers(c));
    memset(c->base, 0, c->arena_off);
    c->inbox = (msg_t *)c->base;
    c->credit = (uint64_t *)(c->base + c->credit_off);
    c->bell = (uint32_t *)(c->base + c->bell_off);
    DAGR_TRY_MPI(MPI_Win_lock_all(MPI_MODE_NOCHECK, c->shwin));
    DAGR_TRY(arena_init(&ctx->arena, c->base + c->arena_off, arena));
    DAGR_TRY(p2p_start(c));
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
        pthread_mutex_unlock(&c->lock);
        bell_ring(c->bell);
        pthread_join(c->thread, NULL);
        arena_fini(&ctx->arena);
    }
    /* lock_all is taken right after the window exists, and init fails before the thread
     * starts only on MPI errors; unlocking an unlocked window is then harmless to skip. */
    if (c->have_thread) MPI_Win_unlock_all(c->shwin);
    p2p_stop(c);
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
    pthread_mutex_destroy(&c->lock);
    free(c);
    ctx->comm_engine = NULL;
}
