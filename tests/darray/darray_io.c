/* dagr_darray_save / dagr_darray_load scenario.
 *
 * Usage: darray_io P Q M N MB NB DIR
 *
 * A is M x N in MB x NB tiles on a P x Q block-cyclic grid; files go to DIR (which exists).
 *  - roundtrip: for float, double and int64, A gets random values and a scale by 2 that is
 *    inserted but not waited for, then is saved. The dataset is checked with an independent
 *    reader, the serial h5dump (hdf5-tools): its raw little-endian dump must equal A gathered
 *    and transposed to row-major, byte for byte, and its chunks must be the tile size. Then
 *    the dataset is loaded with other tiles on the transposed grid, and with mb = nb = 0 (the
 *    file's chunks), and must equal A exactly, with A's dtype.
 *  - more: a view of A saved (the file holds the view's block); a dataset overwritten in place
 *    by an array of the same shape, and refused for another shape (the file keeps the
 *    previous contents); a dataset in nested groups; several datasets in one file.
 *  - foreign: datasets written here by serial HDF5 the way other programs write them: int32
 *    (loads as int64), 1-D (an m x 1 array, tiles from its chunks), big-endian doubles, a
 *    contiguous (unchunked) dataset; and the refused ones: unsigned 64-bit, strings, 3-D,
 *    scalar.
 *  - errors: every argument error and file error with its exact status (and part of its
 *    message); a task failing before a save is reported by the save on every rank, and the
 *    file can still be used after it.
 * Prints RESULT roundtrip ok, RESULT more ok, RESULT foreign ok, RESULT io_errors ok.
 *
 * Usage: darray_io P Q M N MB NB DIR trace
 *
 * For a traced run (DAGR_TRACE): only random values, a save and a load with the same tiles and
 * grid, then a checkpoint and a resume (of A and the loaded array), so that each rank runs 7
 * tasks per tile it owns, and the trace holds one "hdf5 write" and one "hdf5 read" per tile,
 * and two "checkpoint write" and two "checkpoint read". Prints RESULT traced_io ok. */
#include "scenario.h"

#include <hdf5.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static dagr_ctx_t *ctx;
static int rank, nranks;
static int P, Q;
static int64_t M, N, MB, NB;
static const char *dir;

static size_t esize(dagr_dtype_t t) {
    return dagr_dtype_size(t);
}

/* A on every rank, raw, column-major with ld = max(1, rows) (free it). */
static void *gather_raw(const dagr_darray_t *A) {
    int64_t m = dagr_darray_rows(A), n = dagr_darray_cols(A);
    size_t es = esize(dagr_darray_dtype(A));
    void *x = calloc((size_t)(sc_ld(m) * (n ? n : 1)), es);
    SC_TRY(dagr_darray_gather(A, x, sc_ld(m), -1));
    return x;
}

/* Runs a shell command on rank 0; returns its exit status there (-1 elsewhere). */
static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...) {
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    return rank == 0 ? system(cmd) : -1;
}

/* Checks, on rank 0 with h5dump, that dataset `name` of `file` holds x (column-major m x n,
 * ld max(1, m), dtype t) in row-major order, and when chunk_m > 0 that it is chunked
 * chunk_m x chunk_n. Returns 1 on every rank when it does. */
