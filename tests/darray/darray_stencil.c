/* dagr_darray_stencil scenario: every boundary rule, dtype and radius against a serial
 * stencil on the gathered array.
 *
 * Usage: darray_stencil P Q M N MB NB RADII
 *
 * RADII is a comma-separated list (e.g. 0,1,2,7). For each radius, for each boundary rule,
 * A (M x N of MB x NB tiles on a P x Q block-cyclic grid, double and float; int64 for one rule
 * per radius) gets random values, B = stencil(A), and B is gathered and compared with a serial
 * stencil computed here on the gathered A, with this file's own boundary mapping. The stencil
 * is a weighted sum over the (2r + 1)^2 neighbourhood with a different weight at every
 * offset, so any wrong halo element changes the result; the serial run calls the same
 * (non-inlined) point function in the same order, so results must be bit-identical. The
 * callback also checks what it is told (shape, origin, dtype, leading dimension). Further
 * cases for the first radius: A and B on different distributions, A and B views with partial
 * tiles (B's surroundings must stay untouched). Prints RESULT stencil ok cases=K.
 *
 * Then the argument errors, each with its exact status and with nothing inserted (the callback
 * never runs, B keeps its contents), the DAGR_ERR_UNSUPPORTED refusal of a radius spanning
 * too many tiles and the largest radius accepted for those tiles. Prints RESULT
 * stencil_errors ok. */
#include "scenario.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static dagr_ctx_t *ctx;
static int rank;
static int P, Q;
static int64_t M, N, MB, NB;

static const dagr_boundary_t rules[4] = {DAGR_BOUNDARY_ZERO, DAGR_BOUNDARY_WRAP,
                                         DAGR_BOUNDARY_CLAMP, DAGR_BOUNDARY_REFLECT};
static const char *const rule_names[4] = {"zero", "wrap", "clamp", "reflect"};
static const char *dtype_name(dagr_dtype_t t) {
    return t == DAGR_FLOAT ? "float" : t == DAGR_DOUBLE ? "double" : "int64";
}

/* ---- the stencil: sum over dc, then dr, of w(dr, dc) * a(r + dr, c + dc) ---- */

/* Weight of offset (dr, dc): 1 .. (2R + 1)^2, a different one at every offset. */
static inline int64_t weight(int dr, int dc, int R) {
    return 1 + (dr + R) + (int64_t)(2 * R + 1) * (dc + R);
}

/* The value at p (a padded array with leading dimension ld). noinline: the callback and the
 * serial reference run the very same code, so floating-point results agree bit for bit. */
__attribute__((noinline)) static double point_d(const double *p, int64_t ld, int R) {
    double s = 0.0;
    for (int dc = -R; dc <= R; dc++)
        for (int dr = -R; dr <= R; dr++)
            s += (double)weight(dr, dc, R) * p[dr + dc * ld];
    return s;
}
__attribute__((noinline)) static float point_s(const float *p, int64_t ld, int R) {
    double s = 0.0;
    for (int dc = -R; dc <= R; dc++)
        for (int dr = -R; dr <= R; dr++)
            s += (double)weight(dr, dc, R) * (double)p[dr + dc * ld];
    return (float)s;
}
/* int64: a sum modulo 2^64 (exact, and no signed overflow). */
static int64_t point_i(const int64_t *p, int64_t ld, int R) {
    uint64_t s = 0;
    for (int dc = -R; dc <= R; dc++)
        for (int dr = -R; dr <= R; dr++)
            s += (uint64_t)weight(dr, dc, R) * (uint64_t)p[dr + dc * ld];
    int64_t v;
    memcpy(&v, &s, sizeof v);
    return v;
}

typedef struct st_user {
    int radius;
    dagr_dtype_t dtype;
    int64_t mb, nb; /* A's tile size */
    atomic_long calls, bad;
} st_user_t;

