/* device_stream: the test device's copies against memcpy, and whether they overlap the kernels.
 *
 * One rank, one test device whose memory holds a quarter of the tiles, so that every task's
 * tile must be copied in: `tiles` tiles of `tile` bytes, and `rounds` sweeps of one task per
 * tile on the device (opts.where = DAGR_WHERE_DEVICE) that reads its tile `passes` times
 * (a sum) and writes 64 bytes. copy_gbps: the bytes the device copied (both ways) over the
 * time its copies took; stream_gbps: tile bytes copied in over the sweeps' time. In the same
 * run: memcpy of as many bytes (the reference for the copies) and the kernel alone on the host
 * tiles. Without overlap the sweeps would take the copies' time plus the kernels'; `overlap`
 * is that sum over the time measured (at most 1: none; up to 2 when copies hide entirely
 * behind kernels as long).
 *
 *   build/benchmarks/device_stream [--tile BYTES] [--tiles K] [--rounds R] [--passes P]
 *       [--delay US]
 *
 * DAGR_TEST_DEVICES, DAGR_TEST_DEVICE_MEMORY and DAGR_THREADS are set here unless the
 * environment sets them. Prints one JSON object. */
#include <dagr/dagr.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct args {
    int passes;
} args_t;

static double sum_tile(const double *x, size_t n, int passes) {
    double s = 0;
    for (int p = 0; p < passes; p++)
        for (size_t i = 0; i < n; i++)
            s += x[i] * (double)(p + 1);
    return s;
}

static dagr_task_result_t k_sum(const dagr_task_view_t *t) {
    const args_t *a = t->args;
    double *out = t->buf[1];
    out[0] = sum_tile(t->buf[0], t->bytes[0] / sizeof(double), a->passes);
    out[1] = (double)t->device;
    return DAGR_TASK_DONE;
}

static dagr_task_result_t k_fill(const dagr_task_view_t *t) {
    double *x = t->buf[0];
    for (size_t i = 0; i < t->bytes[0] / sizeof(double); i++)
        x[i] = (double)(i % 1000) * 1e-3;
    return DAGR_TASK_DONE;
}

static const dagr_kernel_t sum_kernel = {.name = "stream_sum", .cpu = k_sum};
static const dagr_kernel_t fill_kernel = {.name = "stream_fill", .cpu = k_fill};

