/*
 * bench/report.c - the summary: a markdown table on stdout (ready to paste
 * into docs/PERFORMANCE.md) and, when asked, one CSV line per run that the
 * run script gathers into tables and plots.
 */
#include <stdarg.h>
#include <stdio.h>

#include "bench.h"

static double per_s(struct vb_bench *b, uint64_t n)
{
	double s = vb_secs(b);

	return s > 0 ? (double)n / s : 0.0;
}

static void csv_line(struct vb_bench *b, const char *line)
{
	FILE *f;

	if (b->o.csv == NULL) {
		return;
	}
	f = fopen(b->o.csv, "a");
	if (f == NULL) {
		perror(b->o.csv);
		return;
	}
	fprintf(f, "%s\n", line);
	fclose(f);
}

/*
 * One line of a throughput run. Frames are counted from the server's side:
 * "in" is what the clients sent, "out" what they received.
 */
void vb_print_rate_table(struct vb_bench *b, const char *mode)
{
	struct vb_stats *s = &b->st;
	double load = b->o.rate > 0 ? b->o.rate : b->o.window;
	char line[512];

	printf("| server | scenario | mode | conns | load | accepted/s | delivered/s | acked/s |"
	       " frames in/s | frames out/s | p50 ms | p99 ms | p99.9 ms | errors |\n");
	printf("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
	snprintf(line, sizeof(line),
	         "%s,%s,%s,%d,%.0f,%.0f,%.0f,%.0f,%.0f,%.0f,%.3f,%.3f,%.3f,%llu",
	         b->o.label, b->o.scenario, mode, b->nconns, load, per_s(b, s->accepted),
	         per_s(b, s->delivered), per_s(b, s->acked), per_s(b, s->frames_in),
	         per_s(b, s->frames_out), (double)vb_hist_quantile(&s->lat, 0.5) / 1e6,
	         (double)vb_hist_quantile(&s->lat, 0.99) / 1e6,
	         (double)vb_hist_quantile(&s->lat, 0.999) / 1e6,
	         (unsigned long long)(s->errors + s->closed + (uint64_t)b->failed));
	printf("| ");
	for (const char *p = line; *p; p++) {
		fputs(*p == ',' ? " | " : (char[2]){*p, 0}, stdout);
	}
	printf(" |\n");
	csv_line(b, line);
}

/* One figure of a run that is not a throughput line. */
void vb_row(struct vb_bench *b, const char *metric, const char *unit, double value)
{
	static int header;
	char line[512];

	if (!header) {
		printf("| server | scenario | figure | value | unit |\n|---|---|---|---|---|\n");
		header = 1;
	}
	printf("| %s | %s | %s | %.6g | %s |\n", b->o.label, b->o.scenario, metric, value, unit);
	snprintf(line, sizeof(line), "%s,%s,%s,%.6g,%s", b->o.label, b->o.scenario, metric, value,
	         unit);
	csv_line(b, line);
}