static void stencil_fn(const dagr_tile_t *in, dagr_tile_t *out, void *user) {
    st_user_t *u = user;
    const int R = u->radius;
    atomic_fetch_add(&u->calls, 1);
    if (in->rows != out->rows || in->cols != out->cols || in->i0 != out->i0 || in->j0 != out->j0 ||
        in->dtype != u->dtype || out->dtype != u->dtype || in->ld < in->rows + 2 * R ||
        out->ld < out->rows || in->rows < 1 || in->cols < 1 || in->i0 % u->mb != 0 ||
        in->j0 % u->nb != 0) {
        atomic_fetch_add(&u->bad, 1);
        return;
    }
    for (int64_t c = 0; c < out->cols; c++) {
        for (int64_t r = 0; r < out->rows; r++) {
            int64_t k = r + c * in->ld, o = r + c * out->ld;
            if (u->dtype == DAGR_DOUBLE)
                ((double *)out->data)[o] = point_d((const double *)in->data + k, in->ld, R);
            else if (u->dtype == DAGR_FLOAT)
                ((float *)out->data)[o] = point_s((const float *)in->data + k, in->ld, R);
            else
                ((int64_t *)out->data)[o] = point_i((const int64_t *)in->data + k, in->ld, R);
        }
    }
}

/* ---- the serial reference ---- */

/* Array index of global index g in an array of s elements under rule b, or -1 (a zero).
 * Written as the rules read (fold until inside), unlike the library's modular arithmetic. */
static int64_t ref_index(int64_t g, int64_t s, dagr_boundary_t b) {
    if (g >= 0 && g < s) return g;
    switch (b) {
    case DAGR_BOUNDARY_ZERO:
        return -1;
    case DAGR_BOUNDARY_CLAMP:
        return g < 0 ? 0 : s - 1;
    case DAGR_BOUNDARY_WRAP:
        while (g < 0)
            g += s;
        while (g >= s)
            g -= s;
        return g;
    default: /* REFLECT: a[-1] = a[1], a[s] = a[s - 2]; a 1-element array has only a[0] */
        if (s == 1) return 0;
        while (g < 0 || g >= s) {
            if (g < 0) g = -g;
            if (g >= s) g = 2 * (s - 1) - g;
        }
        return g;
    }
}

/* out (m x n, ld m) = the stencil of a (m x n, ld m) of element size es. */
static void ref_stencil(const void *a, void *out, int64_t m, int64_t n, int R, dagr_boundary_t b,
                        dagr_dtype_t t) {
    if (m == 0 || n == 0) return;
    size_t es = dagr_dtype_size(t);
    int64_t pm = m + 2 * R, pn = n + 2 * R;
    char *pad = calloc((size_t)(pm * pn), es);
    for (int64_t q = 0; q < pn; q++) {
        int64_t j = ref_index(q - R, n, b);
        for (int64_t p = 0; p < pm; p++) {
            int64_t i = ref_index(p - R, m, b);
            if (i >= 0 && j >= 0)
                memcpy(pad + (size_t)(p + q * pm) * es, (const char *)a + (size_t)(i + j * m) * es,
                       es);
        }
    }
    for (int64_t c = 0; c < n; c++) {
        for (int64_t r = 0; r < m; r++) {
            int64_t k = (r + R) + (c + R) * pm;
            if (t == DAGR_DOUBLE)
                ((double *)out)[r + c * m] = point_d((const double *)pad + k, pm, R);
            else if (t == DAGR_FLOAT)
                ((float *)out)[r + c * m] = point_s((const float *)pad + k, pm, R);
            else
                ((int64_t *)out)[r + c * m] = point_i((const int64_t *)pad + k, pm, R);
        }
    }
    free(pad);
}

/* ---- one case ---- */

typedef enum layout { SAME, OTHER_DIST, VIEWS } layout_t;

