/* dagr_checkpoint / dagr_resume scenario.
 *
 * Usage: darray_checkpoint run P Q N NB DIR STEPS EVERY CRASH_AT [async]
 *
 * A small simulation whose state is a double DArray U (N x N), a float DArray F (N x N/2+1),
 * the step counter S (a 1x1 double DArray) and a history H (4 doubles attached to the last
 * rank's memory), in NB x NB tiles on a P x Q grid. After creating and initialising the state
 * it calls dagr_resume(DIR/run.ckpt) and prints "RESUMED step=K" (K read from S), then runs
 * steps K .. STEPS-1: each step scales and shifts U and F by amounts that depend on the step
 * (so a step applied twice or skipped changes the result), adds the step to H in a task, and
 * adds 1 to S; after every EVERY-th step it calls dagr_checkpoint without waiting first. With
 * CRASH_AT > 0, after that step it writes a torn "run.ckpt.tmp" (a checkpoint that died while
 * being written) and every rank exits with status 42 without finalizing. At the end it prints
 * RESULT final ok step=STEPS hash=<64-bit hash of U, F, S and H>: a run that crashed and was
 * started again (on any grid) must print the hash of one that ran straight through.
 * With "async" the checkpoints are dagr_checkpoint_async, and every step asks
 * dagr_stop_requested (false: no signal comes); a CRASH_AT that is a
 * checkpoint step then exits once the checkpoint's file exists, while it writes (a slow task
 * holds one of its writes back), without a torn file of its own: the run started again must
 * resume at the checkpoint before.
 *
 * Usage: darray_checkpoint errors P Q N NB DIR
 *
 * Every error with its exact status, and that nothing is lost or changed by one: an empty
 * checkpoint (no live data) resumed into a program that has arrays, bad arguments, files that are
 * not checkpoints (left as they were), a checkpoint that does not hold the live data (another
 * count, another shape: nothing restored), damaged ones (a byte flipped in the data, the file cut
 * short, another format), a task failing before a checkpoint (the previous checkpoint stays and
 * still restores), a stale torn .tmp; and that resume restores the checkpointed contents exactly.
 * Prints RESULT ckpt_errors ok.
 *
 * Usage: darray_checkpoint direct P Q N NB DIR EXPECT
 *
 * An asynchronous checkpoint of a double and a float DArray (N x N and N x N/2+1 in NB x NB
 * tiles: with small tiles, extents that start and end anywhere in the file's 4 KiB blocks;
 * with big ones, tiles written from where they lie), overwritten right after the call:
 * resumed, they hold what they held at the call. EXPECT says how the
 * file system of DIR takes the writes: "direct" (O_DIRECT: the thread writes /data's whole
 * file blocks past the page cache, so that at most a fifth of /data's pages are cached after
 * the checkpoint), "cached" (refused, or DAGR_CKPT_DIRECT=0: every byte went through HDF5
 * and the page cache) or "any" (tmpfs, whose pages are the file). Prints RESULT ckpt_direct ok. */
#include "scenario.h"

#include <hdf5.h>
#include <stdarg.h>
#include <sys/mman.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static dagr_ctx_t *ctx;
static int rank, nranks;
static int P, Q;
static int64_t N, NB;
static const char *dir;

static void path_of(char *buf, size_t size, const char *name) {
    snprintf(buf, size, "%s/%s", dir, name);
}

/* Runs a shell command on rank 0 and waits there; returns its status on every rank. */
static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...) {
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int rc = rank == 0 ? system(cmd) : 0;
    MPI_Bcast(&rc, 1, MPI_INT, 0, dagr_comm(ctx));
    return rc;
}

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

/* A's raw contents on every rank, column-major with ld = sc_ld(m) (free it). */
static void *gather_raw(const dagr_darray_t *A, size_t *bytes) {
    int64_t m = dagr_darray_rows(A), n = dagr_darray_cols(A);
    *bytes = (size_t)(sc_ld(m) * n) * dagr_dtype_size(dagr_darray_dtype(A));
    void *x = calloc(*bytes ? *bytes : 1, 1);
    SC_TRY(dagr_darray_gather(A, x, sc_ld(m), -1));
    return x;
}

static uint64_t hash_array(uint64_t h, const dagr_darray_t *A) {
    size_t bytes;
    void *x = gather_raw(A, &bytes);
    h = fnv(h, x, bytes);
    free(x);
    return h;
}

