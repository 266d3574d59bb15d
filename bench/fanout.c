#include "bench.h"
void vb_fanout_setup(struct vb_bench *b) { (void)b; }
