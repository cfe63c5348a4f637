/* gpu/gpu.c without a GPU: how a node's GPUs are shared among its ranks (gpu_share: blocks
 * without overlap, every GPU taken when there are enough ranks, each rank's block as the rule
 * says), and gpu_discover's answers with none asked for and, built without CUDA, none found.
 * Built from the source without CUDA, so it runs alike with or without the toolkit. */
#include <criterion/criterion.h>
#include <string.h>

#include "gpu.h"

TestSuite(gpu_share, .timeout = 60);

Test(gpu_share, blocks_cover_the_node_without_overlap) {
    for (int n = 0; n <= 9; n++) {
        for (int size = 1; size <= 12; size++) {
            int owner[16];
            memset(owner, -1, sizeof owner);
            int next = 0;
            for (int r = 0; r < size; r++) {
                int first, count;
                gpu_share(n, r, size, &first, &count);
                cr_assert(count >= 0 && count == n / size + (r < n % size),
                          "%d GPUs, %d ranks: rank %d takes %d", n, size, r, count);
                cr_assert(count == 0 || first == next, "%d GPUs, %d ranks: rank %d starts at %d", n,
                          size, r, first);
                for (int g = first; g < first + count; g++) {
                    cr_assert(g < n && owner[g] == -1, "GPU %d taken twice or out of range", g);
                    owner[g] = r;
                }
                next += count;
            }
            cr_assert_eq(next, n, "%d GPUs, %d ranks: %d taken", n, size, next);
        }
    }
}

Test(gpu_share, four_gpus) {
    int first, count;
    gpu_share(4, 1, 4, &first, &count); /* one each: rank 1 takes GPU 1 */
    cr_expect(first == 1 && count == 1);
    gpu_share(4, 1, 2, &first, &count); /* two each, consecutive: GPUs 2 and 3 */
    cr_expect(first == 2 && count == 2);
    gpu_share(4, 5, 8, &first, &count); /* more ranks than GPUs: ranks 4-7 take none */
    cr_expect_eq(count, 0);
    gpu_share(4, 4, 4, &first, &count); /* a rank out of range */
    cr_expect_eq(count, 0);
}

Test(gpu_share, discover_without_cuda_or_when_none_asked) {
    gpu_info_t g;
    gpu_env_t none = {.gpus = 0, .memory = 0};
    gpu_discover(&none, 0, 1, &g);
    cr_expect_eq(g.count, 0);
    cr_expect(strstr(g.why, "DAGR_GPUS=0") != NULL, "why: %s", g.why);
    gpu_env_t any = {.gpus = -1, .memory = 0};
    gpu_discover(&any, 0, 1, &g);
    cr_expect_eq(g.count, 0);
    cr_expect(strstr(g.why, "without CUDA") != NULL, "why: %s", g.why);
}