/* Runs one stencil and checks it; returns 1 when it matched. */
static int run_case(int R, dagr_boundary_t b, const char *bname, dagr_dtype_t t, layout_t lay,
                    uint64_t seed) {
    char what[160];
    snprintf(what, sizeof what, "%lldx%lld tiles %lldx%lld grid %dx%d radius %d %s %s%s",
             (long long)M, (long long)N, (long long)MB, (long long)NB, P, Q, R, bname,
             dtype_name(t),
             lay == OTHER_DIST ? " (B row-cyclic)"
             : lay == VIEWS    ? " (views)"
                               : "");
    size_t es = dagr_dtype_size(t);
    dagr_darray_t *A = NULL, *B = NULL, *bigA = NULL, *bigB = NULL;
    /* Views start one tile in and stop short of the parent's last tile, which is cut so that
     * the view's last tile row and column cover only part of their handles. */
    int64_t bm = M + MB + MB / 2 + 1, bn = N + NB + NB / 2 + 1;
    if (lay == VIEWS) {
        SC_TRY(dagr_darray_create(ctx, t, bm, bn, MB, NB, dagr_grid_2d(P, Q), &bigA));
        SC_TRY(dagr_darray_create(ctx, t, bm, bn, MB, NB, dagr_grid_2d(Q, P), &bigB));
        SC_TRY(dagr_darray_random(bigA, seed));
        SC_TRY(dagr_darray_fill(bigB, 5.0));
        SC_TRY(dagr_darray_view(bigA, MB, NB, M, N, &A));
        SC_TRY(dagr_darray_view(bigB, MB, NB, M, N, &B));
    } else {
        SC_TRY(dagr_darray_create(ctx, t, M, N, MB, NB, dagr_grid_2d(P, Q), &A));
        SC_TRY(dagr_darray_create(ctx, t, M, N, MB, NB,
                                  lay == OTHER_DIST ? dagr_grid_row_cyclic() : dagr_grid_2d(P, Q),
                                  &B));
        SC_TRY(dagr_darray_random(A, seed));
        SC_TRY(dagr_darray_fill(B, -1.0)); /* an element fn did not write shows */
    }
    st_user_t u = {.radius = R, .dtype = t, .mb = MB, .nb = NB};
    SC_TRY(dagr_darray_stencil(A, R, b, stencil_fn, &u, B));

    size_t cells = (size_t)(M * N) + 1;
    char *a = malloc(cells * es), *got = malloc(cells * es), *want = malloc(cells * es);
    SC_TRY(dagr_darray_gather(A, a, M > 0 ? M : 1, -1));
    SC_TRY(dagr_darray_gather(B, got, M > 0 ? M : 1, -1));
    ref_stencil(a, want, M, N, R, b, t);

    long calls = sc_allreduce_sum(dagr_comm(ctx), atomic_load(&u.calls));
    long bad = sc_allreduce_sum(dagr_comm(ctx), atomic_load(&u.bad));
    int64_t tiles = M == 0 || N == 0 ? 0 : ((M + MB - 1) / MB) * ((N + NB - 1) / NB);
    int ok = SC_CHECK(calls == tiles, "%s: fn ran %ld times for %lld tiles", what, calls,
                      (long long)tiles);
    ok &= SC_CHECK(bad == 0, "%s: fn was given %ld wrong tile descriptions", what, bad);
    int64_t wrong = 0, first = -1;
    for (int64_t k = 0; k < M * N; k++) {
        if (memcmp(got + k * (int64_t)es, want + k * (int64_t)es, es) != 0) {
            if (first < 0) first = k;
            wrong++;
        }
    }
    if (wrong) {
        double g = 0, w = 0;
        if (t == DAGR_DOUBLE) g = ((double *)got)[first], w = ((double *)want)[first];
        if (t == DAGR_FLOAT) g = ((float *)got)[first], w = ((float *)want)[first];
        if (t == DAGR_INT64)
            g = (double)((int64_t *)got)[first], w = (double)((int64_t *)want)[first];
        ok &= SC_CHECK(wrong == 0,
                       "%s: %lld wrong elements, first (%lld, %lld): got %.17g want %.17g", what,
                       (long long)wrong, (long long)(first % M), (long long)(first / M), g, w);
    }
    if (lay == VIEWS) {
        /* Everything of bigB outside the view keeps its 5. */
        char *all = malloc((size_t)(bm * bn) * es);
        SC_TRY(dagr_darray_gather(bigB, all, bm, -1));
        int64_t touched = 0;
        for (int64_t j = 0; j < bn; j++)
            for (int64_t i = 0; i < bm; i++) {
                bool inside = i >= MB && i < MB + M && j >= NB && j < NB + N;
                double v = t == DAGR_DOUBLE  ? ((double *)all)[i + j * bm]
                           : t == DAGR_FLOAT ? ((float *)all)[i + j * bm]
                                             : (double)((int64_t *)all)[i + j * bm];
                if (!inside && v != 5.0) touched++;
            }
        ok &= SC_CHECK(touched == 0, "%s: %lld elements outside the view B were changed", what,
                       (long long)touched);
        free(all);
    }
    free(a);
    free(got);
    free(want);
    SC_TRY(dagr_darray_destroy(&A));
    SC_TRY(dagr_darray_destroy(&B));
    SC_TRY(dagr_darray_destroy(&bigA));
    SC_TRY(dagr_darray_destroy(&bigB));
    return ok;
}