/* ---- run ---- */

typedef struct hist_args {
    int64_t step;
    bool slow; /* sleeps 2 s */
} hist_args_t;

static dagr_task_result_t k_hist(const dagr_task_view_t *t) {
    const hist_args_t *a = t->args;
    double *h = t->buf[0];
    h[a->step % 4] += (double)(a->step + 1);
    if (a->slow) usleep(2000 * 1000); /* holds the checkpoint's write of H back */
    return DAGR_TASK_DONE;
}
static const dagr_kernel_t hist_kernel = {.name = "hist", .cpu = k_hist};

static int run(int64_t steps, int64_t every, int64_t crash_at, bool async) {
    dagr_grid_t g = dagr_grid_2d(P, Q);
    dagr_darray_t *U = NULL, *F = NULL, *S = NULL;
    SC_TRY(dagr_darray_create(ctx, DAGR_DOUBLE, N, N, NB, NB, g, &U));
    SC_TRY(dagr_darray_create(ctx, DAGR_FLOAT, N, N / 2 + 1, NB, NB, g, &F));
    SC_TRY(dagr_darray_create(ctx, DAGR_DOUBLE, 1, 1, 1, 1, g, &S));
    double hist[4] = {0, 0, 0, 0};
    dagr_data_t *H = NULL;
    SC_TRY(dagr_data_attach(ctx, rank == nranks - 1 ? hist : NULL, sizeof hist, nranks - 1, &H));
    SC_TRY(dagr_darray_random(U, 1));
    SC_TRY(dagr_darray_random(F, 2));

    char ckpt[1024];
    path_of(ckpt, sizeof ckpt, "run.ckpt");
    SC_TRY(dagr_resume(ctx, ckpt));
    double s0 = -1;
    SC_TRY(dagr_darray_fetch(S, 0, 0, &s0));
    int64_t step = (int64_t)s0;
    sc_say("RESUMED step=%lld", (long long)step);

    for (; step < steps; step++) {
        SC_TRY(dagr_darray_scale(U, 0.5 + 1.0 / (double)(step + 3)));
        SC_TRY(dagr_darray_shift(U, 0.01 * (double)step));
        SC_TRY(dagr_darray_scale(F, 0.75));
        SC_TRY(dagr_darray_shift(F, 1.0 / (double)(step + 1)));
        bool killed_writing = step + 1 == crash_at && async && (step + 1) % every == 0;
        hist_args_t a = {step, killed_writing};
        dagr_access_t acc = {H, DAGR_RW};
        SC_TRY(dagr_spawn(ctx, &hist_kernel, &a, sizeof a, 1, &acc, NULL));
        SC_TRY(dagr_darray_shift(S, 1.0));
        bool at_ckpt = (step + 1) % every == 0;
        if (at_ckpt) SC_TRY(async ? dagr_checkpoint_async(ctx, ckpt) : dagr_checkpoint(ctx, ckpt));
        if (killed_writing) {
            /* Killed while the checkpoint writes (nothing waits for it; its write of H waits
             * for a slow task): the previous one must be the one resumed. Its thread has
             * created the file by then. */
            char tmp[1100];
            snprintf(tmp, sizeof tmp, "%s.tmp", ckpt);
            for (int i = 0; i < 10000 && rank == 0 && access(tmp, F_OK) != 0; i++)
                usleep(1000);
            sc_say("CRASH after step %lld", (long long)(step + 1));
            MPI_Barrier(dagr_comm(ctx));
            _exit(42);
        }
        SC_CHECK(!dagr_stop_requested(ctx), "a stop nobody asked for");
        if (step + 1 == crash_at) {
            /* First the wait, which ends an asynchronous checkpoint still writing: the torn
             * file stands for a later one that died. */
            SC_TRY(dagr_wait_all(ctx));
            if (rank == 0) {
                char tmp[1100];
                snprintf(tmp, sizeof tmp, "%s.tmp", ckpt);
                FILE *f = fopen(tmp, "wb");
                if (f) {
                    fputs("\x89HDF\r\n\x1a\n torn", f);
                    fclose(f);
                }
            }
            SC_TRY(dagr_wait_all(ctx));
            sc_say("CRASH after step %lld", (long long)(step + 1));
            MPI_Barrier(dagr_comm(ctx)); /* every rank has said so before any is gone */
            _exit(42);
        }
    }

    uint64_t h = hash_array(0xcbf29ce484222325ull, U);
    h = hash_array(h, F);
    h = hash_array(h, S);
    double got[4];
    SC_TRY(dagr_fetch(H, got, -1));
    h = fnv(h, got, sizeof got);
    SC_TRY(dagr_darray_fetch(S, 0, 0, &s0));
    int ok = SC_CHECK((int64_t)s0 == steps, "S = %g after %lld steps", s0, (long long)steps);
    sc_result("final", ok, "step=%lld hash=%016llx", (long long)s0, (unsigned long long)h);
    dagr_data_destroy(&H);
    dagr_darray_destroy(&S);
    dagr_darray_destroy(&F);
    dagr_darray_destroy(&U);
    return ok;
}

