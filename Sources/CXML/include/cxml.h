#ifndef CUSTOS_CXML_H
#define CUSTOS_CXML_H
#include <stddef.h>

/// Validates an XML document against an XML Schema with libxml2, in memory: no network, no
/// DTD loading, no entity expansion. Returns NULL when valid, else a malloc'd message (the
/// first errors with their line numbers) that the caller frees.
char *custos_xsd_validate(const char *schema, size_t schema_length, const char *document, size_t document_length);

/// One PAN 2012 `<conversation>` as read: its id, the line it starts on, and per message the
/// `line` attribute and the exact text of `<author>`, `<time>` and `<text>` (NULL when absent).
typedef struct {
    const char *id;
    int line;
    size_t count;
    const char *const *lines;
    const char *const *authors;
    const char *const *times;
    const char *const *texts;
} custos_pan12_conversation;

/// Called once per conversation read exactly; a non-zero return stops the reading.
typedef int (*custos_pan12_callback)(void *context, const custos_pan12_conversation *conversation);

/// Reads a PAN 2012 corpus file as a stream with libxml2. Internal entities are expanded as XML
/// defines; external entities and DTD loads are refused; the whole file is checked before any
/// conversation is passed on, and any error or warning rejects the file, so no conversation is
/// ever passed on with text removed. Returns NULL when the file was read, else a malloc'd
/// message naming the line.
char *custos_pan12_read(const char *path, const char *buffer, size_t length, void *context, custos_pan12_callback callback);

#endif