static int h5dump_equals(const char *file, const char *name, const void *x, dagr_dtype_t t,
                         int64_t m, int64_t n, int64_t chunk_m, int64_t chunk_n) {
    int ok = 1;
    if (rank == 0) {
        char bin[1024], hdr[1024];
        snprintf(bin, sizeof bin, "%s/dump.bin", dir);
        snprintf(hdr, sizeof hdr, "%s/dump.txt", dir);
        remove(bin);
        int rc = sh("h5dump -d '/%s' -b LE -o '%s' '%s' > /dev/null 2>&1", name, bin, file);
        ok = SC_CHECK(rc == 0 || m * n == 0, "h5dump -b of %s:%s exited %d", file, name, rc);
        size_t es = esize(t), bytes = (size_t)(m * n) * es;
        char *got = calloc(bytes + 1, 1);
        FILE *f = m * n > 0 ? fopen(bin, "rb") : NULL;
        size_t nread = f ? fread(got, 1, bytes + 1, f) : 0;
        if (f) fclose(f);
        ok &= SC_CHECK(nread == bytes, "h5dump wrote %zu bytes of %s, expected %zu", nread, name,
                       bytes);
        int64_t bad = 0;
        for (int64_t i = 0; ok && i < m; i++)
            for (int64_t j = 0; j < n; j++)
                bad += memcmp(got + (size_t)(i * n + j) * es,
                              (const char *)x + (size_t)(i + j * sc_ld(m)) * es, es) != 0;
        ok &= SC_CHECK(bad == 0, "%lld elements of %s differ from A", (long long)bad, name);
        free(got);
        sh("h5dump -H -p -d '/%s' '%s' > '%s' 2>&1", name, file, hdr);
        f = fopen(hdr, "r");
        char line[512];
        long cm = -1, cn = -1;
        int type_ok = 0;
        const char *want = t == DAGR_FLOAT    ? "H5T_IEEE_F32LE"
                           : t == DAGR_DOUBLE ? "H5T_IEEE_F64LE"
                                              : "H5T_STD_I64LE";
        while (f && fgets(line, sizeof line, f)) {
            sscanf(line, " CHUNKED ( %ld, %ld )", &cm, &cn);
            type_ok |= strstr(line, want) != NULL;
        }
        if (f) fclose(f);
        ok &= SC_CHECK(type_ok, "h5dump does not show %s as %s", name, want);
        if (chunk_m > 0)
            ok &= SC_CHECK(cm == chunk_m && cn == chunk_n,
                           "%s is chunked %ldx%ld, expected %lldx%lld", name, cm, cn,
                           (long long)chunk_m, (long long)chunk_n);
    }
    return sc_allreduce_sum(dagr_comm(ctx), ok) == nranks;
}

/* 1 when B has A's shape and dtype and the same bytes. */
static int same_array(const dagr_darray_t *A, const dagr_darray_t *B, const char *what) {
    int ok = SC_CHECK(dagr_darray_dtype(B) == dagr_darray_dtype(A), "%s: dtype %d, expected %d",
                      what, (int)dagr_darray_dtype(B), (int)dagr_darray_dtype(A));
    ok &= SC_CHECK(dagr_darray_rows(B) == dagr_darray_rows(A) &&
                       dagr_darray_cols(B) == dagr_darray_cols(A),
                   "%s: %lldx%lld, expected %lldx%lld", what, (long long)dagr_darray_rows(B),
                   (long long)dagr_darray_cols(B), (long long)dagr_darray_rows(A),
                   (long long)dagr_darray_cols(A));
    if (!ok) return 0;
    void *a = gather_raw(A), *b = gather_raw(B);
    int64_t m = dagr_darray_rows(A), n = dagr_darray_cols(A);
    size_t bytes = (size_t)(sc_ld(m) * n) * esize(dagr_darray_dtype(A));
    ok = SC_CHECK(bytes == 0 || memcmp(a, b, bytes) == 0, "%s: contents differ", what);
    free(a);
    free(b);
    return ok;
}

static void path_of(char *buf, size_t size, const char *name) {
    snprintf(buf, size, "%s/%s", dir, name);
}

/* ---- roundtrip ---- */

