/*
 * vartalap/vartalap.h - everything of libvartalap's public API.
 *
 * Include this one header; link with `pkg-config --libs vartalap`. How to
 * drive the engine from a host program is in docs/EMBEDDING.md.
 */
#ifndef VARTALAP_VARTALAP_H
#define VARTALAP_VARTALAP_H

#include <vartalap/cluster.h>
#include <vartalap/engine.h>
#include <vartalap/error.h>
#include <vartalap/log.h>
#include <vartalap/notifier.h>
#include <vartalap/storage.h>
#include <vartalap/token.h>
#include <vartalap/transport.h>
#include <vartalap/version.h>

#endif /* VARTALAP_VARTALAP_H */
