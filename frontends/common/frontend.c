/*
 * frontends/common/frontend.c - defaults of the gateway settings.
 */
#include "frontend.h"

void vt_fe_config_init(struct vt_fe_config *cfg)
{
	cfg->key = NULL;
	cfg->key_len = 0;
	cfg->max_message = 65536;
	cfg->ping_interval_ms = 30000;
	cfg->ping_timeout_ms = 10000;
	cfg->close_linger_ms = 2000;
	cfg->out_limit = 256 * 1024;
	cfg->http_timeout_s = 30;
	cfg->max_headers = 8192;
	cfg->fetch_limit_max = 500;
	cfg->max_connections = 10000;
	cfg->max_user_conns = 16;
	cfg->request_deadline_ms = 10000;
	cfg->idle_timeout_ms = 0;
	cfg->max_frame = 0;
	cfg->web_root = NULL;
	cfg->dev_tokens = 0;
	cfg->healthy = NULL;
	cfg->healthy_arg = NULL;
}
