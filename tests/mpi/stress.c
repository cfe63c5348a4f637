/* Randomized stress scenario: random handles and random tasks, checked against a sequential
 * replay of the same task list in plain memory.
 *
 * Usage: stress NTASKS NHANDLES SEED...
 *
 * For each seed every rank draws the same pseudo-random program: NHANDLES (at most 60) handles of
 * a few sizes and types (0-byte ones, attached ones, random owners) and two phases of NTASKS tasks
 * each with 1-4 accesses (READ, WRITE, RW, sometimes the same handle twice), random priorities,
 * sometimes an explicit rank, sometimes an in-order queue. The kernel computes new contents of the
 * written handles from the contents it reads and the task's arguments; the program applies the
 * same function to its own copies right after each dagr_spawn. Along the way it fetches random
 * handles to random roots; after each phase it fetches every handle to every rank and compares
 * byte for byte, and checks that attached buffers hold the final contents on their owner (also for
 * handles destroyed just before dagr_wait_all). The kernel itself checks what it is given
 * (argument copy, sizes, pointers of repeated handles, seq, rank).
 *
 * Prints per seed: RANK r RESULT stress ok|FAIL mismatches=M status=... ran=R ... */
#include "scenario.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { TY_BYTES = 0, TY_U64 = 1, TY_F64 = 2 };
#define MAXA 4
#define MAXH 64

typedef struct task_args {
    uint64_t seq;  /* insertion number the task must see */
    uint64_t salt; /* random per task */
    int32_t nacc;
    int32_t expect_rank; /* rank the task must run on */
    int32_t type[MAXA];
    int32_t mode[MAXA];
    int32_t same_as[MAXA]; /* first earlier access naming the same handle, or -1 */
    int32_t handle[MAXA];  /* index of the handle in the program's table */
    uint64_t bytes[MAXA];
    uint64_t pad_len; /* bytes of padding following the struct in the argument block */
    uint64_t pad_sum; /* hash of that padding */
} task_args_t;

typedef struct hslot {
    dagr_data_t *h;
    size_t bytes;
    int owner;
    int type;
    int attached;
    int alive;
    unsigned char *abuf; /* attached buffer on the owner, else NULL */
    unsigned char *ref;  /* contents in the sequential model */
} hslot_t;

static int g_threads, g_workers; /* host workers; and device workers after them */
static atomic_long g_ran;

static uint64_t hash_bytes(uint64_t h, const unsigned char *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return sc_mix(h);
}

/* New contents for one written access; reads the old contents only when rw. */
static void fill(unsigned char *p, size_t n, int type, int rw, uint64_t h) {
    switch (type) {
    case TY_U64:
        for (size_t j = 0; j < n / 8; j++) {
            uint64_t x = 0;
            if (rw) memcpy(&x, p + 8 * j, 8);
            x = x * 0x5851f42d4c957f2dull + sc_mix(h + j);
            memcpy(p + 8 * j, &x, 8);
        }
        break;
    case TY_F64:
        for (size_t j = 0; j < n / 8; j++) {
            double x = 0.0;
            if (rw) memcpy(&x, p + 8 * j, 8);
            x = 0.5 * x + (double)(sc_mix(h + j) >> 11) * 0x1p-53;
            memcpy(p + 8 * j, &x, 8);
        }
        break;
    default:
        for (size_t j = 0; j < n; j++) {
            unsigned old = rw ? p[j] : 0u;
            p[j] = (unsigned char)(old * 31u + (unsigned)(sc_mix(h + j) & 0xffu));
        }
        break;
    }
}

/* The task's effect: used by the kernel and by the sequential model alike. Every readable
 * access is hashed first, then every writable access is rewritten in order. */
static void apply(const task_args_t *a, void *const *buf) {
    uint64_t h = sc_mix(a->salt ^ (a->seq << 20));
    for (int i = 0; i < a->nacc; i++)
        if (a->mode[i] & DAGR_READ) h = hash_bytes(h, buf[i], a->bytes[i]);
    for (int i = 0; i < a->nacc; i++)
        if (a->mode[i] & DAGR_WRITE)
            fill(buf[i], a->bytes[i], a->type[i], a->mode[i] == DAGR_RW,
                 h + (uint64_t)i * 0x1000003u);
}

