#ifndef CUSTOS_CXSD_H
#define CUSTOS_CXSD_H
#include <stddef.h>

/// Validates an XML document against an XML Schema with libxml2, in memory: no network, no
/// DTD loading, no entity expansion. Returns NULL when valid, else a malloc'd message (the
/// first errors with their line numbers) that the caller frees.
char *custos_xsd_validate(const char *schema, size_t schema_length, const char *document, size_t document_length);

#endif
