/* Seeing what dagr did: DAGR_TRACE, DAGR_DOT, DAGR_SUMMARY, DAGR_PROGRESS and the dagr-trace
 * tool, on tests/mpi/traced.c (a known number of tasks of two kernels, with transfers) and
 * tests/mpi/traced_dev.c (tasks on test devices, for the device copy rows).
 *
 * The trace is checked with a real JSON parser (tests/lib/check_trace.py: task events per
 * rank, no overlap on a worker), the DOT file is rendered with Graphviz, the summary's task
 * counts are compared with the tasks inserted, and the tool must turn the trace into a PNG. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mpirun.h"

#ifndef SOURCE_ROOT
#error "SOURCE_ROOT must be defined by the build"
#endif

static bool is_png(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return false;
    unsigned char sig[8] = {0};
    size_t got = fread(sig, 1, 8, f);
    fclose(f);
    return got == 8 && !memcmp(sig, "\x89PNG\r\n\x1a\n", 8);
}

static long count_substr(const char *s, const char *what) {
    long n = 0;
    for (const char *p = s; (p = strstr(p, what)); p += strlen(what))
        n++;
    return n;
}

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    size_t got = fread(s, 1, (size_t)n, f);
    s[got] = 0;
    fclose(f);
    return s;
}

/* The full check at `nranks` ranks with `threads` workers each and `steps` steps. */
static void traced_run(int nranks, int threads, int steps) {
    char dir[64], env[512], cmd[1024], out[1 << 16] = "";
    mpirun_tmpdir(dir, sizeof dir, "trace-test");
    snprintf(env, sizeof env,
             "DAGR_THREADS=%d DAGR_TRACE=%s/t.json DAGR_DOT=%s/t.dot DAGR_SUMMARY=1 "
             "DAGR_PROGRESS=1",
             threads, dir, dir);
    char args[32];
    snprintf(args, sizeof args, "%d", steps);
    mpirun_t r;
    mpirun(&r, nranks, env, 120, "traced", args);
    mpirun_assert_clean(&r);
    mpirun_assert_result(&r, "traced", 1);
    long local = 2L * steps, inserted = 2L * steps * nranks;

    /* The trace: valid JSON, the right task events per rank, no overlap on a worker. */
    char tasks[256] = "";
    for (int i = 0; i < nranks; i++)
        snprintf(tasks + strlen(tasks), sizeof tasks - strlen(tasks), "%s%ld", i ? "," : "", local);
    snprintf(cmd, sizeof cmd, "python3 %s/tests/lib/check_trace.py %s/t.json --tasks %s 2>&1",
             SOURCE_ROOT, dir, tasks);
    int rc = mpirun_sh(cmd, out, sizeof out);
    cr_assert_eq(rc, 0, "%s\n%s", cmd, out);

    /* The summary: per kernel and in all, the counts are the tasks inserted. */
    char want[128];
    snprintf(want, sizeof want, "tasks run %ld of %ld inserted", inserted, inserted);
    cr_assert_not_null(strstr(r.output, want), "summary lacks '%s'\n%s", want, mpirun_tail(&r));
    const char *a = strstr(r.output, "\nalpha "), *b = strstr(r.output, "\nbeta ");
    cr_assert(a && b, "summary lacks the kernels\n%s", mpirun_tail(&r));
    long na = 0, nb = 0;
    double secs = 0, mean = 0, gflops = 0;
    cr_assert_eq(sscanf(a + 1, "alpha %ld %lf %lf %lf", &na, &secs, &mean, &gflops), 4,
                 "alpha line without GFLOP/s: %.100s", a + 1);
    cr_assert_eq(sscanf(b + 1, "beta %ld", &nb), 1);
    cr_assert_eq(na, steps * nranks, "alpha count %ld", na);
    cr_assert_eq(nb, steps * nranks, "beta count %ld", nb);
    cr_assert(mean >= 40.0, "alpha spins 50 us but its mean is %g us", mean);
    cr_assert(gflops > 0, "alpha declares flops but GFLOP/s is %g", gflops);
    cr_assert_not_null(strstr(r.output, "critical path: "), "no critical path\n%s",
                       mpirun_tail(&r));

    /* The progress line's final count. */
    snprintf(want, sizeof want, "dagr: %ld / %ld tasks done (100.0 %%)", inserted, inserted);
    cr_assert_not_null(strstr(r.output, want), "no '%s'\n%s", want, mpirun_tail(&r));

    /* The DOT file: one box per task, and Graphviz renders it. */
    snprintf(cmd, sizeof cmd, "%s/t.dot", dir);
    char *dot = slurp(cmd);
    cr_assert_eq(count_substr(dot, "shape=box"), inserted, "DOT has %ld task nodes",
                 count_substr(dot, "shape=box"));
    if (nranks > 1) cr_assert(count_substr(dot, "style=dashed") > 0, "DOT has no cross-rank edge");
    free(dot);
    out[0] = 0;
    snprintf(cmd, sizeof cmd, "dot -Tpng %s/t.dot -o %s/graph.png 2>&1", dir, dir);
    rc = mpirun_sh(cmd, out, sizeof out);
    cr_assert_eq(rc, 0, "%s\n%s", cmd, out);
    snprintf(cmd, sizeof cmd, "%s/graph.png", dir);
    cr_assert(is_png(cmd), "dot wrote no PNG");

    /* The tool: the same counts, and a PNG. */
    out[0] = 0;
    snprintf(cmd, sizeof cmd, "python3 %s/tools/dagr-trace %s/t.json --png %s/gantt.png 2>&1",
             SOURCE_ROOT, dir, dir);
    rc = mpirun_sh(cmd, out, sizeof out);
    cr_assert_eq(rc, 0, "%s\n%s", cmd, out);
    snprintf(want, sizeof want, "tasks run %ld of %ld inserted", inserted, inserted);
    cr_assert_not_null(strstr(out, want), "tool output lacks '%s'\n%s", want, out);
    snprintf(cmd, sizeof cmd, "%s/gantt.png", dir);
    cr_assert(is_png(cmd), "dagr-trace wrote no PNG");
    struct stat st;
    cr_assert(stat(cmd, &st) == 0 && st.st_size > 500, "the PNG is empty");

    mpirun_free(&r);
    mpirun_rmdir(dir);
}

