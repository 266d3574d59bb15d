/*
 * error.c - names, messages and HTTP statuses of the error codes.
 */
#include <stddef.h>

#include <vartalap/error.h>

struct err_info {
	int code;
	const char *name;
	const char *msg;
	int http;
};

static const struct err_info err_table[] = {
#define VT__ERR_ROW(sym, val, name, msg, http) {(val), (name), (msg), (http)},
	VT_ERRORS(VT__ERR_ROW)
#undef VT__ERR_ROW
};

static const struct err_info *err_find(int err)
{
	for (size_t i = 0; i < sizeof(err_table) / sizeof(err_table[0]); i++) {
		if (err_table[i].code == err) {
			return &err_table[i];
		}
	}
	return NULL;
}

const char *vt_strerror(int err)
{
	const struct err_info *e = err_find(err);

	if (err == 0) {
		return "success";
	}
	return e ? e->msg : "unknown error";
}

const char *vt_error_name(int err)
{
	const struct err_info *e = err_find(err);

	if (err == 0) {
		return "ok";
	}
	return e ? e->name : "internal";
}

int vt_error_http_status(int err)
{
	const struct err_info *e = err_find(err);

	if (err == 0) {
		return 200;
	}
	return e ? e->http : 500;
}