static dagr_task_result_t k_stress(const dagr_task_view_t *t) {
    char why[256] = "";
    task_args_t a;
    if (t->args == NULL || t->args_size < sizeof a) {
        snprintf(why, sizeof why, "args %p size %zu", t->args, t->args_size);
        goto bad;
    }
    memcpy(&a, t->args, sizeof a);
    if (t->args_size != sizeof a + a.pad_len) {
        snprintf(why, sizeof why, "args_size %zu, expected %zu", t->args_size,
                 (size_t)(sizeof a + a.pad_len));
        goto bad;
    }
    if (hash_bytes(a.salt, (const unsigned char *)t->args + sizeof a, a.pad_len) != a.pad_sum) {
        snprintf(why, sizeof why, "argument padding corrupted");
        goto bad;
    }
    if (t->nbuf != a.nacc) {
        snprintf(why, sizeof why, "nbuf %d, expected %d", t->nbuf, a.nacc);
        goto bad;
    }
    if (t->seq != a.seq) {
        snprintf(why, sizeof why, "seq %llu, expected %llu", (unsigned long long)t->seq,
                 (unsigned long long)a.seq);
        goto bad;
    }
    if (t->rank != a.expect_rank) {
        snprintf(why, sizeof why, "task %llu ran on rank %d, expected %d",
                 (unsigned long long)a.seq, t->rank, a.expect_rank);
        goto bad;
    }
    if (t->worker < 0 || t->worker >= g_workers) {
        snprintf(why, sizeof why, "worker %d outside [0, %d)", t->worker, g_workers);
        goto bad;
    }
    for (int i = 0; i < a.nacc; i++) {
        if (t->bytes[i] != a.bytes[i]) {
            snprintf(why, sizeof why, "bytes[%d] %zu, expected %llu", i, t->bytes[i],
                     (unsigned long long)a.bytes[i]);
            goto bad;
        }
        if (a.bytes[i] > 0 && t->buf[i] == NULL) {
            snprintf(why, sizeof why, "buf[%d] NULL", i);
            goto bad;
        }
        if (a.same_as[i] >= 0 && t->buf[i] != t->buf[a.same_as[i]]) {
            snprintf(why, sizeof why, "buf[%d] != buf[%d] for the same handle", i, a.same_as[i]);
            goto bad;
        }
        for (int j = 0; j < i; j++) {
            if (a.handle[j] != a.handle[i] && a.bytes[i] > 0 && a.bytes[j] > 0 &&
                t->buf[i] == t->buf[j]) {
                snprintf(why, sizeof why, "buf[%d] == buf[%d] for different handles", i, j);
                goto bad;
            }
        }
    }
    apply(&a, t->buf);
    atomic_fetch_add(&g_ran, 1);
    return DAGR_TASK_DONE;
bad:
    dagr_task_fail(t, DAGR_ERR_INTERNAL, "stress view check: %s", why);
    return DAGR_TASK_ERROR;
}

static const dagr_kernel_t kernel = {.name = "stress_kernel", .cpu = k_stress, .gpu = NULL};

typedef struct run {
    dagr_ctx_t *ctx;
    int rank, size;
    sc_rng_t rng;
    hslot_t hs[MAXH];
    int nh;
    dagr_queue_t *q[2];
    uint64_t seq; /* tasks inserted in this context so far */
    long spawned; /* tasks inserted for this seed */
    long mismatches;
    int bad_status;
} run_t;

static const size_t sizes[] = {0, 8, 13, 64, 200, 1024, 4096};

