/*
 * buf.c - a growable byte buffer for building output.
 *
 * Every append goes through vt_buf_reserve(), which keeps room for a trailing
 * NUL so the contents can be handed to C string functions at any time. A
 * failed allocation marks the buffer and turns later appends into no-ops,
 * so builders need no error path of their own: they check vt_buf_failed()
 * once when done.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "json.h"

/* First allocation: large enough for a typical envelope. */
#define BUF_MIN_CAP 256

void vt_buf_init(struct vt_buf *b)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->failed = 0;
	b->borrowed = 0;
}

void vt_buf_init_in(struct vt_buf *b, char *mem, size_t cap)
{
	vt_buf_init(b);
	b->data = mem;
	b->cap = cap;
	b->borrowed = 1;
}

void vt_buf_free(struct vt_buf *b)
{
	if (!b->borrowed) {
		free(b->data);
	}
	vt_buf_init(b);
}

void vt_buf_reset(struct vt_buf *b)
{
	b->len = 0;
	b->failed = 0;
	if (b->data != NULL) {
		b->data[0] = '\0';
	}
}

int vt_buf_failed(const struct vt_buf *b)
{
	return b->failed;
}

/* The capacity to grow to so that @need bytes fit, or 0 on overflow. */
static size_t buf_next_cap(size_t cap, size_t need)
{
	size_t n = cap < BUF_MIN_CAP ? BUF_MIN_CAP : cap;

	while (n < need) {
		if (n > SIZE_MAX / 2) {
			return need;
		}
		n *= 2;
	}
	return n;
}

int vt_buf_reserve(struct vt_buf *b, size_t extra)
{
	size_t need;
	size_t cap;
	char *p;

	if (b->failed) {
		return -1;
	}
	if (extra > SIZE_MAX - 1 - b->len) {
		b->failed = 1;
		return -1;
	}

	need = b->len + extra + 1;
	if (need <= b->cap) {
		return 0;
	}

	cap = buf_next_cap(b->cap, need);
	p = b->borrowed ? malloc(cap) : realloc(b->data, cap);
	if (p == NULL) {
		b->failed = 1;
		return -1;
	}
	if (b->borrowed && b->len > 0) {
		memcpy(p, b->data, b->len + 1);
	}
	b->borrowed = 0;
	b->data = p;
	b->cap = cap;
	return 0;
}

void vt_buf_append_grow(struct vt_buf *b, const void *data, size_t len)
{
	if (len == 0 || vt_buf_reserve(b, len) != 0) {
		return;
	}

	memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
}

/* "00" to "99": ids and times have 13 to 16 digits, made two a division. */
static const char two_digits[] =
	"0001020304050607080910111213141516171819"
	"2021222324252627282930313233343536373839"
	"4041424344454647484950515253545556575859"
	"6061626364656667686970717273747576777879"
	"8081828384858687888990919293949596979899";

void vt_buf_u64(struct vt_buf *b, uint64_t v)
{
	char tmp[20]; /* UINT64_MAX has 20 digits */
	size_t i = sizeof(tmp);

	/* Digits come out least significant first, so fill from the end. */
	while (v >= 100) {
		i -= 2;
		memcpy(tmp + i, two_digits + 2 * (v % 100), 2);
		v /= 100;
	}
	if (v >= 10) {
		i -= 2;
		memcpy(tmp + i, two_digits + 2 * v, 2);
	} else {
		tmp[--i] = (char)('0' + v);
	}
	vt_buf_append(b, tmp + i, sizeof(tmp) - i);
}

void vt_buf_i64(struct vt_buf *b, int64_t v)
{
	/* Negate in unsigned arithmetic: -INT64_MIN does not fit an int64_t. */
	if (v < 0) {
		vt_buf_putc(b, '-');
		vt_buf_u64(b, (uint64_t)0 - (uint64_t)v);
		return;
	}
	vt_buf_u64(b, (uint64_t)v);
}

/* The short escape of a byte ('n' for a line feed), or 0 when it has none. */
static char json_short_escape(unsigned char c)
{
	switch (c) {
	case '"':
		return '"';
	case '\\':
		return '\\';
	case '\b':
		return 'b';
	case '\f':
		return 'f';
	case '\n':
		return 'n';
	case '\r':
		return 'r';
	case '\t':
		return 't';
	default:
		return 0;
	}
}

/* Append the escape of one byte that cannot appear raw in a JSON string. */
static void json_escape_byte(struct vt_buf *b, unsigned char c)
{
	static const char hex[] = "0123456789abcdef";
	char esc[6] = {'\\', 'u', '0', '0', 0, 0};
	char s = json_short_escape(c);

	if (s != 0) {
		esc[1] = s;
		vt_buf_append(b, esc, 2);
		return;
	}

	esc[4] = hex[c >> 4];
	esc[5] = hex[c & 0xf];
	vt_buf_append(b, esc, 6);
}

void vt_buf_json_str(struct vt_buf *b, const char *s, size_t len)
{
	size_t i = vt_json_plain_run(s, len);

	/* Nothing to escape, nearly always: the quotes and the text in one step. */
	if (i == len && vt_buf_reserve(b, len + 2) == 0) {
		char *p = b->data + b->len;

		p[0] = '"';
		if (len > 0) {
			memcpy(p + 1, s, len);
		}
		p[len + 1] = '"';
		p[len + 2] = '\0';
		b->len += len + 2;
		return;
	}

	i = 0;
	vt_buf_putc(b, '"');

	/* Copy plain bytes in runs; only quotes, backslashes and C0 controls
	 * need escaping. Bytes >= 0x80 pass as is: the input is UTF-8. */
	while (i < len) {
		size_t run = vt_json_plain_run(s + i, len - i);

		vt_buf_append(b, s + i, run);
		i += run;
		if (i < len) {
			json_escape_byte(b, (unsigned char)s[i++]);
		}
	}

	vt_buf_putc(b, '"');
}
