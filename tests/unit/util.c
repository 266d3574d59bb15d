/* util.c: shared helpers of the unit tests (fake clock, capture transport). */