/* ---- errors ---- */

/* 1 when A's contents are the bytes x (as gather_raw gives them). */
static int holds(const dagr_darray_t *A, const void *x, const char *what) {
    size_t bytes;
    void *y = gather_raw(A, &bytes);
    int ok = SC_CHECK(memcmp(x, y, bytes) == 0, "%s: the contents differ", what);
    free(y);
    return ok;
}

/* 1 when the file's contents are `text` (checked on rank 0). */
static int file_is(const char *path, const char *text) {
    int ok = 1;
    if (rank == 0) {
        char buf[256] = "";
        FILE *f = fopen(path, "r");
        size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
        if (f) fclose(f);
        buf[n] = 0;
        ok = SC_CHECK(!strcmp(buf, text), "%s holds '%s', expected '%s'", path, buf, text);
    }
    return sc_allreduce_sum(dagr_comm(ctx), ok) == nranks;
}

static int exists(const char *path) {
    int e = rank == 0 ? access(path, F_OK) == 0 : 0;
    MPI_Bcast(&e, 1, MPI_INT, 0, dagr_comm(ctx));
    return e;
}

/* Rank 0, serial HDF5: the file offset of dataset `name` in `path` (-1 if unknown). */
static long long dset_offset(const char *path, const char *name) {
    long long off = -1;
    if (rank == 0) {
        hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
        hid_t d = f >= 0 ? H5Dopen2(f, name, H5P_DEFAULT) : -1;
        if (d >= 0) off = (long long)H5Dget_offset(d);
        if (d >= 0) H5Dclose(d);
        if (f >= 0) H5Fclose(f);
    }
    MPI_Bcast(&off, 1, MPI_LONG_LONG, 0, dagr_comm(ctx));
    return off;
}

/* Rank 0, serial HDF5: sets the int64 attribute `name` of the root group. */
static void set_attr(const char *path, const char *name, int64_t v) {
    if (rank == 0) {
        hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
        hid_t a = f >= 0 ? H5Aopen(f, name, H5P_DEFAULT) : -1;
        if (a >= 0) H5Awrite(a, H5T_NATIVE_INT64, &v);
        if (a >= 0) H5Aclose(a);
        if (f >= 0) H5Fclose(f);
    }
    MPI_Barrier(dagr_comm(ctx));
}

/* Expects `call` to return `want` with `has` in the message. */
#define EXPECT(call, want, has)                                                                    \
    (SC_EXPECT_STATUS((call), (want)) &&                                                           \
     SC_CHECK(strstr(dagr_last_error(), (has)) != NULL, "message '%s' lacks '%s'",                 \
              dagr_last_error(), (has)))

static dagr_task_result_t k_fail(const dagr_task_view_t *t) {
    dagr_task_fail(t, DAGR_ERR_NUMERICAL, "failing on purpose");
    return DAGR_TASK_ERROR;
}
static const dagr_kernel_t fail_kernel = {.name = "fail", .cpu = k_fail};

