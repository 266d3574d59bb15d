/*
 * vartalap/vartalap.h - everything of libvartalap's public API.
 */
#ifndef VARTALAP_VARTALAP_H
#define VARTALAP_VARTALAP_H

#include <vartalap/engine.h>
#include <vartalap/error.h>
#include <vartalap/log.h>
#include <vartalap/storage.h>
#include <vartalap/token.h>
#include <vartalap/transport.h>
#include <vartalap/version.h>

#endif /* VARTALAP_VARTALAP_H */
