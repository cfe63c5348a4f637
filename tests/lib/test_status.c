/* Status names, per-thread error messages, and the NULL-tolerant release functions. None of
 * these needs MPI. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <string.h>

#include <dagr/dagr.h>

#define NAME_ENTRY(s)                                                                              \
    { s, #s }
static const struct {
    dagr_status_t s;
    const char *id;
} all[] = {
    NAME_ENTRY(DAGR_OK),
    NAME_ENTRY(DAGR_ERR_ARG),
    NAME_ENTRY(DAGR_ERR_STATE),
    NAME_ENTRY(DAGR_ERR_UNSUPPORTED),
    NAME_ENTRY(DAGR_ERR_NOMEM),
    NAME_ENTRY(DAGR_ERR_MPI),
    NAME_ENTRY(DAGR_ERR_GPU),
    NAME_ENTRY(DAGR_ERR_IO),
    NAME_ENTRY(DAGR_ERR_FORMAT),
    NAME_ENTRY(DAGR_ERR_NUMERICAL),
    NAME_ENTRY(DAGR_ERR_NOT_SPD),
    NAME_ENTRY(DAGR_ERR_SINGULAR),
    NAME_ENTRY(DAGR_ERR_NONFINITE),
    NAME_ENTRY(DAGR_ERR_DIVERGED),
    NAME_ENTRY(DAGR_ERR_TASK),
    NAME_ENTRY(DAGR_ERR_INTERNAL),
};
#define NALL (sizeof all / sizeof all[0])

Test(lib_status, every_status_has_a_distinct_name) {
    for (size_t i = 0; i < NALL; i++) {
        const char *a = dagr_status_str(all[i].s);
        cr_assert_not_null(a, "%s has a NULL name", all[i].id);
        cr_expect_gt(strlen(a), 0, "%s has an empty name", all[i].id);
        cr_expect_str_neq(a, "unknown dagr status", "%s is unknown to dagr_status_str", all[i].id);
        for (size_t j = 0; j < i; j++)
            cr_expect_str_neq(a, dagr_status_str(all[j].s), "%s and %s share the name \"%s\"",
                              all[i].id, all[j].id, a);
    }
}

/* The header's example is "DAGR_ERR_ARG: invalid argument": each name shows its identifier. */
Test(lib_status, names_show_the_identifier) {
    for (size_t i = 0; i < NALL; i++) {
        const char *a = dagr_status_str(all[i].s);
        size_t n = strlen(all[i].id);
        cr_expect(strncmp(a, all[i].id, n) == 0 && (a[n] == '\0' || a[n] == ':'),
                  "dagr_status_str(%s) = \"%s\"", all[i].id, a);
    }
}

Test(lib_status, unknown_values_have_a_name) {
    const int unknown[] = {1, 7, -4, -11, -59, -64, -99, -12345, 0x7fffffff};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        const char *a = dagr_status_str((dagr_status_t)unknown[i]);
        cr_assert_not_null(a);
        cr_expect_str_eq(a, "unknown dagr status", "dagr_status_str(%d) = \"%s\"", unknown[i], a);
    }
}

Test(lib_status, last_error_is_empty_before_any_error) {
    const char *m = dagr_last_error();
    cr_assert_not_null(m);
    cr_expect_str_eq(m, "");
}

static void *provoke_error(void *arg) {
    dagr_data_t *out = NULL;
    dagr_status_t st = dagr_data_create(NULL, 8, 0, &out);
    const char *m = dagr_last_error();
    *(int *)arg = st == DAGR_ERR_ARG && m != NULL && m[0] != '\0';
    return NULL;
}

Test(lib_status, last_error_is_per_thread) {
    int ok = 0;
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, provoke_error, &ok), 0);
    pthread_join(th, NULL);
    cr_expect_eq(ok, 1, "the thread saw no error message for its own failed call");
    cr_expect_str_eq(dagr_last_error(), "", "another thread's error leaked into this thread");
    /* And this thread's own error is its own. */
    dagr_data_t *out = NULL;
    cr_expect_eq(dagr_data_create(NULL, 8, 0, &out), DAGR_ERR_ARG);
    cr_expect_str_neq(dagr_last_error(), "");
}

Test(lib_status, release_functions_tolerate_null) {
    cr_expect_eq(dagr_data_destroy(NULL), DAGR_OK);
    dagr_data_t *d = NULL;
    cr_expect_eq(dagr_data_destroy(&d), DAGR_OK);
    cr_expect_null(d);
    cr_expect_eq(dagr_queue_destroy(NULL), DAGR_OK);
    dagr_queue_t *q = NULL;
    cr_expect_eq(dagr_queue_destroy(&q), DAGR_OK);
    cr_expect_eq(dagr_finalize(NULL), DAGR_OK);
    dagr_ctx_t *ctx = NULL;
    cr_expect_eq(dagr_finalize(&ctx), DAGR_OK);
    cr_expect_null(ctx);
}