Test(lib_trace, two_ranks, .timeout = 300) {
    traced_run(2, 2, 20);
}
Test(lib_trace, one_rank, .timeout = 300) {
    traced_run(1, 2, 20);
}
Test(lib_trace, three_ranks, .timeout = 300) {
    traced_run(3, 1, 10);
}

/* A graph above the DOT limit is summarised, with a note, instead of drawn whole. */
Test(lib_trace, dot_limit, .timeout = 300) {
    char dir[64], env[256], path[128];
    mpirun_tmpdir(dir, sizeof dir, "trace-test");
    snprintf(env, sizeof env, "DAGR_THREADS=1 DAGR_DOT=%s/big.dot", dir);
    mpirun_t r;
    mpirun(&r, 2, env, 120, "traced", "400 0"); /* 1600 tasks + transfers */
    mpirun_assert_clean(&r);
    snprintf(path, sizeof path, "%s/big.dot", dir);
    char *dot = slurp(path);
    cr_assert_not_null(strstr(dot, "more than the limit of 1000"), "no note in the DOT file");
    cr_assert_not_null(strstr(dot, "  more [shape=note"), "no summary node");
    long nodes = count_substr(dot, "shape=box") + count_substr(dot, "shape=cds");
    cr_assert_eq(nodes, 1000, "%ld nodes drawn", nodes);
    free(dot);
    mpirun_free(&r);
    mpirun_rmdir(dir);
}

/* A full buffer stops recording, says so, and the file stays valid; the summary still counts
 * every task (those recorded are summed from their events at finalize, the dropped ones on
 * the spot), with the time of the 50 us bodies and their flops. */
Test(lib_trace, event_cap, .timeout = 300) {
    char dir[64], env[256], cmd[512], out[8192] = "";
    mpirun_tmpdir(dir, sizeof dir, "trace-test");
    snprintf(env, sizeof env,
             "DAGR_THREADS=1 DAGR_TRACE=%s/t.json DAGR_TRACE_EVENTS=30 DAGR_SUMMARY=1", dir);
    mpirun_t r;
    mpirun(&r, 2, env, 120, "traced", "40");
    mpirun_assert_clean(&r);
    cr_assert_not_null(strstr(r.output, "the trace is full"), "no warning\n%s", mpirun_tail(&r));
    cr_assert_not_null(strstr(r.output, "tasks run 160 of 160 inserted"), "summary\n%s",
                       mpirun_tail(&r));
    const char *a = strstr(r.output, "\nalpha ");
    long na = 0;
    double secs = 0, mean = 0, gflops = 0;
    cr_assert(a && sscanf(a + 1, "alpha %ld %lf %lf %lf", &na, &secs, &mean, &gflops) == 4,
              "no alpha line with GFLOP/s\n%s", mpirun_tail(&r));
    cr_assert_eq(na, 80, "alpha count %ld", na);
    cr_assert(mean >= 40.0 && gflops > 0, "alpha mean %g us, %g GFLOP/s", mean, gflops);
    snprintf(cmd, sizeof cmd,
             "python3 -c \"import json,sys; d=json.load(open('%s/t.json')); "
             "o=d['otherData']; sys.exit(0 if all(x>0 for x in o['dropped_events']) and "
             "sum(e.get('cat')=='task' for e in d['traceEvents'])<=2*30 else 1)\" 2>&1",
             dir);
    int rc = mpirun_sh(cmd, out, sizeof out);
    cr_assert_eq(rc, 0, "%s\n%s", cmd, out);
    mpirun_free(&r);
    mpirun_rmdir(dir);
}