static int roundtrip(dagr_dtype_t t, uint64_t seed) {
    char file[1024], name[64];
    path_of(file, sizeof file, "arrays.h5");
    snprintf(name, sizeof name, "A_%s", sc_dtype_name(t));
    dagr_darray_t *A = NULL, *B = NULL, *C = NULL;
    SC_TRY(dagr_darray_create(ctx, t, M, N, MB, NB, dagr_grid_2d(P, Q), &A));
    SC_TRY(dagr_darray_random(A, seed));
    SC_TRY(dagr_darray_scale(A, 2.0)); /* pending: the save must come after it */
    int ok = SC_EXPECT_STATUS(dagr_darray_save(A, file, name), DAGR_OK);
    void *x = gather_raw(A);
    /* The scale was inserted before the save: A must be twice a fresh random array. */
    dagr_darray_t *R = NULL;
    SC_TRY(dagr_darray_create(ctx, t, M, N, MB, NB, dagr_grid_2d(P, Q), &R));
    SC_TRY(dagr_darray_random(R, seed));
    void *r = gather_raw(R);
    int64_t twice = 0;
    for (int64_t k = 0; k < M * N; k++)
        twice += t == DAGR_FLOAT    ? ((float *)x)[k] == 2 * ((float *)r)[k]
                 : t == DAGR_DOUBLE ? ((double *)x)[k] == 2 * ((double *)r)[k]
                                    : ((int64_t *)x)[k] == 2 * ((int64_t *)r)[k];
    ok &= SC_CHECK(twice == M * N, "%lld of %lld elements are twice the random values",
                   (long long)twice, (long long)(M * N));
    free(r);
    dagr_darray_destroy(&R);
    ok &= h5dump_equals(file, name, x, t, M, N, M && N ? (MB < M ? MB : M) : 0,
                        M && N ? (NB < N ? NB : N) : 0);
    free(x);

    int64_t mb2 = MB + 3, nb2 = NB > 1 ? NB - 1 : 2;
    ok &= SC_EXPECT_STATUS(dagr_darray_load(ctx, file, name, mb2, nb2, dagr_grid_2d(Q, P), &B),
                           DAGR_OK);
    if (B) {
        ok &= same_array(A, B, "load with other tiles");
        ok &= SC_CHECK(dagr_darray_tile_rows(B) == mb2 && dagr_darray_tile_cols(B) == nb2,
                       "tiles %lldx%lld", (long long)dagr_darray_tile_rows(B),
                       (long long)dagr_darray_tile_cols(B));
    }
    ok &= SC_EXPECT_STATUS(dagr_darray_load(ctx, file, name, 0, 0, dagr_grid_row_cyclic(), &C),
                           DAGR_OK);
    if (C) {
        ok &= same_array(A, C, "load with the file's chunks");
        int64_t wm = M && N ? (MB < M ? MB : M) : 512, wn = M && N ? (NB < N ? NB : N) : 512;
        ok &= SC_CHECK(dagr_darray_tile_rows(C) == wm && dagr_darray_tile_cols(C) == wn,
                       "mb = nb = 0 gave tiles %lldx%lld, expected %lldx%lld",
                       (long long)dagr_darray_tile_rows(C), (long long)dagr_darray_tile_cols(C),
                       (long long)wm, (long long)wn);
    }
    dagr_darray_destroy(&A);
    dagr_darray_destroy(&B);
    dagr_darray_destroy(&C);
    return ok;
}

/* ---- views, overwriting, groups ---- */

/* Sets every element of tile 0 (a double tile) to -7.5. */
static dagr_task_result_t k_mark(const dagr_task_view_t *t) {
    const int64_t *rc = t->args;
    double *x = t->buf[0];
    for (int64_t j = 0; j < rc[1]; j++)
        for (int64_t i = 0; i < rc[0]; i++)
            x[i + j * (int64_t)t->ld[0]] = -7.5;
    return DAGR_TASK_DONE;
}

