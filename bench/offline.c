#include "bench.h"
void vb_offline_setup(struct vb_bench *b) { (void)b; }
