#include "cxml.h"
#include <libxml/parser.h>
#include <libxml/xmlerror.h>
#include <libxml/xmlschemas.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* libxml2's callbacks are variadic or structured; the structured one is collected here. */
struct errors { char text[2048]; size_t used; int count; };

static void collect(void *context, xmlErrorPtr error) {
    struct errors *e = context;
    if (!e || !error || e->count >= 10 || e->used >= sizeof e->text - 1) return;
    const char *message = error->message ? error->message : "error";
    size_t length = strlen(message);
    while (length > 0 && (message[length - 1] == '\n' || message[length - 1] == ' ')) length--;
    int n = snprintf(e->text + e->used, sizeof e->text - e->used, "%sline %d: %.*s",
                     e->count ? "; " : "", error->line, (int)length, message);
    if (n > 0) e->used += (size_t)n < sizeof e->text - e->used ? (size_t)n : sizeof e->text - e->used - 1;
    e->count++;
}

static pthread_once_t once = PTHREAD_ONCE_INIT;
static void initialise(void) { xmlInitParser(); }

static char *failure(const char *what, struct errors *e) {
    size_t size = strlen(what) + e->used + 3;
    char *out = malloc(size);
    if (out) snprintf(out, size, "%s%s%s", what, e->used ? ": " : "", e->text);
    return out;
}

char *custos_xsd_validate(const char *schema, size_t schema_length, const char *document, size_t document_length) {
    pthread_once(&once, initialise);
    struct errors e = { .used = 0, .count = 0 };
    e.text[0] = 0;
    if (schema_length > INT_MAX || document_length > INT_MAX) return failure("the document is too large to validate", &e);
    /* Errors go to this thread's collector instead of stderr, for this call only. */
    xmlSetStructuredErrorFunc(&e, collect);
    char *result = NULL;
    xmlSchemaParserCtxtPtr parser = xmlSchemaNewMemParserCtxt(schema, (int)schema_length);
    xmlSchemaPtr parsed = NULL;
    if (parser) {
        xmlSchemaSetParserStructuredErrors(parser, collect, &e);
        parsed = xmlSchemaParse(parser);
        xmlSchemaFreeParserCtxt(parser);
    }
    if (!parsed) { result = failure("the schema cannot be read", &e); goto done; }
    xmlDocPtr doc = xmlReadMemory(document, (int)document_length, "document.xml", NULL, XML_PARSE_NONET | XML_PARSE_NOWARNING);
    if (!doc) { result = failure("not well-formed XML", &e); xmlSchemaFree(parsed); goto done; }
    xmlSchemaValidCtxtPtr validator = xmlSchemaNewValidCtxt(parsed);
    if (!validator) {
        result = failure("cannot start the schema validator", &e);
    } else {
        xmlSchemaSetValidStructuredErrors(validator, collect, &e);
        int code = xmlSchemaValidateDoc(validator, doc);
        if (code != 0) result = failure(code > 0 ? "invalid" : "the validator failed", &e);
        xmlSchemaFreeValidCtxt(validator);
    }
    xmlFreeDoc(doc);
    xmlSchemaFree(parsed);
done:
    xmlSetStructuredErrorFunc(NULL, NULL);
    return result;
}