static int more(void) {
    char file[1024];
    path_of(file, sizeof file, "more.h5");
    dagr_darray_t *A = NULL, *V = NULL, *B = NULL, *S = NULL, *L = NULL;
    SC_TRY(dagr_darray_create(ctx, DAGR_DOUBLE, M, N, MB, NB, dagr_grid_2d(P, Q), &A));
    SC_TRY(dagr_darray_random(A, 7));
    int ok = 1;

    /* Tile (0, 0) last written on a rank that does not own it: the save must take that
     * version (it travels to the owner, whose task writes the file). */
    static const dagr_kernel_t mark_kernel = {.name = "mark", .cpu = k_mark};
    int64_t rc[2] = {MB < M ? MB : M, NB < N ? NB : N};
    dagr_task_opts_t o;
    dagr_task_opts_init(&o);
    o.rank = (dagr_darray_tile_rank(A, 0, 0) + 1) % nranks;
    dagr_access_t acc = {dagr_darray_tile(A, 0, 0), DAGR_RW};
    SC_TRY(dagr_spawn(ctx, &mark_kernel, rc, sizeof rc, 1, &acc, &o));
    ok &= SC_EXPECT_STATUS(dagr_darray_save(A, file, "marked"), DAGR_OK);
    void *a = gather_raw(A);
    ok &= SC_CHECK(((double *)a)[0] == -7.5, "A(0, 0) = %g after the mark", ((double *)a)[0]);
    ok &= h5dump_equals(file, "marked", a, DAGR_DOUBLE, M, N, 0, 0);
    free(a);

    /* A view starting one tile in, one row and column short of the end. */
    int64_t vi = M > MB ? MB : 0, vj = N > NB ? NB : 0;
    int64_t vm = M - vi > 1 ? M - vi - 1 : M - vi, vn = N - vj > 1 ? N - vj - 1 : N - vj;
    SC_TRY(dagr_darray_view(A, vi, vj, vm, vn, &V));
    ok &= SC_EXPECT_STATUS(dagr_darray_save(V, file, "view"), DAGR_OK);
    void *v = gather_raw(V);
    ok &= h5dump_equals(file, "view", v, DAGR_DOUBLE, vm, vn, 0, 0);
    free(v);

    /* Overwrite in place with an array of the same shape (other tiles, other grid). */
    ok &= SC_EXPECT_STATUS(dagr_darray_save(A, file, "X"), DAGR_OK);
    SC_TRY(dagr_darray_create(ctx, DAGR_DOUBLE, M, N, MB + 1, NB + 2, dagr_grid_2d(Q, P), &B));
    SC_TRY(dagr_darray_random(B, 8));
    ok &= SC_EXPECT_STATUS(dagr_darray_save(B, file, "X"), DAGR_OK);
    void *b = gather_raw(B);
    ok &= h5dump_equals(file, "X", b, DAGR_DOUBLE, M, N, 0, 0);
    /* Another shape, or another type, under that name: refused, the contents stay B's. */
    SC_TRY(dagr_darray_create(ctx, DAGR_DOUBLE, M + 1, N, MB, NB, dagr_grid_2d(P, Q), &S));
    ok &= SC_EXPECT_STATUS(dagr_darray_save(S, file, "X"), DAGR_ERR_ARG);
    ok &= SC_CHECK(strstr(dagr_last_error(), "another shape or element type"), "message: %s",
                   dagr_last_error());
    dagr_darray_destroy(&S);
    SC_TRY(dagr_darray_create(ctx, DAGR_FLOAT, M, N, MB, NB, dagr_grid_2d(P, Q), &S));
    ok &= SC_EXPECT_STATUS(dagr_darray_save(S, file, "X"), DAGR_ERR_ARG);
    dagr_darray_destroy(&S);
    ok &= h5dump_equals(file, "X", b, DAGR_DOUBLE, M, N, 0, 0);
    free(b);

    /* Nested groups, created on the way; the other datasets of the file are still there. */
    ok &= SC_EXPECT_STATUS(dagr_darray_save(A, file, "run1/step2/A"), DAGR_OK);
    ok &= SC_EXPECT_STATUS(dagr_darray_save(B, file, "/run1/B"), DAGR_OK);
    ok &= SC_EXPECT_STATUS(
        dagr_darray_load(ctx, file, "run1/step2/A", MB, NB, dagr_grid_col_cyclic(), &L), DAGR_OK);
    if (L) ok &= same_array(A, L, "nested dataset");
    dagr_darray_destroy(&L);
    ok &= SC_EXPECT_STATUS(dagr_darray_load(ctx, file, "run1/B", 0, 0, dagr_grid_2d(0, 0), &L),
                           DAGR_OK);
    if (L) ok &= same_array(B, L, "dataset in a group");
    dagr_darray_destroy(&L);
    ok &= SC_EXPECT_STATUS(dagr_darray_load(ctx, file, "view", 3, 2, dagr_grid_2d(P, Q), &L),
                           DAGR_OK);
    if (L) ok &= same_array(V, L, "view");
    dagr_darray_destroy(&L);

    dagr_darray_destroy(&V);
    dagr_darray_destroy(&A);
    dagr_darray_destroy(&B);
    return ok;
}

