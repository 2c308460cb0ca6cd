/* Checkpoint files (models/checkpoint.c): ckpt_inspect, then ckpt_load into
 * the model of fuzz/checkpoint_model.h, with the parameters only and with
 * every state the file says it holds. The trailing CRC is made right first,
 * as for PNG chunks, so mutations reach the header parser. */
#include "fuzz/checkpoint_model.h"
#include "fuzz/fuzz_io.h"
#include "fuzz/fuzz_targets.h"

#include <stdlib.h>
#include <string.h>

static int load(const char *path, unsigned flags)
{
    float params[FUZZ_CKPT_NPARAMS], best[FUZZ_CKPT_NPARAMS];
    optim opt;
    const optim_config oc = {.beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f};
    ckpt_train train;
    if (optim_init(&opt, FUZZ_CKPT_NPARAMS, &oc, NULL, 0) != 0)
        abort();
    ckpt_state s = {fuzz_ckpt_tensors, 2, params, FUZZ_CKPT_NPARAMS, NULL, NULL, NULL};
    attn_clear_error();
    int rc = ckpt_load(path, &s);
    fuzz_check_error(rc, "checkpoint: ckpt_load (parameters)");
    s.opt = flags & CKPT_HAS_OPTIM ? &opt : NULL;
    s.train = flags & CKPT_HAS_TRAIN ? &train : NULL;
    s.best = flags & CKPT_HAS_BEST ? best : NULL;
    attn_clear_error();
    int rc_all = ckpt_load(path, &s);
    fuzz_check_error(rc_all, "checkpoint: ckpt_load (every state)");
    optim_fini(&opt);
    return rc ? rc : rc_all;
}

int fuzz_checkpoint(const uint8_t *data, size_t n)
{
    uint8_t *b = malloc(n ? n : 1);
    if (!b)
        return 0;
    memcpy(b, data, n);
    if (n >= 4) {
        uint32_t crc = fuzz_crc32(b, n - 4);
        memcpy(b + n - 4, &crc, 4); /* little-endian, as the format */
    }
    const char *path = fuzz_write("model.ckpt", b, n);
    free(b);
    char *config = NULL;
    size_t nparams = 0;
    unsigned flags = 0;
    attn_clear_error();
    int rc = ckpt_inspect(path, &config, &nparams, &flags);
    fuzz_check_error(rc, "checkpoint: ckpt_inspect");
    free(config);
    if (!rc)
        rc = load(path, flags);
    return rc;
}
