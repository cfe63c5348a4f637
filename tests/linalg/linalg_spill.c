/* Out of core: the same work under a memory limit must give bit-for-bit the same results.
 *
 * Usage: linalg_spill P Q N NB LIMIT run|readfail
 *
 * LIMIT is the per-rank memory limit in bytes (K/M suffix allowed; 0 = none) given through
 * dagr_config_t.memory_limit, or "env" to leave it to DAGR_MEMORY_LIMIT. The work, on a P x Q
 * grid with NB x NB tiles:
 *   - posv: A (N x N, double, SPD) X = B (N x 3), inserted as one graph, with the LAPACK
 *     tester's residuals (potrf and solve, < 60);
 *   - gemm: C = X Y^T for random X (N x N/2+1, double) and Y (N x N/2+1) against cblas_dgemm
 *     (relative error < N eps), then C is scaled by 2 in float on a float copy F;
 *   - handles: 6 plain handles of 5000 bytes (625 uint64 words), each updated 7 times by a
 *     task on rank (i + step) mod size that reads the next handle too, so copies move between
 *     ranks and are spilled and read back there; fetched and compared exactly with a serial
 *     replay.
 * Prints RANK r RESULT spill ok|FAIL hash=<64-bit hash of every result> writes=... reads=...
 * wbytes=... rbytes=... peak=... limit=... over=... failures=... tile=... (dagr_memory_stats): a
 * run with a limit must print the hash of one without. With a limit smaller than the data, it also
 * checks that something was spilled and read back.
 *
 * readfail: run with DAGR_SPILL_TEST_FAIL_READ=k, which makes every rank's k-th read-back fail
 * as a disk error would. The work above must then end in DAGR_ERR_IO on every rank at the
 * wait, naming the spill file and the task or transfer; prints RESULT readfail ok|FAIL. */
#include "scenario.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static dagr_ctx_t *ctx;
static int P, Q, rank, nranks;
static int64_t N, NB;
static const int64_t NRHS = 3;
static char wait_msg[1024]; /* the work's wait's error message */

#define NH 6
#define WORDS 625
#define STEPS 7

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

static double *gen(int64_t m, int64_t n, uint64_t seed) {
    sc_rng_t r = {seed * 7919 + 5};
    double *x = calloc((size_t)(sc_ld(m) * n) + 1, sizeof *x);
    for (int64_t k = 0; k < sc_ld(m) * n; k++)
        x[k] = (double)(sc_next(&r) >> 11) * 0x1p-53 * 2 - 1;
    return x;
}

static dagr_darray_t *make(dagr_dtype_t t, int64_t m, int64_t n) {
    dagr_darray_t *A = NULL;
    SC_TRY(dagr_darray_create(ctx, t, m, n, NB, NB, dagr_grid_2d(P, Q), &A));
    return A;
}

/* buf[0] (RW) x, buf[1] (READ) y, args step: x[k] = 3 x[k] + y[(k + step) % W] + k + step. */
static dagr_task_result_t k_mix(const dagr_task_view_t *t) {
    uint64_t step, *x = t->buf[0];
    const uint64_t *y = t->buf[1];
    memcpy(&step, t->args, sizeof step);
    uint64_t y0[WORDS];
    memcpy(y0, y, sizeof y0); /* y may be x itself when NH is 1 */
    for (uint64_t k = 0; k < WORDS; k++)
        x[k] = 3 * x[k] + y0[(k + step) % WORDS] + k + step;
    return DAGR_TASK_DONE;
}
static const dagr_kernel_t K_MIX = {.name = "spill_mix", .cpu = k_mix};

static void to_float(const dagr_tile_t *in, dagr_tile_t *out, void *user) {
    (void)user;
    for (int64_t c = 0; c < in->cols; c++)
        for (int64_t r = 0; r < in->rows; r++)
            ((float *)out->data)[r + c * out->ld] =
                (float)((const double *)in->data)[r + c * in->ld];
}

/* Inserts the whole run without a wait between the parts; returns the results' hash (0 when
 * a wait failed, with *st set). */