/* Separate clocks (the multi-node path): ranks 1 and 2 read their clock 5 s late and count
 * themselves on another node, so the ping-pong alignment runs and must take the 5 s out;
 * the ranks work in step, so their first and last tasks must line up with rank 0's. */
Test(lib_trace, clocks_aligned_across_nodes, .timeout = 300) {
    char dir[64], env[256], cmd[1024], out[1 << 14] = "";
    mpirun_tmpdir(dir, sizeof dir, "trace-test");
    snprintf(env, sizeof env, "DAGR_TRACE=%s/t.json DAGR_TRACE_TEST_SKEW_NS=5000000000", dir);
    mpirun_t r;
    mpirun(&r, 3, env, 120, "traced", "100 200");
    cr_assert_eq(r.status, 0, "the scenario failed\n%s", mpirun_tail(&r));
    mpirun_free(&r);
    snprintf(cmd, sizeof cmd,
             "python3 %s/tests/lib/check_trace.py %s/t.json --tasks 200,200,200 "
             "--aligned-within 100 2>&1",
             SOURCE_ROOT, dir);
    int rc = mpirun_sh(cmd, out, sizeof out);
    cr_assert_eq(rc, 0, "%s\n%s", cmd, out);
    mpirun_rmdir(dir);
}

/* DAGR_PROGRESS=tty: under mpiexec rank 0's stderr is a pipe, so the in-place line is asked
 * for explicitly. 2 x 600 tasks of 1 ms per rank run for about 1.3 s: at least two refreshes
 * at most every 0.5 s, each a carriage return, the line and an erase-to-end, then the exact
 * final line. */
Test(lib_trace, progress_in_place, .timeout = 120) {
    mpirun_t r;
    mpirun(&r, 2, "DAGR_PROGRESS=tty", 60, "traced", "600 1000");
    cr_assert_eq(r.status, 0, "the scenario failed\n%s", mpirun_tail(&r));
    long n = count_substr(r.output, "\rdagr: "), erase = count_substr(r.output, "\033[K");
    cr_assert(n >= 3, "%ld in-place lines (want >= 2 refreshes + the final one)\n%s", n,
              mpirun_tail(&r));
    cr_assert_eq(erase, n, "%ld lines but %ld erase-to-end sequences", n, erase);
    cr_assert_not_null(strstr(r.output, "\rdagr: 2400 / 2400 tasks done (100.0 %)"),
                       "no exact final line\n%s", mpirun_tail(&r));
    cr_assert_not_null(strstr(r.output, "finished\033[K\n"),
                       "the final line does not end the line");
    mpirun_free(&r);
}

/* DAGR_PROGRESS=log (and =1 without a terminal): plain lines every 5 s. 2 x 1400 tasks of
 * 2 ms per rank run for about 5.7 s: one line on the way, then the final one; no '\r'. */
Test(lib_trace, progress_log_lines, .timeout = 120) {
    mpirun_t r;
    mpirun(&r, 2, "DAGR_PROGRESS=log", 60, "traced", "1400 2000");
    cr_assert_eq(r.status, 0, "the scenario failed\n%s", mpirun_tail(&r));
    long lines = count_substr(r.output, "dagr: "), fin = count_substr(r.output, ", finished\n");
    cr_assert(lines >= 2, "%ld progress lines (want one on the way and the final one)\n%s", lines,
              mpirun_tail(&r));
    cr_assert_eq(fin, 1, "%ld final lines", fin);
    cr_assert_null(strchr(r.output, '\r'), "a carriage return in log mode");
    mpirun_free(&r);
}

/* Device copies (tests/mpi/traced_dev.c, one test device per rank): each device's copy thread
 * has its own row, "device 0 copies", holding "copy in" and "copy out" events whose bytes add
 * up to what dagr_device_stats counted, and the trace still validates; the summary and the tool
 * print the same byte counts on a line per device. */
