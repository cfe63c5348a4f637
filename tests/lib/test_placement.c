/* Placement by expected finish time (lib/device.c, device_place; lib/perfmodel.c): a rank
 * learns how long each kernel takes on its host workers and on each class of device, and sends
 * a task where it is expected to finish first. One rank, one worker, one test device; the
 * kernels sleep for a time that depends on where they run, so that one side is 50 times
 * faster. Tasks come in waves (a wait between them), as a graph's tasks become ready over time:
 * the first tasks of a kernel are measured on both sides, the later ones go to the fast side,
 * except what the slow side can finish sooner than the fast side's queue. opts.where overrides
 * the models both ways. */
#include <criterion/criterion.h>
#include <dagr/dagr.h>
#include <stdlib.h>
#include <time.h>

#define WAVES 8
#define WAVE 20

static dagr_ctx_t *ctx;
static dagr_data_t *tile[WAVE];
static int updates; /* each tile's, so far */

static void setup(void) {
    setenv("DAGR_TEST_DEVICES", "1", 1);
    setenv("DAGR_THREADS", "1", 1);
    cr_assert_eq(dagr_init(NULL, NULL, NULL, &ctx), DAGR_OK, "%s", dagr_last_error());
    cr_assert_eq(dagr_devices(ctx), 1);
    for (int i = 0; i < WAVE; i++)
        cr_assert_eq(dagr_data_create(ctx, 64, 0, &tile[i]), DAGR_OK, "%s", dagr_last_error());
}
static void teardown(void) {
    for (int i = 0; i < WAVE; i++)
        dagr_data_destroy(&tile[i]);
    dagr_finalize(&ctx);
}
TestSuite(lib_placement, .init = setup, .fini = teardown, .timeout = 120);

static void sleep_us(long us) {
    struct timespec ts = {0, us * 1000};
    nanosleep(&ts, NULL);
}
static dagr_task_result_t slow_device(const dagr_task_view_t *t) {
    sleep_us(t->device >= 0 ? 5000 : 100);
    ((char *)t->buf[0])[0]++;
    return DAGR_TASK_DONE;
}
static dagr_task_result_t slow_host(const dagr_task_view_t *t) {
    sleep_us(t->device >= 0 ? 100 : 5000);
    ((char *)t->buf[0])[0]++;
    return DAGR_TASK_DONE;
}

/* Runs WAVES waves of WAVE independent tasks of k; returns how many ran on the device. */
static long run_waves(const dagr_kernel_t *k, dagr_where_t where) {
    dagr_device_stats_t before, after;
    cr_assert_eq(dagr_device_stats(ctx, 0, &before), DAGR_OK);
    dagr_task_opts_t o;
    dagr_task_opts_init(&o);
    o.where = where;
    for (int w = 0; w < WAVES; w++) {
        for (int i = 0; i < WAVE; i++) {
            dagr_access_t acc[1] = {{tile[i], DAGR_RW}};
            cr_assert_eq(dagr_spawn(ctx, k, NULL, 0, 1, acc, &o), DAGR_OK, "%s", dagr_last_error());
        }
        cr_assert_eq(dagr_wait_all(ctx), DAGR_OK, "%s", dagr_last_error());
        updates++;
    }
    for (int i = 0; i < WAVE; i++) { /* every task ran once, wherever it ran */
        char v[64] = {0};
        cr_assert_eq(dagr_fetch(tile[i], v, 0), DAGR_OK, "%s", dagr_last_error());
        cr_assert_eq(v[0], updates, "tile %d: %d updates, expected %d", i, v[0], updates);
    }
    cr_assert_eq(dagr_device_stats(ctx, 0, &after), DAGR_OK);
    return (long)(after.tasks - before.tasks);
}