/* ---- errors ---- */

static int last_error_has(const char *s) {
    const char *e = dagr_last_error();
    return SC_CHECK(e && strstr(e, s), "message '%s' does not mention '%s'", e ? e : "(null)", s);
}

static void errors(void) {
    int ok = 1;
    int64_t m = M > 0 ? M : 3, n = N > 0 ? N : 4; /* a non-empty array, whatever the shape */
    dagr_darray_t *A, *B, *B2, *B3, *V;
    SC_TRY(dagr_darray_create(ctx, DAGR_DOUBLE, m, n, MB, NB, dagr_grid_2d(P, Q), &A));
    SC_TRY(dagr_darray_create(ctx, DAGR_DOUBLE, m, n, MB, NB, dagr_grid_2d(P, Q), &B));
    SC_TRY(dagr_darray_create(ctx, DAGR_DOUBLE, m + 1, n, MB, NB, dagr_grid_2d(P, Q), &B2));
    SC_TRY(dagr_darray_create(ctx, DAGR_DOUBLE, m, n, MB + 1, NB, dagr_grid_2d(P, Q), &B3));
    SC_TRY(dagr_darray_view(A, 0, 0, m, n, &V));
    SC_TRY(dagr_darray_random(A, 7));
    SC_TRY(dagr_darray_fill(B, 7.0));
    st_user_t u = {.radius = 1, .dtype = DAGR_DOUBLE, .mb = 2, .nb = 2};

    ok &=
        SC_EXPECT_STATUS(dagr_darray_stencil(A, 1, DAGR_BOUNDARY_ZERO, NULL, &u, B), DAGR_ERR_ARG);
    ok &= last_error_has("fn");
    ok &= SC_EXPECT_STATUS(dagr_darray_stencil(A, -1, DAGR_BOUNDARY_ZERO, stencil_fn, &u, B),
                           DAGR_ERR_ARG);
    ok &= last_error_has("radius -1");
    ok &= SC_EXPECT_STATUS(dagr_darray_stencil(A, 1, (dagr_boundary_t)7, stencil_fn, &u, B),
                           DAGR_ERR_ARG);
    ok &= last_error_has("boundary 7");
    ok &= SC_EXPECT_STATUS(dagr_darray_stencil(A, 1, (dagr_boundary_t)-1, stencil_fn, &u, B),
                           DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_darray_stencil(A, 1, DAGR_BOUNDARY_WRAP, stencil_fn, &u, B2),
                           DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_darray_stencil(A, 1, DAGR_BOUNDARY_WRAP, stencil_fn, &u, B3),
                           DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_darray_stencil(A, 1, DAGR_BOUNDARY_WRAP, stencil_fn, &u, A),
                           DAGR_ERR_ARG);
    ok &= last_error_has("B is A");
    ok &= SC_EXPECT_STATUS(dagr_darray_stencil(A, 1, DAGR_BOUNDARY_WRAP, stencil_fn, &u, V),
                           DAGR_ERR_ARG);
    ok &= last_error_has("shares tiles");
    ok &= SC_EXPECT_STATUS(dagr_darray_stencil(V, 1, DAGR_BOUNDARY_WRAP, stencil_fn, &u, A),
                           DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_darray_stencil(NULL, 1, DAGR_BOUNDARY_WRAP, stencil_fn, &u, B),
                           DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_darray_stencil(A, 1, DAGR_BOUNDARY_WRAP, stencil_fn, &u, NULL),
                           DAGR_ERR_ARG);

    /* 20 x 20 in 2 x 2 tiles: radius 4 spans at most 5 x 5 tiles (fits in one task's 31
     * reads), radius 5 up to 7 x 7 (refused before anything is inserted). An 8 x 8 array has
     * only 4 x 4 tiles, so there any radius fits, under every rule. */
    dagr_darray_t *S, *T, *S8, *T8;
    SC_TRY(dagr_darray_create(ctx, DAGR_DOUBLE, 20, 20, 2, 2, dagr_grid_2d(P, Q), &S));
    SC_TRY(dagr_darray_create(ctx, DAGR_DOUBLE, 20, 20, 2, 2, dagr_grid_2d(P, Q), &T));
    SC_TRY(dagr_darray_fill(T, 7.0));
    ok &= SC_EXPECT_STATUS(dagr_darray_stencil(S, 5, DAGR_BOUNDARY_ZERO, stencil_fn, &u, T),
                           DAGR_ERR_UNSUPPORTED);
    ok &= last_error_has("radius 5");
    ok &= last_error_has("2x2 tiles");
    ok &= SC_EXPECT_STATUS(dagr_darray_stencil(S, 1000, DAGR_BOUNDARY_REFLECT, stencil_fn, &u, T),
                           DAGR_ERR_UNSUPPORTED);

    /* Nothing was inserted: fn never ran and B kept its contents. */
    SC_TRY(dagr_wait_all(ctx));
    long calls = sc_allreduce_sum(dagr_comm(ctx), atomic_load(&u.calls));
    ok &= SC_CHECK(calls == 0, "fn ran %ld times after refused calls", calls);
    double *g = malloc((size_t)(m * n) * sizeof *g), *g20 = malloc(400 * sizeof *g20);
    SC_TRY(dagr_darray_gather(B, g, m, -1));
    SC_TRY(dagr_darray_gather(T, g20, 20, -1));
    int64_t changed = 0;
    for (int64_t k = 0; k < m * n; k++)
        changed += g[k] != 7.0;
    for (int k = 0; k < 400; k++)
        changed += g20[k] != 7.0;
    ok &= SC_CHECK(changed == 0, "%lld elements of B changed after refused calls",
                   (long long)changed);

    /* The largest radius these tiles allow, and a radius far beyond a small periodic array. */
    u.radius = 4;
    SC_TRY(dagr_darray_random(S, 11));
    SC_TRY(dagr_darray_stencil(S, 4, DAGR_BOUNDARY_ZERO, stencil_fn, &u, T));
    double *a = malloc(400 * sizeof *a), *want = malloc(400 * sizeof *want);
    SC_TRY(dagr_darray_gather(S, a, 20, -1));
    SC_TRY(dagr_darray_gather(T, g20, 20, -1));
    ref_stencil(a, want, 20, 20, 4, DAGR_BOUNDARY_ZERO, DAGR_DOUBLE);
    ok &= SC_CHECK(memcmp(g20, want, 400 * sizeof *a) == 0, "radius 4 over 2x2 tiles differs");

    SC_TRY(dagr_darray_create(ctx, DAGR_DOUBLE, 8, 8, 2, 2, dagr_grid_2d(P, Q), &S8));
    SC_TRY(dagr_darray_create(ctx, DAGR_DOUBLE, 8, 8, 2, 2, dagr_grid_2d(Q, P), &T8));
    SC_TRY(dagr_darray_random(S8, 12));
    for (int k = 0; k < 4; k++) {
        u.radius = 9;
        SC_TRY(dagr_darray_stencil(S8, 9, rules[k], stencil_fn, &u, T8));
        SC_TRY(dagr_darray_gather(S8, a, 8, -1));
        SC_TRY(dagr_darray_gather(T8, g20, 8, -1));
        ref_stencil(a, want, 8, 8, 9, rules[k], DAGR_DOUBLE);
        ok &= SC_CHECK(memcmp(g20, want, 64 * sizeof *a) == 0, "radius 9 %s over 8x8 differs",
                       rule_names[k]);
    }
    ok &= SC_CHECK(atomic_load(&u.bad) == 0, "fn was given wrong tile descriptions");

    free(a);
    free(want);
    free(g);
    free(g20);
    SC_TRY(dagr_darray_destroy(&S8));
    SC_TRY(dagr_darray_destroy(&T8));
    SC_TRY(dagr_darray_destroy(&S));
    SC_TRY(dagr_darray_destroy(&T));
    SC_TRY(dagr_darray_destroy(&V));
    SC_TRY(dagr_darray_destroy(&A));
    SC_TRY(dagr_darray_destroy(&B));
    SC_TRY(dagr_darray_destroy(&B2));
    SC_TRY(dagr_darray_destroy(&B3));
    sc_result("stencil_errors", ok, "m=%lld n=%lld", (long long)m, (long long)n);
}

