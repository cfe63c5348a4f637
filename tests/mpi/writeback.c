/* Lazy write-back of device copies (lib/device.c): what device tasks write stays on the device
 * until the host needs it, and every reader still sees the latest version.
 *
 * Tiles of doubles, each owned by one rank, are updated in chains of RW tasks placed on the
 * devices (DAGR_WHERE_DEVICE); between the updates, at random, a host task reads a tile (a
 * write-back), a task on another rank reads it (a SEND: a write-back), or a host task adds to
 * it (the device's copy becomes stale). The final tiles, fetched by every rank, are compared
 * with the same updates replayed serially.
 *
 * Usage: writeback TILES STEPS MIX SEED
 *   MIX 0: device updates only (the chain test: each tile should cross back to the host once,
 *          at the wait); MIX 1: host reads, remote reads and host updates mixed in.
 *   MIX 2: strided homes: each rank attaches a matrix of its own with ld > rows (as a
 *          ScaLAPACK tile), updated by tasks asking for a device (packed copies there, 2-D
 *          copies in and out) and by host tasks; after the wait the caller's array holds the
 *          replayed values and its padding is untouched.
 *
 * Prints RANK r RESULT writeback ok dev_tasks=T copies_in=I copies_out=O writebacks=W
 * evictions=E (summed over this rank's devices). */
#include "scenario.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { ELEMS = 1024 }; /* 8 KiB tiles */

typedef struct upd {
    double add, mul;
} upd_t;

static dagr_task_result_t update(const dagr_task_view_t *t) {
    const upd_t *u = t->args;
    double *x = t->buf[0];
    for (int i = 0; i < ELEMS; i++)
        x[i] = x[i] * u->mul + u->add + i;
    return DAGR_TASK_DONE;
}

/* Reads tile 0 and adds its checksum into tile 1 (a scalar accumulator on another handle). */
static dagr_task_result_t absorb(const dagr_task_view_t *t) {
    const double *x = t->buf[0];
    double *acc = t->buf[1], s = 0;
    for (int i = 0; i < ELEMS; i++)
        s += x[i] * (i % 7 + 1);
    acc[0] += s;
    return DAGR_TASK_DONE;
}

enum { SROWS = 37, SCOLS = 5, SLD = 41 }; /* a strided home: ld > rows */
#define PAD (-7.25)

static dagr_task_result_t update2d(const dagr_task_view_t *t) {
    const upd_t *u = t->args;
    double *x = t->buf[0];
    size_t ld = t->ld[0];
    if (t->device >= 0 && ld != SROWS) return DAGR_TASK_ERROR; /* device copies are packed */
    for (size_t j = 0; j < SCOLS; j++)
        for (size_t i = 0; i < SROWS; i++)
            x[i + j * ld] = x[i + j * ld] * u->mul + u->add + (double)(i + j);
    return DAGR_TASK_DONE;
}

static int strided(dagr_ctx_t *ctx, int steps, sc_rng_t *rng) {
    int rank = dagr_rank(ctx), size = dagr_size(ctx);
    double *mine = malloc(SLD * SCOLS * sizeof *mine);
    double *ref = calloc((size_t)size * SROWS * SCOLS, sizeof *ref);
    for (int k = 0; k < SLD * SCOLS; k++)
        mine[k] = k % SLD < SROWS ? 0.0 : PAD;
    dagr_data_t **m = calloc((size_t)size, sizeof *m);
    for (int r = 0; r < size; r++)
        SC_TRY(dagr_data_attach_2d(ctx, r == rank ? mine : NULL, SROWS, SCOLS, SLD, sizeof(double),
                                   r, &m[r]));
    dagr_kernel_t k2 = {"wb_update2d", update2d, NULL, {NULL}};
    for (int s = 0; s < steps; s++)
        for (int r = 0; r < size; r++) {
            upd_t u = {(double)sc_below(rng, 1000) / 64.0, s % 2 ? 0.5 : 1.0};
            dagr_task_opts_t o;
            dagr_task_opts_init(&o);
            o.where = sc_below(rng, 4) == 0 ? DAGR_WHERE_CPU : DAGR_WHERE_DEVICE;
            dagr_access_t a = {m[r], DAGR_RW};
            SC_TRY(dagr_spawn(ctx, &k2, &u, sizeof u, 1, &a, &o));
            double *x = &ref[(size_t)r * SROWS * SCOLS];
            for (int j = 0; j < SCOLS; j++)
                for (int i = 0; i < SROWS; i++)
                    x[i + j * SROWS] = x[i + j * SROWS] * u.mul + u.add + (double)(i + j);
        }
    SC_TRY(dagr_wait_all(ctx));
    int bad = 0;
    for (int j = 0; j < SCOLS; j++)
        for (int i = 0; i < SLD; i++) {
            double want = i < SROWS ? ref[(size_t)rank * SROWS * SCOLS + i + j * SROWS] : PAD;
            bad += mine[i + j * SLD] != want;
        }
    SC_CHECK(bad == 0, "%d elements of this rank's strided home (padding included) are wrong", bad);
    for (int r = 0; r < size; r++)
        SC_TRY(dagr_data_destroy(&m[r]));
    free(m);
    free(ref);
    free(mine);
    return bad;
}

static void update_serial(double *x, const upd_t *u) {
    for (int i = 0; i < ELEMS; i++)
        x[i] = x[i] * u->mul + u->add + i;
}

