/* Sweep configs (harness/measure/config.h): parse, expand the kernel and
 * training jobs, and check that the resolved suites cfg_dump writes are
 * accepted again and dump the same. */
#include "fuzz/fuzz_io.h"
#include "fuzz/fuzz_targets.h"
#include "harness/measure/config.h"
#include "harness/train/config_train.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void expand_all(const cfg_config *cfg)
{
    cfg_job *jobs = NULL;
    size_t n = 0;
    attn_clear_error();
    int rc = cfg_expand(cfg, &jobs, &n);
    fuzz_check_error(rc, "config: cfg_expand");
    if (!rc)
        free(jobs);
    train_run_opts *tjobs = NULL;
    attn_clear_error();
    rc = cfg_trainings_expand(cfg->trainings, cfg->n_trainings, NULL, NULL, NULL, 0, &tjobs, &n);
    fuzz_check_error(rc, "config: cfg_trainings_expand");
    if (!rc)
        free(tjobs);
}

static char *dump(const cfg_config *cfg)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f)
        abort();
    cfg_dump(f, cfg);
    fclose(f);
    return text;
}

/* What cfg_dump writes of an accepted config with suites parses, and dumps
 * to the same text (trainings are not part of the dump). */
static void check_dump_parses(const cfg_config *cfg)
{
    if (cfg->n_suites == 0)
        return;
    char *text = dump(cfg);
    cfg_config again;
    if (cfg_parse("dump.json", text, &again) != 0) {
        fprintf(stderr, "fuzz config: cfg_dump's output is refused: %s\n%s\n", attn_last_error(), text);
        abort();
    }
    char *text2 = dump(&again);
    if (strcmp(text, text2) != 0) {
        fprintf(stderr, "fuzz config: cfg_dump of the dump differs:\n%s\n%s\n", text, text2);
        abort();
    }
    cfg_free(&again);
    free(text2);
    free(text);
}

int fuzz_config(const uint8_t *data, size_t n)
{
    char *text = fuzz_text(data, n);
    if (!text)
        return 0;
    cfg_config cfg;
    attn_clear_error();
    int rc = cfg_parse("fuzz.json", text, &cfg);
    fuzz_check_error(rc, "config: cfg_parse");
    if (!rc) {
        expand_all(&cfg);
        check_dump_parses(&cfg);
    }
    cfg_free(&cfg);
    free(text);
    return rc;
}
