/* Failing-task scenario.
 *
 * Usage: fail
 *
 * Phase A: after PREFIX ordinary tasks, task #PREFIX (kernel "fail_boom", forced onto the last
 * rank) calls dagr_task_fail(DAGR_ERR_NUMERICAL, "boom 42") and returns DAGR_TASK_ERROR.
 * Tasks depending on it, directly or through other tasks, on its rank and on others, must not
 * run; independent tasks must run. dagr_wait_all returns DAGR_ERR_NUMERICAL on every rank and
 * dagr_last_error() names the kernel, the message, the task number and the rank; a second
 * dagr_wait_all returns DAGR_OK.
 * Phase B: a body returning DAGR_TASK_ERROR without dagr_task_fail gives DAGR_ERR_TASK.
 * Phase C: a body returning DAGR_TASK_RETRY twice then DAGR_TASK_DONE runs three times.
 * Phase D: a failure surfaces through dagr_fetch (which implies dagr_wait_all).
 * Phase E: new tasks work after all that, also on the handles whose tasks failed or were
 * poisoned, once they are overwritten.
 * Phase F: a failure pending at dagr_finalize is its return value.
 * Prints RANK r RESULT <check> ok|FAIL ... for each check. */
#include "scenario.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PREFIX 17
#define NFLAGS 64

static atomic_int ran[NFLAGS];
static atomic_int retry_runs;

/* Marks flag `id` as run on this rank and writes id into the last access. */
static dagr_task_result_t k_mark(const dagr_task_view_t *t) {
    int32_t id;
    memcpy(&id, t->args, sizeof id);
    atomic_store(&ran[id], 1);
    uint64_t v = (uint64_t)id;
    if (t->bytes[t->nbuf - 1] >= 8) memcpy(t->buf[t->nbuf - 1], &v, 8);
    return DAGR_TASK_DONE;
}

static dagr_task_result_t k_boom(const dagr_task_view_t *t) {
    int x = 42;
    dagr_task_fail(t, DAGR_ERR_NUMERICAL, "boom %d", x);
    return DAGR_TASK_ERROR;
}

static dagr_task_result_t k_plain(const dagr_task_view_t *t) {
    (void)t;
    return DAGR_TASK_ERROR;
}

static dagr_task_result_t k_singular(const dagr_task_view_t *t) {
    dagr_task_fail(t, DAGR_ERR_SINGULAR, "pivot %d is zero", 7);
    return DAGR_TASK_ERROR;
}

/* Returns RETRY on its first two runs, then writes the run count and returns DONE. */
static dagr_task_result_t k_retry(const dagr_task_view_t *t) {
    int n = atomic_fetch_add(&retry_runs, 1) + 1;
    if (n < 3) return DAGR_TASK_RETRY;
    uint64_t v = (uint64_t)n;
    memcpy(t->buf[0], &v, 8);
    return DAGR_TASK_DONE;
}

static const dagr_kernel_t K_MARK = {.name = "fail_mark", .cpu = k_mark};
static const dagr_kernel_t K_BOOM = {.name = "fail_boom", .cpu = k_boom};
static const dagr_kernel_t K_PLAIN = {.name = "fail_plain", .cpu = k_plain};
static const dagr_kernel_t K_SINGULAR = {.name = "fail_singular", .cpu = k_singular};
static const dagr_kernel_t K_RETRY = {.name = "fail_retry", .cpu = k_retry};
static const dagr_kernel_t K_RW = {.name = "fail_rw", .cpu = sc_k_rw};

static dagr_ctx_t *ctx;
static int rank, size;
static uint64_t nspawned;

static dagr_data_t *new_u64(int owner) {
    dagr_data_t *d = NULL;
    SC_TRY(dagr_data_create(ctx, 8, owner, &d));
    return d;
}

/* Spawns a task of kernel k over n accesses, on rank `on` (-1 = default); returns its seq. */
static uint64_t spawn(const dagr_kernel_t *k, int32_t id, int on, int n, dagr_access_t *acc) {
    dagr_task_opts_t o;
    dagr_task_opts_init(&o);
    o.rank = on;
    SC_TRY(dagr_spawn(ctx, k, &id, sizeof id, n, acc, &o));
    return nspawned++;
}

static int ran_anywhere(int id) {
    return (int)sc_allreduce_max(dagr_comm(ctx), ran[id]);
}

/* Whether s contains "#<n>" not followed by another digit. */
static int names_task(const char *s, uint64_t n) {
    char want[32];
    snprintf(want, sizeof want, "#%llu", (unsigned long long)n);
    for (const char *p = strstr(s, want); p; p = strstr(p + 1, want)) {
        char next = p[strlen(want)];
        if (next < '0' || next > '9') return 1;
    }
    return 0;
}

