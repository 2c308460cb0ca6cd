#include "registry.h"

#include <stdio.h>

int main(void)
{
    for (const attn_kernel *const *k = attn_registry(); *k; k++)
        printf("%s\n", (*k)->name);
    return 0;
}