static int errors(void) {
    /* No live data at all: an empty checkpoint, which no longer fits once arrays exist. */
    char empty[1024];
    path_of(empty, sizeof empty, "empty.ckpt");
    int ok = SC_EXPECT_STATUS(dagr_checkpoint(ctx, empty), DAGR_OK);
    ok &= SC_EXPECT_STATUS(dagr_resume(ctx, empty), DAGR_OK);

    dagr_grid_t g = dagr_grid_2d(P, Q);
    dagr_darray_t *U = NULL, *S = NULL, *X = NULL;
    SC_TRY(dagr_darray_create(ctx, DAGR_DOUBLE, N, N, NB, NB, g, &U));
    SC_TRY(dagr_darray_create(ctx, DAGR_INT64, 1, 1, 1, 1, g, &S));
    SC_TRY(dagr_darray_random(U, 7));
    size_t bytes;
    void *u0 = gather_raw(U, &bytes);
    char good[1024], goodtmp[1100], text[1024], arr[1024], bad[1024];
    path_of(good, sizeof good, "good.ckpt");
    snprintf(goodtmp, sizeof goodtmp, "%s.tmp", good);
    path_of(text, sizeof text, "text.txt");
    path_of(arr, sizeof arr, "array.h5");
    path_of(bad, sizeof bad, "bad.ckpt");

    ok &= EXPECT(dagr_resume(ctx, empty), DAGR_ERR_FORMAT, "holds 0 data handles but");

    /* Arguments. */
    ok &= EXPECT(dagr_checkpoint(NULL, good), DAGR_ERR_ARG, "ctx is NULL");
    ok &= EXPECT(dagr_resume(NULL, good), DAGR_ERR_ARG, "ctx is NULL");
    ok &= EXPECT(dagr_checkpoint(ctx, NULL), DAGR_ERR_ARG, "path is NULL");
    ok &= EXPECT(dagr_resume(ctx, ""), DAGR_ERR_ARG, "path is empty");
    if (nranks > 1) {
        char mine[1100];
        snprintf(mine, sizeof mine, "%s.%d", good, rank);
        ok &= EXPECT(dagr_checkpoint(ctx, mine), DAGR_ERR_ARG, "differs between ranks");
        ok &= EXPECT(dagr_resume(ctx, mine), DAGR_ERR_ARG, "differs between ranks");
    }

    /* No file: a fresh start that changes nothing. */
    ok &= SC_EXPECT_STATUS(dagr_resume(ctx, good), DAGR_OK);
    ok &= holds(U, u0, "after resuming from no file");

    /* A checkpoint, then a change, then resume: the checkpointed contents exactly. */
    ok &= SC_EXPECT_STATUS(dagr_checkpoint(ctx, good), DAGR_OK);
    ok &= SC_CHECK(exists(good) && !exists(goodtmp), "after a checkpoint: %s %d, .tmp %d", good,
                   exists(good), exists(goodtmp));
    SC_TRY(dagr_darray_scale(U, 2.0));
    ok &= SC_EXPECT_STATUS(dagr_resume(ctx, good), DAGR_OK);
    ok &= holds(U, u0, "restored");

    /* Files that are not checkpoints are refused and left as they are. */
    sh("printf hello > '%s'", text);
    ok &= EXPECT(dagr_checkpoint(ctx, text), DAGR_ERR_FORMAT, "is not an HDF5 file");
    ok &= file_is(text, "hello");
    ok &= EXPECT(dagr_resume(ctx, text), DAGR_ERR_FORMAT, "is not an HDF5 file");
    SC_TRY(dagr_darray_save(U, arr, "U"));
    ok &= EXPECT(dagr_checkpoint(ctx, arr), DAGR_ERR_FORMAT, "not a dagr checkpoint");
    ok &= EXPECT(dagr_resume(ctx, arr), DAGR_ERR_FORMAT, "not a dagr checkpoint");
    dagr_darray_t *L = NULL;
    ok &= SC_EXPECT_STATUS(dagr_darray_load(ctx, arr, "U", NB, NB, g, &L), DAGR_OK);
    if (L) ok &= holds(L, u0, "the array file after a refused checkpoint");
    dagr_darray_destroy(&L);

    /* Live data that differ from the checkpoint's: nothing is restored. */
    SC_TRY(dagr_darray_scale(U, 3.0));
    void *u3 = gather_raw(U, &bytes);
    SC_TRY(dagr_darray_create(ctx, DAGR_DOUBLE, 3, 3, 2, 2, g, &X));
    ok &= EXPECT(dagr_resume(ctx, good), DAGR_ERR_FORMAT, "data handles but");
    ok &= holds(U, u3, "after a refused resume (count)");
    dagr_darray_destroy(&X);
    dagr_darray_destroy(&S);
    SC_TRY(dagr_darray_create(ctx, DAGR_INT64, 1, 2, 1, 2, g, &S));
    ok &= EXPECT(dagr_resume(ctx, good), DAGR_ERR_FORMAT, "1 x 1 of 8-byte elements in");
    ok &= holds(U, u3, "after a refused resume (shape)");
    dagr_darray_destroy(&S);
    SC_TRY(dagr_darray_create(ctx, DAGR_INT64, 1, 1, 1, 1, g, &S));
    ok &= SC_EXPECT_STATUS(dagr_resume(ctx, good), DAGR_OK);
    ok &= holds(U, u0, "restored again");

    /* Damaged checkpoints. */
    long long off = dset_offset(good, "data");
    ok &= SC_CHECK(off > 0, "no offset for /data");
    sh("cp '%s' '%s' && printf '\\377' | dd of='%s' bs=1 seek=%lld conv=notrunc 2>/dev/null", good,
       bad, bad, off + (long long)bytes / 2);
    ok &= EXPECT(dagr_resume(ctx, bad), DAGR_ERR_FORMAT, "do not match their checksum");
    sh("cp '%s' '%s' && truncate -s %lld '%s'", good, bad, off + (long long)bytes / 3, bad);
    ok &= EXPECT(dagr_resume(ctx, bad), DAGR_ERR_FORMAT, "damaged");
    sh("cp '%s' '%s'", good, bad);
    set_attr(bad, "dagr_checkpoint", 2);
    ok &= EXPECT(dagr_resume(ctx, bad), DAGR_ERR_FORMAT, "of format 2");
    SC_TRY(dagr_darray_fill(U, 0.0));
    ok &= SC_EXPECT_STATUS(dagr_resume(ctx, good), DAGR_OK);
    ok &= holds(U, u0, "restored after damaged ones");

    /* A task failing before a checkpoint: reported, nothing written, the previous kept. */
    SC_TRY(dagr_darray_scale(U, 5.0));
    dagr_access_t acc = {dagr_darray_tile(U, 0, 0), DAGR_RW};
    SC_TRY(dagr_spawn(ctx, &fail_kernel, NULL, 0, 1, &acc, NULL));
    ok &= EXPECT(dagr_checkpoint(ctx, good), DAGR_ERR_NUMERICAL, "failing on purpose");
    ok &= SC_CHECK(!exists(goodtmp), "a failed checkpoint left %s", goodtmp);
    ok &= SC_EXPECT_STATUS(dagr_resume(ctx, good), DAGR_OK);
    ok &= holds(U, u0, "restored after a failed checkpoint");

    /* A torn .tmp left by a crash is replaced. */
    sh("printf torn > '%s'", goodtmp);
    SC_TRY(dagr_darray_scale(U, 0.5));
    void *uh = gather_raw(U, &bytes);
    ok &= SC_EXPECT_STATUS(dagr_checkpoint(ctx, good), DAGR_OK);
    ok &= SC_CHECK(!exists(goodtmp), "%s left after a checkpoint", goodtmp);
    SC_TRY(dagr_darray_fill(U, 1.0));
    ok &= SC_EXPECT_STATUS(dagr_resume(ctx, good), DAGR_OK);
    ok &= holds(U, uh, "restored over a torn .tmp");

    /* Asynchronous: the same file as the synchronous form's once a wait ended it; arguments
     * refused at the call. Before the wait the path may already hold it (a checkpoint whose
     * writes are done is renamed into place by its thread, below), never a part of it: the
     * rename is the last step. */
    ok &= EXPECT(dagr_checkpoint_async(NULL, good), DAGR_ERR_ARG, "ctx is NULL");
    ok &= EXPECT(dagr_checkpoint_async(ctx, ""), DAGR_ERR_ARG, "path is empty");
    ok &= EXPECT(dagr_checkpoint_async(ctx, text), DAGR_ERR_FORMAT, "is not an HDF5 file");
    char nodir[1024];
    path_of(nodir, sizeof nodir, "no-such-dir/a.ckpt"); /* its thread would create it */
    ok &= EXPECT(dagr_checkpoint_async(ctx, nodir), DAGR_ERR_IO, "cannot create checkpoint");
    ok &= EXPECT(dagr_checkpoint(ctx, nodir), DAGR_ERR_IO, "cannot create checkpoint");
    char agood[1024], atmp[1100];
    path_of(agood, sizeof agood, "async.ckpt");
    snprintf(atmp, sizeof atmp, "%s.tmp", agood);
    SC_TRY(dagr_darray_scale(U, 3.0));
    void *ua = gather_raw(U, &bytes);
    ok &= SC_EXPECT_STATUS(dagr_checkpoint_async(ctx, agood), DAGR_OK);
    SC_TRY(dagr_darray_scale(U, 7.0)); /* after the writes of the versions before */
    ok &= SC_EXPECT_STATUS(dagr_wait_all(ctx), DAGR_OK);
    ok &= SC_CHECK(exists(agood) && !exists(atmp), "after the wait: %s %d, .tmp %d", agood,
                   exists(agood), exists(atmp));
    ok &= SC_EXPECT_STATUS(dagr_checkpoint(ctx, good), DAGR_OK);
    ok &= SC_EXPECT_STATUS(dagr_resume(ctx, agood), DAGR_OK);
    ok &= holds(U, ua, "restored from an asynchronous checkpoint");

    /* Two in a row: the second waits for the first; one whose writes are done is renamed
     * into place without a wait (its thread does it). */
    ok &= SC_EXPECT_STATUS(dagr_checkpoint_async(ctx, agood), DAGR_OK);
    SC_TRY(dagr_darray_scale(U, 2.0));
    void *u2 = gather_raw(U, &bytes); /* a wait: the first checkpoint ends here */
    ok &= SC_EXPECT_STATUS(dagr_checkpoint_async(ctx, agood), DAGR_OK);
    for (int i = 0; i < 2000 && exists(atmp); i++) {
        ok &= SC_CHECK(!dagr_stop_requested(ctx), "a stop nobody asked for");
        usleep(1000);
    }
    ok &= SC_CHECK(!exists(atmp), "the checkpoint did not end without a wait");
    SC_TRY(dagr_darray_fill(U, 0.0));
    ok &= SC_EXPECT_STATUS(dagr_resume(ctx, agood), DAGR_OK);
    ok &= holds(U, u2, "restored from the second asynchronous checkpoint");

    /* A task failing under the writes: the error comes at the next wait, the previous file
     * stays, no .tmp is left. */
    dagr_access_t facc = {dagr_darray_tile(U, 0, 0), DAGR_RW};
    SC_TRY(dagr_spawn(ctx, &fail_kernel, NULL, 0, 1, &facc, NULL));
    ok &= SC_EXPECT_STATUS(dagr_checkpoint_async(ctx, agood), DAGR_OK);
    ok &= EXPECT(dagr_wait_all(ctx), DAGR_ERR_NUMERICAL, "failing on purpose");
    ok &= SC_CHECK(!exists(atmp), "a failed asynchronous checkpoint left %s", atmp);
    SC_TRY(dagr_darray_fill(U, 0.0));
    ok &= SC_EXPECT_STATUS(dagr_resume(ctx, agood), DAGR_OK);
    ok &= holds(U, u2, "restored after a failed asynchronous checkpoint");

    /* One still pending at dagr_finalize is ended there (main checks the file). */
    ok &= SC_EXPECT_STATUS(dagr_checkpoint_async(ctx, agood), DAGR_OK);

    free(u2);
    free(ua);
    free(uh);
    free(u3);
    free(u0);
    dagr_darray_destroy(&S);
    dagr_darray_destroy(&U);
    return ok;
}