Test(lib_placement, a_slow_device_gets_only_its_share) {
    dagr_kernel_t k = {.name = "slow_device", .cpu = slow_device};
    long dev = run_waves(&k, DAGR_WHERE_ANY);
    /* Measured there (3 tasks), and then at most what it finishes before the host's queue
     * would: a few per wave at most. Least-loaded placement would give it about half. */
    cr_expect(dev >= 3, "the device was never tried: %ld tasks", dev);
    cr_expect(dev <= WAVES * WAVE / 8, "the slow device ran %ld of %d tasks", dev, WAVES * WAVE);
}

Test(lib_placement, a_fast_device_gets_most) {
    dagr_kernel_t k = {.name = "slow_host", .cpu = slow_host};
    long dev = run_waves(&k, DAGR_WHERE_ANY);
    cr_expect(dev >= WAVES * WAVE * 3 / 4, "the fast device ran only %ld of %d tasks", dev,
              WAVES * WAVE);
    cr_expect(dev < WAVES * WAVE, "the host was never tried");
}

Test(lib_placement, where_overrides_the_models) {
    dagr_kernel_t k = {.name = "slow_host", .cpu = slow_host};
    (void)run_waves(&k, DAGR_WHERE_ANY); /* the models now favour the device */
    cr_expect_eq(run_waves(&k, DAGR_WHERE_CPU), 0);
    dagr_kernel_t s = {.name = "slow_device", .cpu = slow_device};
    (void)run_waves(&s, DAGR_WHERE_ANY); /* and the host for this one */
    cr_expect_eq(run_waves(&s, DAGR_WHERE_DEVICE), WAVES * WAVE);
}

/* Prefetch (lib/device.c): while a device works on its first tasks, the inputs of the next ones
 * in its queue start moving in. Host tasks make the host copies newer; then device tasks read
 * them, each a millisecond, so that a queue builds up. */
static dagr_task_result_t bump_slowly(const dagr_task_view_t *t) {
    sleep_us(1000);
    ((char *)t->buf[0])[0]++;
    return DAGR_TASK_DONE;
}
Test(lib_placement, inputs_of_queued_tasks_are_prefetched) {
    dagr_kernel_t k = {.name = "bump_slowly", .cpu = bump_slowly};
    dagr_device_stats_t before, after;
    cr_assert_eq(dagr_device_stats(ctx, 0, &before), DAGR_OK);
    dagr_task_opts_t host, dev;
    dagr_task_opts_init(&host);
    dagr_task_opts_init(&dev);
    host.where = DAGR_WHERE_CPU;
    dev.where = DAGR_WHERE_DEVICE;
    for (int i = 0; i < WAVE; i++) {
        dagr_access_t acc[1] = {{tile[i], DAGR_RW}};
        cr_assert_eq(dagr_spawn(ctx, &k, NULL, 0, 1, acc, &host), DAGR_OK);
    }
    cr_assert_eq(dagr_wait_all(ctx), DAGR_OK, "%s", dagr_last_error());
    for (int i = 0; i < WAVE; i++) {
        dagr_access_t acc[1] = {{tile[i], DAGR_RW}};
        cr_assert_eq(dagr_spawn(ctx, &k, NULL, 0, 1, acc, &dev), DAGR_OK);
    }
    cr_assert_eq(dagr_wait_all(ctx), DAGR_OK, "%s", dagr_last_error());
    for (int i = 0; i < WAVE; i++) {
        char v[64] = {0};
        cr_assert_eq(dagr_fetch(tile[i], v, 0), DAGR_OK, "%s", dagr_last_error());
        cr_assert_eq(v[0], 2, "tile %d: %d updates, expected 2", i, v[0]);
    }
    cr_assert_eq(dagr_device_stats(ctx, 0, &after), DAGR_OK);
    cr_expect_eq(after.tasks - before.tasks, WAVE);
    cr_expect_gt(after.prefetches - before.prefetches, 0, "nothing was prefetched");
    cr_expect_eq(after.copies_in - before.copies_in, WAVE, "each tile copied in once");
}