int main(int argc, char **argv) {
    size_t tile = (size_t)4 << 20;
    int tiles = 32, rounds = 3, passes = 4;
    const char *delay = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--tile"))
            tile = strtoull(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--tiles"))
            tiles = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--rounds"))
            rounds = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--passes"))
            passes = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--delay"))
            delay = argv[i + 1];
        else {
            fprintf(stderr, "device_stream: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (tiles < 4 || rounds < 1 || passes < 1 || tile < 64) {
        fprintf(stderr, "device_stream: need --tiles >= 4, --rounds >= 1, --passes >= 1, "
                        "--tile >= 64\n");
        return 2;
    }
    char mem[64];
    snprintf(mem, sizeof mem, "%zu", tile * (size_t)tiles / 4);
    setenv("DAGR_TEST_DEVICES", "1", 0);
    setenv("DAGR_TEST_DEVICE_MEMORY", mem, 0);
    setenv("DAGR_THREADS", "1", 0);
    if (delay) setenv("DAGR_TEST_DEVICE_DELAY", delay, 1);

    dagr_ctx_t *ctx;
    if (dagr_init(&argc, &argv, NULL, &ctx) != DAGR_OK) {
        fprintf(stderr, "device_stream: %s\n", dagr_last_error());
        return 1;
    }
    if (dagr_devices(ctx) < 1 || dagr_size(ctx) != 1) {
        fprintf(stderr, "device_stream: run on one rank with at least one test device\n");
        dagr_finalize(&ctx);
        return 2;
    }
    dagr_data_t **x = calloc((size_t)tiles, sizeof *x), **r = calloc((size_t)tiles, sizeof *r);
    dagr_task_opts_t cpu, dev;
    dagr_task_opts_init(&cpu);
    dagr_task_opts_init(&dev);
    cpu.where = DAGR_WHERE_CPU;
    dev.where = DAGR_WHERE_DEVICE;
    for (int i = 0; i < tiles; i++) {
        dagr_data_create(ctx, tile, 0, &x[i]);
        dagr_data_create(ctx, 64, 0, &r[i]);
        dagr_spawn(ctx, &fill_kernel, NULL, 0, 1, &(dagr_access_t){x[i], DAGR_WRITE}, &cpu);
    }
    dagr_wait_all(ctx);
    dagr_device_stats_t s0, s1;
    dagr_device_stats(ctx, 0, &s0);
    args_t a = {passes};
    double t0 = now();
    for (int k = 0; k < rounds; k++)
        for (int i = 0; i < tiles; i++) {
            dagr_access_t acc[2] = {{x[i], DAGR_READ}, {r[i], DAGR_WRITE}};
            dagr_spawn(ctx, &sum_kernel, &a, sizeof a, 2, acc, &dev);
        }
    dagr_status_t st = dagr_wait_all(ctx);
    double elapsed = now() - t0;
    dagr_device_stats(ctx, 0, &s1);
    double check[8];
    dagr_fetch(r[0], check, 0);

    /* The references: memcpy of as many bytes, from `tiles` source tiles of our own to a
     * quarter as many destinations reused in turn (the device's pattern: cold sources, a
     * budget's worth of destination blocks), and the kernel alone on one tile. */
    int ndst = tiles / 4;
    double **src = calloc((size_t)tiles, sizeof *src), **dst = calloc((size_t)ndst, sizeof *dst);
    for (int i = 0; i < tiles; i++) {
        src[i] = malloc(tile);
        dagr_fetch(x[i], src[i], 0);
    }
    for (int i = 0; i < ndst; i++) {
        dst[i] = malloc(tile);
        memcpy(dst[i], src[i], tile); /* fault the pages in, as the device's pool has */
    }
    double m0 = now();
    for (int k = 0; k < rounds * tiles; k++)
        memcpy(dst[k % ndst], src[k % tiles], tile);
    double memcpy_s = now() - m0;
    volatile double sink = 0;
    double k0 = now();
    for (int k = 0; k < rounds * tiles; k++)
        sink += sum_tile(src[k % tiles], tile / sizeof(double), passes);
    double kernel_s = now() - k0;
    (void)sink;

    uint64_t bytes_in = s1.bytes_in - s0.bytes_in, copies_in = s1.copies_in - s0.copies_in;
    uint64_t bytes_all = bytes_in + (s1.bytes_out - s0.bytes_out);
    double copy_s = s1.copy_seconds - s0.copy_seconds;
    double moved = (double)tile * rounds * tiles;
    double memcpy_gbps = moved / memcpy_s / 1e9;
    /* The device's copies as long as they took, plus the kernels: the time with no overlap. */
    double serial = copy_s + kernel_s;
    printf("{\"bench\":\"device_stream\",\"tile_bytes\":%zu,\"tiles\":%d,\"rounds\":%d,"
           "\"passes\":%d,\"device_memory\":%zu,\"status\":\"%s\",\"elapsed_s\":%.6f,"
           "\"tasks_on_device\":%llu,\"copies_in\":%llu,\"bytes_in\":%llu,\"evictions\":%llu,"
           "\"stream_gbps\":%.3f,\"copy_gbps\":%.3f,\"memcpy_gbps\":%.3f,"
           "\"ratio_copy_memcpy\":%.3f,"
           "\"kernel_s\":%.6f,\"serial_s\":%.6f,\"overlap\":%.3f,\"ran_on_device\":%d}\n",
           tile, tiles, rounds, passes, s1.memory, dagr_status_str(st), elapsed,
           (unsigned long long)(s1.tasks - s0.tasks), (unsigned long long)copies_in,
           (unsigned long long)bytes_in, (unsigned long long)(s1.evictions - s0.evictions),
           (double)bytes_in / elapsed / 1e9, (double)bytes_all / copy_s / 1e9, memcpy_gbps,
           (double)bytes_all / copy_s / 1e9 / memcpy_gbps, kernel_s, serial, serial / elapsed,
           (int)check[1]);
    for (int i = 0; i < tiles; i++)
        free(src[i]);
    for (int i = 0; i < ndst; i++)
        free(dst[i]);
    free(src);
    free(dst);
    for (int i = 0; i < tiles; i++) {
        dagr_data_destroy(&x[i]);
        dagr_data_destroy(&r[i]);
    }
    free(x);
    free(r);
    dagr_finalize(&ctx);
    return st == DAGR_OK ? 0 : 1;
}
