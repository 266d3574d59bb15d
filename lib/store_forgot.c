/*
 * store_forgot.c - the warning about (sender, client id) pairs forgotten
 * before their window ended (see store_forgot.h).
 */
#include "store_forgot.h"

#include <time.h>

#include <vartalap/log.h>

#include "store_key.h"

static int64_t wall_ms(void)
{
	return (int64_t)time(NULL) * 1000;
}

static void report_at(struct vt__forgot *f, int64_t now, int force)
{
	if (f->n == 0 || (!force && now - f->warned < 60000)) {
		return;
	}
	vt_log(VT_LOG_WARN,
	       "%s: forgot %llu (sender, client id) pairs before their %llds window to make "
	       "room, the youngest %llds old; an older re-send would be delivered again",
	       f->who, (unsigned long long)f->n, (long long)(f->window / 1000),
	       (long long)((now - f->young) / 1000));
	f->warned = now;
	f->n = 0;
	f->young = 0;
}

void vt__forgot_add(struct vt__forgot *f, uint64_t n, int64_t ts)
{
	int64_t now = wall_ms();

	if (n == 0 || !vt__within_window(now, ts, f->window)) {
		return;
	}
	f->n += n;
	atomic_fetch_add_explicit(&f->total, n, memory_order_relaxed);
	f->young = ts > f->young ? ts : f->young;
	report_at(f, now, 0);
}

void vt__forgot_report(struct vt__forgot *f, int force)
{
	report_at(f, wall_ms(), force);
}

uint64_t vt__forgot_total(const struct vt__forgot *f)
{
	return atomic_load_explicit(&f->total, memory_order_relaxed);
}
