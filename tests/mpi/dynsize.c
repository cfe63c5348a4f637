/* Handles whose size tasks decide (dagr_data_create_dynamic, dagr_task_resize).
 *
 * Usage: dynsize random SEED TASKS | dynsize errors | dynsize ckpt_write PATH |
 *        dynsize ckpt_read PATH
 *
 * random: a randomized graph over NH such handles with owners spread over the ranks. Each task
 * writes one handle (RW: it sees the previous version and resizes it, the kept prefix changed
 * and the new bytes filled; or WRITE: it must see it empty, then sets a size and fills it) from
 * up to three others it reads, on a random rank; the new size (0 included, sometimes 70 KB,
 * sometimes set twice) and contents follow from the task's seed and every byte it read, so a
 * reader seeing a wrong size or wrong bytes changes everything after it. Every rank replays the
 * same tasks serially; dagr_data_bytes_fetch and dagr_fetch (to all ranks, and to one) must
 * give the replay's sizes and bytes. The bodies also check that a resize zeroes the new bytes
 * and that a WRITE starts empty. Run under DAGR_MEMORY_LIMIT it prints the spill counts.
 *
 * errors: dagr_task_resize on a read-only access, on a fixed-size handle and out of range each
 * fail the task with DAGR_ERR_ARG, whatever the body returns.
 *
 * ckpt_write: fills NC such handles (sizes 0 to 100 KB) and one fixed-size handle, and writes
 * a checkpoint. ckpt_read (any rank count): creates the same handles empty, resumes, and checks
 * every size and byte.
 *
 * Prints RANK r RESULT dynsize ok|FAIL ... */
#include "scenario.h"

#include <stdbool.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NH 12
#define NC 7
#define MAXIN 3

/* ------------------------------------------------------------------------------------------
 * The task body and its serial replay
 * ---------------------------------------------------------------------------------------- */

typedef struct job {
    uint64_t seed;
    int rw; /* 1: DAGR_RW on the written handle, 0: DAGR_WRITE */
} job_t;

static uint64_t digest(uint64_t h, const unsigned char *p, size_t n) {
    h = sc_mix(h ^ n);
    for (size_t j = 0; j < n; j++)
        h = (h ^ p[j]) * 0x100000001b3ull;
    return sc_mix(h);
}

static size_t new_size(uint64_t h) {
    if (h % 7 == 0) return 0;
    if (h % 11 == 0) return 70000 + h % 977;
    return (size_t)(h % 3000);
}

static unsigned char fresh(uint64_t h, size_t j) {
    return (unsigned char)(sc_mix(h ^ j) >> 17);
}

/* The computation both the body and the replay make: from the old contents (old, nold; RW
 * only) and the inputs' digest h, the new contents in p (size n, already holding the kept
 * prefix and zeros after it). Returns the number of new bytes that were not zero. */
static size_t compute(unsigned char *p, size_t n, size_t nold, uint64_t h) {
    size_t nonzero = 0;
    size_t keep = nold < n ? nold : n;
    for (size_t j = 0; j < keep; j++)
        p[j] = (unsigned char)(p[j] * 31u + (unsigned char)(h >> (j % 8 * 8)) + j);
    for (size_t j = keep; j < n; j++) {
        nonzero += p[j] != 0;
        p[j] = fresh(h, j);
    }
    return nonzero;
}

static atomic_long dev_resizes; /* resizes made by bodies running on a test device */