static void add_handle(run_t *R) {
    hslot_t *s = &R->hs[R->nh];
    memset(s, 0, sizeof *s);
    s->bytes = sizes[sc_below(&R->rng, (int)(sizeof sizes / sizeof sizes[0]))];
    s->type = (s->bytes % 8 == 0 && s->bytes > 0) ? sc_below(&R->rng, 3) : TY_BYTES;
    s->owner = sc_below(&R->rng, R->size);
    s->attached = sc_below(&R->rng, 4) == 0;
    s->ref = calloc(1, s->bytes + 1);
    if (s->attached) {
        /* Attached handles start with the caller's contents: random, but the same on every
         * rank (the model needs them everywhere). */
        for (size_t j = 0; j < s->bytes; j++)
            s->ref[j] = (unsigned char)sc_next(&R->rng);
        if (s->type == TY_F64)
            for (size_t j = 0; j < s->bytes / 8; j++) {
                double x = (double)(sc_next(&R->rng) % 1000) / 7.0;
                memcpy(s->ref + 8 * j, &x, 8);
            }
        void *ptr = NULL;
        if (R->rank == s->owner && s->bytes > 0) {
            s->abuf = aligned_alloc(64, (s->bytes + 63) / 64 * 64);
            memcpy(s->abuf, s->ref, s->bytes);
            ptr = s->abuf;
        }
        SC_TRY(dagr_data_attach(R->ctx, ptr, s->bytes, s->owner, &s->h));
    } else {
        SC_TRY(dagr_data_create(R->ctx, s->bytes, s->owner, &s->h));
    }
    SC_CHECK(dagr_data_bytes(s->h) == s->bytes, "bytes %zu vs %zu", dagr_data_bytes(s->h),
             s->bytes);
    SC_CHECK(dagr_data_owner(s->h) == s->owner, "owner %d vs %d", dagr_data_owner(s->h), s->owner);
    s->alive = 1;
    R->nh++;
}

static int pick_alive(run_t *R) {
    for (;;) {
        int k = sc_below(&R->rng, R->nh);
        if (R->hs[k].alive) return k;
    }
}

static void spawn_random(run_t *R) {
    unsigned char *block = malloc(sizeof(task_args_t) + DAGR_MAX_ARGS);
    task_args_t a;
    memset(&a, 0, sizeof a);
    a.seq = R->seq;
    a.salt = sc_next(&R->rng);
    a.nacc = 1 + sc_below(&R->rng, MAXA);
    dagr_access_t acc[MAXA];
    void *refbuf[MAXA];
    for (int i = 0; i < a.nacc; i++) {
        int k;
        if (i > 0 && sc_below(&R->rng, 6) == 0)
            k = a.handle[sc_below(&R->rng, i)];
        else
            k = pick_alive(R);
        a.handle[i] = k;
        a.mode[i] = 1 + sc_below(&R->rng, 3);
        a.type[i] = R->hs[k].type;
        a.bytes[i] = R->hs[k].bytes;
        a.same_as[i] = -1;
        for (int j = 0; j < i; j++)
            if (a.handle[j] == k) {
                a.same_as[i] = j;
                break;
            }
        acc[i].data = R->hs[k].h;
        acc[i].mode = (dagr_mode_t)a.mode[i];
        refbuf[i] = R->hs[k].ref;
    }
    dagr_task_opts_t opts;
    dagr_task_opts_init(&opts);
    opts.priority = sc_below(&R->rng, 11) - 5;
    a.expect_rank = R->hs[a.handle[0]].owner;
    for (int i = 0; i < a.nacc; i++)
        if (a.mode[i] & DAGR_WRITE) {
            a.expect_rank = R->hs[a.handle[i]].owner;
            break;
        }
    if (sc_below(&R->rng, 5) == 0) {
        opts.rank = sc_below(&R->rng, R->size);
        a.expect_rank = opts.rank;
    }
    if (sc_below(&R->rng, 10) == 0) opts.queue = R->q[sc_below(&R->rng, 2)];
    int p = sc_below(&R->rng, 20);
    a.pad_len = p < 12 ? 0 : p < 17 ? 17 : p < 19 ? 200 : DAGR_MAX_ARGS - sizeof a;
    for (size_t j = 0; j < a.pad_len; j++)
        block[sizeof a + j] = (unsigned char)sc_next(&R->rng);
    a.pad_sum = hash_bytes(a.salt, block + sizeof a, a.pad_len);
    memcpy(block, &a, sizeof a);
    /* Half the tasks pass NULL opts when they use the defaults. */
    const dagr_task_opts_t *po = &opts;
    if (opts.priority == 0 && opts.rank == -1 && opts.queue == NULL) po = NULL;
    SC_TRY(dagr_spawn(R->ctx, &kernel, block, sizeof a + a.pad_len, a.nacc, acc, po));
    apply(&a, refbuf);
    R->seq++;
    R->spawned++;
    free(block);
}

