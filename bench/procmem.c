/*
 * bench/procmem.c - another process's memory, from /proc.
 *
 * VmRSS counts every resident page, LMDB's file-backed map included;
 * Private_Dirty in smaps_rollup counts only the pages the process wrote
 * itself (heap, stacks, copy-on-write), which is what grows per connection.
 */
#include <stdio.h>
#include <string.h>

#include "bench.h"

/* The value of line @key (in kB) in @path, in bytes; -1 when missing. */
static long kb_field(const char *path, const char *key)
{
	char line[256];
	size_t kl = strlen(key);
	long kb = -1;
	FILE *f = fopen(path, "r");

	if (f == NULL) {
		return -1;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, key, kl) == 0 && sscanf(line + kl, " %ld", &kb) == 1) {
			break;
		}
	}
	fclose(f);
	return kb < 0 ? -1 : kb * 1024;
}

long vb_proc_rss(int pid)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	return kb_field(path, "VmRSS:");
}

long vb_proc_private_dirty(int pid)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", pid);
	return kb_field(path, "Private_Dirty:");
}
