/* Writes the checkpoint target's seed corpus: `fuzz_checkpoint_seeds DIR`
 * saves the model of checkpoint_model.h with parameters only, with optimizer
 * and training state, and with everything, through ckpt_save itself. */
#include "checkpoint_model.h"

#include "common/attn_error.h"

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: fuzz_checkpoint_seeds DIR\n");
        return 2;
    }
    float params[FUZZ_CKPT_NPARAMS], best[FUZZ_CKPT_NPARAMS];
    for (int i = 0; i < FUZZ_CKPT_NPARAMS; i++)
        params[i] = (float)i * 0.25f - 1.0f, best[i] = -params[i];
    optim opt;
    const optim_config oc = {.beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f};
    ckpt_train train = {.step = 7};
    attn_rng_seed(&train.rng, 3);
    if (optim_init(&opt, FUZZ_CKPT_NPARAMS, &oc, NULL, 0) != 0) {
        fprintf(stderr, "fuzz_checkpoint_seeds: %s\n", attn_last_error());
        return 1;
    }
    opt.step = 5;
    const ckpt_state states[3] = {
        {fuzz_ckpt_tensors, 2, params, FUZZ_CKPT_NPARAMS, NULL, NULL, NULL},
        {fuzz_ckpt_tensors, 2, params, FUZZ_CKPT_NPARAMS, &opt, &train, NULL},
        {fuzz_ckpt_tensors, 2, params, FUZZ_CKPT_NPARAMS, &opt, &train, best},
    };
    static const char *const names[3] = {"params_only.ckpt", "optim_train.ckpt", "all.ckpt"};
    static const char *const configs[3] = {"{\"model\":{\"layers\":1}}", "{}", "{\"task\":\"mqar\",\"lr\":0.001}"};
    int rc = 0;
    for (int i = 0; i < 3 && !rc; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", argv[1], names[i]);
        if ((rc = ckpt_save(path, configs[i], &states[i])) != 0)
            fprintf(stderr, "fuzz_checkpoint_seeds: %s\n", attn_last_error());
    }
    optim_fini(&opt);
    return rc ? 1 : 0;
}