static dagr_task_result_t k_job(const dagr_task_view_t *t) {
    job_t jb;
    memcpy(&jb, t->args, sizeof jb);
    if (!jb.rw && t->bytes[0] != 0) {
        dagr_task_fail(t, DAGR_ERR_INTERNAL, "a DAGR_WRITE task saw %zu bytes, not an empty handle",
                       t->bytes[0]);
        return DAGR_TASK_ERROR;
    }
    uint64_t h = jb.seed;
    for (int i = 1; i < t->nbuf; i++)
        h = digest(h, t->buf[i], t->bytes[i]);
    size_t nold = t->bytes[0], n = new_size(h);
    if (h % 5 == 0 && dagr_task_resize(t, 0, 2 * n + 1) != DAGR_OK) return DAGR_TASK_ERROR;
    if (dagr_task_resize(t, 0, n) != DAGR_OK) return DAGR_TASK_ERROR;
    if (t->device >= 0) atomic_fetch_add(&dev_resizes, 1);
    if (t->bytes[0] != n) {
        dagr_task_fail(t, DAGR_ERR_INTERNAL, "after resizing to %zu the view says %zu", n,
                       t->bytes[0]);
        return DAGR_TASK_ERROR;
    }
    size_t nonzero = compute(t->buf[0], n, nold, h);
    if (nonzero) {
        dagr_task_fail(t, DAGR_ERR_INTERNAL, "%zu of the bytes a resize added were not zero",
                       nonzero);
        return DAGR_TASK_ERROR;
    }
    return DAGR_TASK_DONE;
}

static const dagr_kernel_t job_kernel = {.name = "dyn_job", .cpu = k_job};

typedef struct model {
    unsigned char *p;
    size_t n;
} model_t;

static void replay(model_t *m, int w, const int *in, int nin, job_t jb) {
    uint64_t h = jb.seed;
    for (int i = 0; i < nin; i++)
        h = digest(h, m[in[i]].p, m[in[i]].n);
    size_t nold = jb.rw ? m[w].n : 0, n = new_size(h);
    unsigned char *p = calloc(n ? n : 1, 1);
    if (m[w].p) memcpy(p, m[w].p, nold < n ? nold : n);
    compute(p, n, nold, h);
    free(m[w].p);
    m[w].p = p;
    m[w].n = n;
}

/* Every handle's size and bytes against the model, by dagr_fetch to every rank (and to rank
 * k % size for odd k). Returns the number of handles that differ. */
static int check_all(dagr_ctx_t *ctx, dagr_data_t **h, const model_t *m, int nh) {
    int bad = 0;
    for (int k = 0; k < nh; k++) {
        size_t n = (size_t)-1;
        SC_TRY(dagr_data_bytes_fetch(h[k], &n));
        if (!SC_CHECK(n == m[k].n, "handle %d: %zu bytes, the replay has %zu", k, n, m[k].n)) {
            bad++;
            continue;
        }
        int root = k % 2 ? k % dagr_size(ctx) : -1;
        unsigned char *got = malloc(n ? n : 1);
        memset(got, 0xA5, n);
        SC_TRY(dagr_fetch(h[k], got, root));
        if (root == -1 || root == dagr_rank(ctx)) {
            size_t diff = 0;
            for (size_t j = 0; j < n; j++)
                diff += got[j] != m[k].p[j];
            bad += !SC_CHECK(diff == 0, "handle %d: %zu of %zu bytes differ", k, diff, n);
        }
        free(got);
    }
    return bad;
}

static int random_graph(dagr_ctx_t *ctx, uint64_t seed, int ntasks) {
    int P = dagr_size(ctx);
    sc_rng_t rng = {seed};
    dagr_data_t *h[NH];
    model_t m[NH] = {{0}};
    for (int k = 0; k < NH; k++)
        SC_TRY(dagr_data_create_dynamic(ctx, sc_below(&rng, P), &h[k]));
    int bad = 0;
    for (int t = 0; t < ntasks; t++) {
        int w = sc_below(&rng, NH), nin = sc_below(&rng, MAXIN + 1), in[MAXIN];
        for (int i = 0; i < nin; i++) {
            int k;
            do
                k = sc_below(&rng, NH);
            while (k == w);
            in[i] = k;
        }
        job_t jb = {.seed = sc_next(&rng), .rw = sc_below(&rng, 2)};
        dagr_access_t acc[1 + MAXIN];
        acc[0] = (dagr_access_t){h[w], jb.rw ? DAGR_RW : DAGR_WRITE};
        for (int i = 0; i < nin; i++)
            acc[1 + i] = (dagr_access_t){h[in[i]], DAGR_READ};
        dagr_task_opts_t o;
        dagr_task_opts_init(&o);
        o.rank = sc_below(&rng, P + 1) - 1;
        SC_TRY(dagr_spawn(ctx, &job_kernel, &jb, sizeof jb, 1 + nin, acc, &o));
        replay(m, w, in, nin, jb);
        if (t % 97 == 96) SC_TRY(dagr_wait_all(ctx));
    }
    SC_TRY(dagr_wait_all(ctx));
    bad += check_all(ctx, h, m, NH);
    size_t total = 0;
    for (int k = 0; k < NH; k++)
        total += m[k].n;
    dagr_memory_stats_t ms;
    SC_TRY(dagr_memory_stats(ctx, &ms));
    sc_result("dynsize", bad == 0,
              "tasks=%d handles=%d total_bytes=%zu bad=%d spill_writes=%llu reads=%llu "
              "dev_resizes=%ld",
              ntasks, NH, total, bad, (unsigned long long)ms.spill_writes,
              (unsigned long long)ms.reads, atomic_load(&dev_resizes));
    for (int k = 0; k < NH; k++) {
        SC_TRY(dagr_data_destroy(&h[k]));
        free(m[k].p);
    }
    return bad;
}

