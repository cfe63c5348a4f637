/* Performance models for placement (device.c, device_place): how long a kernel's task takes on
 * each class of worker — a host worker, a test device, a GPU — learned from the tasks that ran
 * (StarPU's history-based models, which its dmda scheduler uses).
 *
 * A model is kept per kernel name, per class of worker and per size class (the power of two of
 * the task's bytes: a 256 and a 1024 tile of the same kernel are different tasks). It holds the
 * mean time per declared flop when the task declared flops (dagr_task_opts_t.flops: the linear
 * algebra kernels do), else the mean time per task. Before a class has run a kernel, a declared
 * flop count gives a first estimate from a nominal rate (PM_SEED_*); without one the estimate
 * is unknown. Either way the first PM_CALIB tasks of each (kernel, size) go to every class that
 * may run them, so that every class is measured and a wrong seed cannot keep a class idle.
 * The first measurement of each is dropped once a second one comes: it pays for cold caches
 * and, on a GPU, for loading cuBLAS.
 *
 * Only ranks with devices keep models (ctx->pm is NULL otherwise): placement is their only use,
 * and timing every task costs two clock reads. The table is fixed-size (open addressing); a
 * kernel that finds it full is simply not modelled. */
#include "lib_impl.h"

#include <stdlib.h>

#define PM_SLOTS 2048 /* a power of two */
#define PM_WINDOW 16  /* the mean follows the last ~16 tasks */

/* Nominal rates (flop/s) of a class before it has run a kernel. The test device runs the host's
 * CPU bodies, so it gets the host's rate. */
static const double pm_seed_rate[PM_CLASSES] = {
    [PM_HOST] = 10e9, [PM_TEST] = 10e9, [PM_GPU] = 2e12};

typedef struct pm_entry {
    uint64_t key; /* 0: empty */
    uint32_t runs[PM_CLASSES];
    uint32_t pending[PM_CLASSES]; /* placed there to be measured, not measured yet */
    double mean[PM_CLASSES];      /* seconds per flop (flops declared) or per task */
} pm_entry_t;

struct perfmodel {
    pthread_mutex_t lock;
    pm_entry_t slot[PM_SLOTS];
};

dagr_status_t pm_start(dagr_ctx_t *ctx) {
    perfmodel_t *pm = calloc(1, sizeof *pm);
    DAGR_CHECK(pm, DAGR_ERR_NOMEM, "cannot allocate the performance models");
    pthread_mutex_init(&pm->lock, NULL);
    ctx->pm = pm;
    return DAGR_OK;
}

void pm_stop(dagr_ctx_t *ctx) {
    if (!ctx->pm) return;
    pthread_mutex_destroy(&ctx->pm->lock);
    free(ctx->pm);
    ctx->pm = NULL;
}

/* n's model key, made once (placement, then the measurement, use it). */
static uint64_t key_of(node_t *n) {
    if (n->pm_key) return n->pm_key;
    size_t bytes = 0;
    for (int j = 0; j < n->nacc; j++)
        bytes += n->acc[j].h->bytes;
    uint64_t size_class = bytes ? 64 - (uint64_t)__builtin_clzll((unsigned long long)bytes) : 0;
    uint64_t k = (n->khash ^ (size_class * 0x9e3779b97f4a7c15ull) ^ (n->flops > 0 ? 1 : 0)) *
                 0xff51afd7ed558ccdull;
    n->pm_key = k ? k : 1;
    return n->pm_key;
}

/* Lock held: n's entry, made when `make`; NULL when absent (or the table is full). */
static pm_entry_t *entry(perfmodel_t *pm, uint64_t key, bool make) {
    for (size_t i = 0, at = key & (PM_SLOTS - 1); i < PM_SLOTS;
         i++, at = (at + 1) & (PM_SLOTS - 1)) {
        pm_entry_t *e = &pm->slot[at];
        if (e->key == key) return e;
        if (e->key == 0) {
            if (!make) return NULL;
            e->key = key;
            return e;
        }
    }
    return NULL;
}

/* Lock held: seconds from e's class c, or -1 unknown. */
static double estimate_of(const pm_entry_t *e, const node_t *n, pm_class_t c) {
    if (e && e->runs[c]) return n->flops > 0 ? e->mean[c] * n->flops : e->mean[c];
    if (n->flops > 0) return n->flops / pm_seed_rate[c];
    return -1.0;
}

void pm_estimate(dagr_ctx_t *ctx, node_t *n, pm_estimate_t *out) {
    perfmodel_t *pm = ctx->pm;
    uint64_t key = key_of(n);
    pthread_mutex_lock(&pm->lock);
    const pm_entry_t *e = entry(pm, key, false);
    for (int c = 0; c < PM_CLASSES; c++) {
        out->seconds[c] = estimate_of(e, n, (pm_class_t)c);
        out->tried[c] = e ? e->runs[c] + e->pending[c] : 0;
    }
    pthread_mutex_unlock(&pm->lock);
    /* A class never measured borrows a measured one's figure rather than stay unknown: the
     * test device runs the same bodies as the host. */
    if (out->seconds[PM_TEST] < 0) out->seconds[PM_TEST] = out->seconds[PM_HOST];
    if (out->seconds[PM_HOST] < 0) out->seconds[PM_HOST] = out->seconds[PM_TEST];
}

void pm_calibrating(dagr_ctx_t *ctx, node_t *n, pm_class_t c) {
    perfmodel_t *pm = ctx->pm;
    uint64_t key = key_of(n);
    pthread_mutex_lock(&pm->lock);
    pm_entry_t *e = entry(pm, key, true);
    if (e) e->pending[c]++;
    pthread_mutex_unlock(&pm->lock);
}

void pm_record(dagr_ctx_t *ctx, node_t *n, pm_class_t c, double seconds) {
    perfmodel_t *pm = ctx->pm;
    if (!pm || seconds < 0) return;
    uint64_t key = key_of(n);
    double x = n->flops > 0 ? seconds / n->flops : seconds;
    pthread_mutex_lock(&pm->lock);
    pm_entry_t *e = entry(pm, key, true);
    if (e) {
        if (e->pending[c]) e->pending[c]--;
        uint32_t k = ++e->runs[c];
        if (k <= 2) /* the first one is replaced by the second: see the top */
            e->mean[c] = x;
        else
            e->mean[c] += (x - e->mean[c]) / (double)(k - 1 < PM_WINDOW ? k - 1 : PM_WINDOW);
    }
    pthread_mutex_unlock(&pm->lock);
}
