/*
 * bench/main.c - vtbench: options, the file limit, and the scenario.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <event2/event.h>

#include "bench.h"

static const char usage[] =
	"Usage: vtbench SCENARIO [OPTIONS] [-- SERVER COMMAND]\n"
	"Scenarios: p2p, offline, fanout, idle, restart (see bench/README.md).\n"
	"  --server vt|relay|mqtt   what is listening (default vt)\n"
	"  --port N                 its port on 127.0.0.1 (default 8080)\n"
	"  --label NAME             its name in the tables\n"
	"  --data-dir DIR           vartalapd's data directory (for dev-secret)\n"
	"  --secret-file PATH       the nodes' token key (instead of dev-secret)\n"
	"  --peer-port N            p2p: one side of each pair on a second node\n"
	"  --half-port N            p2p: half the pairs, both sides, on a second node\n"
	"  --prefix P               user names are P0, P1, ... (default u)\n"
	"  --pairs N  --window W  --rate R  --size BYTES\n"
	"  --conns N  --members N  --queued N  --count N  --no-drain\n"
	"  --seconds S  --warmup S  --timeout S  --server-pid PID  --csv FILE\n";

static void defaults(struct vb_opts *o)
{
	*o = (struct vb_opts){.proto = VB_VT, .host = "127.0.0.1", .port = 8080,
	                      .data_dir = "./vartalap-data", .prefix = "u", .pairs = 100,
	                      .window = 16, .size = 150, .conns = 1000, .members = 1000,
	                      .queued = 100, .count = 100000, .drain = 1, .seconds = 10,
	                      .warmup = 1, .timeout = 30};
}

static int parse(struct vb_opts *o, int argc, char **argv)
{
	static const struct option opts[] = {
		{"server", 1, 0, 'S'}, {"port", 1, 0, 'p'}, {"label", 1, 0, 'l'},
		{"data-dir", 1, 0, 'd'}, {"prefix", 1, 0, 'P'}, {"pairs", 1, 0, 'n'},
		{"window", 1, 0, 'w'}, {"rate", 1, 0, 'r'}, {"size", 1, 0, 'z'},
		{"conns", 1, 0, 'c'}, {"members", 1, 0, 'm'}, {"queued", 1, 0, 'q'},
		{"count", 1, 0, 'k'}, {"no-drain", 0, 0, 'D'}, {"seconds", 1, 0, 's'},
		{"warmup", 1, 0, 'W'}, {"timeout", 1, 0, 't'}, {"server-pid", 1, 0, 'i'},
		{"csv", 1, 0, 'C'}, {"secret-file", 1, 0, 'K'}, {"peer-port", 1, 0, 'x'},
		{"half-port", 1, 0, 'h'}, {0, 0, 0, 0}};
	int ch;

	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'S':
			o->proto = !strcmp(optarg, "mqtt") ? VB_MQTT
			           : !strcmp(optarg, "relay") ? VB_RELAY : VB_VT;
			break;
		case 'p': o->port = atoi(optarg); break;
		case 'l': o->label = optarg; break;
		case 'd': o->data_dir = optarg; break;
		case 'P': o->prefix = optarg; break;
		case 'n': o->pairs = atoi(optarg); break;
		case 'w': o->window = atoi(optarg); break;
		case 'r': o->rate = atof(optarg); break;
		case 'z': o->size = atoi(optarg); break;
		case 'c': o->conns = atoi(optarg); break;
		case 'm': o->members = atoi(optarg); break;
		case 'q': o->queued = atoi(optarg); break;
		case 'k': o->count = atol(optarg); break;
		case 'D': o->drain = 0; break;
		case 's': o->seconds = atof(optarg); break;
		case 'W': o->warmup = atof(optarg); break;
		case 't': o->timeout = atof(optarg); break;
		case 'i': o->server_pid = atoi(optarg); break;
		case 'C': o->csv = optarg; break;
		case 'K': o->secret_file = optarg; break;
		case 'x': o->peer_port = atoi(optarg); break;
		case 'h': o->half_port = atoi(optarg); break;
		default: return -1;
		}
	}
	o->spawn = optind < argc ? argv + optind : NULL;
	return 0;
}

/* Every connection is a descriptor: take all the hard limit allows. */
static long raise_nofile(void)
{
	struct rlimit r;

	if (getrlimit(RLIMIT_NOFILE, &r) != 0) {
		return -1;
	}
	r.rlim_cur = r.rlim_max;
	setrlimit(RLIMIT_NOFILE, &r);
	return (long)r.rlim_cur;
}

static int setup(struct vb_bench *b, long nofile)
{
	static const struct {
		const char *name;
		void (*fn)(struct vb_bench *);
	} tab[] = {{"p2p", vb_p2p_setup}, {"offline", vb_offline_setup},
	           {"fanout", vb_fanout_setup}, {"idle", vb_idle_setup},
	           {"restart", vb_restart_setup}};
	int need = 2 * b->o.pairs + b->o.conns + b->o.members + 16;

	if (b->o.proto == VB_VT && strcmp(b->o.scenario, "restart") != 0 && vb_key_load(b) != 0) {
		if (b->o.secret_file != NULL) {
			fprintf(stderr, "vtbench: cannot read %s\n", b->o.secret_file);
		} else {
			fprintf(stderr, "vtbench: cannot read %s/dev-secret\n", b->o.data_dir);
		}
		return -1;
	}
	if (b->o.conns > nofile - 64) {
		fprintf(stderr, "vtbench: %d connections need more than %ld descriptors\n",
		        b->o.conns, nofile);
		return -1;
	}
	b->conns = calloc((size_t)need, sizeof(*b->conns));
	for (size_t i = 0; i < sizeof(tab) / sizeof(tab[0]); i++) {
		if (b->conns != NULL && strcmp(b->o.scenario, tab[i].name) == 0) {
			tab[i].fn(b);
			return 0;
		}
	}
	fputs(usage, stderr);
	return -1;
}

/*
 * A loop whose timers fire when due. By default libevent waits in epoll_wait(),
 * whose timeout is in whole milliseconds and rounds up, so the 1 ms schedule of
 * a fixed-rate run would slip by up to a millisecond a tick and show in every
 * percentile; a precise timer (timerfd) keeps it.
 */
static struct event_base *new_base(void)
{
	struct event_config *cfg = event_config_new();
	struct event_base *base;

	if (cfg == NULL) {
		return event_base_new();
	}
	event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER);
	base = event_base_new_with_config(cfg);
	event_config_free(cfg);
	return base;
}

int main(int argc, char **argv)
{
	static struct vb_bench b;
	long nofile = raise_nofile();

	defaults(&b.o);
	if (argc < 2 || argv[1][0] == '-' || parse(&b.o, argc - 1, argv + 1) != 0) {
		fputs(usage, stderr);
		return 2;
	}
	b.o.scenario = argv[1];
	if (b.o.peer_port > 0 && b.o.half_port > 0) {
		fputs("vtbench: --peer-port and --half-port exclude each other\n", stderr);
		return 2;
	}
	if (b.o.label == NULL) {
		static const char *names[] = {"vartalapd", "relay", "mosquitto"};

		b.o.label = names[b.o.proto];
	}
	b.base = new_base();
	if (setup(&b, nofile) != 0) {
		return 2;
	}
	vb_run(&b);
	if (b.h.report != NULL) {
		b.h.report(&b);
	}
	return b.nready == 0 && b.failed > 0 ? 1 : 0;
}