/* Checks that msg mentions the kernel, the text, the task number ("#N") and the rank. */
static int check_message(const char *what, const char *msg, const char *kernel, const char *text,
                         uint64_t seq, int on) {
    char ranks[32];
    snprintf(ranks, sizeof ranks, "rank %d", on);
    int ok = 1;
    ok &= SC_CHECK(strstr(msg, kernel) != NULL, "%s: message \"%s\" lacks kernel name %s", what,
                   msg, kernel);
    ok &= SC_CHECK(text == NULL || strstr(msg, text) != NULL, "%s: message \"%s\" lacks \"%s\"",
                   what, msg, text ? text : "");
    ok &= SC_CHECK(names_task(msg, seq), "%s: message \"%s\" lacks task number #%llu", what, msg,
                   (unsigned long long)seq);
    ok &= SC_CHECK(strstr(msg, ranks) != NULL, "%s: message \"%s\" lacks \"%s\"", what, msg, ranks);
    return ok;
}

int main(int argc, char **argv) {
    SC_TRY(dagr_init(&argc, &argv, NULL, &ctx));
    rank = dagr_rank(ctx);
    size = dagr_size(ctx);
    sc_set_rank(rank);
    const int last = size - 1, one = 1 % size;
    char msg[2048];

    /* ---- Phase A ---- */
    dagr_data_t *a = new_u64(0), *c = new_u64(0), *d = new_u64(last), *e = new_u64(one);
    dagr_data_t *f = new_u64(last), *y = new_u64(0), *z = new_u64(0);
    dagr_data_t *pre[PREFIX];
    for (int i = 0; i < PREFIX; i++) {
        pre[i] = new_u64(i % size);
        dagr_access_t acc[1] = {{pre[i], DAGR_WRITE}};
        spawn(&K_MARK, i, -1, 1, acc);
    }
    dagr_access_t af[1] = {{a, DAGR_WRITE}};
    uint64_t fseq = spawn(&K_BOOM, 0, last, 1, af);
    SC_CHECK(fseq == PREFIX, "bookkeeping");
    /* Dependents: direct on rank 0 and on the failing rank, transitive on rank 1, a later
     * writer of the failed handle, and a task reading both a poisoned and a healthy handle. */
    dagr_access_t d1[2] = {{a, DAGR_READ}, {c, DAGR_WRITE}};
    spawn(&K_MARK, 20, -1, 2, d1);
    dagr_access_t d2[2] = {{a, DAGR_READ}, {d, DAGR_WRITE}};
    spawn(&K_MARK, 21, -1, 2, d2);
    dagr_access_t d3[2] = {{c, DAGR_READ}, {e, DAGR_WRITE}};
    spawn(&K_MARK, 22, -1, 2, d3);
    dagr_access_t d4[1] = {{a, DAGR_RW}};
    spawn(&K_MARK, 23, one, 1, d4);
    dagr_access_t d5[3] = {{z, DAGR_READ}, {e, DAGR_READ}, {z, DAGR_RW}};
    spawn(&K_MARK, 24, -1, 3, d5);
    /* Independent tasks. */
    dagr_access_t i1[1] = {{f, DAGR_WRITE}};
    spawn(&K_MARK, 30, -1, 1, i1);
    dagr_access_t i2[2] = {{pre[0], DAGR_READ}, {y, DAGR_RW}};
    spawn(&K_MARK, 31, one, 2, i2);

    dagr_status_t st = dagr_wait_all(ctx);
    snprintf(msg, sizeof msg, "%s", dagr_last_error());
    sc_result("fail_status", st == DAGR_ERR_NUMERICAL, "status=%s size=%d", dagr_status_str(st),
              size);
    sc_result("fail_message", check_message("A", msg, "fail_boom", "boom 42", fseq, last),
              "message=\"%s\"", msg);
    int prefix_ran = 1, dependents_ran = 0;
    for (int i = 0; i < PREFIX; i++)
        prefix_ran &= ran_anywhere(i);
    for (int i = 20; i <= 24; i++) {
        int r = ran_anywhere(i);
        SC_CHECK(r == 0, "dependent task with id %d ran", i);
        dependents_ran += r;
    }
    sc_result("fail_poison", dependents_ran == 0, "dependents_ran=%d", dependents_ran);
    int indep = ran_anywhere(30) + ran_anywhere(31);
    sc_result("fail_independent", indep == 2 && prefix_ran, "independent_ran=%d prefix_ran=%d",
              indep, prefix_ran);
    uint64_t fv = 0;
    st = dagr_wait_all(ctx);
    int recover_ok = SC_EXPECT_STATUS(st, DAGR_OK);
    recover_ok &= SC_EXPECT_STATUS(dagr_fetch(f, &fv, -1), DAGR_OK);
    recover_ok &= SC_CHECK(fv == 30, "independent output %llu", (unsigned long long)fv);
    sc_result("fail_recover", recover_ok, "status=%s", dagr_status_str(st));

    /* ---- Phase B ---- */
    dagr_data_t *x = new_u64(one);
    dagr_access_t ax[1] = {{x, DAGR_WRITE}};
    uint64_t pseq = spawn(&K_PLAIN, 0, -1, 1, ax);
    st = dagr_wait_all(ctx);
    snprintf(msg, sizeof msg, "%s", dagr_last_error());
    int plain_ok = SC_EXPECT_STATUS(st, DAGR_ERR_TASK);
    plain_ok &= check_message("B", msg, "fail_plain", NULL, pseq, one);
    plain_ok &= SC_EXPECT_STATUS(dagr_wait_all(ctx), DAGR_OK);
    sc_result("plain_error", plain_ok, "status=%s message=\"%s\"", dagr_status_str(st), msg);

    /* ---- Phase C ---- */
    dagr_data_t *cnt = new_u64(last);
    dagr_access_t ac[1] = {{cnt, DAGR_RW}};
    spawn(&K_RETRY, 0, -1, 1, ac);
    st = dagr_wait_all(ctx);
    uint64_t cv = 0;
    int retry_ok = SC_EXPECT_STATUS(st, DAGR_OK);
    retry_ok &= SC_EXPECT_STATUS(dagr_fetch(cnt, &cv, -1), DAGR_OK);
    long runs = sc_allreduce_sum(dagr_comm(ctx), atomic_load(&retry_runs));
    retry_ok &= SC_CHECK(runs == 3 && cv == 3, "retry body ran %ld times, wrote %llu", runs,
                         (unsigned long long)cv);
    sc_result("retry", retry_ok, "runs=%ld", runs);

    /* ---- Phase D ---- */
    dagr_data_t *p = new_u64(0);
    dagr_access_t ap[1] = {{p, DAGR_WRITE}};
    uint64_t sseq = spawn(&K_SINGULAR, 0, last, 1, ap);
    uint64_t pv = 0;
    st = dagr_fetch(p, &pv, -1);
    snprintf(msg, sizeof msg, "%s", dagr_last_error());
    int fetch_ok = SC_EXPECT_STATUS(st, DAGR_ERR_SINGULAR);
    fetch_ok &= check_message("D", msg, "fail_singular", "pivot 7 is zero", sseq, last);
    fetch_ok &= SC_EXPECT_STATUS(dagr_wait_all(ctx), DAGR_OK);
    sc_result("fetch_error", fetch_ok, "status=%s message=\"%s\"", dagr_status_str(st), msg);

    /* ---- Phase E ---- */
    dagr_data_t *n = new_u64(one);
    uint64_t want = 0;
    for (uint64_t j = 0; j < 7; j++) {
        dagr_access_t an[1] = {{n, DAGR_RW}};
        dagr_task_opts_t o;
        dagr_task_opts_init(&o);
        o.rank = (int)(j % (uint64_t)size);
        SC_TRY(dagr_spawn(ctx, &K_RW, &j, sizeof j, 1, an, &o));
        nspawned++;
        want = 3 * want + j;
    }
    uint64_t nv = 0;
    int after_ok = SC_EXPECT_STATUS(dagr_fetch(n, &nv, -1), DAGR_OK);
    after_ok &= SC_CHECK(nv == want, "chain gave %llu, want %llu", (unsigned long long)nv,
                         (unsigned long long)want);
    sc_result("after_error", after_ok, "value=%llu", (unsigned long long)nv);

    /* The failed task's output and a poisoned dependent's output, overwritten (WRITE) and then
     * updated (RW) on other ranks. */
    dagr_access_t wa[1] = {{a, DAGR_WRITE}};
    spawn(&K_MARK, 40, one, 1, wa);
    uint64_t j1 = 1;
    dagr_access_t ra[1] = {{a, DAGR_RW}};
    dagr_task_opts_t ol;
    dagr_task_opts_init(&ol);
    ol.rank = last;
    SC_TRY(dagr_spawn(ctx, &K_RW, &j1, sizeof j1, 1, ra, &ol));
    nspawned++;
    dagr_access_t wd[1] = {{d, DAGR_WRITE}};
    spawn(&K_MARK, 41, 0, 1, wd);
    uint64_t av = 0, dv = 0;
    int reuse_ok = SC_EXPECT_STATUS(dagr_fetch(a, &av, -1), DAGR_OK);
    reuse_ok &= SC_EXPECT_STATUS(dagr_fetch(d, &dv, -1), DAGR_OK);
    reuse_ok &= SC_CHECK(av == 3 * 40 + 1 && dv == 41, "a = %llu (want 121), d = %llu (want 41)",
                         (unsigned long long)av, (unsigned long long)dv);
    sc_result("reuse_poisoned", reuse_ok, "a=%llu d=%llu", (unsigned long long)av,
              (unsigned long long)dv);

    /* ---- Phase F ---- */
    dagr_access_t ax2[1] = {{x, DAGR_WRITE}};
    spawn(&K_PLAIN, 0, -1, 1, ax2);
    st = dagr_finalize(&ctx);
    sc_result("finalize_error", st == DAGR_ERR_TASK && ctx == NULL, "status=%s ctx=%p",
              dagr_status_str(st), (void *)ctx);
    return sc_exit_code();
}