/* ---- direct ---- */

/* Rank 0: the share of the pages of bytes [off, off + len) of path that are in the page
 * cache (-1 when it cannot tell). */
static double cached_share(const char *path, long long off, long long len) {
    FILE *f = fopen(path, "r");
    if (!f || off < 0 || len <= 0) {
        if (f) fclose(f);
        return -1;
    }
    long page = sysconf(_SC_PAGESIZE);
    long long lo = off / page * page, hi = off + len;
    void *map = mmap(NULL, (size_t)(hi - lo), PROT_READ, MAP_SHARED, fileno(f), lo);
    fclose(f);
    if (map == MAP_FAILED) return -1;
    size_t pages = (size_t)((hi - lo + page - 1) / page), in = 0;
    unsigned char *vec = malloc(pages);
    double share = -1;
    if (vec && mincore(map, (size_t)(hi - lo), vec) == 0) {
        for (size_t i = 0; i < pages; i++)
            in += vec[i] & 1;
        share = (double)in / (double)pages;
    }
    free(vec);
    munmap(map, (size_t)(hi - lo));
    return share;
}

static int direct(const char *expect) {
    dagr_grid_t g = dagr_grid_2d(P, Q);
    dagr_darray_t *U = NULL, *F = NULL;
    SC_TRY(dagr_darray_create(ctx, DAGR_DOUBLE, N, N, NB, NB, g, &U));
    SC_TRY(dagr_darray_create(ctx, DAGR_FLOAT, N, N / 2 + 1, NB, NB, g, &F));
    SC_TRY(dagr_darray_random(U, 11));
    SC_TRY(dagr_darray_random(F, 12));
    size_t bu, bf;
    void *u = gather_raw(U, &bu), *fl = gather_raw(F, &bf);
    char path[1024];
    path_of(path, sizeof path, "direct.ckpt");
    int ok = SC_EXPECT_STATUS(dagr_checkpoint_async(ctx, path), DAGR_OK);
    /* Overwritten at once: what the file holds is the staged copies, or the tiles lent to the
     * thread, which the overwriting tasks wait for. */
    SC_TRY(dagr_darray_scale(U, -3.0));
    SC_TRY(dagr_darray_scale(F, 0.5));
    ok &= SC_EXPECT_STATUS(dagr_wait_all(ctx), DAGR_OK);
    long long off = dset_offset(path, "data");
    double share = -1;
    if (rank == 0) share = cached_share(path, off, (long long)(bu + bf));
    MPI_Bcast(&share, 1, MPI_DOUBLE, 0, dagr_comm(ctx));
    if (!strcmp(expect, "any"))
        ;
    else if (!strcmp(expect, "direct"))
        ok &= SC_CHECK(share >= 0 && share <= 0.2,
                       "%.0f %% of /data's pages are in the page cache after a checkpoint "
                       "written with O_DIRECT",
                       100 * share);
    else
        ok &= SC_CHECK(share >= 0.8, "only %.0f %% of /data's pages are in the page cache",
                       100 * share);
    ok &= SC_EXPECT_STATUS(dagr_resume(ctx, path), DAGR_OK);
    ok &= holds(U, u, "the double array resumed");
    ok &= holds(F, fl, "the float array resumed");
    free(u);
    free(fl);
    dagr_darray_destroy(&F);
    dagr_darray_destroy(&U);
    return ok;
}