/* ---- datasets written by serial HDF5 ---- */

static void write_foreign(const char *file) {
    if (rank != 0) return;
    hid_t f = H5Fcreate(file, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    int32_t i32[5][7];
    for (int i = 0; i < 5; i++)
        for (int j = 0; j < 7; j++)
            i32[i][j] = i * 7 + j - 17;
    hsize_t d2[2] = {5, 7};
    hid_t s = H5Screate_simple(2, d2, NULL);
    hid_t d = H5Dcreate2(f, "i32", H5T_STD_I32LE, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(d, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, i32);
    H5Dclose(d);
    double be[5][7];
    for (int i = 0; i < 5; i++)
        for (int j = 0; j < 7; j++)
            be[i][j] = 0.5 * (i * 7 + j) - 3.25;
    d = H5Dcreate2(f, "be", H5T_IEEE_F64BE, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, be);
    H5Dclose(d);
    uint64_t u64[5][7] = {{0}};
    d = H5Dcreate2(f, "u64", H5T_STD_U64LE, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(d, H5T_NATIVE_UINT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, u64);
    H5Dclose(d);
    hid_t str = H5Tcopy(H5T_C_S1);
    H5Tset_size(str, 8);
    d = H5Dcreate2(f, "str", str, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dclose(d);
    H5Tclose(str);
    H5Sclose(s);

    hsize_t d1 = 11, c1 = 4;
    double v[11];
    for (int i = 0; i < 11; i++)
        v[i] = i * i;
    s = H5Screate_simple(1, &d1, NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, 1, &c1);
    d = H5Dcreate2(f, "v", H5T_IEEE_F64LE, s, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
    H5Dclose(d);
    H5Pclose(dcpl);
    H5Sclose(s);

    hsize_t d3[3] = {2, 2, 2};
    s = H5Screate_simple(3, d3, NULL);
    d = H5Dcreate2(f, "cube", H5T_IEEE_F64LE, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dclose(d);
    H5Sclose(s);
    s = H5Screate(H5S_SCALAR);
    d = H5Dcreate2(f, "scalar", H5T_IEEE_F64LE, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dclose(d);
    H5Sclose(s);
    H5Fclose(f);
}

static int foreign(void) {
    char file[1024];
    path_of(file, sizeof file, "foreign.h5");
    write_foreign(file);
    MPI_Barrier(dagr_comm(ctx));
    int ok = 1;
    dagr_darray_t *A = NULL;

    ok &=
        SC_EXPECT_STATUS(dagr_darray_load(ctx, file, "i32", 0, 3, dagr_grid_2d(P, Q), &A), DAGR_OK);
    if (A) {
        ok &= SC_CHECK(dagr_darray_dtype(A) == DAGR_INT64 && dagr_darray_rows(A) == 5 &&
                           dagr_darray_cols(A) == 7 && dagr_darray_tile_rows(A) == 512 &&
                           dagr_darray_tile_cols(A) == 3,
                       "int32 dataset loaded as dtype %d, %lldx%lld in %lldx%lld tiles",
                       (int)dagr_darray_dtype(A), (long long)dagr_darray_rows(A),
                       (long long)dagr_darray_cols(A), (long long)dagr_darray_tile_rows(A),
                       (long long)dagr_darray_tile_cols(A));
        int64_t *x = gather_raw(A);
        for (int i = 0; i < 5; i++)
            for (int j = 0; j < 7; j++)
                ok &= SC_CHECK(x[i + j * 5] == i * 7 + j - 17, "i32 (%d, %d) = %lld", i, j,
                               (long long)x[i + j * 5]);
        free(x);
        dagr_darray_destroy(&A);
    }
    ok &=
        SC_EXPECT_STATUS(dagr_darray_load(ctx, file, "be", 2, 2, dagr_grid_2d(P, Q), &A), DAGR_OK);
    if (A) {
        double *x = gather_raw(A);
        ok &= SC_CHECK(dagr_darray_dtype(A) == DAGR_DOUBLE, "big-endian doubles: dtype %d",
                       (int)dagr_darray_dtype(A));
        for (int i = 0; i < 5; i++)
            for (int j = 0; j < 7; j++)
                ok &= SC_CHECK(x[i + j * 5] == 0.5 * (i * 7 + j) - 3.25, "be (%d, %d) = %g", i, j,
                               x[i + j * 5]);
        free(x);
        dagr_darray_destroy(&A);
    }
    ok &= SC_EXPECT_STATUS(dagr_darray_load(ctx, file, "v", 0, 0, dagr_grid_2d(P, Q), &A), DAGR_OK);
    if (A) {
        ok &= SC_CHECK(dagr_darray_rows(A) == 11 && dagr_darray_cols(A) == 1 &&
                           dagr_darray_tile_rows(A) == 4 && dagr_darray_tile_cols(A) == 1,
                       "1-D dataset loaded as %lldx%lld in %lldx%lld tiles",
                       (long long)dagr_darray_rows(A), (long long)dagr_darray_cols(A),
                       (long long)dagr_darray_tile_rows(A), (long long)dagr_darray_tile_cols(A));
        double *x = gather_raw(A);
        for (int i = 0; i < 11 && dagr_darray_rows(A) == 11; i++)
            ok &= SC_CHECK(x[i] == i * i, "v[%d] = %g", i, x[i]);
        free(x);
        dagr_darray_destroy(&A);
    }
    const char *refused[] = {"u64", "str", "cube", "scalar"};
    const char *why[] = {"unsigned 64-bit", "neither integers nor", "not 1-D or 2-D", "scalar"};
    for (int k = 0; k < 4; k++) {
        ok &= SC_EXPECT_STATUS(
            dagr_darray_load(ctx, file, refused[k], 0, 0, dagr_grid_2d(P, Q), &A), DAGR_ERR_FORMAT);
        ok &= SC_CHECK(!A && strstr(dagr_last_error(), why[k]), "%s: message '%s'", refused[k],
                       dagr_last_error());
    }
    return ok;
}

/* ---- errors ---- */

static dagr_task_result_t k_fail(const dagr_task_view_t *t) {
    dagr_task_fail(t, DAGR_ERR_NUMERICAL, "made to fail");
    return DAGR_TASK_ERROR;
}

static int errors(void) {
    char file[1024], text[1024], nodir[1024], more_file[1024];
    path_of(file, sizeof file, "errors.h5");
    path_of(text, sizeof text, "notes.txt");
    path_of(nodir, sizeof nodir, "no/such/dir/x.h5");
    path_of(more_file, sizeof more_file, "more.h5");
    dagr_darray_t *A = NULL, *L = NULL;
    SC_TRY(dagr_darray_create(ctx, DAGR_DOUBLE, 6, 5, 4, 3, dagr_grid_2d(P, Q), &A));
    SC_TRY(dagr_darray_random(A, 3));
    int ok = 1;
    ok &= SC_EXPECT_STATUS(dagr_darray_save(NULL, file, "A"), DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_darray_save(A, NULL, "A"), DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_darray_save(A, "", "A"), DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_darray_save(A, file, NULL), DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_darray_save(A, file, ""), DAGR_ERR_ARG);
    if (nranks > 1) {
        ok &= SC_EXPECT_STATUS(dagr_darray_save(A, file, rank ? "B" : "A"), DAGR_ERR_ARG);
        ok &= SC_CHECK(strstr(dagr_last_error(), "differs between ranks"), "message: %s",
                       dagr_last_error());
    }
    ok &= SC_EXPECT_STATUS(dagr_darray_save(A, nodir, "A"), DAGR_ERR_IO);
    ok &= SC_CHECK(strstr(dagr_last_error(), "cannot create"), "message: %s", dagr_last_error());

    /* A file that is not HDF5 is refused and left as it was. */
    if (rank == 0) {
        FILE *f = fopen(text, "w");
        fputs("not hdf5\n", f);
        fclose(f);
    }
    MPI_Barrier(dagr_comm(ctx));
    ok &= SC_EXPECT_STATUS(dagr_darray_save(A, text, "A"), DAGR_ERR_FORMAT);
    if (rank == 0) {
        char buf[64] = "";
        FILE *f = fopen(text, "r");
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        ok &= SC_CHECK(n == 9 && !strcmp(buf, "not hdf5\n"), "the text file changed: '%s'", buf);
    }
    /* A group where the dataset would go. */
    ok &= SC_EXPECT_STATUS(dagr_darray_save(A, more_file, "run1"), DAGR_ERR_ARG);
    ok &= SC_CHECK(strstr(dagr_last_error(), "not a dataset"), "message: %s", dagr_last_error());

    ok &= SC_EXPECT_STATUS(dagr_darray_save(A, file, "A"), DAGR_OK);
    /* A path through a dataset. */
    ok &= SC_EXPECT_STATUS(dagr_darray_save(A, file, "A/x"), DAGR_ERR_ARG);
    ok &= SC_CHECK(strstr(dagr_last_error(), "'A' there is not a group"), "message: %s",
                   dagr_last_error());
    dagr_grid_t g = dagr_grid_2d(P, Q);
    ok &= SC_EXPECT_STATUS(dagr_darray_load(ctx, file, "A/x", 0, 0, g, &L), DAGR_ERR_FORMAT);
    ok &= SC_EXPECT_STATUS(dagr_darray_load(NULL, file, "A", 0, 0, g, &L), DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_darray_load(ctx, file, "A", 0, 0, g, NULL), DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_darray_load(ctx, NULL, "A", 0, 0, g, &L), DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_darray_load(ctx, file, "", 0, 0, g, &L), DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_darray_load(ctx, file, "A", -1, 0, g, &L), DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_darray_load(ctx, file, "A", 2, -2, g, &L), DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_darray_load(ctx, file, "A", 2, 2, dagr_grid_2d(nranks + 1, 1), &L),
                           DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_darray_load(ctx, nodir, "A", 0, 0, g, &L), DAGR_ERR_IO);
    ok &= SC_CHECK(strstr(dagr_last_error(), "cannot open"), "message: %s", dagr_last_error());
    ok &= SC_EXPECT_STATUS(dagr_darray_load(ctx, text, "A", 0, 0, g, &L), DAGR_ERR_IO);
    ok &= SC_EXPECT_STATUS(dagr_darray_load(ctx, file, "B", 0, 0, g, &L), DAGR_ERR_FORMAT);
    ok &=
        SC_CHECK(strstr(dagr_last_error(), "has no dataset 'B'"), "message: %s", dagr_last_error());
    ok &= SC_EXPECT_STATUS(dagr_darray_load(ctx, file, "B/C", 0, 0, g, &L), DAGR_ERR_FORMAT);
    ok &= SC_EXPECT_STATUS(dagr_darray_load(ctx, more_file, "run1", 0, 0, g, &L), DAGR_ERR_FORMAT);
    ok &= SC_CHECK(strstr(dagr_last_error(), "not a dataset"), "message: %s", dagr_last_error());
    ok &= SC_CHECK(L == NULL, "out set after an error");

    /* A failed task before the save: the save reports it and the file stays usable. */
    static const dagr_kernel_t fail_kernel = {.name = "made_to_fail", .cpu = k_fail};
    dagr_access_t acc = {dagr_darray_tile(A, 0, 0), DAGR_RW};
    SC_TRY(dagr_spawn(ctx, &fail_kernel, NULL, 0, 1, &acc, NULL));
    ok &= SC_EXPECT_STATUS(dagr_darray_save(A, file, "A"), DAGR_ERR_NUMERICAL);
    ok &= SC_CHECK(strstr(dagr_last_error(), "made to fail"), "message: %s", dagr_last_error());
    SC_TRY(dagr_darray_random(A, 4));
    ok &= SC_EXPECT_STATUS(dagr_darray_save(A, file, "A"), DAGR_OK);
    ok &= SC_EXPECT_STATUS(dagr_darray_load(ctx, file, "A", 0, 0, g, &L), DAGR_OK);
    if (L) ok &= same_array(A, L, "after a failed save");
    dagr_darray_destroy(&L);
    dagr_darray_destroy(&A);
    return ok;
}

int main(int argc, char **argv) {
    SC_TRY(dagr_init(&argc, &argv, NULL, &ctx));
    rank = dagr_rank(ctx);
    nranks = dagr_size(ctx);
    sc_set_rank(rank);
    if (argc != 8 && !(argc == 9 && !strcmp(argv[8], "trace"))) {
        sc_fail_at(__FILE__, __LINE__, "usage: darray_io P Q M N MB NB DIR [trace]");
        dagr_finalize(&ctx);
        return sc_exit_code();
    }
    P = atoi(argv[1]), Q = atoi(argv[2]);
    M = atoll(argv[3]), N = atoll(argv[4]), MB = atoll(argv[5]), NB = atoll(argv[6]);
    dir = argv[7];
    if (argc == 9) {
        char file[1024];
        path_of(file, sizeof file, "traced.h5");
        dagr_darray_t *A = NULL, *B = NULL;
        SC_TRY(dagr_darray_create(ctx, DAGR_DOUBLE, M, N, MB, NB, dagr_grid_2d(P, Q), &A));
        SC_TRY(dagr_darray_random(A, 5));
        int ok = SC_EXPECT_STATUS(dagr_darray_save(A, file, "A"), DAGR_OK);
        ok &= SC_EXPECT_STATUS(dagr_darray_load(ctx, file, "A", MB, NB, dagr_grid_2d(P, Q), &B),
                               DAGR_OK);
        path_of(file, sizeof file, "traced.ckpt");
        ok &= SC_EXPECT_STATUS(dagr_checkpoint(ctx, file), DAGR_OK);
        ok &= SC_EXPECT_STATUS(dagr_resume(ctx, file), DAGR_OK);
        sc_result("traced_io", ok, " ");
        dagr_darray_destroy(&A);
        dagr_darray_destroy(&B);
        SC_EXPECT_STATUS(dagr_finalize(&ctx), DAGR_OK);
        return sc_exit_code();
    }

    int ok = roundtrip(DAGR_DOUBLE, 11);
    ok &= roundtrip(DAGR_FLOAT, 12);
    ok &= roundtrip(DAGR_INT64, 13);
    sc_result("roundtrip", ok, "M=%lld N=%lld", (long long)M, (long long)N);
    if (M > 0 && N > 0) {
        sc_result("more", more(), " ");
        sc_result("foreign", foreign(), " ");
        sc_result("io_errors", errors(), " ");
    }

    SC_EXPECT_STATUS(dagr_finalize(&ctx), DAGR_OK);
    return sc_exit_code();
}
