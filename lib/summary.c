/* The summary printed at finalize (DAGR_SUMMARY=1): per kernel, per rank (with its file I/O,
 * memory and devices' copies), and the critical path trace_write.c computed. */
#include "lib_impl.h"

#include <inttypes.h>

static void kstat_row(FILE *f, const char *name, const trace_kstat_t *x) {
    double t = (double)x->ns * 1e-9;
    double mean = x->count ? t / (double)x->count * 1e6 : 0.0;
    fprintf(f, "%-28s %10" PRIu64 " %12.6f %12.3f ", name, x->count, t, mean);
    if (x->flops > 0 && t > 0)
        fprintf(f, "%10.3f\n", x->flops / t * 1e-9);
    else
        fprintf(f, "%10s\n", "-");
}

void summary_print(FILE *f, const trace_kstat_t *ks, const char *const *names, uint32_t nk,
                   const trace_rankstat_t *rs, int nranks, uint64_t inserted, int64_t cp_ns,
                   bool cp_partial) {
    uint64_t run = 0;
    for (int r = 0; r < nranks; r++)
        run += rs[r].tasks;
    double wall = (double)rs[0].wall_ns * 1e-9;
    fprintf(f,
            "dagr summary: %d ranks, wall %.3f s, tasks run %" PRIu64 " of %" PRIu64 " inserted\n",
            nranks, wall, run, inserted);
    fprintf(f, "%-28s %10s %12s %12s %10s\n", "kernel", "tasks", "total s", "mean us", "GFLOP/s");
    static const char *const where[PM_CLASSES] = {"  on host workers", "  on test devices",
                                                  "  on GPUs"};
    for (uint32_t k = 0; k < nk; k++) {
        trace_kstat_t all = {0, 0, 0.0};
        int classes = 0;
        for (int c = 0; c < PM_CLASSES; c++) {
            const trace_kstat_t *x = &ks[(size_t)c * nk + k];
            all.count += x->count, all.ns += x->ns, all.flops += x->flops;
            classes += x->count || x->ns;
        }
        if (!classes) continue;
        kstat_row(f, names[k], &all);
        /* Where more than one class ran it, each one's figures (GFLOP/s per device class). */
        for (int c = 0; classes > 1 && c < PM_CLASSES; c++)
            if (ks[(size_t)c * nk + k].count) kstat_row(f, where[c], &ks[(size_t)c * nk + k]);
    }
    fprintf(f, "%-6s %8s %10s %8s %8s %12s %12s\n", "rank", "threads", "tasks", "busy %", "idle %",
            "sent MB", "received MB");
    for (int r = 0; r < nranks; r++) {
        const trace_rankstat_t *x = &rs[r];
        double cap = (double)x->wall_ns * (double)(x->threads > 0 ? x->threads : 1);
        double busy = cap > 0 ? 100.0 * (double)x->busy_ns / cap : 0.0;
        fprintf(f, "%-6d %8" PRId64 " %10" PRIu64 " %8.1f %8.1f %12.3f %12.3f\n", r, x->threads,
                x->tasks, busy, 100.0 - busy, (double)x->bytes_sent * 1e-6,
                (double)x->bytes_received * 1e-6);
        bool io = false;
        for (int k = 0; k < TRACE_IO_KINDS; k++) {
            if (!x->io_bytes[k] && !x->io_ns[k]) continue;
            fprintf(f, "%s%s %.3f MB in %.6f s",
                    io ? ", " : "  file I/O: ", trace_io_name((trace_io_kind_t)k),
                    (double)x->io_bytes[k] * 1e-6, (double)x->io_ns[k] * 1e-9);
            io = true;
        }
        if (io) fputc('\n', f);
        for (int d = 0; d < x->devices && d < TRACE_MAX_DEVICES; d++) {
            fprintf(f, "  device %d (%s): busy %.1f %% of the wall time\n", d,
                    x->dev_gpu[d] ? "GPU" : "test device",
                    x->wall_ns > 0 ? 100.0 * (double)x->dev_busy_ns[d] / (double)x->wall_ns : 0.0);
            fprintf(f, "  device %d copies: %.3f MB in, %.3f MB out, %.6f s\n", d,
                    (double)x->copy_in[d] * 1e-6, (double)x->copy_out[d] * 1e-6,
                    (double)x->copy_ns[d] * 1e-9);
        }
        if (x->mem_limit)
            fprintf(f, "  memory: peak %.3f MB of data under a %.3f MB limit%s\n",
                    (double)x->mem_peak * 1e-6, (double)x->mem_limit * 1e-6,
                    x->mem_over ? " (went over it: the data in use did not fit)" : "");
        if (x->dropped)
            fprintf(f, "  (rank %d dropped %" PRIu64 " trace events: DAGR_TRACE_EVENTS)\n", r,
                    x->dropped);
    }
    if (cp_ns >= 0)
        fprintf(f,
                "critical path: %.6f s of %.3f s wall (%.1f %%)%s: the longest dependency "
                "chain, summing task and send times\n",
                (double)cp_ns * 1e-9, wall, wall > 0 ? 100.0 * (double)cp_ns * 1e-9 / wall : 0.0,
                cp_partial ? " over the recorded part of a truncated graph" : "");
    fflush(f);
}
