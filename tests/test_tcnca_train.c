/* `tcnca` inside the model's training path: a tiny two-layer LM with the
 * kernel in both layers (its conv weights block parameters trained by their
 * gradient) learns MQAR above chance. The chunk covers the task's 32 tokens:
 * attention never crosses a chunk boundary and the TCN filters only Q and K,
 * so a value in an earlier chunk cannot reach a later row through this mixer
 * alone (TCNCA carries the filtered stream through MEGA's gated residual, a
 * model-level piece); the test is a smoke test of the forward, the backward
 * and the weight updates, not a recall measurement. */
#include "memory_train.h"

Test(tcnca_train, a_tiny_tcnca_lm_learns_mqar_above_chance, .timeout = 300)
{
    tiny_mqar_beats_chance("tcnca", "chunk=32 layers=3");
}
