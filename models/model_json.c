#include "model_json.h"

#include <stdio.h>
#include <string.h>

cJSON *nn_model_cfg_to_json(const nn_model_cfg *c)
{
    cJSON *o = cJSON_CreateObject();
    opt_write_json(nn_model_opts, c, o);
    return o;
}

int nn_model_cfg_from_json(const cJSON *o, const char *where, nn_model_cfg *c)
{
    memset(c, 0, sizeof *c);
    if (!cJSON_IsObject(o))
        return attn_fail(ATTN_EINVAL, "%s: model: expected an object", where);
    char at[300];
    snprintf(at, sizeof at, "%s: model", where);
    return opt_read_json(nn_model_opts, c, o, at);
}