/* Fetches handle k to root and compares with the model (or checks dst untouched). */
static void check_fetch(run_t *R, int k, int root) {
    hslot_t *s = &R->hs[k];
    unsigned char *dst = malloc(s->bytes + 1);
    memset(dst, 0xA5, s->bytes + 1);
    dagr_status_t st = dagr_fetch(s->h, dst, root);
    if (!SC_EXPECT_STATUS(st, DAGR_OK)) {
        R->bad_status = 1;
        free(dst);
        return;
    }
    int receives = root == -1 || root == R->rank;
    if (receives) {
        if (memcmp(dst, s->ref, s->bytes) != 0) {
            R->mismatches++;
            size_t j = 0;
            while (dst[j] == s->ref[j])
                j++;
            sc_say("MISMATCH handle %d (bytes %zu type %d owner %d attached %d) root %d: "
                   "first differing byte %zu: got 0x%02x want 0x%02x",
                   k, s->bytes, s->type, s->owner, s->attached, root, j, dst[j], s->ref[j]);
        }
    } else {
        for (size_t j = 0; j < s->bytes; j++)
            if (dst[j] != 0xA5) {
                R->mismatches++;
                sc_say("MISMATCH handle %d: fetch to root %d wrote dst on rank %d", k, root,
                       R->rank);
                break;
            }
    }
    if (dst[s->bytes] != 0xA5) {
        R->mismatches++;
        sc_say("MISMATCH handle %d: fetch wrote past the end of dst", k);
    }
    free(dst);
}

static void check_attached(run_t *R, int k) {
    hslot_t *s = &R->hs[k];
    if (!s->attached || R->rank != s->owner || s->bytes == 0) return;
    if (memcmp(s->abuf, s->ref, s->bytes) != 0) {
        R->mismatches++;
        sc_say("MISMATCH attached handle %d (bytes %zu owner %d): caller's buffer does not "
               "hold the final contents",
               k, s->bytes, s->owner);
    }
}

static void wait_and_check_all(run_t *R) {
    if (!SC_EXPECT_STATUS(dagr_wait_all(R->ctx), DAGR_OK)) R->bad_status = 1;
    for (int k = 0; k < R->nh; k++) {
        if (R->hs[k].alive) check_attached(R, k);
    }
    for (int k = 0; k < R->nh; k++) {
        if (R->hs[k].alive) check_fetch(R, k, -1);
    }
}

static void destroy_handle(run_t *R, int k) {
    SC_TRY(dagr_data_destroy(&R->hs[k].h));
    SC_CHECK(R->hs[k].h == NULL, "destroy did not set the handle to NULL");
    R->hs[k].alive = 0;
}

