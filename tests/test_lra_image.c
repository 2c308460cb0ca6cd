/* LRA Image: the CIFAR-10 binary and Fashion-MNIST IDX loaders on tiny
 * fixtures in the official formats (tests/data/lra/), their errors on
 * malformed files, split sizes and provenance. */
#include "tasks/lra.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define FIXTURES ATTN_SOURCE_DIR "/tests/data/lra"

static param_bag no_params(void)
{
    param_bag p;
    memset(&p, 0, sizeof p);
    return p;
}

Test(lra_image, fashion_stand_in_reads_idx_pixels_in_row_major_order_after_cls)
{
    param_bag p = no_params();
    task_data d;
    cr_assert_eq(task_lra_image.make(&p, TASK_TEST, 1, 10, FIXTURES "/fashion_ok", &d), 0, "%s", attn_last_error());
    cr_assert_str_eq(d.data_source, "stand-in:fashion-mnist");
    cr_assert_eq(d.len, 1 + 784);
    cr_assert_eq(d.vocab, LRA_IMAGE_VOCAB);
    int seen[10] = {0};
    for (int64_t i = 0; i < d.n; i++) {
        const int32_t *t = task_tokens(&d, i);
        cr_assert_eq(t[0], LRA_IMAGE_CLS);
        int found = -1; /* pixel (0,0) of test image c is (100 + c) * 7 mod 256 */
        for (int c = 0; c < 10; c++)
            if (t[1] == ((100 + c) * 7) % 256)
                found = c;
        cr_assert_geq(found, 0, "example %ld: first pixel %d is no fixture image", (long)i, t[1]);
        seen[found]++;
        for (int y = 0; y < 28; y++)
            for (int x = 0; x < 28; x++)
                cr_assert_eq(t[1 + y * 28 + x], ((100 + found) * 7 + y * 3 + x) % 256);
        cr_assert_eq(d.labels[i], (100 + found) % 10);
    }
    for (int c = 0; c < 10; c++)
        cr_assert_eq(seen[c], 1, "the 10 test images are each drawn once");
    task_data_free(&d);
}

Test(lra_image, splits_are_ninety_ten_of_train_and_the_test_file)
{
    param_bag p = no_params();
    task_data d;
    cr_assert_eq(task_lra_image.make(&p, TASK_TRAIN, 1, 18, FIXTURES "/fashion_ok", &d), 0, "%s", attn_last_error());
    for (int64_t i = 0; i < d.n; i++) /* train holds images 0..17 of the train file */
        cr_assert_lt((task_tokens(&d, i)[1] / 7) % 256, 18);
    task_data_free(&d);
    cr_assert_lt(task_lra_image.make(&p, TASK_TRAIN, 1, 19, FIXTURES "/fashion_ok", &d), 0);
    cr_assert(strstr(attn_last_error(), "train split has 18 examples, 19 asked for"), "%s", attn_last_error());
    cr_assert_eq(task_lra_image.make(&p, TASK_VALID, 1, 2, FIXTURES "/fashion_ok", &d), 0);
    for (int64_t i = 0; i < d.n; i++)
        cr_assert(task_tokens(&d, i)[1] == 18 * 7 % 256 || task_tokens(&d, i)[1] == 19 * 7 % 256);
    task_data_free(&d);
}

Test(lra_image, same_seed_same_sample_and_pad32_centres_the_image)
{
    param_bag p = no_params();
    task_data a, b, c;
    cr_assert_eq(task_lra_image.make(&p, TASK_TRAIN, 7, 5, FIXTURES "/fashion_ok", &a), 0);
    cr_assert_eq(task_lra_image.make(&p, TASK_TRAIN, 7, 5, FIXTURES "/fashion_ok", &b), 0);
    cr_assert_eq(memcmp(a.tokens, b.tokens, sizeof(int32_t) * (size_t)(a.n * a.len)), 0);
    cr_assert_eq(param_bag_add(&p, "pad32=1"), 0);
    cr_assert_eq(task_lra_image.make(&p, TASK_TRAIN, 7, 5, FIXTURES "/fashion_ok", &c), 0);
    cr_assert_eq(c.len, 1 + 1024);
    for (int64_t i = 0; i < c.n; i++) {
        cr_assert_eq(task_tokens(&c, i)[1 + 0], 0, "border pixels are black");
        cr_assert_eq(task_tokens(&c, i)[1 + 2 * 32 + 2], task_tokens(&a, i)[1], "(0,0) moves to (2,2)");
    }
    task_data_free(&a);
    task_data_free(&b);
    task_data_free(&c);
}

Test(lra_image, cifar_binary_is_official_grayscale_with_lra_weights)
{
    param_bag p = no_params();
    task_data d;
    cr_assert_eq(task_lra_image.make(&p, TASK_TEST, 3, 3, FIXTURES "/cifar", &d), 0, "%s", attn_last_error());
    cr_assert_str_eq(d.data_source, "official");
    cr_assert_eq(d.len, 1 + 1024);
    for (int64_t i = 0; i < d.n; i++) {
        int k = d.labels[i] + 100 - 100 % 10; /* records 100..102 carry labels 0..2 */
        const int32_t *t = task_tokens(&d, i);
        for (int px = 0; px < 1024; px += 97) {
            double g = 0.2989 * ((k + px) % 256) + 0.5870 * ((2 * k + px) % 256) + 0.1140 * ((3 * k + px) % 256);
            cr_assert(fabs(t[1 + px] - g) <= 0.5 + 1e-9, "record %d pixel %d: %d vs %.3f", k, px, t[1 + px], g);
        }
    }
    task_data_free(&d);
    cr_assert_eq(task_lra_image.make(&p, TASK_TRAIN, 3, 9, FIXTURES "/cifar", &d), 0, "%s", attn_last_error());
    task_data_free(&d); /* 5 batches x 2 records: 9 train, 1 valid */
    cr_assert_lt(task_lra_image.make(&p, TASK_VALID, 3, 2, FIXTURES "/cifar", &d), 0);
}

Test(lra_image, malformed_files_fail_naming_the_file_and_what_was_expected)
{
    param_bag p = no_params();
    task_data d;
    static const struct {
        const char *dir, *needle;
    } cases[] = {
        {FIXTURES "/cifar_bad_label", "test_batch.bin: record 1 (byte 3073): label: expected 0..9, found 12"},
        {FIXTURES "/cifar_truncated", "test_batch.bin: truncated record at byte 6146"},
        {FIXTURES "/fashion_wrong_size", "t10k-images-idx3-ubyte: image size: expected 28x28, found 27x28"},
        {FIXTURES "/fashion_bad_label", "t10k-labels-idx1-ubyte: label 2 (byte 10): expected 0..9, found 11"},
        {FIXTURES "/nowhere", "expected CIFAR-10 binary batches"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        cr_assert_lt(task_lra_image.make(&p, TASK_TEST, 1, 1, cases[c].dir, &d), 0, "%s loaded", cases[c].dir);
        cr_assert(strstr(attn_last_error(), cases[c].needle), "%s: %s", cases[c].dir, attn_last_error());
    }
    cr_assert_eq(param_bag_add(&p, "side=3"), 0);
    cr_assert_lt(task_lra_image.make(&p, TASK_TEST, 1, 1, FIXTURES "/fashion_ok", &d), 0);
    cr_assert(strstr(attn_last_error(), "unknown param 'side'"), "%s", attn_last_error());
}