static void device_copies(int nranks, int steps) {
    char dir[64], env[256], cmd[1024], out[1 << 14] = "", args[16];
    mpirun_tmpdir(dir, sizeof dir, "trace-test");
    snprintf(env, sizeof env,
             "DAGR_THREADS=1 DAGR_TEST_DEVICES=1 DAGR_TRACE=%s/t.json DAGR_SUMMARY=1", dir);
    snprintf(args, sizeof args, "%d", steps);
    mpirun_t r;
    mpirun(&r, nranks, env, 60, "traced_dev", args);
    mpirun_assert_clean(&r);
    mpirun_assert_result(&r, "traced_dev", 1);
    char tasks[128] = "", copies[512] = "", lines[4][128];
    for (int rank = 0; rank < nranks; rank++) {
        const char *line = mpirun_line(&r, rank, "RESULT traced_dev", 0);
        long local = 0, in = 0, outb = 0;
        cr_assert(line && mpirun_value(line, "local", &local) &&
                      mpirun_value(line, "bytes_in", &in) && mpirun_value(line, "bytes_out", &outb),
                  "%s", mpirun_tail(&r));
        cr_assert(in > 0 && outb > 0, "rank %d's device copied nothing: %.200s", rank, line);
        snprintf(tasks + strlen(tasks), sizeof tasks - strlen(tasks), "%s%ld", rank ? "," : "",
                 local);
        snprintf(copies + strlen(copies), sizeof copies - strlen(copies), " --copies %d:0=%ld:%ld",
                 rank, in, outb);
        snprintf(lines[rank], sizeof lines[rank], "  device 0 copies: %.3f MB in, %.3f MB out, ",
                 (double)in * 1e-6, (double)outb * 1e-6);
    }
    /* The summary: dev_mix, which ran on both sides, has a row per class of worker; each
     * rank's device has its busy share. */
    const char *mix = strstr(r.output, "dev_mix");
    cr_assert(mix && strstr(mix, "  on host workers") && strstr(mix, "  on test devices"),
              "the summary has no per-class rows for dev_mix:\n%s", mpirun_tail(&r));
    cr_assert(strstr(r.output, "  device 0 (test device): busy "),
              "the summary has no device busy share:\n%s", mpirun_tail(&r));
    /* Rank r's device line follows rank r's row, in rank order. */
    const char *p = r.output;
    for (int rank = 0; rank < nranks; rank++) {
        p = strstr(p, lines[rank]);
        cr_assert_not_null(p, "summary lacks rank %d's '%s'\n%s", rank, lines[rank],
                           mpirun_tail(&r));
        p++;
    }
    mpirun_free(&r);

    snprintf(cmd, sizeof cmd, "python3 %s/tests/lib/check_trace.py %s/t.json --tasks %s%s 2>&1",
             SOURCE_ROOT, dir, tasks, copies);
    int rc = mpirun_sh(cmd, out, sizeof out);
    cr_assert_eq(rc, 0, "%s\n%s", cmd, out);

    out[0] = 0;
    snprintf(cmd, sizeof cmd, "python3 %s/tools/dagr-trace %s/t.json --png %s/gantt.png 2>&1",
             SOURCE_ROOT, dir, dir);
    rc = mpirun_sh(cmd, out, sizeof out);
    cr_assert_eq(rc, 0, "%s\n%s", cmd, out);
    for (int rank = 0; rank < nranks; rank++)
        cr_assert_not_null(strstr(out, lines[rank]), "tool output lacks '%s'\n%s", lines[rank],
                           out);
    snprintf(cmd, sizeof cmd, "%s/gantt.png", dir);
    cr_assert(is_png(cmd), "dagr-trace wrote no PNG");
    mpirun_rmdir(dir);
}

Test(lib_trace, device_copies_two_ranks, .timeout = 120) {
    device_copies(2, 5);
}
Test(lib_trace, device_copies_one_rank, .timeout = 120) {
    device_copies(1, 5);
}

/* A trace path that cannot be written fails dagr_init on every rank. */
Test(lib_trace, unwritable_path, .timeout = 120) {
    mpirun_t r;
    mpirun(&r, 2, "DAGR_TRACE=/nonexistent-dir/t.json", 60, "traced", "1");
    cr_assert_neq(r.status, 0, "the scenario succeeded");
    /* Both ranks fail in dagr_init, with rank 0's message. */
    long n = count_substr(r.output, "DAGR_ERR_IO");
    cr_assert_eq(n, 2, "DAGR_ERR_IO reported %ld times\n%s", n, mpirun_tail(&r));
    n = count_substr(r.output, "cannot open the trace file '/nonexistent-dir/t.json' (DAGR_TRACE)");
    cr_assert_eq(n, 2, "the message appears %ld times\n%s", n, mpirun_tail(&r));
    mpirun_free(&r);
}