int main(int argc, char **argv) {
    SC_TRY(dagr_init(&argc, &argv, NULL, &ctx));
    rank = dagr_rank(ctx);
    sc_set_rank(rank);
    if (argc != 8) {
        sc_fail_at(__FILE__, __LINE__, "usage: darray_stencil P Q M N MB NB RADII");
        dagr_finalize(&ctx);
        return sc_exit_code();
    }
    P = atoi(argv[1]), Q = atoi(argv[2]);
    M = atoll(argv[3]), N = atoll(argv[4]), MB = atoll(argv[5]), NB = atoll(argv[6]);
    int radii[16], nr = 0;
    for (char *s = argv[7]; *s && nr < 16;) {
        radii[nr++] = (int)strtol(s, &s, 10);
        if (*s == ',') s++;
    }

    int cases = 0, passed = 0;
    uint64_t seed = 100;
    for (int k = 0; k < nr; k++) {
        for (int b = 0; b < 4; b++) {
            dagr_dtype_t types[2] = {DAGR_DOUBLE, DAGR_FLOAT};
            for (int d = 0; d < 2; d++, cases++)
                passed += run_case(radii[k], rules[b], rule_names[b], types[d], SAME, seed++);
        }
        int b = k % 4;
        passed += run_case(radii[k], rules[b], rule_names[b], DAGR_INT64, SAME, seed++);
        cases++;
    }
    if (nr > 0 && M > 0 && N > 0) {
        int R = radii[nr - 1];
        passed += run_case(R, DAGR_BOUNDARY_REFLECT, "reflect", DAGR_DOUBLE, OTHER_DIST, seed++);
        passed += run_case(R, DAGR_BOUNDARY_WRAP, "wrap", DAGR_DOUBLE, VIEWS, seed++);
        passed += run_case(R, DAGR_BOUNDARY_CLAMP, "clamp", DAGR_FLOAT, VIEWS, seed++);
        cases += 3;
    }
    sc_result("stencil", passed == cases, "cases=%d passed=%d", cases, passed);

    errors();

    SC_EXPECT_STATUS(dagr_finalize(&ctx), DAGR_OK);
    return sc_exit_code();
}
