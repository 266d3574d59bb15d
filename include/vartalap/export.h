/*
 * vartalap/export.h - marks the functions the shared library exports.
 *
 * The library is built with hidden visibility: only declarations marked
 * VT_EXPORT are part of the ABI.
 */
#ifndef VARTALAP_EXPORT_H
#define VARTALAP_EXPORT_H

#if defined(VT_BUILDING_LIB) && defined(__GNUC__)
#define VT_EXPORT __attribute__((visibility("default")))
#else
#define VT_EXPORT
#endif

#endif /* VARTALAP_EXPORT_H */