/* ------------------------------------------------------------------------------------------
 * Bad resizes
 * ---------------------------------------------------------------------------------------- */

typedef struct bad_args {
    int access; /* the access to resize */
} bad_args_t;

/* Resizes access a->access and returns DONE whatever resize said: the task must fail anyway. */
static dagr_task_result_t k_bad(const dagr_task_view_t *t) {
    bad_args_t a;
    memcpy(&a, t->args, sizeof a);
    (void)dagr_task_resize(t, a.access, 16);
    return DAGR_TASK_DONE;
}

static const dagr_kernel_t bad_kernel = {.name = "dyn_bad", .cpu = k_bad};

static int errors(dagr_ctx_t *ctx) {
    int P = dagr_size(ctx), ok = 1;
    dagr_data_t *d, *e, *fixed;
    SC_TRY(dagr_data_create_dynamic(ctx, P - 1, &d));
    SC_TRY(dagr_data_create_dynamic(ctx, 0, &e));
    SC_TRY(dagr_data_create(ctx, 64, 0, &fixed));
    struct {
        dagr_access_t acc[2];
        int access;
        const char *has;
    } cases[] = {
        {{{e, DAGR_WRITE}, {d, DAGR_READ}}, 1, "is read only"},
        {{{e, DAGR_WRITE}, {fixed, DAGR_RW}}, 1, "has a fixed size"},
        {{{e, DAGR_WRITE}, {d, DAGR_READ}}, 2, "out of range"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        bad_args_t a = {cases[c].access};
        SC_TRY(dagr_spawn(ctx, &bad_kernel, &a, sizeof a, 2, cases[c].acc, NULL));
        ok &= SC_EXPECT_WAIT(ctx, DAGR_ERR_ARG, cases[c].has, cases[c].has);
        ok &= SC_EXPECT_WAIT(ctx, DAGR_OK, NULL, "the wait after the failure");
    }
    /* The failed tasks changed nothing. */
    size_t n = 1, nf = 0;
    SC_TRY(dagr_data_bytes_fetch(e, &n));
    SC_TRY(dagr_data_bytes_fetch(fixed, &nf));
    ok &= SC_CHECK(n == 0 && nf == 64, "sizes %zu and %zu after failed resizes", n, nf);
    ok &= SC_EXPECT_STATUS(dagr_data_bytes_fetch(NULL, &n), DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_data_create_dynamic(ctx, P, &d), DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_task_resize(NULL, 0, 1), DAGR_ERR_ARG);
    SC_TRY(dagr_data_destroy(&d));
    SC_TRY(dagr_data_destroy(&e));
    SC_TRY(dagr_data_destroy(&fixed));
    sc_result("dynsize", ok, "errors");
    return !ok;
}

/* ------------------------------------------------------------------------------------------
 * Checkpoint and resume
 * ---------------------------------------------------------------------------------------- */

static size_t ckpt_size(int k) {
    static const size_t sizes[NC] = {0, 1, 4096, 100000, 0, 777, 65536};
    return sizes[k];
}

typedef struct fill_args {
    int k;
} fill_args_t;

static dagr_task_result_t k_fill(const dagr_task_view_t *t) {
    fill_args_t a;
    memcpy(&a, t->args, sizeof a);
    if (dagr_task_resize(t, 0, ckpt_size(a.k)) != DAGR_OK) return DAGR_TASK_ERROR;
    unsigned char *p = t->buf[0];
    for (size_t j = 0; j < t->bytes[0]; j++)
        p[j] = fresh((uint64_t)a.k, j);
    return DAGR_TASK_DONE;
}

static const dagr_kernel_t fill_kernel = {.name = "dyn_fill", .cpu = k_fill};

static dagr_task_result_t k_fixed(const dagr_task_view_t *t) {
    double *v = t->buf[0];
    for (int i = 0; i < 15; i++)
        v[i] = i * 0.5;
    return DAGR_TASK_DONE;
}

static const dagr_kernel_t fixed_kernel = {.name = "dyn_fixed", .cpu = k_fixed};

static int ckpt(dagr_ctx_t *ctx, const char *path, bool write) {
    int P = dagr_size(ctx), ok = 1;
    dagr_data_t *h[NC], *fixed;
    for (int k = 0; k < NC; k++)
        SC_TRY(dagr_data_create_dynamic(ctx, (k * 3 + 1) % P, &h[k]));
    SC_TRY(dagr_data_create_2d(ctx, 5, 3, 8, 0, &fixed));
    if (write) {
        for (int k = 0; k < NC; k++) {
            fill_args_t a = {k};
            dagr_access_t acc = {h[k], k % 2 ? DAGR_RW : DAGR_WRITE};
            dagr_task_opts_t o;
            dagr_task_opts_init(&o);
            o.rank = (k + 2) % P; /* often not the owner: the version travels home */
            SC_TRY(dagr_spawn(ctx, &fill_kernel, &a, sizeof a, 1, &acc, &o));
        }
        dagr_access_t acc = {fixed, DAGR_WRITE};
        SC_TRY(dagr_spawn(ctx, &fixed_kernel, NULL, 0, 1, &acc, NULL));
        SC_TRY(dagr_wait_all(ctx));
        SC_TRY(dagr_checkpoint(ctx, path));
    } else {
        SC_TRY(dagr_resume(ctx, path));
    }
    model_t m[NC];
    for (int k = 0; k < NC; k++) {
        m[k].n = ckpt_size(k);
        m[k].p = malloc(m[k].n ? m[k].n : 1);
        for (size_t j = 0; j < m[k].n; j++)
            m[k].p[j] = fresh((uint64_t)k, j);
    }
    int bad = check_all(ctx, h, m, NC);
    double v[15];
    SC_TRY(dagr_fetch(fixed, v, -1));
    for (int i = 0; i < 15; i++)
        bad += !SC_CHECK(v[i] == i * 0.5, "the fixed handle's element %d is %g", i, v[i]);
    ok &= bad == 0;
    for (int k = 0; k < NC; k++) {
        free(m[k].p);
        SC_TRY(dagr_data_destroy(&h[k]));
    }
    SC_TRY(dagr_data_destroy(&fixed));
    sc_result("dynsize", ok, "%s ranks=%d bad=%d", write ? "ckpt_write" : "ckpt_read", P, bad);
    return !ok;
}

int main(int argc, char **argv) {
    dagr_ctx_t *ctx;
    SC_TRY(dagr_init(&argc, &argv, NULL, &ctx));
    sc_set_rank(dagr_rank(ctx));
    const char *mode = argc > 1 ? argv[1] : "random";
    if (strcmp(mode, "random") == 0)
        random_graph(ctx, argc > 2 ? strtoull(argv[2], NULL, 10) : 1,
                     argc > 3 ? atoi(argv[3]) : 400);
    else if (strcmp(mode, "errors") == 0)
        errors(ctx);
    else if (strcmp(mode, "ckpt_write") == 0 && argc > 2)
        ckpt(ctx, argv[2], true);
    else if (strcmp(mode, "ckpt_read") == 0 && argc > 2)
        ckpt(ctx, argv[2], false);
    else
        sc_fail_at(__FILE__, __LINE__, "unknown mode '%s'", mode);
    SC_TRY(dagr_finalize(&ctx));
    return sc_exit_code();
}