static void absorb_serial(const double *x, double *acc) {
    double s = 0;
    for (int i = 0; i < ELEMS; i++)
        s += x[i] * (i % 7 + 1);
    acc[0] += s;
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: writeback TILES STEPS MIX SEED\n");
        return 2;
    }
    int ntiles = atoi(argv[1]), steps = atoi(argv[2]), mix = atoi(argv[3]);
    sc_rng_t rng = {(uint64_t)atoll(argv[4])};
    dagr_ctx_t *ctx;
    SC_TRY(dagr_init(&argc, &argv, NULL, &ctx));
    int rank = dagr_rank(ctx), size = dagr_size(ctx);
    sc_set_rank(rank);
    SC_CHECK(dagr_devices(ctx) > 0, "run with DAGR_TEST_DEVICES >= 1");
    if (mix == 2) {
        (void)strided(ctx, steps, &rng);
        dagr_device_stats_t st = {0}, sum = {0};
        for (int d = 0; d < dagr_devices(ctx); d++) {
            SC_TRY(dagr_device_stats(ctx, d, &st));
            sum.tasks += st.tasks;
        }
        sc_result("writeback", sc_failures() == 0,
                  "dev_tasks=%llu copies_in=0 copies_out=0 "
                  "writebacks=0 evictions=0",
                  (unsigned long long)sum.tasks);
        SC_TRY(dagr_finalize(&ctx));
        return sc_exit_code();
    }

    dagr_data_t **tile = calloc((size_t)ntiles, sizeof *tile);
    dagr_data_t **acc = calloc((size_t)size, sizeof *acc);
    double *ref = calloc((size_t)ntiles * ELEMS, sizeof *ref);
    double *ref_acc = calloc((size_t)size, sizeof *ref_acc);
    for (int k = 0; k < ntiles; k++)
        SC_TRY(dagr_data_create(ctx, ELEMS * sizeof(double), k % size, &tile[k]));
    for (int r = 0; r < size; r++)
        SC_TRY(dagr_data_create(ctx, sizeof(double), r, &acc[r]));

    dagr_kernel_t kupd = {"wb_update", update, NULL, {NULL}};
    dagr_kernel_t kabs = {"wb_absorb", absorb, NULL, {NULL}};
    for (int s = 0; s < steps; s++) {
        for (int k = 0; k < ntiles; k++) {
            upd_t u = {(double)(sc_below(&rng, 1000)) / 64.0, s % 2 ? 0.5 : 1.0};
            int what = mix ? sc_below(&rng, 6) : 0;
            dagr_task_opts_t o;
            dagr_task_opts_init(&o);
            o.where = what == 5 ? DAGR_WHERE_CPU : DAGR_WHERE_DEVICE;
            dagr_access_t a = {tile[k], DAGR_RW};
            SC_TRY(dagr_spawn(ctx, &kupd, &u, sizeof u, 1, &a, &o));
            update_serial(&ref[(size_t)k * ELEMS], &u);
            if (what == 3 || what == 4) {
                /* A host task on the owner (what 3) or a task on the next rank (what 4) reads
                 * what the device just wrote. */
                int r = what == 3 ? k % size : (k + 1) % size;
                dagr_task_opts_init(&o);
                o.where = DAGR_WHERE_CPU;
                o.rank = r;
                dagr_access_t b[2] = {{tile[k], DAGR_READ}, {acc[r], DAGR_RW}};
                SC_TRY(dagr_spawn(ctx, &kabs, NULL, 0, 2, b, &o));
                absorb_serial(&ref[(size_t)k * ELEMS], &ref_acc[r]);
            }
        }
        if (mix && s == steps / 2) SC_TRY(dagr_wait_all(ctx)); /* a wait mid-way */
    }

    /* Every rank fetches every tile and accumulator and compares them with the replay. */
    double *got = malloc(ELEMS * sizeof *got);
    int bad = 0;
    for (int k = 0; k < ntiles; k++) {
        SC_TRY(dagr_fetch(tile[k], got, -1));
        if (memcmp(got, &ref[(size_t)k * ELEMS], ELEMS * sizeof *got) != 0) bad++;
    }
    for (int r = 0; r < size; r++) {
        double a;
        SC_TRY(dagr_fetch(acc[r], &a, -1));
        if (a != ref_acc[r]) bad++;
    }
    SC_CHECK(bad == 0, "%d of %d handles differ from the serial replay", bad, ntiles + size);

    dagr_device_stats_t sum = {0};
    for (int d = 0; d < dagr_devices(ctx); d++) {
        dagr_device_stats_t st;
        SC_TRY(dagr_device_stats(ctx, d, &st));
        sum.tasks += st.tasks;
        sum.copies_in += st.copies_in;
        sum.copies_out += st.copies_out;
        sum.writebacks += st.writebacks;
        sum.evictions += st.evictions;
    }
    sc_result("writeback", sc_failures() == 0,
              "dev_tasks=%llu copies_in=%llu copies_out=%llu writebacks=%llu evictions=%llu",
              (unsigned long long)sum.tasks, (unsigned long long)sum.copies_in,
              (unsigned long long)sum.copies_out, (unsigned long long)sum.writebacks,
              (unsigned long long)sum.evictions);
    for (int k = 0; k < ntiles; k++)
        SC_TRY(dagr_data_destroy(&tile[k]));
    for (int r = 0; r < size; r++)
        SC_TRY(dagr_data_destroy(&acc[r]));
    free(tile);
    free(acc);
    free(ref);
    free(ref_acc);
    free(got);
    SC_TRY(dagr_finalize(&ctx));
    return sc_exit_code();
}