static uint64_t work(dagr_status_t *st, double *worst, int *ok) {
    uint64_t h = 1469598103934665603ull;
    *ok = 1;
    *worst = 0;
    *st = DAGR_OK;
    int64_t nc = N / 2 + 1;

    /* posv */
    double *r = gen(N, N, 1), *a = calloc((size_t)(sc_ld(N) * N) + 1, sizeof *a);
    if (N > 0)
        cblas_dgemm(CblasColMajor, CblasNoTrans, CblasTrans, (int)N, (int)N, (int)N, 1.0, r,
                    (int)sc_ld(N), r, (int)sc_ld(N), 0.0, a, (int)sc_ld(N));
    for (int64_t k = 0; k < N; k++)
        a[k + k * sc_ld(N)] += (double)N;
    double *b = gen(N, NRHS, 2), *x = gen(N, nc, 3), *y = gen(N, nc, 4);
    dagr_darray_t *A = make(DAGR_DOUBLE, N, N), *B = make(DAGR_DOUBLE, N, NRHS);
    dagr_darray_t *X = make(DAGR_DOUBLE, N, nc), *Y = make(DAGR_DOUBLE, N, nc);
    dagr_darray_t *C = make(DAGR_DOUBLE, N, N), *F = make(DAGR_FLOAT, N, N);
    sc_scatter(A, a);
    sc_scatter(B, b);
    sc_scatter(X, x);
    sc_scatter(Y, y);
    SC_TRY(dagr_posv(DAGR_LOWER, A, B));
    SC_TRY(dagr_gemm(DAGR_NO_TRANS, DAGR_TRANS, 1.0, X, Y, 0.0, C));
    SC_TRY(dagr_darray_map(C, F, to_float, NULL));
    SC_TRY(dagr_darray_scale(F, 2.0));

    /* plain handles */
    dagr_data_t *d[NH];
    uint64_t ref[NH][WORDS];
    for (int i = 0; i < NH; i++) {
        SC_TRY(dagr_data_create(ctx, sizeof ref[i], i % nranks, &d[i]));
        memset(ref[i], 0, sizeof ref[i]);
    }
    for (uint64_t step = 0; step < STEPS; step++)
        for (int i = 0; i < NH; i++) {
            int j = (i + 1) % NH;
            dagr_access_t acc[2] = {{d[i], DAGR_RW}, {d[j], DAGR_READ}};
            dagr_task_opts_t o;
            dagr_task_opts_init(&o);
            o.rank = (int)((i + step) % (uint64_t)nranks);
            SC_TRY(dagr_spawn(ctx, &K_MIX, &step, sizeof step, 2, acc, &o));
            uint64_t y0[WORDS];
            memcpy(y0, ref[j], sizeof y0);
            for (uint64_t k = 0; k < WORDS; k++)
                ref[i][k] = 3 * ref[i][k] + y0[(k + step) % WORDS] + k + step;
        }
    *st = dagr_wait_all(ctx);
    snprintf(wait_msg, sizeof wait_msg, "%s", *st == DAGR_OK ? "" : dagr_last_error());
    if (*st == DAGR_OK) {
        double *f = sc_gather(A), *s = sc_gather(B), *c = sc_gather(C), *g = sc_gather(F);
        /* residuals of the factor's lower triangle and of the solve */
        int64_t ld = sc_ld(N);
        double *l = calloc((size_t)(ld * N) + 1, sizeof *l),
               *res = malloc(sizeof *res * (size_t)(ld * N + 1));
        for (int64_t j = 0; j < N; j++)
            for (int64_t i = j; i < N; i++)
                l[i + j * ld] = f[i + j * ld];
        memcpy(res, a, sizeof *res * (size_t)(ld * N));
        if (N > 0)
            cblas_dgemm(CblasColMajor, CblasNoTrans, CblasTrans, (int)N, (int)N, (int)N, -1.0, l,
                        (int)ld, l, (int)ld, 1.0, res, (int)ld);
        double anorm = sc_norm1(a, N, N, ld), eps = sc_eps(DAGR_DOUBLE);
        double r1 = N ? sc_norm1(res, N, N, ld) / (anorm * (double)N * eps) : 0;
        double *rb = malloc(sizeof *rb * (size_t)(ld * NRHS + 1));
        memcpy(rb, b, sizeof *rb * (size_t)(ld * NRHS));
        if (N > 0)
            cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, (int)N, (int)NRHS, (int)N, -1.0,
                        a, (int)ld, s, (int)ld, 1.0, rb, (int)ld);
        double xn = sc_norm1(s, N, NRHS, ld);
        double r2 = xn > 0 ? sc_norm1(rb, N, NRHS, ld) / (anorm * xn * (double)N * eps) : 0;
        /* gemm against cblas */
        double *cr = calloc((size_t)(ld * N) + 1, sizeof *cr), err = 0, cmax = 0;
        if (N > 0)
            cblas_dgemm(CblasColMajor, CblasNoTrans, CblasTrans, (int)N, (int)N, (int)nc, 1.0, x,
                        (int)ld, y, (int)ld, 0.0, cr, (int)ld);
        long fbad = 0;
        for (int64_t k = 0; k < ld * N; k++) {
            err = fmax(err, fabs(c[k] - cr[k]));
            cmax = fmax(cmax, fabs(cr[k]));
            if (g[k] != (double)(float)((float)c[k] * 2.0f)) fbad++;
        }
        double r3 = cmax > 0 ? err / (cmax * (double)nc * eps) : 0;
        *worst = fmax(r1, fmax(r2, r3));
        *ok &= SC_CHECK(r1 < 60 && r2 < 60, "posv residuals %g %g", r1, r2);
        *ok &= SC_CHECK(r3 < 1, "gemm error %g (in units of nc eps |C|max)", r3);
        *ok &= SC_CHECK(fbad == 0, "%ld entries of F != float(C) * 2", fbad);
        h = fnv(h, f, sizeof *f * (size_t)(ld * N));
        h = fnv(h, s, sizeof *s * (size_t)(ld * NRHS));
        h = fnv(h, c, sizeof *c * (size_t)(ld * N));
        h = fnv(h, g, sizeof *g * (size_t)(ld * N));
        free(f), free(s), free(c), free(g), free(l), free(res), free(rb), free(cr);
        for (int i = 0; i < NH; i++) {
            uint64_t got[WORDS];
            SC_TRY(dagr_fetch(d[i], got, -1));
            *ok &= SC_CHECK(memcmp(got, ref[i], sizeof got) == 0, "handle %d differs", i);
            h = fnv(h, got, sizeof got);
        }
    }
    for (int i = 0; i < NH; i++)
        SC_TRY(dagr_data_destroy(&d[i]));
    dagr_darray_t *all[] = {A, B, X, Y, C, F};
    for (int i = 0; i < 6; i++)
        SC_TRY(dagr_darray_destroy(&all[i]));
    free(r), free(a), free(b), free(x), free(y);
    return h;
}