int main(int argc, char **argv) {
    SC_TRY(dagr_init(&argc, &argv, NULL, &ctx));
    rank = dagr_rank(ctx);
    nranks = dagr_size(ctx);
    sc_set_rank(rank);
    bool is_run =
        (argc == 10 || (argc == 11 && !strcmp(argv[10], "async"))) && !strcmp(argv[1], "run");
    bool is_direct = argc == 8 && !strcmp(argv[1], "direct");
    if (!is_run && !is_direct && !(argc == 7 && !strcmp(argv[1], "errors"))) {
        sc_fail_at(__FILE__, __LINE__,
                   "usage: darray_checkpoint run P Q N NB DIR STEPS EVERY CRASH_AT [async] | "
                   "errors P Q N NB DIR | direct P Q N NB DIR EXPECT");
        dagr_finalize(&ctx);
        return sc_exit_code();
    }
    P = atoi(argv[2]), Q = atoi(argv[3]);
    N = atoll(argv[4]), NB = atoll(argv[5]);
    dir = argv[6];
    if (is_run)
        run(atoll(argv[7]), atoll(argv[8]), atoll(argv[9]), argc == 11);
    else if (is_direct)
        sc_result("ckpt_direct", direct(argv[7]), " ");
    else
        sc_result("ckpt_errors", errors(), " ");
    SC_EXPECT_STATUS(dagr_finalize(&ctx), DAGR_OK);
    if (!is_run && !is_direct) {
        /* The asynchronous checkpoint still pending at dagr_finalize was ended there. */
        char agood[1024], atmp[1100];
        path_of(agood, sizeof agood, "async.ckpt");
        snprintf(atmp, sizeof atmp, "%s.tmp", agood);
        bool there = access(agood, F_OK) == 0, tmp = access(atmp, F_OK) == 0;
        SC_CHECK(there && !tmp, "after dagr_finalize: %s %d, .tmp %d", agood, there, tmp);
    }
    return sc_exit_code();
}
