#include "bench.h"
void vb_idle_setup(struct vb_bench *b) { (void)b; }