int main(int argc, char **argv) {
    if (argc != 7) {
        fprintf(stderr, "usage: %s P Q N NB LIMIT run|readfail\n", argv[0]);
        return 2;
    }
    P = atoi(argv[1]);
    Q = atoi(argv[2]);
    N = atoll(argv[3]);
    NB = atoll(argv[4]);
    const char *mode = argv[6];
    dagr_config_t cfg;
    dagr_config_init(&cfg);
    if (strcmp(argv[5], "env") != 0) {
        char *end;
        unsigned long long v = strtoull(argv[5], &end, 10);
        if (*end == 'K') v <<= 10;
        if (*end == 'M') v <<= 20;
        cfg.memory_limit = (size_t)v;
    }
    dagr_status_t s = dagr_init(&argc, &argv, &cfg, &ctx);
    if (s != DAGR_OK) {
        fprintf(stderr, "dagr_init: %s\n", dagr_last_error());
        return 2;
    }
    rank = dagr_rank(ctx);
    nranks = dagr_size(ctx);
    sc_set_rank(rank);

    dagr_status_t st;
    double worst;
    int ok;
    uint64_t hash = work(&st, &worst, &ok);
    /* The destroys above do not wait for their last tasks; and a worker drops a finished
     * task's handles just after the wait has seen it finish: give it a moment. */
    dagr_wait_all(ctx);
    dagr_memory_stats_t m;
    SC_TRY(dagr_memory_stats(ctx, &m));
    for (int k = 0; k < 5000 && m.resident; k++) {
        sc_sleep_ms(1);
        SC_TRY(dagr_memory_stats(ctx, &m));
    }
    size_t tile = (size_t)(NB * NB) * sizeof(double);
    if (!strcmp(mode, "readfail")) {
        /* The read that fails is a task's or a send's, as the timing falls. */
        const char *msg = wait_msg;
        int good = SC_CHECK(st == DAGR_ERR_IO, "wait returned %s", dagr_status_str(st)) &&
                   SC_CHECK(strstr(msg, "back from the spill file") &&
                                (strstr(msg, "failed on rank") || strstr(msg, "could not send")),
                            "message: %s", msg);
        sc_result("readfail", good, "status=%s reads=%llu", dagr_status_str(st),
                  (unsigned long long)m.reads);
    } else {
        ok &= SC_CHECK(st == DAGR_OK, "wait: %s", dagr_last_error());
        /* The data of one rank is far above any limit the tests give: something must move. */
        if (m.limit > 0 && m.limit < 4 * tile) {
            ok &= SC_CHECK(m.spill_writes > 0 && m.reads > 0, "writes %llu reads %llu",
                           (unsigned long long)m.spill_writes, (unsigned long long)m.reads);
            ok &= SC_CHECK(m.spill_bytes >= m.spill_writes && m.read_bytes >= m.reads,
                           "bytes %llu / %llu", (unsigned long long)m.spill_bytes,
                           (unsigned long long)m.read_bytes);
        }
        if (m.limit == 0)
            ok &= SC_CHECK(m.peak == 0 && m.spill_writes == 0, "stats without a limit");
        /* What may sit above the limit: the tiles the running tasks hold (3 each for gemm, one
         * per worker), one a transfer holds, one fetch. */
        size_t slack = (size_t)(3 * dagr_threads(ctx) + 2) * (tile > WORDS * 8 ? tile : WORDS * 8);
        if (m.limit > 0)
            ok &= SC_CHECK(m.peak <= m.limit + slack, "peak %zu over limit %zu + %zu", m.peak,
                           m.limit, slack);
        ok &= SC_CHECK(m.resident == 0, "%zu bytes still counted after every handle is gone",
                       m.resident);
        sc_result("spill", ok,
                  "hash=%016llx writes=%llu reads=%llu wbytes=%llu rbytes=%llu peak=%zu "
                  "limit=%zu over=%llu failures=%llu tile=%zu worst=%.3g",
                  (unsigned long long)hash, (unsigned long long)m.spill_writes,
                  (unsigned long long)m.reads, (unsigned long long)m.spill_bytes,
                  (unsigned long long)m.read_bytes, m.peak, m.limit,
                  (unsigned long long)m.over_limit, (unsigned long long)m.spill_failures, tile,
                  worst);
    }
    int code = sc_exit_code();
    dagr_finalize(&ctx);
    return code;
}
