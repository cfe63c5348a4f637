/* Tasks with many accesses (no cap): handles spread over every rank, read, updated and
 * written by tasks naming 200 of them (duplicates included), against a serial computation.
 *
 * Usage: wide [NACC]    (default 200)
 *
 * NH = 3 * NACC / 4 handles of 8 bytes, owned round-robin by the ranks, each set to its
 * index * 3 + 1 by a task on its owner. Then, per round r = 0 .. 2:
 *   gather  a task on rank r % size names NACC accesses: every handle once, READ, then
 *           NACC - NH of them again (READ), then its own result handle (WRITE): the result
 *           is the sum of what it read, duplicates counted;
 *   update  a task on rank (r + 1) % size names NACC accesses: the first 40 handles RW (each
 *           gets + r + 1), the others READ, one of the RW ones named again as READ (the same
 *           buffer); it checks that the duplicates see the same pointer.
 * At the end every handle and result is fetched and compared with the serial replay. The
 * view must carry nbuf = NACC and the bytes and leading dimension of each access.
 * Prints RANK r RESULT wide ok|FAIL ... */
#include "scenario.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct wide_args {
    int32_t nacc, nh, nrw;
    int32_t round;
} wide_args_t;

static uint64_t get64(const void *p) {
    uint64_t x;
    memcpy(&x, p, 8);
    return x;
}

static void put64(void *p, uint64_t x) {
    memcpy(p, &x, 8);
}

static dagr_task_result_t k_set(const dagr_task_view_t *t) {
    put64(t->buf[0], *(const uint64_t *)t->args);
    return DAGR_TASK_DONE;
}

static int view_ok(const dagr_task_view_t *t, int nacc) {
    if (t->nbuf != nacc) return 0;
    for (int i = 0; i < nacc; i++)
        if (t->bytes[i] != 8 || t->ld[i] != 8 || !t->buf[i]) return 0;
    return 1;
}

static dagr_task_result_t k_gather(const dagr_task_view_t *t) {
    const wide_args_t *a = t->args;
    if (!view_ok(t, a->nacc)) {
        dagr_task_fail(t, DAGR_ERR_TASK, "gather: the view has %d buffers, not %d", t->nbuf,
                       a->nacc);
        return DAGR_TASK_ERROR;
    }
    uint64_t sum = 0;
    for (int i = 0; i < a->nacc - 1; i++)
        sum += get64(t->buf[i]);
    put64(t->buf[a->nacc - 1], sum);
    return DAGR_TASK_DONE;
}

static dagr_task_result_t k_update(const dagr_task_view_t *t) {
    const wide_args_t *a = t->args;
    if (!view_ok(t, a->nacc) || t->buf[a->nacc - 1] != t->buf[0]) {
        dagr_task_fail(t, DAGR_ERR_TASK, "update: bad view (nbuf %d, duplicate %s)", t->nbuf,
                       t->buf[a->nacc - 1] == t->buf[0] ? "shared" : "not shared");
        return DAGR_TASK_ERROR;
    }
    for (int i = 0; i < a->nrw; i++)
        put64(t->buf[i], get64(t->buf[i]) + (uint64_t)a->round + 1);
    return DAGR_TASK_DONE;
}

static const dagr_kernel_t K_SET = {.name = "wide_set", .cpu = k_set};
static const dagr_kernel_t K_GATHER = {.name = "wide_gather", .cpu = k_gather};
static const dagr_kernel_t K_UPDATE = {.name = "wide_update", .cpu = k_update};

int main(int argc, char **argv) {
    int nacc = argc > 1 ? atoi(argv[1]) : 200;
    int nh = 3 * nacc / 4, nrw = 40;
    if (nacc < 4 * 14 || nh < nrw + 1) {
        fprintf(stderr, "usage: %s [NACC >= 56]\n", argv[0]);
        return 2;
    }
    dagr_ctx_t *ctx = NULL;
    SC_TRY(dagr_init(&argc, &argv, NULL, &ctx));
    const int rank = dagr_rank(ctx), size = dagr_size(ctx);
    sc_set_rank(rank);

    dagr_data_t **h = calloc((size_t)nh, sizeof *h), *res[3];
    uint64_t *want = calloc((size_t)nh, sizeof *want), want_res[3];
    dagr_access_t *acc = calloc((size_t)nacc, sizeof *acc);
    if (!h || !want || !acc) return 1;
    for (int i = 0; i < nh; i++) {
        SC_TRY(dagr_data_create(ctx, 8, i % size, &h[i]));
        want[i] = (uint64_t)i * 3 + 1;
        SC_TRY(dagr_spawn(ctx, &K_SET, &want[i], 8, 1, &(dagr_access_t){h[i], DAGR_WRITE}, NULL));
    }
    for (int r = 0; r < 3; r++) {
        SC_TRY(dagr_data_create(ctx, 8, r % size, &res[r]));
        wide_args_t a = {.nacc = nacc, .nh = nh, .nrw = nrw, .round = r};
        want_res[r] = 0;
        for (int i = 0; i < nacc - 1; i++) {
            int k = i < nh ? i : (i - nh) * 7 % nh;
            acc[i] = (dagr_access_t){h[k], DAGR_READ};
            want_res[r] += want[k];
        }
        acc[nacc - 1] = (dagr_access_t){res[r], DAGR_WRITE};
        SC_TRY(dagr_spawn(ctx, &K_GATHER, &a, sizeof a, nacc, acc, NULL));

        dagr_task_opts_t o;
        dagr_task_opts_init(&o);
        o.rank = (r + 1) % size;
        for (int i = 0; i < nacc - 1; i++)
            acc[i] = (dagr_access_t){h[i % nh], i < nrw ? DAGR_RW : DAGR_READ};
        acc[nacc - 1] = (dagr_access_t){h[0], DAGR_READ};
        for (int i = 0; i < nrw; i++)
            want[i] += (uint64_t)r + 1;
        SC_TRY(dagr_spawn(ctx, &K_UPDATE, &a, sizeof a, nacc, acc, &o));
    }

    int ok = SC_EXPECT_STATUS(dagr_wait_all(ctx), DAGR_OK), bad = 0;
    for (int i = 0; i < nh; i++) {
        uint64_t v = 0;
        ok &= SC_EXPECT_STATUS(dagr_fetch(h[i], &v, -1), DAGR_OK);
        bad += v != want[i];
    }
    for (int r = 0; r < 3; r++) {
        uint64_t v = 0;
        ok &= SC_EXPECT_STATUS(dagr_fetch(res[r], &v, -1), DAGR_OK);
        ok &= SC_CHECK(v == want_res[r], "round %d: sum %llu, want %llu", r, (unsigned long long)v,
                       (unsigned long long)want_res[r]);
    }
    ok &= SC_CHECK(bad == 0, "%d of %d handles differ from the serial replay", bad, nh);
    sc_result("wide", ok, "nacc=%d handles=%d size=%d", nacc, nh, size);
    for (int i = 0; i < nh; i++)
        dagr_data_destroy(&h[i]);
    for (int r = 0; r < 3; r++)
        dagr_data_destroy(&res[r]);
    SC_EXPECT_STATUS(dagr_finalize(&ctx), DAGR_OK);
    free(h), free(want), free(acc);
    return sc_exit_code();
}