static void run_seed(dagr_ctx_t *ctx, uint64_t seed, int ntasks, int nh0) {
    run_t *R = calloc(1, sizeof *R);
    R->ctx = ctx;
    R->rank = dagr_rank(ctx);
    R->size = dagr_size(ctx);
    R->rng.s = seed * 0x2545F4914F6CDD1Dull + 1;
    static uint64_t seq_base = 0; /* tasks inserted by earlier seeds in this context */
    R->seq = seq_base;
    long ran_before = sc_allreduce_sum(dagr_comm(ctx), atomic_load(&g_ran));
    double t0 = sc_now();

    for (int k = 0; k < nh0; k++)
        add_handle(R);
    SC_TRY(dagr_queue_create(ctx, &R->q[0]));
    SC_TRY(dagr_queue_create(ctx, &R->q[1]));

    /* Phase 1: tasks with fetches to random roots along the way. */
    for (int i = 0; i < ntasks; i++) {
        spawn_random(R);
        if (i % 97 == 96) check_fetch(R, pick_alive(R), sc_below(&R->rng, R->size + 1) - 1);
    }
    wait_and_check_all(R);

    /* Phase 2: a few new handles, a created handle destroyed while its tasks may still be
     * pending, then attached and created handles destroyed just before the wait. */
    for (int k = 0; k < 3; k++)
        add_handle(R);
    int destroyed_mid = -1;
    for (int i = 0; i < ntasks; i++) {
        spawn_random(R);
        if (i == ntasks / 2) {
            for (int k = 0; k < R->nh; k++)
                if (R->hs[k].alive && !R->hs[k].attached) {
                    destroyed_mid = k;
                    destroy_handle(R, k);
                    break;
                }
        }
        if (i % 101 == 100) check_fetch(R, pick_alive(R), sc_below(&R->rng, R->size + 1) - 1);
    }
    int late[4], nlate = 0;
    for (int k = 0; k < R->nh && nlate < 4; k++)
        if (R->hs[k].alive && (R->hs[k].attached || nlate == 0)) {
            late[nlate++] = k;
            destroy_handle(R, k);
        }
    if (!SC_CHECK(dagr_queue_destroy(&R->q[0]) == DAGR_OK && R->q[0] == NULL, "queue destroy"))
        R->bad_status = 1;
    wait_and_check_all(R);
    for (int i = 0; i < nlate; i++)
        check_attached(R, late[i]);

    long ran = sc_allreduce_sum(dagr_comm(ctx), atomic_load(&g_ran)) - ran_before;
    int ran_ok = SC_CHECK(ran == R->spawned, "tasks run %ld, inserted %ld", ran, R->spawned);

    for (int k = 0; k < R->nh; k++)
        if (R->hs[k].alive) destroy_handle(R, k);
    SC_TRY(dagr_queue_destroy(&R->q[1]));
    SC_TRY(dagr_wait_all(ctx));
    seq_base = R->seq;

    sc_result("stress", R->mismatches == 0 && !R->bad_status && ran_ok,
              "mismatches=%ld status=%s seed=%llu size=%d threads=%d tasks=%ld ran=%ld "
              "handles=%d destroyed_mid=%d secs=%.2f",
              R->mismatches, R->bad_status ? "BAD" : "DAGR_OK", (unsigned long long)seed, R->size,
              g_threads, R->spawned, ran, R->nh, destroyed_mid, sc_now() - t0);
    for (int k = 0; k < R->nh; k++) {
        free(R->hs[k].ref);
        free(R->hs[k].abuf);
    }
    free(R);
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s NTASKS NHANDLES SEED...\n", argv[0]);
        return 2;
    }
    int ntasks = atoi(argv[1]), nh = atoi(argv[2]);
    if (nh < 1 || nh > MAXH - 4) {
        fprintf(stderr, "NHANDLES must be in [1, %d]\n", MAXH - 4);
        return 2;
    }
    dagr_ctx_t *ctx = NULL;
    SC_TRY(dagr_init(&argc, &argv, NULL, &ctx));
    sc_set_rank(dagr_rank(ctx));
    g_threads = dagr_threads(ctx);
    g_workers = g_threads + dagr_devices(ctx);
    for (int i = 3; i < argc; i++)
        run_seed(ctx, strtoull(argv[i], NULL, 10), ntasks, nh);
    SC_EXPECT_STATUS(dagr_finalize(&ctx), DAGR_OK);
    SC_CHECK(ctx == NULL, "dagr_finalize did not set ctx to NULL");
    return sc_exit_code();
}
